package extconfig

import (
	"encoding/xml"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Manifest is an extension's (or the agent's) PluginVersionManifest: the
// packages it can be installed from (§11.1), sorted by ascending version.
type Manifest struct {
	Packages []Package
}

// Package is one version of a handler and where to download it.
type Package struct {
	Version string // as the manifest writes it
	URIs    []string
	// Internal is set for packages listed under InternalPlugins; they are
	// candidates like the others.
	Internal                    bool
	DisallowMajorVersionUpgrade bool

	version Version
}

type manifestDocument struct {
	XMLName  xml.Name          `xml:"PluginVersionManifest"`
	Plugins  []manifestPackage `xml:"Plugins>Plugin"`
	Internal []manifestPackage `xml:"InternalPlugins>Plugin"`
}

type manifestPackage struct {
	Version              string   `xml:"Version"`
	URIs                 []string `xml:"Uris>Uri"`
	DisallowMajorUpgrade string   `xml:"DisallowMajorVersionUpgrade"`
}

// ErrVersionNotFound is returned by Select when no package matches.
var ErrVersionNotFound = errors.New("version not found in the manifest")

// ParseManifest parses an extension manifest. Every package must have a
// valid version.
func ParseManifest(b []byte) (*Manifest, error) {
	var doc manifestDocument
	if err := xml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("parsing manifest: %w", xmlError(err, "PluginVersionManifest"))
	}
	m := &Manifest{}
	for _, list := range []struct {
		path     string
		packages []manifestPackage
		internal bool
	}{{"Plugins", doc.Plugins, false}, {"InternalPlugins", doc.Internal, true}} {
		for i, p := range list.packages {
			text := strings.TrimSpace(p.Version)
			v, err := ParseVersion(text)
			if err != nil {
				return nil, fmt.Errorf("parsing manifest: %s/Plugin[%d]/Version: %w", list.path, i+1, err)
			}
			m.Packages = append(m.Packages, Package{
				Version:                     text,
				URIs:                        trimAll(p.URIs),
				Internal:                    list.internal,
				DisallowMajorVersionUpgrade: isTrue(p.DisallowMajorUpgrade),
				version:                     v,
			})
		}
	}
	// Stable, so that of equal versions ("1.0", "1.0.0") the later listed
	// stays later and wins.
	slices.SortStableFunc(m.Packages, func(a, b Package) int { return a.version.Compare(b.version) })
	return m, nil
}

// Select picks the package to install for a requested version (§11.2):
// the highest whose version matches requested component by component, so
// "1.0" selects the highest 1.0.x.y. Its Version may differ from
// requested; the package's is the one to use.
func (m *Manifest) Select(requested string) (Package, error) {
	want, err := ParseVersion(requested)
	if err != nil {
		return Package{}, fmt.Errorf("requested version: %w", err)
	}
	for _, p := range slices.Backward(m.Packages) {
		if want.Matches(p.version) {
			return p, nil
		}
	}
	return Package{}, fmt.Errorf("unable to find version %s: %w", requested, ErrVersionNotFound)
}

// Lookup finds the package of an installed version, which must be equal
// (as versions: "1.0" equals "1.0.0"), for a handler being disabled or
// uninstalled.
func (m *Manifest) Lookup(installed string) (Package, bool) {
	want, err := ParseVersion(installed)
	if err != nil {
		return Package{}, false
	}
	for _, p := range slices.Backward(m.Packages) {
		if want.Compare(p.version) == 0 {
			return p, true
		}
	}
	return Package{}, false
}
