package pkcs

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"encoding/asn1"
	"regexp"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
	gopkcs12 "software.sslmate.com/src/go-pkcs12"
)

// testContents is n certificates and the keys of the first k of them.
func testContents(t testing.TB, n, k int) (certs, keys [][]byte) {
	t.Helper()
	for i := range n {
		key := testKey(t, i%2)
		certs = append(certs, testCert(t, key, "c", i%2 == 0).Raw)
		if i < k {
			der, err := x509.MarshalPKCS8PrivateKey(key)
			if err != nil {
				t.Fatal(err)
			}
			keys = append(keys, der)
		}
	}
	return certs, keys
}

func TestPFXRoundTrip(t *testing.T) {
	for _, tc := range []struct{ certs, keys int }{{0, 0}, {1, 0}, {1, 1}, {3, 2}, {3, 3}} {
		certs, keys := testContents(t, tc.certs, tc.keys)
		for _, pw := range [][]byte{{0, 0}, nil} {
			der, err := encodePFX(rand.Reader, certs, keys, pw)
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodePFX(der)
			if err != nil {
				t.Fatalf("%d certs %d keys password %x: %v", tc.certs, tc.keys, pw, err)
			}
			want := &PFX{Certificates: certs, Keys: keys, MACVerified: true}
			if diff := cmp.Diff(want, got, cmp.Comparer(bytes.Equal)); diff != "" {
				t.Errorf("%d certs %d keys password %x (-want +got):\n%s", tc.certs, tc.keys, pw, diff)
			}
		}
	}
}

// TestEncodePFXReadByGoPKCS12 checks EncodePFX against an independent
// implementation of the key derivation, the PBE and the MAC.
func TestEncodePFXReadByGoPKCS12(t *testing.T) {
	certs, keys := testContents(t, 2, 1)
	der, err := EncodePFX(rand.Reader, certs, keys)
	if err != nil {
		t.Fatal(err)
	}
	key, cert, ca, err := gopkcs12.DecodeChain(der, "")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(cert.Raw, certs[0]) || len(ca) != 1 || !bytes.Equal(ca[0].Raw, certs[1]) {
		t.Error("go-pkcs12 read other certificates")
	}
	if !testKey(t, 0).Equal(key) {
		t.Error("go-pkcs12 read another key")
	}
}

// TestDecodePFXFromGoPKCS12 reads what go-pkcs12's encoders write: RC2-40
// certificates and 3DES keys (Windows' legacy layout), 3DES for both,
// PBES2 with AES-256 and a SHA-256 MAC, and no encryption or MAC at all
// (a plain key bag).
func TestDecodePFXFromGoPKCS12(t *testing.T) {
	key := testKey(t, 0)
	cert := testCert(t, key, "leaf", true)
	ca := testCert(t, testKey(t, 1), "ca", false)
	wantKey, _ := x509.MarshalPKCS8PrivateKey(key)
	encoders := map[string]*gopkcs12.Encoder{
		"LegacyRC2":    gopkcs12.LegacyRC2,
		"LegacyDES":    gopkcs12.LegacyDES,
		"Modern2023":   gopkcs12.Modern2023,
		"Passwordless": gopkcs12.Passwordless,
	}
	for name, enc := range encoders {
		der, err := enc.Encode(key, cert, []*x509.Certificate{ca}, "")
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodePFX(der)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want := &PFX{Certificates: [][]byte{cert.Raw, ca.Raw}, Keys: [][]byte{wantKey}, MACVerified: name != "Passwordless"}
		if diff := cmp.Diff(want, got, cmp.Comparer(bytes.Equal)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", name, diff)
		}
	}
}

// TestDecodePFXMACIgnored: a wrong MAC, or none, does not stop the read
// (openssl pkcs12 -nomacver); MACVerified says so.
func TestDecodePFXMACIgnored(t *testing.T) {
	certs, keys := testContents(t, 1, 1)
	der, err := EncodePFX(rand.Reader, certs, keys)
	if err != nil {
		t.Fatal(err)
	}
	// The digest is the first OCTET STRING of MacData, which ends the file:
	// ... 04 14 <digest> 04 14 <salt> 02 02 07 d0.
	badMAC := bytes.Clone(der)
	badMAC[len(badMAC)-4-22-1] ^= 1
	for name, b := range map[string][]byte{"wrong MAC": badMAC, "no MAC": stripMAC(t, der)} {
		got, err := DecodePFX(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got.MACVerified || len(got.Certificates) != 1 || len(got.Keys) != 1 {
			t.Errorf("%s: MAC verified %v, %d certificates, %d keys", name, got.MACVerified, len(got.Certificates), len(got.Keys))
		}
	}
}

// stripMAC rebuilds a PFX without its MacData.
func stripMAC(t testing.TB, der []byte) []byte {
	t.Helper()
	s := cryptobyte.String(der)
	var pfx, authSafe cryptobyte.String
	var version int64
	if !s.ReadASN1(&pfx, cbasn1.SEQUENCE) || !pfx.ReadASN1Integer(&version) || !pfx.ReadASN1Element(&authSafe, cbasn1.SEQUENCE) {
		t.Fatal("not a PFX")
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1Int64(version)
		b.AddBytes(authSafe)
	})
	return b.BytesOrPanic()
}

func TestDecodePFXErrors(t *testing.T) {
	certs, keys := testContents(t, 1, 1)
	good, err := EncodePFX(rand.Reader, certs, keys)
	if err != nil {
		t.Fatal(err)
	}
	v2 := bytes.Clone(good)
	v2[bytes.Index(v2, []byte{0x02, 0x01, 0x03})+2] = 2
	tests := []struct {
		name string
		der  []byte
		want string
	}{
		{"empty", nil, "^not a DER PFX"},
		{"garbage", []byte("garbage"), "^not a DER PFX"},
		{"version 2", v2, "^version 2, want 3"},
		{"too big", make([]byte, MaxInput+1), "more than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodePFX(tc.der)
			if err == nil || !regexp.MustCompile(tc.want).MatchString(err.Error()) {
				t.Errorf("err = %v, want match %q", err, tc.want)
			}
		})
	}
	for n := range good {
		if _, err := DecodePFX(good[:n]); err == nil {
			t.Fatalf("prefix of %d bytes accepted", n)
		}
	}
}

// TestDecodePFXWrongPassword: bags under a password that is not empty
// fail with the safe named.
func TestDecodePFXWrongPassword(t *testing.T) {
	key := testKey(t, 0)
	der, err := gopkcs12.LegacyDES.Encode(key, testCert(t, key, "c", true), nil, "secret")
	if err != nil {
		t.Fatal(err)
	}
	_, err = DecodePFX(der)
	if err == nil || !regexp.MustCompile(`^safe 1: `).MatchString(err.Error()) {
		t.Errorf("err = %v", err)
	}
}

// plainPFX wraps SafeContents in a PFX with one unencrypted safe and no MAC.
func plainPFX(safeContents []byte) []byte {
	var auth cryptobyte.Builder
	auth.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { addDataContentInfo(b, safeContents) })
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1Int64(3)
		addDataContentInfo(b, auth.BytesOrPanic())
	})
	return b.BytesOrPanic()
}

// nestedSafe is SafeContents holding a certificate bag inside depth
// SafeContents bags.
func nestedSafe(cert []byte, depth int) []byte {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		if depth == 0 {
			addBag(b, oidCertBag, func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1ObjectIdentifier(oidX509CertificateInBag)
					b.AddASN1(tagCons0, func(b *cryptobyte.Builder) { b.AddASN1OctetString(cert) })
				})
			})
			return
		}
		addBag(b, oidSafeContentsBag, func(b *cryptobyte.Builder) { b.AddBytes(nestedSafe(cert, depth-1)) })
	})
	return b.BytesOrPanic()
}

func TestDecodePFXNested(t *testing.T) {
	cert := testCert(t, testKey(t, 0), "c", true).Raw
	got, err := DecodePFX(plainPFX(nestedSafe(cert, maxNesting)))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Certificates) != 1 || !bytes.Equal(got.Certificates[0], cert) {
		t.Errorf("nested certificate not found")
	}
	_, err = DecodePFX(plainPFX(nestedSafe(cert, maxNesting+1)))
	if err == nil || !regexp.MustCompile(`^safe 1 bag 1 bag 1 bag 1 bag 1 bag 1: SafeContents nested more than 4 deep`).MatchString(err.Error()) {
		t.Errorf("err = %v", err)
	}
}

func TestDecodePFXTooManyBags(t *testing.T) {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		for range maxBags + 1 {
			addBag(b, asn1.ObjectIdentifier{1, 2, 3}, func(b *cryptobyte.Builder) { b.AddASN1NULL() })
		}
	})
	_, err := DecodePFX(plainPFX(b.BytesOrPanic()))
	if err == nil || !regexp.MustCompile(`^safe 1 bag 1025: more than 1024 bags`).MatchString(err.Error()) {
		t.Errorf("err = %v", err)
	}
}

func FuzzDecodePFX(f *testing.F) {
	key, cert := fixtureTransport(f)
	if pfx, err := OpenEnvelope(fixtureEnvelope(f), key, cert); err == nil {
		f.Add(pfx)
	}
	certs, keys := testContents(f, 2, 1)
	if der, err := EncodePFX(rand.Reader, certs, keys); err == nil {
		f.Add(der)
	}
	leaf := testCert(f, testKey(f, 0), "leaf", true)
	for _, enc := range []*gopkcs12.Encoder{gopkcs12.LegacyRC2, gopkcs12.Modern2023, gopkcs12.Passwordless} {
		if der, err := enc.Encode(testKey(f, 0), leaf, nil, ""); err == nil {
			f.Add(der)
		}
	}
	f.Add(plainPFX(nestedSafe(certs[0], 2)))
	maxIterations = 4096 // the seeds use 2000-2048; keep each input cheap
	defer func() { maxIterations = 1 << 20 }()
	f.Fuzz(func(t *testing.T, der []byte) {
		p, err := DecodePFX(der)
		if err != nil {
			return
		}
		for _, k := range p.Keys {
			if len(k) == 0 || k[0] != 0x30 {
				t.Fatalf("key is not a SEQUENCE: %x", k[:min(len(k), 4)])
			}
		}
	})
}
