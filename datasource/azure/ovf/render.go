package ovf

import (
	"encoding/json"
	"fmt"
	"log/slog"
)

// view is an Environment as it may be shown: the secrets reduced to
// whether they are present. Its JSON form is instance data's ds.ovf.
type view struct {
	Version                          string      `json:"version"`
	ConfigurationSetType             string      `json:"configuration_set_type"`
	HostName                         string      `json:"hostname"`
	UserName                         string      `json:"username"`
	DisableSSHPasswordAuthentication bool        `json:"disable_ssh_password_authentication"`
	PublicKeys                       []PublicKey `json:"public_keys"`
	KeyPairs                         []KeyPair   `json:"key_pairs"`
	HasPassword                      bool        `json:"has_password"`
	HasCustomData                    bool        `json:"has_custom_data"`
	KmsServerHostname                string      `json:"kms_server_hostname"`
	ProvisionGuestAgent              bool        `json:"provision_guest_agent"`
	GuestAgentPackageName            string      `json:"guest_agent_package_name"`
	PreprovisionedVM                 bool        `json:"preprovisioned_vm"`
	PreprovisionedVMType             string      `json:"preprovisioned_vm_type"`
	ProvisionGuestProxyAgent         bool        `json:"provision_guest_proxy_agent"`
}

func (e Environment) view() view {
	return view{
		Version:                          e.Version,
		ConfigurationSetType:             e.ConfigurationSetType,
		HostName:                         e.HostName,
		UserName:                         e.UserName,
		DisableSSHPasswordAuthentication: e.DisableSSHPasswordAuthentication,
		PublicKeys:                       nonNil(e.PublicKeys),
		KeyPairs:                         nonNil(e.KeyPairs),
		HasPassword:                      e.HasPassword(),
		HasCustomData:                    e.HasCustomData(),
		KmsServerHostname:                e.Platform.KmsServerHostname,
		ProvisionGuestAgent:              e.Platform.ProvisionGuestAgent,
		GuestAgentPackageName:            e.Platform.GuestAgentPackageName,
		PreprovisionedVM:                 e.Platform.PreprovisionedVM,
		PreprovisionedVMType:             e.Platform.PreprovisionedVMType,
		ProvisionGuestProxyAgent:         e.Platform.ProvisionGuestProxyAgent,
	}
}

// nonNil makes an absent list render as [] in JSON.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// Format prints the Environment with its secrets reduced to HasPassword
// and HasCustomData, whatever the verb.
func (e Environment) Format(f fmt.State, verb rune) {
	fmt.Fprintf(f, fmt.FormatString(f, 'v'), e.view())
}

// LogValue logs the Environment without its secrets.
func (e Environment) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("hostname", e.HostName),
		slog.String("username", e.UserName),
		slog.Bool("disable_ssh_password_authentication", e.DisableSSHPasswordAuthentication),
		slog.Int("public_keys", len(e.PublicKeys)),
		slog.Int("key_pairs", len(e.KeyPairs)),
		slog.Bool("has_password", e.HasPassword()),
		slog.Bool("has_custom_data", e.HasCustomData()),
		slog.Bool("provision_guest_agent", e.Platform.ProvisionGuestAgent),
		slog.Bool("preprovisioned_vm", e.Platform.PreprovisionedVM),
		slog.String("preprovisioned_vm_type", e.Platform.PreprovisionedVMType),
		slog.Bool("provision_guest_proxy_agent", e.Platform.ProvisionGuestProxyAgent),
	)
}

// MarshalJSON encodes the Environment as instance data's ds.ovf object:
// has_password and has_custom_data instead of the secrets.
func (e Environment) MarshalJSON() ([]byte, error) { return json.Marshal(e.view()) }
