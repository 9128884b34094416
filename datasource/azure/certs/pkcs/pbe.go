package pkcs

import (
	"crypto/cipher"
	"crypto/des"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/asn1"
	"errors"
	"fmt"
	"hash"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// maxIterations bounds the work one key derivation may ask for. Windows
// and OpenSSL use about 2000. A variable only so that fuzzing can lower it:
// inputs asking for a million iterations would leave the fuzzer hashing.
var maxIterations = 1 << 20

var (
	oidPBEWithSHAAnd3KeyTripleDESCBC = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 1, 3}
	oidPBEWithSHAAnd128BitRC2CBC     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 1, 5}
	oidPBEWithSHAAnd40BitRC2CBC      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 1, 6}
	oidPBES2                         = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}
	oidPBKDF2                        = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}
)

// macHash is a hash PKCS #12 uses for its MAC or as the PBKDF2 PRF, with
// the block size its key derivation needs.
type macHash struct {
	oid, hmacOID asn1.ObjectIdentifier
	new          func() hash.Hash
	blockSize    int
}

var macHashes = []macHash{
	{asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}, asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 7}, sha1.New, 64},
	{asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 4}, asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 8}, sha256.New224, 64},
	{asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}, asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 9}, sha256.New, 64},
	{asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}, asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 10}, sha512.New384, 128},
	{asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}, asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 11}, sha512.New, 128},
}

// Purposes of a PKCS #12 key derivation (RFC 7292 appendix B.3).
const (
	kdfKey = 1
	kdfIV  = 2
	kdfMAC = 3
)

// kdf is the PKCS #12 key derivation (RFC 7292 appendix B.2). password is
// already in its BMPString form.
func kdf(h macHash, password, salt []byte, iterations int, id byte, size int) []byte {
	v := h.blockSize
	fill := func(b []byte) []byte {
		out := make([]byte, v*((len(b)+v-1)/v))
		for i := range out {
			out[i] = b[i%len(b)]
		}
		return out
	}
	d := make([]byte, v)
	for i := range d {
		d[i] = id
	}
	in := append(fill(salt), fill(password)...)
	hh := h.new()
	var out []byte
	for {
		hh.Reset()
		hh.Write(d)
		hh.Write(in)
		a := hh.Sum(nil)
		for range iterations - 1 {
			hh.Reset()
			hh.Write(a)
			a = hh.Sum(a[:0])
		}
		out = append(out, a...)
		if len(out) >= size {
			return out[:size]
		}
		// in_j = (in_j + b + 1) mod 2^(8v) for each v-byte block, b = a repeated.
		b := fill(a)
		for j := 0; j < len(in); j += v {
			carry := 1
			for k := v - 1; k >= 0; k-- {
				sum := int(in[j+k]) + int(b[k]) + carry
				in[j+k] = byte(sum)
				carry = sum >> 8
			}
		}
	}
}

// pbeParams reads PKCS #12 PBE parameters: SEQUENCE { salt, iterations }.
func pbeParams(params cryptobyte.String) (salt []byte, iterations int, err error) {
	var seq, s cryptobyte.String
	if !params.ReadASN1(&seq, cbasn1.SEQUENCE) || !params.Empty() ||
		!seq.ReadASN1(&s, cbasn1.OCTET_STRING) || !seq.ReadASN1Integer(&iterations) || !seq.Empty() {
		return nil, 0, errors.New("malformed PBE parameters")
	}
	if iterations < 1 || iterations > maxIterations {
		return nil, 0, fmt.Errorf("PBE iteration count %d out of range", iterations)
	}
	return s, iterations, nil
}

// pbeCipher returns the block cipher and IV an encryption algorithm
// derives from password (BMPString form; PBES2 takes it as UTF-8, where
// the empty password is simply empty).
func pbeCipher(alg asn1.ObjectIdentifier, params cryptobyte.String, password []byte) (cipher.Block, []byte, error) {
	if alg.Equal(oidPBES2) {
		return pbes2Cipher(params)
	}
	salt, iterations, err := pbeParams(params)
	if err != nil {
		return nil, nil, err
	}
	sha := macHashes[0]
	iv := func() []byte { return kdf(sha, password, salt, iterations, kdfIV, 8) }
	switch {
	case alg.Equal(oidPBEWithSHAAnd3KeyTripleDESCBC):
		block, err := des.NewTripleDESCipher(kdf(sha, password, salt, iterations, kdfKey, 24))
		return block, iv(), err
	case alg.Equal(oidPBEWithSHAAnd128BitRC2CBC):
		block, err := newRC2(kdf(sha, password, salt, iterations, kdfKey, 16), 128)
		return block, iv(), err
	case alg.Equal(oidPBEWithSHAAnd40BitRC2CBC):
		block, err := newRC2(kdf(sha, password, salt, iterations, kdfKey, 5), 40)
		return block, iv(), err
	}
	return nil, nil, fmt.Errorf("encryption algorithm %s is not supported", alg)
}

// pbes2Cipher derives an empty-password PBES2 cipher (RFC 8018):
//
//	PBES2-params ::= SEQUENCE { keyDerivationFunc, encryptionScheme }
//	PBKDF2-params ::= SEQUENCE {
//	  salt OCTET STRING, iterationCount INTEGER,
//	  keyLength INTEGER OPTIONAL, prf AlgorithmIdentifier DEFAULT hmacWithSHA1 }
func pbes2Cipher(params cryptobyte.String) (cipher.Block, []byte, error) {
	var seq cryptobyte.String
	if !params.ReadASN1(&seq, cbasn1.SEQUENCE) || !params.Empty() {
		return nil, nil, errors.New("malformed PBES2 parameters")
	}
	kdfOID, kdfParams, ok := readAlgorithm(&seq)
	if !ok {
		return nil, nil, errors.New("malformed PBES2 key derivation")
	}
	encOID, encParams, ok := readAlgorithm(&seq)
	if !ok || !seq.Empty() {
		return nil, nil, errors.New("malformed PBES2 encryption scheme")
	}
	if !kdfOID.Equal(oidPBKDF2) {
		return nil, nil, fmt.Errorf("PBES2 key derivation %s is not supported", kdfOID)
	}
	spec, ok := cipherByOID(encOID)
	if !ok {
		return nil, nil, fmt.Errorf("PBES2 encryption scheme %s is not supported", encOID)
	}
	iv, ok := readOctetStringParam(encParams)
	if !ok {
		return nil, nil, errors.New("PBES2 encryption scheme parameters are not an IV")
	}
	var p, salt cryptobyte.String
	var iterations int
	if !kdfParams.ReadASN1(&p, cbasn1.SEQUENCE) || !kdfParams.Empty() ||
		!p.ReadASN1(&salt, cbasn1.OCTET_STRING) || !p.ReadASN1Integer(&iterations) {
		return nil, nil, errors.New("malformed PBKDF2 parameters")
	}
	if iterations < 1 || iterations > maxIterations {
		return nil, nil, fmt.Errorf("PBKDF2 iteration count %d out of range", iterations)
	}
	if p.PeekASN1Tag(cbasn1.INTEGER) {
		var keyLen int
		if !p.ReadASN1Integer(&keyLen) || keyLen != spec.keyLen {
			return nil, nil, fmt.Errorf("PBKDF2 key length does not fit %s", spec.name)
		}
	}
	prf := macHashes[0]
	if !p.Empty() {
		prfOID, _, ok := readAlgorithm(&p)
		if !ok || !p.Empty() {
			return nil, nil, errors.New("malformed PBKDF2 PRF")
		}
		if prf, ok = hashByHMAC(prfOID); !ok {
			return nil, nil, fmt.Errorf("PBKDF2 PRF %s is not supported", prfOID)
		}
	}
	key, err := pbkdf2.Key(prf.new, "", salt, iterations, spec.keyLen)
	if err != nil {
		return nil, nil, fmt.Errorf("PBKDF2: %w", err)
	}
	block, err := spec.newBlock(key)
	return block, iv, err
}

func hashByHMAC(oid asn1.ObjectIdentifier) (macHash, bool) {
	for _, h := range macHashes {
		if h.hmacOID.Equal(oid) {
			return h, true
		}
	}
	return macHash{}, false
}

func hashByOID(oid asn1.ObjectIdentifier) (macHash, bool) {
	for _, h := range macHashes {
		if h.oid.Equal(oid) {
			return h, true
		}
	}
	return macHash{}, false
}

// pbeDecrypt decrypts data encrypted under alg with the empty password.
// Implementations disagree on how to encode it (BMPString "" with its
// terminator, two zero bytes, or no bytes at all), so each candidate is
// tried; the right one is the one whose plaintext has valid padding and is
// one whole DER SEQUENCE (a SafeContents or a PrivateKeyInfo).
func pbeDecrypt(alg asn1.ObjectIdentifier, params cryptobyte.String, data []byte, passwords [][]byte) ([]byte, error) {
	var err error
	for _, pw := range passwords {
		var block cipher.Block
		var iv, plain []byte
		if block, iv, err = pbeCipher(alg, params, pw); err != nil {
			return nil, err // the parameters are wrong whatever the password
		}
		if plain, err = cbcDecrypt(block, iv, data); err != nil {
			continue
		}
		s := cryptobyte.String(plain)
		var seq cryptobyte.String
		if s.ReadASN1Element(&seq, cbasn1.SEQUENCE) && s.Empty() {
			return plain, nil
		}
		err = errors.New("decrypted data is not a DER SEQUENCE (wrong password or corrupt data)")
	}
	return nil, err
}

// pbeEncrypt encrypts data with pbeWithSHAAnd3-KeyTripleDES-CBC, what the
// wireserver uses for the certificate safe and the key bags.
func pbeEncrypt(salt []byte, iterations int, password, data []byte) []byte {
	sha := macHashes[0]
	// NewTripleDESCipher fails only on a key that is not 24 bytes.
	block, _ := des.NewTripleDESCipher(kdf(sha, password, salt, iterations, kdfKey, 24))
	return cbcEncrypt(block, kdf(sha, password, salt, iterations, kdfIV, 8), data)
}

// macDigest is the PKCS #12 MAC of data: HMAC keyed by the key derivation.
func macDigest(h macHash, password, salt []byte, iterations int, data []byte) []byte {
	mac := hmac.New(h.new, kdf(h, password, salt, iterations, kdfMAC, h.new().Size()))
	mac.Write(data)
	return mac.Sum(nil)
}
