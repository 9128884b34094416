// Command azinit-config is the third boot stage: configuration that needs
// the network online.
package main

import (
	"github.com/azinit/azinit/cmd/internal/cmdenv"
	"github.com/azinit/azinit/stages"
)

func main() {
	cmdenv.Stage("azinit-config", "the boot stage after the network is online: custom data", stages.Config)
}
