package stages

import (
	"github.com/azinit/azinit/datasource/azure"
	"github.com/azinit/azinit/modules"
)

// The boot stages (design.md §1), each visible in one place: the sources
// it reads live and its modules in order with their frequency.
var (
	// Local runs before networking (also in the initramfs, with the real
	// root at --root): it reads the provisioning media, names the host and
	// keeps what the media said.
	Local = Stage{Name: "local", Sources: azure.Media, Steps: []Step{
		{modules.WaagentState{}, Always},
		{modules.Hostname{}, PerInstance},
		{modules.GuestAgent{}, PerInstance},
	}}
	// Network runs once the primary NIC has an address: it reads IMDS and
	// the wireserver, makes the admin able to log in, and reports Ready as
	// soon as that is true. On a first boot the transport key is generated
	// meanwhile (not in the local stage, which would delay networking); the
	// certificates step waits for it.
	Network = Stage{Name: "network", Sources: azure.IMDS | azure.Wireserver, TransportKey: true, Steps: []Step{
		{modules.WaagentState{}, Always},
		{modules.Users{}, PerInstance},
		{modules.SSHHostKeys{}, PerInstance},
		{modules.Certificates{}, Always},
		{modules.SSHKeys{}, PerInstance},
		{modules.SSHD{}, PerInstance},
		{modules.ReportReady{}, Always},
		// After Ready: login does not need it, and re-sending DHCP may
		// drop the address for a moment.
		{modules.PublishHostname{}, PerInstance},
	}}
	// Config runs after the network is online: the platform's custom data.
	Config = Stage{Name: "config", Steps: []Step{
		{modules.CustomData{}, PerInstance},
	}}
	// Final runs last: user scripts, then the boot is marked finished.
	Final = Stage{Name: "final", Steps: []Step{
		{modules.RunCustomData{}, PerInstance},
		{modules.FinalMessage{}, Always},
	}}
)
