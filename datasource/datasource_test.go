package datasource

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const doc = `{"v1": {"local_hostname": "vm1", "public_ssh_keys": ["ssh-ed25519 AAA a", "ssh-rsa BBB b"]},
 "ds": {"ovf": {"has_password": true, "public_keys": [{"path": "/home/u/.ssh/authorized_keys"}]}, "n": 3}}`

func TestLookup(t *testing.T) {
	tests := []struct {
		key  string
		want string
	}{
		{"v1.local_hostname", "vm1"},
		{"v1.public_ssh_keys.1", "ssh-rsa BBB b"},
		{"ds.ovf.has_password", "true"},
		{"ds.n", "3"},
		{"ds.ovf.public_keys.0", "{\n  \"path\": \"/home/u/.ssh/authorized_keys\"\n}"},
		{"v1.public_ssh_keys", "[\n  \"ssh-ed25519 AAA a\",\n  \"ssh-rsa BBB b\"\n]"},
	}
	for _, tt := range tests {
		v, err := Lookup([]byte(doc), tt.key)
		if err != nil {
			t.Fatalf("%s: %v", tt.key, err)
		}
		if diff := cmp.Diff(tt.want, Format(v)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.key, diff)
		}
	}
}

func TestLookupErrors(t *testing.T) {
	for key, want := range map[string]string{
		"v2":                      `no key "v2" under "(top)"`,
		"v1.region":               `no key "region" under "v1"`,
		"v1.public_ssh_keys.2":    `"2" is not an index below 2`,
		"v1.local_hostname.first": `"v1.local_hostname" is a value`,
	} {
		_, err := Lookup([]byte(doc), key)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Lookup(%q) = %v, want error containing %q", key, err, want)
		}
	}
}
