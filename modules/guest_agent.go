package modules

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/azinit/azinit/datasource/azure"
)

// GuestAgent honours the platform's ProvisionGuestAgent: when the VM is
// not to run extensions it creates the empty marker
// /var/lib/waagent/disable_agent, with which WALinuxAgent's daemon never
// runs extensions (and azinit-extensions' unit does not start); when it
// is, it removes a marker a previous instance left.
type GuestAgent struct{}

// Name is "guest-agent".
func (GuestAgent) Name() string { return "guest-agent" }

// disableAgentFile is WALinuxAgent's marker.
const disableAgentFile = azure.LibDir + "/disable_agent"

// Apply creates or removes the marker.
func (GuestAgent) Apply(ctx context.Context, env *Env) (Outcome, error) {
	_, err := env.Root.Stat(disableAgentFile)
	exists := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("checking %s: %w", disableAgentFile, err)
	}
	want := !env.Data.ProvisionGuestAgent()
	switch {
	case want == exists:
		return Unchanged, nil
	case want:
		if err := env.Root.MkdirAll(azure.LibDir, 0o700); err != nil {
			return "", err
		}
		if err := env.Root.WriteFileAtomic(disableAgentFile, nil, 0o644); err != nil {
			return "", err
		}
		env.Log.Info("extensions disabled: the platform asks for no guest agent", "marker", disableAgentFile)
	default:
		if err := env.Root.Remove(disableAgentFile); err != nil {
			return "", fmt.Errorf("removing %s: %w", disableAgentFile, err)
		}
		env.Log.Info("extensions enabled: removed a previous instance's marker", "marker", disableAgentFile)
	}
	return Changed, nil
}
