package pkcs

import (
	"crypto/hmac"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

var (
	oidKeyBag               = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 1}
	oidPKCS8ShroudedKeyBag  = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 2}
	oidCertBag              = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 3}
	oidSafeContentsBag      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 6}
	oidX509CertificateInBag = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 22, 1}
)

const (
	// maxBags bounds the safe bags in one file, and with maxIterations the
	// key-derivation work a file can ask for.
	maxBags = 1024
	// maxNesting bounds SafeContents bags inside SafeContents bags.
	maxNesting = 4
	// encodeIterations is what the wireserver uses for its PBE and MAC.
	encodeIterations = 2000
)

// PFX is what a PKCS #12 file holds that the agent uses.
type PFX struct {
	// Certificates are the DER X.509 certificates, in file order.
	Certificates [][]byte
	// Keys are the decrypted private keys as DER PKCS #8 PrivateKeyInfo,
	// in file order.
	Keys [][]byte
	// MACVerified is false when the file has no MAC, or one that does not
	// verify with the empty password; the file is read anyway, as
	// WALinuxAgent does with openssl pkcs12 -nomacver.
	MACVerified bool
}

// DecodePFX reads a PKCS #12 file protected by the empty password. It
// reads every certificate and every key however many safes and bags hold
// them, decrypting pbeWithSHAAnd3-KeyTripleDES-CBC, pbeWithSHAAnd40BitRC2-CBC,
// pbeWithSHAAnd128BitRC2-CBC and PBES2 (PBKDF2, AES-CBC or DES-EDE3-CBC).
// Bag attributes and other bag kinds (CRLs, secrets) are ignored.
func DecodePFX(der []byte) (*PFX, error) {
	if len(der) > MaxInput {
		return nil, fmt.Errorf("%d bytes, more than %d", len(der), MaxInput)
	}
	input := cryptobyte.String(der)
	var pfx, macData cryptobyte.String
	var version int
	var hasMAC bool
	if !input.ReadASN1(&pfx, cbasn1.SEQUENCE) || !input.Empty() || !pfx.ReadASN1Integer(&version) {
		return nil, errors.New("not a DER PFX")
	}
	if version != 3 {
		return nil, fmt.Errorf("version %d, want 3", version)
	}
	authSafe, err := readDataContentInfo(&pfx)
	if err != nil {
		return nil, fmt.Errorf("authSafe: %w", err)
	}
	if !pfx.ReadOptionalASN1(&macData, &hasMAC, cbasn1.SEQUENCE) || !pfx.Empty() {
		return nil, errors.New("malformed MacData")
	}
	// The empty password as a BMPString with its terminator, then as no
	// bytes at all; a verified MAC tells which one the writer used.
	d := &pfxDecoder{passwords: [][]byte{{0, 0}, nil}, pfx: new(PFX)}
	if hasMAC {
		pw, ok, err := verifyMAC(macData, authSafe, d.passwords)
		if err != nil {
			return nil, fmt.Errorf("MacData: %w", err)
		}
		if ok {
			d.passwords = [][]byte{pw}
			d.pfx.MACVerified = true
		}
	}
	var safes cryptobyte.String
	if !authSafe.ReadASN1(&safes, cbasn1.SEQUENCE) || !authSafe.Empty() {
		return nil, errors.New("malformed AuthenticatedSafe")
	}
	for i := 1; !safes.Empty(); i++ {
		where := fmt.Sprintf("safe %d", i)
		contents, err := d.safe(&safes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if err := d.bags(contents, where, 0); err != nil {
			return nil, err
		}
	}
	return d.pfx, nil
}

type pfxDecoder struct {
	passwords [][]byte
	pfx       *PFX
	bagCount  int
}

// readDataContentInfo reads a ContentInfo of type data and returns its
// octets.
func readDataContentInfo(s *cryptobyte.String) (cryptobyte.String, error) {
	var ci, content, octets cryptobyte.String
	var contentType asn1.ObjectIdentifier
	if !s.ReadASN1(&ci, cbasn1.SEQUENCE) || !ci.ReadASN1ObjectIdentifier(&contentType) {
		return nil, errors.New("malformed ContentInfo")
	}
	if !contentType.Equal(oidData) {
		return nil, fmt.Errorf("content type %s is not data", contentType)
	}
	if !ci.ReadASN1(&content, tagCons0) || !ci.Empty() ||
		!content.ReadASN1(&octets, cbasn1.OCTET_STRING) || !content.Empty() {
		return nil, errors.New("malformed data content")
	}
	return octets, nil
}

// verifyMAC checks MacData ::= SEQUENCE { mac DigestInfo, macSalt OCTET
// STRING, iterations INTEGER DEFAULT 1 } against each password and returns
// the one that verifies. A MAC in an unknown algorithm counts as not
// verified.
func verifyMAC(macData cryptobyte.String, authSafe []byte, passwords [][]byte) ([]byte, bool, error) {
	var di, digest, salt cryptobyte.String
	iterations := 1
	if !macData.ReadASN1(&di, cbasn1.SEQUENCE) {
		return nil, false, errors.New("malformed DigestInfo")
	}
	alg, _, ok := readAlgorithm(&di)
	if !ok || !di.ReadASN1(&digest, cbasn1.OCTET_STRING) || !di.Empty() {
		return nil, false, errors.New("malformed DigestInfo")
	}
	if !macData.ReadASN1(&salt, cbasn1.OCTET_STRING) ||
		(!macData.Empty() && !macData.ReadASN1Integer(&iterations)) || !macData.Empty() {
		return nil, false, errors.New("malformed salt or iterations")
	}
	if iterations < 1 || iterations > maxIterations {
		return nil, false, fmt.Errorf("iteration count %d out of range", iterations)
	}
	h, ok := hashByOID(alg)
	if !ok {
		return nil, false, nil
	}
	for _, pw := range passwords {
		if hmac.Equal(macDigest(h, pw, salt, iterations, authSafe), digest) {
			return pw, true, nil
		}
	}
	return nil, false, nil
}

// safe reads one ContentInfo of the AuthenticatedSafe and returns its
// SafeContents, decrypted.
func (d *pfxDecoder) safe(s *cryptobyte.String) ([]byte, error) {
	var element cryptobyte.String
	var contentType asn1.ObjectIdentifier
	if !s.ReadASN1Element(&element, cbasn1.SEQUENCE) {
		return nil, errors.New("malformed ContentInfo")
	}
	peek := element
	var ci cryptobyte.String
	if !peek.ReadASN1(&ci, cbasn1.SEQUENCE) || !ci.ReadASN1ObjectIdentifier(&contentType) {
		return nil, errors.New("malformed ContentInfo")
	}
	switch {
	case contentType.Equal(oidData):
		return readDataContentInfo(&element)
	case contentType.Equal(oidEncryptedData):
		// EncryptedData ::= SEQUENCE { version, EncryptedContentInfo,
		//   unprotectedAttrs [1] IMPLICIT OPTIONAL }
		var content, ed cryptobyte.String
		var version int
		if !ci.ReadASN1(&content, tagCons0) || !ci.Empty() ||
			!content.ReadASN1(&ed, cbasn1.SEQUENCE) || !content.Empty() ||
			!ed.ReadASN1Integer(&version) {
			return nil, errors.New("malformed EncryptedData")
		}
		ec, err := readEncryptedContentInfo(&ed)
		if err != nil {
			return nil, err
		}
		ed.SkipOptionalASN1(tagCons1)
		if !ed.Empty() {
			return nil, errors.New("trailing data in EncryptedData")
		}
		return pbeDecrypt(ec.alg, ec.params, ec.data, d.passwords)
	default:
		return nil, fmt.Errorf("content type %s is not supported (only password privacy is)", contentType)
	}
}

// bags reads SafeContents ::= SEQUENCE OF SafeBag, where
//
//	SafeBag ::= SEQUENCE {
//	  bagId OBJECT IDENTIFIER, bagValue [0] EXPLICIT ANY,
//	  bagAttributes SET OF PKCS12Attribute OPTIONAL }
func (d *pfxDecoder) bags(contents []byte, where string, depth int) error {
	s := cryptobyte.String(contents)
	var seq cryptobyte.String
	if !s.ReadASN1(&seq, cbasn1.SEQUENCE) || !s.Empty() {
		return fmt.Errorf("%s: malformed SafeContents", where)
	}
	for i := 1; !seq.Empty(); i++ {
		at := fmt.Sprintf("%s bag %d", where, i)
		if d.bagCount++; d.bagCount > maxBags {
			return fmt.Errorf("%s: more than %d bags", at, maxBags)
		}
		var bag, value cryptobyte.String
		var id asn1.ObjectIdentifier
		if !seq.ReadASN1(&bag, cbasn1.SEQUENCE) || !bag.ReadASN1ObjectIdentifier(&id) ||
			!bag.ReadASN1(&value, tagCons0) || !bag.SkipOptionalASN1(cbasn1.SET) || !bag.Empty() {
			return fmt.Errorf("%s: malformed SafeBag", at)
		}
		if err := d.bag(id, value, at, depth); err != nil {
			return err
		}
	}
	return nil
}

func (d *pfxDecoder) bag(id asn1.ObjectIdentifier, value cryptobyte.String, at string, depth int) error {
	switch {
	case id.Equal(oidCertBag):
		// CertBag ::= SEQUENCE { certId OBJECT IDENTIFIER, certValue [0] EXPLICIT ANY }
		var cb, wrapped, der cryptobyte.String
		var certType asn1.ObjectIdentifier
		if !value.ReadASN1(&cb, cbasn1.SEQUENCE) || !value.Empty() || !cb.ReadASN1ObjectIdentifier(&certType) ||
			!cb.ReadASN1(&wrapped, tagCons0) || !cb.Empty() {
			return fmt.Errorf("%s: malformed CertBag", at)
		}
		if !certType.Equal(oidX509CertificateInBag) {
			return nil // an SDSI certificate
		}
		if !wrapped.ReadASN1(&der, cbasn1.OCTET_STRING) || !wrapped.Empty() {
			return fmt.Errorf("%s: malformed certificate", at)
		}
		d.pfx.Certificates = append(d.pfx.Certificates, der)
	case id.Equal(oidKeyBag):
		var key cryptobyte.String
		if !value.ReadASN1Element(&key, cbasn1.SEQUENCE) || !value.Empty() {
			return fmt.Errorf("%s: malformed KeyBag", at)
		}
		d.pfx.Keys = append(d.pfx.Keys, key)
	case id.Equal(oidPKCS8ShroudedKeyBag):
		// EncryptedPrivateKeyInfo ::= SEQUENCE { encryptionAlgorithm, encryptedData OCTET STRING }
		var epki, data cryptobyte.String
		if !value.ReadASN1(&epki, cbasn1.SEQUENCE) || !value.Empty() {
			return fmt.Errorf("%s: malformed EncryptedPrivateKeyInfo", at)
		}
		alg, params, ok := readAlgorithm(&epki)
		if !ok || !epki.ReadASN1(&data, cbasn1.OCTET_STRING) || !epki.Empty() {
			return fmt.Errorf("%s: malformed EncryptedPrivateKeyInfo", at)
		}
		key, err := pbeDecrypt(alg, params, data, d.passwords)
		if err != nil {
			return fmt.Errorf("%s: shrouded key: %w", at, err)
		}
		d.pfx.Keys = append(d.pfx.Keys, key)
	case id.Equal(oidSafeContentsBag):
		if depth >= maxNesting {
			return fmt.Errorf("%s: SafeContents nested more than %d deep", at, maxNesting)
		}
		var inner cryptobyte.String
		if !value.ReadASN1Element(&inner, cbasn1.SEQUENCE) || !value.Empty() {
			return fmt.Errorf("%s: malformed SafeContents bag", at)
		}
		return d.bags(inner, at, depth+1)
	}
	return nil // CRL and secret bags
}

// EncodePFX writes certificates and keys (DER PKCS #8) as the wireserver
// does: one safe of certificate bags encrypted with
// pbeWithSHAAnd3-KeyTripleDES-CBC, one plain safe of key bags shrouded with
// the same, and a SHA-1 MAC, all under the empty password.
func EncodePFX(random io.Reader, certificates, keys [][]byte) ([]byte, error) {
	return encodePFX(random, certificates, keys, []byte{0, 0})
}

// encodePFX is EncodePFX with the empty password encoded as given.
func encodePFX(random io.Reader, certificates, keys [][]byte, password []byte) ([]byte, error) {
	readSalt := func(n int) ([]byte, error) {
		b := make([]byte, n)
		_, err := io.ReadFull(random, b)
		return b, err
	}
	var certSafe cryptobyte.Builder
	certSafe.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		for _, c := range certificates {
			addBag(b, oidCertBag, func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1ObjectIdentifier(oidX509CertificateInBag)
					b.AddASN1(tagCons0, func(b *cryptobyte.Builder) { b.AddASN1OctetString(c) })
				})
			})
		}
	})
	certPlain, err := certSafe.Bytes()
	if err != nil {
		return nil, err
	}
	certSalt, err := readSalt(8)
	if err != nil {
		return nil, fmt.Errorf("salt: %w", err)
	}
	certCipher := pbeEncrypt(certSalt, encodeIterations, password, certPlain)

	type shrouded struct{ salt, data []byte }
	shroudedKeys := make([]shrouded, len(keys))
	for i, k := range keys {
		salt, err := readSalt(8)
		if err != nil {
			return nil, fmt.Errorf("salt: %w", err)
		}
		shroudedKeys[i] = shrouded{salt, pbeEncrypt(salt, encodeIterations, password, k)}
	}
	var keySafe cryptobyte.Builder
	keySafe.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		for _, k := range shroudedKeys {
			addBag(b, oidPKCS8ShroudedKeyBag, func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1ObjectIdentifier(oidPBEWithSHAAnd3KeyTripleDESCBC)
						addPBEParams(b, k.salt)
					})
					b.AddASN1OctetString(k.data)
				})
			})
		}
	})
	keyPlain, err := keySafe.Bytes()
	if err != nil {
		return nil, err
	}

	var auth cryptobyte.Builder
	auth.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(oidEncryptedData)
			b.AddASN1(tagCons0, func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1Int64(0)
					addEncryptedContentInfo(b, oidPBEWithSHAAnd3KeyTripleDESCBC,
						func(b *cryptobyte.Builder) { addPBEParams(b, certSalt) }, certCipher)
				})
			})
		})
		addDataContentInfo(b, keyPlain)
	})
	authSafe, err := auth.Bytes()
	if err != nil {
		return nil, err
	}
	macSalt, err := readSalt(20)
	if err != nil {
		return nil, fmt.Errorf("salt: %w", err)
	}
	sha := macHashes[0]
	digest := macDigest(sha, password, macSalt, encodeIterations, authSafe)

	var pfx cryptobyte.Builder
	pfx.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1Int64(3)
		addDataContentInfo(b, authSafe)
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1ObjectIdentifier(sha.oid)
					b.AddASN1NULL()
				})
				b.AddASN1OctetString(digest)
			})
			b.AddASN1OctetString(macSalt)
			b.AddASN1Int64(encodeIterations)
		})
	})
	return pfx.Bytes()
}

func addBag(b *cryptobyte.Builder, id asn1.ObjectIdentifier, value func(*cryptobyte.Builder)) {
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(id)
		b.AddASN1(tagCons0, value)
	})
}

func addPBEParams(b *cryptobyte.Builder, salt []byte) {
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1OctetString(salt)
		b.AddASN1Int64(encodeIterations)
	})
}

func addDataContentInfo(b *cryptobyte.Builder, octets []byte) {
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(oidData)
		b.AddASN1(tagCons0, func(b *cryptobyte.Builder) { b.AddASN1OctetString(octets) })
	})
}
