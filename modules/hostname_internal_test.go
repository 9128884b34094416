package modules

import (
	"strings"
	"testing"
)

func TestParseHostnameBounds(t *testing.T) {
	label63 := strings.Repeat("a", 63)
	name253 := strings.Repeat("a.", 125) + "abc"
	tests := []struct {
		name, short, fqdn string
	}{
		{"vm1", "vm1", ""},
		{"VM-1", "VM-1", ""},
		{"1vm", "1vm", ""},
		{label63, label63, ""},
		{"vm1.contoso.internal", "vm1", "vm1.contoso.internal"},
		{"vm1.contoso.internal.", "vm1", "vm1.contoso.internal"},
		{name253, "a", name253},
	}
	for _, tt := range tests {
		short, fqdn, err := parseHostname(tt.name)
		if err != nil || short != tt.short || fqdn != tt.fqdn {
			t.Errorf("parseHostname(%q) = %q, %q, %v; want %q, %q", tt.name, short, fqdn, err, tt.short, tt.fqdn)
		}
	}
}

// FuzzHostsWithNames checks the /etc/hosts edit: a second edit changes
// nothing, and only 127.0.1.1 lines (and a final newline) change.
func FuzzHostsWithNames(f *testing.F) {
	f.Add([]byte("127.0.0.1\tlocalhost\n127.0.1.1\tdebian.example.org\tdebian\n\n::1 localhost ip6-localhost\n"), "vm1")
	f.Add([]byte("127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n"), "vm1.contoso.internal")
	f.Add([]byte("127.0.0.1 localhost vm1\n127.0.1.1 old # c\n127.0.1.1 old2"), "VM1")
	f.Add([]byte("::ffff:127.0.1.1 x\r\n# 127.0.1.1 vm1\n"), "vm1.")
	f.Fuzz(func(t *testing.T, hosts []byte, name string) {
		short, fqdn, err := parseHostname(name)
		if err != nil {
			return
		}
		names := []string{short}
		if fqdn != "" {
			names = []string{fqdn, short}
		}
		out, changed := hostsWithNames(hosts, names)
		if !changed && string(out) != string(hosts) {
			t.Fatalf("unchanged, yet %q became %q", hosts, out)
		}
		again, changedAgain := hostsWithNames(out, names)
		if changedAgain || string(again) != string(out) {
			t.Fatalf("second edit of %q changed it to %q", out, again)
		}
		if others(hosts) != others(out) {
			t.Fatalf("other lines changed:\n%q\n%q", hosts, out)
		}
	})
}

// others are the lines of a hosts file but those mapping 127.0.1.1, with
// no final newline.
func others(b []byte) string {
	var out strings.Builder
	for _, line := range strings.SplitAfter(string(b), "\n") {
		if addr, _ := hostsEntry(line); addr != hostsAddr {
			out.WriteString(line)
		}
	}
	return strings.TrimSuffix(out.String(), "\n")
}
