package modules_test

import (
	"bytes"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/azinit/azinit/datasource/azure"
	"github.com/azinit/azinit/datasource/azure/ovf"
	"github.com/azinit/azinit/internal/fixtures"
	"github.com/azinit/azinit/internal/sys"
	"github.com/azinit/azinit/modules"
	"github.com/azinit/azinit/modules/modulestest"
)

var updateSSHGolden = flag.Bool("update-ssh-golden", false, "rewrite the golden files testdata/ssh_*")

// sshGolden compares got with the golden file testdata/name.
func sshGolden(t *testing.T, name, got string) {
	t.Helper()
	file := filepath.Join("testdata", name)
	if *updateSSHGolden {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run with -update-ssh-golden to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s (-want +got):\n%s", file, diff)
	}
}

// sshdData asks for passwords to be accepted or not.
func sshdData(passwords bool) *azure.Data {
	return &azure.Data{OVF: &ovf.Environment{UserName: "bob", DisableSSHPasswordAuthentication: !passwords}}
}

// sshdEnv is an offline environment over the base image, whose
// sshd_config includes sshd_config.d, with a recording runner.
func sshdEnv(t *testing.T, passwords bool) (*modules.Env, *modulestest.Runner) {
	t.Helper()
	env := modulestest.Env(t, modulestest.NewRoot(t), sshdData(passwords))
	run := &modulestest.Runner{}
	env.Run = run
	return env, run
}

func sshdApply(t *testing.T, env *modules.Env, want modules.Outcome) {
	t.Helper()
	got, err := modules.SSHD{}.Apply(t.Context(), env)
	if err != nil || got != want {
		t.Fatalf("Apply = %q, %v; want %q", got, err, want)
	}
}

const dropIn = "/etc/ssh/sshd_config.d/50-azinit.conf"

func TestSSHDDropIn(t *testing.T) {
	for _, tc := range []struct {
		name      string
		passwords bool
		interval  int
		golden    string
	}{
		{"no passwords", false, 180, "ssh_sshd_dropin_nopasswords.conf"},
		{"passwords, no keepalive", true, 0, "ssh_sshd_dropin_passwords.conf"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, run := sshdEnv(t, tc.passwords)
			env.Config.SSHD.ClientAliveInterval = tc.interval
			before := modulestest.ReadFile(t, env.Root, "/etc/ssh/sshd_config")
			sshdApply(t, env, modules.Changed)
			sshGolden(t, tc.golden, modulestest.ReadFile(t, env.Root, dropIn))
			if m := modulestest.Mode(t, env.Root, dropIn); m != 0o600 {
				t.Errorf("drop-in mode %v, want 0600", m)
			}
			if after := modulestest.ReadFile(t, env.Root, "/etc/ssh/sshd_config"); after != before {
				t.Errorf("sshd_config changed:\n%s", cmp.Diff(before, after))
			}
			sshdApply(t, env, modules.Unchanged)
			if len(run.Commands()) != 0 {
				t.Errorf("offline, commands ran: %q", run.Commands())
			}
		})
	}
}

func TestSSHDDropInChanges(t *testing.T) {
	env, _ := sshdEnv(t, false)
	sshdApply(t, env, modules.Changed)
	env.Data = sshdData(true)
	sshdApply(t, env, modules.Changed)
	sshGolden(t, "ssh_sshd_dropin_passwords_keepalive.conf", modulestest.ReadFile(t, env.Root, dropIn))
	if err := env.Root.Chmod(dropIn, 0o644); err != nil {
		t.Fatal(err)
	}
	sshdApply(t, env, modules.Changed)
	if m := modulestest.Mode(t, env.Root, dropIn); m != 0o600 {
		t.Errorf("drop-in mode %v, want 0600", m)
	}
}

// TestSSHDInPlace edits WALinuxAgent's fixture, an sshd_config with no
// Include and a Match block at its end.
func TestSSHDInPlace(t *testing.T) {
	cfg := fixtures.Read(t, "wire/sshd_config")
	for _, tc := range []struct {
		name      string
		passwords bool
		golden    string
	}{
		{"no passwords", false, "ssh_sshd_config_wire_nopasswords.golden"},
		{"passwords", true, "ssh_sshd_config_wire_passwords.golden"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, _ := sshdEnv(t, tc.passwords)
			if err := env.Root.WriteFileAtomic("/etc/ssh/sshd_config", cfg, 0o640); err != nil {
				t.Fatal(err)
			}
			sshdApply(t, env, modules.Changed)
			sshGolden(t, tc.golden, modulestest.ReadFile(t, env.Root, "/etc/ssh/sshd_config"))
			if m := modulestest.Mode(t, env.Root, "/etc/ssh/sshd_config"); m != 0o640 {
				t.Errorf("sshd_config mode %v, want 0640 kept", m)
			}
			if _, err := env.Root.Stat(dropIn); err == nil {
				t.Error("a drop-in was written though sshd_config does not include it")
			}
			sshdApply(t, env, modules.Unchanged)
		})
	}
}

// TestSSHDSettingBeforeInclude: a value set before the Include wins over
// the drop-in, so the file itself is edited.
func TestSSHDSettingBeforeInclude(t *testing.T) {
	env, _ := sshdEnv(t, false)
	cfg := "PasswordAuthentication yes\nInclude /etc/ssh/sshd_config.d/*.conf\nMatch User bob\n"
	if err := env.Root.WriteFileAtomic("/etc/ssh/sshd_config", []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	sshdApply(t, env, modules.Changed)
	want := "PasswordAuthentication no\nInclude /etc/ssh/sshd_config.d/*.conf\nKbdInteractiveAuthentication no\nClientAliveInterval 180\nMatch User bob\n"
	if diff := cmp.Diff(want, modulestest.ReadFile(t, env.Root, "/etc/ssh/sshd_config")); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestSSHDReload(t *testing.T) {
	for _, tc := range []struct {
		name  string
		live  bool
		units []string
		want  []string
	}{
		{"debian", true, []string{"/lib/systemd/system/ssh.service", "/usr/lib/systemd/system/sshd.service"},
			[]string{"systemctl --no-block try-reload-or-restart ssh.service"}},
		{"rhel", true, []string{"/usr/lib/systemd/system/sshd.service"},
			[]string{"systemctl --no-block try-reload-or-restart sshd.service"}},
		{"no unit", true, nil, nil},
		{"offline", false, []string{"/lib/systemd/system/ssh.service"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, run := sshdEnv(t, false)
			env.Live = tc.live
			for _, u := range tc.units {
				if err := env.Root.MkdirAll(filepath.Dir(u), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := env.Root.WriteFileAtomic(u, []byte("[Service]\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			sshdApply(t, env, modules.Changed)
			if diff := cmp.Diff(tc.want, run.Commands()); diff != "" {
				t.Errorf("commands (-want +got):\n%s", diff)
			}
			sshdApply(t, env, modules.Unchanged)
			if diff := cmp.Diff(tc.want, run.Commands()); diff != "" {
				t.Errorf("unchanged, yet commands ran (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSSHDReloadFails(t *testing.T) {
	env, run := sshdEnv(t, false)
	env.Live = true
	run.Respond = func(c sys.Command) (sys.Result, error) {
		return sys.Result{}, &sys.ExitError{Command: c.String(), Code: 1}
	}
	if err := env.Root.MkdirAll("/lib/systemd/system", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := env.Root.WriteFileAtomic("/lib/systemd/system/ssh.service", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := (modules.SSHD{}).Apply(t.Context(), env); err == nil {
		t.Fatal("a failed reload was not an error")
	}
}

func TestSSHDNoConfig(t *testing.T) {
	env, _ := sshdEnv(t, false)
	if err := env.Root.Remove("/etc/ssh/sshd_config"); err != nil {
		t.Fatal(err)
	}
	sshdApply(t, env, modules.Skipped)
}

// TestSSHDEarlierDropIn: a drop-in sshd reads first wins; azinit says so.
func TestSSHDEarlierDropIn(t *testing.T) {
	env, _ := sshdEnv(t, false)
	var logs bytes.Buffer
	env.Log = slog.New(slog.NewTextHandler(&logs, nil))
	if err := env.Root.WriteFileAtomic("/etc/ssh/sshd_config.d/10-image.conf", []byte("PasswordAuthentication yes\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sshdApply(t, env, modules.Changed)
	if want := "file=/etc/ssh/sshd_config.d/10-image.conf keyword=PasswordAuthentication"; !strings.Contains(logs.String(), want) {
		t.Errorf("log lacks %q:\n%s", want, logs.String())
	}
}
