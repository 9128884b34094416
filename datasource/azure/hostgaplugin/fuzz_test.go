package hostgaplugin

import (
	"errors"
	"slices"
	"testing"
)

// FuzzParseVersions checks that any /versions answer parses or fails
// cleanly, and that an accepted one offers APIVersion.
func FuzzParseVersions(f *testing.F) {
	for _, seed := range []string{
		`["2015-09-01"]`, // the platform's answer (WALinuxAgent's mock)
		`["2015-09-01", "2012-11-30"]`,
		`["2012-11-30"]`, `[]`, `null`, `[null]`, `["2015-09-01",]`, `{"a":1}`, `"2015-09-01"`, ``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		vs, err := ParseVersions(b)
		if err != nil {
			if vs != nil {
				t.Errorf("ParseVersions(%q) = %q with error %v", b, vs, err)
			}
			return
		}
		if !slices.Contains(vs, APIVersion) || errors.Is(err, ErrUnsupportedVersion) {
			t.Errorf("ParseVersions(%q) accepted %q without %s", b, vs, APIVersion)
		}
	})
}
