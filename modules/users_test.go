package modules_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/azinit/azinit/datasource/azure"
	"github.com/azinit/azinit/datasource/azure/imds"
	"github.com/azinit/azinit/internal/sys"
	"github.com/azinit/azinit/modules"
	"github.com/azinit/azinit/modules/modulestest"
)

// fakeHash stands for the platform's $6$ hash where no real one is needed.
const fakeHash = "$6$saltsaltsa$fakefakefakefake"

// adminData asks for user name with password hash (none when ""), as IMDS
// does: no XML in the way of odd names.
func adminData(name, hash string) *azure.Data {
	return &azure.Data{
		IMDS:         &imds.Instance{Compute: imds.Compute{OSProfile: imds.OSProfile{AdminUsername: name}}},
		PasswordHash: hash,
	}
}

// usersEnv is an offline environment over a copy of the base image with a
// recording runner.
func usersEnv(t testing.TB, data *azure.Data) (*modules.Env, *modulestest.Runner) {
	t.Helper()
	env := modulestest.Env(t, modulestest.NewRoot(t), data)
	run := &modulestest.Runner{}
	env.Run = run
	return env, run
}

// commands are the command lines run, the root's directory shown as <root>.
func commands(env *modules.Env, run *modulestest.Runner) []string {
	var out []string
	for _, c := range run.Commands() {
		out = append(out, strings.ReplaceAll(c, env.Root.Dir(), "<root>"))
	}
	return out
}

func writeFile(t testing.TB, root *sys.Root, name, data string, perm fs.FileMode) {
	t.Helper()
	if err := root.WriteFileAtomic(name, []byte(data), perm); err != nil {
		t.Fatal(err)
	}
}

func appendFile(t testing.TB, root *sys.Root, name, data string) {
	t.Helper()
	writeFile(t, root, name, modulestest.ReadFile(t, root, name)+data, modulestest.Mode(t, root, name))
}

func TestUsersName(t *testing.T) {
	tests := []struct {
		name    string
		allow   bool   // users.allow_reset_system_user
		wantErr string // "" for a good name
	}{
		{name: "azureuser"},
		{name: "_svc"},
		{name: "a"},
		{name: "bob-1_x"},
		{name: "machine$"},
		{name: strings.Repeat("a", 32)},
		{name: strings.Repeat("a", 33), wantErr: `bad user name "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa": 33 characters, at most 32 are allowed`},
		{name: "Bob", wantErr: `bad user name "Bob": it must start with a lower-case letter or _`},
		{name: "boB", wantErr: `bad user name "boB": character 'B' at position 3: only a-z, 0-9, _, - and a final $ are allowed`},
		{name: "1bob", wantErr: `bad user name "1bob": it must start with a lower-case letter or _`},
		{name: "-bob", wantErr: `bad user name "-bob": it must start with a lower-case letter or _`},
		{name: "bo b", wantErr: `character ' ' at position 3`},
		{name: "bo:b", wantErr: `character ':' at position 3`},
		{name: "a$b", wantErr: `character '$' at position 2`},
		{name: "$", wantErr: `it must start with a lower-case letter or _`},
		{name: "jöe", wantErr: `character 'ö' at position 2`},
		{name: "root", wantErr: `bad user name "root": root is reserved`},
		{name: "root", allow: true, wantErr: `bad user name "root": root is reserved`},
		{name: "sshd", wantErr: `bad user name "sshd": it is a system account (uid 100, outside UID_MIN 1000 to UID_MAX 60000); users.allow_reset_system_user allows it`},
		{name: "systemd-network", wantErr: `(uid 998, outside UID_MIN 1000 to UID_MAX 60000)`},
		{name: "nobody", wantErr: `(uid 65534, outside UID_MIN 1000 to UID_MAX 60000)`},
		{name: "sshd", allow: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, run := usersEnv(t, adminData(tt.name, ""))
			env.Config.Users.AllowResetSystemUser = tt.allow
			got, err := modules.Users{}.Apply(context.Background(), env)
			if tt.wantErr == "" {
				if err != nil || got != modules.Changed {
					t.Fatalf("Apply = %q, %v; want changed", got, err)
				}
				return
			}
			if !errors.Is(err, modules.ErrBadUsername) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Apply error = %v; want ErrBadUsername saying %q", err, tt.wantErr)
			}
			if c := run.Commands(); len(c) != 0 {
				t.Errorf("a refused name ran %q", c)
			}
			if _, err := env.Root.Stat("/etc/sudoers.d/waagent"); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("a refused name got a sudoers drop-in: %v", err)
			}
		})
	}
}

// TestUsersLoginDefs: UID_MIN and UID_MAX come from the target root.
func TestUsersLoginDefs(t *testing.T) {
	tests := []struct {
		name, loginDefs, wantErr string
	}{
		{name: "sshd", loginDefs: "UID_MIN 100\n"},
		{name: "sshd", loginDefs: "# UID_MIN 100\nUID_MIN\t0x3e8\n", wantErr: "outside UID_MIN 1000 to UID_MAX 60000"},
		{name: "nobody", loginDefs: "UID_MAX 65534\n"},
		{name: "sshd", loginDefs: "", wantErr: "outside UID_MIN 1000 to UID_MAX 60000"},
		{name: "sshd", loginDefs: "MAIL_DIR /var/mail\nUID_MIN lots\n", wantErr: `/etc/login.defs: line 2: UID_MIN "lots" is not a uid`},
	}
	for _, tt := range tests {
		t.Run(tt.name+"/"+tt.loginDefs, func(t *testing.T) {
			env, _ := usersEnv(t, adminData(tt.name, ""))
			writeFile(t, env.Root, "/etc/login.defs", tt.loginDefs, 0o644)
			_, err := modules.Users{}.Apply(context.Background(), env)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("Apply error = %v; want %q", err, tt.wantErr)
			}
		})
	}
	t.Run("no login.defs", func(t *testing.T) {
		env, _ := usersEnv(t, adminData("sshd", ""))
		if err := env.Root.Remove("/etc/login.defs"); err != nil {
			t.Fatal(err)
		}
		if _, err := (modules.Users{}).Apply(context.Background(), env); err == nil || !strings.Contains(err.Error(), "outside UID_MIN 1000 to UID_MAX 60000") {
			t.Errorf("Apply error = %v; want the defaults to refuse uid 100", err)
		}
	})
}

func TestUsersCommands(t *testing.T) {
	const bob = "bob:x:1001:1001::/home/bob:/bin/bash\n"
	tests := []struct {
		name     string
		user     string
		hash     string
		groups   []string                             // users.groups
		allow    bool                                 // users.allow_reset_system_user
		setup    func(t *testing.T, env *modules.Env) // before Apply
		want     []string
		wantLine string // in /etc/sudoers.d/waagent
		outcome  modules.Outcome
	}{
		{
			name: "new user with password", user: "azureuser", hash: fakeHash,
			want:     []string{"useradd --prefix <root> -m -s /bin/bash -d /home/azureuser -p <redacted> azureuser"},
			wantLine: "azureuser ALL=(ALL) ALL", outcome: modules.Changed,
		},
		{
			name: "new user without password", user: "azureuser",
			want:     []string{"useradd --prefix <root> -m -s /bin/bash -d /home/azureuser azureuser"},
			wantLine: "azureuser ALL=(ALL) NOPASSWD: ALL", outcome: modules.Changed,
		},
		{
			name: "only groups that exist", user: "azureuser", hash: fakeHash,
			groups:   []string{"sudo", "docker", "adm", "sudo"},
			want:     []string{"useradd --prefix <root> -m -s /bin/bash -d /home/azureuser -G sudo,adm -p <redacted> azureuser"},
			wantLine: "azureuser ALL=(ALL) ALL", outcome: modules.Changed,
		},
		{
			name: "no configured group exists", user: "azureuser",
			groups:   []string{"docker"},
			want:     []string{"useradd --prefix <root> -m -s /bin/bash -d /home/azureuser azureuser"},
			wantLine: "azureuser ALL=(ALL) NOPASSWD: ALL", outcome: modules.Changed,
		},
		{
			name: "shell and home from the configuration", user: "azureuser",
			setup: func(t *testing.T, env *modules.Env) {
				env.Config.Users.Shell, env.Config.Users.HomeDir = "/bin/zsh", "/srv/home"
			},
			want:     []string{"useradd --prefix <root> -m -s /bin/zsh -d /srv/home/azureuser azureuser"},
			wantLine: "azureuser ALL=(ALL) NOPASSWD: ALL", outcome: modules.Changed,
		},
		{
			name: "existing user, first run for the instance", user: "bob", hash: fakeHash,
			groups: []string{"sudo", "adm", "users", "bob"},
			setup: func(t *testing.T, env *modules.Env) {
				appendFile(t, env.Root, "/etc/passwd", bob)
				appendFile(t, env.Root, "/etc/group", "bob:x:1001:\n")
				writeFile(t, env.Root, "/etc/group", strings.Replace(modulestest.ReadFile(t, env.Root, "/etc/group"), "adm:x:4:", "adm:x:4:alice,bob", 1), 0o644)
			},
			want:     []string{"usermod --prefix <root> -a -G sudo,users -p <redacted> bob"},
			wantLine: "bob ALL=(ALL) ALL", outcome: modules.Changed,
		},
		{
			name: "existing user, password already set this instance", user: "bob", hash: fakeHash,
			groups: []string{"sudo"},
			setup: func(t *testing.T, env *modules.Env) {
				appendFile(t, env.Root, "/etc/passwd", bob)
				writeFile(t, env.Root, path.Join(env.Instance.Dir, "password-set"), "bob\n", 0o600)
			},
			want:     []string{"usermod --prefix <root> -a -G sudo bob"},
			wantLine: "bob ALL=(ALL) ALL", outcome: modules.Changed,
		},
		{
			name: "existing user, another user's password set this instance", user: "bob", hash: fakeHash,
			setup: func(t *testing.T, env *modules.Env) {
				appendFile(t, env.Root, "/etc/passwd", bob)
				writeFile(t, env.Root, path.Join(env.Instance.Dir, "password-set"), "alice\n", 0o600)
			},
			want:     []string{"usermod --prefix <root> -p <redacted> bob"},
			wantLine: "bob ALL=(ALL) ALL", outcome: modules.Changed,
		},
		{
			name: "existing user, nothing to do", user: "bob", hash: fakeHash,
			groups: []string{"sudo"},
			setup: func(t *testing.T, env *modules.Env) {
				appendFile(t, env.Root, "/etc/passwd", bob)
				writeFile(t, env.Root, "/etc/group", strings.Replace(modulestest.ReadFile(t, env.Root, "/etc/group"), "sudo:x:27:", "sudo:x:27:bob", 1), 0o644)
				writeFile(t, env.Root, path.Join(env.Instance.Dir, "password-set"), "bob\n", 0o600)
				writeFile(t, env.Root, "/etc/sudoers.d/waagent", "bob ALL=(ALL) ALL\n", 0o440)
			},
			wantLine: "bob ALL=(ALL) ALL", outcome: modules.Unchanged,
		},
		{
			name: "existing user without password", user: "bob",
			groups: []string{"sudo"},
			setup: func(t *testing.T, env *modules.Env) {
				appendFile(t, env.Root, "/etc/passwd", "bob:x:1001:27::/home/bob:/bin/bash\n") // sudo is its primary group
			},
			wantLine: "bob ALL=(ALL) NOPASSWD: ALL", outcome: modules.Changed,
		},
		{
			name: "system user allowed by the configuration", user: "sshd", hash: fakeHash, allow: true,
			want:     []string{"usermod --prefix <root> -p <redacted> sshd"},
			wantLine: "sshd ALL=(ALL) ALL", outcome: modules.Changed,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, run := usersEnv(t, adminData(tt.user, tt.hash))
			env.Config.Users.Groups = tt.groups
			env.Config.Users.AllowResetSystemUser = tt.allow
			if tt.setup != nil {
				tt.setup(t, env)
			}
			got, err := modules.Users{}.Apply(context.Background(), env)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.outcome {
				t.Errorf("outcome %q, want %q", got, tt.outcome)
			}
			if diff := cmp.Diff(tt.want, commands(env, run)); diff != "" {
				t.Errorf("commands (-want +got):\n%s", diff)
			}
			if got := modulestest.ReadFile(t, env.Root, "/etc/sudoers.d/waagent"); got != tt.wantLine+"\n" {
				t.Errorf("sudoers drop-in %q, want %q", got, tt.wantLine+"\n")
			}
			if tt.hash != "" {
				if got := modulestest.ReadFile(t, env.Root, path.Join(env.Instance.Dir, "password-set")); got != tt.user+"\n" {
					t.Errorf("password-set %q, want the user", got)
				}
			}
		})
	}
}

// TestUsersSecret: the hash is marked secret in the command and is in no
// error; a password without a usable hash is refused before anything runs.
func TestUsersSecret(t *testing.T) {
	var seen []sys.Command
	env, run := usersEnv(t, adminData("azureuser", fakeHash))
	run.Respond = func(c sys.Command) (sys.Result, error) {
		seen = append(seen, c)
		return sys.Result{}, &sys.ExitError{Command: c.String(), Code: 1, Stderr: "useradd: failure"}
	}
	_, err := modules.Users{}.Apply(context.Background(), env)
	if err == nil || strings.Contains(err.Error(), fakeHash) || !strings.Contains(err.Error(), `user "azureuser": useradd`) {
		t.Errorf("Apply error = %v; want the failed useradd without the hash", err)
	}
	if len(seen) != 1 || len(seen[0].Secret) != 1 || seen[0].Args[seen[0].Secret[0]] != fakeHash {
		t.Errorf("the hash is not the secret argument of %+v", seen)
	}

	for _, hash := range []string{"", "$6$salt$x:0:0", "plain"} {
		data := modulestest.OVF(t, modulestest.OVFDoc("azureuser", "P@ssw0rd-not-real", "<HostName>vm1</HostName>"))
		data.PasswordHash = hash
		env, run := usersEnv(t, data)
		_, err := modules.Users{}.Apply(context.Background(), env)
		if err == nil || !strings.Contains(err.Error(), `user "azureuser": the admin password has no crypt(3) hash`) || hash != "" && strings.Contains(err.Error(), hash) {
			t.Errorf("hash %q: Apply error = %v", hash, err)
		}
		if c := run.Commands(); len(c) != 0 {
			t.Errorf("hash %q: ran %q", hash, c)
		}
	}
}

// TestUsersNoInstanceDir: a password that could not be recorded as set
// would be set again on every run, so it is an error.
func TestUsersNoInstanceDir(t *testing.T) {
	env, run := usersEnv(t, adminData("azureuser", fakeHash))
	env.Instance.Dir = ""
	_, err := modules.Users{}.Apply(context.Background(), env)
	if err == nil || !strings.Contains(err.Error(), `user "azureuser": no instance directory`) {
		t.Errorf("Apply error = %v", err)
	}
	if c := run.Commands(); len(c) != 0 {
		t.Errorf("ran %q", c)
	}
}

func TestUsersSkipped(t *testing.T) {
	env, run := usersEnv(t, &azure.Data{})
	got, err := modules.Users{}.Apply(context.Background(), env)
	if err != nil || got != modules.Skipped {
		t.Errorf("Apply = %q, %v; want skipped", got, err)
	}
	if c := run.Commands(); len(c) != 0 {
		t.Errorf("ran %q", c)
	}
	if _, err := env.Root.Stat("/etc/sudoers.d/waagent"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("sudoers drop-in written: %v", err)
	}
}

func TestUsersSudoersDropIn(t *testing.T) {
	tests := []struct {
		name, have string
		hash       string
		want       string
	}{
		{
			name: "other users kept, our line appended",
			have: "alice ALL=(ALL) ALL\n# a comment\n\nJIT_Account ALL=(ALL) ALL\n",
			hash: fakeHash,
			want: "alice ALL=(ALL) ALL\n# a comment\n\nJIT_Account ALL=(ALL) ALL\nazureuser ALL=(ALL) ALL\n",
		},
		{
			name: "our line replaced in place, duplicates dropped",
			have: "alice ALL=(ALL) ALL\nazureuser ALL=(ALL) NOPASSWD: ALL\nbob ALL=(ALL) ALL\nazureuser\tALL=(ALL) ALL\n",
			hash: fakeHash,
			want: "alice ALL=(ALL) ALL\nazureuser ALL=(ALL) ALL\nbob ALL=(ALL) ALL\n",
		},
		{
			name: "password removed",
			have: "azureuser ALL=(ALL) ALL\nazureuser2 ALL=(ALL) ALL",
			want: "azureuser ALL=(ALL) NOPASSWD: ALL\nazureuser2 ALL=(ALL) ALL\n",
		},
		{
			name: "empty file",
			want: "azureuser ALL=(ALL) NOPASSWD: ALL\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, _ := usersEnv(t, adminData("azureuser", tt.hash))
			writeFile(t, env.Root, "/etc/sudoers.d/waagent", tt.have, 0o644)
			if _, err := (modules.Users{}).Apply(context.Background(), env); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, modulestest.ReadFile(t, env.Root, "/etc/sudoers.d/waagent")); diff != "" {
				t.Errorf("drop-in (-want +got):\n%s", diff)
			}
			if m := modulestest.Mode(t, env.Root, "/etc/sudoers.d/waagent"); m != 0o440 {
				t.Errorf("drop-in mode %o, want 440", m)
			}
		})
	}
}

func TestUsersSudoersInclude(t *testing.T) {
	const image = "Defaults\tenv_reset\nroot\tALL=(ALL:ALL) ALL\n%sudo\tALL=(ALL:ALL) ALL\n"
	tests := []struct {
		name      string
		sudoers   string // "" removes /etc/sudoers
		noDropDir bool   // remove /etc/sudoers.d first
		want      string // "" expects no /etc/sudoers
	}{
		{name: "included", sudoers: image + "@includedir /etc/sudoers.d\n", want: image + "@includedir /etc/sudoers.d\n"},
		{name: "included the old way", sudoers: image + "#includedir /etc/sudoers.d/\n", want: image + "#includedir /etc/sudoers.d/\n"},
		{name: "missing", sudoers: image, want: image + "#includedir /etc/sudoers.d\n"},
		{name: "commented out", sudoers: image + "# includedir /etc/sudoers.d\n", want: image + "# includedir /etc/sudoers.d\n#includedir /etc/sudoers.d\n"},
		{name: "no final newline", sudoers: strings.TrimSuffix(image, "\n"), want: image + "#includedir /etc/sudoers.d\n"},
		{name: "no drop-in directory", sudoers: image, noDropDir: true, want: image + "#includedir /etc/sudoers.d\n"},
		{name: "no sudoers", noDropDir: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, _ := usersEnv(t, adminData("azureuser", ""))
			if err := env.Root.Remove("/etc/sudoers"); err != nil {
				t.Fatal(err)
			}
			if tt.sudoers != "" {
				writeFile(t, env.Root, "/etc/sudoers", tt.sudoers, 0o440)
			}
			if tt.noDropDir {
				if err := env.Root.Remove("/etc/sudoers.d"); err != nil {
					t.Fatal(err)
				}
			}
			for run := 1; run <= 2; run++ { // the second run must not add the line again
				if _, err := (modules.Users{}).Apply(context.Background(), env); err != nil {
					t.Fatal(err)
				}
				b, err := env.Root.ReadFile("/etc/sudoers")
				if tt.want == "" {
					if !errors.Is(err, fs.ErrNotExist) {
						t.Errorf("run %d: /etc/sudoers created: %v", run, err)
					}
				} else if diff := cmp.Diff(tt.want, string(b)); diff != "" {
					t.Errorf("run %d: /etc/sudoers (-want +got):\n%s", run, diff)
				}
			}
			if tt.want != "" && modulestest.Mode(t, env.Root, "/etc/sudoers") != 0o440 {
				t.Errorf("/etc/sudoers mode %o, want 440", modulestest.Mode(t, env.Root, "/etc/sudoers"))
			}
			if m := modulestest.Mode(t, env.Root, "/etc/sudoers.d"); tt.noDropDir && m != 0o750 {
				t.Errorf("/etc/sudoers.d mode %o, want 750", m)
			}
		})
	}
}

// realUsers skips unless useradd can run against a temp root: it needs
// root for --prefix.
func realUsers(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("useradd --prefix needs root")
	}
	for _, tool := range []string{"useradd", "usermod"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
}

// TestUsersReal runs the real useradd and usermod against a temp root.
func TestUsersReal(t *testing.T) {
	realUsers(t)
	hostFiles := []string{"/etc/passwd", "/etc/shadow", "/etc/group", "/etc/gshadow"}
	before := map[string][]byte{}
	for _, f := range hostFiles {
		before[f], _ = os.ReadFile(f)
	}

	data := modulestest.OVF(t, modulestest.OVFDoc("azureuser", "P@ssw0rd-not-real", "<HostName>vm1</HostName>"))
	root := modulestest.NewRoot(t)
	env := modulestest.Env(t, root, data)
	env.Config.Users.Groups = []string{"sudo", "docker"}
	env.Run = &modulestest.Runner{Exec: true}
	if got, err := (modules.Users{}).Apply(context.Background(), env); err != nil || got != modules.Changed {
		t.Fatalf("Apply = %q, %v; want changed", got, err)
	}

	acct, err := modules.LookupUser(root, "azureuser")
	if err != nil {
		t.Fatal(err)
	}
	if acct.UID < 1000 || acct.Home != "/home/azureuser" || acct.Shell != "/bin/bash" {
		t.Errorf("account %+v", acct)
	}
	if !modulestest.Contains(t, root, "/etc/shadow", "\nazureuser:"+data.PasswordHash+":") {
		t.Error("/etc/shadow does not hold the hash")
	}
	if m := modulestest.Mode(t, root, "/etc/shadow"); m != 0o640 {
		t.Errorf("/etc/shadow mode %o, want 640", m)
	}
	if !modulestest.Contains(t, root, "/etc/group", "\nsudo:x:27:azureuser\n") {
		t.Error("azureuser is not in sudo")
	}
	fi, err := root.Stat("/home/azureuser")
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); !fi.IsDir() || int(st.Uid) != acct.UID || int(st.Gid) != acct.GID {
		t.Errorf("home %v owned by %d:%d, want a directory owned by %d:%d", fi.Mode(), st.Uid, st.Gid, acct.UID, acct.GID)
	}
	if got := modulestest.ReadFile(t, root, "/etc/sudoers.d/waagent"); got != "azureuser ALL=(ALL) ALL\n" {
		t.Errorf("sudoers drop-in %q", got)
	}
	for _, f := range hostFiles {
		if after, _ := os.ReadFile(f); !slices.Equal(before[f], after) {
			t.Errorf("the host's %s changed", f)
		}
	}

	rerun := &modulestest.Runner{Exec: true}
	env.Run = rerun
	if got, err := (modules.Users{}).Apply(context.Background(), env); err != nil || got != modules.Unchanged {
		t.Errorf("second Apply = %q, %v; want unchanged", got, err)
	}
	if c := rerun.Commands(); len(c) != 0 {
		t.Errorf("second Apply ran %q", c)
	}

	// A new instance of an image that holds the user gets its password.
	next := modulestest.OVF(t, modulestest.OVFDoc("azureuser", "An0ther-not-real", "<HostName>vm1</HostName>"))
	env.Data, env.Instance.Dir = next, "/var/lib/azinit/instances/next"
	if err := root.MkdirAll(env.Instance.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if got, err := (modules.Users{}).Apply(context.Background(), env); err != nil || got != modules.Changed {
		t.Errorf("new instance: Apply = %q, %v; want changed", got, err)
	}
	if !modulestest.Contains(t, root, "/etc/shadow", "\nazureuser:"+next.PasswordHash+":") {
		t.Error("new instance: /etc/shadow does not hold the new hash")
	}
}

// BenchmarkUsersApply creates the admin user with the real useradd in a
// fresh root each time (the copy of the image is not timed).
func BenchmarkUsersApply(b *testing.B) {
	realUsers(b)
	data := modulestest.OVF(b, modulestest.OVFDoc("azureuser", "P@ssw0rd-not-real", "<HostName>vm1</HostName>"))
	for range b.N {
		b.StopTimer()
		env := modulestest.Env(b, modulestest.NewRoot(b), data)
		env.Config.Users.Groups = []string{"sudo", "adm"}
		env.Run = &modulestest.Runner{Exec: true}
		b.StartTimer()
		if _, err := (modules.Users{}).Apply(context.Background(), env); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUsersApplyUnchanged is a rerun that finds everything in place.
func BenchmarkUsersApplyUnchanged(b *testing.B) {
	env, run := usersEnv(b, adminData("bob", fakeHash))
	env.Config.Users.Groups = []string{"sudo"}
	appendFile(b, env.Root, "/etc/passwd", "bob:x:1001:27::/home/bob:/bin/bash\n")
	if _, err := (modules.Users{}).Apply(context.Background(), env); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if got, err := (modules.Users{}).Apply(context.Background(), env); err != nil || got != modules.Unchanged {
			b.Fatalf("Apply = %q, %v", got, err)
		}
	}
	if c := run.Commands(); len(c) != 1 {
		b.Fatalf("commands %q", c)
	}
}

// FuzzUsers feeds any user name and any existing drop-in: Apply never
// panics, refuses a name with ErrBadUsername, and otherwise leaves exactly
// one line for the user and every other line as it was.
func FuzzUsers(f *testing.F) {
	f.Add("azureuser", "alice ALL=(ALL) ALL\nazureuser ALL=(ALL) NOPASSWD: ALL\n", true)
	f.Add("Bob", "", false)
	f.Add("a$", "a$ ALL=(ALL) ALL\n\n# x\n", false)
	f.Add("sshd", "", true)
	f.Add(strings.Repeat("x", 40), "\r\n", false)
	env, _ := usersEnv(f, nil)
	f.Fuzz(func(t *testing.T, name, dropIn string, password bool) {
		env.Run = &modulestest.Runner{}
		hash := ""
		if password {
			hash = fakeHash
		}
		env.Data = adminData(name, hash)
		writeFile(t, env.Root, "/etc/sudoers.d/waagent", dropIn, 0o440)
		_, err := modules.Users{}.Apply(context.Background(), env)
		if name == "" {
			return
		}
		if err != nil {
			if !errors.Is(err, modules.ErrBadUsername) {
				t.Fatalf("Apply(%q) = %v; want ErrBadUsername", name, err)
			}
			return
		}
		var others, ours []string
		for l := range strings.Lines(modulestest.ReadFile(t, env.Root, "/etc/sudoers.d/waagent")) {
			if f := strings.Fields(l); len(f) > 0 && f[0] == name {
				ours = append(ours, l)
			} else {
				others = append(others, strings.TrimSuffix(l, "\n"))
			}
		}
		var want []string
		for l := range strings.Lines(dropIn) {
			if f := strings.Fields(l); len(f) == 0 || f[0] != name {
				want = append(want, strings.TrimSuffix(l, "\n"))
			}
		}
		if len(ours) != 1 || !slices.Equal(others, want) {
			t.Fatalf("drop-in %q for %q: ours %q, others %q, want others %q", dropIn, name, ours, others, want)
		}
	})
}
