package modules

import (
	"context"
	"fmt"
	"io/fs"
	"path"

	"github.com/azinit/azinit/datasource/azure"
	"github.com/azinit/azinit/datasource/azure/ovf"
)

// WaagentState keeps what the platform delivered where WALinuxAgent keeps
// it, because extensions and tools read those files directly
// (design.md §5): ovf-env.xml with its password emptied (also in the
// instance directory), HostingEnvironmentConfig.xml and SharedConfig.xml.
// (The certificates step keeps the certificates.) It writes whatever the
// stage has, so it runs in every stage that reads a source.
type WaagentState struct{}

// Name implements Module.
func (WaagentState) Name() string { return "waagent-state" }

type stateFile struct {
	name string
	data []byte
	perm fs.FileMode
}

// Apply implements Module.
func (WaagentState) Apply(ctx context.Context, env *Env) (Outcome, error) {
	d := env.Data
	var files []stateFile
	if d.Media != nil && len(d.Media.OVF) > 0 {
		redacted, err := ovf.Redact(d.Media.OVF)
		if err != nil {
			return "", fmt.Errorf("ovf-env.xml: %w", err)
		}
		files = append(files,
			stateFile{path.Join(azure.LibDir, "ovf-env.xml"), redacted, 0o600},
			stateFile{path.Join(env.Instance.Dir, "ovf-env.xml"), redacted, 0o600})
	}
	if d.HostingEnvironment != nil {
		files = append(files, stateFile{path.Join(azure.LibDir, "HostingEnvironmentConfig.xml"), d.HostingEnvironment.Raw, 0o644})
	}
	if d.SharedConfig != nil {
		files = append(files, stateFile{path.Join(azure.LibDir, "SharedConfig.xml"), d.SharedConfig, 0o644})
	}
	if len(files) == 0 {
		return Skipped, nil
	}
	if err := env.Root.MkdirAll(azure.LibDir, 0o700); err != nil {
		return "", err
	}
	outcome := Unchanged
	for _, f := range files {
		changed, err := env.Root.UpdateFile(f.name, f.data, f.perm, nil)
		if err != nil {
			return "", err
		}
		if changed {
			outcome = Changed
		}
	}
	return outcome, nil
}
