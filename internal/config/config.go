// Package config loads /etc/azinit/azinit.yaml: defaults in code, then
// /etc/waagent.conf for the options it defines, then azinit.yaml and its
// drop-ins, which win. Parsing is strict: an unknown key or a bad value is an
// error naming the key and the file.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/azinit/azinit/internal/sys"
)

// Default paths, under the target root.
const (
	DefaultPath    = "/etc/azinit/azinit.yaml"
	DropInDir      = "/etc/azinit/azinit.yaml.d"
	WaagentConfig  = "/etc/waagent.conf"
	DefaultIMDSURL = "http://169.254.169.254"
)

// Config is the whole configuration: the datasource, then one section per
// module.
type Config struct {
	Datasource  Datasource  `yaml:"datasource"`
	Users       Users       `yaml:"users"`
	SSHD        SSHD        `yaml:"sshd"`
	SSHHostKeys SSHHostKeys `yaml:"ssh_host_keys"`
	Hostname    Hostname    `yaml:"hostname"`
	CustomData  CustomData  `yaml:"custom_data"`
	Extensions  Extensions  `yaml:"extensions"`
}

// Users configures the admin user the platform asks for.
type Users struct {
	HomeDir string   `yaml:"home_dir"`
	Shell   string   `yaml:"shell"`
	Groups  []string `yaml:"groups"` // supplementary groups, if they exist
	// PasswordSaltLength is the length of the random $6$ crypt salt.
	PasswordSaltLength int `yaml:"password_salt_length"`
	// AllowResetSystemUser lets the platform set the password of an
	// existing system account (uid below UID_MIN).
	AllowResetSystemUser bool `yaml:"allow_reset_system_user"`
}

// SSHD configures the sshd drop-in.
type SSHD struct {
	ClientAliveInterval int `yaml:"client_alive_interval"` // seconds; 0 leaves sshd's default
}

// SSHHostKeys configures host key regeneration on a new instance.
type SSHHostKeys struct {
	Regenerate bool     `yaml:"regenerate"`
	Types      []string `yaml:"types"` // ssh-keygen -t values
}

// Hostname configures how the host name is applied.
type Hostname struct {
	// Publish re-sends DHCP so Azure's DNS learns a changed host name.
	Publish bool `yaml:"publish"`
}

// CustomData configures what becomes of the platform's custom data.
type CustomData struct {
	// Decode writes /var/lib/waagent/CustomData decoded rather than as the
	// base64 text WALinuxAgent keeps by default.
	Decode bool `yaml:"decode"`
	// Execute runs the custom data once per instance, after provisioning.
	Execute bool `yaml:"execute"`
}

// Extensions configures azinit-extensions, which runs the platform's
// extension handlers.
type Extensions struct {
	// Enabled runs the handlers the platform asks for; when false each is
	// reported as failed without running anything.
	Enabled bool `yaml:"enabled"`
	// GoalStatePeriod is how often the goal state is polled: one request
	// each time when nothing changed.
	GoalStatePeriod Duration `yaml:"goal_state_period"`
	// StatusPeriod bounds how long an unchanged status goes without being
	// uploaded again: the platform takes a fresh status as the agent's
	// heartbeat. A changed status is uploaded at once.
	StatusPeriod Duration `yaml:"status_period"`
	// FastTrack follows the HostGAPlugin's vmSettings besides the
	// wireserver's ExtensionsConfig.
	FastTrack bool `yaml:"fast_track"`
	// HonorOnHold holds the handlers while the platform says the VM is
	// over-provisioned ("onHold").
	HonorOnHold bool `yaml:"honor_on_hold"`
	// ResourceLimits runs handler commands in transient systemd scopes with
	// the CPU and memory limits their manifests ask for.
	ResourceLimits bool `yaml:"resource_limits"`
	// LogDir holds one log folder per handler.
	LogDir string `yaml:"log_dir"`
	// HTTPProxy is the proxy for storage (manifests, packages, the status
	// blob), as http://host:port; "" uses http_proxy/https_proxy from the
	// environment. The wireserver and HostGAPlugin are never proxied.
	HTTPProxy string `yaml:"http_proxy"`
	// MaxPackageMB bounds a handler package, and what it extracts to, in
	// MiB.
	MaxPackageMB int `yaml:"max_package_mb"`
	// Timeouts bound each handler command; one that outlives its timeout
	// is killed with its process group.
	Timeouts CommandTimeouts `yaml:"timeouts"`
}

// CommandTimeouts bound handler commands by operation.
type CommandTimeouts struct {
	Install   Duration `yaml:"install"`
	Enable    Duration `yaml:"enable"`
	Disable   Duration `yaml:"disable"`
	Update    Duration `yaml:"update"`
	Uninstall Duration `yaml:"uninstall"`
}

// Datasource holds the per-platform datasource settings.
type Datasource struct {
	// Platform tells azinit-generator whether azinit runs: "auto" detects
	// Azure by its DMI chassis asset tag, "azure" runs azinit anyway (an
	// Azure-like platform with other DMI data), "none" never runs it.
	Platform string `yaml:"platform"`
	Azure    Azure  `yaml:"azure"`
}

// Azure configures where the Azure platform is reached. Every endpoint is
// configurable because tests and the offline fabric point them at loopback.
type Azure struct {
	// Wireserver is the wireserver base URL; "" discovers it from DHCP
	// option 245 in the lease files, else uses 168.63.129.16.
	Wireserver string `yaml:"wireserver"`
	// HostGAPlugin is the HostGAPlugin base URL; "" means <wireserver host>:32526.
	HostGAPlugin string `yaml:"hostgaplugin"`
	IMDS         string `yaml:"imds"`
	// Media is "auto" (CD-ROM drives), a device path or an image file.
	Media string `yaml:"media"`
	// MediaWait bounds how long "auto" waits for a disc to appear.
	MediaWait Duration `yaml:"media_wait"`
	// IMDSDeadline bounds the whole IMDS fetch, retries included.
	IMDSDeadline Duration `yaml:"imds_deadline"`
	// NetworkWait bounds how long the network stage waits for the kernel
	// to have a route to the platform (DHCP done on the primary NIC)
	// before it reads IMDS and the wireserver; 0 does not wait.
	NetworkWait Duration `yaml:"network_wait"`
	// Sysfs is the host's sysfs: the VM id (DMI), the firmware type (EFI),
	// the CD-ROM drives. A host path even when the root is not "/".
	Sysfs string `yaml:"sysfs"`
	// Health is how provisioning is reported: "xml" (comp=health, what
	// every agent uses) or "json" (/provisioning/health).
	Health string `yaml:"health"`
	// RetryUnit scales the protocol's retry waits (WALinuxAgent's are
	// 1 s × 2, 3, 5, ...); RequestTimeout, when set, caps each attempt.
	RetryUnit      Duration `yaml:"retry_unit"`
	RequestTimeout Duration `yaml:"request_timeout"`
}

// Duration is a time.Duration written as "5s", "2m".
type Duration time.Duration

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil || v < 0 {
		return fmt.Errorf("line %d: %q is not a duration like 5s or 2m", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration in its string form.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// Default is the configuration when no file says otherwise.
func Default() Config {
	return Config{
		Datasource: Datasource{Platform: "auto", Azure: Azure{
			IMDS:         DefaultIMDSURL,
			Media:        "auto",
			MediaWait:    Duration(30 * time.Second),
			IMDSDeadline: Duration(300 * time.Second),
			NetworkWait:  Duration(60 * time.Second),
			Sysfs:        "/sys",
			Health:       "xml",
			RetryUnit:    Duration(time.Second),
		}},
		Users:       Users{HomeDir: "/home", Shell: "/bin/bash", PasswordSaltLength: 10},
		SSHD:        SSHD{ClientAliveInterval: 180},
		SSHHostKeys: SSHHostKeys{Regenerate: true, Types: []string{"ed25519", "ecdsa", "rsa"}},
		Hostname:    Hostname{Publish: true},
		Extensions: Extensions{
			Enabled:         true,
			GoalStatePeriod: Duration(10 * time.Second),
			StatusPeriod:    Duration(5 * time.Minute),
			FastTrack:       true,
			HonorOnHold:     true,
			ResourceLimits:  true,
			LogDir:          "/var/log/azure",
			MaxPackageMB:    2048,
			// The platform agent's.
			Timeouts: CommandTimeouts{
				Install:   Duration(15 * time.Minute),
				Enable:    Duration(5 * time.Minute),
				Disable:   Duration(15 * time.Minute),
				Update:    Duration(15 * time.Minute),
				Uninstall: Duration(5 * time.Minute),
			},
		},
	}
}

// Load reads the configuration under root. With explicit == "", it reads
// /etc/waagent.conf, /etc/azinit/azinit.yaml and the azinit.yaml.d drop-ins
// in lexical order, each optional; otherwise /etc/waagent.conf and the host
// file explicit, which must exist.
func Load(root *sys.Root, explicit string) (*Config, error) {
	cfg := Default()
	if b, err := root.ReadFile(WaagentConfig); err == nil {
		applyWaagent(&cfg, ParseWaagent(b))
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("reading %s: %w", WaagentConfig, err)
	}
	if explicit != "" {
		b, err := os.ReadFile(explicit)
		if err != nil {
			return nil, fmt.Errorf("reading config: %w", err)
		}
		if err := decode(&cfg, explicit, b); err != nil {
			return nil, err
		}
		return &cfg, cfg.validate(explicit)
	}
	files := []string{DefaultPath}
	dropins, err := root.Glob(DropInDir + "/*.yaml")
	if err != nil {
		return nil, err
	}
	files = append(files, dropins...) // fs.Glob sorts lexically
	for _, name := range files {
		b, err := root.ReadFile(name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading config: %w", err)
		}
		if err := decode(&cfg, name, b); err != nil {
			return nil, err
		}
	}
	return &cfg, cfg.validate("the configuration")
}

// decode merges one YAML document into cfg: keys present replace the
// current values, absent keys keep them.
func decode(cfg *Config, name string, b []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("config %s: %w", name, err)
	}
	return nil
}

func (c *Config) validate(where string) error {
	a := c.Datasource.Azure
	var errs []error
	if !slices.Contains(platforms, c.Datasource.Platform) {
		errs = append(errs, fmt.Errorf("datasource.platform: %q: want %s", c.Datasource.Platform, strings.Join(platforms, ", ")))
	}
	for _, e := range []struct{ key, value string }{
		{"datasource.azure.wireserver", a.Wireserver},
		{"datasource.azure.hostgaplugin", a.HostGAPlugin},
		{"datasource.azure.imds", a.IMDS},
	} {
		if e.value == "" && e.key != "datasource.azure.imds" {
			continue
		}
		if err := checkBaseURL(e.value); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", e.key, err))
		}
	}
	if a.Media != "auto" && !path.IsAbs(a.Media) {
		errs = append(errs, fmt.Errorf("datasource.azure.media: %q is neither auto nor an absolute path", a.Media))
	}
	if !path.IsAbs(a.Sysfs) {
		errs = append(errs, fmt.Errorf("datasource.azure.sysfs: %q is not an absolute path", a.Sysfs))
	}
	if a.Health != "xml" && a.Health != "json" {
		errs = append(errs, fmt.Errorf("datasource.azure.health: %q: want xml or json", a.Health))
	}
	if a.RetryUnit <= 0 {
		errs = append(errs, errors.New("datasource.azure.retry_unit: must be positive"))
	}
	u := c.Users
	if !path.IsAbs(u.HomeDir) {
		errs = append(errs, fmt.Errorf("users.home_dir: %q is not an absolute path", u.HomeDir))
	}
	if !path.IsAbs(u.Shell) {
		errs = append(errs, fmt.Errorf("users.shell: %q is not an absolute path", u.Shell))
	}
	if u.PasswordSaltLength < 8 || u.PasswordSaltLength > 16 {
		errs = append(errs, fmt.Errorf("users.password_salt_length: %d: want 8 to 16 ($6$ salts are at most 16)", u.PasswordSaltLength))
	}
	if c.SSHD.ClientAliveInterval < 0 {
		errs = append(errs, fmt.Errorf("sshd.client_alive_interval: %d is negative", c.SSHD.ClientAliveInterval))
	}
	for _, t := range c.SSHHostKeys.Types {
		if !slices.Contains(hostKeyTypes, t) {
			errs = append(errs, fmt.Errorf("ssh_host_keys.types: %q: want one of %s", t, strings.Join(hostKeyTypes, ", ")))
		}
	}
	errs = append(errs, c.Extensions.validate()...)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	return nil
}

func (e Extensions) validate() []error {
	var errs []error
	if e.GoalStatePeriod < Duration(time.Second) {
		errs = append(errs, fmt.Errorf("extensions.goal_state_period: %s: want at least 1s", time.Duration(e.GoalStatePeriod)))
	}
	if e.StatusPeriod < e.GoalStatePeriod {
		errs = append(errs, fmt.Errorf("extensions.status_period: %s: want at least goal_state_period", time.Duration(e.StatusPeriod)))
	}
	if !path.IsAbs(e.LogDir) {
		errs = append(errs, fmt.Errorf("extensions.log_dir: %q is not an absolute path", e.LogDir))
	}
	if e.HTTPProxy != "" {
		if u, err := url.Parse(e.HTTPProxy); err != nil || u.Scheme == "" || u.Host == "" {
			errs = append(errs, fmt.Errorf("extensions.http_proxy: %q: want http://host:port", e.HTTPProxy))
		}
	}
	for _, t := range []struct {
		name string
		d    Duration
	}{{"install", e.Timeouts.Install}, {"enable", e.Timeouts.Enable}, {"disable", e.Timeouts.Disable}, {"update", e.Timeouts.Update}, {"uninstall", e.Timeouts.Uninstall}} {
		if t.d < Duration(time.Second) {
			errs = append(errs, fmt.Errorf("extensions.timeouts.%s: %s: want at least 1s", t.name, time.Duration(t.d)))
		}
	}
	if e.MaxPackageMB < 1 {
		errs = append(errs, fmt.Errorf("extensions.max_package_mb: %d: want at least 1", e.MaxPackageMB))
	}
	return errs
}

// platforms are the values of datasource.platform.
var platforms = []string{"auto", "azure", "none"}

// hostKeyTypes are the host key types ssh-keygen makes and sshd serves.
var hostKeyTypes = []string{"ed25519", "ecdsa", "rsa"}

func checkBaseURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a URL: %w", s, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL with a host", s)
	}
	if strings.Trim(u.Path, "/") != "" || u.RawQuery != "" {
		return fmt.Errorf("%q must be a base URL without path or query", s)
	}
	return nil
}
