package modules

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/crypto/ssh"

	"github.com/azinit/azinit/internal/sys"
)

// SSHHostKeys replaces the image's SSH host keys with new ones, so that
// VMs made from one image do not share them (the stage runs it once per
// instance). It removes every /etc/ssh/ssh_host_*key* file, as WALinuxAgent
// and cloud-init do, and generates the configured types with ssh-keygen,
// in parallel. No one needs host keys before sshd starts, after the stage:
// the work is deferred past reporting Ready, and RSA, which takes
// ssh-keygen about half a second, does not compete with provisioning for
// the CPU.
//
// The fingerprints are logged, written to the console between cloud-init's
// markers, and written to KVP, each as the record
// "azinit|ssh-host-key|<type>" = "SHA256:<base64>". cloud-init writes no
// such record to KVP, so there is no name to be compatible with; the key
// follows the form of azinit's other records.
type SSHHostKeys struct{}

// Name is "ssh-host-keys".
func (SSHHostKeys) Name() string { return "ssh-host-keys" }

// HostKeyKVPPrefix starts the KVP key of a host key's fingerprint; the
// key type (ssh-keygen -t) follows.
const HostKeyKVPPrefix = "azinit|ssh-host-key|"

const sshDir = "/etc/ssh"

// Apply regenerates the host keys.
func (SSHHostKeys) Apply(ctx context.Context, env *Env) (Outcome, error) {
	cfg := env.Config.SSHHostKeys
	if !cfg.Regenerate {
		env.Log.Debug("host key regeneration is off")
		return Skipped, nil
	}
	if _, err := env.Root.Stat(sshDir); errors.Is(err, fs.ErrNotExist) {
		env.Log.Info("no " + sshDir + ": sshd is not installed")
		return Skipped, nil
	}
	var types []string
	for _, t := range cfg.Types {
		if !slices.Contains(types, t) {
			types = append(types, t)
		}
	}
	comment := env.Data.Hostname()
	env.Defer("generate", func(ctx context.Context) error {
		if err := removeHostKeys(env.Root); err != nil {
			return err
		}
		keys, err := generateHostKeys(ctx, env, types, comment)
		if err != nil {
			return err
		}
		showHostKeys(env, keys)
		return nil
	})
	return Changed, nil
}

// removeHostKeys removes the image's host keys, of every type, with their
// certificates.
func removeHostKeys(root *sys.Root) error {
	names, err := root.Glob(sshDir + "/ssh_host_*key*")
	if err != nil {
		return err
	}
	for _, name := range names {
		if err := root.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("removing the image's host key %s: %w", name, err)
		}
	}
	return nil
}

// hostKey is a generated host key's fingerprint.
type hostKey struct {
	Type        string // ssh-keygen -t
	Fingerprint string // SHA256:<base64>
	Line        string // as ssh-keygen -l prints it
}

// generateHostKeys generates the keys of types in parallel.
func generateHostKeys(ctx context.Context, env *Env, types []string, comment string) ([]hostKey, error) {
	keys := make([]hostKey, len(types))
	errs := make([]error, len(types))
	var wg sync.WaitGroup
	for i, t := range types {
		wg.Go(func() { keys[i], errs[i] = generateHostKey(ctx, env, t, comment) })
	}
	wg.Wait()
	return keys, errors.Join(errs...)
}

// generateHostKey runs ssh-keygen for one type and records the new key's
// fingerprint in KVP.
func generateHostKey(ctx context.Context, env *Env, typ, comment string) (hostKey, error) {
	name := sshDir + "/ssh_host_" + typ + "_key"
	cmd := sys.Command{Name: "ssh-keygen", Args: []string{"-q", "-N", "", "-t", typ, "-C", comment, "-f", env.Root.HostPath(name)}}
	if _, err := env.Run.Run(ctx, cmd); err != nil {
		return hostKey{}, fmt.Errorf("generating the %s host key: %w", typ, err)
	}
	// ssh-keygen makes the private key 0600 itself, the public one with
	// the umask (0600 under systemd's UMask=0077).
	if err := env.Root.Chmod(name+".pub", 0o644); err != nil {
		return hostKey{}, fmt.Errorf("the %s host key: %w", typ, err)
	}
	pub, err := env.Root.ReadFile(name + ".pub")
	if err != nil {
		return hostKey{}, fmt.Errorf("the %s host key: %w", typ, err)
	}
	k, err := parseHostKey(typ, pub)
	if err != nil {
		return hostKey{}, fmt.Errorf("the %s host key %s.pub: %w", typ, name, err)
	}
	if env.KVP != nil {
		if err := env.KVP.Write(HostKeyKVPPrefix+typ, k.Fingerprint); err != nil {
			env.Log.Warn("writing a host key fingerprint to KVP", "type", typ, "error", err)
		}
	}
	return k, nil
}

// parseHostKey reads the public key file pub of a host key of type typ.
func parseHostKey(typ string, pub []byte) (hostKey, error) {
	pk, comment, _, _, err := ssh.ParseAuthorizedKey(pub)
	if err != nil {
		return hostKey{}, err
	}
	var key crypto.PublicKey
	if c, ok := pk.(ssh.CryptoPublicKey); ok {
		key = c.CryptoPublicKey()
	}
	var bits int
	var label string
	switch k := key.(type) {
	case *rsa.PublicKey:
		bits, label = k.N.BitLen(), "RSA"
	case *ecdsa.PublicKey:
		bits, label = k.Curve.Params().BitSize, "ECDSA"
	case ed25519.PublicKey:
		bits, label = 256, "ED25519"
	default:
		return hostKey{}, fmt.Errorf("unexpected key type %s", pk.Type())
	}
	if comment == "" {
		comment = "no comment"
	}
	fp := ssh.FingerprintSHA256(pk)
	return hostKey{Type: typ, Fingerprint: fp, Line: fmt.Sprintf("%d %s %s (%s)", bits, fp, comment, label)}, nil
}

// showHostKeys logs the fingerprints and, on the running system, writes
// them to the console between cloud-init's markers, where the serial log
// (boot diagnostics) shows them to whoever connects first.
func showHostKeys(env *Env, keys []hostKey) {
	var b strings.Builder
	b.WriteString("-----BEGIN SSH HOST KEY FINGERPRINTS-----\n")
	for _, k := range keys {
		env.Log.Info("ssh host key", "type", k.Type, "fingerprint", k.Fingerprint)
		b.WriteString(k.Line + "\n")
	}
	b.WriteString("-----END SSH HOST KEY FINGERPRINTS-----\n")
	if !env.Live {
		return
	}
	// O_NOCTTY: the console must not become our controlling terminal.
	f, err := env.Root.OpenFile("/dev/console", os.O_WRONLY|syscall.O_NOCTTY, 0)
	if err == nil {
		_, err = f.WriteString(b.String())
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		env.Log.Warn("writing the host key fingerprints to the console", "error", err)
	}
}
