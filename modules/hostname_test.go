package modules_test

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/azinit/azinit/datasource/azure"
	"github.com/azinit/azinit/modules"
	"github.com/azinit/azinit/modules/modulestest"
)

// hostnameData asks for host name name.
func hostnameData(t *testing.T, name string) *azure.Data {
	t.Helper()
	return modulestest.OVF(t, modulestest.OVFDoc("azureuser", "", "<HostName>"+name+"</HostName>"))
}

// debianHosts is /etc/hosts as Debian's installer leaves it.
const debianHosts = "127.0.0.1\tlocalhost\n127.0.1.1\tdebian-image.example.org\tdebian-image\n\n" +
	"# The following lines are desirable for IPv6 capable hosts\n::1     localhost ip6-localhost ip6-loopback\nff02::1 ip6-allnodes\n"

func TestHostnameHosts(t *testing.T) {
	tests := []struct {
		name     string
		hostname string
		hosts    string // "" with missing: no /etc/hosts
		missing  bool
		want     string
	}{
		{
			name:     "base image: appended",
			hostname: "vm1",
			hosts:    "127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n",
			want:     "127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\tvm1\n",
		},
		{
			name:     "the image's 127.0.1.1 line replaced",
			hostname: "vm1",
			hosts:    debianHosts,
			want:     strings.Replace(debianHosts, "127.0.1.1\tdebian-image.example.org\tdebian-image\n", "127.0.1.1\tvm1\n", 1),
		},
		{
			name:     "fqdn",
			hostname: "vm1.contoso.internal",
			hosts:    debianHosts,
			want:     strings.Replace(debianHosts, "127.0.1.1\tdebian-image.example.org\tdebian-image\n", "127.0.1.1\tvm1.contoso.internal vm1\n", 1),
		},
		{
			name:     "fqdn trailing dot",
			hostname: "vm1.contoso.internal.",
			hosts:    "127.0.0.1 localhost\n",
			want:     "127.0.0.1 localhost\n127.0.1.1\tvm1.contoso.internal vm1\n",
		},
		{
			name:     "short name only on 127.0.1.1 while an fqdn is asked",
			hostname: "vm1.contoso.internal",
			hosts:    "127.0.1.1 vm1\n",
			want:     "127.0.1.1\tvm1.contoso.internal vm1\n",
		},
		{
			name:     "already there, other names and spacing kept",
			hostname: "vm1",
			hosts:    "127.0.0.1 localhost\n127.0.1.1   vm1 vm1-alias # mine\n",
			want:     "127.0.0.1 localhost\n127.0.1.1   vm1 vm1-alias # mine\n",
		},
		{
			name:     "names compare without case",
			hostname: "VM1",
			hosts:    "127.0.1.1 vm1\n",
			want:     "127.0.1.1 vm1\n",
		},
		{
			name:     "resolvable through 127.0.0.1: left alone",
			hostname: "vm1",
			hosts:    "127.0.0.1 localhost vm1\n127.0.1.1 debian-image\n",
			want:     "127.0.0.1 localhost vm1\n127.0.1.1 debian-image\n",
		},
		{
			name:     "resolvable through ::1: left alone",
			hostname: "vm1",
			hosts:    "::1 localhost vm1\n",
			want:     "::1 localhost vm1\n",
		},
		{
			name:     "a non-loopback line does not count",
			hostname: "vm1",
			hosts:    "10.0.0.4 vm1\n",
			want:     "10.0.0.4 vm1\n127.0.1.1\tvm1\n",
		},
		{
			name:     "a commented line does not count",
			hostname: "vm1",
			hosts:    "# 127.0.1.1 vm1\n",
			want:     "# 127.0.1.1 vm1\n127.0.1.1\tvm1\n",
		},
		{
			name:     "no final newline",
			hostname: "vm1",
			hosts:    "127.0.0.1 localhost",
			want:     "127.0.0.1 localhost\n127.0.1.1\tvm1\n",
		},
		{
			name:     "stale 127.0.1.1 lines: the first replaced, the others dropped",
			hostname: "vm1",
			hosts:    "127.0.1.1 old1\n127.0.0.1 localhost\n127.0.1.1 old2\n",
			want:     "127.0.1.1\tvm1\n127.0.0.1 localhost\n",
		},
		{
			name:     "other lines kept byte for byte",
			hostname: "vm1",
			hosts:    "127.0.0.1 localhost\r\n  \t\r\nbogus line\r\n127.0.1.1 old\r\n# end",
			want:     "127.0.0.1 localhost\r\n  \t\r\nbogus line\r\n127.0.1.1\tvm1\n# end",
		},
		{
			name:     "no /etc/hosts",
			hostname: "vm1",
			missing:  true,
			want:     "127.0.1.1\tvm1\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := modulestest.NewRoot(t)
			hosts := root.HostPath("/etc/hosts")
			if tt.missing {
				os.Remove(hosts)
			} else if err := os.WriteFile(hosts, []byte(tt.hosts), 0o644); err != nil {
				t.Fatal(err)
			}
			env := modulestest.Env(t, root, hostnameData(t, tt.hostname))
			if _, err := (modules.Hostname{}).Apply(t.Context(), env); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, modulestest.ReadFile(t, root, "/etc/hosts")); diff != "" {
				t.Errorf("/etc/hosts (-want +got):\n%s", diff)
			}
			short, _, _ := strings.Cut(strings.TrimSuffix(tt.hostname, "."), ".")
			if got := modulestest.ReadFile(t, root, "/etc/hostname"); got != short+"\n" {
				t.Errorf("/etc/hostname = %q, want %q", got, short+"\n")
			}
		})
	}
}

func TestHostnameKeepsHostsMode(t *testing.T) {
	root := modulestest.NewRoot(t)
	if err := os.Chmod(root.HostPath("/etc/hosts"), 0o640); err != nil {
		t.Fatal(err)
	}
	env := modulestest.Env(t, root, hostnameData(t, "vm1"))
	if _, err := (modules.Hostname{}).Apply(t.Context(), env); err != nil {
		t.Fatal(err)
	}
	if got := modulestest.Mode(t, root, "/etc/hosts"); got != 0o640 {
		t.Errorf("/etc/hosts mode %v, want 0640", got)
	}
	if got := modulestest.Mode(t, root, "/etc/hostname"); got != 0o644 {
		t.Errorf("/etc/hostname mode %v, want 0644", got)
	}
}

func TestHostnameIdempotent(t *testing.T) {
	root := modulestest.NewRoot(t)
	env := modulestest.Env(t, root, hostnameData(t, "vm1.contoso.internal"))
	var outcomes []modules.Outcome
	var files []string
	for range 2 {
		got, err := (modules.Hostname{}).Apply(t.Context(), env)
		if err != nil {
			t.Fatal(err)
		}
		outcomes = append(outcomes, got)
		files = append(files, modulestest.ReadFile(t, root, "/etc/hostname")+modulestest.ReadFile(t, root, "/etc/hosts"))
	}
	if diff := cmp.Diff([]modules.Outcome{modules.Changed, modules.Unchanged}, outcomes); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
	if files[0] != files[1] {
		t.Errorf("second run changed the files:\n%s\n---\n%s", files[0], files[1])
	}
}

func TestHostnameOfflineLeavesKernel(t *testing.T) {
	root := modulestest.NewRoot(t)
	env := modulestest.Env(t, root, hostnameData(t, "vm1"))
	if _, err := (modules.Hostname{}).Apply(t.Context(), env); err != nil {
		t.Fatal(err)
	}
	if k := env.Kernel.(*modulestest.Kernel); len(k.Hostnames) != 0 {
		t.Errorf("offline run set the kernel's host name: %q", k.Hostnames)
	}
}

func TestHostnameLiveSetsKernel(t *testing.T) {
	current, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	want := "azinit-test-vm"
	if strings.EqualFold(current, want) {
		want += "-2"
	}
	root := modulestest.NewRoot(t)
	env := modulestest.Env(t, root, hostnameData(t, want+".contoso.internal"))
	env.Live = true // with the recording kernel
	if got, err := (modules.Hostname{}).Apply(t.Context(), env); err != nil || got != modules.Changed {
		t.Fatalf("Apply = %v, %v; want changed", got, err)
	}
	if diff := cmp.Diff([]string{want}, env.Kernel.(*modulestest.Kernel).Hostnames); diff != "" {
		t.Errorf("sethostname calls (-want +got):\n%s", diff)
	}
}

func TestHostnameLiveKernelAlreadySet(t *testing.T) {
	current, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	root := modulestest.NewRoot(t)
	env := modulestest.Env(t, root, hostnameData(t, current))
	env.Live = true
	if _, err := (modules.Hostname{}).Apply(t.Context(), env); errors.Is(err, modules.ErrBadHostname) {
		t.Skipf("this machine's host name %q is not an RFC 1123 name", current)
	} else if err != nil {
		t.Fatal(err)
	}
	if k := env.Kernel.(*modulestest.Kernel); len(k.Hostnames) != 0 {
		t.Errorf("the kernel already had the name, yet sethostname was called: %q", k.Hostnames)
	}
}

func TestHostnameRejectsBadNames(t *testing.T) {
	for _, name := range []string{
		"vm_1",
		"-vm1",
		"vm1-",
		"vm1..contoso",
		".vm1",
		"vm 1",
		"vm1\n",
		strings.Repeat("a", 64),
		strings.Repeat("a.", 126) + "ab", // 254 characters
	} {
		t.Run(name, func(t *testing.T) {
			root := modulestest.NewRoot(t)
			before := modulestest.ReadFile(t, root, "/etc/hosts")
			env := modulestest.Env(t, root, hostnameDataRaw(t, name))
			_, err := (modules.Hostname{}).Apply(t.Context(), env)
			if !errors.Is(err, modules.ErrBadHostname) {
				t.Fatalf("Apply = %v, want ErrBadHostname", err)
			}
			if !strings.Contains(err.Error(), strings.TrimSpace(name)) {
				t.Errorf("error %q does not name %q", err, name)
			}
			if got := modulestest.ReadFile(t, root, "/etc/hosts"); got != before {
				t.Errorf("/etc/hosts changed to %q", got)
			}
			if got := modulestest.ReadFile(t, root, "/etc/hostname"); got != "localhost\n" {
				t.Errorf("/etc/hostname changed to %q", got)
			}
		})
	}
}

// hostnameDataRaw asks for name exactly, which the OVF's XML would trim.
func hostnameDataRaw(t *testing.T, name string) *azure.Data {
	t.Helper()
	d := hostnameData(t, "placeholder")
	d.OVF.HostName = name
	return d
}

func TestHostnameNoneAsked(t *testing.T) {
	root := modulestest.NewRoot(t)
	env := modulestest.Env(t, root, &azure.Data{})
	got, err := (modules.Hostname{}).Apply(t.Context(), env)
	if err != nil || got != modules.Skipped {
		t.Fatalf("Apply = %v, %v; want skipped", got, err)
	}
	if got := modulestest.ReadFile(t, root, "/etc/hostname"); got != "localhost\n" {
		t.Errorf("/etc/hostname changed to %q", got)
	}
}
