package fabric

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/azinit/azinit/datasource/azure/extconfig"
)

// ExtensionsFile is the optional scenario file describing the extension
// handlers of the goal state.
const ExtensionsFile = "extensions.yaml"

// defaultPackages is where handler packages live, relative to the
// scenario, unless extensions.yaml says otherwise.
const defaultPackages = "extensions"

// Extensions is a scenario's extensions.yaml: the extension handlers the
// goal state asks for and how the platform serves them.
type Extensions struct {
	// FastTrack also serves the handlers as vmSettings from the
	// HostGAPlugin (source FastTrack).
	FastTrack bool `yaml:"fast_track"`
	// StatusBlobType is BlockBlob (the default) or PageBlob.
	StatusBlobType string `yaml:"status_blob_type"`
	// OnHold puts the extensions on hold: an InVMArtifactsProfileBlob
	// saying so in ExtensionsConfig, onHold in vmSettings.
	OnHold bool `yaml:"on_hold"`
	// StorageReachable (default true): when false, direct GETs of
	// manifests and packages answer 403, as for a VM without outbound
	// storage access, so agents must use the HostGAPlugin.
	StorageReachable *bool `yaml:"storage_reachable"`
	// RequiredFeatures are the feature names the agent must support.
	RequiredFeatures []string `yaml:"required_features"`
	// Packages is the directory holding <Name>-<Version>/ package
	// directories and <Name>__<Version>.zip files, relative to the
	// scenario (default "extensions").
	Packages string   `yaml:"packages"`
	Plugins  []Plugin `yaml:"plugins"`
}

// Plugin is one extension handler. A single-config handler has its
// settings inline; a multi-config one has Extensions instead.
type Plugin struct {
	Name    string `yaml:"name"`    // Publisher.Type
	Version string `yaml:"version"` // the version requested
	// ExtensionSettings.State is the handler's: enabled (the default),
	// disabled or uninstall.
	ExtensionSettings `yaml:",inline"`
	Extensions        []Extension `yaml:"extensions"`
}

// Extension is one named extension of a multi-config handler; its State
// is enabled (the default) or disabled.
type Extension struct {
	Name              string `yaml:"name"`
	ExtensionSettings `yaml:",inline"`
}

// ExtensionSettings are the runtime settings of one extension.
type ExtensionSettings struct {
	SeqNo             *int              `yaml:"seq_no"`
	State             string            `yaml:"state"`
	PublicSettings    map[string]any    `yaml:"public_settings"`
	ProtectedSettings ProtectedSettings `yaml:"protected_settings"`
	// Certificate is the thumbprint of the scenario certificate the
	// protected settings are encrypted to; by default the first one with
	// a private key.
	Certificate string `yaml:"certificate"`
	DependsOn   *int   `yaml:"depends_on"` // dependency level; nil: none

	publicJSON json.RawMessage  // PublicSettings as a JSON object; nil without
	protected  extconfig.Secret // ProtectedSettings as a JSON object
	// Set when the scenario is loaded: the protected settings encrypted
	// to the certificate, base64 DER, and the certificate's thumbprint.
	sealed, thumbprint string
}

// hasSettings reports whether there are settings to deliver.
func (s *ExtensionSettings) hasSettings() bool { return s.publicJSON != nil || s.protected.IsSet() }

// ProtectedSettings are settings only the extension may read. Printed,
// they show as redacted.
type ProtectedSettings map[string]any

// String hides the settings.
func (ProtectedSettings) String() string { return "***REDACTED***" }

// GoString hides the settings from %#v.
func (p ProtectedSettings) GoString() string { return p.String() }

// seqNo is the sequence number, 0 when not given.
func (s *ExtensionSettings) seqNo() int {
	if s.SeqNo == nil {
		return 0
	}
	return *s.SeqNo
}

// StorageReachableOrDefault is StorageReachable, true when not given.
func (e *Extensions) StorageReachableOrDefault() bool {
	return e.StorageReachable == nil || *e.StorageReachable
}

// PackagesDir is Packages, defaulted.
func (e *Extensions) PackagesDir() string {
	if e.Packages == "" {
		return defaultPackages
	}
	return e.Packages
}

var (
	// A handler name is Publisher.Type: no '-', which separates the
	// version in the agent's directory names, nor anything a URL or a
	// path would treat specially.
	pluginNamePattern = regexp.MustCompile(`^[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)+$`)
	// A version as package directories and blob names spell it.
	versionPattern = regexp.MustCompile(`^[0-9]+(?:\.[0-9]+)*$`)
	// An extension name ends up in file names (<ext>.<seq>.settings).
	extensionNamePattern = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	thumbprintPattern    = regexp.MustCompile(`^[0-9A-Fa-f]{40}$`)
)

// ParseExtensions parses extensions.yaml strictly: an unknown key, a bad
// value or an inconsistent plugin is an error naming file, the plugin and
// what is wrong. It checks what the file alone can tell; packages and
// certificates are checked when the scenario is loaded.
func ParseExtensions(b []byte, file string) (*Extensions, error) {
	e := &Extensions{}
	if len(bytes.TrimSpace(b)) > 0 {
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		if err := dec.Decode(e); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
	}
	if err := e.check(); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return e, nil
}

func (e *Extensions) check() error {
	switch e.StatusBlobType {
	case "":
		e.StatusBlobType = "BlockBlob"
	case "BlockBlob", "PageBlob":
	default:
		return fmt.Errorf("status_blob_type %q: want BlockBlob or PageBlob", e.StatusBlobType)
	}
	for i, f := range e.RequiredFeatures {
		if strings.TrimSpace(f) == "" {
			return fmt.Errorf("required_features[%d]: empty name", i)
		}
	}
	seen := map[string]bool{}
	for i := range e.Plugins {
		p := &e.Plugins[i]
		if err := p.check(); err != nil {
			if p.Name == "" {
				return fmt.Errorf("plugins[%d]: %w", i, err)
			}
			return fmt.Errorf("plugin %s: %w", p.Name, err)
		}
		// The agent matches settings to plugins ignoring case.
		key := strings.ToLower(p.Name)
		if seen[key] {
			return fmt.Errorf("plugin %s: listed twice", p.Name)
		}
		seen[key] = true
	}
	return nil
}

func (p *Plugin) check() error {
	switch {
	case !pluginNamePattern.MatchString(p.Name):
		return fmt.Errorf("name %q: want Publisher.Type (letters, digits, '_', dot-separated)", p.Name)
	case !versionPattern.MatchString(p.Version):
		return fmt.Errorf("version %q: want dot-separated numbers such as 1.0.0", p.Version)
	}
	if err := p.ExtensionSettings.check([]string{"enabled", "disabled", "uninstall"}); err != nil {
		return err
	}
	if len(p.Extensions) == 0 {
		return nil
	}
	s := p.ExtensionSettings
	if s.SeqNo != nil || s.PublicSettings != nil || s.ProtectedSettings != nil || s.Certificate != "" || s.DependsOn != nil {
		return fmt.Errorf("has extensions (multi-config) and also plugin-level seq_no, settings, certificate or depends_on: " +
			"give those per extension")
	}
	names := map[string]bool{}
	for i := range p.Extensions {
		x := &p.Extensions[i]
		if !extensionNamePattern.MatchString(x.Name) {
			return fmt.Errorf("extensions[%d]: name %q: want letters, digits, '_' or '-'", i, x.Name)
		}
		if names[x.Name] {
			return fmt.Errorf("extension %s: listed twice", x.Name)
		}
		names[x.Name] = true
		if err := x.ExtensionSettings.check([]string{"enabled", "disabled"}); err != nil {
			return fmt.Errorf("extension %s: %w", x.Name, err)
		}
	}
	return nil
}

// check validates s and converts its settings to JSON.
func (s *ExtensionSettings) check(states []string) error {
	if s.State == "" {
		s.State = states[0]
	}
	if !slices.Contains(states, s.State) {
		return fmt.Errorf("state %q: want %s", s.State, strings.Join(states, ", "))
	}
	if s.SeqNo != nil && *s.SeqNo < 0 {
		return fmt.Errorf("seq_no %d: must not be negative", *s.SeqNo)
	}
	if s.DependsOn != nil && *s.DependsOn < 0 {
		return fmt.Errorf("depends_on %d: must not be negative", *s.DependsOn)
	}
	if s.Certificate != "" {
		if s.ProtectedSettings == nil {
			return fmt.Errorf("certificate %s without protected_settings", s.Certificate)
		}
		if !thumbprintPattern.MatchString(s.Certificate) {
			return fmt.Errorf("certificate %q: want a SHA-1 thumbprint (40 hex digits)", s.Certificate)
		}
		s.Certificate = strings.ToUpper(s.Certificate)
	}
	var err error
	if s.PublicSettings != nil {
		if s.publicJSON, err = settingsJSON(s.PublicSettings); err != nil {
			return fmt.Errorf("public_settings: %w", err)
		}
	}
	if s.ProtectedSettings != nil {
		// The error never quotes the value: it is a secret.
		js, err := settingsJSON(s.ProtectedSettings)
		if err != nil {
			return fmt.Errorf("protected_settings: %w", err)
		}
		s.protected = extconfig.NewSecret(string(js))
	}
	return nil
}

// settingsJSON encodes a YAML mapping as a compact JSON object.
func settingsJSON(m map[string]any) (json.RawMessage, error) {
	v, err := jsonValue(m, "")
	if err != nil {
		return nil, err
	}
	return marshalJSON(v)
}

// jsonValue converts a decoded YAML value to one encoding/json takes:
// mappings with string keys, finite numbers. Errors name the path of the
// value, never the value itself.
func jsonValue(v any, path string) (any, error) {
	at := func() string {
		if path == "" {
			return "the top level"
		}
		return path
	}
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			var err error
			if out[k], err = jsonValue(x, path+"."+k); err != nil {
				return nil, err
			}
		}
		return out, nil
	case map[any]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			key, ok := k.(string)
			if !ok {
				return nil, fmt.Errorf("%s: a key is a %T, want a string (JSON object keys are strings)", at(), k)
			}
			var err error
			if out[key], err = jsonValue(x, path+"."+key); err != nil {
				return nil, err
			}
		}
		return out, nil
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			var err error
			if out[i], err = jsonValue(x, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return nil, err
			}
		}
		return out, nil
	case float64:
		if math.IsInf(v, 0) || math.IsNaN(v) {
			return nil, fmt.Errorf("%s: infinity and NaN have no JSON form", at())
		}
		return v, nil
	case time.Time:
		return v.Format(time.RFC3339Nano), nil
	case nil, string, bool, int, int64, uint64:
		return v, nil
	}
	return nil, fmt.Errorf("%s: a %T has no JSON form", at(), v)
}
