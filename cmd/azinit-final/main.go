// Command azinit-final is the last boot stage: user scripts, then the boot
// is marked finished.
package main

import (
	"github.com/azinit/azinit/cmd/internal/cmdenv"
	"github.com/azinit/azinit/stages"
)

func main() {
	cmdenv.Stage("azinit-final", "the last boot stage: user scripts, boot finished", stages.Final)
}
