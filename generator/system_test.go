package generator

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/azinit/azinit/internal/testenv"
)

// TestBinary runs the built azinit-generator as systemd does, with three
// directories, and checks its exit codes.
func TestBinary(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("the go tool is not on the PATH")
	}
	binDir := t.TempDir()
	if err := testenv.Build(binDir, "github.com/azinit/azinit/cmd/azinit-generator"); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(binDir, "azinit-generator")
	dir := t.TempDir()
	makeTree(t, dir, azureVM(dir))
	normal, early, late := t.TempDir(), t.TempDir(), t.TempDir()
	missing := filepath.Join(t.TempDir(), "missing")

	for _, tt := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"no directories", []string{"--root", dir}, 2, "want the generator directories"},
		{"unknown flag", []string{"--rooot", dir, normal}, 2, "flag provided but not defined"},
		{"unwritable output", []string{"--root", dir, missing, early, late}, 1, "error: generator directory: target root: open " + missing},
		{"systemd's call", []string{"--root", dir, normal, early, late}, 0, `msg="azinit enabled" reason="the DMI chassis asset tag is Azure's"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			cmd := exec.Command(bin, tt.args...)
			cmd.Stderr = &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			code := 0
			if errors.As(err, &exit) {
				code = exit.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.code || !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("exit %d, stderr:\n%s\nwant exit %d and %q", code, &stderr, tt.code, tt.stderr)
			}
		})
	}
	want := map[string]string{"multi-user.target.wants/azinit.target": "-> /usr/lib/systemd/system/azinit.target"}
	if diff := cmp.Diff(want, listing(t, normal)); diff != "" {
		t.Errorf("normal directory (-want +got):\n%s", diff)
	}
	for _, d := range []string{early, late} {
		if got := listing(t, d); len(got) > 0 {
			t.Errorf("%s: %v, want nothing", d, got)
		}
	}
	st, err := ReadState(openRoot(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	if !st.Enabled || st.Platform != "azure" || st.Time.IsZero() {
		t.Errorf("%s: %+v", StatePath, st)
	}
}

// TestSystemdVerify checks that systemd accepts the drop-in on Debian's
// walinuxagent.service.
func TestSystemdVerify(t *testing.T) {
	// The Debian package's unit when it is installed (.ci/run installs it
	// as a conformance peer), else one like it.
	unitFile := []byte(golden(t, "walinuxagent.service"))
	if b, err := os.ReadFile("/lib/systemd/system/walinuxagent.service"); err == nil {
		unitFile = b
	}
	dropIn, err := WaagentDropIn(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	testenv.VerifyUnits(t, map[string][]byte{
		"walinuxagent.service":                  unitFile,
		"walinuxagent.service.d/50-azinit.conf": dropIn,
	}, "/usr/sbin/waagent")
}
