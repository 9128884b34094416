package modules_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/azinit/azinit/internal/fixtures"
	"github.com/azinit/azinit/internal/sys"
	"github.com/azinit/azinit/modules"
	"github.com/azinit/azinit/modules/modulestest"
)

// publishEnv is a live Env over a temp root asking for host name vm1, with
// a fake sysfs holding lo (1), eth0 (2) and eth1 (3).
func publishEnv(t *testing.T) (*modules.Env, *modulestest.Runner) {
	t.Helper()
	sysfs := t.TempDir()
	for name, index := range map[string]string{"lo": "1", "eth0": "2", "eth1": "3"} {
		dir := filepath.Join(sysfs, "class", "net", name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "ifindex"), []byte(index+"\n"), 0o444); err != nil {
			t.Fatal(err)
		}
	}
	env := modulestest.Env(t, modulestest.NewRoot(t), hostnameData(t, "vm1"))
	env.Live = true
	env.Config.Datasource.Azure.Sysfs = sysfs
	return env, env.Run.(*modulestest.Runner)
}

// writeFiles creates files (root-absolute name: content) under root.
func writeFiles(t *testing.T, root *sys.Root, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := root.HostPath(name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// debianDhclient is the command line of the dhclient Debian's ifup runs.
const debianDhclient = "/sbin/dhclient\x00-4\x00-v\x00-i\x00-pf\x00/run/dhclient.eth0.pid\x00-lf\x00/var/lib/dhcp/dhclient.eth0.leases\x00-I\x00-df\x00/var/lib/dhcp/dhclient6.eth0.leases\x00eth0\x00"

const nmUUID = "5fb06bd0-0bb0-7ffb-45f1-d6edd65f3e03"

func TestPublishHostname(t *testing.T) {
	networkdLease := "ADDRESS=10.0.0.69\nOPTION_245=a83f8110\n"
	tests := []struct {
		name     string
		files    map[string]string
		commands []string
		client   string
	}{
		{
			name:     "systemd-networkd",
			files:    map[string]string{"/run/systemd/netif/leases/2": networkdLease},
			commands: []string{"networkctl reconfigure eth0"},
		},
		{
			name: "systemd-networkd: the primary interface is the lowest index",
			files: map[string]string{
				"/run/systemd/netif/leases/3": networkdLease,
				"/run/systemd/netif/leases/2": networkdLease,
				"/run/systemd/netif/leases/9": networkdLease, // an interface gone since
			},
			commands: []string{"networkctl reconfigure eth0"},
		},
		{
			name: "systemd-networkd before dhclient",
			files: map[string]string{
				"/run/systemd/netif/leases/3": networkdLease,
				"/proc/812/cmdline":           debianDhclient,
			},
			commands: []string{"networkctl reconfigure eth1"},
		},
		{
			name: "NetworkManager, internal client",
			files: map[string]string{
				"/var/lib/NetworkManager/internal-" + nmUUID + "-eth0.lease": "ADDRESS=10.0.0.4\n",
				"/run/NetworkManager/devices/2":                              "[device]\nmanaged=true\n",
			},
			commands: []string{"nmcli device modify eth0 ipv4.dhcp-hostname vm1"},
		},
		{
			name: "NetworkManager, dhclient plugin, lease in /run",
			files: map[string]string{
				"/run/NetworkManager/dhclient-" + nmUUID + "-eth1.lease": "lease {}\n",
				"/run/NetworkManager/devices/3":                          "[device]\nmanaged=true\n",
				"/proc/812/cmdline":                                      debianDhclient,
			},
			commands: []string{"nmcli device modify eth1 ipv4.dhcp-hostname vm1"},
		},
		{
			name: "NetworkManager lease of an earlier boot is ignored",
			files: map[string]string{
				"/var/lib/NetworkManager/internal-" + nmUUID + "-eth0.lease":  "ADDRESS=10.0.0.4\n",
				"/var/lib/NetworkManager/internal6-" + nmUUID + "-eth1.lease": "",
				"/run/NetworkManager/devices/3":                               "[device]\nmanaged=true\n",
				"/proc/812/cmdline":                                           debianDhclient,
			},
			commands: []string{
				"systemd-run --collect --quiet -- /sbin/dhclient -d -4 -v -i -pf /run/dhclient.eth0.pid -lf /var/lib/dhcp/dhclient.eth0.leases -I -df /var/lib/dhcp/dhclient6.eth0.leases eth0",
				"kill -TERM 812",
			},
		},
		{
			name: "dhclient",
			files: map[string]string{
				"/proc/1/cmdline":    "/sbin/init\x00",
				"/proc/700/cmdline":  "dhclient\x00-6\x00eth0\x00", // DHCPv6
				"/proc/812/cmdline":  debianDhclient,
				"/proc/self/cmdline": "",
			},
			commands: []string{
				"systemd-run --collect --quiet -- /sbin/dhclient -d -4 -v -i -pf /run/dhclient.eth0.pid -lf /var/lib/dhcp/dhclient.eth0.leases -I -df /var/lib/dhcp/dhclient6.eth0.leases eth0",
				"kill -TERM 812",
			},
		},
		{
			name: "dhclient given a host name (RHEL's ifup)",
			files: map[string]string{
				"/proc/4242/cmdline": "/sbin/dhclient\x00-1\x00-q\x00-lf\x00/var/lib/dhclient/dhclient--eth0.lease\x00-pf\x00/var/run/dhclient-eth0.pid\x00-H\x00image\x00eth0\x00",
			},
			commands: []string{
				"systemd-run --collect --quiet -- /sbin/dhclient -d -1 -q -lf /var/lib/dhclient/dhclient--eth0.lease -pf /var/run/dhclient-eth0.pid -H vm1 eth0",
				"kill -TERM 4242",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, runner := publishEnv(t)
			writeFiles(t, env.Root, tt.files)
			got, err := (modules.PublishHostname{}).Apply(t.Context(), env)
			if err != nil || got != modules.Changed {
				t.Fatalf("Apply = %v, %v; want changed", got, err)
			}
			if diff := cmp.Diff(tt.commands, runner.Commands()); diff != "" {
				t.Errorf("commands (-want +got):\n%s", diff)
			}
			if got := modulestest.ReadFile(t, env.Root, "/var/lib/waagent/published_hostname"); got != "vm1" {
				t.Errorf("published_hostname = %q, want vm1", got)
			}
			if got := modulestest.Mode(t, env.Root, "/var/lib/waagent"); got != 0o700 {
				t.Errorf("/var/lib/waagent mode %v, want 0700", got)
			}
		})
	}
}

func TestPublishHostnameNetworkdFixture(t *testing.T) {
	env, runner := publishEnv(t)
	writeFiles(t, env.Root, map[string]string{"/run/systemd/netif/leases/2": string(fixtures.Read(t, "networkd-lease-245"))})
	if _, err := (modules.PublishHostname{}).Apply(t.Context(), env); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"networkctl reconfigure eth0"}, runner.Commands()); diff != "" {
		t.Errorf("commands (-want +got):\n%s", diff)
	}
}

func TestPublishHostnameDhclientConf(t *testing.T) {
	tests := []struct {
		name       string
		files      map[string]string
		cmdline    string
		file, want string
	}{
		{
			name:    "Debian's default already sends it",
			files:   map[string]string{"/etc/dhcp/dhclient.conf": "option rfc3442-classless-static-routes code 121 = array of unsigned integer 8;\n\nsend host-name = gethostname();\nrequest subnet-mask;\n"},
			cmdline: debianDhclient,
			file:    "/etc/dhcp/dhclient.conf",
			want:    "option rfc3442-classless-static-routes code 121 = array of unsigned integer 8;\n\nsend host-name = gethostname();\nrequest subnet-mask;\n",
		},
		{
			name:    "a fixed name replaced",
			files:   map[string]string{"/etc/dhcp/dhclient.conf": "#send host-name \"andare.fugue.com\";\nsend host-name \"image\";\ninterface \"eth0\" {\n\tsend host-name \"image\";\n}\n"},
			cmdline: debianDhclient,
			file:    "/etc/dhcp/dhclient.conf",
			want:    "#send host-name \"andare.fugue.com\";\nsend host-name = gethostname();\ninterface \"eth0\" {\n\tsend host-name = gethostname();\n}\n",
		},
		{
			name:    "appended",
			files:   map[string]string{"/etc/dhcp/dhclient.conf": "request subnet-mask;"},
			cmdline: debianDhclient,
			file:    "/etc/dhcp/dhclient.conf",
			want:    "request subnet-mask;\nsend host-name = gethostname();\n",
		},
		{
			name:    "created",
			cmdline: debianDhclient,
			file:    "/etc/dhcp/dhclient.conf",
			want:    "send host-name = gethostname();\n",
		},
		{
			name:    "the first of WALinuxAgent's files that exists",
			files:   map[string]string{"/etc/dhclient.conf": "timeout 30;\n"},
			cmdline: debianDhclient,
			file:    "/etc/dhclient.conf",
			want:    "timeout 30;\nsend host-name = gethostname();\n",
		},
		{
			name:    "the file given by -cf",
			files:   map[string]string{"/etc/dhcp/dhclient.conf": "timeout 30;\n", "/etc/dhcp/eth0.conf": "timeout 60;\n"},
			cmdline: "dhclient\x00-cf\x00/etc/dhcp/eth0.conf\x00eth0\x00",
			file:    "/etc/dhcp/eth0.conf",
			want:    "timeout 60;\nsend host-name = gethostname();\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, _ := publishEnv(t)
			writeFiles(t, env.Root, tt.files)
			writeFiles(t, env.Root, map[string]string{"/proc/812/cmdline": tt.cmdline})
			if _, err := (modules.PublishHostname{}).Apply(t.Context(), env); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, modulestest.ReadFile(t, env.Root, tt.file)); diff != "" {
				t.Errorf("%s (-want +got):\n%s", tt.file, diff)
			}
		})
	}
}

func TestPublishHostnameNoClient(t *testing.T) {
	env, runner := publishEnv(t)
	writeFiles(t, env.Root, map[string]string{
		// Not this boot's, and not a running client.
		"/var/lib/NetworkManager/internal-" + nmUUID + "-eth0.lease": "",
		"/var/lib/dhcp/dhclient.eth0.leases":                         "lease {}\n",
		"/proc/812/cmdline":                                          "dhclient\x00-x\x00eth0\x00",
	})
	_, err := (modules.PublishHostname{}).Apply(t.Context(), env)
	if !errors.Is(err, modules.ErrNoDHCPClient) || !strings.Contains(err.Error(), "no DHCP client was found") {
		t.Fatalf("Apply = %v, want ErrNoDHCPClient", err)
	}
	if got := runner.Commands(); len(got) != 0 {
		t.Errorf("ran %q", got)
	}
	if _, err := os.Stat(env.Root.HostPath("/var/lib/waagent/published_hostname")); err == nil {
		t.Error("published_hostname written though nothing was published")
	}
}

func TestPublishHostnameCommandFails(t *testing.T) {
	env, runner := publishEnv(t)
	runner.Respond = func(c sys.Command) (sys.Result, error) {
		return sys.Result{}, &sys.ExitError{Command: c.String(), Code: 1, Stderr: "Failed to reconfigure network interface eth0: Access denied"}
	}
	writeFiles(t, env.Root, map[string]string{"/run/systemd/netif/leases/2": ""})
	_, err := (modules.PublishHostname{}).Apply(t.Context(), env)
	if err == nil || !strings.Contains(err.Error(), "networkctl reconfigure eth0") {
		t.Fatalf("Apply = %v, want an error naming the command", err)
	}
	if _, err := os.Stat(env.Root.HostPath("/var/lib/waagent/published_hostname")); err == nil {
		t.Error("published_hostname written though publishing failed")
	}
}

func TestPublishHostnameDhclientRestartFails(t *testing.T) {
	env, runner := publishEnv(t)
	runner.Respond = func(c sys.Command) (sys.Result, error) {
		return sys.Result{}, &sys.ExitError{Command: c.String(), Code: 1}
	}
	writeFiles(t, env.Root, map[string]string{"/proc/812/cmdline": debianDhclient})
	if _, err := (modules.PublishHostname{}).Apply(t.Context(), env); err == nil || !strings.Contains(err.Error(), "systemd-run") {
		t.Fatalf("Apply = %v, want an error naming systemd-run", err)
	}
	// The running client is left running.
	if got := runner.Commands(); len(got) != 1 || strings.HasPrefix(got[0], "kill") {
		t.Errorf("commands %q, want systemd-run alone", got)
	}
}

func TestPublishHostnameSkipped(t *testing.T) {
	tests := []struct {
		name  string
		setup func(*modules.Env)
		want  modules.Outcome
	}{
		{"offline", func(env *modules.Env) { env.Live = false }, modules.Skipped},
		{"turned off", func(env *modules.Env) { env.Config.Hostname.Publish = false }, modules.Skipped},
		{"no host name", func(env *modules.Env) { env.Data.OVF.HostName = "" }, modules.Skipped},
		{"already published", func(env *modules.Env) {
			writeFiles(t, env.Root, map[string]string{"/var/lib/waagent/published_hostname": "vm1"})
		}, modules.Unchanged},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, runner := publishEnv(t)
			writeFiles(t, env.Root, map[string]string{"/run/systemd/netif/leases/2": ""})
			tt.setup(env)
			got, err := (modules.PublishHostname{}).Apply(t.Context(), env)
			if err != nil || got != tt.want {
				t.Fatalf("Apply = %v, %v; want %v", got, err, tt.want)
			}
			if got := runner.Commands(); len(got) != 0 {
				t.Errorf("ran %q", got)
			}
		})
	}
}

func TestPublishHostnameRepublishesANewName(t *testing.T) {
	env, runner := publishEnv(t)
	writeFiles(t, env.Root, map[string]string{
		"/run/systemd/netif/leases/2":         "",
		"/var/lib/waagent/published_hostname": "image",
	})
	if got, err := (modules.PublishHostname{}).Apply(t.Context(), env); err != nil || got != modules.Changed {
		t.Fatalf("Apply = %v, %v; want changed", got, err)
	}
	if got, err := (modules.PublishHostname{}).Apply(t.Context(), env); err != nil || got != modules.Unchanged {
		t.Fatalf("second Apply = %v, %v; want unchanged", got, err)
	}
	if diff := cmp.Diff([]string{"networkctl reconfigure eth0"}, runner.Commands()); diff != "" {
		t.Errorf("commands (-want +got):\n%s", diff)
	}
}
