package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/azinit/azinit/internal/fixtures"
	"github.com/azinit/azinit/internal/sys"
)

// rootWith builds a target root holding files (root-absolute name → content).
func rootWith(t *testing.T, files map[string]string) *sys.Root {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r, err := sys.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  func(*Config)
	}{
		{"no files: defaults", nil, func(*Config) {}},
		{"main file", map[string]string{
			DefaultPath: "datasource:\n  azure:\n    wireserver: http://127.0.0.1:8080\n    media: /dev/sr1\n    media_wait: 2s\n",
		}, func(c *Config) {
			c.Datasource.Azure.Wireserver = "http://127.0.0.1:8080"
			c.Datasource.Azure.Media = "/dev/sr1"
			c.Datasource.Azure.MediaWait = Duration(2 * time.Second)
		}},
		{"drop-ins in lexical order override the main file", map[string]string{
			DefaultPath:                 "datasource: {azure: {imds: 'http://127.0.0.1:1'}}\n",
			DropInDir + "/20-b.yaml":    "datasource: {azure: {imds: 'http://127.0.0.1:3'}}\n",
			DropInDir + "/10-a.yaml":    "datasource: {azure: {imds: 'http://127.0.0.1:2', media: /img}}\n",
			DropInDir + "/30-skip.conf": "not yaml at all: [",
		}, func(c *Config) {
			c.Datasource.Azure.IMDS = "http://127.0.0.1:3"
			c.Datasource.Azure.Media = "/img"
		}},
		{"empty file", map[string]string{DefaultPath: ""}, func(*Config) {}},
		{"waagent.conf discovery off, yaml wins for imds", map[string]string{
			WaagentConfig: "Protocol.EndpointDiscovery=static\n",
			DefaultPath:   "datasource: {azure: {imds: 'http://127.0.0.1:9'}}\n",
		}, func(c *Config) {
			c.Datasource.Azure.Wireserver = KnownWireserver
			c.Datasource.Azure.IMDS = "http://127.0.0.1:9"
		}},
		{"waagent.conf module options", map[string]string{
			WaagentConfig: `OS.HomeDir=/users
Provisioning.PasswordCryptSaltLength=12
Provisioning.AllowResetSysUser=y
OS.SshClientAliveInterval=60
Provisioning.RegenerateSshHostKeyPair=n
Provisioning.SshHostKeyPairType=ecdsa
Provisioning.ExecuteCustomData=y
`,
		}, func(c *Config) {
			c.Users.HomeDir, c.Users.PasswordSaltLength, c.Users.AllowResetSystemUser = "/users", 12, true
			c.SSHD.ClientAliveInterval = 60
			c.SSHHostKeys.Regenerate, c.SSHHostKeys.Types = false, []string{"ecdsa"}
			c.CustomData.Decode, c.CustomData.Execute = true, true
		}},
		{"waagent.conf values WALinuxAgent would ignore", map[string]string{
			WaagentConfig: "Provisioning.RegenerateSshHostKeyPair=maybe\nOS.SshClientAliveInterval=soon\nProvisioning.SshHostKeyPairType=dsa\nOS.HomeDir=relative\n",
		}, func(*Config) {}},
		{"key type auto is every type", map[string]string{WaagentConfig: "Provisioning.SshHostKeyPairType=auto\n"}, func(*Config) {}},
		{"waagent.conf extension options", map[string]string{
			WaagentConfig: `Extensions.Enabled=n
Extensions.GoalStatePeriod=600
Debug.EnableFastTrack=n
EnableOverProvisioning=n
CGroups.Enabled=n
Extension.LogDir=/var/log/ext
HttpProxy.Host=proxy.example
HttpProxy.Port=3128
`,
		}, func(c *Config) {
			e := &c.Extensions
			e.Enabled, e.FastTrack, e.HonorOnHold, e.ResourceLimits = false, false, false, false
			e.GoalStatePeriod, e.StatusPeriod = Duration(10*time.Minute), Duration(10*time.Minute)
			e.LogDir, e.HTTPProxy = "/var/log/ext", "http://proxy.example:3128"
		}},
		{"platform forced", map[string]string{
			DefaultPath: "datasource: {platform: azure}\n",
		}, func(c *Config) { c.Datasource.Platform = "azure" }},
		{"yaml overrides waagent.conf", map[string]string{
			WaagentConfig: "Protocol.EndpointDiscovery=static\n",
			DefaultPath:   "datasource: {azure: {wireserver: 'http://127.0.0.1:7'}}\n",
		}, func(c *Config) { c.Datasource.Azure.Wireserver = "http://127.0.0.1:7" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Load(rootWith(t, tt.files), "")
			if err != nil {
				t.Fatal(err)
			}
			want := Default()
			tt.want(&want)
			if diff := cmp.Diff(&want, got); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadErrorsNameKeyAndFile(t *testing.T) {
	tests := []struct {
		name  string
		file  string
		wants []string
	}{
		{"unknown key", "datasource:\n  azure:\n    wireservr: http://x\n", []string{DefaultPath, "wireservr", "line 3"}},
		{"unknown section", "resource_dsk: {}\n", []string{DefaultPath, "resource_dsk"}},
		{"bad duration", "datasource: {azure: {media_wait: soon}}\n", []string{DefaultPath, "soon", "duration"}},
		{"bad url", "datasource: {azure: {imds: '169.254.169.254'}}\n", []string{"datasource.azure.imds", "http(s) URL"}},
		{"url with path", "datasource: {azure: {wireserver: 'http://127.0.0.1/machine'}}\n", []string{"datasource.azure.wireserver", "base URL"}},
		{"relative media", "datasource: {azure: {media: sr0}}\n", []string{"datasource.azure.media", "sr0"}},
		{"platform", "datasource: {platform: aws}\n", []string{"datasource.platform", `"aws"`, "auto, azure, none"}},
		{"health protocol", "datasource: {azure: {health: soap}}\n", []string{"datasource.azure.health", "soap"}},
		{"zero retry unit", "datasource: {azure: {retry_unit: 0s}}\n", []string{"datasource.azure.retry_unit"}},
		{"host key type", "ssh_host_keys: {types: [ed25519, dsa]}\n", []string{"ssh_host_keys.types", `"dsa"`}},
		{"salt length", "users: {password_salt_length: 40}\n", []string{"users.password_salt_length", "40"}},
		{"unknown module option", "users: {groupz: [sudo]}\n", []string{"groupz"}},
		{"goal state period", "extensions: {goal_state_period: 100ms}\n", []string{"extensions.goal_state_period", "100ms"}},
		{"status period", "extensions: {status_period: 2s}\n", []string{"extensions.status_period"}},
		{"proxy", "extensions: {http_proxy: 'proxy:3128'}\n", []string{"extensions.http_proxy"}},
		{"log dir", "extensions: {log_dir: azure}\n", []string{"extensions.log_dir"}},
		{"package size", "extensions: {max_package_mb: 0}\n", []string{"extensions.max_package_mb"}},
		{"not yaml", "datasource: [\n", []string{DefaultPath}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(rootWith(t, map[string]string{DefaultPath: tt.file}), "")
			if err == nil {
				t.Fatal("want error")
			}
			for _, w := range tt.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestLoadExplicit(t *testing.T) {
	r := rootWith(t, map[string]string{DropInDir + "/10.yaml": "datasource: {azure: {media: /ignored}}\n"})
	p := filepath.Join(t.TempDir(), "my.yaml")
	os.WriteFile(p, []byte("datasource: {azure: {imds: 'http://127.0.0.1:5'}}\n"), 0o644)
	got, err := Load(r, p)
	if err != nil {
		t.Fatal(err)
	}
	if a := got.Datasource.Azure; a.IMDS != "http://127.0.0.1:5" || a.Media != "auto" {
		t.Errorf("explicit config not applied alone: %+v", a)
	}
	if _, err := Load(r, filepath.Join(t.TempDir(), "missing.yaml")); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("missing explicit config: err = %v", err)
	}
}

func TestParseWaagent(t *testing.T) {
	got := ParseWaagent([]byte(`# comment
Provisioning.Agent=auto
Provisioning.Agent=waagent
 ResourceDisk.MountPoint = "/mnt/resource"  # trailing comment
HttpProxy.Host=None
OS.SshDir=/etc/ssh
no equals sign here
=empty key
`))
	want := map[string]string{
		"Provisioning.Agent":      "waagent",
		"ResourceDisk.MountPoint": "/mnt/resource",
		"OS.SshDir":               "/etc/ssh",
		"":                        "empty key",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ParseWaagent (-want +got):\n%s", diff)
	}
}

func TestParseWaagentFixture(t *testing.T) {
	kv := ParseWaagent(fixtures.Read(t, "test_waagent.conf"))
	for k, want := range map[string]string{
		"Provisioning.Agent":      "auto",
		"ResourceDisk.Format":     "y",
		"ResourceDisk.Filesystem": "ext4",
		"ResourceDisk.MountPoint": "/mnt/resource",
	} {
		if got, ok := kv[k]; !ok || got != want {
			t.Errorf("%s = %q (present %v), want %q", k, got, ok, want)
		}
	}
	for _, k := range []string{"ResourceDisk.MountOptions", "OS.OpensslPath", "HttpProxy.Host"} {
		if v, ok := kv[k]; ok {
			t.Errorf("%s = %q, want unset (None or commented out)", k, v)
		}
	}
}

func FuzzParseWaagent(f *testing.F) {
	f.Add([]byte("Provisioning.Agent=auto # c\nHttpProxy.Host=None\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for k, v := range ParseWaagent(b) {
			if strings.ContainsAny(k, "\n") || strings.Contains(v, "#") {
				t.Fatalf("bad entry %q=%q", k, v)
			}
		}
	})
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte("datasource:\n  azure:\n    wireserver: http://127.0.0.1:1\n    media_wait: 3s\n"))
	f.Add([]byte("datasource: {azure: {media: [1, 2]}}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		cfg := Default()
		if decode(&cfg, "fuzz.yaml", b) == nil {
			cfg.validate("fuzz.yaml")
		}
	})
}
