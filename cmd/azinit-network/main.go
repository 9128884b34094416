// Command azinit-network is the second boot stage: once the primary NIC
// has an address, it provisions the admin user and reports Ready.
package main

import (
	"github.com/azinit/azinit/cmd/internal/cmdenv"
	"github.com/azinit/azinit/stages"
)

func main() {
	cmdenv.Stage("azinit-network", "the boot stage after the network is up: users, keys, sshd, report ready", stages.Network)
}
