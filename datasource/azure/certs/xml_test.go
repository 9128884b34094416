package certs

import (
	"errors"
	"strings"
	"testing"

	"github.com/azinit/azinit/internal/fixtures"
)

func certsXML(format, data string) string {
	return `<?xml version="1.0" encoding="utf-8"?>
<CertificateFile xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:noNamespaceSchemaLocation="certificates10.xsd">
  <Version>2012-11-30</Version>
  <Incarnation>7</Incarnation>
  ` + format + `
  ` + data + `
</CertificateFile>`
}

func TestParseCertificatesXMLFixture(t *testing.T) {
	f, err := ParseCertificatesXML(fixtures.Read(t, "wire/certs.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if f.Version != "2012-11-30" || f.Incarnation != "1" || f.Format != FormatPFX || !f.HasData() {
		t.Errorf("got %+v", f)
	}
	if len(f.Data) != 3719 || f.Data[0] != 0x30 {
		t.Errorf("Data: %d bytes starting %x", len(f.Data), f.Data[:1])
	}
}

func TestParseCertificatesXML(t *testing.T) {
	pfx := "<Format>Pkcs7BlobWithPfxContents</Format>"
	tests := []struct {
		name    string
		doc     string
		data    string // want Data
		wantErr string
	}{
		{"lines", certsXML(pfx, "<Data>AAEC\nAwQF\r\n  Bg==</Data>"), "\x00\x01\x02\x03\x04\x05\x06", ""},
		{"BOM", "\xef\xbb\xbf" + certsXML(pfx, "<Data>AAEC</Data>"), "\x00\x01\x02", ""},
		{"no format", certsXML("", "<Data>AAEC</Data>"), "\x00\x01\x02", ""},
		{"no data", certsXML(pfx, ""), "", ""},
		{"blank data", certsXML(pfx, "<Data>\n  </Data>"), "", ""},
		{"other format", certsXML("<Format>CertificatesNonPfxPackage</Format>", "<Data>AAEC</Data>"), "", `unsupported certificates format "CertificatesNonPfxPackage"`},
		{"bad base64", certsXML(pfx, "<Data>AA*C</Data>"), "", "Data: illegal base64 data at input byte 2"},
		{"wrong root", "<Certificates><Data>AAEC</Data></Certificates>", "", "root element is <Certificates>"},
		{"not XML", "{}", "", "Certificates document: EOF"},
		{"truncated", certsXML(pfx, "<Data>AAEC</Data>")[:60], "", "Certificates document: XML syntax error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := ParseCertificatesXML([]byte(tc.doc))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(f.Data) != tc.data || f.HasData() != (tc.data != "") || f.Incarnation != "7" {
				t.Errorf("got %+v", f)
			}
		})
	}
	_, err := ParseCertificatesXML([]byte(certsXML("<Format>X</Format>", "")))
	if !errors.Is(err, ErrUnsupportedFormat) {
		t.Errorf("err = %v, want ErrUnsupportedFormat", err)
	}
}

func FuzzParseCertificatesXML(f *testing.F) {
	f.Add(fixtures.Read(f, "wire/certs.xml"))
	f.Add([]byte(certsXML("", "<Data>AAEC\nAwQF</Data>")))
	f.Add([]byte(certsXML("<Format>X</Format>", "")))
	f.Fuzz(func(t *testing.T, b []byte) {
		cf, err := ParseCertificatesXML(b)
		if err != nil {
			return
		}
		if cf.Format != "" && cf.Format != FormatPFX {
			t.Fatalf("format %q accepted", cf.Format)
		}
		if cf.HasData() != (len(cf.Data) > 0) {
			t.Fatal("HasData disagrees with Data")
		}
	})
}
