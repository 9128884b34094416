// Package certs is the agent's side of the wireserver's certificates: the
// transport key pair the wireserver encrypts them to, the Certificates
// document, its decryption (CMS envelope, then PKCS #12), and the
// <THUMBPRINT>.crt/.prv files that extensions decrypt their protected
// settings with.
package certs

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/big"
	"path"
	"time"

	"github.com/azinit/azinit/internal/sys"
)

// Transport key pair file names, WALinuxAgent's.
const (
	TransportKeyFile  = "TransportPrivate.pem"
	TransportCertFile = "TransportCert.pem"
)

// transportLifetime is what WALinuxAgent's openssl req -days asks for.
const transportLifetime = 730 * 24 * time.Hour

// ErrNoTransport means there is no saved transport key pair.
var ErrNoTransport = errors.New("no transport key pair")

// Transport is the key pair the wireserver encrypts certificates to.
type Transport struct {
	Key  *rsa.PrivateKey
	Cert *x509.Certificate
}

// GenerateTransport makes a transport key pair as WALinuxAgent's
// `openssl req -x509 -nodes -subj /CN=LinuxTransport -days 730 -newkey
// rsa:2048` does, OpenSSL's default extensions included: the wireserver
// names the recipient by subject key identifier, so it must be there.
func GenerateTransport(random io.Reader) (*Transport, error) {
	key, err := rsa.GenerateKey(random, 2048)
	if err != nil {
		return nil, fmt.Errorf("transport key: %w", err)
	}
	serial, err := rand.Int(random, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("transport certificate serial: %w", err)
	}
	ski := sha1.Sum(x509.MarshalPKCS1PublicKey(&key.PublicKey)) // RFC 5280 method 1
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "LinuxTransport"},
		NotBefore:             now,
		NotAfter:              now.Add(transportLifetime),
		BasicConstraintsValid: true,
		IsCA:                  true,
		SubjectKeyId:          ski[:],
		AuthorityKeyId:        ski[:],
	}
	der, err := x509.CreateCertificate(random, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("transport certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("transport certificate: %w", err)
	}
	return &Transport{Key: key, Cert: cert}, nil
}

// LoadTransport reads the key pair saved in dir: TransportPrivate.pem
// (PKCS #8 "PRIVATE KEY", or PKCS #1 "RSA PRIVATE KEY") and
// TransportCert.pem. It fails with ErrNoTransport when either is missing.
func LoadTransport(root *sys.Root, dir string) (*Transport, error) {
	f, err := readTransport(root, dir)
	if err != nil {
		return nil, err
	}
	return f.parse()
}

// transportFiles are the saved key pair as read, not yet parsed.
type transportFiles struct {
	keyName, certName string
	keyPEM, certPEM   []byte
}

func readTransport(root *sys.Root, dir string) (*transportFiles, error) {
	f := &transportFiles{keyName: path.Join(dir, TransportKeyFile), certName: path.Join(dir, TransportCertFile)}
	for _, r := range []struct {
		name string
		dst  *[]byte
	}{{f.keyName, &f.keyPEM}, {f.certName, &f.certPEM}} {
		b, err := root.ReadFile(r.name)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s is missing", ErrNoTransport, r.name)
		}
		if err != nil {
			return nil, err
		}
		*r.dst = b
	}
	return f, nil
}

func (f *transportFiles) parse() (*Transport, error) {
	key, err := parseRSAKey(f.keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.keyName, err)
	}
	cert, err := parseCertPEM(f.certPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.certName, err)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("%s does not hold the key of %s", f.keyName, f.certName)
	}
	return &Transport{Key: key, Cert: cert}, nil
}

// parseRSAKey reads the first private key block of a PEM file. Errors say
// what the block is, never what it holds.
func parseRSAKey(b []byte) (*rsa.PrivateKey, error) {
	for {
		var block *pem.Block
		if block, b = pem.Decode(b); block == nil {
			return nil, errors.New("no PRIVATE KEY or RSA PRIVATE KEY block")
		}
		switch block.Type {
		case "RSA PRIVATE KEY":
			key, err := x509.ParsePKCS1PrivateKey(block.Bytes)
			if err != nil {
				return nil, errors.New("RSA PRIVATE KEY block is not a PKCS #1 RSA key")
			}
			return key, nil
		case "PRIVATE KEY":
			key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
			if err != nil {
				return nil, errors.New("PRIVATE KEY block is not a PKCS #8 key")
			}
			rsaKey, ok := key.(*rsa.PrivateKey)
			if !ok {
				return nil, fmt.Errorf("key is %T, not RSA", key)
			}
			return rsaKey, nil
		}
	}
}

// parseCertPEM reads the first CERTIFICATE block of a PEM file.
func parseCertPEM(b []byte) (*x509.Certificate, error) {
	for {
		var block *pem.Block
		if block, b = pem.Decode(b); block == nil {
			return nil, errors.New("no CERTIFICATE block")
		}
		if block.Type == "CERTIFICATE" {
			return x509.ParseCertificate(block.Bytes)
		}
	}
}

// Save writes the key pair to dir (created 0700 if missing):
// TransportPrivate.pem as PKCS #8 with mode 0600, TransportCert.pem 0644.
// Each write is atomic, and a file that already holds the same content is
// left alone.
func (t *Transport) Save(root *sys.Root, dir string) error {
	keyDER, err := x509.MarshalPKCS8PrivateKey(t.Key)
	if err != nil {
		return fmt.Errorf("transport key: %w", err)
	}
	if err := root.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	if err := writeIfChanged(root, path.Join(dir, TransportKeyFile), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	return writeIfChanged(root, path.Join(dir, TransportCertFile), certPEM(t.Cert), 0o644)
}

// HeaderValue is the x-ms-guest-agent-public-x509-cert header: the
// certificate's DER in base64.
func (t *Transport) HeaderValue() string {
	return base64.StdEncoding.EncodeToString(t.Cert.Raw)
}

// Pending is a transport key pair being loaded or generated in the
// background, so that boot can start it early, off its critical path.
type Pending struct {
	done chan struct{}
	t    *Transport
	err  error
}

// PrepareTransport makes the transport key pair ready in the background:
// the pair saved in dir, or, when there is none usable (missing,
// unreadable, not matching, expired), a new one. Parsing a key costs about
// a millisecond and generating one tens, which boot overlaps with other
// work; only reading the files happens before PrepareTransport returns, so
// root need not outlive it. A new pair is not saved: call Save once it is
// known to be wanted. log may be nil.
func PrepareTransport(root *sys.Root, dir string, random io.Reader, log *slog.Logger) *Pending {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Pending{done: make(chan struct{})}
	files, err := readTransport(root, dir)
	go func() {
		defer close(p.done)
		if p.t = usableTransport(files, err, dir, log); p.t == nil {
			p.t, p.err = GenerateTransport(random)
		}
	}()
	return p
}

// usableTransport is the saved pair if it can be used, else nil, having
// logged why not.
func usableTransport(files *transportFiles, readErr error, dir string, log *slog.Logger) *Transport {
	var t *Transport
	err := readErr
	if err == nil {
		t, err = files.parse()
	}
	switch {
	case errors.Is(err, ErrNoTransport):
		log.Debug("no transport key pair, generating one", "dir", dir)
	case err != nil:
		log.Warn("transport key pair unusable, generating a new one", "error", err)
	case !time.Now().Before(t.Cert.NotAfter):
		log.Info("transport certificate expired, generating a new key pair", "dir", dir, "notAfter", t.Cert.NotAfter)
	default:
		return t
	}
	return nil
}

// Wait returns the key pair once it is ready, or ctx's error.
func (p *Pending) Wait(ctx context.Context) (*Transport, error) {
	select {
	case <-p.done:
		return p.t, p.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func certPEM(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// writeIfChanged writes data to name atomically unless the file already
// holds it; an unchanged file whose mode grants more than perm is narrowed
// to perm.
func writeIfChanged(root *sys.Root, name string, data []byte, perm fs.FileMode) error {
	if old, err := root.ReadFile(name); err == nil && bytes.Equal(old, data) {
		fi, err := root.Stat(name)
		if err != nil {
			return fmt.Errorf("stat %s: %w", name, err)
		}
		if fi.Mode().Perm()&^perm != 0 {
			if err := root.Chmod(name, perm); err != nil {
				return fmt.Errorf("chmod %s: %w", name, err)
			}
		}
		return nil
	}
	return root.WriteFileAtomic(name, data, perm)
}
