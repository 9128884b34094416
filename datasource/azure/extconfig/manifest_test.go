package extconfig_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/azinit/azinit/datasource/azure/extconfig"
	"github.com/azinit/azinit/internal/fixtures"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var ignoreParsedVersion = cmpopts.IgnoreUnexported(extconfig.Package{})

func TestParseManifestFixtures(t *testing.T) {
	const ext = "http://mock-goal-state/foo.bar/zar/OSTCExtensions.ExampleHandlerLinux__"
	const host = "http://mock-goal-state/host/OSTCExtensions.ExampleHandlerLinux__"
	const ga = "http://mock-goal-state/ga-manifests/OSTCExtensions.WALinuxAgent__"
	pkg := func(version, uri string) extconfig.Package {
		return extconfig.Package{Version: version, URIs: []string{uri}}
	}
	internal := func(p extconfig.Package) extconfig.Package { p.Internal = true; return p }
	for _, tc := range []struct {
		fixture string
		want    []extconfig.Package
	}{
		{"wire/manifest.xml", []extconfig.Package{
			pkg("1.0.0", ext+"1.0.0"), pkg("1.1.0", ext+"1.1.0"), pkg("1.1.1", ext+"1.1.1"), pkg("1.2.0", ext+"1.2.0"),
			internal(pkg("1.3.0", ext+"1.3.0")),
			pkg("2.0.0", host+"2.0.0"),
			{Version: "2.1.0", URIs: []string{host + "2.1.0"}, DisallowMajorVersionUpgrade: true},
			pkg("2.1.1", host+"2.1.1"), pkg("2.2.0", host+"2.2.0"),
			internal(pkg("2.3.0", host+"2.3.0")), internal(pkg("2.4.0", host+"2.3.0")),
			pkg("3.0", host+"3.0"), pkg("3.1", host+"3.1"),
			pkg("4.0.0.0", host+"3.0"), pkg("4.0.0.1", host+"3.1"), pkg("4.1.0.0", host+"3.1"),
		}},
		{"wire/ga_manifest.xml", []extconfig.Package{
			pkg("1.0.0", ga+"1.0.0"), pkg("1.1.0", ga+"1.1.0"), pkg("1.2.0", ga+"1.2.0"), pkg("2.0.0", ga+"2.0.0"),
			pkg("2.1.0", ga+"2.1.0"), pkg("2.5.0", ga+"2.5.0"), pkg("9.9.9.10", ga+"9.9.9.10"), pkg("99999.0.0.0", ga+"99999.0.0.0"),
		}},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			m, err := extconfig.ParseManifest(fixtures.Read(t, tc.fixture))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, m.Packages, ignoreParsedVersion); diff != "" {
				t.Errorf("packages (-want +got), sorted by version:\n%s", diff)
			}
		})
	}
}

// TestSelect covers the version decision of §11.2: the highest package
// whose version the requested one prefixes.
func TestSelect(t *testing.T) {
	m, err := extconfig.ParseManifest(fixtures.Read(t, "wire/manifest.xml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ requested, want string }{
		{"1.0.0", "1.0.0"},
		{"1.0", "1.0.0"},
		{"1.1", "1.1.1"},
		{"1.1.0", "1.1.0"},
		{"1", "1.3.0"}, // internal packages are candidates too
		{"2", "2.4.0"},
		{"2.1", "2.1.1"},
		{"2.1.0", "2.1.0"},
		{"3", "3.1"},
		{"3.0", "3.0"},
		{"4.0.0", "4.0.0.1"},
		{"4.0", "4.0.0.1"},
		{"4", "4.1.0.0"},
		{"01.1.01", "1.1.1"},
	} {
		t.Run(tc.requested, func(t *testing.T) {
			p, err := m.Select(tc.requested)
			if err != nil {
				t.Fatal(err)
			}
			if p.Version != tc.want {
				t.Errorf("Select(%q) = %s, want %s", tc.requested, p.Version, tc.want)
			}
		})
	}
	for _, requested := range []string{"5", "1.0.1", "3.0.1", "2.1.0.0.0"} {
		if p, err := m.Select(requested); !errors.Is(err, extconfig.ErrVersionNotFound) || !strings.Contains(err.Error(), requested) {
			t.Errorf("Select(%q) = %s, %v; want an error matching ErrVersionNotFound", requested, p.Version, err)
		}
	}
	if _, err := m.Select("latest"); err == nil || errors.Is(err, extconfig.ErrVersionNotFound) {
		t.Errorf("Select(latest) = %v, want an invalid-version error", err)
	}
}

func TestSelectLeadingZerosAndEqualVersions(t *testing.T) {
	m, err := extconfig.ParseManifest([]byte(`<PluginVersionManifest><Plugins>
		<Plugin><Version>1.0.0</Version><Uris><Uri>https://b</Uri></Uris></Plugin>
		<Plugin><Version>1.0</Version><Uris><Uri>https://a</Uri></Uris></Plugin>
		<Plugin><Version>1.01.0</Version><Uris><Uri>https://c</Uri></Uris><DisallowMajorVersionUpgrade>true</DisallowMajorVersionUpgrade></Plugin>
		</Plugins></PluginVersionManifest>`))
	if err != nil {
		t.Fatal(err)
	}
	// Equal versions keep their order, and the later listed wins.
	if p, err := m.Select("1.0"); err != nil || p.URIs[0] != "https://a" {
		t.Errorf("Select(1.0) = %+v, %v; want the package at https://a", p, err)
	}
	if p, err := m.Select("1.1"); err != nil || p.Version != "1.01.0" || !p.DisallowMajorVersionUpgrade {
		t.Errorf("Select(1.1) = %+v, %v; want 1.01.0", p, err)
	}
	for _, tc := range []struct {
		installed, want string
		found           bool
	}{
		{"1.0.0.0", "1.0", true},
		{"1.1", "1.01.0", true},
		{"1.0.1", "", false},
		{"x", "", false},
	} {
		p, found := m.Lookup(tc.installed)
		if found != tc.found || p.Version != tc.want {
			t.Errorf("Lookup(%q) = %q, %v; want %q, %v", tc.installed, p.Version, found, tc.want, tc.found)
		}
	}
}

func TestParseManifestErrors(t *testing.T) {
	for _, tc := range []struct{ name, doc, want string }{
		{"empty", ``, "no <PluginVersionManifest> element"},
		{"wrong root", `<Extensions/>`, "expected element type <PluginVersionManifest>"},
		{"bad version", `<PluginVersionManifest><Plugins><Plugin><Version>1.0</Version></Plugin><Plugin><Version>v2</Version></Plugin></Plugins></PluginVersionManifest>`,
			`Plugins/Plugin[2]/Version: invalid version "v2"`},
		{"missing internal version", `<PluginVersionManifest><InternalPlugins><Plugin/></InternalPlugins></PluginVersionManifest>`,
			`InternalPlugins/Plugin[1]/Version: invalid version ""`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := extconfig.ParseManifest([]byte(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "parsing manifest: ") {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	// Each row sorts strictly before the next; versions in a row are equal.
	order := [][]string{
		{"0", "0.0.0"},
		{"0.9"},
		{"1.0alpha"},
		{"1.0-alpha0", "1.0alpha00"},
		{"1.0.alpha1", "1.0.0.0alpha1"},
		{"1.0alpha2"},
		{"1.0beta"},
		{"1.0rc1"},
		{"1", "1.0", "1.0.0.0", "01.00"},
		{"1.0.1"},
		{"1.2"},
		{"1.10"},
		{"2.1.6.7"},
		{"99999999999999999999999"},
		{"100000000000000000000000.1"},
	}
	var all []extconfig.Version
	var rank []int
	for r, row := range order {
		for _, s := range row {
			v, err := extconfig.ParseVersion(s)
			if err != nil {
				t.Fatalf("ParseVersion(%q): %v", s, err)
			}
			if v.String() != s {
				t.Errorf("ParseVersion(%q).String() = %q", s, v.String())
			}
			all = append(all, v)
			rank = append(rank, r)
		}
	}
	for i, v := range all {
		for j, w := range all {
			want := 0
			if rank[i] < rank[j] {
				want = -1
			} else if rank[i] > rank[j] {
				want = 1
			}
			if got := v.Compare(w); got != want {
				t.Errorf("%s.Compare(%s) = %d, want %d", v, w, got, want)
			}
		}
	}
	for _, s := range []string{"", "v1", "1.", ".1", "1..2", "1.0-", "1.0-2", "1.0gamma", "1.0alpha1beta", "1.0 ", " 1.0", "1,0", "1.0alpha-1"} {
		if _, err := extconfig.ParseVersion(s); err == nil {
			t.Errorf("ParseVersion(%q) succeeded, want an error", s)
		}
	}
	var zero extconfig.Version
	if one, _ := extconfig.ParseVersion("0.0.0.0"); zero.Compare(one) != 0 {
		t.Errorf("the zero Version does not equal 0.0.0.0")
	}
}

func TestVersionMatches(t *testing.T) {
	for _, tc := range []struct {
		requested, candidate string
		want                 bool
	}{
		{"1.0", "1.0", true},
		{"1.0", "1.0.3", true},
		{"1.0", "1.0.3.7", true},
		{"1.0", "1", false},
		{"1.0", "1.1", false},
		{"2.1.6", "2.1.6.1", true},
		{"2.1.6", "2.1.60", false},
		{"01.0", "1.00.5", true},
		{"1.0", "1.0.1beta2", true}, // tags are not looked at
		{"1.0rc1", "1.0", true},
	} {
		r, err1 := extconfig.ParseVersion(tc.requested)
		c, err2 := extconfig.ParseVersion(tc.candidate)
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		if got := r.Matches(c); got != tc.want {
			t.Errorf("%s.Matches(%s) = %v, want %v", r, c, got, tc.want)
		}
	}
}
