package azure

import (
	"encoding/json"
	"slices"

	"github.com/azinit/azinit/datasource"
	"github.com/azinit/azinit/datasource/azure/ovf"
)

// DS is the Azure part of the instance data (design.md §6).
type DS struct {
	Media        *MediaData        `json:"media,omitempty"`
	OVF          *OVFData          `json:"ovf,omitempty"`
	IMDS         map[string]any    `json:"imds,omitempty"`
	GoalState    *GoalStateData    `json:"goalstate,omitempty"`
	Certificates []CertificateData `json:"certificates,omitempty"`
}

// MediaData says where the provisioning document was read.
type MediaData struct {
	Device string `json:"device"`
	Format string `json:"format"`
}

// OVFData is ovf-env.xml without its secrets: the password never appears,
// the custom data only in the sensitive view.
type OVFData struct {
	Hostname                         string          `json:"hostname"`
	Username                         string          `json:"username"`
	DisableSSHPasswordAuthentication bool            `json:"disable_ssh_password_authentication"`
	PublicKeys                       []ovf.PublicKey `json:"public_keys"`
	KeyPairs                         []ovf.KeyPair   `json:"key_pairs"`
	HasPassword                      bool            `json:"has_password"`
	HasCustomData                    bool            `json:"has_custom_data"`
	CustomData                       []byte          `json:"custom_data,omitempty"` // base64 in JSON
	ProvisionGuestAgent              bool            `json:"provision_guest_agent"`
	PreprovisionedVM                 bool            `json:"preprovisioned_vm"`
	PreprovisionedVMType             string          `json:"preprovisioned_vm_type"`
}

// GoalStateData identifies the goal state and the role it describes, and
// the extensions it requests.
type GoalStateData struct {
	Incarnation    string          `json:"incarnation"`
	ContainerID    string          `json:"container_id"`
	RoleInstanceID string          `json:"role_instance_id"`
	VMName         string          `json:"vm_name,omitempty"`
	RoleName       string          `json:"role_name,omitempty"`
	DeploymentName string          `json:"deployment_name,omitempty"`
	Extensions     []ExtensionData `json:"extensions,omitempty"`
}

// ExtensionData is one extension handler the goal state requests.
type ExtensionData struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	State   string `json:"state"`
	// Invalid says why the goal state's description of it is unusable.
	Invalid string `json:"invalid,omitempty"`
}

// CertificateData is one certificate the goal state delivered.
type CertificateData struct {
	Thumbprint    string `json:"thumbprint"`
	HasPrivateKey bool   `json:"has_private_key"`
}

// InstanceData renders d. The sensitive view adds the custom data and the
// IMDS user data; no view holds the password. Keys that cannot be resolved
// are left out of v1.public_ssh_keys (PublicSSHKeys says why).
func (d *Data) InstanceData(sensitive bool) *datasource.InstanceData {
	ds := DS{}
	if d.Media != nil {
		ds.Media = &MediaData{Device: d.Media.Device, Format: d.Media.Format}
	}
	if e := d.OVF; e != nil {
		ds.OVF = &OVFData{
			Hostname:                         e.HostName,
			Username:                         e.UserName,
			DisableSSHPasswordAuthentication: e.DisableSSHPasswordAuthentication,
			PublicKeys:                       orEmpty(e.PublicKeys),
			KeyPairs:                         orEmpty(e.KeyPairs),
			HasPassword:                      d.HasPassword(),
			HasCustomData:                    e.HasCustomData(),
			ProvisionGuestAgent:              e.Platform.ProvisionGuestAgent,
			PreprovisionedVM:                 e.Platform.PreprovisionedVM,
			PreprovisionedVMType:             e.Platform.PreprovisionedVMType,
		}
		if sensitive {
			ds.OVF.CustomData = e.CustomData()
		}
	}
	var doc map[string]any
	// Raw was parsed when it was fetched: it unmarshals.
	if d.IMDS != nil && json.Unmarshal(d.IMDS.Raw, &doc) == nil {
		ds.IMDS = map[string]any{"compute": doc["compute"], "network": doc["network"]}
		if compute, ok := doc["compute"].(map[string]any); ok && sensitive && d.IMDS.Compute.HasUserData() {
			compute["userData"] = d.IMDS.Compute.UserData()
		}
	}
	if gs := d.GoalState; gs != nil {
		ds.GoalState = &GoalStateData{Incarnation: gs.Incarnation, ContainerID: gs.ContainerID, RoleInstanceID: gs.RoleInstanceID}
		if h := d.HostingEnvironment; h != nil {
			ds.GoalState.VMName, ds.GoalState.RoleName, ds.GoalState.DeploymentName = h.VMName, h.RoleName, h.DeploymentName
		}
		if d.Extensions != nil {
			for _, h := range d.Extensions.Handlers {
				ds.GoalState.Extensions = append(ds.GoalState.Extensions,
					ExtensionData{Name: h.Name, Version: h.Version, State: string(h.State), Invalid: h.Invalid})
			}
		}
	}
	for _, c := range d.Certificates {
		ds.Certificates = append(ds.Certificates, CertificateData{Thumbprint: c.Thumbprint, HasPrivateKey: c.Key != nil})
	}
	keys, _ := d.PublicSSHKeys()
	return &datasource.InstanceData{V1: d.v1(keys), DS: ds}
}

func (d *Data) v1(keys []string) datasource.V1 {
	v := datasource.V1{CloudName: "azure", Platform: "azure", PublicSSHKeys: keys}
	if d.IMDS != nil {
		c := d.IMDS.Compute
		v.InstanceID, v.Region, v.AvailabilityZone, v.VMSize = c.VMID, c.Location, c.Zone, c.VMSize
	}
	v.LocalHostname, v.Username = d.Hostname(), d.Username()
	return v
}

// PublicSSHKeys are the distinct authorized_keys lines of AuthorizedKeys,
// in order.
func (d *Data) PublicSSHKeys() ([]string, error) {
	keys, err := d.AuthorizedKeys()
	lines := []string{}
	for _, k := range keys {
		if !slices.Contains(lines, k.Key) {
			lines = append(lines, k.Key)
		}
	}
	return lines, err
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
