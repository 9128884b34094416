package units

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

var unitFiles = []string{
	"azinit.target", "azinit-local.service", "azinit-network.service",
	"azinit-config.service", "azinit-final.service", "azinit-extensions.service",
}

// TestVerify runs systemd-analyze verify on every unit, in a throwaway
// root holding the system's units, the azinit units and stand-ins for
// the binaries, so nothing on this machine is touched.
func TestVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed (apt-get install systemd)")
	}
	root := t.TempDir()
	if err := os.CopyFS(filepath.Join(root, "usr/lib/systemd"), os.DirFS("/usr/lib/systemd")); err != nil {
		t.Skipf("copying the system's units: %v", err)
	}
	system := filepath.Join(root, "etc/systemd/system")
	for _, d := range []string{system, filepath.Join(root, "usr/bin")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range unitFiles {
		b, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(system, u), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, b := range []string{"azinit-local", "azinit-network", "azinit-config", "azinit-final", "azinit-extensions"} {
		if err := os.WriteFile(filepath.Join(root, "usr/bin", b), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command(analyze, append([]string{"verify", "--root=" + root}, unitFiles...)...).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
