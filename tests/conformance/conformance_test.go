// Package conformance drives real platform clients that nobody on this
// project wrote, the Debian waagent and cloud-init packages' own protocol
// code, against azinit-fabric, so the fabric the rest of the project is
// tested against is held to what those clients accept.
package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/azinit/azinit/fabric"
	"github.com/azinit/azinit/internal/testenv"
)

const (
	python     = "/usr/bin/python3" // the system Python, which has the packages' modules
	waagentPkg = "/usr/lib/python3/dist-packages/azurelinuxagent"
	cloudPkg   = "/usr/lib/python3/dist-packages/cloudinit"
	demo       = "../../testdata/scenarios/demo"
	// The demo scenario's identity (scenario.yaml) and certificate.
	demoContainer  = "3b0f6e52-8c4a-4d7e-a1f9-5e2c7d9b0a63"
	demoInstance   = "9d2e4f60-1a3b-4c5d-8e7f-0a1b2c3d4e5f._azinit-demo"
	demoVMID       = "7a5c9a0e-3f1d-4c52-9b1e-0d6f2a8c4e11"
	demoThumbprint = "78D15AB03028D61EA100309BE54A4609167BA4FA"
)

// startFabric starts the demo fabric where the real clients expect the
// platform: wireserver on port 80 and HostGAPlugin on 32526 of one
// address. Only possible, and only safe, in a loopback-only namespace.
func startFabric(t *testing.T) *fabric.Fabric {
	t.Helper()
	testenv.RequireIsolatedNetwork(t)
	f, err := fabric.Start(t.Context(), fabric.Options{
		Scenario:           demo,
		Listen:             "127.0.0.1:80",
		HostGAPluginListen: "127.0.0.1:32526",
		IMDSListen:         "127.0.0.1:0",
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// runDriver runs a driver script with a bound and returns its JSON summary.
func runDriver(t *testing.T, script string, args ...string) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	tmp := t.TempDir()
	cmd := exec.CommandContext(ctx, python, append([]string{filepath.Join("testdata", script)}, args...)...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + tmp, "TMPDIR=" + tmp, "LANG=C.UTF-8"}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\nstderr:\n%s", script, err, stderr.String())
	}
	var summary map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &summary); err != nil {
		t.Fatalf("%s printed no summary (%v):\n%s\nstderr:\n%s", script, err, stdout.String(), stderr.String())
	}
	return summary
}

// hostPort is the host:port of a base URL.
func hostPort(t *testing.T, base string) string {
	t.Helper()
	hp := strings.TrimPrefix(base, "http://")
	if _, _, err := net.SplitHostPort(hp); err != nil {
		t.Fatalf("fabric URL %q: %v", base, err)
	}
	return hp
}

func count(f *fabric.Fabric, kind fabric.Kind) int {
	n := 0
	for _, e := range f.Record() {
		if e.Kind == kind && e.Status >= 200 && e.Status < 300 {
			n++
		}
	}
	return n
}

func TestWALinuxAgent(t *testing.T) {
	testenv.Require(t, "the Debian waagent package; .ci/run installs it", python, waagentPkg)
	f := startFabric(t)
	lib := t.TempDir()
	got := runDriver(t, "waagent_driver.py", lib, hostPort(t, f.URLs().IMDS))

	want := map[string]any{
		"incarnation":             "1",
		"container_id":            demoContainer,
		"role_instance_id":        demoInstance,
		"vm_name":                 got["vm_name"], // checked non-empty below
		"role_name":               got["role_name"],
		"deployment_name":         got["deployment_name"],
		"shared_config_bytes":     got["shared_config_bytes"],
		"certificates":            []any{map[string]any{"thumbprint": demoThumbprint, "has_private_key": true}},
		"status_upload_blob_type": "BlockBlob",
		"health":                  "sent",
		"status_hostgaplugin":     "sent",
		"status_direct":           "sent",
		"imds":                    map[string]any{"name": "azinit-demo", "location": "westeurope", "vmSize": "Standard_B2s"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("waagent's view of the fabric (-want +got):\n%s", diff)
	}
	for _, k := range []string{"vm_name", "role_name", "deployment_name"} {
		if s, _ := got[k].(string); s == "" {
			t.Errorf("%s is empty", k)
		}
	}
	if n, _ := got["shared_config_bytes"].(float64); n == 0 {
		t.Error("SharedConfig is empty")
	}
	// openssl decrypted the fabric's envelope into files extensions use.
	for _, ext := range []string{".crt", ".prv"} {
		if _, err := os.Stat(filepath.Join(lib, demoThumbprint+ext)); err != nil {
			t.Errorf("waagent did not write %s%s: %v", demoThumbprint, ext, err)
		}
	}
	wantHealth := []fabric.Health{
		{State: "NotReady", SubStatus: "Provisioning", Description: "Starting"},
		{State: "Ready"},
	}
	if diff := cmp.Diff(wantHealth, f.HealthReports()); diff != "" {
		t.Errorf("health reports recorded (-want +got):\n%s", diff)
	}
	if n := count(f, fabric.KindStatus); n != 2 {
		t.Errorf("%d status uploads recorded, want 2 (HostGAPlugin and direct)", n)
	}
}

func TestCloudInit(t *testing.T) {
	testenv.Require(t, "the Debian cloud-init package; .ci/run installs it", python, cloudPkg)
	f := startFabric(t)
	cloud := t.TempDir()
	seed := filepath.Join(cloud, "seed", "azure")
	if err := os.MkdirAll(seed, 0o700); err != nil {
		t.Fatal(err)
	}
	ovf, err := os.ReadFile(filepath.Join(demo, "ovf-env.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(seed, "ovf-env.xml"), ovf, 0o600); err != nil {
		t.Fatal(err)
	}
	// DMI's byte order for the demo VM id (Gen1 swaps the first three groups).
	got := runDriver(t, "cloudinit_driver.py", cloud, hostPort(t, f.URLs().IMDS), demoVMID)

	want := map[string]any{
		"local_hostname": "azinit-demo",
		"instance_id":    got["instance_id"],
		"imds_vm_id":     demoVMID,
		"default_user":   "azureuser",
		"negotiated":     true,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("cloud-init's view of the fabric (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]fabric.Health{{State: "Ready"}}, f.HealthReports()); diff != "" {
		t.Errorf("health reports recorded (-want +got):\n%s", diff)
	}
	if n := count(f, fabric.KindIMDS); n == 0 {
		t.Error("cloud-init never reached the fabric's IMDS")
	}
}
