package blackbox

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/azinit/azinit/internal/udf"
)

// statusErrors are the errors azinit status reports.
func (m *machine) statusErrors() string {
	m.t.Helper()
	out, _, _ := m.run(m.t, "azinit", "status")
	return out
}

// demoOVF is the demo scenario's ovf-env.xml with old replaced by new.
func demoOVF(t *testing.T, old, new string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(demo, "ovf-env.xml"))
	if err != nil || !strings.Contains(string(b), old) {
		t.Fatalf("demo ovf-env.xml: %v (or no %q)", err, old)
	}
	return strings.Replace(string(b), old, new, 1)
}

func TestBadInput(t *testing.T) {
	requireRoot(t)
	tests := []struct {
		name string
		opts []machineOption
		// ready: the admin can still log in (IMDS or other keys), so Ready;
		// otherwise ProvisioningFailed with reason in its description.
		ready  bool
		reason string
		errors []string // in azinit status
	}{
		{
			// IMDS names the admin, who can log in, but what the media
			// asked for is unknown: provisioning failed.
			name:   "malformed OVF, IMDS provisions",
			opts:   []machineOption{withOVF(demoOVF(t, "</Environment>", "</Environmen"))},
			reason: "the provisioning media's ovf-env.xml is invalid",
			errors: []string{"reading provisioning media", "ovf-env.xml is not well-formed XML"},
		},
		{
			name: "malformed OVF and IMDS down",
			opts: []machineOption{withOVF(demoOVF(t, "</Environment>", "</Environmen")),
				withFaults("imds:503:1000"), withConfig("datasource: {azure: {imds_deadline: 1s}}\n")},
			reason: "the provisioning media's ovf-env.xml is invalid",
			errors: []string{"ovf-env.xml is not well-formed XML", "fetching instance metadata", "HTTP 503"},
		},
		{
			name:   "missing OVF, IMDS provisions",
			opts:   []machineOption{withMediaFiles(udf.File{Name: "README.txt", Data: []byte("not provisioning media")})},
			ready:  true,
			errors: []string{"no ovf-env.xml on the media"},
		},
		{
			name:   "bad user name",
			opts:   []machineOption{withScenarioOVF(t, "<UserName>azureuser</UserName>", "<UserName>Bad User</UserName>")},
			reason: "the admin user Bad User was not created",
			errors: []string{"users:", "Bad User"},
		},
		{
			name: "key path outside the home",
			opts: []machineOption{withOVF(demoOVF(t,
				"<Path>/home/azureuser/.ssh/authorized_keys</Path>\n            <Value>",
				"<Path>/etc/ssh/sshd_config</Path>\n            <Value>"))},
			ready:  true,
			errors: []string{"ssh-keys:", "/etc/ssh/sshd_config"},
		},
		{
			name:   "undecryptable certificates",
			opts:   []machineOption{withFaults("certificates:garbage:2")},
			ready:  true,
			errors: []string{"certificates:", "parsing"},
		},
		{
			name:   "unreachable IMDS",
			opts:   []machineOption{withFaults("imds:503:1000"), withConfig("datasource: {azure: {imds_deadline: 1s}}\n")},
			ready:  true,
			errors: []string{"fetching instance metadata", "HTTP 503"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMachine(t, demo, tt.opts...)
			failed := m.boot()
			if _, ok := failed["azinit-network"]; !ok && !strings.Contains(fmt.Sprint(failed), "azinit-local") {
				t.Errorf("no stage reported the failure: %v", failed)
			}
			status := m.statusErrors()
			for _, want := range tt.errors {
				if !strings.Contains(status, want) {
					t.Errorf("azinit status does not say %q:\n%s", want, status)
				}
			}
			hs := m.fabric.HealthReports()
			switch {
			case len(hs) != 1:
				t.Errorf("health reports %+v, want one", hs)
			case tt.ready && hs[0].State != "Ready":
				t.Errorf("reported %+v, want Ready (the admin can log in)", hs[0])
			case !tt.ready && (hs[0].SubStatus != "ProvisioningFailed" || !strings.Contains(hs[0].Description, "reason="+tt.reason)):
				t.Errorf("reported %+v, want ProvisioningFailed saying %q", hs[0], tt.reason)
			}
			m.checkNoSecrets()
			if strings.Contains(m.read("/etc/ssh/sshd_config"), "ssh-ed25519") {
				t.Error("a key was written outside the admin's home")
			}
		})
	}
}

// withMediaFiles puts files instead of the scenario's on the media.
func withMediaFiles(files ...udf.File) machineOption {
	return func(m *machine) {
		var b strings.Builder
		if err := udf.Write(&b, "CDROM", files, udf.WriteOptions{}); err != nil {
			m.t.Fatal(err)
		}
		if err := os.WriteFile(m.image, []byte(b.String()), 0o600); err != nil {
			m.t.Fatal(err)
		}
	}
}

// withScenarioOVF changes the scenario's ovf-env.xml (so IMDS, made up
// from it, says the same) and the media.
func withScenarioOVF(t *testing.T, old, new string) machineOption {
	return func(m *machine) {
		dir := t.TempDir()
		if err := os.CopyFS(dir, os.DirFS(m.scenario)); err != nil {
			t.Fatal(err)
		}
		rewrite(t, filepath.Join(dir, "ovf-env.xml"), old, new)
		m.scenario = dir
		withOVF(demoOVF(t, old, new))(m)
	}
}

// TestFaultsOnTheProvisioningPath injects each fault into every request
// the boot makes, once: Ready must still arrive, within a bound.
func TestFaultsOnTheProvisioningPath(t *testing.T) {
	requireRoot(t)
	kinds := []string{"versions", "goalstate", "hostingenv", "sharedconfig", "extensionsconfig", "certificates", "imds", "health"}
	for _, action := range []string{"410", "429", "503", "timeout", "reset"} {
		t.Run(action, func(t *testing.T) {
			var faults []string
			for _, k := range kinds {
				faults = append(faults, k+":"+action+":1")
			}
			m := newMachine(t, demo, withFaults(faults...))
			m.boot()
			// Each held request costs one attempt (request_timeout 1s).
			m.readyWithin(time.Duration(len(kinds)+5) * time.Second)
			if !strings.Contains(m.read("/home/azureuser/.ssh/authorized_keys"), demoCertKeyTag) {
				t.Error("the key given by fingerprint is missing")
			}
		})
	}
}
