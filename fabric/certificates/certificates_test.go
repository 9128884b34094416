package certificates

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/azinit/azinit/datasource/azure/certs"
	"github.com/azinit/azinit/internal/testenv"
)

// testBundles are three generated certificates with keys, shared by the
// tests (RSA key generation is slow).
var testBundles = sync.OnceValues(func() ([]Bundle, error) {
	var bs []Bundle
	for _, cn := range []string{"tenant", "secret-1", "secret-2"} {
		b, err := Generate(cn, rand.Reader)
		if err != nil {
			return nil, err
		}
		bs = append(bs, b)
	}
	return bs, nil
})

var testTransport = sync.OnceValues(func() (*certs.Transport, error) { return certs.GenerateTransport(rand.Reader) })

func fixturesFor(t testing.TB) ([]Bundle, *certs.Transport) {
	t.Helper()
	bs, err := testBundles()
	if err != nil {
		t.Fatal(err)
	}
	tr, err := testTransport()
	if err != nil {
		t.Fatal(err)
	}
	return bs, tr
}

// oidDER is the DER of an OBJECT IDENTIFIER, to find it in an envelope.
func oidDER(t testing.TB, oid ...int) []byte {
	t.Helper()
	b, err := asn1.Marshal(asn1.ObjectIdentifier(oid))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// envelopeVersion is the version of a DER CMS EnvelopedData.
func envelopeVersion(t testing.TB, der []byte) int {
	t.Helper()
	var ci struct {
		Type    asn1.ObjectIdentifier
		Content asn1.RawValue `asn1:"explicit,tag:0"`
	}
	var ed asn1.RawValue
	var version int
	if _, err := asn1.Unmarshal(der, &ci); err != nil {
		t.Fatal(err)
	}
	if _, err := asn1.Unmarshal(ci.Content.Bytes, &ed); err != nil {
		t.Fatal(err)
	}
	if _, err := asn1.Unmarshal(ed.Bytes, &version); err != nil {
		t.Fatal(err)
	}
	return version
}

func TestBuildRoundTrip(t *testing.T) {
	all, tr := fixturesFor(t)
	cipherOIDs := map[string][]byte{
		"":             oidDER(t, 2, 16, 840, 1, 101, 3, 4, 1, 2),
		"AES128_CBC":   oidDER(t, 2, 16, 840, 1, 101, 3, 4, 1, 2),
		"DES_EDE3_CBC": oidDER(t, 1, 2, 840, 113549, 3, 7),
	}
	for _, n := range []int{0, 1, 3} {
		for _, keys := range []int{0, 1, n} {
			if keys > n {
				continue
			}
			var bundles []Bundle
			want := map[string]bool{}
			for i, b := range all[:n] {
				if i >= keys {
					b.Key = nil
				}
				bundles = append(bundles, b)
				want[certs.Thumbprint(b.Cert.Raw)] = b.Key != nil
			}
			for cipher, oid := range cipherOIDs {
				doc, err := Build(bundles, tr.Cert.Raw, cipher, "3")
				if err != nil {
					t.Fatalf("%d bundles, %d keys, %q: %v", n, keys, cipher, err)
				}
				f, err := certs.ParseCertificatesXML(doc)
				if err != nil {
					t.Fatal(err)
				}
				if f.Version != "2012-11-30" || f.Incarnation != "3" || f.Format != certs.FormatPFX {
					t.Errorf("document %+v", f)
				}
				if n == 0 {
					if f.HasData() {
						t.Error("no bundles, yet Data")
					}
					continue
				}
				// Version 2 envelope, the recipient named by SKI, the content in
				// the cipher asked for.
				ski := append([]byte{0x80, byte(len(tr.Cert.SubjectKeyId))}, tr.Cert.SubjectKeyId...)
				if v := envelopeVersion(t, f.Data); v != 2 || !bytes.Contains(f.Data, ski) || !bytes.Contains(f.Data, oid) {
					t.Errorf("%q: envelope version %d, or it does not name the SKI or use the cipher", cipher, v)
				}
				got, err := certs.Open(f.Data, tr)
				if err != nil {
					t.Fatalf("%d bundles, %d keys, %q: %v", n, keys, cipher, err)
				}
				summary := map[string]bool{}
				for _, c := range got.Certificates {
					summary[c.Thumbprint] = c.Key != nil
					for _, b := range bundles {
						if b.Key != nil && b.Cert.Equal(c.Cert) && !b.Key.(*rsa.PrivateKey).Equal(c.Key) {
							t.Errorf("%s: another key came back", c.Thumbprint)
						}
					}
				}
				if diff := cmp.Diff(want, summary); diff != "" {
					t.Errorf("%d bundles, %d keys, %q (-want +got):\n%s", n, keys, cipher, diff)
				}
				if !got.MACVerified || len(got.Dropped) != 0 {
					t.Errorf("MAC verified %v, dropped %v", got.MACVerified, got.Dropped)
				}
			}
		}
	}
}

func TestBuildDocument(t *testing.T) {
	all, tr := fixturesFor(t)
	doc, err := Build(all[:1], tr.Cert.Raw, "", `<1&"2">`)
	if err != nil {
		t.Fatal(err)
	}
	f, err := certs.ParseCertificatesXML(doc)
	if err != nil {
		t.Fatal(err)
	}
	if f.Incarnation != `<1&"2">` {
		t.Errorf("incarnation %q", f.Incarnation)
	}
	s := string(doc)
	if !strings.HasPrefix(s, `<?xml version="1.0" encoding="utf-8"?>`+"\n<CertificateFile ") {
		t.Errorf("document starts %q", s[:60])
	}
	data := s[strings.Index(s, "<Data>")+6 : strings.Index(s, "</Data>")]
	lines := strings.Split(data, "\n")
	for i, l := range lines {
		if len(l) > 64 || (i < len(lines)-1 && len(l) != 64) {
			t.Fatalf("Data line %d is %d columns", i+1, len(l))
		}
	}
}

func TestBuildErrors(t *testing.T) {
	all, tr := fixturesFor(t)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecTmpl := &x509.Certificate{SerialNumber: big.NewInt(1)}
	ecCert, _ := x509.CreateCertificate(rand.Reader, ecTmpl, ecTmpl, &ec.PublicKey, ec)
	tests := []struct {
		name      string
		bundles   []Bundle
		transport []byte
		cipher    string
		want      string
	}{
		{"unknown cipher", all[:1], tr.Cert.Raw, "AES256_CBC", `unknown cipher "AES256_CBC"`},
		{"lower case cipher", all[:1], tr.Cert.Raw, "aes128_cbc", "unknown cipher"},
		{"bad transport", all[:1], []byte("junk"), "", "transport certificate: x509: malformed certificate"},
		{"EC transport", all[:1], ecCert, "", "transport certificate: key is *ecdsa.PublicKey, not RSA"},
		{"no certificate", []Bundle{all[0], {Key: all[1].Key}}, tr.Cert.Raw, "", "bundle 2: no certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Build(tc.bundles, tc.transport, tc.cipher, "1")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := Build(nil, nil, "x", "1"); !errors.Is(err, ErrUnknownCipher) {
		t.Errorf("err = %v, want ErrUnknownCipher", err)
	}
}

// TestBuildTransportWithoutSKI: a transport certificate without the
// extension still gets an SKI recipient the agent can open.
func TestBuildTransportWithoutSKI(t *testing.T) {
	all, tr := fixturesFor(t)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "LinuxTransport"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &tr.Key.PublicKey, tr.Key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	if len(cert.SubjectKeyId) != 0 {
		t.Fatal("test certificate has an SKI")
	}
	doc, err := Build(all[:1], der, "DES_EDE3_CBC", "1")
	if err != nil {
		t.Fatal(err)
	}
	f, _ := certs.ParseCertificatesXML(doc)
	got, err := certs.Decrypt(f.Data, &certs.Transport{Key: tr.Key, Cert: cert})
	if err != nil || len(got) != 1 || got[0].Key == nil {
		t.Errorf("got %d certificates: %v", len(got), err)
	}
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func TestLoadPEM(t *testing.T) {
	all, _ := fixturesFor(t)
	b := all[0]
	rsaKey := b.Key.(*rsa.PrivateKey)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(rsaKey)
	cert := pemBlock("CERTIFICATE", b.Cert.Raw)
	key8 := pemBlock("PRIVATE KEY", pkcs8)
	key1 := pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey))
	otherKey := pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(all[1].Key.(*rsa.PrivateKey)))
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecDER, _ := x509.MarshalECPrivateKey(ec)
	ecTmpl := &x509.Certificate{SerialNumber: big.NewInt(1)}
	ecCertDER, _ := x509.CreateCertificate(rand.Reader, ecTmpl, ecTmpl, &ec.PublicKey, ec)
	encrypted := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00"}, Bytes: []byte("x")})
	join := func(parts ...[]byte) []byte { return bytes.Join(parts, []byte("\n")) }

	good := []struct {
		name    string
		pem     []byte
		wantKey bool
	}{
		{"cert and PKCS #8", join(cert, key8), true},
		{"PKCS #1 first", join(key1, cert), true},
		{"cert only", cert, false},
		{"EC", join(pemBlock("CERTIFICATE", ecCertDER), pemBlock("EC PRIVATE KEY", ecDER)), true},
	}
	for _, tc := range good {
		got, err := LoadPEM(tc.pem)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if (got.Key != nil) != tc.wantKey || got.Cert == nil {
			t.Errorf("%s: got %+v", tc.name, got)
		}
	}

	bad := []struct {
		name, want string
		pem        []byte
	}{
		{"empty", "no CERTIFICATE block", nil},
		{"key only", "no CERTIFICATE block", key8},
		{"two certs", "PEM block 2: a second CERTIFICATE", join(cert, cert)},
		{"two keys", "PEM block 3: a second private key", join(cert, key8, key1)},
		{"other key", "the private key is not the certificate's", join(cert, otherKey)},
		{"other block", `PEM block 2: unexpected "PUBLIC KEY"`, join(cert, pemBlock("PUBLIC KEY", []byte("x")))},
		{"bad cert", "PEM block 1: x509: malformed certificate", pemBlock("CERTIFICATE", []byte("x"))},
		{"bad key", "PEM block 2: PRIVATE KEY block is malformed", join(cert, pemBlock("PRIVATE KEY", []byte("x")))},
		{"encrypted key", "PEM block 2: RSA PRIVATE KEY is encrypted", join(cert, encrypted)},
	}
	for _, tc := range bad {
		_, err := LoadPEM(tc.pem)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestGenerate(t *testing.T) {
	all, _ := fixturesFor(t)
	b := all[0]
	if b.Cert.Subject.CommonName != "tenant" || b.Key.(*rsa.PrivateKey).N.BitLen() != 2048 {
		t.Errorf("got %v", b.Cert.Subject)
	}
	if err := b.Cert.CheckSignature(b.Cert.SignatureAlgorithm, b.Cert.RawTBSCertificate, b.Cert.Signature); err != nil {
		t.Errorf("not self-signed: %v", err)
	}
	if !b.Key.(*rsa.PrivateKey).PublicKey.Equal(b.Cert.PublicKey) {
		t.Error("key is not the certificate's")
	}
}

// openssl runs the openssl binary in dir, skipping the test without it,
// and returns all it printed (pkcs12 -info reports the MAC on stderr).
func openssl(t testing.TB, dir string, args ...string) string {
	t.Helper()
	out, errs := testenv.OpenSSL(t, dir, args...)
	return string(out) + string(errs)
}

// TestBuildOpenSSL: OpenSSL opens Build's envelope with the transport key,
// as WALinuxAgent does, and reads the PFX inside with the empty password,
// MAC verified, every certificate and key there.
func TestBuildOpenSSL(t *testing.T) {
	dir := t.TempDir()
	openssl(t, dir, "version")
	all, tr := fixturesFor(t)
	bundles := []Bundle{all[0], all[1], {Cert: all[2].Cert}}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(tr.Key)
	files := map[string][]byte{
		"TransportPrivate.pem": pemBlock("PRIVATE KEY", keyDER),
		"TransportCert.pem":    pemBlock("CERTIFICATE", tr.Cert.Raw),
	}
	for cipher := range ciphers {
		doc, err := Build(bundles, tr.Cert.Raw, cipher, "1")
		if err != nil {
			t.Fatal(err)
		}
		f, err := certs.ParseCertificatesXML(doc)
		if err != nil {
			t.Fatal(err)
		}
		files["certs.der"] = f.Data
		for name, b := range files {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		openssl(t, dir, "cms", "-decrypt", "-inform", "DER", "-in", "certs.der",
			"-inkey", "TransportPrivate.pem", "-recip", "TransportCert.pem", "-out", "certs.pfx")
		info := openssl(t, dir, "pkcs12", "-info", "-nodes", "-password", "pass:", "-in", "certs.pfx")
		if !strings.Contains(info, "MAC: sha1") || strings.Contains(info, "verify error") {
			t.Errorf("%q: MAC not sha1 or not verified:\n%s", cipher, info)
		}
		if c, k := strings.Count(info, "BEGIN CERTIFICATE"), strings.Count(info, "BEGIN PRIVATE KEY"); c != 3 || k != 2 {
			t.Errorf("%q: openssl read %d certificates and %d keys, want 3 and 2", cipher, c, k)
		}
	}
}
