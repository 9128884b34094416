// Package pkcs reads and writes the two containers the Azure wireserver
// delivers certificates in: a CMS EnvelopedData (RFC 5652) with RSA key
// transport, holding a PKCS #12 file (RFC 7292) protected by the empty
// password. Both directions live here so that the agent's decoder and the
// offline fabric's encoder share one definition of each structure.
//
// Parsing is strict DER through cryptobyte, bounded in size and work, and
// never panics: every failure is an error naming the stage and the item.
package pkcs

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"encoding/asn1"
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// MaxInput bounds the DER accepted by OpenEnvelope and DecodePFX. A goal
// state's certificates are a few kilobytes each.
const MaxInput = 16 << 20

var (
	oidData          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidEnvelopedData = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 3}
	oidEncryptedData = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 6}

	oidAES128CBC  = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 2}
	oidAES192CBC  = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 22}
	oidAES256CBC  = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}
	oidDESEDE3CBC = asn1.ObjectIdentifier{1, 2, 840, 113549, 3, 7}
)

// Context-specific tags: constructed ([n] EXPLICIT, or IMPLICIT over a
// SEQUENCE or SET) and primitive ([0] IMPLICIT over an OCTET STRING).
var (
	tagCons0 = cbasn1.Tag(0).ContextSpecific().Constructed()
	tagCons1 = cbasn1.Tag(1).ContextSpecific().Constructed()
	tagCons2 = cbasn1.Tag(2).ContextSpecific().Constructed()
	tagPrim0 = cbasn1.Tag(0).ContextSpecific()
)

// errPadding is a CBC plaintext whose PKCS #7 padding is wrong: the key
// was wrong (a different transport key, a different password) or the data
// is corrupt.
var errPadding = errors.New("bad padding (wrong key or corrupt data)")

// Cipher is a CBC content-encryption algorithm.
type Cipher int

// The content ciphers: the wireserver's x-ms-cipher-name AES128_CBC and
// DES_EDE3_CBC, and what OpenSSL offers besides.
const (
	AES128CBC Cipher = iota + 1
	AES192CBC
	AES256CBC
	DESEDE3CBC
)

type cipherSpec struct {
	name     string
	oid      asn1.ObjectIdentifier
	keyLen   int
	newBlock func(key []byte) (cipher.Block, error)
}

var cipherSpecs = map[Cipher]cipherSpec{
	AES128CBC:  {"aes-128-cbc", oidAES128CBC, 16, aes.NewCipher},
	AES192CBC:  {"aes-192-cbc", oidAES192CBC, 24, aes.NewCipher},
	AES256CBC:  {"aes-256-cbc", oidAES256CBC, 32, aes.NewCipher},
	DESEDE3CBC: {"des-ede3-cbc", oidDESEDE3CBC, 24, des.NewTripleDESCipher},
}

func (c Cipher) String() string {
	if s, ok := cipherSpecs[c]; ok {
		return s.name
	}
	return fmt.Sprintf("Cipher(%d)", int(c))
}

// cipherByOID finds a content cipher by its algorithm identifier.
func cipherByOID(oid asn1.ObjectIdentifier) (cipherSpec, bool) {
	for _, s := range cipherSpecs {
		if s.oid.Equal(oid) {
			return s, true
		}
	}
	return cipherSpec{}, false
}

// cbcDecrypt decrypts data and removes its PKCS #7 padding, checking
// every padding byte.
func cbcDecrypt(block cipher.Block, iv, data []byte) ([]byte, error) {
	bs := block.BlockSize()
	if len(iv) != bs {
		return nil, fmt.Errorf("IV is %d bytes, want %d", len(iv), bs)
	}
	if len(data) == 0 || len(data)%bs != 0 {
		return nil, fmt.Errorf("ciphertext of %d bytes is not a whole number of %d-byte blocks", len(data), bs)
	}
	out := make([]byte, len(data))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(out, data)
	n := int(out[len(out)-1])
	if n == 0 || n > bs {
		return nil, errPadding
	}
	for _, b := range out[len(out)-n:] {
		if int(b) != n {
			return nil, errPadding
		}
	}
	return out[:len(out)-n], nil
}

// cbcEncrypt pads data (PKCS #7) and encrypts it.
func cbcEncrypt(block cipher.Block, iv, data []byte) []byte {
	bs := block.BlockSize()
	n := bs - len(data)%bs
	out := make([]byte, len(data)+n)
	copy(out, data)
	for i := len(data); i < len(out); i++ {
		out[i] = byte(n)
	}
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(out, out)
	return out
}

// readAlgorithm reads an AlgorithmIdentifier: the OID, and the parameters
// as one whole element (empty when absent).
func readAlgorithm(s *cryptobyte.String) (oid asn1.ObjectIdentifier, params cryptobyte.String, ok bool) {
	var seq cryptobyte.String
	if !s.ReadASN1(&seq, cbasn1.SEQUENCE) || !seq.ReadASN1ObjectIdentifier(&oid) {
		return nil, nil, false
	}
	if !seq.Empty() {
		var tag cbasn1.Tag
		if !seq.ReadAnyASN1Element(&params, &tag) || !seq.Empty() {
			return nil, nil, false
		}
	}
	return oid, params, true
}

// readOctetStringParam reads parameters that are a single OCTET STRING
// (a CBC IV).
func readOctetStringParam(params cryptobyte.String) ([]byte, bool) {
	var v cryptobyte.String
	if !params.ReadASN1(&v, cbasn1.OCTET_STRING) || !params.Empty() {
		return nil, false
	}
	return v, true
}

// encryptedContent is a CMS EncryptedContentInfo: the algorithm and the
// ciphertext.
type encryptedContent struct {
	alg    asn1.ObjectIdentifier
	params cryptobyte.String
	data   []byte
}

// readEncryptedContentInfo reads
//
//	EncryptedContentInfo ::= SEQUENCE {
//	  contentType ContentType,
//	  contentEncryptionAlgorithm AlgorithmIdentifier,
//	  encryptedContent [0] IMPLICIT OCTET STRING OPTIONAL }
//
// accepting the ciphertext either primitive or split into segments.
func readEncryptedContentInfo(s *cryptobyte.String) (encryptedContent, error) {
	var eci cryptobyte.String
	var contentType asn1.ObjectIdentifier
	var ec encryptedContent
	var ok bool
	if !s.ReadASN1(&eci, cbasn1.SEQUENCE) || !eci.ReadASN1ObjectIdentifier(&contentType) {
		return ec, errors.New("malformed EncryptedContentInfo")
	}
	if ec.alg, ec.params, ok = readAlgorithm(&eci); !ok {
		return ec, errors.New("malformed content-encryption algorithm")
	}
	switch {
	case eci.PeekASN1Tag(tagPrim0):
		var v cryptobyte.String
		if !eci.ReadASN1(&v, tagPrim0) {
			return ec, errors.New("malformed encrypted content")
		}
		ec.data = v
	case eci.PeekASN1Tag(tagCons0):
		var segs cryptobyte.String
		if !eci.ReadASN1(&segs, tagCons0) {
			return ec, errors.New("malformed encrypted content")
		}
		for !segs.Empty() {
			var seg cryptobyte.String
			if !segs.ReadASN1(&seg, cbasn1.OCTET_STRING) {
				return ec, errors.New("malformed encrypted content segment")
			}
			ec.data = append(ec.data, seg...)
		}
	default:
		return ec, errors.New("no encrypted content (detached content is not supported)")
	}
	if !eci.Empty() {
		return ec, errors.New("trailing data in EncryptedContentInfo")
	}
	return ec, nil
}

// addEncryptedContentInfo writes an EncryptedContentInfo of type data.
func addEncryptedContentInfo(b *cryptobyte.Builder, alg asn1.ObjectIdentifier, params func(*cryptobyte.Builder), ciphertext []byte) {
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(oidData)
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(alg)
			params(b)
		})
		b.AddASN1(tagPrim0, func(b *cryptobyte.Builder) { b.AddBytes(ciphertext) })
	})
}
