package fabric

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/azinit/azinit/datasource/azure/ovf"
)

// The IMDS api-versions the fabric accepts: every date in this range, as
// IMDS accepts its published versions in it. Clients fall back to an older
// version on 400, so a newer date must be refused.
const (
	oldestIMDSVersion = "2017-03-01"
	newestIMDSVersion = "2023-11-15"
)

// synthesizeIMDS builds the instance metadata of a scenario without
// imds.json from its OVF and settings, in the shape IMDS answers
// /metadata/instance?extended=true with.
func synthesizeIMDS(env *ovf.Environment, s Settings) ([]byte, error) {
	type publicKey struct {
		KeyData string `json:"keyData"`
		Path    string `json:"path"`
	}
	keys := []publicKey{}
	for _, k := range env.PublicKeys {
		if k.Value == "" {
			continue // a key given only by certificate thumbprint is not in IMDS
		}
		keys = append(keys, publicKey{KeyData: k.Value, Path: strings.ReplaceAll(k.Path, "$HOME", "/home")})
	}
	mac := sha256.Sum256([]byte("mac\x00" + s.VMName))
	doc := map[string]any{
		"compute": map[string]any{
			"azEnvironment": "AzurePublicCloud",
			"location":      s.Location,
			"name":          s.VMName,
			"offer":         "",
			"osType":        "Linux",
			"osProfile": map[string]any{
				"adminUsername":                 env.UserName,
				"computerName":                  env.HostName,
				"disablePasswordAuthentication": strconv.FormatBool(env.DisableSSHPasswordAuthentication),
			},
			"placementGroupId":     "",
			"platformFaultDomain":  "0",
			"platformUpdateDomain": "0",
			"provider":             "Microsoft.Compute",
			"publicKeys":           keys,
			"publisher":            "",
			"resourceGroupName":    s.ResourceGroup,
			"resourceId": fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/virtualMachines/%s",
				s.SubscriptionID, s.ResourceGroup, s.VMName),
			"securityProfile": map[string]any{"secureBootEnabled": "false", "virtualTpmEnabled": "false"},
			"sku":             "",
			"subscriptionId":  s.SubscriptionID,
			"tags":            "",
			"tagsList":        []any{},
			"userData":        "",
			"version":         "",
			"vmId":            s.VMID,
			"vmScaleSetName":  "",
			"vmSize":          s.VMSize,
			"zone":            "",
		},
		"network": map[string]any{
			"interface": []any{map[string]any{
				"ipv4": map[string]any{
					"ipAddress": []any{map[string]any{"privateIpAddress": privateIP, "publicIpAddress": ""}},
					"subnet":    []any{map[string]any{"address": "10.0.0.0", "prefix": "24"}},
				},
				"ipv6":       map[string]any{"ipAddress": []any{}},
				"macAddress": "000D3A" + strings.ToUpper(hex.EncodeToString(mac[:3])),
			}},
		},
		"extended": map[string]any{
			"compute": map[string]any{"ppsType": "None", "hasCustomData": env.HasCustomData()},
		},
	}
	return marshalJSON(doc)
}

// decodeIMDS decodes instance metadata for serving, keeping numbers as
// they are written.
func decodeIMDS(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, err
	}
	return doc, nil
}

// IMDS error bodies, as IMDS words them.
const (
	imdsNoMetadataHeader = `{"error":"Bad request. Required metadata header not specified"}`
	imdsNotFound         = `{"error":"Not found"}`
)

func imdsVersionError(msg string) reply {
	b, _ := json.Marshal(map[string]any{
		"error":           "Bad request. " + msg + " For more information refer to aka.ms/azureimds",
		"newest-versions": []string{newestIMDSVersion, "2023-07-01", "2023-05-01"},
	})
	return jsonReply(http.StatusBadRequest, b)
}

// validIMDSVersion reports whether IMDS answers api-version v.
func validIMDSVersion(v string) bool {
	if _, err := time.Parse(time.DateOnly, v); err != nil {
		return false
	}
	return v >= oldestIMDSVersion && v <= newestIMDSVersion
}

// serveIMDS answers /metadata/instance[/<path>]?api-version=...[&extended=true][&format=json|text].
func serveIMDS(q *request) reply {
	r := q.r
	if r.Method != http.MethodGet {
		return methodNotAllowed(http.MethodGet)
	}
	if !strings.EqualFold(r.Header.Get("Metadata"), "true") {
		q.entry.Error = "no Metadata: true header"
		return jsonReply(http.StatusBadRequest, []byte(imdsNoMetadataHeader))
	}
	p := strings.TrimSuffix(r.URL.Path, "/")
	if p != "/metadata/instance" && !strings.HasPrefix(p, "/metadata/instance/") {
		return jsonReply(http.StatusNotFound, []byte(imdsNotFound))
	}
	query := r.URL.Query()
	switch v := query.Get("api-version"); {
	case v == "":
		q.entry.Error = "no api-version"
		return imdsVersionError("api-version was not specified in the request.")
	case !validIMDSVersion(v):
		q.entry.Error = fmt.Sprintf("api-version %q is not one IMDS answers", v)
		return imdsVersionError("api-version is invalid or was not specified in the request.")
	}
	node := q.st.imds
	if top, ok := node.(map[string]any); ok && query.Get("extended") != "true" {
		node = withoutKey(top, "extended")
	}
	for _, seg := range strings.Split(strings.TrimPrefix(strings.TrimPrefix(p, "/metadata/instance"), "/"), "/") {
		if seg == "" {
			continue
		}
		var ok bool
		if node, ok = child(node, seg); !ok {
			return jsonReply(http.StatusNotFound, []byte(imdsNotFound))
		}
	}
	switch query.Get("format") {
	case "", "json":
		b, err := marshalJSON(node)
		if err != nil {
			return textReply(http.StatusInternalServerError, err.Error())
		}
		return jsonReply(http.StatusOK, b)
	case "text":
		text, ok := leafText(node)
		if !ok {
			return jsonReply(http.StatusBadRequest, []byte(`{"error":"Bad request. Format text is supported only for leaf nodes"}`))
		}
		return reply{status: http.StatusOK, header: http.Header{"Content-Type": {"text/plain; charset=utf-8"}}, body: []byte(text)}
	}
	return jsonReply(http.StatusBadRequest, []byte(`{"error":"Bad request. Unsupported format"}`))
}

func withoutKey(m map[string]any, key string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if k != key {
			out[k] = v
		}
	}
	return out
}

// child is the member or array element seg of node.
func child(node any, seg string) (any, bool) {
	switch n := node.(type) {
	case map[string]any:
		v, ok := n[seg]
		return v, ok
	case []any:
		i, err := strconv.Atoi(seg)
		if err != nil || i < 0 || i >= len(n) {
			return nil, false
		}
		return n[i], true
	}
	return nil, false
}

// leafText is a scalar node as IMDS's format=text writes it.
func leafText(node any) (string, bool) {
	switch n := node.(type) {
	case string:
		return n, true
	case json.Number:
		return n.String(), true
	case bool:
		return strconv.FormatBool(n), true
	case nil:
		return "", true
	}
	return "", false
}
