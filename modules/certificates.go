package modules

import (
	"context"

	"github.com/azinit/azinit/datasource/azure"
	"github.com/azinit/azinit/datasource/azure/certs"
)

// Certificates fetches the goal state's certificates and keeps them as
// <THUMBPRINT>.crt/.prv in /var/lib/waagent, where keys given by
// fingerprint come from and extensions decrypt their protected settings.
// It is a step of its own, placed just before the first module that needs
// certificates, so that generating the transport key on a first boot
// overlaps the modules before it.
type Certificates struct{}

// Name implements Module.
func (Certificates) Name() string { return "certificates" }

// Apply implements Module.
func (Certificates) Apply(ctx context.Context, env *Env) (Outcome, error) {
	d := env.Data
	if d.GoalState == nil || env.Azure.Transport == nil {
		return Skipped, nil
	}
	if err := d.FetchCertificates(ctx, env.Azure); err != nil {
		return "", err
	}
	if len(d.Certificates) == 0 {
		return Skipped, nil
	}
	if err := env.Root.MkdirAll(azure.LibDir, 0o700); err != nil {
		return "", err
	}
	if err := certs.WriteFiles(env.Root, azure.LibDir, d.Certificates); err != nil {
		return "", err
	}
	return Changed, nil
}
