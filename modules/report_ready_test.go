package modules_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/azinit/azinit/datasource/azure"
	"github.com/azinit/azinit/fabric"
	"github.com/azinit/azinit/internal/sys"
	"github.com/azinit/azinit/modules"
	"github.com/azinit/azinit/modules/modulestest"
)

const testKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHy4K8R/05KZKkkGK/gIHLYLXkG2iTvC1hWabCUYg4eg test"

// readyEnv is an Env whose platform is a fabric serving a copy of the demo
// scenario, asking for user azureuser with testKey.
func readyEnv(t *testing.T) (*modules.Env, *fabric.Fabric, string) {
	t.Helper()
	scenario := t.TempDir()
	if err := os.CopyFS(scenario, os.DirFS("../testdata/scenarios/demo")); err != nil {
		t.Fatal(err)
	}
	f, err := fabric.Start(t.Context(), fabric.Options{Scenario: scenario})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	root := modulestest.NewRoot(t)
	data := modulestest.OVF(t, modulestest.OVFDoc("azureuser", "", "<HostName>vm1</HostName>",
		`<SSH><PublicKeys><PublicKey><Path>/home/azureuser/.ssh/authorized_keys</Path><Value>`+testKey+`</Value></PublicKey></PublicKeys></SSH>`))
	env := modulestest.Env(t, root, data)
	env.Azure = azure.Options{Root: root, Config: env.Config.Datasource.Azure}
	env.Azure.Config.Wireserver = f.URLs().Wireserver
	return env, f, scenario
}

// addUser gives the root an account, with key in its authorized_keys.
func addUser(t *testing.T, root *sys.Root, name, key string) {
	t.Helper()
	passwd := modulestest.ReadFile(t, root, "/etc/passwd") + name + ":x:1000:1000::/home/" + name + ":/bin/bash\n"
	if err := os.WriteFile(root.HostPath("/etc/passwd"), []byte(passwd), 0o644); err != nil {
		t.Fatal(err)
	}
	ssh := root.HostPath("/home/" + name + "/.ssh")
	os.MkdirAll(ssh, 0o700)
	if err := os.WriteFile(filepath.Join(ssh, "authorized_keys"), []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestReportReady(t *testing.T) {
	env, f, scenario := readyEnv(t)
	addUser(t, env.Root, "azureuser", testKey)

	out, err := modules.ReportReady{}.Apply(t.Context(), env)
	if err != nil || out != modules.Changed {
		t.Fatalf("Apply = %v, %v", out, err)
	}
	if hs := f.HealthReports(); len(hs) != 1 || hs[0].State != "Ready" {
		t.Fatalf("health reports = %+v, want one Ready", hs)
	}
	kvp := env.KVP.(*modulestest.KVP).Records["PROVISIONING_REPORT"]
	if !strings.HasPrefix(kvp, "result=success|agent=azinit/") || !strings.Contains(kvp, "|vm_id="+env.Instance.ID+"|") {
		t.Errorf("KVP report = %q", kvp)
	}
	if got := modulestest.ReadFile(t, env.Root, azure.LibDir+"/provisioned"); got != env.Instance.ID {
		t.Errorf("/var/lib/waagent/provisioned = %q", got)
	}

	// The same incarnation again: nothing sent.
	if out, err := (modules.ReportReady{}).Apply(t.Context(), env); err != nil || out != modules.Unchanged {
		t.Errorf("second Apply = %v, %v", out, err)
	}
	if n := len(f.HealthReports()); n != 1 {
		t.Errorf("%d health reports after the second Apply, want 1", n)
	}

	// A new incarnation is reported once more.
	settings := filepath.Join(scenario, "scenario.yaml")
	b, err := os.ReadFile(settings)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(settings, []byte(strings.Replace(string(b), "westeurope", "northeurope", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := f.Reload(); err != nil {
		t.Fatal(err)
	}
	env.Data.GoalState = nil // the stage fetches the new goal state
	if out, err := (modules.ReportReady{}).Apply(t.Context(), env); err != nil || out != modules.Changed {
		t.Errorf("after a new incarnation: %v, %v", out, err)
	}
	if hs := f.HealthReports(); len(hs) != 2 {
		t.Errorf("health reports = %+v, want a second Ready", hs)
	}
}

func TestReportProvisioningFailed(t *testing.T) {
	for _, tc := range []struct {
		name, reason string
		setup        func(*testing.T, *modules.Env)
	}{
		{"user missing", "the admin user azureuser was not created", func(*testing.T, *modules.Env) {}},
		{"no key installed", "no password and no SSH key were installed for azureuser", func(t *testing.T, env *modules.Env) {
			addUser(t, env.Root, "azureuser", "ssh-ed25519 AAAAsomeotherkey user-added")
		}},
		// The admin can log in (IMDS named them), but the media's
		// request is unknown.
		{"invalid ovf-env.xml", "the provisioning media's ovf-env.xml is invalid", func(t *testing.T, env *modules.Env) {
			addUser(t, env.Root, "azureuser", testKey)
			env.Data.InvalidOVF = "/dev/sr0: ovf-env.xml is not well-formed XML: line 18, column 24: unexpected EOF"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, f, _ := readyEnv(t)
			tc.setup(t, env)
			env.Failures = func() []modules.Failure {
				return []modules.Failure{{Stage: "network", What: "users: user name | odd"}}
			}
			if _, err := (modules.ReportReady{}).Apply(t.Context(), env); err != nil {
				t.Fatal(err)
			}
			hs := f.HealthReports()
			if len(hs) != 1 || hs[0].State != "NotReady" || hs[0].SubStatus != "ProvisioningFailed" {
				t.Fatalf("health reports = %+v", hs)
			}
			d := hs[0].Description
			for _, want := range []string{"result=error|reason=" + tc.reason, "(users: user name / odd)", "|documentation_url=https://aka.ms/linuxprovisioningerror"} {
				if !strings.Contains(d, want) {
					t.Errorf("description %q lacks %q", d, want)
				}
			}
			if got := env.KVP.(*modulestest.KVP).Records["PROVISIONING_REPORT"]; got != d {
				t.Errorf("KVP report %q differs from the health description", got)
			}
			if _, err := env.Root.Stat(azure.LibDir + "/provisioned"); err == nil {
				t.Error("a failed provisioning wrote WALinuxAgent's provisioned marker")
			}
		})
	}
}
