package modules

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"syscall"

	"golang.org/x/crypto/ssh"

	"github.com/azinit/azinit/datasource/azure"
	"github.com/azinit/azinit/internal/sys"
)

// SSHKeys gives the admin user the SSH keys the platform sends: the
// authorized keys, in a block of authorized_keys that azinit manages (the
// user's own lines around it are kept), and the key pairs it asks to
// place. Every file is inside the user's home directory, reached through a
// root opened there, so no path or symlink can lead out of it.
type SSHKeys struct{}

// Name is "ssh-keys".
func (SSHKeys) Name() string { return "ssh-keys" }

// ErrOutsideHome means a path the platform gave does not name a file
// inside the user's home directory.
var ErrOutsideHome = errors.New("not a file inside the user's home directory")

// The lines around the keys azinit manages in an authorized_keys file.
const (
	keysBlockBegin = "# azinit: keys from the Azure platform (managed; add your own keys outside this block)"
	keysBlockEnd   = "# end azinit"
)

// defaultAuthorizedKeys is where keys go when the platform names no path,
// relative to the home directory.
const defaultAuthorizedKeys = ".ssh/authorized_keys"

// authorizedKeyTypes are the key types accepted from the platform: what
// OpenSSH serves, without certificates (which need a cert-authority line)
// and without DSA (gone from OpenSSH 9.8).
var authorizedKeyTypes = []string{
	ssh.KeyAlgoRSA, ssh.KeyAlgoED25519,
	ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521,
	ssh.KeyAlgoSKED25519, ssh.KeyAlgoSKECDSA256,
}

// Apply writes the keys. A key or path that is wrong, and a key the
// datasource could not resolve, are reported in the error after every
// other key has been written.
func (SSHKeys) Apply(ctx context.Context, env *Env) (Outcome, error) {
	name := env.Data.Username()
	if name == "" {
		env.Log.Debug("no admin user asked for")
		return Skipped, nil
	}
	acct, err := LookupUser(env.Root, name)
	if errors.Is(err, ErrNoUser) {
		return "", fmt.Errorf("user %s does not exist (the users module creates it): %w", name, err)
	}
	if err != nil {
		return "", err
	}
	keys, keysErr := env.Data.AuthorizedKeys()
	pairs, pairsErr := env.Data.KeyPairs()
	errs := []error{keysErr, pairsErr}

	home, err := openHome(env.Root, acct)
	if err != nil {
		return "", err
	}
	defer home.Close()

	files, err := authorizedKeyFiles(keys, env.Config.Users.HomeDir, acct.Home)
	errs = append(errs, err)
	changed := false
	for _, f := range files {
		file := path.Join(acct.Home, f.name)
		c, err := writeAuthorizedKeys(home, f.name, f.keys, acct.Owner())
		if err != nil {
			errs = append(errs, fmt.Errorf("authorized keys %s: %w", file, err))
		} else if c {
			env.Log.Info("authorized keys updated", "file", file, "keys", len(f.keys))
		}
		changed = changed || c
	}
	for _, p := range pairs {
		c, err := writeKeyPair(home, p, env.Config.Users.HomeDir, acct)
		if err != nil {
			errs = append(errs, fmt.Errorf("key pair %s at %q: %w", p.Certificate.Thumbprint, p.Path, err))
		} else if c {
			env.Log.Info("key pair placed", "certificate", p.Certificate.Thumbprint, "path", p.Path)
		}
		changed = changed || c
	}
	if err := errors.Join(errs...); err != nil {
		return "", err
	}
	switch {
	case changed:
		return Changed, nil
	case len(keys) == 0 && len(pairs) == 0:
		return Skipped, nil
	}
	return Unchanged, nil
}

// keyFile is one authorized_keys file and the keys it must hold.
type keyFile struct {
	name string // relative to the home directory
	keys []string
}

// authorizedKeyFiles groups the keys by the file they go to, in the order
// the platform gave them. The default file always comes first, even with
// no keys, so that keys the platform no longer sends leave it. A key that
// is not an OpenSSH public key, or whose path is not inside the home
// directory, is left out and reported.
func authorizedKeyFiles(keys []azure.AuthorizedKey, homeDir, home string) ([]keyFile, error) {
	files := []keyFile{{name: defaultAuthorizedKeys}}
	var errs []error
	for i, k := range keys {
		where := fmt.Sprintf("authorized key %d from %s", i+1, k.Source)
		if err := checkAuthorizedKey(k.Key); err != nil {
			errs = append(errs, fmt.Errorf("%s (%q…): %w", where, prefix(k.Key, 20), err))
			continue
		}
		name, err := resolveKeyPath(k.Path, homeDir, home)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: path %q: %w", where, k.Path, err))
			continue
		}
		at := slices.IndexFunc(files, func(f keyFile) bool { return f.name == name })
		if at < 0 {
			at = len(files)
			files = append(files, keyFile{name: name})
		}
		if !slices.Contains(files[at].keys, k.Key) {
			files[at].keys = append(files[at].keys, k.Key)
		}
	}
	return files, errors.Join(errs...)
}

// checkAuthorizedKey accepts a single line holding an OpenSSH public key
// of a known type, with no options before it.
func checkAuthorizedKey(line string) error {
	if strings.ContainsAny(line, "\r\n") {
		return errors.New("a key must be a single line")
	}
	pk, _, options, _, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		return fmt.Errorf("not an OpenSSH public key: %w", err)
	}
	if options != nil {
		return errors.New("options before the key are not accepted")
	}
	if !slices.Contains(authorizedKeyTypes, pk.Type()) {
		return fmt.Errorf("type %s is not one of %s", pk.Type(), strings.Join(authorizedKeyTypes, ", "))
	}
	return nil
}

// prefix is the first n bytes of s, to name a key in an error.
func prefix(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// resolveKeyPath turns a path the platform gave into one relative to the
// user's home directory home: "" is the default authorized_keys, a leading
// "$HOME" is the configured base of home directories (homeDir, as
// WALinuxAgent's OS.HomeDir), and the cleaned path must name something
// strictly inside home.
func resolveKeyPath(p, homeDir, home string) (string, error) {
	if !ownHome(home) {
		return "", fmt.Errorf("%w: the home directory is %q", ErrOutsideHome, home)
	}
	if p == "" {
		return defaultAuthorizedKeys, nil
	}
	if rest, ok := strings.CutPrefix(p, "$HOME"); ok && (rest == "" || rest[0] == '/') {
		p = homeDir + rest
	}
	home = path.Clean(home)
	rel, ok := strings.CutPrefix(path.Clean(p), home+"/")
	if !path.IsAbs(p) || !ok {
		return "", fmt.Errorf("%w %s", ErrOutsideHome, home)
	}
	return rel, nil
}

// ownHome reports whether home can be a user's own directory: absolute,
// and not "/" (as some system accounts have).
func ownHome(home string) bool {
	return path.IsAbs(home) && path.Clean(home) != "/"
}

// openHome opens acct's home directory as a root of its own: the user owns
// what is below it and may have placed symlinks there, and through this
// root none can lead out of it. It must be the directory the target root
// has at that path, not one the host reaches through an absolute symlink.
func openHome(root *sys.Root, acct Account) (*sys.Root, error) {
	if !ownHome(acct.Home) {
		return nil, fmt.Errorf("%s's home directory %q is not a directory of its own", acct.Name, acct.Home)
	}
	want, err := root.Stat(acct.Home)
	if err != nil {
		return nil, fmt.Errorf("home directory of %s: %w", acct.Name, err)
	}
	home, err := sys.OpenRoot(root.HostPath(acct.Home))
	if err != nil {
		return nil, fmt.Errorf("home directory of %s: %w", acct.Name, err)
	}
	if got, err := home.Stat("/"); err != nil || !os.SameFile(got, want) {
		home.Close()
		return nil, fmt.Errorf("home directory %s of %s leads out of the target root", acct.Home, acct.Name)
	}
	return home, nil
}

// writeAuthorizedKeys makes the azinit block of the authorized_keys file
// name hold keys, keeping the user's lines.
func writeAuthorizedKeys(home *sys.Root, name string, keys []string, owner sys.Owner) (bool, error) {
	f, old, err := readPlainFile(home, name)
	if err != nil {
		return false, err
	}
	if f == nil {
		if len(keys) == 0 {
			return false, nil
		}
		if err := makeDirs(home, path.Dir(name), owner); err != nil {
			return false, err
		}
	} else {
		defer f.Close()
	}
	want := mergeAuthorizedKeys(old, keys)
	if f != nil && bytes.Equal(want, old) {
		return settleFile(f, 0o600, owner)
	}
	return true, home.WriteFileAtomicAs(name, want, 0o600, owner)
}

// mergeAuthorizedKeys is the authorized_keys file old with azinit's block
// holding keys (one line each, already checked): the block replaces the
// first old one, or is appended; the block is dropped when there are no
// keys; a line outside it identical to one of keys is dropped, so no key
// is listed twice; every other line is kept byte for byte. A begin marker
// with no end marker after it is dropped alone, keeping the lines after
// it, which may be the user's.
func mergeAuthorizedKeys(old []byte, keys []string) []byte {
	var block []byte
	if len(keys) > 0 {
		block = append(block, keysBlockBegin+"\n"...)
		for _, k := range keys {
			block = append(block, k+"\n"...)
		}
		block = append(block, keysBlockEnd+"\n"...)
	}
	lines := splitLines(old)
	var out []byte
	placed := false
	for i := 0; i < len(lines); i++ {
		text := strings.TrimSpace(lines[i])
		switch {
		case text == keysBlockBegin:
			if !placed {
				out = append(out, block...)
				placed = true
			}
			if end := slices.IndexFunc(lines[i+1:], func(l string) bool { return strings.TrimSpace(l) == keysBlockEnd }); end >= 0 {
				i += 1 + end
			}
		case slices.Contains(keys, text):
		default:
			out = append(out, lines[i]...)
		}
	}
	if !placed && len(block) > 0 {
		if len(out) > 0 && out[len(out)-1] != '\n' {
			out = append(out, '\n')
		}
		out = append(out, block...)
	}
	return out
}

// writeKeyPair places a key pair: the private key in OpenSSH's format
// (0600) and the public key as an OpenSSH line in <path>.pub (0644), both
// the user's. The private key is rewritten only when the file does not
// hold that key already (its encoding is not deterministic).
func writeKeyPair(home *sys.Root, p azure.KeyPair, homeDir string, acct Account) (bool, error) {
	name, err := resolveKeyPath(p.Path, homeDir, acct.Home)
	if err != nil {
		return false, err
	}
	signer, ok := p.Certificate.Key.(crypto.Signer)
	if !ok {
		return false, fmt.Errorf("a %T private key cannot be written for ssh", p.Certificate.Key)
	}
	pub, err := ssh.NewPublicKey(signer.Public())
	if err != nil {
		return false, fmt.Errorf("the certificate's key: %w", err)
	}
	if err := makeDirs(home, path.Dir(name), acct.Owner()); err != nil {
		return false, err
	}
	f, old, err := readPlainFile(home, name)
	if err != nil {
		return false, err
	}
	changed := false
	if f != nil {
		defer f.Close()
	}
	if f != nil && sameKey(old, p.Certificate.Key) {
		if changed, err = settleFile(f, 0o600, acct.Owner()); err != nil {
			return false, err
		}
	} else {
		block, err := ssh.MarshalPrivateKey(p.Certificate.Key, "")
		if err != nil {
			return false, fmt.Errorf("encoding the private key: %w", err)
		}
		if err := home.WriteFileAtomicAs(name, pem.EncodeToMemory(block), 0o600, acct.Owner()); err != nil {
			return false, err
		}
		changed = true
	}
	c, err := writeFile(home, name+".pub", ssh.MarshalAuthorizedKey(pub), 0o644, acct.Owner())
	return changed || c, err
}

// sameKey reports whether the PEM file b holds key.
func sameKey(b []byte, key crypto.PrivateKey) bool {
	have, err := ssh.ParseRawPrivateKey(b)
	if err != nil {
		return false
	}
	if k, ok := have.(*ed25519.PrivateKey); ok {
		have = *k // x/crypto/ssh returns ed25519 keys by pointer
	}
	k, ok := have.(interface{ Equal(crypto.PrivateKey) bool })
	return ok && k.Equal(key)
}

// writeFile makes name under home hold data, with perm and owner, writing
// only when the content differs.
func writeFile(home *sys.Root, name string, data []byte, perm fs.FileMode, owner sys.Owner) (bool, error) {
	f, old, err := readPlainFile(home, name)
	if err != nil {
		return false, err
	}
	if f != nil {
		defer f.Close()
		if bytes.Equal(old, data) {
			return settleFile(f, perm, owner)
		}
	}
	return true, home.WriteFileAtomicAs(name, data, perm, owner)
}

// readPlainFile opens and reads name under home; it returns a nil file
// when there is none. Anything but a regular file with a single link is
// refused: a FIFO would block (hence O_NONBLOCK), and a hard link could be
// someone else's file, which the user would then get a copy of.
func readPlainFile(home *sys.Root, name string) (*os.File, []byte, error) {
	f, err := home.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); !fi.Mode().IsRegular() || !ok || st.Nlink != 1 {
			err = fmt.Errorf("%s is not a regular file with a single link", name)
		}
	}
	var b []byte
	if err == nil {
		b, err = io.ReadAll(f)
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, b, nil
}

// settleFile gives the open file f perm and owner if it lacks them.
func settleFile(f *os.File, perm fs.FileMode, owner sys.Owner) (bool, error) {
	fi, err := f.Stat()
	if err != nil {
		return false, err
	}
	st := fi.Sys().(*syscall.Stat_t)
	changed := false
	if int(st.Uid) != owner.UID || int(st.Gid) != owner.GID {
		if err := f.Chown(owner.UID, owner.GID); err != nil {
			return false, err
		}
		changed = true
	}
	if fi.Mode().Perm() != perm {
		if err := f.Chmod(perm); err != nil {
			return false, err
		}
		changed = true
	}
	return changed, nil
}

// makeDirs creates dir (relative to home) and its missing parents, each
// 0700 and owner's; directories that exist are left as they are.
func makeDirs(home *sys.Root, dir string, owner sys.Owner) error {
	if dir == "." {
		return nil
	}
	if err := makeDirs(home, path.Dir(dir), owner); err != nil {
		return err
	}
	fi, err := home.Stat(dir)
	switch {
	case err == nil && !fi.IsDir():
		return fmt.Errorf("%s is not a directory", dir)
	case err == nil:
		return nil
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	if err := home.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := home.Chmod(dir, 0o700); err != nil { // MkdirAll honours the umask
		return err
	}
	return home.Chown(dir, owner)
}
