package azure

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"

	"github.com/azinit/azinit/datasource/azure/certs"
	"github.com/azinit/azinit/datasource/azure/extconfig"
	"github.com/azinit/azinit/datasource/azure/imds"
	"github.com/azinit/azinit/datasource/azure/media"
	"github.com/azinit/azinit/datasource/azure/ovf"
	"github.com/azinit/azinit/datasource/azure/wireserver"
	"github.com/azinit/azinit/internal/sys"
)

// CachePath is where one stage hands the datasource to the next. It is
// 0600: it holds the custom data and the password's hash, never the
// password itself.
const CachePath = "/run/azinit/datasource.json"

// ErrNoCache means no stage has cached the datasource this boot.
var ErrNoCache = errors.New("no cached datasource")

// cacheVersion changes when the cache's shape does; another is ignored.
const cacheVersion = 1

// cache is Data as the documents it was parsed from, so that loading it
// goes through the same parsers as fetching.
type cache struct {
	Version      int    `json:"version"`
	MediaDevice  string `json:"media_device,omitempty"`
	MediaFormat  string `json:"media_format,omitempty"`
	OVF          []byte `json:"ovf,omitempty"` // UserPassword emptied
	InvalidOVF   string `json:"invalid_ovf,omitempty"`
	PasswordHash string `json:"password_hash,omitempty"`
	// IMDS is the instance metadata without compute.userData, which
	// IMDSUserData holds.
	IMDS               json.RawMessage `json:"imds,omitempty"`
	IMDSUserData       []byte          `json:"imds_user_data,omitempty"`
	WireserverURL      string          `json:"wireserver_url,omitempty"`
	GoalState          []byte          `json:"goal_state,omitempty"`
	HostingEnvironment []byte          `json:"hosting_environment,omitempty"`
	SharedConfig       []byte          `json:"shared_config,omitempty"`
	ExtensionsConfig   []byte          `json:"extensions_config,omitempty"`
	// Certificates are read back from LibDir, where the network stage
	// writes them for extensions anyway.
	Certificates []string `json:"certificates,omitempty"`
}

// SaveCache writes d to CachePath under root, atomically, 0600.
func (d *Data) SaveCache(root *sys.Root) error {
	c := cache{
		Version:       cacheVersion,
		InvalidOVF:    d.InvalidOVF,
		PasswordHash:  d.PasswordHash,
		WireserverURL: d.WireserverURL,
		SharedConfig:  d.SharedConfig,
	}
	if d.Media != nil {
		c.MediaDevice, c.MediaFormat = d.Media.Device, d.Media.Format
		redacted, err := ovf.Redact(d.Media.OVF)
		if err != nil {
			return fmt.Errorf("caching ovf-env.xml: %w", err)
		}
		c.OVF = redacted
	}
	if d.IMDS != nil {
		c.IMDS, c.IMDSUserData = d.IMDS.Raw, d.IMDS.Compute.UserData()
	}
	if d.GoalState != nil {
		c.GoalState = d.GoalState.Raw
	}
	if d.HostingEnvironment != nil {
		c.HostingEnvironment = d.HostingEnvironment.Raw
	}
	c.ExtensionsConfig = d.ExtensionsConfig
	for _, cert := range d.Certificates {
		c.Certificates = append(c.Certificates, cert.Thumbprint)
	}
	b, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("caching the datasource: %w", err)
	}
	if err := root.MkdirAll(path.Dir(CachePath), 0o755); err != nil {
		return fmt.Errorf("caching the datasource: %w", err)
	}
	return root.WriteFileAtomic(CachePath, b, 0o600)
}

// LoadCache reads the datasource a previous stage cached under root:
// ErrNoCache when there is none. Each document is parsed again; the
// certificates are read from LibDir.
func LoadCache(root *sys.Root) (*Data, error) {
	b, err := root.ReadFile(CachePath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNoCache
	}
	if err != nil {
		return nil, err
	}
	var c cache
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("%s: %w", CachePath, err)
	}
	if c.Version != cacheVersion {
		return nil, fmt.Errorf("%w: %s has version %d, want %d", ErrNoCache, CachePath, c.Version, cacheVersion)
	}
	d := &Data{PasswordHash: c.PasswordHash, InvalidOVF: c.InvalidOVF, WireserverURL: c.WireserverURL, SharedConfig: c.SharedConfig}
	var errs []error
	parse := func(doc string, raw []byte, fn func([]byte) error) {
		if len(raw) > 0 {
			if err := fn(raw); err != nil {
				errs = append(errs, fmt.Errorf("cached %s: %w", doc, err))
			}
		}
	}
	parse("ovf-env.xml", c.OVF, func(b []byte) (err error) {
		d.Media = &media.Media{Device: c.MediaDevice, Format: c.MediaFormat, OVF: b}
		d.OVF, err = ovf.Parse(b)
		return err
	})
	parse("instance metadata", c.IMDS, func(b []byte) error {
		full, err := withUserData(b, c.IMDSUserData)
		if err == nil {
			d.IMDS, err = imds.ParseInstance(full)
		}
		return err
	})
	parse("goal state", c.GoalState, func(b []byte) (err error) {
		d.GoalState, err = wireserver.ParseGoalState(b)
		return err
	})
	parse("hosting environment", c.HostingEnvironment, func(b []byte) (err error) {
		d.HostingEnvironment, err = wireserver.ParseHostingEnvironment(b)
		return err
	})
	parse("extensions config", c.ExtensionsConfig, func(b []byte) (err error) {
		d.Extensions, err = extconfig.ParseExtensionsConfig(b)
		d.ExtensionsConfig = b
		return err
	})
	if len(c.Certificates) > 0 {
		if d.Certificates, err = certs.ReadFiles(root, LibDir, c.Certificates); err != nil {
			errs = append(errs, fmt.Errorf("cached certificates: %w", err))
		}
	}
	return d, errors.Join(errs...)
}

// withUserData puts userData back into an instance metadata document,
// base64 as IMDS sends it.
func withUserData(doc, userData []byte) ([]byte, error) {
	if len(userData) == 0 {
		return doc, nil
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(doc, &top); err != nil {
		return nil, err
	}
	var compute map[string]any
	if err := json.Unmarshal(top["compute"], &compute); err != nil {
		return nil, err
	}
	compute["userData"] = base64.StdEncoding.EncodeToString(userData)
	b, err := json.Marshal(compute)
	if err != nil {
		return nil, err
	}
	top["compute"] = b
	return json.Marshal(top)
}
