package modules

import (
	"context"
	"fmt"
	"path"
	"time"

	"github.com/azinit/azinit/internal/version"
)

// FinalMessage marks the boot's provisioning work done: it writes
// boot-finished in the instance directory, the marker cloud-init users and
// scripts wait for, and logs how long the boot took to get here.
type FinalMessage struct{}

// Name implements Module.
func (FinalMessage) Name() string { return "final-message" }

// BootFinishedFile is the marker's name in the instance directory.
const BootFinishedFile = "boot-finished"

// Apply implements Module.
func (FinalMessage) Apply(ctx context.Context, env *Env) (Outcome, error) {
	now := env.Now().UTC()
	msg := fmt.Sprintf("%s - azinit %s", now.Format(time.RFC3339), version.Version)
	if err := env.Root.WriteFileAtomic(path.Join(env.Instance.Dir, BootFinishedFile), []byte(msg+"\n"), 0o644); err != nil {
		return "", err
	}
	env.Log.Info("azinit finished the boot", "instance", env.Instance.ID, "version", version.Version)
	return Changed, nil
}
