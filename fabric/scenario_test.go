package fabric

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/azinit/azinit/internal/fixtures"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

func TestLoadScenarioDemo(t *testing.T) {
	s, err := LoadScenario(filepath.Join("..", "testdata", "scenarios", "demo"))
	if err != nil {
		t.Fatal(err)
	}
	want := Settings{
		VMID:           "7a5c9a0e-3f1d-4c52-9b1e-0d6f2a8c4e11",
		ContainerID:    "3b0f6e52-8c4a-4d7e-a1f9-5e2c7d9b0a63",
		RoleInstanceID: "9d2e4f60-1a3b-4c5d-8e7f-0a1b2c3d4e5f._azinit-demo",
		Incarnation:    1,
		Location:       "westeurope",
		VMSize:         "Standard_B2s",
		VMName:         "azinit-demo",
		SubscriptionID: "0c9e8d7f-6a5b-4c3d-9e2f-1a0b9c8d7e6f",
		ResourceGroup:  "azinit-demo-rg",
	}
	if diff := cmp.Diff(want, s.Settings); diff != "" {
		t.Errorf("settings (-want +got):\n%s", diff)
	}
	if s.Env.HostName != "azinit-demo" || s.Env.UserName != "azureuser" || !s.Env.HasPassword() || !s.Env.HasCustomData() {
		t.Errorf("ovf-env.xml: host %q user %q password %v custom data %v", s.Env.HostName, s.Env.UserName, s.Env.HasPassword(), s.Env.HasCustomData())
	}
	if !strings.HasPrefix(string(s.Env.CustomData()), "#!/bin/sh\n") {
		t.Errorf("custom data is not a #!/bin/sh script: %.20q", s.Env.CustomData())
	}
	if len(s.Certificates) != 1 || len(s.Raw) != 0 || len(s.Blobs) != 0 || s.IMDS != nil {
		t.Errorf("got %d certificates, %d raw documents, %d blobs, imds.json %v; want 1, 0, 0, none",
			len(s.Certificates), len(s.Raw), len(s.Blobs), s.IMDS != nil)
	}
}

// minimalScenario is a scenario directory holding only the demo's
// ovf-env.xml with the host name replaced.
func minimalScenario(t *testing.T, hostName string) string {
	t.Helper()
	ovfEnv, err := os.ReadFile(filepath.Join("..", "testdata", "scenarios", "demo", "ovf-env.xml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "ovf-env.xml"), strings.ReplaceAll(string(ovfEnv), "azinit-demo", hostName))
	return dir
}

func writeFile(t *testing.T, name, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestScenarioDefaultsAreDerived(t *testing.T) {
	load := func(dir string) Settings {
		s, err := LoadScenario(dir)
		if err != nil {
			t.Fatal(err)
		}
		return s.Settings
	}
	a, again, b := load(minimalScenario(t, "vm-a")), load(minimalScenario(t, "vm-a")), load(minimalScenario(t, "vm-b"))
	if diff := cmp.Diff(a, again); diff != "" {
		t.Errorf("the same scenario got different settings (-first +second):\n%s", diff)
	}
	if a.VMName != "vm-a" || a.Incarnation != 1 || a.Location == "" || a.VMSize == "" || a.ResourceGroup == "" ||
		!strings.HasSuffix(a.RoleInstanceID, "._vm-a") {
		t.Errorf("defaults: %+v", a)
	}
	if a.VMID == b.VMID || a.ContainerID == b.ContainerID || a.SubscriptionID == b.SubscriptionID {
		t.Errorf("different VMs share ids: %+v and %+v", a, b)
	}
}

func TestLoadScenarioErrors(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  []string // in the error
	}{
		{"unknown key", map[string]string{"scenario.yaml": "vm_id: x\nvm_sise: big\n"}, []string{"scenario.yaml", "vm_sise"}},
		{"bad value", map[string]string{"scenario.yaml": "incarnation: many\n"}, []string{"scenario.yaml", "many"}},
		{"negative incarnation", map[string]string{"scenario.yaml": "incarnation: -1\n"}, []string{"scenario.yaml", "incarnation"}},
		{"unknown raw document", map[string]string{"raw/goal_state.xml": "<GoalState/>"}, []string{"raw/goal_state.xml"}},
		{"bad imds.json", map[string]string{"imds.json": "{"}, []string{"imds.json"}},
		{"bad ovf-env.xml", map[string]string{"ovf-env.xml": "<Environment/>"}, []string{"ovf-env.xml"}},
		{"bad raw goal state", map[string]string{"raw/goalstate.xml": "<GoalState><Incarnation>1</Incarnation></GoalState>"}, []string{"raw/goalstate.xml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := minimalScenario(t, "vm")
			for name, content := range tt.files {
				writeFile(t, filepath.Join(dir, name), content)
			}
			s, err := LoadScenario(dir)
			if err == nil {
				// Some problems show only once the documents are built.
				_, err = buildState(s, 1, Addrs{"http://127.0.0.1:1", "http://127.0.0.1:2", "http://127.0.0.1:3"})
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
		})
	}
	if _, err := LoadScenario(t.TempDir()); err == nil || !strings.Contains(err.Error(), "ovf-env.xml") {
		t.Errorf("scenario without ovf-env.xml: %v", err)
	}
}

// TestGoldenDocuments pins the generated documents of the demo scenario.
// Run with -update to rewrite them.
func TestGoldenDocuments(t *testing.T) {
	s, err := LoadScenario(filepath.Join("..", "testdata", "scenarios", "demo"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := buildState(s, 1, Addrs{"http://127.0.0.1:8080", "http://127.0.0.1:32526", "http://127.0.0.1:8081"})
	if err != nil {
		t.Fatal(err)
	}
	imds, err := json.MarshalIndent(st.imds, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string][]byte{
		"versions.xml":         st.versions,
		"goalstate.xml":        st.goalState,
		"hostingenv.xml":       st.hostingEnv,
		"sharedconfig.xml":     st.sharedConfig,
		"extensionsconfig.xml": st.extensionsConfig,
		"imds.json":            append(imds, '\n'),
	} {
		checkGolden(t, name, got)
	}
}

// checkGolden compares got with the golden file testdata/golden/name, or
// rewrites it with -update.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	golden := filepath.Join("testdata", "golden", name)
	if *update {
		writeFile(t, golden, string(got))
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s (-want +got):\n%s", name, diff)
	}
}

func FuzzParseSettings(f *testing.F) {
	f.Add([]byte("vm_id: x\nincarnation: 3\n"))
	f.Add([]byte("vm_sise: big\n"))
	f.Add([]byte("- a\n- b\n"))
	f.Add([]byte("incarnation: -2\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := parseSettings(b, "scenario.yaml")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "scenario.yaml: ") {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		if s.Incarnation < 0 {
			t.Fatalf("negative incarnation %d accepted", s.Incarnation)
		}
	})
}

func FuzzParseGoalStateIDs(f *testing.F) {
	f.Add(fixtures.Read(f, "wire/goal_state.xml"))
	f.Add(fixtures.Read(f, "wire/goal_state_no_ext.xml"))
	f.Add([]byte(`<GoalState><Incarnation>1</Incarnation><Container><ContainerId>c</ContainerId><RoleInstanceList><RoleInstance><InstanceId>i</InstanceId></RoleInstance></RoleInstanceList></Container></GoalState>`))
	f.Add([]byte(`<GoalState/>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ids, err := parseGoalStateIDs(b)
		if err == nil && (ids.Incarnation == "" || ids.ContainerID == "" || ids.InstanceID == "") {
			t.Fatalf("incomplete ids accepted: %+v", ids)
		}
	})
}
