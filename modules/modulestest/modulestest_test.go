package modulestest

import (
	"strings"
	"testing"
)

func TestOVF(t *testing.T) {
	d := OVF(t, OVFDoc("azureuser", "P@ssw0rd-not-real", "<HostName>vm1</HostName>"))
	if d.Username() != "azureuser" || d.Hostname() != "vm1" || !strings.HasPrefix(d.PasswordHash, "$6$") {
		t.Errorf("user %q host %q hash %q", d.Username(), d.Hostname(), d.PasswordHash)
	}
	root := NewRoot(t)
	if Mode(t, root, "/etc/shadow") != 0o640 || !Contains(t, root, "/etc/passwd", "root:x:0:0") {
		t.Error("the base image was not copied as it should be")
	}
	env := Env(t, root, d)
	if env.Live || env.Data != d {
		t.Error("Env is live or lost the data")
	}
}
