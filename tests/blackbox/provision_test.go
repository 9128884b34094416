package blackbox

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/azinit/azinit/datasource/azure/kvp"
	"github.com/azinit/azinit/fabric"
)

// The demo scenario's admin and keys.
const (
	demoUser       = "azureuser"
	demoCertKeyTag = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQDWqlyMROtiNuhi0jKHQaCS" // the key of the delivered certificate
)

// scenarioWithIMDSKey copies the demo scenario and adds a public key that
// only IMDS gives, so a boot sees keys from all three sources.
func scenarioWithIMDSKey(t *testing.T) (dir, imdsKey string) {
	t.Helper()
	dir = t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(demo)); err != nil {
		t.Fatal(err)
	}
	// The instance metadata the fabric makes up from the scenario.
	f, err := fabric.Start(t.Context(), fabric.Options{Scenario: dir})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(t.Context(), "GET", f.URLs().IMDS+"/metadata/instance?api-version=2021-08-01&extended=true", nil)
	req.Header.Set("Metadata", "true")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	f.Close()
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	sshPub, _ := ssh.NewPublicKey(pub)
	imdsKey = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub))) + " imds-only"
	compute := doc["compute"].(map[string]any)
	compute["publicKeys"] = append(compute["publicKeys"].([]any),
		map[string]any{"keyData": imdsKey, "path": "/home/azureuser/.ssh/authorized_keys"})
	out, _ := json.Marshal(doc)
	if err := os.WriteFile(filepath.Join(dir, "imds.json"), out, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, imdsKey
}

func TestFirstBoot(t *testing.T) {
	requireRoot(t)
	scenario, imdsKey := scenarioWithIMDSKey(t)
	m := newMachine(t, scenario)
	if failed := m.boot(); len(failed) > 0 {
		t.Fatalf("stages failed: %v", failed)
	}

	// The admin user, its password hash and sudo.
	if !strings.Contains(m.read("/etc/passwd"), demoUser+":x:1000:1000::/home/"+demoUser+":/bin/bash\n") {
		t.Errorf("no admin user in /etc/passwd:\n%s", m.read("/etc/passwd"))
	}
	if !strings.Contains(m.read("/etc/shadow"), demoUser+":$6$") {
		t.Error("no $6$ password hash in /etc/shadow")
	}
	if got := m.read("/etc/sudoers.d/waagent"); got != demoUser+" ALL=(ALL) ALL\n" {
		t.Errorf("sudoers drop-in = %q", got)
	}
	// Keys from the OVF value, the OVF fingerprint (the certificate) and IMDS.
	keys := m.read("/home/" + demoUser + "/.ssh/authorized_keys")
	for _, want := range []string{demoInlineKey, demoCertKeyTag, imdsKey} {
		if !strings.Contains(keys, want) {
			t.Errorf("authorized_keys lacks %.40s…:\n%s", want, keys)
		}
	}
	m.checkMode("/home/"+demoUser+"/.ssh/authorized_keys", 0o600)
	m.checkMode("/home/"+demoUser+"/.ssh", 0o700|fs.ModeDir)
	if got := m.read("/etc/ssh/sshd_config.d/50-azinit.conf"); !strings.Contains(got, "PasswordAuthentication yes\n") || !strings.Contains(got, "ClientAliveInterval 180\n") {
		t.Errorf("sshd drop-in:\n%s", got)
	}
	// The host name, the host keys, the instance data.
	if m.read("/etc/hostname") != "azinit-demo\n" || !strings.Contains(m.read("/etc/hosts"), "127.0.1.1\tazinit-demo") {
		t.Errorf("host name: %q, hosts:\n%s", m.read("/etc/hostname"), m.read("/etc/hosts"))
	}
	for _, typ := range []string{"ed25519", "ecdsa", "rsa"} {
		key := m.read("/etc/ssh/ssh_host_" + typ + "_key.pub")
		if _, _, _, _, err := ssh.ParseAuthorizedKey([]byte(key)); err != nil || strings.Contains(key, "IMAGEKEY") {
			t.Errorf("%s host key not regenerated: %q %v", typ, key, err)
		}
		m.checkMode("/etc/ssh/ssh_host_"+typ+"_key", 0o600)
	}
	m.checkMode("/run/azinit/instance-data.json", 0o644)
	m.checkMode("/run/azinit/instance-data-sensitive.json", 0o600)
	if strings.Contains(m.read("/run/azinit/instance-data.json"), `"custom_data":`) {
		t.Error("the redacted instance data holds the custom data")
	}
	m.checkNoSecrets()

	// Exactly one Ready, sent after the keys were in place.
	var ready []fabric.Entry
	for _, e := range m.fabric.Record() {
		if h, ok := e.Health(); ok && h.State == "Ready" {
			ready = append(ready, e)
		}
	}
	if len(ready) != 1 {
		t.Fatalf("%d Ready reports, want 1: %+v", len(ready), m.fabric.HealthReports())
	}
	fi, _ := os.Stat(filepath.Join(m.root, "home", demoUser, ".ssh", "authorized_keys"))
	if !fi.ModTime().Before(ready[0].Time) {
		t.Errorf("Ready at %v came before the keys were written at %v", ready[0].Time, fi.ModTime())
	}
	if out, _, err := m.run(t, "azinit", "status", "--wait"); err != nil || !strings.Contains(out, "provisioning:  Ready") {
		t.Errorf("azinit status --wait: %v\n%s", err, out)
	}
}

func TestSecondBootChangesNothing(t *testing.T) {
	requireRoot(t)
	m := newMachine(t, demo)
	if failed := m.boot(); len(failed) > 0 {
		t.Fatalf("first boot: %v", failed)
	}
	files := []string{"/etc/passwd", "/etc/shadow", "/home/azureuser/.ssh/authorized_keys", "/etc/ssh/ssh_host_rsa_key",
		"/etc/ssh/ssh_host_ed25519_key", "/etc/ssh/sshd_config.d/50-azinit.conf", "/etc/hostname", "/etc/sudoers.d/waagent"}
	before := m.snapshot(files)
	m.reboot()
	if failed := m.boot(); len(failed) > 0 {
		t.Fatalf("second boot: %v", failed)
	}
	after := m.snapshot(files)
	for _, f := range files {
		if before[f] != after[f] {
			t.Errorf("%s changed on the second boot", f)
		}
	}
	if n := len(m.fabric.HealthReports()); n != 1 {
		t.Errorf("%d health reports after two boots of one incarnation, want 1", n)
	}
	out, _, _ := m.run(t, "azinit", "status", "--format", "json")
	for _, module := range []string{"users", "ssh-keys", "ssh-host-keys"} {
		if !strings.Contains(out, `"name": "`+module+`",
          "frequency": "per-instance",
          "outcome": "done-before"`) {
			t.Errorf("%s ran again on the second boot", module)
		}
	}
}

func TestNewInstanceOnTheSameDisk(t *testing.T) {
	requireRoot(t)
	m := newMachine(t, demo)
	if failed := m.boot(); len(failed) > 0 {
		t.Fatalf("first boot: %v", failed)
	}
	oldHostKey := m.read("/etc/ssh/ssh_host_ed25519_key.pub")

	// The disk is attached to a new VM with another admin.
	next := t.TempDir()
	if err := os.CopyFS(next, os.DirFS(demo)); err != nil {
		t.Fatal(err)
	}
	rewrite(t, filepath.Join(next, "ovf-env.xml"), "<UserName>azureuser</UserName>", "<UserName>second</UserName>")
	rewrite(t, filepath.Join(next, "ovf-env.xml"), "/home/azureuser/", "/home/second/")
	const nextID = "0f0e0d0c-0b0a-4908-8706-050403020100"
	rewrite(t, filepath.Join(next, "scenario.yaml"), demoVMID, nextID)
	m.scenario = next
	if err := fabric.WriteMediaFile(m.image, next, fabric.MediaUDF); err != nil {
		t.Fatal(err)
	}
	m.setVMID(nextID)
	m.startFabric()
	m.reboot()
	if failed := m.boot(); len(failed) > 0 {
		t.Fatalf("new instance: %v", failed)
	}
	passwd := m.read("/etc/passwd")
	if !strings.Contains(passwd, "\nsecond:") || !strings.Contains(passwd, "\nazureuser:") {
		t.Errorf("want the new admin created and the old one kept:\n%s", passwd)
	}
	if m.read("/etc/ssh/ssh_host_ed25519_key.pub") == oldHostKey {
		t.Error("the host keys were not regenerated for the new instance")
	}
	if got := m.read("/var/lib/azinit/instance-id"); got != nextID {
		t.Errorf("instance-id = %q", got)
	}
	if hs := m.fabric.HealthReports(); len(hs) != 1 || hs[0].State != "Ready" {
		t.Errorf("the new instance's fabric recorded %+v, want one Ready", hs)
	}
}

func rewrite(t *testing.T, name, old, new string) {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil || !strings.Contains(string(b), old) {
		t.Fatalf("%s: %v (or no %q in it)", name, err, old)
	}
	if err := os.WriteFile(name, []byte(strings.ReplaceAll(string(b), old, new)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// snapshot is each file's content and modification time.
func (m *machine) snapshot(files []string) map[string]string {
	out := map[string]string{}
	for _, f := range files {
		fi, err := os.Stat(filepath.Join(m.root, f))
		if err != nil {
			m.t.Fatal(err)
		}
		out[f] = m.read(f) + fi.ModTime().String()
	}
	return out
}

func (m *machine) checkMode(name string, want fs.FileMode) {
	m.t.Helper()
	fi, err := os.Lstat(filepath.Join(m.root, name))
	if err != nil {
		m.t.Fatal(err)
	}
	if got := fi.Mode() & (fs.ModeDir | fs.ModePerm); got != want {
		m.t.Errorf("%s: mode %v, want %v", name, got, want)
	}
}

// checkNoSecrets fails if the plaintext password is in any file under the
// root, or a temporary file of an interrupted write was left behind.
func (m *machine) checkNoSecrets() {
	m.t.Helper()
	err := filepath.WalkDir(m.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if strings.Contains(d.Name(), ".azinit-") {
			m.t.Errorf("temporary file left behind: %s", p)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if strings.Contains(string(b), demoPassword) {
			m.t.Errorf("%s holds the plaintext password", p)
		}
		return nil
	})
	if err != nil {
		m.t.Fatal(err)
	}
}

// readyWithin fails unless the fabric recorded exactly one Ready within d
// of the first request.
func (m *machine) readyWithin(d time.Duration) {
	m.t.Helper()
	rec := m.fabric.Record()
	if len(rec) == 0 {
		m.t.Fatal("the fabric saw no request")
	}
	var ready []time.Time
	for _, e := range rec {
		if h, ok := e.Health(); ok && h.State == "Ready" {
			ready = append(ready, e.Time)
		}
	}
	if len(ready) != 1 {
		m.t.Fatalf("%d Ready reports: %+v", len(ready), m.fabric.HealthReports())
	}
	if took := ready[0].Sub(rec[0].Time); took > d {
		m.t.Errorf("Ready came %v after the first request, want within %v", took, d)
	}
}

func TestQueryAfterBoot(t *testing.T) {
	requireRoot(t)
	m := newMachine(t, demo)
	if failed := m.boot(); len(failed) > 0 {
		t.Fatalf("boot: %v", failed)
	}
	for key, want := range map[string]string{
		"v1.local_hostname":            "azinit-demo\n",
		"v1.username":                  "azureuser\n",
		"v1.instance_id":               demoVMID + "\n",
		"ds.ovf.has_password":          "true\n",
		"ds.goalstate.vm_name":         "_azinit-demo\n",
		"ds.certificates.0.thumbprint": "78D15AB03028D61EA100309BE54A4609167BA4FA\n",
	} {
		if out, stderr, err := m.run(t, "azinit", "query", key); err != nil || out != want {
			t.Errorf("query %s = %q, %v %s; want %q", key, out, err, stderr, want)
		}
	}
	// Root reads the sensitive view, which alone holds the custom data.
	if out, _, err := m.run(t, "azinit", "query", "ds.ovf.custom_data"); err != nil || out == "" {
		t.Errorf("custom data as root: %q, %v", out, err)
	}
	if strings.Contains(m.read("/run/azinit/instance-data.json"), `"custom_data":`) {
		t.Error("the world-readable instance data holds the custom data")
	}
}

func TestReadyOverJSON(t *testing.T) {
	requireRoot(t)
	m := newMachine(t, demo, withConfig("datasource: {azure: {health: json}}\n"))
	if failed := m.boot(); len(failed) > 0 {
		t.Fatalf("boot: %v", failed)
	}
	var paths []string
	for _, e := range m.fabric.Record() {
		if e.Kind == fabric.KindHealth {
			paths = append(paths, e.Path)
		}
	}
	if len(paths) != 1 || paths[0] != "/provisioning/health" {
		t.Errorf("health requests %q, want one to /provisioning/health", paths)
	}
	if hs := m.fabric.HealthReports(); len(hs) != 1 || hs[0].State != "Ready" {
		t.Errorf("health %+v", hs)
	}
}

func TestKVPRecords(t *testing.T) {
	requireRoot(t)
	m := newMachine(t, demo)
	if err := os.MkdirAll(filepath.Join(m.root, "var/lib/hyperv"), 0o755); err != nil {
		t.Fatal(err)
	}
	if failed := m.boot(); len(failed) > 0 {
		t.Fatalf("boot: %v", failed)
	}
	f, err := os.Open(filepath.Join(m.root, kvp.PoolPath))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	records, err := kvp.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range records {
		got[r.Key] = r.Value
	}
	if r := got["PROVISIONING_REPORT"]; !strings.HasPrefix(r, "result=success|agent=azinit/") || !strings.Contains(r, "vm_id="+demoVMID) {
		t.Errorf("PROVISIONING_REPORT = %q", r)
	}
	for _, typ := range []string{"ed25519", "ecdsa", "rsa"} {
		if fp := got["azinit|ssh-host-key|"+typ]; !strings.HasPrefix(fp, "SHA256:") {
			t.Errorf("%s host key fingerprint in KVP = %q", typ, fp)
		}
	}
}
