package modules_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/ssh"

	"github.com/azinit/azinit/datasource/azure"
	"github.com/azinit/azinit/datasource/azure/certs"
	"github.com/azinit/azinit/datasource/azure/ovf"
	"github.com/azinit/azinit/datasource/azure/wireserver"
	"github.com/azinit/azinit/internal/sys"
	"github.com/azinit/azinit/modules"
	"github.com/azinit/azinit/modules/modulestest"
)

// sshKey is an OpenSSH public key line, the same for the same seed.
func sshKey(t testing.TB, seed byte, comment string) string {
	t.Helper()
	pk, err := ssh.NewPublicKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize)).Public())
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pk))) + " " + comment
}

// sshUser gives the root an account with the test's own uid and gid, so
// that files can be given to it without being root, and its home
// directory /home/<name>.
func sshUser(t testing.TB, root *sys.Root, name string) {
	t.Helper()
	line := fmt.Sprintf("%s:x:%d:%d::/home/%s:/bin/bash\n", name, os.Getuid(), os.Getgid(), name)
	passwd := modulestest.ReadFile(t, root, "/etc/passwd") + line
	if err := root.WriteFileAtomic("/etc/passwd", []byte(passwd), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := root.MkdirAll("/home/"+name, 0o755); err != nil {
		t.Fatal(err)
	}
}

// sshKeysEnv is an offline environment over the base image with user bob,
// asked for keys.
func sshKeysEnv(t testing.TB, keys ...ovf.PublicKey) *modules.Env {
	t.Helper()
	root := modulestest.NewRoot(t)
	sshUser(t, root, "bob")
	return modulestest.Env(t, root, &azure.Data{OVF: &ovf.Environment{UserName: "bob", PublicKeys: keys}})
}

// sshOwned checks a file's mode and that the test's user owns it.
func sshOwned(t *testing.T, root *sys.Root, name string, mode fs.FileMode) {
	t.Helper()
	fi, err := os.Lstat(root.HostPath(name))
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode().Perm() != mode || int(st.Uid) != os.Getuid() || int(st.Gid) != os.Getgid() {
		t.Errorf("%s: mode %v owner %d:%d; want %v %d:%d", name, fi.Mode().Perm(), st.Uid, st.Gid, mode, os.Getuid(), os.Getgid())
	}
}

// sshInode identifies a file's current version: a write replaces it.
func sshInode(t *testing.T, root *sys.Root, name string) uint64 {
	t.Helper()
	fi, err := os.Lstat(root.HostPath(name))
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

const authorizedKeys = "/home/bob/.ssh/authorized_keys"

func TestSSHKeysPaths(t *testing.T) {
	for _, tc := range []struct {
		name  string
		path  string
		setup func(t *testing.T, root *sys.Root)
		want  string // the file the key lands in; "" for an error
		err   string // in the error
	}{
		{name: "none", path: "", want: authorizedKeys},
		{name: "$HOME", path: "$HOME/bob/.ssh/authorized_keys", want: authorizedKeys},
		{name: "absolute", path: "/home/bob/.ssh/authorized_keys", want: authorizedKeys},
		{name: "unclean", path: "/home/bob//.ssh/./authorized_keys", want: authorizedKeys},
		{name: "elsewhere in the home", path: "/home/bob/keys/azure", want: "/home/bob/keys/azure"},
		{name: "system file", path: "/etc/passwd", err: `authorized key 1 from ovf: path "/etc/passwd": not a file inside the user's home directory /home/bob`},
		{name: "dot-dot", path: "$HOME/bob/../alice/.ssh/authorized_keys", err: `authorized key 1 from ovf: path "$HOME/bob/../alice/.ssh/authorized_keys"`},
		{name: "another home", path: "/home/alice/.ssh/authorized_keys", err: `authorized key 1 from ovf: path "/home/alice/.ssh/authorized_keys"`},
		{name: "the home itself", path: "/home/bob", err: `authorized key 1 from ovf: path "/home/bob"`},
		{name: "relative", path: "bob/.ssh/authorized_keys", err: `authorized key 1 from ovf: path "bob/.ssh/authorized_keys"`},
		{name: ".ssh leads out of the root", path: "",
			setup: func(t *testing.T, root *sys.Root) { sshSymlink(t, root, "/etc", "/home/bob/.ssh") },
			err:   "authorized keys " + authorizedKeys + ": openat .ssh/authorized_keys: path escapes from parent"},
		{name: ".ssh leads to another home", path: "",
			setup: func(t *testing.T, root *sys.Root) {
				if err := root.MkdirAll("/home/alice/.ssh", 0o700); err != nil {
					t.Fatal(err)
				}
				sshSymlink(t, root, "../alice/.ssh", "/home/bob/.ssh")
			},
			err: "authorized keys " + authorizedKeys + ": openat .ssh/authorized_keys: path escapes from parent"},
		{name: "a directory above leads to another home", path: "/home/bob/keys/azure",
			setup: func(t *testing.T, root *sys.Root) { sshSymlink(t, root, "../alice", "/home/bob/keys") },
			err:   "authorized keys /home/bob/keys/azure: openat keys/azure: path escapes from parent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := sshKey(t, 1, "bob@azure")
			env := sshKeysEnv(t, ovf.PublicKey{Path: tc.path, Value: key})
			if err := env.Root.MkdirAll("/home/alice", 0o755); err != nil {
				t.Fatal(err)
			}
			if tc.setup != nil {
				tc.setup(t, env.Root)
			}
			passwd := modulestest.ReadFile(t, env.Root, "/etc/passwd")
			got, err := modules.SSHKeys{}.Apply(t.Context(), env)
			if tc.want == "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Apply = %q, %v; want an error with %q", got, err, tc.err)
				}
				for _, name := range []string{"/etc/authorized_keys", "/home/alice/.ssh/authorized_keys", "/home/alice/azure"} {
					if _, err := env.Root.Stat(name); err == nil {
						t.Errorf("%s was written", name)
					}
				}
				if modulestest.ReadFile(t, env.Root, "/etc/passwd") != passwd {
					t.Error("/etc/passwd changed")
				}
				return
			}
			if err != nil || got != modules.Changed {
				t.Fatalf("Apply = %q, %v", got, err)
			}
			if !modulestest.Contains(t, env.Root, tc.want, key+"\n") {
				t.Errorf("%s lacks the key", tc.want)
			}
			sshOwned(t, env.Root, tc.want, 0o600)
			sshOwned(t, env.Root, path.Dir(tc.want), 0o700)
			if tc.want != authorizedKeys {
				if _, err := env.Root.Stat(authorizedKeys); err == nil {
					t.Errorf("%s written though no key goes there", authorizedKeys)
				}
			}
		})
	}
}

func sshSymlink(t *testing.T, root *sys.Root, target, name string) {
	t.Helper()
	if err := os.Symlink(target, root.HostPath(name)); err != nil {
		t.Fatal(err)
	}
}

// TestSSHKeysBlock follows authorized_keys through the requests of several
// provisionings, with the user's own lines around azinit's block.
func TestSSHKeysBlock(t *testing.T) {
	k1, k2, k3 := sshKey(t, 1, "one"), sshKey(t, 2, "two"), sshKey(t, 3, "three")
	mine := sshKey(t, 9, "me@laptop")
	begin := "# azinit: keys from the Azure platform (managed; add your own keys outside this block)\n"
	end := "# end azinit\n"
	env := sshKeysEnv(t)
	if err := env.Root.MkdirAll("/home/bob/.ssh", 0o700); err != nil {
		t.Fatal(err)
	}
	if err := env.Root.WriteFileAtomic(authorizedKeys, []byte("# my keys\n"+mine+"\n"+k1+"\n"+"from=\"10.0.0.1\" "+k2), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		name  string
		keys  []string
		add   string // appended by the user before the step
		want  string
		apply modules.Outcome
	}{
		{name: "block appended, the copy of k1 dropped", keys: []string{k1, k2}, apply: modules.Changed,
			want: "# my keys\n" + mine + "\n" + "from=\"10.0.0.1\" " + k2 + "\n" + begin + k1 + "\n" + k2 + "\n" + end},
		{name: "again", keys: []string{k1, k2}, apply: modules.Unchanged,
			want: "# my keys\n" + mine + "\n" + "from=\"10.0.0.1\" " + k2 + "\n" + begin + k1 + "\n" + k2 + "\n" + end},
		{name: "k1 no longer asked for, a user line after the block", keys: []string{k2, k3}, add: "# later\n", apply: modules.Changed,
			want: "# my keys\n" + mine + "\n" + "from=\"10.0.0.1\" " + k2 + "\n" + begin + k2 + "\n" + k3 + "\n" + end + "# later\n"},
		{name: "no keys", apply: modules.Changed,
			want: "# my keys\n" + mine + "\n" + "from=\"10.0.0.1\" " + k2 + "\n" + "# later\n"},
		{name: "no keys again", apply: modules.Skipped,
			want: "# my keys\n" + mine + "\n" + "from=\"10.0.0.1\" " + k2 + "\n" + "# later\n"},
	} {
		if step.add != "" {
			b := modulestest.ReadFile(t, env.Root, authorizedKeys) + step.add
			if err := env.Root.WriteFileAtomic(authorizedKeys, []byte(b), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		var keys []ovf.PublicKey
		for _, k := range step.keys {
			keys = append(keys, ovf.PublicKey{Path: "$HOME/bob/.ssh/authorized_keys", Value: k})
		}
		env.Data.OVF.PublicKeys = keys
		inode := sshInode(t, env.Root, authorizedKeys)
		got, err := modules.SSHKeys{}.Apply(t.Context(), env)
		if err != nil || got != step.apply {
			t.Fatalf("%s: Apply = %q, %v; want %q", step.name, got, err, step.apply)
		}
		if diff := cmp.Diff(step.want, modulestest.ReadFile(t, env.Root, authorizedKeys)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", step.name, diff)
		}
		sshOwned(t, env.Root, authorizedKeys, 0o600)
		if step.apply != modules.Changed && sshInode(t, env.Root, authorizedKeys) != inode {
			t.Errorf("%s: the file was rewritten", step.name)
		}
	}
}

// TestSSHKeysModeFixed: the right keys in a file with the wrong mode are
// not rewritten, the mode is set.
func TestSSHKeysModeFixed(t *testing.T) {
	key := sshKey(t, 1, "one")
	env := sshKeysEnv(t, ovf.PublicKey{Value: key})
	if _, err := (modules.SSHKeys{}).Apply(t.Context(), env); err != nil {
		t.Fatal(err)
	}
	if err := env.Root.Chmod(authorizedKeys, 0o666); err != nil {
		t.Fatal(err)
	}
	inode := sshInode(t, env.Root, authorizedKeys)
	if got, err := (modules.SSHKeys{}).Apply(t.Context(), env); err != nil || got != modules.Changed {
		t.Fatalf("Apply = %q, %v", got, err)
	}
	sshOwned(t, env.Root, authorizedKeys, 0o600)
	if sshInode(t, env.Root, authorizedKeys) != inode {
		t.Error("the file was rewritten to change its mode")
	}
}

func TestSSHKeysRefusesOddFiles(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, root *sys.Root)
	}{
		{"fifo", func(t *testing.T, root *sys.Root) {
			if err := syscall.Mkfifo(root.HostPath(authorizedKeys), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"hard link to a system file", func(t *testing.T, root *sys.Root) {
			if err := os.Link(root.HostPath("/etc/shadow"), root.HostPath(authorizedKeys)); err != nil {
				t.Skip("cannot hard-link here:", err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := sshKeysEnv(t, ovf.PublicKey{Value: sshKey(t, 1, "one")})
			if err := env.Root.MkdirAll("/home/bob/.ssh", 0o700); err != nil {
				t.Fatal(err)
			}
			tc.setup(t, env.Root)
			shadow := modulestest.ReadFile(t, env.Root, "/etc/shadow")
			_, err := modules.SSHKeys{}.Apply(t.Context(), env)
			if err == nil || !strings.Contains(err.Error(), authorizedKeys) || !strings.Contains(err.Error(), "not a regular file with a single link") {
				t.Fatalf("Apply: %v", err)
			}
			if modulestest.ReadFile(t, env.Root, "/etc/shadow") != shadow {
				t.Error("/etc/shadow changed")
			}
		})
	}
}

func TestSSHKeysBadKeys(t *testing.T) {
	good := sshKey(t, 1, "good")
	env := sshKeysEnv(t,
		ovf.PublicKey{Value: good},
		ovf.PublicKey{Value: "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQnotakey"},
		ovf.PublicKey{Value: "restrict " + sshKey(t, 2, "options")},
		ovf.PublicKey{Value: sshKey(t, 3, "a") + "\n" + sshKey(t, 4, "b")},
		ovf.PublicKey{Value: strings.Replace(sshKey(t, 5, "mislabelled"), "ssh-ed25519", "ssh-rsa", 1)},
		ovf.PublicKey{Fingerprint: "EB0C0AB4B2D5FC35F2F0658D19F44C8283E2DD62", Path: "/home/bob/.ssh/authorized_keys"},
	)
	_, err := modules.SSHKeys{}.Apply(t.Context(), env)
	if err == nil {
		t.Fatal("bad keys accepted")
	}
	for _, want := range []string{
		`authorized key 2 from ovf ("ssh-rsa AAAAB3NzaC1y"…): not an OpenSSH public key`,
		`authorized key 3 from ovf ("restrict ssh-ed25519"…): options before the key are not accepted`,
		`authorized key 4 from ovf ("ssh-ed25519 AAAAC3Nz"…): a key must be a single line`,
		`authorized key 5 from ovf`,
		`public key EB0C0AB4B2D5FC35F2F0658D19F44C8283E2DD62: the goal state was not fetched`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if got := modulestest.ReadFile(t, env.Root, authorizedKeys); !strings.Contains(got, "\n"+good+"\n") || strings.Count(got, "ssh-") != 1 {
		t.Errorf("want the good key alone:\n%s", got)
	}
}

func TestSSHKeysUser(t *testing.T) {
	env := sshKeysEnv(t, ovf.PublicKey{Value: sshKey(t, 1, "one")})
	env.Data.OVF.UserName = "carol"
	if _, err := (modules.SSHKeys{}).Apply(t.Context(), env); !errors.Is(err, modules.ErrNoUser) || !strings.Contains(err.Error(), "user carol does not exist") {
		t.Errorf("unknown user: %v", err)
	}
	passwd := modulestest.ReadFile(t, env.Root, "/etc/passwd") + "rooted:x:1001:1001::/:/bin/sh\n"
	if err := env.Root.WriteFileAtomic("/etc/passwd", []byte(passwd), 0o644); err != nil {
		t.Fatal(err)
	}
	env.Data.OVF.UserName = "rooted"
	if _, err := (modules.SSHKeys{}).Apply(t.Context(), env); err == nil || !strings.Contains(err.Error(), `rooted's home directory "/" is not a directory of its own`) {
		t.Errorf("home /: %v", err)
	}
	env.Data = &azure.Data{}
	if got, err := (modules.SSHKeys{}).Apply(t.Context(), env); err != nil || got != modules.Skipped {
		t.Errorf("no user: Apply = %q, %v", got, err)
	}
}

// sshKeyPairData asks for user bob with the key pair key at p.
func sshKeyPairData(t *testing.T, key *rsa.PrivateKey, p string) *azure.Data {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bob"}, NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &azure.Data{
		OVF:          &ovf.Environment{UserName: "bob", KeyPairs: []ovf.KeyPair{{Fingerprint: "ABC123", Path: p}}},
		GoalState:    &wireserver.GoalState{},
		Certificates: []certs.Certificate{{Thumbprint: "ABC123", Cert: cert, Key: key}},
	}
}

func TestSSHKeysKeyPair(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	env := sshKeysEnv(t)
	env.Data = sshKeyPairData(t, key, "$HOME/bob/.ssh/id_rsa")
	const prv, pub = "/home/bob/.ssh/id_rsa", "/home/bob/.ssh/id_rsa.pub"
	if got, err := (modules.SSHKeys{}).Apply(t.Context(), env); err != nil || got != modules.Changed {
		t.Fatalf("Apply = %q, %v", got, err)
	}
	b := modulestest.ReadFile(t, env.Root, prv)
	if !strings.HasPrefix(b, "-----BEGIN OPENSSH PRIVATE KEY-----\n") {
		t.Errorf("private key not in OpenSSH's format:\n%.40s", b)
	}
	if have, err := ssh.ParseRawPrivateKey([]byte(b)); err != nil || !key.Equal(have) {
		t.Errorf("the private key file holds another key: %v", err)
	}
	sshPub, _ := ssh.NewPublicKey(&key.PublicKey)
	if got := modulestest.ReadFile(t, env.Root, pub); got != string(ssh.MarshalAuthorizedKey(sshPub)) {
		t.Errorf("public key = %q", got)
	}
	sshOwned(t, env.Root, prv, 0o600)
	sshOwned(t, env.Root, pub, 0o644)
	sshOwned(t, env.Root, "/home/bob/.ssh", 0o700)

	inode := sshInode(t, env.Root, prv)
	if got, err := (modules.SSHKeys{}).Apply(t.Context(), env); err != nil || got != modules.Unchanged {
		t.Fatalf("again: Apply = %q, %v", got, err)
	}
	if sshInode(t, env.Root, prv) != inode {
		t.Error("the private key was rewritten")
	}

	// As WALinuxAgent left them: the key as PKCS #1 PEM, the public key
	// as PEM, modes inverted. The key stays; the rest is put right.
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	if err := env.Root.WriteFileAtomic(prv, pkcs1, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := env.Root.WriteFileAtomic(pub, []byte("-----BEGIN PUBLIC KEY-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := (modules.SSHKeys{}).Apply(t.Context(), env); err != nil || got != modules.Changed {
		t.Fatalf("over WALinuxAgent's files: Apply = %q, %v", got, err)
	}
	if modulestest.ReadFile(t, env.Root, prv) != string(pkcs1) {
		t.Error("the same key was rewritten")
	}
	sshOwned(t, env.Root, prv, 0o600)
	sshOwned(t, env.Root, pub, 0o644)
	if got := modulestest.ReadFile(t, env.Root, pub); got != string(ssh.MarshalAuthorizedKey(sshPub)) {
		t.Errorf("public key = %q", got)
	}
}

func TestSSHKeysKeyPairOutsideHome(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	env := sshKeysEnv(t)
	env.Data = sshKeyPairData(t, key, "/root/.ssh/id_rsa")
	_, err = modules.SSHKeys{}.Apply(t.Context(), env)
	if !errors.Is(err, modules.ErrOutsideHome) || !strings.Contains(err.Error(), `key pair ABC123 at "/root/.ssh/id_rsa"`) {
		t.Fatalf("Apply: %v", err)
	}
	if strings.Contains(err.Error(), "PRIVATE") || strings.Contains(err.Error(), key.D.String()) {
		t.Error("the error carries the private key")
	}
	if _, err := env.Root.Stat("/root/.ssh/id_rsa"); err == nil {
		t.Error("the key was written outside the home")
	}
}
