package generator

import (
	"bytes"
	"errors"
	"flag"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/azinit/azinit/internal/config"
	"github.com/azinit/azinit/internal/fixtures"
	"github.com/azinit/azinit/internal/logging"
	"github.com/azinit/azinit/internal/sys"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// now is the time every test run records.
var now = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

// makeTree creates files under dir: slash path → content, or "-> TARGET"
// for a symlink.
func makeTree(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		if target, ok := strings.CutPrefix(content, "-> "); ok {
			err = os.Symlink(target, p)
		} else {
			err = os.WriteFile(p, []byte(content), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// listing is the tree under dir as makeTree takes it; directories are left
// out.
func listing(t testing.TB, dir string) map[string]string {
	t.Helper()
	got := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if e.Type()&fs.ModeSymlink != 0 {
			target, err := os.Readlink(p)
			got[rel] = "-> " + target
			return err
		}
		b, err := os.ReadFile(p)
		got[rel] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// azureVM is the files of a target root at dir on an Azure VM with azinit
// installed: the DMI data lives in <dir>/sys, which the configuration
// names.
func azureVM(dir string) map[string]string {
	return map[string]string{
		"/proc/cmdline":                         "BOOT_IMAGE=/boot/vmlinuz-6.1.0-azure root=PARTUUID=0a1b ro console=tty1 console=ttyS0\n",
		"/sys/class/dmi/id/chassis_asset_tag":   AzureAssetTag + "\n",
		config.DefaultPath:                      "datasource: {azure: {sysfs: '" + dir + "/sys'}}\n",
		"/usr/lib/systemd/system/azinit.target": "[Unit]\nDescription=azinit\n",
	}
}

func golden(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(filepath.Join("testdata", name), got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff(golden(t, name), string(got)); diff != "" {
		t.Errorf("%s (-want +got):\n%s", name, diff)
	}
}

func openRoot(t testing.TB, dir string) *sys.Root {
	t.Helper()
	r, err := sys.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestParseCmdline(t *testing.T) {
	for _, tt := range []struct{ cmdline, want string }{
		{"", ""},
		{"BOOT_IMAGE=/vmlinuz root=/dev/sda1 ro quiet\n", ""},
		{"ro azinit=disabled quiet\n", "disabled"},
		{"azinit=enabled", "enabled"},
		{"azinit=disabled azinit=enabled", "disabled"},
		{"azinit=enabled quiet azinit=disabled", "disabled"},
		{"azinit=disabled azinit=maybe azinit", "disabled"},
		{`"azinit=disabled"`, "disabled"},
		{`azinit="disabled"`, "disabled"},
		{`'azinit=enabled'`, "enabled"},
		{`azinit=dis"abl"ed`, "disabled"},
		{`foo="bar azinit=disabled"`, ""},
		{`foo="unterminated azinit=disabled`, ""},
		{`a\ azinit=disabled`, "disabled"},
		{"quiet\tazinit=disabled\r", "disabled"},
		{"quiet\nazinit=disabled\n", ""},
		{"xazinit=disabled azinit.disabled azinit=Disabled", ""},
	} {
		if got := ParseCmdline([]byte(tt.cmdline)); got != tt.want {
			t.Errorf("ParseCmdline(%q) = %q, want %q", tt.cmdline, got, tt.want)
		}
	}
}

func TestCmdlineWords(t *testing.T) {
	got := cmdlineWords(` a  "b c" d''e "" 'f "g' h\ i` + "\t")
	want := []string{"a", "b c", "de", "", `f "g`, `h\`, "i"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("words (-want +got):\n%s", diff)
	}
}

func FuzzParseCmdline(f *testing.F) {
	for _, s := range []string{
		"BOOT_IMAGE=/boot/vmlinuz-6.8.0-1021-azure root=PARTUUID=5b1e ro console=tty1 console=ttyS0 earlyprintk=ttyS0 panic=-1\n",
		"BOOT_IMAGE=(hd0,gpt2)/vmlinuz-5.14.0 root=/dev/mapper/rootvg-rootlv ro crashkernel=auto azinit=disabled\n",
		`initrd=\initrd.img azinit=enabled "dyndbg=file foo.c +p" azinit='disabled'`,
		`a"b c`, `'`, "",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, cmdline []byte) {
		if v := ParseCmdline(cmdline); v != "" && v != "enabled" && v != "disabled" {
			t.Fatalf("ParseCmdline(%q) = %q", cmdline, v)
		}
		line, _, _ := bytes.Cut(cmdline, []byte("\n"))
		words := cmdlineWords(string(line))
		// Without quotes, words are what whitespace separates.
		if !bytes.ContainsAny(line, `"'`) {
			fields := strings.FieldsFunc(string(line), func(r rune) bool { return strings.ContainsRune(" \t\r", r) })
			if diff := cmp.Diff(fields, words); len(fields)+len(words) > 0 && diff != "" {
				t.Fatalf("words of %q (-fields +words):\n%s", line, diff)
			}
		}
		// Quoting every word again gives the same words.
		var quoted []string
		for _, w := range words {
			q := `"`
			if strings.Contains(w, `"`) {
				q = `'`
			}
			if strings.Contains(w, q) {
				return
			}
			quoted = append(quoted, q+w+q)
		}
		again := cmdlineWords(strings.Join(quoted, " "))
		if diff := cmp.Diff(words, again); len(words)+len(again) > 0 && diff != "" {
			t.Fatalf("words of %q requoted (-first +again):\n%s", line, diff)
		}
	})
}

func TestDecide(t *testing.T) {
	installed := map[string]Unit{
		TargetUnit:                 {Path: "/usr/lib/systemd/system/azinit.target"},
		InitrdUnit:                 {Path: "/usr/lib/systemd/system/azinit-initrd.service"},
		"cloud-init-local.service": {Path: "/lib/systemd/system/cloud-init-local.service"},
		"cloud-final.service":      {Path: "/lib/systemd/system/cloud-final.service"},
		"walinuxagent.service":     {Path: "/lib/systemd/system/walinuxagent.service", Data: []byte(golden(t, "walinuxagent.service"))},
	}
	azure := func(in *Inputs) {
		in.Platform, in.AssetTag, in.Units = "auto", AzureAssetTag, installed
	}
	enabled := []Link{
		{"cloud-init-local.service", "/dev/null"},
		{"cloud-final.service", "/dev/null"},
		{"walinuxagent.service", "/dev/null"},
		{"multi-user.target.wants/azinit.target", "/usr/lib/systemd/system/azinit.target"},
	}
	masked := []string{"cloud-init-local.service", "cloud-final.service", "walinuxagent.service"}
	tests := []struct {
		name string
		in   func(*Inputs)
		want Decision
	}{
		{"cmdline disabled wins over everything", func(in *Inputs) {
			azure(in)
			in.Cmdline, in.Marker, in.Platform = "disabled", true, "azure"
		}, Decision{State: State{Reason: "kernel command line azinit=disabled", Platform: "azure"}}},
		{"marker wins over cmdline enabled", func(in *Inputs) {
			azure(in)
			in.Cmdline, in.Marker = "enabled", true
		}, Decision{State: State{Reason: "/etc/azinit/azinit.disabled exists", Platform: "azure"}}},
		{"cmdline enabled wins over platform none", func(in *Inputs) {
			azure(in)
			in.Cmdline, in.Platform, in.AssetTag = "enabled", "none", "other"
		}, Decision{State: State{Enabled: true, Reason: "kernel command line azinit=enabled", Masked: masked}, Links: enabled}},
		{"platform none on Azure", func(in *Inputs) {
			azure(in)
			in.Platform = "none"
		}, Decision{State: State{Reason: "datasource.platform is none"}}},
		{"platform azure elsewhere", func(in *Inputs) {
			azure(in)
			in.Platform, in.AssetTagErr = "azure", fs.ErrNotExist
		}, Decision{State: State{Enabled: true, Reason: "datasource.platform is azure", Platform: "azure", Masked: masked}, Links: enabled}},
		{"auto on Azure", azure,
			Decision{State: State{Enabled: true, Reason: "the DMI chassis asset tag is Azure's", Platform: "azure", Masked: masked}, Links: enabled}},
		{"auto elsewhere", func(in *Inputs) {
			azure(in)
			in.AssetTag = "No Asset Tag"
		}, Decision{State: State{Reason: `chassis asset tag "No Asset Tag" is not Azure's`}}},
		{"no asset tag", func(in *Inputs) {
			azure(in)
			in.AssetTag, in.AssetTagErr = "", errors.New("open /sys/class/dmi/id/chassis_asset_tag: permission denied")
		}, Decision{State: State{Reason: "no DMI chassis asset tag: open /sys/class/dmi/id/chassis_asset_tag: permission denied"}}},
		{"broken config decides as auto", func(in *Inputs) {
			azure(in)
			in.Platform, in.ConfigErr = "none", errors.New("config /etc/azinit/azinit.yaml: line 1: bad")
		}, Decision{State: State{
			Enabled: true, Reason: "the DMI chassis asset tag is Azure's", Platform: "azure", Masked: masked,
			Warnings: []string{"the configuration did not load, detecting the platform: config /etc/azinit/azinit.yaml: line 1: bad"},
		}, Links: enabled}},
		{"azinit.target not installed", func(in *Inputs) {
			azure(in)
			in.Units = map[string]Unit{"cloud-final.service": {Path: "/lib/systemd/system/cloud-final.service"}}
		}, Decision{State: State{Reason: "azinit.target is not installed", Platform: "azure"}}},
		{"initrd: only azinit-initrd.service", func(in *Inputs) {
			azure(in)
			in.Initrd = true
		}, Decision{State: State{Enabled: true, Initrd: true, Reason: "the DMI chassis asset tag is Azure's", Platform: "azure"},
			Links: []Link{{"initrd.target.wants/azinit-initrd.service", "/usr/lib/systemd/system/azinit-initrd.service"}}}},
		{"initrd without azinit-initrd.service", func(in *Inputs) {
			azure(in)
			in.Initrd, in.Units = true, map[string]Unit{TargetUnit: installed[TargetUnit]}
		}, Decision{State: State{Initrd: true, Reason: "azinit-initrd.service is not installed", Platform: "azure"}}},
		{"extensions masked: WALinuxAgent drop-in", func(in *Inputs) {
			azure(in)
			in.ExtensionsMasked, in.WaagentConf = true, []byte("Provisioning.Agent=auto\n")
		}, Decision{
			State: State{Enabled: true, Reason: "the DMI chassis asset tag is Azure's", Platform: "azure", Masked: masked[:2]},
			Links: []Link{enabled[0], enabled[1], enabled[3]},
			DropIns: []File{{
				Name: "walinuxagent.service.d/50-azinit.conf",
				Data: []byte(golden(t, "walinuxagent-50-azinit.conf.golden")),
			}},
			WaagentConf: []byte("Provisioning.Agent=disabled\n"),
		}},
		{"extensions masked, waagent.conf unreadable: WALinuxAgent masked", func(in *Inputs) {
			azure(in)
			in.ExtensionsMasked, in.WaagentConfErr = true, errors.New("read /etc/waagent.conf: is a directory")
		}, Decision{State: State{
			Enabled: true, Reason: "the DMI chassis asset tag is Azure's", Platform: "azure", Masked: masked,
			Warnings: []string{"walinuxagent.service: read /etc/waagent.conf: is a directory; masked instead"},
		}, Links: enabled}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var in Inputs
			tt.in(&in)
			got := Decide(in)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("decision (-want +got):\n%s", diff)
			}
		})
	}
}

func TestWaagentDropIn(t *testing.T) {
	got, err := WaagentDropIn([]byte(golden(t, "walinuxagent.service")))
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "walinuxagent-50-azinit.conf.golden", got)

	for _, tt := range []struct{ name, unit, exec, err string }{
		{"reset, then the command", "[Service]\nExecStart=/bin/false\nExecStart=\nExecStart=/usr/bin/python3 -u /usr/sbin/waagent -daemon\n",
			"ExecStart=/usr/bin/python3 -u /usr/sbin/waagent -daemon -configuration-path:/run/azinit/waagent.conf\n", ""},
		{"continued line", "[Service]\nExecStart=/usr/sbin/waagent \\\n  -daemon\n",
			"ExecStart=/usr/sbin/waagent \\\n  -daemon -configuration-path:/run/azinit/waagent.conf\n", ""},
		{"ExecStart only in [Unit]", "[Unit]\nExecStart=/usr/sbin/waagent\n[Service]\nType=simple\n", "", "no ExecStart"},
		{"not a unit", "[Service\nExecStart=/usr/sbin/waagent\n", "", "parsing the unit"},
	} {
		got, err := WaagentDropIn([]byte(tt.unit))
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: err = %v, want %q", tt.name, err, tt.err)
			}
			continue
		}
		if err != nil || !strings.HasSuffix(string(got), "ExecStart=\n"+tt.exec) {
			t.Errorf("%s: drop-in %q, %v; want it to end with ExecStart= and %q", tt.name, got, err, tt.exec)
		}
	}
}

func TestDisableProvisioning(t *testing.T) {
	for _, name := range []string{"waagent-with-agent.conf", "waagent-without-agent.conf"} {
		t.Run(name, func(t *testing.T) {
			checkGolden(t, name+".golden", DisableProvisioning([]byte(golden(t, name))))
		})
	}
	for _, tt := range []struct{ conf, want string }{
		{"", "# azinit provisions this VM (azinit-generator).\nProvisioning.Agent=disabled\n"},
		{"Logs.Verbose=n", "Logs.Verbose=n\n# azinit provisions this VM (azinit-generator).\nProvisioning.Agent=disabled\n"},
		{"  Provisioning.Agent = waagent # old\nProvisioning.Agent=auto", "Provisioning.Agent=disabled\nProvisioning.Agent=disabled"},
		{"#Provisioning.Agent=auto\nProvisioning.AgentX=1\n", "#Provisioning.Agent=auto\nProvisioning.AgentX=1\n# azinit provisions this VM (azinit-generator).\nProvisioning.Agent=disabled\n"},
	} {
		if got := string(DisableProvisioning([]byte(tt.conf))); got != tt.want {
			t.Errorf("DisableProvisioning(%q) = %q, want %q", tt.conf, got, tt.want)
		}
	}
}

// TestDisableProvisioningFixture checks WALinuxAgent's own full
// waagent.conf: one line changes, and the configuration loader reads the
// result as provisioning disabled.
func TestDisableProvisioningFixture(t *testing.T) {
	conf := fixtures.Read(t, "test_waagent.conf")
	got := DisableProvisioning(conf)
	before, after := strings.Split(string(conf), "\n"), strings.Split(string(got), "\n")
	if len(before) != len(after) {
		t.Fatalf("%d lines became %d", len(before), len(after))
	}
	var changed []string
	for i := range before {
		if before[i] != after[i] {
			changed = append(changed, before[i]+" → "+after[i])
		}
	}
	if diff := cmp.Diff([]string{"Provisioning.Agent=auto → Provisioning.Agent=disabled"}, changed); diff != "" {
		t.Errorf("changed lines (-want +got):\n%s", diff)
	}
	if v := config.ParseWaagent(got)["Provisioning.Agent"]; v != "disabled" {
		t.Errorf("Provisioning.Agent = %q", v)
	}
}

func TestRun(t *testing.T) {
	state := func(enabled bool, platform, reason string, masked ...string) State {
		if masked == nil {
			masked = []string{}
		}
		return State{Enabled: enabled, Reason: reason, Platform: platform, Masked: masked, Time: now}
	}
	onAzure := "the DMI chassis asset tag is Azure's"
	wants := map[string]string{"multi-user.target.wants/azinit.target": "-> /usr/lib/systemd/system/azinit.target"}
	tests := []struct {
		name    string
		files   func(dir string) map[string]string
		want    State
		outputs map[string]string // the normal generator directory
		waagent string            // /run/azinit/waagent.conf, "" for none
		warning string            // a logged warning
	}{
		{
			name:    "Azure: azinit on",
			files:   azureVM,
			want:    state(true, "azure", onAzure),
			outputs: wants,
		},
		{
			name: "cloud-init and WALinuxAgent masked, only the units installed",
			files: func(dir string) map[string]string {
				return with(azureVM(dir), map[string]string{
					"/lib/systemd/system/cloud-init-local.service": "[Unit]\n",
					"/lib/systemd/system/cloud-init.service":       "[Unit]\n",
					"/etc/systemd/system/cloud-final.service":      "[Unit]\n",
					"/usr/lib/systemd/system/waagent.service":      "[Service]\nExecStart=/usr/sbin/waagent -daemon\n",
				})
			},
			want: state(true, "azure", onAzure, "cloud-init-local.service", "cloud-init.service", "cloud-final.service", "waagent.service"),
			outputs: with(wants, map[string]string{
				"cloud-init-local.service": "-> /dev/null",
				"cloud-init.service":       "-> /dev/null",
				"cloud-final.service":      "-> /dev/null",
				"waagent.service":          "-> /dev/null",
			}),
		},
		{
			name: "azinit-extensions masked: WALinuxAgent runs the extensions",
			files: func(dir string) map[string]string {
				return with(azureVM(dir), map[string]string{
					"/lib/systemd/system/walinuxagent.service":      golden(t, "walinuxagent.service"),
					"/lib/systemd/system/cloud-config.service":      "[Unit]\n",
					"/etc/systemd/system/azinit-extensions.service": "-> /dev/null",
					config.WaagentConfig:                            golden(t, "waagent-with-agent.conf"),
				})
			},
			want: state(true, "azure", onAzure, "cloud-config.service"),
			outputs: with(wants, map[string]string{
				"cloud-config.service":                  "-> /dev/null",
				"walinuxagent.service.d/50-azinit.conf": golden(t, "walinuxagent-50-azinit.conf.golden"),
			}),
			waagent: golden(t, "waagent-with-agent.conf.golden"),
		},
		{
			name: "azinit-extensions masked, WALinuxAgent's unit unreadable: masked",
			files: func(dir string) map[string]string {
				return with(azureVM(dir), map[string]string{
					"/lib/systemd/system/walinuxagent.service":      "[Service\nExecStart=/usr/sbin/waagent\n",
					"/etc/systemd/system/azinit-extensions.service": "-> /dev/null",
				})
			},
			want:    state(true, "azure", onAzure, "walinuxagent.service"),
			outputs: with(wants, map[string]string{"walinuxagent.service": "-> /dev/null"}),
			warning: "walinuxagent.service: /lib/systemd/system/walinuxagent.service: parsing the unit",
		},
		{
			name: "units the admin masked stay as they are",
			files: func(dir string) map[string]string {
				return with(azureVM(dir), map[string]string{
					"/etc/systemd/system/cloud-init.service":   "-> /dev/null",
					"/lib/systemd/system/cloud-init.service":   "[Unit]\n",
					"/lib/systemd/system/cloud-final.service":  "[Unit]\n",
					"/etc/systemd/system/walinuxagent.service": "-> /dev/null",
					"/lib/systemd/system/walinuxagent.service": "[Service]\nExecStart=/usr/sbin/waagent -daemon\n",
				})
			},
			want:    state(true, "azure", onAzure, "cloud-final.service"),
			outputs: with(wants, map[string]string{"cloud-final.service": "-> /dev/null"}),
		},
		{
			name: "azinit.target masked by the admin",
			files: func(dir string) map[string]string {
				return with(azureVM(dir), map[string]string{
					"/etc/systemd/system/azinit.target":      "-> /dev/null",
					"/lib/systemd/system/cloud-init.service": "[Unit]\n",
				})
			},
			want:    state(false, "azure", "azinit.target is masked"),
			outputs: map[string]string{},
		},
		{
			name: "the admin's unit file first",
			files: func(dir string) map[string]string {
				return with(azureVM(dir), map[string]string{
					"/etc/systemd/system/azinit.target": "[Unit]\n",
					"/lib/systemd/system/azinit.target": "[Unit]\n",
				})
			},
			want:    state(true, "azure", onAzure),
			outputs: map[string]string{"multi-user.target.wants/azinit.target": "-> /etc/systemd/system/azinit.target"},
		},
		{
			name: "initramfs: azinit-initrd.service only",
			files: func(dir string) map[string]string {
				return with(azureVM(dir), map[string]string{
					InitrdRelease: "NAME=dracut\n",
					"/usr/lib/systemd/system/azinit-initrd.service": "[Unit]\n",
					"/usr/lib/systemd/system/cloud-init.service":    "[Unit]\n",
					"/usr/lib/systemd/system/waagent.service":       "[Unit]\n",
				})
			},
			want:    State{Enabled: true, Reason: onAzure, Initrd: true, Platform: "azure", Masked: []string{}, Time: now},
			outputs: map[string]string{"initrd.target.wants/azinit-initrd.service": "-> /usr/lib/systemd/system/azinit-initrd.service"},
		},
		{
			name: "not Azure: nothing written",
			files: func(dir string) map[string]string {
				return with(azureVM(dir), map[string]string{
					"/sys/class/dmi/id/chassis_asset_tag":    "No Asset Tag\n",
					"/lib/systemd/system/cloud-init.service": "[Unit]\n",
				})
			},
			want:    state(false, "", `chassis asset tag "No Asset Tag" is not Azure's`),
			outputs: map[string]string{},
		},
		{
			name: "unreadable asset tag",
			files: func(dir string) map[string]string {
				files := azureVM(dir)
				delete(files, "/sys/class/dmi/id/chassis_asset_tag")
				files["/sys/class/dmi/id/chassis_asset_tag/x"] = ""
				return files
			},
			want:    state(false, "", "no DMI chassis asset tag: read SYSFS/class/dmi/id/chassis_asset_tag: is a directory"),
			outputs: map[string]string{},
		},
		{
			name: "repeated cmdline words: any azinit=disabled wins",
			files: func(dir string) map[string]string {
				return with(azureVM(dir), map[string]string{
					"/proc/cmdline":                       "ro azinit=disabled quiet azinit=enabled\n",
					"/sys/class/dmi/id/chassis_asset_tag": "No Asset Tag\n",
				})
			},
			want:    state(false, "", "kernel command line azinit=disabled"),
			outputs: map[string]string{},
		},
		{
			name: "quoted cmdline word",
			files: func(dir string) map[string]string {
				return with(azureVM(dir), map[string]string{"/proc/cmdline": `ro "azinit=disabled"` + "\n"})
			},
			want:    state(false, "azure", "kernel command line azinit=disabled"),
			outputs: map[string]string{},
		},
		{
			name: "marker",
			files: func(dir string) map[string]string {
				return with(azureVM(dir), map[string]string{DisabledMarker: ""})
			},
			want:    state(false, "azure", "/etc/azinit/azinit.disabled exists"),
			outputs: map[string]string{},
		},
		{
			name: "platform none",
			files: func(dir string) map[string]string {
				return with(azureVM(dir), map[string]string{config.DropInDir + "/50-off.yaml": "datasource: {platform: none}\n"})
			},
			want:    state(false, "", "datasource.platform is none"),
			outputs: map[string]string{},
		},
		{
			name: "platform azure",
			files: func(dir string) map[string]string {
				return with(azureVM(dir), map[string]string{
					config.DropInDir + "/50-on.yaml":      "datasource: {platform: azure}\n",
					"/sys/class/dmi/id/chassis_asset_tag": "\n",
				})
			},
			want:    state(true, "azure", "datasource.platform is azure"),
			outputs: wants,
		},
		{
			name: "azinit.target not installed",
			files: func(dir string) map[string]string {
				return with(azureVM(dir), map[string]string{"/usr/lib/systemd/system/azinit.target": "-> azinit-missing.target"})
			},
			want:    state(false, "azure", "azinit.target is not installed"),
			outputs: map[string]string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, normal := t.TempDir(), t.TempDir()
			makeTree(t, dir, tt.files(dir))
			root := openRoot(t, dir)
			var log bytes.Buffer
			got, err := Run(root, normal, textLog(t, &log), now)
			if err != nil {
				t.Fatal(err)
			}
			tt.want.Reason = strings.ReplaceAll(tt.want.Reason, "SYSFS", dir+"/sys")
			if tt.warning == "" && got.Warnings != nil {
				t.Errorf("warnings: %q", got.Warnings)
			}
			if tt.warning != "" {
				if len(got.Warnings) != 1 || !strings.Contains(got.Warnings[0], tt.warning) || !strings.Contains(log.String(), tt.warning) {
					t.Errorf("warnings %q, log:\n%s\nwant %q", got.Warnings, &log, tt.warning)
				}
				got.Warnings = nil
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("state (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.outputs, listing(t, normal)); diff != "" {
				t.Errorf("generator directory (-want +got):\n%s", diff)
			}
			saved, err := ReadState(root)
			if err != nil {
				t.Fatal(err)
			}
			saved.Warnings = got.Warnings
			if diff := cmp.Diff(&got, saved); diff != "" {
				t.Errorf("%s (-returned +saved):\n%s", StatePath, diff)
			}
			checkMode(t, root.HostPath(StatePath), 0o644)
			conf, err := os.ReadFile(root.HostPath(WaagentConfPath))
			if tt.waagent == "" && !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s: %v, want none", WaagentConfPath, err)
			}
			if tt.waagent != "" {
				if diff := cmp.Diff(tt.waagent, string(conf)); diff != "" {
					t.Errorf("%s (-want +got):\n%s", WaagentConfPath, diff)
				}
				checkMode(t, root.HostPath(WaagentConfPath), 0o644)
			}
			line := "azinit disabled"
			if got.Enabled {
				line = "azinit enabled"
			}
			if !strings.Contains(log.String(), line) || !strings.Contains(log.String(), "reason=") {
				t.Errorf("log does not say %q with the reason:\n%s", line, &log)
			}
		})
	}
}

func textLog(t testing.TB, w *bytes.Buffer) *slog.Logger {
	t.Helper()
	l, err := logging.New(w, "info", "text")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func checkMode(t *testing.T, name string, want fs.FileMode) {
	t.Helper()
	fi, err := os.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != want {
		t.Errorf("%s: mode %v, want %v", name, fi.Mode().Perm(), want)
	}
}

// TestGatherBrokenConfig is what Run does when the configuration does
// not load: the default configuration (here with a test sysfs), and the
// platform is detected whatever the default says.
func TestGatherBrokenConfig(t *testing.T) {
	dir := t.TempDir()
	makeTree(t, dir, with(azureVM(dir), map[string]string{config.DefaultPath: "datasource: [\n"}))
	root := openRoot(t, dir)
	_, cfgErr := config.Load(root, "")
	if cfgErr == nil {
		t.Fatal("the configuration loaded")
	}
	cfg := config.Default()
	cfg.Datasource.Azure.Sysfs = dir + "/sys"
	cfg.Datasource.Platform = "none"
	d := Decide(Gather(root, &cfg, cfgErr))
	if !d.Enabled || d.Reason != "the DMI chassis asset tag is Azure's" {
		t.Errorf("decision %+v, want on by the asset tag", d.State)
	}
	if len(d.Warnings) != 1 || !strings.Contains(d.Warnings[0], config.DefaultPath) {
		t.Errorf("warnings %q do not name the configuration", d.Warnings)
	}
}

// with is a, then b's entries.
func with(a, b map[string]string) map[string]string {
	m := maps.Clone(a)
	maps.Copy(m, b)
	return m
}

func TestWriteFailures(t *testing.T) {
	t.Run("no generator directory", func(t *testing.T) {
		dir := t.TempDir()
		makeTree(t, dir, azureVM(dir))
		root := openRoot(t, dir)
		missing := filepath.Join(t.TempDir(), "missing")
		st, err := Run(root, missing, logging.Discard(), now)
		if err == nil || !strings.Contains(err.Error(), missing) {
			t.Fatalf("err = %v, want it to name %s", err, missing)
		}
		saved, err := ReadState(root)
		if err != nil {
			t.Fatal(err)
		}
		if st.Enabled || saved.Enabled || !strings.Contains(saved.Reason, "writing the generator's outputs") {
			t.Errorf("state %+v, saved %+v: want disabled, saying why", st, saved)
		}
	})
	t.Run("a link fails: the masks are taken back", func(t *testing.T) {
		dir, normal := t.TempDir(), t.TempDir()
		makeTree(t, dir, with(azureVM(dir), map[string]string{"/lib/systemd/system/cloud-init.service": "[Unit]\n"}))
		// Another generator's non-empty directory where azinit.target's
		// link goes.
		makeTree(t, normal, map[string]string{"multi-user.target.wants/azinit.target/x": "", "local-fs.target.wants/x.mount": "-> /x"})
		root := openRoot(t, dir)
		st, err := Run(root, normal, logging.Discard(), now)
		if err == nil || !strings.Contains(err.Error(), "multi-user.target.wants/azinit.target") {
			t.Fatalf("err = %v, want it to name the link", err)
		}
		if st.Enabled || len(st.Masked) != 0 {
			t.Errorf("state %+v, want disabled with nothing masked", st)
		}
		want := map[string]string{"multi-user.target.wants/azinit.target/x": "", "local-fs.target.wants/x.mount": "-> /x"}
		if diff := cmp.Diff(want, listing(t, normal)); diff != "" {
			t.Errorf("generator directory (-want +got):\n%s", diff)
		}
	})
	t.Run("state not writable", func(t *testing.T) {
		dir, normal := t.TempDir(), t.TempDir()
		makeTree(t, dir, with(azureVM(dir), map[string]string{"/run/azinit": "a file"}))
		_, err := Run(openRoot(t, dir), normal, logging.Discard(), now)
		if err == nil || !strings.Contains(err.Error(), StatePath) {
			t.Errorf("err = %v, want it to name %s", err, StatePath)
		}
	})
}

func BenchmarkGenerator(b *testing.B) {
	dir, normal := b.TempDir(), b.TempDir()
	files := azureVM(dir)
	for _, u := range cloudInitUnits {
		files["/lib/systemd/system/"+u] = "[Unit]\n"
	}
	files["/lib/systemd/system/walinuxagent.service"] = golden(b, "walinuxagent.service")
	files["/etc/systemd/system/azinit-extensions.service"] = "-> /dev/null"
	files[config.WaagentConfig] = golden(b, "waagent-with-agent.conf")
	makeTree(b, dir, files)
	root := openRoot(b, dir)
	log := logging.Discard()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Run(root, normal, log, now); err != nil {
			b.Fatal(err)
		}
	}
}
