package pkcs

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/azinit/azinit/internal/fixtures"
)

// testKeys are RSA keys shared by the tests (generating one costs tens of
// milliseconds).
var testKeys = sync.OnceValues(func() ([]*rsa.PrivateKey, error) {
	var keys []*rsa.PrivateKey
	for _, bits := range []int{2048, 2048, 1024} {
		k, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
})

func testKey(t testing.TB, i int) *rsa.PrivateKey {
	t.Helper()
	keys, err := testKeys()
	if err != nil {
		t.Fatal(err)
	}
	return keys[i]
}

// testCert is a self-signed certificate for key; ski selects whether it
// carries a subject key identifier.
func testCert(t testing.TB, key *rsa.PrivateKey, cn string, ski bool) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	if ski {
		tmpl.SubjectKeyId = []byte("0123456789abcdefghij")
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func mustSeal(t testing.TB, content []byte, cert *x509.Certificate, c Cipher) []byte {
	t.Helper()
	env, err := SealEnvelope(rand.Reader, content, cert, c)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func TestEnvelopeRoundTrip(t *testing.T) {
	key := testKey(t, 0)
	for _, ski := range []bool{true, false} {
		cert := testCert(t, key, "transport", ski)
		for _, c := range []Cipher{AES128CBC, AES192CBC, AES256CBC, DESEDE3CBC} {
			for _, n := range []int{0, 1, 7, 8, 15, 16, 17, 1000} {
				content := bytes.Repeat([]byte{byte(n)}, n)
				env := mustSeal(t, content, cert, c)
				for _, recip := range []*x509.Certificate{cert, nil} {
					got, err := OpenEnvelope(env, key, recip)
					if err != nil {
						t.Fatalf("ski=%v %v n=%d: %v", ski, c, n, err)
					}
					if !bytes.Equal(got, content) {
						t.Fatalf("ski=%v %v n=%d: content differs", ski, c, n)
					}
				}
			}
		}
	}
}

// TestSealVersion checks the recipient form: subject key identifier in a
// version 2 envelope, as the wireserver sends, or issuer and serial
// number in a version 0 one.
func TestSealVersion(t *testing.T) {
	key := testKey(t, 0)
	for _, ski := range []bool{true, false} {
		cert := testCert(t, key, "transport", ski)
		rs, _, err := parseEnvelope(mustSeal(t, []byte("x"), cert, AES128CBC))
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) != 1 {
			t.Fatalf("%d recipients", len(rs))
		}
		if got := rs[0].ski != nil; got != ski {
			t.Errorf("ski=%v: recipient named by SKI = %v", ski, got)
		}
		if !rs[0].matches(cert) {
			t.Errorf("ski=%v: recipient does not name the certificate", ski)
		}
	}
}

func TestPickRecipient(t *testing.T) {
	key := testKey(t, 0)
	cert := testCert(t, key, "transport", true)
	other := recipient{ski: []byte("other")}
	ours := recipient{ski: cert.SubjectKeyId}
	if r, err := pickRecipient([]recipient{other, ours}, cert); err != nil || r.ski == nil || string(r.ski) != string(cert.SubjectKeyId) {
		t.Errorf("matching recipient not chosen: %v", err)
	}
	if r, err := pickRecipient([]recipient{other}, cert); err != nil || string(r.ski) != "other" {
		t.Errorf("a lone recipient must be used: %v", err)
	}
	if _, err := pickRecipient([]recipient{other, other}, cert); err == nil {
		t.Error("two foreign recipients accepted")
	}
	if _, err := pickRecipient(nil, cert); err == nil {
		t.Error("no recipients accepted")
	}
}

// TestSubjectKeyID checks the identifier computed for a certificate
// without one is RFC 5280 method 1, as OpenSSL's subjectKeyIdentifier=hash
// in the fixture transport certificate.
func TestSubjectKeyID(t *testing.T) {
	_, cert := fixtureTransport(t)
	want := cert.SubjectKeyId
	if len(want) == 0 {
		t.Fatal("fixture transport certificate has no SKI")
	}
	stripped := *cert
	stripped.SubjectKeyId = nil
	if got := SubjectKeyID(&stripped); !bytes.Equal(got, want) {
		t.Errorf("SubjectKeyID = %x, want %x", got, want)
	}
}

func TestOpenEnvelopeErrors(t *testing.T) {
	key := testKey(t, 0)
	cert := testCert(t, key, "transport", true)
	env := mustSeal(t, []byte("secret content"), cert, AES128CBC)
	smallKey := testKey(t, 2)
	dataCI := []byte{0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01, 0xa0, 0x00}
	tests := []struct {
		name string
		der  []byte
		key  *rsa.PrivateKey
		want string
	}{
		{"empty", nil, key, "^envelope: not a DER ContentInfo"},
		{"garbage", []byte("hello"), key, "^envelope: not a DER ContentInfo"},
		{"trailing", append(append([]byte{}, env...), 0), key, "^envelope: not a DER ContentInfo"},
		{"data content", dataCI, key, "^envelope: content type 1.2.840.113549.1.7.1 is not envelopedData"},
		{"too big", make([]byte, MaxInput+1), key, "^envelope: .* more than"},
		{"wrong key size", env, smallKey, "^key unwrap: rsaEncryption"},
		{"unknown cipher", replaceOnce(t, env, oidBytes(t, oidAES128CBC), oidBytes(t, asn1.ObjectIdentifier{1, 2, 3, 4, 5, 6, 7, 8, 9, 10})), key, "^content cipher: algorithm 1.2.3.4.5.6.7.8.9.10 is not supported"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := OpenEnvelope(tc.der, tc.key, cert)
			if err == nil || !regexp.MustCompile(tc.want).MatchString(err.Error()) {
				t.Errorf("err = %v, want match %q", err, tc.want)
			}
		})
	}
}

// TestOpenEnvelopeWrongKey: a same-size wrong key is mostly not detectable
// at unwrap time (no padding oracle); it shows as bad content padding, in
// one case out of 256 as garbage content, and when the ciphertext exceeds
// the wrong key's modulus as an unwrap error.
func TestOpenEnvelopeWrongKey(t *testing.T) {
	cert := testCert(t, testKey(t, 0), "transport", true)
	content := []byte("secret content")
	env := mustSeal(t, content, cert, AES128CBC)
	got, err := OpenEnvelope(env, testKey(t, 1), cert)
	if err == nil && bytes.Equal(got, content) {
		t.Fatal("opened with the wrong key")
	}
	if err != nil && !strings.HasPrefix(err.Error(), "content padding: aes-128-cbc: bad padding") &&
		!strings.HasPrefix(err.Error(), "key unwrap: rsaEncryption: ") {
		t.Errorf("err = %v", err)
	}
}

// TestOpenEnvelopeTruncated: every prefix of a valid envelope is an error,
// never a panic.
func TestOpenEnvelopeTruncated(t *testing.T) {
	key := testKey(t, 0)
	cert := testCert(t, key, "transport", true)
	env := mustSeal(t, []byte("secret content"), cert, DESEDE3CBC)
	for n := range env {
		if _, err := OpenEnvelope(env[:n], key, cert); err == nil {
			t.Fatalf("prefix of %d bytes accepted", n)
		}
	}
}

func TestSealErrors(t *testing.T) {
	cert := testCert(t, testKey(t, 0), "transport", true)
	if _, err := SealEnvelope(rand.Reader, nil, cert, Cipher(99)); err == nil {
		t.Error("unknown cipher accepted")
	}
	if _, err := SealEnvelope(bytes.NewReader(nil), nil, cert, AES128CBC); err == nil {
		t.Error("failing random source accepted")
	}
}

// oidBytes is the DER of an OBJECT IDENTIFIER, for finding one in a blob.
func oidBytes(t testing.TB, oid asn1.ObjectIdentifier) []byte {
	t.Helper()
	b, err := asn1.Marshal(oid)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func replaceOnce(t testing.TB, b, old, new []byte) []byte {
	t.Helper()
	if len(old) != len(new) || bytes.Count(b, old) != 1 {
		t.Fatalf("cannot replace %x", old)
	}
	return bytes.Replace(b, old, new, 1)
}

// fixtureTransport is WALinuxAgent's transport key pair, which the
// certs.xml fixture is encrypted to.
func fixtureTransport(t testing.TB) (*rsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	kb, _ := pem.Decode(fixtures.Read(t, "wire/trans_prv"))
	cb, _ := pem.Decode(fixtures.Read(t, "wire/trans_cert"))
	if kb == nil || cb == nil {
		t.Fatal("fixture transport pair is not PEM")
	}
	key, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return key.(*rsa.PrivateKey), cert
}

// fixtureEnvelope is the DER inside the certs.xml fixture's Data.
func fixtureEnvelope(t testing.TB) []byte {
	t.Helper()
	x := string(fixtures.Read(t, "wire/certs.xml"))
	i, j := strings.Index(x, "<Data>"), strings.Index(x, "</Data>")
	if i < 0 || j < i {
		t.Fatal("certs.xml has no Data")
	}
	der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(x[i+len("<Data>"):j]), ""))
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestFixture opens the wireserver's real envelope: SKI recipient,
// DES-EDE3-CBC content, a PFX with a SHA-1 MAC over 3DES-encrypted bags.
func TestFixture(t *testing.T) {
	key, cert := fixtureTransport(t)
	env := fixtureEnvelope(t)
	rs, ec, err := parseEnvelope(env)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 || rs[0].ski == nil || !rs[0].matches(cert) || !ec.alg.Equal(oidDESEDE3CBC) {
		t.Errorf("unexpected envelope shape: %d recipients, content %s", len(rs), ec.alg)
	}
	pfxDER, err := OpenEnvelope(env, key, cert)
	if err != nil {
		t.Fatal(err)
	}
	p, err := DecodePFX(pfxDER)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Certificates) != 2 || len(p.Keys) != 1 || !p.MACVerified {
		t.Errorf("got %d certificates, %d keys, MAC verified %v; want 2, 1, true", len(p.Certificates), len(p.Keys), p.MACVerified)
	}
}
