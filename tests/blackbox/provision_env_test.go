package blackbox

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/azinit/azinit/fabric"
	"github.com/azinit/azinit/internal/udf"
	"github.com/azinit/azinit/modules/modulestest"
)

// machine is a VM for provisioning tests: a root holding the base image,
// the host's sysfs faked to give its identity, a fabric serving a
// scenario, and provisioning media.
type machine struct {
	*vm
	t        testing.TB
	scenario string
	sysfs    string
	image    string
	faults   []string
	extra    string // a configuration drop-in
}

// machineOption changes a machine before it boots.
type machineOption func(*machine)

// withOVF puts doc on the media instead of the scenario's ovf-env.xml.
func withOVF(doc string) machineOption {
	return func(m *machine) {
		var b strings.Builder
		if err := udf.Write(&b, "CDROM", []udf.File{{Name: "ovf-env.xml", Data: []byte(doc)}}, udf.WriteOptions{}); err != nil {
			m.t.Fatal(err)
		}
		if err := os.WriteFile(m.image, []byte(b.String()), 0o600); err != nil {
			m.t.Fatal(err)
		}
	}
}

// withFaults has the fabric inject faults.
func withFaults(faults ...string) machineOption {
	return func(m *machine) { m.faults = append(m.faults, faults...) }
}

// withConfig adds a configuration drop-in, which overrides the main file.
func withConfig(yaml string) machineOption { return func(m *machine) { m.extra += yaml } }

// newMachine is a machine for scenario, never booted.
func newMachine(t testing.TB, scenario string, opts ...machineOption) *machine {
	t.Helper()
	m := &machine{t: t, scenario: scenario, sysfs: t.TempDir(), image: filepath.Join(t.TempDir(), "ovf.udf")}
	if err := fabric.WriteMediaFile(m.image, scenario, fabric.MediaUDF); err != nil {
		t.Fatal(err)
	}
	m.setVMID(demoVMID)
	for _, o := range opts {
		o(m)
	}
	m.vm = &vm{root: t.TempDir()}
	modulestest.CopyImage(t, m.root)
	if m.extra != "" {
		writeFile(t, m.root, "/etc/azinit/azinit.yaml.d/50-test.yaml", m.extra, 0o644)
	}
	m.startFabric()
	return m
}

func (m *machine) setVMID(id string) {
	dir := filepath.Join(m.sysfs, "class/dmi/id")
	os.MkdirAll(dir, 0o755)
	os.MkdirAll(filepath.Join(m.sysfs, "firmware/efi"), 0o755)
	if err := os.WriteFile(filepath.Join(dir, "product_uuid"), []byte(strings.ToUpper(id)+"\n"), 0o444); err != nil {
		m.t.Fatal(err)
	}
}

// startFabric (re)starts the fabric and points the configuration at it.
// Retries wait milliseconds, not seconds, and attempts are bounded, so a
// fault costs little time.
func (m *machine) startFabric() {
	fs, err := fabric.ParseFaults(m.faults)
	if err != nil {
		m.t.Fatal(err)
	}
	if m.fabric != nil {
		m.fabric.Close()
	}
	f, err := fabric.Start(context.Background(), fabric.Options{Scenario: m.scenario, Faults: fs})
	if err != nil {
		m.t.Fatal(err)
	}
	m.t.Cleanup(func() { f.Close() })
	m.fabric = f
	u := f.URLs()
	writeFile(m.t, m.root, "/etc/azinit/azinit.yaml", fmt.Sprintf(`datasource:
  azure:
    wireserver: %s
    hostgaplugin: %s
    imds: %s
    media: %s
    media_wait: 0s
    sysfs: %s
    retry_unit: 5ms
    request_timeout: 1s
    imds_deadline: 10s
`, u.Wireserver, u.HostGAPlugin, u.IMDS, m.image, m.sysfs), 0o644)
}

// stageBinaries are the boot stages in order.
var stageBinaries = []string{"azinit-local", "azinit-network", "azinit-config", "azinit-final"}

// boot runs the four stages and returns what each said on stderr when it
// failed.
func (m *machine) boot() map[string]string {
	m.t.Helper()
	failed := map[string]string{}
	for _, b := range stageBinaries {
		if _, stderr, err := m.run(m.t, b); err != nil {
			failed[b] = fmt.Sprintf("%v\n%s", err, stderr)
		}
	}
	return failed
}

// reboot forgets what /run held, as a reboot does.
func (m *machine) reboot() {
	if err := os.RemoveAll(filepath.Join(m.root, "run")); err != nil {
		m.t.Fatal(err)
	}
}

func (m *machine) read(name string) string {
	m.t.Helper()
	b, err := os.ReadFile(filepath.Join(m.root, name))
	if err != nil {
		m.t.Fatal(err)
	}
	return string(b)
}

// requireRoot skips tests that create accounts: useradd --prefix must
// chown the new home directory.
func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("provisioning creates accounts with useradd --prefix, which needs root; run `make test` as root")
	}
	for _, tool := range []string{"useradd", "usermod", "ssh-keygen"} {
		if _, err := lookPath(tool); err != nil {
			t.Skipf("%s is not installed: %v", tool, err)
		}
	}
}
