package units

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/azinit/azinit/internal/testenv"
)

// The unit files: azinit's own, and the one the dracut module puts into
// the initramfs.
var unitFiles = []string{
	"azinit.target", "azinit-local.service", "azinit-network.service",
	"azinit-config.service", "azinit-final.service", "azinit-extensions.service",
	"../dracut/azinit-initrd.service",
}

// TestVerify runs systemd-analyze verify on every unit.
func TestVerify(t *testing.T) {
	units := map[string][]byte{}
	for _, u := range unitFiles {
		b, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		units[filepath.Base(u)] = b
	}
	testenv.VerifyUnits(t, units,
		"/usr/bin/azinit-local", "/usr/bin/azinit-network", "/usr/bin/azinit-config",
		"/usr/bin/azinit-final", "/usr/bin/azinit-extensions", "/bin/mount", "/bin/touch")
}

// TestDracutModule checks the dracut module's script parses and that the
// files it installs from its directory exist.
func TestDracutModule(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash is not installed")
	}
	script := filepath.Join("..", "dracut", "module-setup.sh")
	if out, err := exec.Command(bash, "-n", script).CombinedOutput(); err != nil {
		t.Errorf("bash -n %s: %v\n%s", script, err, out)
	}
	if fi, err := os.Stat(script); err != nil || fi.Mode()&0o111 == 0 {
		t.Errorf("%s must be executable: %v", script, err)
	}
	b, err := os.ReadFile(script)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range moddirFile.FindAllSubmatch(b, -1) {
		if _, err := os.Stat(filepath.Join("..", "dracut", string(m[1]))); err != nil {
			t.Errorf("module-setup.sh installs $moddir/%s: %v", m[1], err)
		}
	}
}

var moddirFile = regexp.MustCompile(`"\$moddir/([^"]+)"`)
