// Package datasource defines the instance data a platform datasource
// produces: what `azinit query` prints and what the stages cache in
// /run/azinit. The v1 keys follow cloud-init's names so that scripts written
// against `cloud-init query` keep working.
package datasource

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Where the stages leave the instance data for `azinit query`: redacted
// for everyone (0644) and whole for root (0600).
const (
	InstanceDataPath = "/run/azinit/instance-data.json"
	SensitivePath    = "/run/azinit/instance-data-sensitive.json"
)

// InstanceData is the document behind `azinit query`.
type InstanceData struct {
	V1 V1 `json:"v1"`
	// DS is the platform's own view (for Azure: ovf, imds, goalstate,
	// certificates).
	DS any `json:"ds"`
}

// V1 is the platform-neutral summary.
type V1 struct {
	CloudName        string   `json:"cloud_name"`
	Platform         string   `json:"platform"`
	InstanceID       string   `json:"instance_id"`
	LocalHostname    string   `json:"local_hostname"`
	Region           string   `json:"region"`
	AvailabilityZone string   `json:"availability_zone"`
	VMSize           string   `json:"vm_size"`
	Username         string   `json:"username"`
	PublicSSHKeys    []string `json:"public_ssh_keys"`
}

// Lookup returns the value at a dotted key ("v1.local_hostname",
// "ds.ovf.public_keys.0.path") in a JSON document; "" is the whole document.
func Lookup(doc []byte, key string) (any, error) {
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		return nil, fmt.Errorf("instance data: %w", err)
	}
	if key == "" {
		return v, nil
	}
	walked := ""
	for _, part := range strings.Split(key, ".") {
		switch node := v.(type) {
		case map[string]any:
			next, ok := node[part]
			if !ok {
				return nil, fmt.Errorf("instance data has no key %q under %q", part, label(walked))
			}
			v = next
		case []any:
			i, err := strconv.Atoi(part)
			if err != nil || i < 0 || i >= len(node) {
				return nil, fmt.Errorf("instance data key %q: %q is not an index below %d", label(walked), part, len(node))
			}
			v = node[i]
		default:
			return nil, fmt.Errorf("instance data key %q is a value, it has no %q", label(walked), part)
		}
		walked = strings.TrimPrefix(walked+"."+part, ".")
	}
	return v, nil
}

func label(walked string) string {
	if walked == "" {
		return "(top)"
	}
	return walked
}

// Format renders a looked-up value: strings and numbers bare, anything else
// as indented JSON.
func Format(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return "null"
	case bool, float64:
		b, _ := json.Marshal(x)
		return string(b)
	default:
		b, _ := json.MarshalIndent(x, "", "  ")
		return string(b)
	}
}
