package blackbox

import (
	"encoding/json"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The demo scenario's facts (testdata/scenarios/demo).
const (
	demoPassword   = "Demo-Only-Passw0rd!"
	demoVMID       = "7a5c9a0e-3f1d-4c52-9b1e-0d6f2a8c4e11"
	demoThumbprint = "78D15AB03028D61EA100309BE54A4609167BA4FA"
	demoInlineKey  = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHy4K8R/05KZKkkGK/gIHLYLXkG2iTvC1hWabCUYg4eg azureuser@azinit-demo"
)

func TestQueryFetch(t *testing.T) {
	v := newVM(t, demo)
	stdout, stderr, err := v.run(t, "azinit", "query", "--fetch")
	if err != nil {
		t.Fatalf("azinit query --fetch: %v\nstderr:\n%s", err, stderr)
	}
	for _, out := range []string{stdout, stderr} {
		if strings.Contains(out, demoPassword) {
			t.Fatalf("the admin password was printed:\n%s", out)
		}
	}
	var doc struct {
		V1 struct {
			CloudName     string   `json:"cloud_name"`
			InstanceID    string   `json:"instance_id"`
			LocalHostname string   `json:"local_hostname"`
			Region        string   `json:"region"`
			VMSize        string   `json:"vm_size"`
			Username      string   `json:"username"`
			PublicSSHKeys []string `json:"public_ssh_keys"`
		} `json:"v1"`
		DS struct {
			OVF struct {
				HasPassword   bool   `json:"has_password"`
				HasCustomData bool   `json:"has_custom_data"`
				CustomData    []byte `json:"custom_data"`
			} `json:"ovf"`
			GoalState struct {
				Incarnation string `json:"incarnation"`
				ContainerID string `json:"container_id"`
			} `json:"goalstate"`
			Certificates []struct {
				Thumbprint    string `json:"thumbprint"`
				HasPrivateKey bool   `json:"has_private_key"`
			} `json:"certificates"`
			IMDS struct {
				Compute struct {
					VMID string `json:"vmId"`
				} `json:"compute"`
			} `json:"imds"`
		} `json:"ds"`
	}
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatalf("output is not instance data: %v\n%s", err, stdout)
	}
	if got := doc.V1; got.CloudName != "azure" || got.InstanceID != demoVMID || got.LocalHostname != "azinit-demo" ||
		got.Region != "westeurope" || got.VMSize != "Standard_B2s" || got.Username != "azureuser" {
		t.Errorf("v1 = %+v", got)
	}
	// The inline key, the key given by fingerprint (from the decrypted
	// certificate), and IMDS's copy of the inline key, once.
	if len(doc.V1.PublicSSHKeys) != 2 || doc.V1.PublicSSHKeys[0] != demoInlineKey || !strings.HasPrefix(doc.V1.PublicSSHKeys[1], "ssh-rsa ") {
		t.Errorf("public_ssh_keys = %q", doc.V1.PublicSSHKeys)
	}
	ds := doc.DS
	if !ds.OVF.HasPassword || !ds.OVF.HasCustomData || !strings.HasPrefix(string(ds.OVF.CustomData), "#!/bin/sh") {
		t.Errorf("ovf = %+v", ds.OVF)
	}
	if ds.GoalState.Incarnation != "1" || ds.GoalState.ContainerID == "" || ds.IMDS.Compute.VMID != demoVMID {
		t.Errorf("goal state %+v, imds vmId %q", ds.GoalState, ds.IMDS.Compute.VMID)
	}
	if len(ds.Certificates) != 1 || ds.Certificates[0].Thumbprint != demoThumbprint || !ds.Certificates[0].HasPrivateKey {
		t.Errorf("certificates = %+v", ds.Certificates)
	}
	// A query applies nothing: the root holds only what the test put there.
	if diff := cmp.Diff([]string{"etc/azinit/azinit.yaml"}, files(t, v.root)); diff != "" {
		t.Errorf("files under the root (-want +got):\n%s", diff)
	}
}

func TestQueryFetchKey(t *testing.T) {
	v := newVM(t, demo)
	for key, want := range map[string]string{
		"v1.local_hostname":        "azinit-demo\n",
		"ds.ovf.has_password":      "true\n",
		"ds.goalstate.incarnation": "1\n",
	} {
		stdout, stderr, err := v.run(t, "azinit", "query", "--fetch", key)
		if err != nil || stdout != want {
			t.Errorf("query %s = %q, %v; want %q\nstderr:\n%s", key, stdout, err, want, stderr)
		}
	}
	stdout, _, err := v.run(t, "azinit", "query", "--fetch", "--format", "json", "v1.local_hostname")
	if err != nil || stdout != "\"azinit-demo\"\n" {
		t.Errorf("--format json = %q, %v", stdout, err)
	}
	_, stderr, err := v.run(t, "azinit", "query", "--fetch", "v1.nope")
	if err == nil || !strings.Contains(stderr, `no key "nope" under "v1"`) {
		t.Errorf("unknown key: err %v, stderr %q", err, stderr)
	}
}

// A failing source does not hide the others: the query prints what it
// got and exits non-zero with an error naming the source and the cause.
func TestQueryFetchFailingSource(t *testing.T) {
	v := newVM(t, demo, "imds:500:1000")
	writeFile(t, v.root, "/etc/azinit/azinit.yaml.d/50-deadline.yaml", "datasource: {azure: {imds_deadline: 2s}}\n", 0o644)
	stdout, stderr, err := v.run(t, "azinit", "query", "--fetch", "ds.ovf.hostname")
	if err == nil {
		t.Fatal("want a non-zero exit")
	}
	if stdout != "azinit-demo\n" {
		t.Errorf("stdout = %q, want the OVF's host name", stdout)
	}
	for _, want := range []string{"fetching instance metadata", "/metadata/instance", "HTTP 500"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not mention %q:\n%s", want, stderr)
		}
	}
}

func TestQueryWithoutCache(t *testing.T) {
	v := newVM(t, demo)
	_, stderr, err := v.run(t, "azinit", "query")
	if err == nil || !strings.Contains(stderr, "the boot stages have not run") {
		t.Errorf("err %v, stderr %q", err, stderr)
	}
}

// files lists the regular files under dir, relative to it.
func files(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out = append(out, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestStatusDisabled: when azinit-generator left azinit off this boot,
// `azinit status --wait` says so at once, exit 0, instead of waiting for
// stages that will never run.
func TestStatusDisabled(t *testing.T) {
	v := &vm{root: t.TempDir()}
	writeFile(t, v.root, "/run/azinit/generator.json",
		`{"enabled": false, "reason": "kernel command line azinit=disabled", "initrd": false, "platform": "", "masked": null, "time": "2026-11-22T14:00:00Z"}`, 0o644)
	out, stderr, err := v.run(t, "azinit", "status", "--wait")
	if err != nil || !strings.Contains(out, "disabled: kernel command line azinit=disabled") {
		t.Errorf("azinit status --wait: %v\n%s%s", err, out, stderr)
	}
	out, _, err = v.run(t, "azinit", "status", "--format", "json")
	if err != nil || !strings.Contains(out, `"state": "disabled"`) {
		t.Errorf("azinit status --format json: %v\n%s", err, out)
	}
}
