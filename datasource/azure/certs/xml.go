package certs

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"strings"

	"github.com/azinit/azinit/datasource/azure/certs/pkcs"
)

// FormatPFX is the only Certificates format there is to decrypt: a CMS
// envelope around a PKCS #12 file.
const FormatPFX = "Pkcs7BlobWithPfxContents"

// ErrUnsupportedFormat is a Certificates document in a format other than
// FormatPFX; WALinuxAgent skips those with a warning.
var ErrUnsupportedFormat = errors.New("unsupported certificates format")

// CertificateFile is the wireserver's Certificates document.
type CertificateFile struct {
	Version     string
	Incarnation string
	// Format is FormatPFX, or empty when the document does not say.
	Format string
	// Data is the DER CMS envelope; empty when there are no certificates.
	Data []byte
}

// HasData reports whether the document carries certificates.
func (f *CertificateFile) HasData() bool { return len(f.Data) > 0 }

// ParseCertificatesXML parses a Certificates document. No Data element
// means no certificates, not an error; a Format other than FormatPFX is
// ErrUnsupportedFormat; a missing Format is accepted, as WALinuxAgent does.
func ParseCertificatesXML(b []byte) (*CertificateFile, error) {
	var doc struct {
		XMLName     xml.Name
		Version     string `xml:"Version"`
		Incarnation string `xml:"Incarnation"`
		Format      string `xml:"Format"`
		Data        string `xml:"Data"`
	}
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	if err := xml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("Certificates document: %w", err)
	}
	if doc.XMLName.Local != "CertificateFile" {
		return nil, fmt.Errorf("Certificates document: root element is <%s>, want <CertificateFile>", doc.XMLName.Local)
	}
	f := &CertificateFile{
		Version:     strings.TrimSpace(doc.Version),
		Incarnation: strings.TrimSpace(doc.Incarnation),
		Format:      strings.TrimSpace(doc.Format),
	}
	if f.Format != "" && f.Format != FormatPFX {
		return nil, fmt.Errorf("%w %q", ErrUnsupportedFormat, f.Format)
	}
	data := strings.Join(strings.Fields(doc.Data), "")
	if base64.StdEncoding.DecodedLen(len(data)) > pkcs.MaxInput {
		return nil, fmt.Errorf("Certificates document: Data is more than %d bytes", pkcs.MaxInput)
	}
	der, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		return nil, fmt.Errorf("Certificates document: Data: %w (offset ignoring line breaks)", err)
	}
	f.Data = der
	return f, nil
}
