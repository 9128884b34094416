package certs

import (
	"crypto"
	"crypto/sha1"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/azinit/azinit/datasource/azure/certs/pkcs"
)

// Certificate is a certificate from the goal state, with its private key
// when the wireserver sent one.
type Certificate struct {
	// Thumbprint is the upper-case hex SHA-1 of the DER, what the goal
	// state and the file names refer to it by.
	Thumbprint string
	Cert       *x509.Certificate
	// Key is nil when the certificate came without one.
	Key crypto.PrivateKey
}

// Contents is what one Certificates envelope yielded.
type Contents struct {
	// Certificates are sorted by thumbprint.
	Certificates []Certificate
	// Dropped are the items left out, and why: a private key that matches
	// no certificate (WALinuxAgent leaves those under a temporary name
	// nothing reads), a certificate or key Go cannot parse. The reasons
	// never carry key material.
	Dropped []error
	// MACVerified is false when the PKCS #12 file had no MAC or a wrong
	// one; it is read anyway, as WALinuxAgent does.
	MACVerified bool
}

// Decrypt opens a Certificates envelope (CertificateFile.Data) with the
// transport key and returns its certificates, each with its private key
// when there is one, sorted by thumbprint. See Open for what is dropped.
func Decrypt(der []byte, t *Transport) ([]Certificate, error) {
	c, err := Open(der, t)
	if err != nil {
		return nil, err
	}
	return c.Certificates, nil
}

// Open opens a Certificates envelope as Decrypt does and also reports what
// it left out. Errors name the stage that failed: envelope, key unwrap,
// content cipher, content padding, or PFX (with the safe and bag).
func Open(der []byte, t *Transport) (*Contents, error) {
	if t == nil {
		return nil, errors.New("key unwrap: no transport key pair")
	}
	pfxDER, err := pkcs.OpenEnvelope(der, t.Key, t.Cert)
	if err != nil {
		return nil, err
	}
	pfx, err := pkcs.DecodePFX(pfxDER)
	if err != nil {
		return nil, fmt.Errorf("PFX: %w", err)
	}
	c := &Contents{MACVerified: pfx.MACVerified}
	seen := make(map[string]bool)
	for i, der := range pfx.Certificates {
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			c.Dropped = append(c.Dropped, fmt.Errorf("certificate %d of %d: %w", i+1, len(pfx.Certificates), err))
			continue
		}
		tp := Thumbprint(der)
		if !seen[tp] {
			seen[tp] = true
			c.Certificates = append(c.Certificates, Certificate{Thumbprint: tp, Cert: cert})
		}
	}
	for i, der := range pfx.Keys {
		if err := c.pair(der); err != nil {
			c.Dropped = append(c.Dropped, fmt.Errorf("private key %d of %d: %w", i+1, len(pfx.Keys), err))
		}
	}
	slices.SortFunc(c.Certificates, func(a, b Certificate) int { return strings.Compare(a.Thumbprint, b.Thumbprint) })
	return c, nil
}

// pair gives a PKCS #8 key to every certificate of its public key.
func (c *Contents) pair(der []byte) error {
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return errors.New("not a PKCS #8 key Go can parse")
	}
	pub, ok := key.(interface{ Public() crypto.PublicKey })
	if !ok {
		return fmt.Errorf("%T has no public key", key)
	}
	eq, ok := pub.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok {
		return fmt.Errorf("%T cannot be compared", key)
	}
	matched := false
	for i := range c.Certificates {
		if eq.Equal(c.Certificates[i].Cert.PublicKey) {
			c.Certificates[i].Key = key
			matched = true
		}
	}
	if !matched {
		return errors.New("matches no certificate")
	}
	return nil
}

// Thumbprint is the upper-case hex SHA-1 of a certificate's DER.
func Thumbprint(der []byte) string {
	sum := sha1.Sum(der)
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

// AuthorizedKey is the certificate's public key as an OpenSSH
// authorized_keys line, without a trailing newline: what an OVF SSH public
// key given only by fingerprint stands for.
func (c Certificate) AuthorizedKey() (string, error) {
	pk, err := ssh.NewPublicKey(c.Cert.PublicKey)
	if err != nil {
		return "", fmt.Errorf("certificate %s: %w", c.Thumbprint, err)
	}
	return strings.TrimSuffix(string(ssh.MarshalAuthorizedKey(pk)), "\n"), nil
}
