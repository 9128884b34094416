package pkcs

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	_ "crypto/sha256" // OAEP hashes, by crypto.Hash
	_ "crypto/sha512"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

var (
	oidRSAEncryption = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
	oidRSAESOAEP     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 7}
	oidMGF1          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 8}
	oidPSpecified    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 9}
)

// digests are the hashes RSAES-OAEP parameters may name.
var digests = []struct {
	oid  asn1.ObjectIdentifier
	hash crypto.Hash
}{
	{asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}, crypto.SHA1},
	{asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 4}, crypto.SHA224},
	{asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}, crypto.SHA256},
	{asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}, crypto.SHA384},
	{asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}, crypto.SHA512},
}

// recipient is one KeyTransRecipientInfo.
type recipient struct {
	ski          []byte // rid [0] subjectKeyIdentifier
	issuer       []byte // rid issuerAndSerialNumber: raw issuer Name
	serial       *big.Int
	alg          asn1.ObjectIdentifier
	params       cryptobyte.String
	encryptedKey []byte
}

// matches reports whether the recipient identifier names cert.
func (r *recipient) matches(cert *x509.Certificate) bool {
	if r.ski != nil {
		return bytes.Equal(r.ski, SubjectKeyID(cert))
	}
	return bytes.Equal(r.issuer, cert.RawIssuer) && r.serial.Cmp(cert.SerialNumber) == 0
}

// SubjectKeyID is cert's subject key identifier: the extension's value, or
// when it has none the SHA-1 of its public-key BIT STRING (RFC 5280
// 4.2.1.2 method 1, how OpenSSL computes subjectKeyIdentifier=hash).
func SubjectKeyID(cert *x509.Certificate) []byte {
	if len(cert.SubjectKeyId) > 0 {
		return cert.SubjectKeyId
	}
	spki := cryptobyte.String(cert.RawSubjectPublicKeyInfo)
	var seq cryptobyte.String
	var bits asn1.BitString
	if !spki.ReadASN1(&seq, cbasn1.SEQUENCE) || !seq.SkipASN1(cbasn1.SEQUENCE) || !seq.ReadASN1BitString(&bits) {
		return nil
	}
	sum := sha1.Sum(bits.Bytes)
	return sum[:]
}

// OpenEnvelope decrypts a DER CMS EnvelopedData for key. The recipient is
// the KeyTransRecipientInfo that names cert, by subject key identifier (as
// the wireserver does) or by issuer and serial number; when cert is nil or
// none names it, a lone KeyTransRecipientInfo is used anyway, since key is
// the only key there is. Keys are unwrapped with RSA PKCS #1 v1.5 or
// RSAES-OAEP; the content is AES-CBC or DES-EDE3-CBC.
func OpenEnvelope(der []byte, key *rsa.PrivateKey, cert *x509.Certificate) ([]byte, error) {
	if key == nil {
		return nil, errors.New("key unwrap: no private key")
	}
	if len(der) > MaxInput {
		return nil, fmt.Errorf("envelope: %d bytes, more than %d", len(der), MaxInput)
	}
	recipients, ec, err := parseEnvelope(der)
	if err != nil {
		return nil, fmt.Errorf("envelope: %w", err)
	}
	spec, ok := cipherByOID(ec.alg)
	if !ok {
		return nil, fmt.Errorf("content cipher: algorithm %s is not supported", ec.alg)
	}
	iv, ok := readOctetStringParam(ec.params)
	if !ok {
		return nil, fmt.Errorf("content cipher: %s parameters are not an IV", spec.name)
	}
	r, err := pickRecipient(recipients, cert)
	if err != nil {
		return nil, fmt.Errorf("envelope: %w", err)
	}
	cek, err := unwrapKey(r, key, spec.keyLen)
	if err != nil {
		return nil, fmt.Errorf("key unwrap: %w", err)
	}
	block, err := spec.newBlock(cek)
	if err != nil {
		return nil, fmt.Errorf("content cipher: %s: %w", spec.name, err)
	}
	content, err := cbcDecrypt(block, iv, ec.data)
	if errors.Is(err, errPadding) {
		return nil, fmt.Errorf("content padding: %s: %w", spec.name, err)
	}
	if err != nil {
		return nil, fmt.Errorf("content cipher: %s: %w", spec.name, err)
	}
	return content, nil
}

// parseEnvelope reads
//
//	ContentInfo ::= SEQUENCE { contentType, content [0] EXPLICIT EnvelopedData }
//	EnvelopedData ::= SEQUENCE {
//	  version CMSVersion,
//	  originatorInfo [0] IMPLICIT OriginatorInfo OPTIONAL,
//	  recipientInfos SET OF RecipientInfo,
//	  encryptedContentInfo EncryptedContentInfo,
//	  unprotectedAttrs [1] IMPLICIT UnprotectedAttributes OPTIONAL }
//
// keeping the KeyTransRecipientInfos (the other RecipientInfo kinds need
// keys we do not have).
func parseEnvelope(der []byte) ([]recipient, encryptedContent, error) {
	var ec encryptedContent
	input := cryptobyte.String(der)
	var ci, content, ed, ris cryptobyte.String
	var contentType asn1.ObjectIdentifier
	var version int
	if !input.ReadASN1(&ci, cbasn1.SEQUENCE) || !input.Empty() {
		return nil, ec, errors.New("not a DER ContentInfo")
	}
	if !ci.ReadASN1ObjectIdentifier(&contentType) {
		return nil, ec, errors.New("malformed ContentInfo")
	}
	if !contentType.Equal(oidEnvelopedData) {
		return nil, ec, fmt.Errorf("content type %s is not envelopedData", contentType)
	}
	if !ci.ReadASN1(&content, tagCons0) || !ci.Empty() ||
		!content.ReadASN1(&ed, cbasn1.SEQUENCE) || !content.Empty() {
		return nil, ec, errors.New("malformed EnvelopedData")
	}
	if !ed.ReadASN1Integer(&version) ||
		!ed.SkipOptionalASN1(tagCons0) ||
		!ed.ReadASN1(&ris, cbasn1.SET) {
		return nil, ec, errors.New("malformed EnvelopedData header")
	}
	var recipients []recipient
	for i := 1; !ris.Empty(); i++ {
		var ri cryptobyte.String
		var tag cbasn1.Tag
		if !ris.ReadAnyASN1Element(&ri, &tag) {
			return nil, ec, fmt.Errorf("recipient %d: malformed", i)
		}
		if tag != cbasn1.SEQUENCE {
			continue // kari, kekri, pwri, ori
		}
		r, err := parseKeyTrans(ri)
		if err != nil {
			return nil, ec, fmt.Errorf("recipient %d: %w", i, err)
		}
		recipients = append(recipients, r)
	}
	ec, err := readEncryptedContentInfo(&ed)
	if err != nil {
		return nil, ec, err
	}
	ed.SkipOptionalASN1(tagCons1)
	if !ed.Empty() {
		return nil, ec, errors.New("trailing data in EnvelopedData")
	}
	return recipients, ec, nil
}

// parseKeyTrans reads
//
//	KeyTransRecipientInfo ::= SEQUENCE {
//	  version CMSVersion,  -- 0 or 2
//	  rid RecipientIdentifier,
//	  keyEncryptionAlgorithm AlgorithmIdentifier,
//	  encryptedKey OCTET STRING }
//	RecipientIdentifier ::= CHOICE {
//	  issuerAndSerialNumber IssuerAndSerialNumber,
//	  subjectKeyIdentifier [0] SubjectKeyIdentifier }
func parseKeyTrans(element cryptobyte.String) (recipient, error) {
	var r recipient
	var ktri, ek cryptobyte.String
	var version int
	if !element.ReadASN1(&ktri, cbasn1.SEQUENCE) || !ktri.ReadASN1Integer(&version) {
		return r, errors.New("malformed KeyTransRecipientInfo")
	}
	switch {
	case ktri.PeekASN1Tag(tagPrim0):
		var ski cryptobyte.String
		if !ktri.ReadASN1(&ski, tagPrim0) {
			return r, errors.New("malformed subjectKeyIdentifier")
		}
		r.ski = append([]byte{}, ski...)
	default:
		var ias cryptobyte.String
		var issuer cryptobyte.String
		r.serial = new(big.Int)
		if !ktri.ReadASN1(&ias, cbasn1.SEQUENCE) ||
			!ias.ReadASN1Element(&issuer, cbasn1.SEQUENCE) ||
			!ias.ReadASN1Integer(r.serial) || !ias.Empty() {
			return r, errors.New("malformed issuerAndSerialNumber")
		}
		r.issuer = issuer
	}
	var ok bool
	if r.alg, r.params, ok = readAlgorithm(&ktri); !ok {
		return r, errors.New("malformed key-encryption algorithm")
	}
	if !ktri.ReadASN1(&ek, cbasn1.OCTET_STRING) || !ktri.Empty() {
		return r, errors.New("malformed encryptedKey")
	}
	r.encryptedKey = ek
	return r, nil
}

func pickRecipient(rs []recipient, cert *x509.Certificate) (*recipient, error) {
	if cert != nil {
		for i := range rs {
			if rs[i].matches(cert) {
				return &rs[i], nil
			}
		}
	}
	if len(rs) == 1 {
		return &rs[0], nil
	}
	return nil, fmt.Errorf("none of %d key-transport recipients names the transport certificate", len(rs))
}

// unwrapKey decrypts the content-encryption key, which must be keyLen
// bytes long.
func unwrapKey(r *recipient, key *rsa.PrivateKey, keyLen int) ([]byte, error) {
	switch {
	case r.alg.Equal(oidRSAEncryption):
		// The wireserver wraps with PKCS #1 v1.5. The session-key form keeps
		// a bad block indistinguishable from a wrong key (no padding oracle):
		// it leaves the random cek in place, and the content padding check
		// fails afterwards either way.
		cek := make([]byte, keyLen)
		rand.Read(cek)
		if err := rsa.DecryptPKCS1v15SessionKey(nil, key, r.encryptedKey, cek); err != nil {
			return nil, fmt.Errorf("rsaEncryption: %w", err)
		}
		return cek, nil
	case r.alg.Equal(oidRSAESOAEP):
		opts, err := parseOAEPParams(r.params)
		if err != nil {
			return nil, fmt.Errorf("RSAES-OAEP parameters: %w", err)
		}
		cek, err := key.Decrypt(nil, r.encryptedKey, opts)
		if err != nil {
			return nil, fmt.Errorf("RSAES-OAEP: %w", err)
		}
		if len(cek) != keyLen {
			return nil, fmt.Errorf("RSAES-OAEP: content key is %d bytes, want %d", len(cek), keyLen)
		}
		return cek, nil
	default:
		return nil, fmt.Errorf("key-encryption algorithm %s is not supported", r.alg)
	}
}

// parseOAEPParams reads RFC 4055 RSAES-OAEP-params, whose every field has
// its own default (SHA-1, MGF1 with SHA-1 whatever the hash, empty label):
//
//	RSAES-OAEP-params ::= SEQUENCE {
//	  hashFunc [0] AlgorithmIdentifier DEFAULT sha1Identifier,
//	  maskGenFunc [1] AlgorithmIdentifier DEFAULT mgf1SHA1Identifier,
//	  pSourceFunc [2] AlgorithmIdentifier DEFAULT pSpecifiedEmptyIdentifier }
func parseOAEPParams(params cryptobyte.String) (*rsa.OAEPOptions, error) {
	opts := &rsa.OAEPOptions{Hash: crypto.SHA1, MGFHash: crypto.SHA1}
	if len(params) == 0 || params.PeekASN1Tag(cbasn1.NULL) {
		return opts, nil
	}
	var seq cryptobyte.String
	if !params.ReadASN1(&seq, cbasn1.SEQUENCE) || !params.Empty() {
		return nil, errors.New("malformed")
	}
	var field cryptobyte.String
	var present bool
	if !seq.ReadOptionalASN1(&field, &present, tagCons0) {
		return nil, errors.New("malformed hash")
	}
	if present {
		h, err := readDigest(&field)
		if err != nil {
			return nil, fmt.Errorf("hash: %w", err)
		}
		opts.Hash = h
	}
	if !seq.ReadOptionalASN1(&field, &present, tagCons1) {
		return nil, errors.New("malformed mask generation")
	}
	if present {
		oid, mgfParams, ok := readAlgorithm(&field)
		if !ok || !oid.Equal(oidMGF1) {
			return nil, fmt.Errorf("mask generation %s is not MGF1", oid)
		}
		h, err := readDigest(&mgfParams)
		if err != nil {
			return nil, fmt.Errorf("MGF1 hash: %w", err)
		}
		opts.MGFHash = h
	}
	if !seq.ReadOptionalASN1(&field, &present, tagCons2) {
		return nil, errors.New("malformed label source")
	}
	if present {
		oid, labelParams, ok := readAlgorithm(&field)
		if !ok || !oid.Equal(oidPSpecified) {
			return nil, fmt.Errorf("label source %s is not pSpecified", oid)
		}
		if opts.Label, ok = readOctetStringParam(labelParams); !ok {
			return nil, errors.New("malformed label")
		}
	}
	if !seq.Empty() {
		return nil, errors.New("trailing data")
	}
	return opts, nil
}

// readDigest reads a hash AlgorithmIdentifier.
func readDigest(s *cryptobyte.String) (crypto.Hash, error) {
	oid, _, ok := readAlgorithm(s)
	if !ok {
		return 0, errors.New("malformed algorithm")
	}
	for _, d := range digests {
		if d.oid.Equal(oid) {
			return d.hash, nil
		}
	}
	return 0, fmt.Errorf("digest %s is not supported", oid)
}

// SealEnvelope encrypts content for recipient with c, as the wireserver
// does: a fresh content key wrapped with RSA PKCS #1 v1.5, the recipient
// named by its subject key identifier (EnvelopedData version 2), or by
// issuer and serial number (version 0) when the certificate has none.
func SealEnvelope(random io.Reader, content []byte, recipient *x509.Certificate, c Cipher) ([]byte, error) {
	spec, ok := cipherSpecs[c]
	if !ok {
		return nil, fmt.Errorf("content cipher %v is not supported", c)
	}
	pub, ok := recipient.PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("recipient key is %T, not RSA", recipient.PublicKey)
	}
	cek := make([]byte, spec.keyLen)
	if _, err := io.ReadFull(random, cek); err != nil {
		return nil, fmt.Errorf("content key: %w", err)
	}
	block, err := spec.newBlock(cek)
	if err != nil {
		return nil, fmt.Errorf("content cipher: %w", err)
	}
	iv := make([]byte, block.BlockSize())
	if _, err := io.ReadFull(random, iv); err != nil {
		return nil, fmt.Errorf("content IV: %w", err)
	}
	ciphertext := cbcEncrypt(block, iv, content)
	wrapped, err := rsa.EncryptPKCS1v15(random, pub, cek)
	if err != nil {
		return nil, fmt.Errorf("key wrap: %w", err)
	}

	version := int64(0)
	if len(recipient.SubjectKeyId) > 0 {
		version = 2
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(oidEnvelopedData)
		b.AddASN1(tagCons0, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1Int64(version)
				b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1Int64(version)
						if version == 2 {
							b.AddASN1(tagPrim0, func(b *cryptobyte.Builder) { b.AddBytes(recipient.SubjectKeyId) })
						} else {
							b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
								b.AddBytes(recipient.RawIssuer)
								b.AddASN1BigInt(recipient.SerialNumber)
							})
						}
						b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
							b.AddASN1ObjectIdentifier(oidRSAEncryption)
							b.AddASN1NULL()
						})
						b.AddASN1OctetString(wrapped)
					})
				})
				addEncryptedContentInfo(b, spec.oid, func(b *cryptobyte.Builder) { b.AddASN1OctetString(iv) }, ciphertext)
			})
		})
	})
	return b.Bytes()
}
