package stages

import (
	"encoding/json"
	"io/fs"
	"path"

	"github.com/azinit/azinit/datasource"
	"github.com/azinit/azinit/datasource/azure"
	"github.com/azinit/azinit/internal/sys"
)

// writeInstanceData leaves d's instance data for `azinit query`: the
// redacted view world-readable, the sensitive one for root only.
func writeInstanceData(root *sys.Root, d *azure.Data) error {
	if err := root.MkdirAll(path.Dir(datasource.InstanceDataPath), 0o755); err != nil {
		return err
	}
	if err := writeView(root, datasource.InstanceDataPath, d.InstanceData(false), 0o644); err != nil {
		return err
	}
	return writeView(root, datasource.SensitivePath, d.InstanceData(true), 0o600)
}

func writeView(root *sys.Root, name string, v *datasource.InstanceData, perm fs.FileMode) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return root.WriteFileAtomic(name, append(b, '\n'), perm)
}
