package imds

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
)

// ErrInvalid marks a document that is not valid instance metadata.
var ErrInvalid = errors.New("invalid instance metadata")

// Instance is the answer of /metadata/instance.
type Instance struct {
	Compute  Compute  `json:"compute"`
	Network  Network  `json:"network"`
	Extended Extended `json:"extended"`
	// Raw is the whole document, for instance data, except compute.userData:
	// that secret is only in Compute.UserData, so that Raw may be shown.
	Raw json.RawMessage `json:"-"`
}

// Compute is the instance's compute section.
type Compute struct {
	VMID                string    `json:"vmId"`
	Name                string    `json:"name"`
	Location            string    `json:"location"`
	VMSize              string    `json:"vmSize"`
	Zone                string    `json:"zone"`
	PlatformFaultDomain string    `json:"platformFaultDomain"`
	SubscriptionID      string    `json:"subscriptionId"`
	ResourceGroupName   string    `json:"resourceGroupName"`
	OSType              string    `json:"osType"`
	OSProfile           OSProfile `json:"osProfile"`
	PublicKeys          []SSHKey  `json:"publicKeys"`
	TagsList            []Tag     `json:"tagsList"`

	// userData is a closure so that nothing walking values by reflection
	// (fmt, encoders) can see the decoded bytes: it prints as an address.
	userData func() []byte
}

// UserData is the decoded compute.userData, nil when there is none. It is a
// secret: never log it. The caller gets its own copy.
func (c *Compute) UserData() []byte {
	if c.userData == nil {
		return nil
	}
	return bytes.Clone(c.userData())
}

// HasUserData reports whether compute.userData is set.
func (c *Compute) HasUserData() bool { return c.userData != nil && len(c.userData()) > 0 }

// OSProfile is compute.osProfile.
type OSProfile struct {
	AdminUsername string `json:"adminUsername"`
	ComputerName  string `json:"computerName"`
	// DisablePasswordAuthentication is the string "true" or "false" in
	// IMDS (any case); absent or "" means false.
	DisablePasswordAuthentication bool `json:"disablePasswordAuthentication"`
}

// UnmarshalJSON reads osProfile, whose disablePasswordAuthentication is a
// string in IMDS (a JSON boolean is accepted too).
func (p *OSProfile) UnmarshalJSON(b []byte) error {
	var w struct {
		AdminUsername                 string          `json:"adminUsername"`
		ComputerName                  string          `json:"computerName"`
		DisablePasswordAuthentication json.RawMessage `json:"disablePasswordAuthentication"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	var flag bool
	switch v := strings.ToLower(string(w.DisablePasswordAuthentication)); v {
	case "", "null", `""`, "false", `"false"`:
	case "true", `"true"`:
		flag = true
	default:
		// The decoder puts the path of osProfile in front of Field.
		return &json.UnmarshalTypeError{Value: "value " + truncate(v, 32), Type: reflect.TypeFor[bool](), Field: "disablePasswordAuthentication"}
	}
	*p = OSProfile{AdminUsername: w.AdminUsername, ComputerName: w.ComputerName, DisablePasswordAuthentication: flag}
	return nil
}

// SSHKey is an entry of compute.publicKeys.
type SSHKey struct {
	KeyData string `json:"keyData"`
	Path    string `json:"path"`
}

// Tag is an entry of compute.tagsList.
type Tag struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Network is the instance's network section.
type Network struct {
	Interface []Interface `json:"interface"`
}

// Interface is a NIC; MACAddress is as IMDS spells it ("000D3A3382E8").
type Interface struct {
	MACAddress string    `json:"macAddress"`
	IPv4       IPSection `json:"ipv4"`
	IPv6       IPSection `json:"ipv6"`
}

// IPSection is a NIC's ipv4 or ipv6 addresses and subnets.
type IPSection struct {
	IPAddress []IPAddress `json:"ipAddress"`
	Subnet    []Subnet    `json:"subnet"`
}

// IPAddress is a private address and the public one mapped to it, if any.
type IPAddress struct {
	PrivateIPAddress string `json:"privateIpAddress"`
	PublicIPAddress  string `json:"publicIpAddress"`
}

// Subnet is an address and a prefix length, both strings in IMDS.
type Subnet struct {
	Address string `json:"address"`
	Prefix  string `json:"prefix"`
}

// Extended is the "extended" section (api-version 2021-08-01 with
// extended=true): pre-provisioning and custom data hints.
type Extended struct {
	Compute ExtendedCompute `json:"compute"`
}

// ExtendedCompute is extended.compute. PPSType is "None", "Running" or
// "Savable"; HasCustomData says the VM was given custom data, so its
// absence from the provisioning media is an error.
type ExtendedCompute struct {
	PPSType       string `json:"ppsType"`
	HasCustomData bool   `json:"hasCustomData"`
}

// ParseInstance parses a /metadata/instance document. Unknown fields are
// ignored; a field of the wrong type is an error naming its path.
func ParseInstance(b []byte) (*Instance, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return nil, fmt.Errorf("%w: not a JSON object", ErrInvalid)
	}
	var inst Instance
	if err := decode(b, &inst); err != nil {
		return nil, err
	}
	// userData is decoded on its own so that it lands only in the closure.
	var w struct {
		Compute struct {
			UserData string `json:"userData"`
		} `json:"compute"`
	}
	if err := decode(b, &w); err != nil {
		return nil, err
	}
	if w.Compute.UserData == "" {
		inst.Raw = json.RawMessage(bytes.Clone(b))
		return &inst, nil
	}
	data, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(w.Compute.UserData), ""))
	if err != nil {
		// The cause names only an offset, never the content.
		return nil, fmt.Errorf("%w: compute.userData is not valid base64: %v", ErrInvalid, err)
	}
	inst.Compute.userData = func() []byte { return data }
	if inst.Raw, err = withoutUserData(b); err != nil {
		return nil, err
	}
	return &inst, nil
}

// decode unmarshals b into v with errors that name the offending field
// by its path ("compute.osProfile.adminUsername") or the byte offset.
func decode(b []byte, v any) error {
	err := json.Unmarshal(b, v)
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &te):
		return fmt.Errorf("%w: %s: got JSON %s, want %s", ErrInvalid, cmp.Or(te.Field, "document"), te.Value, te.Type)
	case errors.As(err, &se):
		return fmt.Errorf("%w: malformed JSON at offset %d: %s", ErrInvalid, se.Offset, se.Error())
	}
	return fmt.Errorf("%w: %v", ErrInvalid, err)
}

// withoutUserData returns the document b with compute.userData removed.
// encoding/json matches names regardless of case, so ParseInstance took
// userData from any spelling of either name: every spelling goes.
func withoutUserData(b []byte) (json.RawMessage, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	for k, v := range doc {
		var compute map[string]json.RawMessage
		if !strings.EqualFold(k, "compute") || json.Unmarshal(v, &compute) != nil {
			continue // not the compute object, so no userData in it
		}
		for ck := range compute {
			if strings.EqualFold(ck, "userData") {
				delete(compute, ck)
			}
		}
		c, err := json.Marshal(compute)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		doc[k] = c
	}
	out, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return out, nil
}

// Format prints the Instance without Raw and without userData.
func (i Instance) Format(f fmt.State, verb rune) {
	type shown struct {
		Compute     Compute
		HasUserData bool
		Network     Network
		Extended    Extended
	}
	fmt.Fprintf(f, fmt.FormatString(f, 'v'), shown{i.Compute, i.Compute.HasUserData(), i.Network, i.Extended})
}

// LogValue logs what identifies the instance, never userData.
func (i Instance) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("vm_id", i.Compute.VMID),
		slog.String("name", i.Compute.Name),
		slog.String("location", i.Compute.Location),
		slog.String("vm_size", i.Compute.VMSize),
		slog.String("zone", i.Compute.Zone),
		slog.Int("interfaces", len(i.Network.Interface)),
		slog.Bool("has_user_data", i.Compute.HasUserData()),
		slog.String("pps_type", i.Extended.Compute.PPSType),
	)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
