package fabric

import (
	"archive/zip"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/azinit/azinit/datasource/azure/certs"
	"github.com/azinit/azinit/datasource/azure/certs/pkcs"
	"github.com/azinit/azinit/datasource/azure/extconfig"
	"github.com/azinit/azinit/fabric/certificates"
)

// packageZipTime is the modification time of every entry of a zipped
// package directory, so that the same directory always makes the same zip.
var packageZipTime = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// protectedSettingsCipher is the content cipher of protected settings.
const protectedSettingsCipher = pkcs.AES256CBC

// packageBlob is the blob name of a handler package.
func packageBlob(name, version string) string { return name + "__" + version + ".zip" }

// manifestBlob is the blob name of a handler's manifest.
func manifestBlob(name string) string { return name + "_manifest.xml" }

// extensions reads extensions.yaml, zips or reads the packages of the
// handlers it names and encrypts their protected settings to the
// scenario's certificates. Without extensions.yaml, s has no Extensions.
func (l *scenarioLoader) extensions(s *Scenario) error {
	file := filepath.Join(l.dir, ExtensionsFile)
	b, err := l.read(ExtensionsFile, false)
	if err != nil || b == nil {
		return err
	}
	ext, err := ParseExtensions(b, file)
	if err != nil {
		return err
	}
	if s.Packages, s.packageVersions, err = l.packages(ext); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	for i := range ext.Plugins {
		p := &ext.Plugins[i]
		if err := checkPackage(p, s.packageVersions[p.Name], ext.PackagesDir()); err != nil {
			return fmt.Errorf("%s: plugin %s: %w", file, p.Name, err)
		}
		if err := p.seal(s.Certificates); err != nil {
			return fmt.Errorf("%s: plugin %s: %w", file, p.Name, err)
		}
		for j := range p.Extensions {
			if err := p.Extensions[j].seal(s.Certificates); err != nil {
				return fmt.Errorf("%s: plugin %s: extension %s: %w", file, p.Name, p.Extensions[j].Name, err)
			}
		}
	}
	s.Extensions = ext
	return nil
}

// checkPackage checks that a package matches the version p requests, as
// the agent selects them (prefix match: "1.0" takes 1.0.3); a handler
// being uninstalled needs none.
func checkPackage(p *Plugin, versions []string, dir string) error {
	if p.State == string(extconfig.StateUninstall) {
		return nil
	}
	requested, err := extconfig.ParseVersion(p.Version)
	if err != nil {
		return fmt.Errorf("version %q: %w", p.Version, err)
	}
	for _, v := range versions {
		if pv, err := extconfig.ParseVersion(v); err == nil && requested.Matches(pv) {
			return nil
		}
	}
	return fmt.Errorf("no package for version %s: want %s/%s-%s/ or %s/%s (found: %s)", p.Version,
		dir, p.Name, p.Version, dir, packageBlob(p.Name, p.Version), cmpOrNone(strings.Join(versions, ", ")))
}

func cmpOrNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// packages reads the packages of the plugins ext names from its packages
// directory: <Name>-<Version>/ directories, zipped, and <Name>__<Version>.zip
// files, verbatim. It returns them by blob name, and each handler's
// versions in ascending order.
func (l *scenarioLoader) packages(ext *Extensions) (map[string][]byte, map[string][]string, error) {
	wanted := map[string]bool{}
	for _, p := range ext.Plugins {
		wanted[p.Name] = true
	}
	dir := ext.PackagesDir()
	entries, err := os.ReadDir(filepath.Join(l.dir, dir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("packages: %w", err)
	}
	blobs, versions := map[string][]byte{}, map[string][]string{}
	for _, e := range entries {
		name, version, ok := packageName(e)
		if !ok || !wanted[name] {
			continue
		}
		blob := packageBlob(name, version)
		if _, dup := blobs[blob]; dup {
			return nil, nil, fmt.Errorf("packages: both %s/%s-%s/ and %s/%s: keep one", dir, name, version, dir, blob)
		}
		rel := filepath.Join(dir, e.Name())
		if e.IsDir() {
			blobs[blob], err = l.zipDir(rel)
		} else {
			blobs[blob], err = l.read(rel, true)
		}
		if err != nil {
			return nil, nil, err
		}
		versions[name] = append(versions[name], version)
	}
	for _, vs := range versions {
		slices.SortFunc(vs, compareVersions)
	}
	return blobs, versions, nil
}

// packageName reads a package directory or zip name: <Name>-<Version>/ or
// <Name>__<Version>.zip. Anything else is not a package.
func packageName(e fs.DirEntry) (name, version string, ok bool) {
	if e.IsDir() {
		name, version, ok = strings.Cut(e.Name(), "-")
	} else if base, isZip := strings.CutSuffix(e.Name(), ".zip"); isZip && e.Type().IsRegular() {
		name, version, ok = strings.Cut(base, "__")
	}
	return name, version, ok && pluginNamePattern.MatchString(name) && versionPattern.MatchString(version)
}

// compareVersions orders versions as the agent does.
func compareVersions(a, b string) int {
	va, errA := extconfig.ParseVersion(a)
	vb, errB := extconfig.ParseVersion(b)
	if errA != nil || errB != nil {
		return strings.Compare(a, b)
	}
	return va.Compare(vb)
}

// zipDir zips the scenario directory rel deterministically: entries in
// lexical order, each with its Unix mode and packageZipTime. Modes and
// contents go into the scenario digest.
func (l *scenarioLoader) zipDir(rel string) ([]byte, error) {
	root := filepath.Join(l.dir, rel)
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == root {
			return err
		}
		inside, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		hdr := &zip.FileHeader{Name: filepath.ToSlash(inside), Method: zip.Deflate, Modified: packageZipTime}
		hdr.SetMode(info.Mode())
		fmt.Fprintf(l.digest, "%s\x00%o\x00", filepath.Join(rel, inside), info.Mode())
		var content []byte
		switch {
		case d.IsDir():
			hdr.Name += "/"
			hdr.Method = zip.Store
		case d.Type().IsRegular():
			if content, err = l.read(filepath.Join(rel, inside), true); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s is a %s: packages hold only files and directories", filepath.Join(rel, inside), d.Type())
		}
		w, err := zw.CreateHeader(hdr)
		if err != nil {
			return err
		}
		_, err = w.Write(content)
		return err
	})
	if err == nil {
		err = zw.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("zipping package %s: %w", rel, err)
	}
	return buf.Bytes(), nil
}

// seal encrypts the protected settings to their certificate: the one
// named, else the scenario's first with a private key (the agent needs
// the key to hand the extension its .prv).
func (s *ExtensionSettings) seal(bundles []certificates.Bundle) error {
	if !s.protected.IsSet() {
		return nil
	}
	for _, b := range bundles {
		tp := certs.Thumbprint(b.Cert.Raw)
		if b.Key == nil || (s.Certificate != "" && s.Certificate != tp) {
			continue
		}
		// Named by issuer and serial number (EnvelopedData version 0),
		// as the platform does: openssl smime, which handlers fall back
		// to, reads no other recipient form.
		recipient := *b.Cert
		recipient.SubjectKeyId = nil
		der, err := pkcs.SealEnvelope(rand.Reader, []byte(s.protected.Reveal()), &recipient, protectedSettingsCipher)
		if err != nil {
			return fmt.Errorf("encrypting protected_settings to %s: %w", tp, err)
		}
		s.sealed, s.thumbprint = base64.StdEncoding.EncodeToString(der), tp
		return nil
	}
	if s.Certificate != "" {
		return fmt.Errorf("certificate %s: not one of the scenario's certificates with a private key (certificates/*.pem)", s.Certificate)
	}
	return errors.New("protected_settings need a certificate with a private key in certificates/, and the scenario has none")
}
