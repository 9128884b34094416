package certs

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
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
