// Package ovf reads ovf-env.xml, the provisioning document Azure puts on
// the provisioning media: host name, admin user, password, SSH keys,
// custom data and the platform settings.
//
// The password and the custom data are secrets. They are kept in memory
// only, behind accessors, and every rendering of an Environment (fmt, slog,
// encoding/json) shows whether they are present, never what they are.
package ovf

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Namespaces of the document, as Azure sends them.
const (
	NamespaceOVF = "http://schemas.dmtf.org/ovf/environment/1"
	NamespaceWA  = "http://schemas.microsoft.com/windowsazure"
)

// MaxPasswordLength is the longest admin password accepted, in characters:
// the limit cloud-init enforces (and reports as OsProfilePasswordTooLong).
const MaxPasswordLength = 72

var (
	// ErrSyntax marks a document that is not well-formed XML.
	ErrSyntax = errors.New("ovf-env.xml is not well-formed XML")
	// ErrInvalid marks a well-formed document that is not a valid Azure
	// provisioning document: a required element missing, an element that
	// must appear once appearing twice, a bad value.
	ErrInvalid = errors.New("invalid ovf-env.xml")
	// ErrPasswordTooLong is returned when UserPassword is longer than
	// MaxPasswordLength characters.
	ErrPasswordTooLong = fmt.Errorf("ovf-env.xml: UserPassword is longer than %d characters", MaxPasswordLength)
)

// Environment is a parsed ovf-env.xml.
type Environment struct {
	// Version is ProvisioningSection/Version ("1.0").
	Version string
	// ConfigurationSetType is "LinuxProvisioningConfiguration" on Linux.
	ConfigurationSetType string
	HostName             string
	UserName             string
	// DisableSSHPasswordAuthentication is true only when the document says
	// literally "true" (any case); absent or anything else keeps password
	// authentication enabled, as WALinuxAgent reads it.
	DisableSSHPasswordAuthentication bool
	PublicKeys                       []PublicKey
	KeyPairs                         []KeyPair
	Platform                         PlatformSettings

	// secret is a closure because nothing that walks values by reflection
	// (fmt printing a struct holding an Environment in an unexported field,
	// any encoder) can look inside one: it shows only an address.
	secret func() secrets
}

type secrets struct {
	password   string
	customData []byte
}

func (e *Environment) secrets() secrets {
	if e.secret == nil {
		return secrets{}
	}
	return e.secret()
}

// PublicKey is an SSH public key to authorise: Value is the OpenSSH key;
// without a Value the key is the certificate with thumbprint Fingerprint
// from the wireserver's certificates.
type PublicKey struct {
	Fingerprint string `json:"fingerprint"`
	Path        string `json:"path"`
	Value       string `json:"value"`
}

// KeyPair is a private key (a wireserver certificate named by Fingerprint)
// to deploy at Path.
type KeyPair struct {
	Fingerprint string `json:"fingerprint"`
	Path        string `json:"path"`
}

// PlatformSettings is PlatformSettingsSection/PlatformSettings.
type PlatformSettings struct {
	KmsServerHostname string
	// ProvisionGuestAgent is true when the element is absent or empty:
	// WALinuxAgent requires it and cloud-init's minimal document sets it
	// to true, so a document without it comes from a producer that expects
	// the guest agent.
	ProvisionGuestAgent bool
	// GuestAgentPackageName is "" when the element is absent or xsi:nil.
	GuestAgentPackageName string
	// PreprovisionedVM and PreprovisionedVMType ("Running", "Savable",
	// "PreprovisionedOSDisk") describe a pre-provisioned (PPS) VM.
	PreprovisionedVM         bool
	PreprovisionedVMType     string
	ProvisionGuestProxyAgent bool
}

// Password is the admin password in plain text, "" when none was given.
func (e *Environment) Password() string { return e.secrets().password }

// HasPassword reports whether an admin password was given.
func (e *Environment) HasPassword() bool { return e.Password() != "" }

// CustomData is the decoded custom data, nil when none was given. The
// caller gets its own copy.
func (e *Environment) CustomData() []byte { return bytes.Clone(e.secrets().customData) }

// HasCustomData reports whether custom data was given.
func (e *Environment) HasCustomData() bool { return len(e.secrets().customData) > 0 }

// Parse parses ovf-env.xml. Elements are matched by local name in the OVF
// or WA namespace, or in none (hand-written documents omit them), whatever
// prefix spells the namespace; elements in other namespaces and unknown
// elements are ignored. A UTF-8 byte order mark is skipped.
//
// Errors wrap ErrSyntax (with the line and column), ErrInvalid (naming the
// element by its path) or ErrPasswordTooLong; none quotes the password or
// the custom data.
func Parse(b []byte) (*Environment, error) {
	root, err := parseTree(b)
	if err != nil {
		return nil, err
	}
	if root.name.Local != "Environment" || !known(root.name.Space) {
		return nil, fmt.Errorf("%w: root element is %s, want Environment", ErrInvalid, describe(root.name))
	}
	env := &Environment{}
	var s secrets
	if err := env.parseProvisioning(root, &s); err != nil {
		return nil, err
	}
	if err := env.parsePlatform(root); err != nil {
		return nil, err
	}
	env.secret = func() secrets { return s }
	return env, nil
}

func (e *Environment) parseProvisioning(root *node, s *secrets) error {
	section, err := root.one("ProvisioningSection", true)
	if err != nil {
		return err
	}
	if e.Version, err = section.text("Version", true); err != nil {
		return err
	}
	set, err := section.one("LinuxProvisioningConfigurationSet", true)
	if err != nil {
		return err
	}
	if e.ConfigurationSetType, err = set.text("ConfigurationSetType", false); err != nil {
		return err
	}
	if e.HostName, err = set.text("HostName", true); err != nil {
		return err
	}
	if e.UserName, err = set.text("UserName", true); err != nil {
		return err
	}
	if e.DisableSSHPasswordAuthentication, err = set.flag("DisableSshPasswordAuthentication", false); err != nil {
		return err
	}
	if s.password, err = password(set); err != nil {
		return err
	}
	if s.customData, err = customData(set); err != nil {
		return err
	}
	return e.parseSSH(set)
}

func password(set *node) (string, error) {
	pw, err := set.one("UserPassword", false)
	if err != nil || pw == nil || pw.isNil {
		return "", err
	}
	// Not trimmed: spaces may be part of a password.
	if utf8.RuneCountInString(pw.data.String()) > MaxPasswordLength {
		return "", ErrPasswordTooLong
	}
	return pw.data.String(), nil
}

func customData(set *node) ([]byte, error) {
	cd, err := set.one("CustomData", false)
	if err != nil || cd == nil || cd.isNil {
		return nil, err
	}
	data, err := decodeBase64(cd.data.String())
	if err != nil {
		// The cause names only an offset, never the content.
		return nil, fmt.Errorf("%w: %s is not valid base64: %v", ErrInvalid, cd.path, err)
	}
	return data, nil
}

// decodeBase64 decodes standard base64 with the whitespace (line breaks)
// removed. Padding may be missing, as in hand-made documents.
func decodeBase64(s string) ([]byte, error) {
	s = strings.Join(strings.Fields(s), "")
	enc := base64.StdEncoding
	if len(s)%4 != 0 && !strings.Contains(s, "=") {
		enc = base64.RawStdEncoding
	}
	return enc.DecodeString(s)
}

func (e *Environment) parseSSH(set *node) error {
	ssh, err := set.one("SSH", false)
	if err != nil || ssh == nil {
		return err
	}
	keys, err := ssh.one("PublicKeys", false)
	if err != nil {
		return err
	}
	for _, k := range keys.all("PublicKey") {
		var pk PublicKey
		if pk.Fingerprint, err = k.text("Fingerprint", false); err != nil {
			return err
		}
		if pk.Path, err = k.text("Path", false); err != nil {
			return err
		}
		if pk.Value, err = k.text("Value", false); err != nil {
			return err
		}
		e.PublicKeys = append(e.PublicKeys, pk)
	}
	pairs, err := ssh.one("KeyPairs", false)
	if err != nil {
		return err
	}
	for _, k := range pairs.all("KeyPair") {
		var kp KeyPair
		if kp.Fingerprint, err = k.text("Fingerprint", false); err != nil {
			return err
		}
		if kp.Path, err = k.text("Path", false); err != nil {
			return err
		}
		e.KeyPairs = append(e.KeyPairs, kp)
	}
	return nil
}

func (e *Environment) parsePlatform(root *node) error {
	section, err := root.one("PlatformSettingsSection", true)
	if err != nil {
		return err
	}
	ps, err := section.one("PlatformSettings", true)
	if err != nil {
		return err
	}
	p := &e.Platform
	if p.KmsServerHostname, err = ps.text("KmsServerHostname", false); err != nil {
		return err
	}
	if p.ProvisionGuestAgent, err = ps.flag("ProvisionGuestAgent", true); err != nil {
		return err
	}
	if p.GuestAgentPackageName, err = ps.text("GuestAgentPackageName", false); err != nil {
		return err
	}
	if p.PreprovisionedVM, err = ps.flag("PreprovisionedVm", false); err != nil {
		return err
	}
	if p.PreprovisionedVMType, err = ps.text("PreprovisionedVMType", false); err != nil {
		return err
	}
	p.ProvisionGuestProxyAgent, err = ps.flag("ProvisionGuestProxyAgent", false)
	return err
}
