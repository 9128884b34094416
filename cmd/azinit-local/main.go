// Command azinit-local is the first boot stage: before networking (also in
// the initramfs), it reads the provisioning media and names the host.
package main

import (
	"github.com/azinit/azinit/cmd/internal/cmdenv"
	"github.com/azinit/azinit/stages"
)

func main() {
	cmdenv.Stage("azinit-local", "the boot stage before networking: provisioning media, host name", stages.Local)
}
