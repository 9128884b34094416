// Package certificates is the offline fabric's side of the wireserver's
// Certificates document: a scenario's certificates and keys, packed into a
// PKCS #12 file, sealed in a CMS envelope to the agent's transport
// certificate, as the real wireserver does.
package certificates

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"
	"time"

	"github.com/azinit/azinit/datasource/azure/certs"
	"github.com/azinit/azinit/datasource/azure/certs/pkcs"
)

// ErrUnknownCipher is an x-ms-cipher-name the wireserver does not offer.
var ErrUnknownCipher = errors.New("unknown cipher")

// Bundle is a certificate to deliver, with its private key or without.
type Bundle struct {
	Cert *x509.Certificate
	Key  crypto.PrivateKey
}

// ciphers are the x-ms-cipher-name values; empty means the default.
var ciphers = map[string]pkcs.Cipher{
	"":             pkcs.AES128CBC,
	"AES128_CBC":   pkcs.AES128CBC,
	"DES_EDE3_CBC": pkcs.DESEDE3CBC,
}

// Build returns the whole Certificates response: a <CertificateFile>
// whose Data is a CMS EnvelopedData (version 2, one KeyTransRecipientInfo
// naming the transport certificate by subject key identifier, RSA PKCS #1
// v1.5) in cipher ("AES128_CBC", the default, or "DES_EDE3_CBC"), around a
// PKCS #12 file with the empty password holding every bundle's certificate
// and key. With no bundles the document has no Data, which the agent reads
// as "no certificates".
func Build(bundles []Bundle, transportCertDER []byte, cipher string, incarnation string) ([]byte, error) {
	c, ok := ciphers[cipher]
	if !ok {
		return nil, fmt.Errorf("%w %q: want AES128_CBC or DES_EDE3_CBC", ErrUnknownCipher, cipher)
	}
	var data []byte
	if len(bundles) > 0 {
		transport, err := x509.ParseCertificate(transportCertDER)
		if err != nil {
			return nil, fmt.Errorf("transport certificate: %w", err)
		}
		if _, ok := transport.PublicKey.(*rsa.PublicKey); !ok {
			return nil, fmt.Errorf("transport certificate: key is %T, not RSA", transport.PublicKey)
		}
		if len(transport.SubjectKeyId) == 0 {
			// The wireserver names the recipient by SKI; compute it as
			// OpenSSL would have (the agent matches either way).
			t := *transport
			t.SubjectKeyId = pkcs.SubjectKeyID(transport)
			transport = &t
		}
		var certDERs, keyDERs [][]byte
		for i, b := range bundles {
			if b.Cert == nil {
				return nil, fmt.Errorf("bundle %d: no certificate", i+1)
			}
			certDERs = append(certDERs, b.Cert.Raw)
			if b.Key == nil {
				continue
			}
			der, err := x509.MarshalPKCS8PrivateKey(b.Key)
			if err != nil {
				return nil, fmt.Errorf("bundle %d (%s): private key: %w", i+1, certs.Thumbprint(b.Cert.Raw), err)
			}
			keyDERs = append(keyDERs, der)
		}
		pfx, err := pkcs.EncodePFX(rand.Reader, certDERs, keyDERs)
		if err != nil {
			return nil, fmt.Errorf("PFX: %w", err)
		}
		if data, err = pkcs.SealEnvelope(rand.Reader, pfx, transport, c); err != nil {
			return nil, fmt.Errorf("envelope: %w", err)
		}
	}
	return certificateFile(incarnation, data), nil
}

// certificateFile is the document as the wireserver writes it, Data in
// 64-column base64 lines.
func certificateFile(incarnation string, data []byte) []byte {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="utf-8"?>` + "\n")
	b.WriteString(`<CertificateFile xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:noNamespaceSchemaLocation="certificates10.xsd">` + "\n")
	b.WriteString("  <Version>2012-11-30</Version>\n  <Incarnation>")
	xml.EscapeText(&b, []byte(incarnation))
	b.WriteString("</Incarnation>\n  <Format>" + certs.FormatPFX + "</Format>\n")
	if len(data) > 0 {
		enc := base64.StdEncoding.EncodeToString(data)
		b.WriteString("  <Data>")
		for len(enc) > 64 {
			b.WriteString(enc[:64] + "\n")
			enc = enc[64:]
		}
		b.WriteString(enc + "</Data>\n")
	}
	b.WriteString("</CertificateFile>\n")
	return []byte(b.String())
}

// LoadPEM reads a scenario's certificates/*.pem file: exactly one
// CERTIFICATE and at most one private key (PKCS #8 "PRIVATE KEY", PKCS #1
// "RSA PRIVATE KEY" or SEC 1 "EC PRIVATE KEY"), which must be the
// certificate's.
func LoadPEM(b []byte) (Bundle, error) {
	var bundle Bundle
	for n := 1; ; n++ {
		var block *pem.Block
		if block, b = pem.Decode(b); block == nil {
			break
		}
		var err error
		switch block.Type {
		case "CERTIFICATE":
			if bundle.Cert != nil {
				return Bundle{}, fmt.Errorf("PEM block %d: a second CERTIFICATE (one certificate per file)", n)
			}
			if bundle.Cert, err = x509.ParseCertificate(block.Bytes); err != nil {
				return Bundle{}, fmt.Errorf("PEM block %d: %w", n, err)
			}
		case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY":
			if bundle.Key != nil {
				return Bundle{}, fmt.Errorf("PEM block %d: a second private key (one per file)", n)
			}
			if bundle.Key, err = parseKey(block); err != nil {
				return Bundle{}, fmt.Errorf("PEM block %d: %w", n, err)
			}
		default:
			return Bundle{}, fmt.Errorf("PEM block %d: unexpected %q (want CERTIFICATE and optionally PRIVATE KEY)", n, block.Type)
		}
	}
	if bundle.Cert == nil {
		return Bundle{}, errors.New("no CERTIFICATE block")
	}
	if bundle.Key != nil {
		pub, ok := bundle.Key.(crypto.Signer)
		if !ok {
			return Bundle{}, fmt.Errorf("private key %T cannot be checked against the certificate", bundle.Key)
		}
		if eq, ok := pub.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !eq.Equal(bundle.Cert.PublicKey) {
			return Bundle{}, errors.New("the private key is not the certificate's")
		}
	}
	return bundle, nil
}

// parseKey parses a private key block; errors say what it is not, never
// what it holds.
func parseKey(block *pem.Block) (crypto.PrivateKey, error) {
	if _, encrypted := block.Headers["Proc-Type"]; encrypted {
		return nil, fmt.Errorf("%s is encrypted; the fabric needs it in the clear", block.Type)
	}
	var key crypto.PrivateKey
	var err error
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("%s block is malformed", block.Type)
	}
	return key, nil
}

// Generate makes a self-signed RSA 2048 certificate with its key, subject
// CN=cn, valid for two years: a tenant certificate for scenarios and tests.
func Generate(cn string, random io.Reader) (Bundle, error) {
	key, err := rsa.GenerateKey(random, 2048)
	if err != nil {
		return Bundle{}, err
	}
	serial, err := rand.Int(random, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return Bundle{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(2 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageDataEncipherment,
	}
	der, err := x509.CreateCertificate(random, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return Bundle{}, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return Bundle{}, err
	}
	return Bundle{Cert: cert, Key: key}, nil
}
