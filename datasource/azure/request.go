package azure

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/azinit/azinit/datasource/azure/certs"
)

// What the platform asks of this VM, merged from its sources: the
// provisioning document (OVF) is the request and wins; IMDS fills what it
// leaves out, and alone provisions a VM whose media could not be read.

// Hostname is the OVF's HostName, else IMDS osProfile.computerName.
func (d *Data) Hostname() string {
	if d.OVF != nil && d.OVF.HostName != "" {
		return d.OVF.HostName
	}
	if d.IMDS != nil {
		return d.IMDS.Compute.OSProfile.ComputerName
	}
	return ""
}

// Username is the admin user: the OVF's UserName, else IMDS
// osProfile.adminUsername.
func (d *Data) Username() string {
	if d.OVF != nil && d.OVF.UserName != "" {
		return d.OVF.UserName
	}
	if d.IMDS != nil {
		return d.IMDS.Compute.OSProfile.AdminUsername
	}
	return ""
}

// HasPassword reports whether the platform gave an admin password: in the
// OVF just read, or as the hash a previous stage cached.
func (d *Data) HasPassword() bool {
	return d.PasswordHash != "" || (d.OVF != nil && d.OVF.HasPassword())
}

// PasswordAuthentication reports whether sshd should accept passwords: not
// when the OVF (or, without one, IMDS) disables it; with neither, only
// when there is a password.
func (d *Data) PasswordAuthentication() bool {
	switch {
	case d.OVF != nil:
		return !d.OVF.DisableSSHPasswordAuthentication
	case d.IMDS != nil:
		return !d.IMDS.Compute.OSProfile.DisablePasswordAuthentication
	}
	return d.HasPassword()
}

// ProvisionGuestAgent reports whether the VM should run extensions: the
// OVF's ProvisionGuestAgent, true without an OVF.
func (d *Data) ProvisionGuestAgent() bool {
	return d.OVF == nil || d.OVF.Platform.ProvisionGuestAgent
}

// CustomData is the OVF's decoded custom data, nil when none.
func (d *Data) CustomData() []byte {
	if d.OVF == nil {
		return nil
	}
	return d.OVF.CustomData()
}

// AuthorizedKey is an SSH public key to authorise for the admin user, at
// the path the platform names ("" when it names none).
type AuthorizedKey struct {
	Path   string
	Key    string // an authorized_keys line
	Source string // "ovf", "certificate <thumbprint>" or "imds"
}

// AuthorizedKeys are the admin user's keys from every source: the OVF's
// inline values, the OVF's fingerprints resolved to the goal state's
// certificates, and IMDS publicKeys; a key given twice for one path is
// kept once. A fingerprint with no matching certificate is an error
// naming it; the keys that could be read are returned with it.
func (d *Data) AuthorizedKeys() ([]AuthorizedKey, error) {
	var keys []AuthorizedKey
	add := func(k AuthorizedKey) {
		k.Key = strings.TrimSpace(k.Key)
		if k.Key != "" && !slices.ContainsFunc(keys, func(o AuthorizedKey) bool { return o.Key == k.Key && o.Path == k.Path }) {
			keys = append(keys, k)
		}
	}
	var errs []error
	if d.OVF != nil {
		for _, pk := range d.OVF.PublicKeys {
			if pk.Value != "" {
				add(AuthorizedKey{Path: pk.Path, Key: pk.Value, Source: "ovf"})
				continue
			}
			c, err := d.certificate(pk.Fingerprint)
			if err == nil {
				var line string
				if line, err = c.AuthorizedKey(); err == nil {
					add(AuthorizedKey{Path: pk.Path, Key: line, Source: "certificate " + c.Thumbprint})
				}
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("public key %s: %w", pk.Fingerprint, err))
			}
		}
	}
	if d.IMDS != nil {
		for _, pk := range d.IMDS.Compute.PublicKeys {
			add(AuthorizedKey{Path: pk.Path, Key: pk.KeyData, Source: "imds"})
		}
	}
	return keys, errors.Join(errs...)
}

// KeyPair is a private key the platform asks to place at Path: a goal
// state certificate with its key.
type KeyPair struct {
	Path        string
	Certificate certs.Certificate
}

// KeyPairs are the OVF's key pairs, resolved to the goal state's
// certificates. A fingerprint with no certificate, or one without its
// private key, is an error naming it.
func (d *Data) KeyPairs() ([]KeyPair, error) {
	if d.OVF == nil {
		return nil, nil
	}
	var pairs []KeyPair
	var errs []error
	for _, kp := range d.OVF.KeyPairs {
		c, err := d.certificate(kp.Fingerprint)
		if err == nil && c.Key == nil {
			err = errors.New("the certificate came without its private key")
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("key pair %s: %w", kp.Fingerprint, err))
			continue
		}
		pairs = append(pairs, KeyPair{Path: kp.Path, Certificate: c})
	}
	return pairs, errors.Join(errs...)
}

// certificate is the goal state's certificate with thumbprint fp.
func (d *Data) certificate(fp string) (certs.Certificate, error) {
	if d.GoalState == nil {
		return certs.Certificate{}, errors.New("the goal state was not fetched")
	}
	for _, c := range d.Certificates {
		if strings.EqualFold(c.Thumbprint, fp) {
			return c, nil
		}
	}
	return certs.Certificate{}, errors.New("no such certificate in the goal state")
}
