package modules_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/ssh"

	"github.com/azinit/azinit/datasource/azure"
	"github.com/azinit/azinit/datasource/azure/ovf"
	"github.com/azinit/azinit/internal/sys"
	"github.com/azinit/azinit/modules"
	"github.com/azinit/azinit/modules/modulestest"
)

// hostKeysEnv is an offline environment over the base image, for VM vm1,
// whose Defer records the names of the jobs it runs (at once).
func hostKeysEnv(t testing.TB) (*modules.Env, *[]string) {
	t.Helper()
	env := modulestest.Env(t, modulestest.NewRoot(t), &azure.Data{OVF: &ovf.Environment{HostName: "vm1", UserName: "bob"}})
	var jobs []string
	run := env.Defer
	env.Defer = func(name string, fn func(context.Context) error) {
		jobs = append(jobs, name)
		run(name, fn)
	}
	return env, &jobs
}

// needKeygen skips the test without ssh-keygen.
func needKeygen(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		t.Skip("ssh-keygen is not installed:", err)
	}
}

// TestSSHHostKeysRegenerate runs the real ssh-keygen into the temp root.
func TestSSHHostKeysRegenerate(t *testing.T) {
	needKeygen(t)
	env, jobs := hostKeysEnv(t)
	env.Run = &modulestest.Runner{Exec: true}
	placeholder := modulestest.ReadFile(t, env.Root, "/etc/ssh/ssh_host_rsa_key")
	// Types not configured go too, certificates with them.
	for _, name := range []string{"/etc/ssh/ssh_host_dsa_key", "/etc/ssh/ssh_host_dsa_key.pub", "/etc/ssh/ssh_host_rsa_key-cert.pub"} {
		if err := env.Root.WriteFileAtomic(name, []byte("image\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	env.Live = true // for the console, a file in the root
	if err := env.Root.MkdirAll("/dev", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := env.Root.WriteFileAtomic("/dev/console", nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// Under systemd's UMask=0077, ssh-keygen writes .pub 0600.
	defer syscall.Umask(syscall.Umask(0o077))
	got, err := modules.SSHHostKeys{}.Apply(t.Context(), env)
	if err != nil || got != modules.Changed {
		t.Fatalf("Apply = %q, %v", got, err)
	}
	if diff := cmp.Diff([]string{"generate"}, *jobs); diff != "" {
		t.Errorf("deferred jobs (-want +got):\n%s", diff)
	}
	names, err := env.Root.Glob("/etc/ssh/ssh_host_*")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/etc/ssh/ssh_host_ecdsa_key", "/etc/ssh/ssh_host_ecdsa_key.pub", "/etc/ssh/ssh_host_ed25519_key",
		"/etc/ssh/ssh_host_ed25519_key.pub", "/etc/ssh/ssh_host_rsa_key", "/etc/ssh/ssh_host_rsa_key.pub"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("host key files (-want +got):\n%s", diff)
	}
	records := env.KVP.(*modulestest.KVP).Records
	console := "-----BEGIN SSH HOST KEY FINGERPRINTS-----\n"
	for _, typ := range []string{"ed25519", "ecdsa", "rsa"} {
		name := "/etc/ssh/ssh_host_" + typ + "_key"
		prv := modulestest.ReadFile(t, env.Root, name)
		if prv == placeholder || !strings.HasPrefix(prv, "-----BEGIN OPENSSH PRIVATE KEY-----") {
			t.Errorf("%s is not a new private key", name)
		}
		signer, err := ssh.ParsePrivateKey([]byte(prv))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		pk, comment, _, _, err := ssh.ParseAuthorizedKey([]byte(modulestest.ReadFile(t, env.Root, name+".pub")))
		if err != nil || comment != "vm1" || string(pk.Marshal()) != string(signer.PublicKey().Marshal()) {
			t.Errorf("%s.pub: comment %q, %v; or not the private key's", name, comment, err)
			continue
		}
		if m := modulestest.Mode(t, env.Root, name); m != 0o600 {
			t.Errorf("%s mode %v", name, m)
		}
		if m := modulestest.Mode(t, env.Root, name+".pub"); m != 0o644 {
			t.Errorf("%s.pub mode %v", name, m)
		}
		if got, want := records[modules.HostKeyKVPPrefix+typ], ssh.FingerprintSHA256(pk); got != want {
			t.Errorf("KVP %s = %q, want %q", typ, got, want)
		}
		line, err := exec.Command("ssh-keygen", "-lf", env.Root.HostPath(name+".pub")).Output()
		if err != nil {
			t.Fatal(err)
		}
		console += string(line)
	}
	console += "-----END SSH HOST KEY FINGERPRINTS-----\n"
	if diff := cmp.Diff(console, modulestest.ReadFile(t, env.Root, "/dev/console")); diff != "" {
		t.Errorf("console, against ssh-keygen -lf (-want +got):\n%s", diff)
	}
}

// fakeKeygen answers ssh-keygen by writing a fixed key pair where -f says,
// and records the arguments.
type fakeKeygen struct {
	mu   sync.Mutex
	args [][]string
	fail string // the -t value that fails
}

func (k *fakeKeygen) run(c sys.Command) (sys.Result, error) {
	k.mu.Lock()
	k.args = append(k.args, c.Args)
	k.mu.Unlock()
	typ, file := c.Args[slices.Index(c.Args, "-t")+1], c.Args[slices.Index(c.Args, "-f")+1]
	if typ == k.fail {
		return sys.Result{}, &sys.ExitError{Command: c.String(), Code: 1, Stderr: "no"}
	}
	if err := os.WriteFile(file, []byte("private\n"), 0o600); err != nil {
		return sys.Result{}, err
	}
	return sys.Result{}, os.WriteFile(file+".pub", ssh.MarshalAuthorizedKey(fakeHostKey()), 0o600)
}

// fakeHostKey is the public key fakeKeygen writes.
func fakeHostKey() ssh.PublicKey {
	pk, _ := ssh.NewPublicKey(ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)).Public())
	return pk
}

func TestSSHHostKeysCommands(t *testing.T) {
	env, jobs := hostKeysEnv(t)
	keygen := &fakeKeygen{}
	env.Run = &modulestest.Runner{Respond: keygen.run}
	// Live, the fingerprints go to the root's /dev/console: a file here.
	env.Live = true
	if err := env.Root.MkdirAll("/dev", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := env.Root.WriteFileAtomic("/dev/console", nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := (modules.SSHHostKeys{}).Apply(t.Context(), env); err != nil || got != modules.Changed {
		t.Fatalf("Apply = %q, %v", got, err)
	}
	etc := env.Root.HostPath("/etc/ssh")
	want := [][]string{
		{"-q", "-N", "", "-t", "ecdsa", "-C", "vm1", "-f", etc + "/ssh_host_ecdsa_key"},
		{"-q", "-N", "", "-t", "ed25519", "-C", "vm1", "-f", etc + "/ssh_host_ed25519_key"},
		{"-q", "-N", "", "-t", "rsa", "-C", "vm1", "-f", etc + "/ssh_host_rsa_key"},
	}
	slices.SortFunc(keygen.args, func(a, b []string) int { return strings.Compare(a[4], b[4]) }) // they run in parallel
	if diff := cmp.Diff(want, keygen.args); diff != "" {
		t.Errorf("ssh-keygen arguments (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"generate"}, *jobs); diff != "" {
		t.Errorf("deferred jobs (-want +got):\n%s", diff)
	}
	fp := ssh.FingerprintSHA256(fakeHostKey())
	line := "256 " + fp + " no comment (ED25519)\n"
	wantConsole := "-----BEGIN SSH HOST KEY FINGERPRINTS-----\n" + line + line + line + "-----END SSH HOST KEY FINGERPRINTS-----\n"
	if diff := cmp.Diff(wantConsole, modulestest.ReadFile(t, env.Root, "/dev/console")); diff != "" {
		t.Errorf("console (-want +got):\n%s", diff)
	}
	wantKVP := map[string]string{"azinit|ssh-host-key|ed25519": fp, "azinit|ssh-host-key|ecdsa": fp, "azinit|ssh-host-key|rsa": fp}
	if diff := cmp.Diff(wantKVP, env.KVP.(*modulestest.KVP).Records); diff != "" {
		t.Errorf("KVP (-want +got):\n%s", diff)
	}
	if m := modulestest.Mode(t, env.Root, "/etc/ssh/ssh_host_rsa_key.pub"); m != 0o644 {
		t.Errorf("rsa .pub mode %v", m)
	}
}

func TestSSHHostKeysNoRSA(t *testing.T) {
	env, jobs := hostKeysEnv(t)
	keygen := &fakeKeygen{}
	env.Run = &modulestest.Runner{Respond: keygen.run}
	env.Config.SSHHostKeys.Types = []string{"ed25519", "ed25519"}
	env.KVP = nil
	if got, err := (modules.SSHHostKeys{}).Apply(t.Context(), env); err != nil || got != modules.Changed {
		t.Fatalf("Apply = %q, %v", got, err)
	}
	if len(keygen.args) != 1 || len(*jobs) != 1 {
		t.Errorf("ssh-keygen runs %q, deferred jobs %q", keygen.args, *jobs)
	}
}

func TestSSHHostKeysFails(t *testing.T) {
	for _, typ := range []string{"ecdsa", "rsa"} {
		env, _ := hostKeysEnv(t)
		env.Run = &modulestest.Runner{Respond: (&fakeKeygen{fail: typ}).run}
		var deferred error
		env.Defer = func(name string, fn func(context.Context) error) { deferred = fn(t.Context()) }
		if got, err := (modules.SSHHostKeys{}).Apply(t.Context(), env); err != nil || got != modules.Changed {
			t.Fatalf("Apply = %q, %v", got, err)
		}
		var exit *sys.ExitError
		if !errors.As(deferred, &exit) || !strings.Contains(deferred.Error(), "generating the "+typ+" host key: ssh-keygen -q -N  -t "+typ) {
			t.Errorf("deferred generation: %v", deferred)
		}
	}
}

func TestSSHHostKeysNotAsked(t *testing.T) {
	env, _ := hostKeysEnv(t)
	run := &modulestest.Runner{}
	env.Run = run
	env.Config.SSHHostKeys.Regenerate = false
	before := modulestest.ReadFile(t, env.Root, "/etc/ssh/ssh_host_ed25519_key")
	if got, err := (modules.SSHHostKeys{}).Apply(t.Context(), env); err != nil || got != modules.Skipped {
		t.Fatalf("Apply = %q, %v", got, err)
	}
	if modulestest.ReadFile(t, env.Root, "/etc/ssh/ssh_host_ed25519_key") != before || len(run.Commands()) != 0 {
		t.Errorf("host keys touched: commands %q", run.Commands())
	}
}

// BenchmarkSSHHostKeys generates the fast host keys with the real
// ssh-keygen, in parallel as the module does.
func BenchmarkSSHHostKeys(b *testing.B) {
	needKeygen(b)
	env, _ := hostKeysEnv(b)
	env.Run = &modulestest.Runner{Exec: true}
	env.Config.SSHHostKeys.Types = []string{"ed25519", "ecdsa"}
	for b.Loop() {
		if _, err := (modules.SSHHostKeys{}).Apply(b.Context(), env); err != nil {
			b.Fatal(err)
		}
	}
}
