package certs

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"path"

	"github.com/azinit/azinit/internal/sys"
)

// WriteFiles writes each certificate as <dir>/<THUMBPRINT>.crt (PEM, 0644)
// and its key, if any, as <dir>/<THUMBPRINT>.prv (unencrypted PEM PKCS #8,
// 0600): the files extensions decrypt protected settings with (openssl cms
// -decrypt -recip X.crt -inkey X.prv). Writes are atomic and skipped when
// a file already holds the same content. dir is created 0700 if missing.
func WriteFiles(root *sys.Root, dir string, cs []Certificate) error {
	if len(cs) == 0 {
		return nil
	}
	if err := root.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	for _, c := range cs {
		// The name comes from the certificate, never from elsewhere.
		if c.Cert == nil || c.Thumbprint != Thumbprint(c.Cert.Raw) {
			return fmt.Errorf("certificate %q: thumbprint does not match its content", c.Thumbprint)
		}
		if err := writeIfChanged(root, path.Join(dir, c.Thumbprint+".crt"), certPEM(c.Cert), 0o644); err != nil {
			return err
		}
		if c.Key == nil {
			continue
		}
		der, err := x509.MarshalPKCS8PrivateKey(c.Key)
		if err != nil {
			return fmt.Errorf("certificate %s: private key: %w", c.Thumbprint, err)
		}
		if err := writeIfChanged(root, path.Join(dir, c.Thumbprint+".prv"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// ReadFiles reads back the certificates WriteFiles wrote, by thumbprint:
// each <THUMBPRINT>.crt, and its .prv when there is one.
func ReadFiles(root *sys.Root, dir string, thumbprints []string) ([]Certificate, error) {
	var cs []Certificate
	for _, tp := range thumbprints {
		name := path.Join(dir, tp+".crt")
		b, err := root.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("certificate %s: %w", tp, err)
		}
		cert, err := parseCertPEM(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if Thumbprint(cert.Raw) != tp {
			return nil, fmt.Errorf("%s holds certificate %s", name, Thumbprint(cert.Raw))
		}
		c := Certificate{Thumbprint: tp, Cert: cert}
		name = path.Join(dir, tp+".prv")
		switch b, err := root.ReadFile(name); {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return nil, fmt.Errorf("certificate %s: %w", tp, err)
		default:
			block, _ := pem.Decode(b)
			if block == nil {
				return nil, fmt.Errorf("%s: no PEM block", name)
			}
			if c.Key, err = x509.ParsePKCS8PrivateKey(block.Bytes); err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
		}
		cs = append(cs, c)
	}
	return cs, nil
}
