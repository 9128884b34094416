package blackbox

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/azinit/azinit/fabric"
)

const demo = "../../testdata/scenarios/demo"

// vm is a target root wired to a fabric: azinit.yaml points every
// endpoint at the fabric and the media at an image the fabric wrote.
type vm struct {
	root   string
	fabric *fabric.Fabric
}

func newVM(t testing.TB, scenario string, faults ...string) *vm {
	t.Helper()
	fs, err := fabric.ParseFaults(faults)
	if err != nil {
		t.Fatal(err)
	}
	f, err := fabric.Start(context.Background(), fabric.Options{Scenario: scenario, Faults: fs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	root := t.TempDir()
	image := filepath.Join(t.TempDir(), "ovf.udf")
	if err := fabric.WriteMediaFile(image, scenario, fabric.MediaUDF); err != nil {
		t.Fatal(err)
	}
	u := f.URLs()
	writeFile(t, root, "/etc/azinit/azinit.yaml", fmt.Sprintf(
		"datasource:\n  azure:\n    wireserver: %s\n    hostgaplugin: %s\n    imds: %s\n    media: %s\n",
		u.Wireserver, u.HostGAPlugin, u.IMDS, image), 0o644)
	return &vm{root: root, fabric: f}
}

func writeFile(t testing.TB, root, name, content string, perm os.FileMode) {
	t.Helper()
	p := filepath.Join(root, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), perm); err != nil {
		t.Fatal(err)
	}
}

// azinit runs a binary with --root set, bounded, and returns its stdout,
// stderr and error.
func (v *vm) run(t testing.TB, name string, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	full := append([]string{}, args...)
	// Subcommands take the common flags after their name.
	if len(full) > 0 && name == "azinit" {
		full = append([]string{full[0], "--root", v.root}, full[1:]...)
	} else {
		full = append([]string{"--root", v.root}, full...)
	}
	cmd := exec.CommandContext(ctx, binary(name), full...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}
