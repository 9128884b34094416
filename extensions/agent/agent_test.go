package agent

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseOSRelease(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want map[string]string
	}{
		{"", map[string]string{}},
		{"ID=debian\nVERSION_ID=\"13\"\n", map[string]string{"ID": "debian", "VERSION_ID": "13"}},
		{"# comment=x\n  ID='ubuntu'  \nNAME=\"Ubuntu 24.04\"\nbroken line\n", map[string]string{"ID": "ubuntu", "NAME": "Ubuntu 24.04"}},
	} {
		if diff := cmp.Diff(tc.want, parseOSRelease([]byte(tc.in))); diff != "" {
			t.Errorf("parseOSRelease(%q) (-want +got):\n%s", tc.in, diff)
		}
	}
}

func FuzzParseOSRelease(f *testing.F) {
	f.Add([]byte("ID=debian\nVERSION_ID=\"13\"\n"))
	f.Fuzz(func(t *testing.T, b []byte) { parseOSRelease(b) })
}
