package fabric

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/azinit/azinit/datasource/azure/ovf"
	"github.com/azinit/azinit/fabric/certificates"
)

// Settings are the scenario's scenario.yaml: the identity of the fake VM.
// Every field is optional; missing ones are derived from the OVF host name,
// so a scenario always yields the same ids.
type Settings struct {
	VMID           string `yaml:"vm_id"`
	ContainerID    string `yaml:"container_id"`
	RoleInstanceID string `yaml:"role_instance_id"`
	Incarnation    int    `yaml:"incarnation"`
	Location       string `yaml:"location"`
	VMSize         string `yaml:"vm_size"`
	VMName         string `yaml:"vm_name"`
	SubscriptionID string `yaml:"subscription_id"`
	ResourceGroup  string `yaml:"resource_group"`
}

// Raw document names under raw/ (design.md §7).
const (
	RawGoalState        = "goalstate.xml"
	RawHostingEnv       = "hostingenvironmentconfig.xml"
	RawSharedConfig     = "sharedconfig.xml"
	RawExtensionsConfig = "extensionsconfig.xml"
	RawCertificates     = "certificates.xml"
	RawVMSettings       = "vmsettings.json"
	RawVersions         = "versions.xml"
	rawBlobs            = "blobs"
)

func rawNames() []string {
	return []string{RawGoalState, RawHostingEnv, RawSharedConfig, RawExtensionsConfig, RawCertificates,
		RawVMSettings, RawVersions}
}

// Scenario is one scenario directory, read in full.
type Scenario struct {
	Dir          string
	OVF          []byte           // ovf-env.xml as found
	Env          *ovf.Environment // ovf-env.xml parsed
	Settings     Settings         // scenario.yaml with defaults filled in
	IMDS         []byte           // imds.json, or nil to synthesise it
	Certificates []certificates.Bundle
	Raw          map[string][]byte // raw/<name>: captured documents replayed as they are
	Blobs        map[string][]byte // raw/blobs/<basename>
	Extensions   *Extensions       // extensions.yaml, checked; nil without one
	Packages     map[string][]byte // the handler packages Extensions names, by blob name

	packageVersions map[string][]string // handler name → its package versions, ascending
	digest          [sha256.Size]byte   // of everything read, to tell a changed scenario
}

// LoadScenario reads the scenario directory dir.
func LoadScenario(dir string) (*Scenario, error) {
	l := scenarioLoader{dir: dir, digest: sha256.New()}
	s := &Scenario{Dir: dir, Raw: map[string][]byte{}, Blobs: map[string][]byte{}}
	var err error
	if s.OVF, err = l.read("ovf-env.xml", true); err != nil {
		return nil, err
	}
	if s.Env, err = ovf.Parse(s.OVF); err != nil {
		return nil, fmt.Errorf("scenario %s: ovf-env.xml: %w", dir, err)
	}
	yml, err := l.read("scenario.yaml", false)
	if err != nil {
		return nil, err
	}
	if s.Settings, err = parseSettings(yml, filepath.Join(dir, "scenario.yaml")); err != nil {
		return nil, err
	}
	s.Settings.fillDefaults(s.Env.HostName)
	if s.IMDS, err = l.read("imds.json", false); err != nil {
		return nil, err
	}
	if s.IMDS != nil && !json.Valid(s.IMDS) {
		return nil, fmt.Errorf("scenario %s: imds.json is not valid JSON", dir)
	}
	if s.Certificates, err = l.certificates(); err != nil {
		return nil, err
	}
	if err := l.raw(s); err != nil {
		return nil, err
	}
	if err := l.extensions(s); err != nil {
		return nil, err
	}
	copy(s.digest[:], l.digest.Sum(nil))
	return s, nil
}

// Changed reports whether s differs from old in any file read.
func (s *Scenario) Changed(old *Scenario) bool { return s.digest != old.digest }

type scenarioLoader struct {
	dir    string
	digest hash.Hash
}

// read reads the file rel of the scenario; a missing optional file is nil.
func (l *scenarioLoader) read(rel string, required bool) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(l.dir, rel))
	if errors.Is(err, fs.ErrNotExist) && !required {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("scenario %s: %w", l.dir, err)
	}
	fmt.Fprintf(l.digest, "%s\x00%d\x00", rel, len(b))
	l.digest.Write(b)
	return b, nil
}

// list returns the names of the regular files in the scenario directory
// rel, sorted; a missing directory has none.
func (l *scenarioLoader) list(rel string) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(l.dir, rel))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("scenario %s: %w", l.dir, err)
	}
	var names []string
	for _, e := range entries {
		if !e.IsDir() {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

func (l *scenarioLoader) certificates() ([]certificates.Bundle, error) {
	names, err := l.list("certificates")
	if err != nil {
		return nil, err
	}
	var bundles []certificates.Bundle
	for _, name := range names {
		if filepath.Ext(name) != ".pem" {
			continue
		}
		rel := filepath.Join("certificates", name)
		b, err := l.read(rel, true)
		if err != nil {
			return nil, err
		}
		bundle, err := certificates.LoadPEM(b)
		if err != nil {
			return nil, fmt.Errorf("scenario %s: %s: %w", l.dir, rel, err)
		}
		bundles = append(bundles, bundle)
	}
	return bundles, nil
}

func (l *scenarioLoader) raw(s *Scenario) error {
	names, err := l.list("raw")
	if err != nil {
		return err
	}
	for _, name := range names {
		if !slices.Contains(rawNames(), name) {
			return fmt.Errorf("scenario %s: raw/%s is not a document the fabric replays (want %s or blobs/<name>)",
				l.dir, name, strings.Join(rawNames(), ", "))
		}
		if s.Raw[name], err = l.read(filepath.Join("raw", name), true); err != nil {
			return err
		}
	}
	if names, err = l.list(filepath.Join("raw", rawBlobs)); err != nil {
		return err
	}
	for _, name := range names {
		if s.Blobs[name], err = l.read(filepath.Join("raw", rawBlobs, name), true); err != nil {
			return err
		}
	}
	return nil
}

// parseSettings parses scenario.yaml strictly: an unknown key is an error
// naming it and the file.
func parseSettings(b []byte, file string) (Settings, error) {
	var s Settings
	if len(bytes.TrimSpace(b)) == 0 {
		return s, nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		return Settings{}, fmt.Errorf("%s: %w", file, err)
	}
	if s.Incarnation < 0 {
		return Settings{}, fmt.Errorf("%s: incarnation %d: must not be negative", file, s.Incarnation)
	}
	return s, nil
}

// fillDefaults derives what scenario.yaml left out from the VM name (by
// default the OVF host name), so the same scenario always gets the same ids.
func (s *Settings) fillDefaults(hostName string) {
	def := func(field *string, value string) {
		if *field == "" {
			*field = value
		}
	}
	def(&s.VMName, hostName)
	def(&s.VMName, "azinit-vm")
	def(&s.VMID, derivedUUID("vm_id", s.VMName))
	def(&s.ContainerID, derivedUUID("container_id", s.VMName))
	def(&s.RoleInstanceID, derivedUUID("deployment", s.VMName)+"._"+s.VMName)
	def(&s.Location, "eastus")
	def(&s.VMSize, "Standard_D2s_v5")
	def(&s.SubscriptionID, derivedUUID("subscription_id", s.VMName))
	def(&s.ResourceGroup, s.VMName+"-rg")
	if s.Incarnation == 0 {
		s.Incarnation = 1
	}
}

// derivedUUID is a name-based (version 5 style) UUID of parts.
func derivedUUID(parts ...string) string {
	h := sha1.Sum([]byte("azinit-fabric\x00" + strings.Join(parts, "\x00")))
	h[6] = h[6]&0x0f | 0x50
	h[8] = h[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}
