// Package modulestest builds module environments for tests: a target root
// copied from the base image testdata/rootfs/debian, a runner that records
// commands (and runs them when asked), and a kernel that records calls.
package modulestest

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/azinit/azinit/datasource/azure"
	"github.com/azinit/azinit/datasource/azure/media"
	"github.com/azinit/azinit/datasource/azure/ovf"
	"github.com/azinit/azinit/internal/config"
	"github.com/azinit/azinit/internal/crypt"
	"github.com/azinit/azinit/internal/logging"
	"github.com/azinit/azinit/internal/sys"
	"github.com/azinit/azinit/modules"
)

// modes are the base image's files whose mode matters (git keeps only +x).
var modes = map[string]fs.FileMode{
	"etc/shadow":                   0o640,
	"etc/gshadow":                  0o640,
	"etc/sudoers":                  0o440,
	"etc/ssh/ssh_host_rsa_key":     0o600,
	"etc/ssh/ssh_host_ecdsa_key":   0o600,
	"etc/ssh/ssh_host_ed25519_key": 0o600,
}

// ImageDir is the base image's directory, found from the module root.
func ImageDir(t testing.TB) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return filepath.Join(d, "testdata", "rootfs", "debian")
		}
		if filepath.Dir(d) == d {
			t.Fatalf("no module root above %s", wd)
		}
	}
}

// CopyImage copies the base image into dir (placeholder .keep files
// dropped, modes restored).
func CopyImage(t testing.TB, dir string) {
	t.Helper()
	src := ImageDir(t)
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		dst := filepath.Join(dir, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(dst, 0o755)
		case d.Name() == ".keep":
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		mode := fs.FileMode(0o644)
		if m, ok := modes[rel]; ok {
			mode = m
		}
		if err := os.WriteFile(dst, b, mode); err != nil {
			return err
		}
		return os.Chmod(dst, mode)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// NewRoot is a target root holding a copy of the base image.
func NewRoot(t testing.TB) *sys.Root {
	t.Helper()
	dir := t.TempDir()
	CopyImage(t, dir)
	r, err := sys.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// Runner records the commands it is given. With Exec set it also runs
// them (tests that need real useradd); otherwise Respond, if set, answers.
type Runner struct {
	Exec    bool
	Respond func(sys.Command) (sys.Result, error)

	mu       sync.Mutex
	commands []sys.Command
}

// Run records c and runs or answers it.
func (r *Runner) Run(ctx context.Context, c sys.Command) (sys.Result, error) {
	r.mu.Lock()
	r.commands = append(r.commands, c)
	r.mu.Unlock()
	switch {
	case r.Exec:
		return sys.ExecRunner{}.Run(ctx, c)
	case r.Respond != nil:
		return r.Respond(c)
	}
	return sys.Result{}, nil
}

// Commands are the command lines run so far (secrets redacted).
func (r *Runner) Commands() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, c := range r.commands {
		out = append(out, c.String())
	}
	return out
}

// Kernel records the kernel calls made.
type Kernel struct {
	mu        sync.Mutex
	Hostnames []string
}

// SetHostname records name.
func (k *Kernel) SetHostname(name string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.Hostnames = append(k.Hostnames, name)
	return nil
}

// KVP records the records written.
type KVP struct {
	mu      sync.Mutex
	Records map[string]string
}

// Write records key=value.
func (k *KVP) Write(key, value string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.Records == nil {
		k.Records = map[string]string{}
	}
	k.Records[key] = value
	return nil
}

// Env is a module environment over root for data, offline (not Live),
// with a recording runner and kernel, the default configuration, and an
// instance directory. Deferred work runs at once and fails the test if it
// fails.
func Env(t testing.TB, root *sys.Root, data *azure.Data) *modules.Env {
	t.Helper()
	cfg := config.Default()
	id := "7a5c9a0e-3f1d-4c52-9b1e-0d6f2a8c4e11"
	dir := "/var/lib/azinit/instances/" + id
	if err := root.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if data == nil {
		data = &azure.Data{}
	}
	return &modules.Env{
		Root:     root,
		Run:      &Runner{},
		Kernel:   &Kernel{},
		Config:   &cfg,
		Data:     data,
		Instance: modules.Instance{ID: id, Dir: dir},
		KVP:      &KVP{},
		Log:      logging.Discard(),
		Now:      func() time.Time { return time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC) },
		Defer: func(name string, fn func(context.Context) error) {
			if err := fn(context.Background()); err != nil {
				t.Errorf("deferred %s: %v", name, err)
			}
		},
		Failures: func() []modules.Failure { return nil },
	}
}

// ReadFile reads a file under root, failing the test if it cannot.
func ReadFile(t testing.TB, root *sys.Root, name string) string {
	t.Helper()
	b, err := root.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Mode is the permission bits of a file under root.
func Mode(t testing.TB, root *sys.Root, name string) fs.FileMode {
	t.Helper()
	fi, err := os.Lstat(root.HostPath(name))
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// Contains reports whether a file under root contains s.
func Contains(t testing.TB, root *sys.Root, name, s string) bool {
	t.Helper()
	return strings.Contains(ReadFile(t, root, name), s)
}

// OVF is the request an ovf-env.xml makes, as the local stage reads it
// from the media: parsed, with the password hashed.
func OVF(t testing.TB, doc string) *azure.Data {
	t.Helper()
	env, err := ovf.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	d := &azure.Data{Media: &media.Media{Device: "test", Format: "udf", OVF: []byte(doc)}, OVF: env}
	if env.HasPassword() {
		if d.PasswordHash, err = crypt.SHA512(env.Password(), 10); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// OVFDoc is an ovf-env.xml for user with password (none when "") and the
// given LinuxProvisioningConfigurationSet elements (HostName, SSH, ...).
func OVFDoc(user, password string, elements ...string) string {
	pw := ""
	if password != "" {
		pw = "<UserPassword>" + password + "</UserPassword>"
	}
	return `<?xml version="1.0" encoding="utf-8"?>
<Environment xmlns="http://schemas.dmtf.org/ovf/environment/1" xmlns:wa="http://schemas.microsoft.com/windowsazure">
  <wa:ProvisioningSection><wa:Version>1.0</wa:Version>
    <LinuxProvisioningConfigurationSet xmlns="http://schemas.microsoft.com/windowsazure">
      <ConfigurationSetType>LinuxProvisioningConfiguration</ConfigurationSetType>
      <UserName>` + user + `</UserName>` + pw + strings.Join(elements, "") + `
    </LinuxProvisioningConfigurationSet>
  </wa:ProvisioningSection>
  <wa:PlatformSettingsSection><wa:Version>1.0</wa:Version>
    <wa:PlatformSettings><wa:ProvisionGuestAgent>true</wa:ProvisionGuestAgent></wa:PlatformSettings>
  </wa:PlatformSettingsSection>
</Environment>`
}
