package certs

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/azinit/azinit/datasource/azure/certs/pkcs"
	"github.com/azinit/azinit/internal/fixtures"
	"github.com/azinit/azinit/internal/logging"
	"github.com/azinit/azinit/internal/sys"
)

const lib = "/var/lib/waagent"

func tempRoot(t testing.TB) *sys.Root {
	t.Helper()
	root, err := sys.OpenRoot(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	return root
}

func writeHostFile(t testing.TB, root *sys.Root, name string, data []byte, perm os.FileMode) {
	t.Helper()
	p := root.HostPath(name)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, perm); err != nil {
		t.Fatal(err)
	}
}

func mode(t testing.TB, root *sys.Root, name string) os.FileMode {
	t.Helper()
	fi, err := root.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// fixtureTransport is WALinuxAgent's test transport pair, saved as the
// agent saves it, and loaded back.
func fixtureTransport(t testing.TB) *Transport {
	t.Helper()
	root := tempRoot(t)
	writeHostFile(t, root, lib+"/"+TransportKeyFile, fixtures.Read(t, "wire/trans_prv"), 0o600)
	writeHostFile(t, root, lib+"/"+TransportCertFile, fixtures.Read(t, "wire/trans_cert"), 0o644)
	tr, err := LoadTransport(root, lib)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func TestGenerateTransport(t *testing.T) {
	tr, err := GenerateTransport(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	c := tr.Cert
	if c.Subject.String() != "CN=LinuxTransport" || c.Issuer.String() != "CN=LinuxTransport" {
		t.Errorf("subject %q issuer %q", c.Subject, c.Issuer)
	}
	if got := c.NotAfter.Sub(c.NotBefore); got != 730*24*time.Hour {
		t.Errorf("lifetime %v", got)
	}
	if !c.IsCA || !c.BasicConstraintsValid {
		t.Error("not CA:TRUE")
	}
	if tr.Key.N.BitLen() != 2048 {
		t.Errorf("key of %d bits", tr.Key.N.BitLen())
	}
	stripped := *c
	stripped.SubjectKeyId = nil
	if want := pkcs.SubjectKeyID(&stripped); string(c.SubjectKeyId) != string(want) {
		t.Errorf("SubjectKeyId %x, want SHA-1 of the public key %x", c.SubjectKeyId, want)
	}
	if err := c.CheckSignatureFrom(c); err != nil {
		t.Errorf("not self-signed: %v", err)
	}
	der, err := base64.StdEncoding.DecodeString(tr.HeaderValue())
	if err != nil || string(der) != string(c.Raw) {
		t.Errorf("HeaderValue is not the certificate's DER in base64")
	}
}

func TestTransportSaveLoad(t *testing.T) {
	root := tempRoot(t)
	tr, err := GenerateTransport(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Save(root, lib); err != nil {
		t.Fatal(err)
	}
	if m := mode(t, root, lib); m != 0o700 {
		t.Errorf("dir mode %v", m)
	}
	keyName, certName := lib+"/"+TransportKeyFile, lib+"/"+TransportCertFile
	if m := mode(t, root, keyName); m != 0o600 {
		t.Errorf("key mode %v", m)
	}
	if m := mode(t, root, certName); m != 0o644 {
		t.Errorf("cert mode %v", m)
	}
	if b, _ := root.ReadFile(keyName); !strings.HasPrefix(string(b), "-----BEGIN PRIVATE KEY-----\n") {
		t.Error("key is not PEM PKCS #8")
	}
	got, err := LoadTransport(root, lib)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Key.Equal(tr.Key) || !got.Cert.Equal(tr.Cert) {
		t.Error("loaded pair differs")
	}

	// Unchanged content is not rewritten (WALinuxAgent makes it 0400, which
	// stays); a too-open mode is narrowed.
	if err := root.Chmod(keyName, 0o400); err != nil {
		t.Fatal(err)
	}
	if err := root.Chmod(certName, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := got.Save(root, lib); err != nil {
		t.Fatal(err)
	}
	if m := mode(t, root, keyName); m != 0o400 {
		t.Errorf("unchanged key rewritten: mode %v", m)
	}
	if m := mode(t, root, certName); m != 0o644 {
		t.Errorf("cert mode not narrowed: %v", m)
	}
}

func TestLoadTransportFixture(t *testing.T) {
	tr := fixtureTransport(t)
	if tr.Cert.Subject.CommonName != "LinuxTransport" {
		t.Errorf("subject %v", tr.Cert.Subject)
	}
}

func TestLoadTransportErrors(t *testing.T) {
	tr, err := GenerateTransport(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other, err := GenerateTransport(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecDER, _ := x509.MarshalPKCS8PrivateKey(ec)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(tr.Key)
	pemOf := func(typ string, der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}) }
	certPEM := pemOf("CERTIFICATE", tr.Cert.Raw)
	tests := []struct {
		name      string
		key, cert []byte // nil: absent
		want      string
		noPair    bool
	}{
		{"nothing", nil, nil, "TransportPrivate.pem is missing", true},
		{"no cert", pemOf("PRIVATE KEY", pkcs8), nil, "TransportCert.pem is missing", true},
		{"no key", nil, certPEM, "TransportPrivate.pem is missing", true},
		{"not PEM", []byte("garbage"), certPEM, "no PRIVATE KEY or RSA PRIVATE KEY block", false},
		{"bad PKCS #8", pemOf("PRIVATE KEY", []byte("xx")), certPEM, "PRIVATE KEY block is not a PKCS #8 key", false},
		{"bad PKCS #1", pemOf("RSA PRIVATE KEY", []byte("xx")), certPEM, "RSA PRIVATE KEY block is not a PKCS #1 RSA key", false},
		{"EC key", pemOf("PRIVATE KEY", ecDER), certPEM, "not RSA", false},
		{"no cert block", pemOf("PRIVATE KEY", pkcs8), []byte("x"), "no CERTIFICATE block", false},
		{"mismatch", pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(other.Key)), certPEM, "does not hold the key of", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := tempRoot(t)
			if tc.key != nil {
				writeHostFile(t, root, lib+"/"+TransportKeyFile, tc.key, 0o600)
			}
			if tc.cert != nil {
				writeHostFile(t, root, lib+"/"+TransportCertFile, tc.cert, 0o644)
			}
			_, err := LoadTransport(root, lib)
			if err == nil || !strings.Contains(err.Error(), tc.want) || errors.Is(err, ErrNoTransport) != tc.noPair {
				t.Errorf("err = %v, want %q (ErrNoTransport %v)", err, tc.want, tc.noPair)
			}
		})
	}

	// PKCS #1, what older OpenSSL wrote, is accepted.
	root := tempRoot(t)
	writeHostFile(t, root, lib+"/"+TransportKeyFile, pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(tr.Key)), 0o600)
	writeHostFile(t, root, lib+"/"+TransportCertFile, certPEM, 0o644)
	if _, err := LoadTransport(root, lib); err != nil {
		t.Errorf("PKCS #1 key: %v", err)
	}
}

func TestPrepareTransport(t *testing.T) {
	ctx := context.Background()
	log := logging.Discard()

	// Nothing saved: a new pair, not written until Save.
	root := tempRoot(t)
	fresh, err := PrepareTransport(root, lib, rand.Reader, log).Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := root.Stat(lib + "/" + TransportKeyFile); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("generated pair written before Save: %v", err)
	}

	// Saved: reused.
	if err := fresh.Save(root, lib); err != nil {
		t.Fatal(err)
	}
	again, err := PrepareTransport(root, lib, rand.Reader, log).Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Cert.Equal(fresh.Cert) {
		t.Error("saved pair not reused")
	}

	// Unusable (here: expired): replaced.
	expired := *fresh
	tmpl := *fresh.Cert
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour)
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, &tmpl, &fresh.Key.PublicKey, fresh.Key)
	if err != nil {
		t.Fatal(err)
	}
	if expired.Cert, err = x509.ParseCertificate(der); err != nil {
		t.Fatal(err)
	}
	if err := expired.Save(root, lib); err != nil {
		t.Fatal(err)
	}
	renewed, err := PrepareTransport(root, lib, rand.Reader, log).Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if renewed.Cert.Equal(expired.Cert) || renewed.Key.Equal(fresh.Key) {
		t.Error("expired pair reused")
	}
}

func TestPendingWaitCancelled(t *testing.T) {
	p := &Pending{done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v", err)
	}
}
