package certs

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/ssh"

	"github.com/azinit/azinit/datasource/azure/certs/pkcs"
	"github.com/azinit/azinit/internal/fixtures"
	"github.com/azinit/azinit/internal/testenv"
)

const (
	fixtureTenant = "F6ABAA61098A301EBB8A571C3C7CF77F355F7FA9" // with its key
	fixtureCRP    = "8979F1AC8C4215827BF3B5A403E6137B504D02A4" // certificate only
)

func fixtureEnvelope(t testing.TB) []byte {
	t.Helper()
	f, err := ParseCertificatesXML(fixtures.Read(t, "wire/certs.xml"))
	if err != nil {
		t.Fatal(err)
	}
	return f.Data
}

// summary is what tests compare: thumbprint → has a key that matches.
func summary(t testing.TB, cs []Certificate) map[string]bool {
	t.Helper()
	m := make(map[string]bool)
	for _, c := range cs {
		if c.Thumbprint != Thumbprint(c.Cert.Raw) {
			t.Errorf("%s: thumbprint does not match the certificate", c.Thumbprint)
		}
		if c.Key != nil {
			pub := c.Key.(crypto.Signer).Public()
			if !pub.(interface{ Equal(crypto.PublicKey) bool }).Equal(c.Cert.PublicKey) {
				t.Errorf("%s: key does not match", c.Thumbprint)
			}
		}
		m[c.Thumbprint] = c.Key != nil
	}
	return m
}

func TestDecryptFixture(t *testing.T) {
	got, err := Open(fixtureEnvelope(t), fixtureTransport(t))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{fixtureTenant: true, fixtureCRP: false}
	if diff := cmp.Diff(want, summary(t, got.Certificates)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if got.Certificates[0].Thumbprint != fixtureCRP {
		t.Error("not sorted by thumbprint")
	}
	if len(got.Dropped) != 0 || !got.MACVerified {
		t.Errorf("dropped %v, MAC verified %v", got.Dropped, got.MACVerified)
	}
	if _, ok := got.Certificates[1].Key.(*rsa.PrivateKey); !ok {
		t.Errorf("tenant key is %T", got.Certificates[1].Key)
	}
}

func TestDecryptErrors(t *testing.T) {
	tr := fixtureTransport(t)
	other, err := GenerateTransport(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	env := fixtureEnvelope(t)
	if _, err := Decrypt([]byte("junk"), tr); err == nil || !strings.HasPrefix(err.Error(), "envelope: ") {
		t.Errorf("junk: %v", err)
	}
	// A different transport key: the SKI names nobody we know, the lone
	// recipient is tried, and the content does not decrypt.
	if _, err := Decrypt(env, other); err == nil || !regexp.MustCompile(`^(content padding|PFX): `).MatchString(err.Error()) {
		t.Errorf("other transport: %v", err)
	}
	sealed, err := pkcs.SealEnvelope(rand.Reader, []byte("not a PFX"), tr.Cert, pkcs.AES128CBC)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Decrypt(sealed, tr); err == nil || !strings.HasPrefix(err.Error(), "PFX: not a DER PFX") {
		t.Errorf("not a PFX: %v", err)
	}
}

// TestOpenDropped: a key without its certificate and a certificate Go
// cannot parse are left out and reported without key material.
func TestOpenDropped(t *testing.T) {
	tr := fixtureTransport(t)
	fixture, err := Decrypt(fixtureEnvelope(t), tr)
	if err != nil {
		t.Fatal(err)
	}
	leaf := fixture[1]
	stray, err := GenerateTransport(rand.Reader) // any other key will do
	if err != nil {
		t.Fatal(err)
	}
	leafKey, _ := x509.MarshalPKCS8PrivateKey(leaf.Key)
	strayKey, _ := x509.MarshalPKCS8PrivateKey(stray.Key)
	pfx, err := pkcs.EncodePFX(rand.Reader, [][]byte{leaf.Cert.Raw, {0x30, 0x00}}, [][]byte{leafKey, strayKey, {0x30, 0x00}})
	if err != nil {
		t.Fatal(err)
	}
	env, err := pkcs.SealEnvelope(rand.Reader, pfx, tr.Cert, pkcs.AES256CBC)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Open(env, tr)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]bool{Thumbprint(leaf.Cert.Raw): true}, summary(t, got.Certificates)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	var reasons []string
	for _, e := range got.Dropped {
		reasons = append(reasons, e.Error())
	}
	want := []string{
		"certificate 2 of 2: x509: malformed tbs certificate",
		"private key 2 of 3: matches no certificate",
		"private key 3 of 3: not a PKCS #8 key Go can parse",
	}
	if diff := cmp.Diff(want, reasons); diff != "" {
		t.Errorf("dropped (-want +got):\n%s", diff)
	}
}

func TestAuthorizedKey(t *testing.T) {
	cs, err := Decrypt(fixtureEnvelope(t), fixtureTransport(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		line, err := c.AuthorizedKey()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(line, "ssh-rsa ") || strings.ContainsAny(line, "\n") {
			t.Errorf("%s: %q", c.Thumbprint, line)
		}
		parsed, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
		if err != nil {
			t.Fatal(err)
		}
		want, _ := ssh.NewPublicKey(c.Cert.PublicKey)
		if !bytes.Equal(parsed.Marshal(), want.Marshal()) {
			t.Errorf("%s: key differs", c.Thumbprint)
		}
	}
}

func TestWriteFiles(t *testing.T) {
	cs, err := Decrypt(fixtureEnvelope(t), fixtureTransport(t))
	if err != nil {
		t.Fatal(err)
	}
	root := tempRoot(t)
	if err := WriteFiles(root, lib, cs); err != nil {
		t.Fatal(err)
	}
	names, _ := root.Glob(lib + "/*")
	want := []string{lib + "/" + fixtureCRP + ".crt", lib + "/" + fixtureTenant + ".crt", lib + "/" + fixtureTenant + ".prv"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Fatalf("files (-want +got):\n%s", diff)
	}
	crt, _ := root.ReadFile(want[1])
	if b, _ := pem.Decode(crt); b == nil || b.Type != "CERTIFICATE" || !bytes.Equal(b.Bytes, cs[1].Cert.Raw) {
		t.Error(".crt is not the PEM certificate")
	}
	prv, _ := root.ReadFile(want[2])
	b, _ := pem.Decode(prv)
	if b == nil || b.Type != "PRIVATE KEY" {
		t.Fatal(".prv is not a PEM PRIVATE KEY")
	}
	if key, err := x509.ParsePKCS8PrivateKey(b.Bytes); err != nil || !key.(*rsa.PrivateKey).Equal(cs[1].Key) {
		t.Errorf(".prv does not hold the key: %v", err)
	}
	for name, perm := range map[string]os.FileMode{want[0]: 0o644, want[1]: 0o644, want[2]: 0o600} {
		if m := mode(t, root, name); m != perm {
			t.Errorf("%s: mode %v, want %v", name, m, perm)
		}
	}
	back, err := ReadFiles(root, lib, []string{fixtureCRP, fixtureTenant})
	if err != nil {
		t.Fatal(err)
	}
	if len(back) != 2 || back[0].Key != nil || !back[1].Key.(*rsa.PrivateKey).Equal(cs[1].Key) || !back[1].Cert.Equal(cs[1].Cert) {
		t.Errorf("ReadFiles did not give back what WriteFiles wrote: %+v", back)
	}
	if _, err := ReadFiles(root, lib, []string{"0000"}); err == nil || !strings.Contains(err.Error(), "certificate 0000") {
		t.Errorf("a missing certificate: err = %v", err)
	}

	// Again: nothing is rewritten (WALinuxAgent's 0400 stays).
	if err := root.Chmod(want[2], 0o400); err != nil {
		t.Fatal(err)
	}
	if err := WriteFiles(root, lib, cs); err != nil {
		t.Fatal(err)
	}
	if m := mode(t, root, want[2]); m != 0o400 {
		t.Errorf("unchanged .prv rewritten: mode %v", m)
	}

	bad := cs[0]
	bad.Thumbprint = "../../etc/passwd"
	if err := WriteFiles(root, lib, []Certificate{bad}); err == nil {
		t.Error("a thumbprint that is not the certificate's was used as a file name")
	}
}

// openssl runs the openssl binary in dir, skipping the test without it.
func openssl(t testing.TB, dir string, args ...string) []byte {
	t.Helper()
	out, _ := testenv.OpenSSL(t, dir, args...)
	return out
}

// opensslThumbprint is how WALinuxAgent gets a thumbprint.
func opensslThumbprint(t testing.TB, dir, certFile string) string {
	out := openssl(t, dir, "x509", "-in", certFile, "-fingerprint", "-sha1", "-noout")
	_, fp, _ := strings.Cut(strings.TrimSpace(string(out)), "=")
	return strings.ReplaceAll(fp, ":", "")
}

// TestDecryptOpenSSL decrypts what OpenSSL builds: PFX files as openssl
// pkcs12 -export writes them (PBES2/AES with a SHA-256 MAC, the legacy
// RC2-40 + 3DES, 3DES with a SHA-1 MAC, no MAC, no encryption), holding a
// certificate with its key and one without, in envelopes of each cipher
// naming our transport certificate by SKI or by issuer and serial, with
// PKCS #1 v1.5 or OAEP key transport.
func TestDecryptOpenSSL(t *testing.T) {
	dir := t.TempDir()
	openssl(t, dir, "version")
	root := tempRoot(t)
	tr, err := GenerateTransport(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Save(root, lib); err != nil {
		t.Fatal(err)
	}
	transportCert := root.HostPath(lib + "/" + TransportCertFile)
	for _, name := range []string{"tenant", "extra"} {
		openssl(t, dir, "req", "-x509", "-nodes", "-subj", "/CN="+name, "-days", "1", "-newkey", "rsa:2048",
			"-keyout", name+".key", "-out", name+".crt")
	}
	want := map[string]bool{opensslThumbprint(t, dir, "tenant.crt"): true, opensslThumbprint(t, dir, "extra.crt"): false}

	pfxVariants := map[string][]string{
		"default":    nil,
		"legacy":     {"-legacy"},
		"3des-sha1":  {"-certpbe", "PBE-SHA1-3DES", "-keypbe", "PBE-SHA1-3DES", "-macalg", "sha1"},
		"nomac":      {"-nomac"},
		"plain bags": {"-certpbe", "NONE", "-keypbe", "NONE"},
	}
	// Options before and after -recip (OpenSSL wants -keyopt after it).
	envelopes := map[string][2][]string{
		"des3 ski":      {{"-des3", "-keyid"}},
		"aes128 ski":    {{"-aes128", "-keyid"}},
		"aes256 ski":    {{"-aes256", "-keyid"}},
		"des3 issuer":   {{"-des3"}},
		"aes128 issuer": {{"-aes128"}},
		"aes256 issuer": {{"-aes256"}},
		"oaep sha1":     {{"-aes128", "-keyid"}, {"-keyopt", "rsa_padding_mode:oaep"}},
		"oaep sha256":   {{"-aes128"}, {"-keyopt", "rsa_padding_mode:oaep", "-keyopt", "rsa_oaep_md:sha256"}},
		"oaep mgf sha1": {{"-aes256"}, {"-keyopt", "rsa_padding_mode:oaep", "-keyopt", "rsa_oaep_md:sha256", "-keyopt", "rsa_mgf1_md:sha1"}},
	}
	for pname, pargs := range pfxVariants {
		t.Run(pname, func(t *testing.T) {
			t.Parallel()
			pfxFile := strings.ReplaceAll(pname, " ", "_") + ".pfx"
			args := append([]string{"pkcs12", "-export", "-inkey", "tenant.key", "-in", "tenant.crt", "-certfile", "extra.crt",
				"-passout", "pass:", "-out", pfxFile}, pargs...)
			openssl(t, dir, args...)
			for ename, eargs := range envelopes {
				args := append([]string{"cms", "-encrypt", "-binary", "-outform", "DER", "-in", pfxFile}, eargs[0]...)
				args = append(append(args, "-recip", transportCert), eargs[1]...)
				got, err := Open(openssl(t, dir, args...), tr)
				if err != nil {
					t.Errorf("%s: %v", ename, err)
					continue
				}
				if diff := cmp.Diff(want, summary(t, got.Certificates)); diff != "" {
					t.Errorf("%s (-want +got):\n%s", ename, diff)
				}
				if len(got.Dropped) != 0 {
					t.Errorf("%s: dropped %v", ename, got.Dropped)
				}
			}
		})
	}
}

// TestWriteFilesOpenSSL: extensions decrypt protected settings with
// openssl cms -decrypt -recip X.crt -inkey X.prv; our files must do.
func TestWriteFilesOpenSSL(t *testing.T) {
	dir := t.TempDir()
	openssl(t, dir, "version")
	cs, err := Decrypt(fixtureEnvelope(t), fixtureTransport(t))
	if err != nil {
		t.Fatal(err)
	}
	root := tempRoot(t)
	if err := WriteFiles(root, lib, cs); err != nil {
		t.Fatal(err)
	}
	crt, prv := root.HostPath(lib+"/"+fixtureTenant+".crt"), root.HostPath(lib+"/"+fixtureTenant+".prv")
	settings := `{"commandToExecute":"echo secret"}`
	if err := os.WriteFile(filepath.Join(dir, "settings.json"), []byte(settings), 0o600); err != nil {
		t.Fatal(err)
	}
	openssl(t, dir, "cms", "-encrypt", "-binary", "-outform", "DER", "-des3", "-in", "settings.json", "-out", "protected.der", crt)
	got := openssl(t, dir, "cms", "-decrypt", "-inform", "DER", "-in", "protected.der", "-recip", crt, "-inkey", prv)
	if string(got) != settings {
		t.Errorf("openssl decrypted %q", got)
	}
}

func FuzzDecrypt(f *testing.F) {
	tr := fixtureTransport(f)
	env := fixtureEnvelope(f)
	f.Add(env)
	sealed, err := pkcs.SealEnvelope(rand.Reader, []byte{0x30, 0x03, 0x02, 0x01, 0x03}, tr.Cert, pkcs.AES128CBC)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sealed)
	f.Fuzz(func(t *testing.T, der []byte) {
		c, err := Open(der, tr)
		if err != nil {
			return
		}
		for _, cert := range c.Certificates {
			if cert.Thumbprint != Thumbprint(cert.Cert.Raw) {
				t.Fatal("thumbprint does not match")
			}
		}
	})
}

// BenchmarkDecrypt is the whole pipeline on the real envelope: RSA unwrap,
// 3DES content, PFX with MAC and 3DES bags (2000 iterations each), pairing.
func BenchmarkDecrypt(b *testing.B) {
	tr := fixtureTransport(b)
	env := fixtureEnvelope(b)
	for b.Loop() {
		if _, err := Decrypt(env, tr); err != nil {
			b.Fatal(err)
		}
	}
}
