package imds_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/azinit/azinit/datasource/azure/imds"
	"github.com/azinit/azinit/internal/fixtures"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var ignoreSecrets = cmpopts.IgnoreUnexported(imds.Compute{})

// ignoreRaw compares Instances by their typed fields.
var ignoreRaw = cmpopts.IgnoreFields(imds.Instance{}, "Raw")

func TestParseInstanceFixture(t *testing.T) {
	b := fixtures.Read(t, "imds/valid.json")
	inst, err := imds.ParseInstance(b)
	if err != nil {
		t.Fatal(err)
	}
	want := &imds.Instance{
		Compute: imds.Compute{
			VMID:                "e7fdbfc4-2deb-4a4e-8615-ea6aaf50162e",
			Name:                "health",
			Location:            "westus",
			VMSize:              "Standard_D2_V2",
			PlatformFaultDomain: "0",
			SubscriptionID:      "21b2dc34-bce6-4e63-9449-d2a8d1c2339e",
			ResourceGroupName:   "tests",
			OSType:              "Linux",
		},
		Network: imds.Network{Interface: []imds.Interface{{
			MACAddress: "000D3A3382E8",
			IPv4: imds.IPSection{
				IPAddress: []imds.IPAddress{{PrivateIPAddress: "10.0.1.4", PublicIPAddress: "40.112.128.120"}},
				Subnet:    []imds.Subnet{{Address: "10.0.1.0", Prefix: "24"}},
			},
			IPv6: imds.IPSection{IPAddress: []imds.IPAddress{}},
		}}},
	}
	if diff := cmp.Diff(want, inst, ignoreSecrets, ignoreRaw); diff != "" {
		t.Errorf("ParseInstance(fixture) mismatch (-want +got):\n%s", diff)
	}
	if inst.Compute.HasUserData() {
		t.Error("HasUserData() = true for a document without userData")
	}
	if !bytes.Equal(inst.Raw, bytes.TrimSpace(b)) {
		t.Error("Raw is not the document")
	}
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// modern is what testdata/instance-2021-08-01.json parses to.
func modern() *imds.Instance {
	return &imds.Instance{
		Compute: imds.Compute{
			VMID:                "5c08b38e-4d57-4c23-ac45-aca61037f084",
			Name:                "azinit-vm1",
			Location:            "westeurope",
			VMSize:              "Standard_D2s_v5",
			Zone:                "2",
			PlatformFaultDomain: "1",
			SubscriptionID:      "00000000-1111-2222-3333-444444444444",
			ResourceGroupName:   "azinit-tests",
			OSType:              "Linux",
			OSProfile:           imds.OSProfile{AdminUsername: "azureuser", ComputerName: "azinit-vm1", DisablePasswordAuthentication: true},
			PublicKeys: []imds.SSHKey{{
				KeyData: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINOTAREALKEY azureuser@example",
				Path:    "/home/azureuser/.ssh/authorized_keys",
			}},
			TagsList: []imds.Tag{{Name: "env", Value: "test"}, {Name: "owner", Value: "azinit"}},
		},
		Network: imds.Network{Interface: []imds.Interface{
			{
				MACAddress: "6045BDA1B2C3",
				IPv4: imds.IPSection{
					IPAddress: []imds.IPAddress{{PrivateIPAddress: "10.0.0.4", PublicIPAddress: "20.1.2.3"}, {PrivateIPAddress: "10.0.0.5"}},
					Subnet:    []imds.Subnet{{Address: "10.0.0.0", Prefix: "24"}},
				},
				IPv6: imds.IPSection{IPAddress: []imds.IPAddress{{PrivateIPAddress: "ace:cab:deca::4"}}},
			},
			{
				MACAddress: "6045BDA1B2C4",
				IPv4: imds.IPSection{
					IPAddress: []imds.IPAddress{{PrivateIPAddress: "10.0.1.4"}},
					Subnet:    []imds.Subnet{{Address: "10.0.1.0", Prefix: "24"}},
				},
				IPv6: imds.IPSection{IPAddress: []imds.IPAddress{}},
			},
		}},
		Extended: imds.Extended{Compute: imds.ExtendedCompute{PPSType: "None", HasCustomData: true}},
	}
}

const modernUserData = "#cloud-config\nruncmd: [echo, user-data-secret]\n"

func TestParseInstance(t *testing.T) {
	withProfile := func(flag string) string {
		return `{"compute": {"osProfile": {"adminUsername": "u", "disablePasswordAuthentication": ` + flag + `}}}`
	}
	profile := func(disable bool) *imds.Instance {
		return &imds.Instance{Compute: imds.Compute{OSProfile: imds.OSProfile{AdminUsername: "u", DisablePasswordAuthentication: disable}}}
	}
	tests := []struct {
		name     string
		doc      string
		want     *imds.Instance
		userData string
	}{
		{"2021-08-01 extended", string(readTestdata(t, "instance-2021-08-01.json")), modern(), modernUserData},
		{"empty object", "{}", &imds.Instance{}, ""},
		{"surrounding whitespace", "\n {} \n", &imds.Instance{}, ""},
		{"unknown fields ignored", `{"compute": {"name": "n", "future": {"x": [1]}}, "future": true}`, &imds.Instance{Compute: imds.Compute{Name: "n"}}, ""},
		{"null sections", `{"compute": null, "network": null, "extended": null}`, &imds.Instance{}, ""},
		{"disablePasswordAuthentication true", withProfile(`"true"`), profile(true), ""},
		{"disablePasswordAuthentication True", withProfile(`"True"`), profile(true), ""},
		{"disablePasswordAuthentication false", withProfile(`"false"`), profile(false), ""},
		{"disablePasswordAuthentication empty", withProfile(`""`), profile(false), ""},
		{"disablePasswordAuthentication null", withProfile(`null`), profile(false), ""},
		{"disablePasswordAuthentication JSON bool", withProfile(`true`), profile(true), ""},
		{"disablePasswordAuthentication absent", `{"compute": {"osProfile": {"adminUsername": "u"}}}`, profile(false), ""},
		{"userData over lines", `{"compute": {"userData": "aGVs\nbG8="}}`, &imds.Instance{}, "hello"},
		{"empty userData", `{"compute": {"userData": ""}}`, &imds.Instance{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inst, err := imds.ParseInstance([]byte(tt.doc))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, inst, ignoreSecrets, ignoreRaw); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
			if got := string(inst.Compute.UserData()); got != tt.userData {
				t.Errorf("UserData() = %q, want %q", got, tt.userData)
			}
			if got := inst.Compute.HasUserData(); got != (tt.userData != "") {
				t.Errorf("HasUserData() = %v", got)
			}
		})
	}
}

func TestParseInstanceErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want string
		not  string // must not appear in the message
	}{
		{"empty", "", "not a JSON object", ""},
		{"array", "[]", "not a JSON object", ""},
		{"null", "null", "not a JSON object", ""},
		{"HTML error page", "<html>503</html>", "not a JSON object", ""},
		{"truncated", `{"compute": {"name": "n"`, "malformed JSON at offset", ""},
		{"trailing garbage", `{} x`, "malformed JSON at offset 4", ""},
		{"vmId a number", `{"compute": {"vmId": 42}}`, "compute.vmId: got JSON number, want string", ""},
		{"compute a string", `{"compute": "x"}`, "compute: got JSON string, want imds.Compute", ""},
		{"adminUsername a number", `{"compute": {"osProfile": {"adminUsername": 1}}}`, "compute.osProfile.adminUsername: got JSON number, want string", ""},
		{"disablePasswordAuthentication yes", `{"compute": {"osProfile": {"disablePasswordAuthentication": "yes"}}}`,
			`compute.osProfile.disablePasswordAuthentication: got JSON value "yes", want bool`, ""},
		{"disablePasswordAuthentication a number", `{"compute": {"osProfile": {"disablePasswordAuthentication": 1}}}`,
			"compute.osProfile.disablePasswordAuthentication: got JSON value 1, want bool", ""},
		{"publicKeys an object", `{"compute": {"publicKeys": {}}}`, "compute.publicKeys: got JSON object, want []imds.SSHKey", ""},
		{"keyData a number", `{"compute": {"publicKeys": [{"keyData": 1}]}}`, "compute.publicKeys.keyData: got JSON number", ""},
		{"tagsList value a bool", `{"compute": {"tagsList": [{"name": "a", "value": true}]}}`, "compute.tagsList.value: got JSON bool", ""},
		{"interface an object", `{"network": {"interface": {}}}`, "network.interface: got JSON object", ""},
		{"privateIpAddress a number", `{"network": {"interface": [{"ipv4": {"ipAddress": [{"privateIpAddress": 10}]}}]}}`,
			"network.interface.ipv4.ipAddress.privateIpAddress: got JSON number, want string", ""},
		{"prefix a number", `{"network": {"interface": [{"ipv4": {"subnet": [{"prefix": 24}]}}]}}`, "network.interface.ipv4.subnet.prefix: got JSON number", ""},
		{"hasCustomData a string", `{"extended": {"compute": {"hasCustomData": "true"}}}`, "extended.compute.hasCustomData: got JSON string, want bool", ""},
		{"userData a number", `{"compute": {"userData": 7}}`, "compute.userData: got JSON number, want string", ""},
		{"userData not base64", `{"compute": {"userData": "c2VjcmV0!!"}}`, "compute.userData is not valid base64", "c2VjcmV0"},
		{"nested too deep", `{"x": ` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}`, "exceeded max depth", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inst, err := imds.ParseInstance([]byte(tt.doc))
			if err == nil {
				t.Fatalf("ParseInstance succeeded: %+v", inst)
			}
			if !errors.Is(err, imds.ErrInvalid) {
				t.Errorf("error %q is not ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if tt.not != "" && strings.Contains(err.Error(), tt.not) {
				t.Errorf("error %q reveals %q", err, tt.not)
			}
		})
	}
}

func TestUserDataNotRendered(t *testing.T) {
	inst, err := imds.ParseInstance(readTestdata(t, "instance-2021-08-01.json"))
	if err != nil {
		t.Fatal(err)
	}
	const b64 = "I2Nsb3VkLWNvbmZpZwpydW5jbWQ6IFtlY2hvLCB1c2VyLWRhdGEtc2VjcmV0XQo="
	type holder struct {
		inst    imds.Instance
		Inst    *imds.Instance
		Compute imds.Compute
	}
	var out []string
	for _, v := range []any{inst, *inst, inst.Compute, holder{*inst, inst, inst.Compute}} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x"} {
			out = append(out, fmt.Sprintf(verb, v))
		}
	}
	var logs bytes.Buffer
	slog.New(slog.NewTextHandler(&logs, nil)).Info("imds", "instance", inst, "compute", inst.Compute)
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("imds", "instance", inst, "compute", inst.Compute)
	out = append(out, logs.String())
	j, err := json.Marshal(holder{*inst, inst, inst.Compute})
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, string(j), string(inst.Raw))
	for _, s := range out {
		for _, secret := range []string{b64, "user-data-secret", fmt.Sprintf("%x", "user-data-secret"), strings.Trim(fmt.Sprint([]byte("user-data-secret")), "[]")} {
			if strings.Contains(s, secret) {
				t.Errorf("userData %q rendered in %.300q", secret, s)
			}
		}
	}
	if !strings.Contains(logs.String(), "has_user_data=true") {
		t.Errorf("log does not say userData is present: %s", logs.String())
	}
}

func TestRawWithoutUserData(t *testing.T) {
	tests := []struct{ doc, want string }{
		{`{"compute": {"name": "n", "userData": "c2VjcmV0"}, "network": {"interface": []}}`, `{"compute":{"name":"n"},"network":{"interface":[]}}`},
		{`{"Compute": {"USERDATA": "c2VjcmV0", "userdata": "c2VjcmV0", "zone": "1"}, "x": [1, 2]}`, `{"Compute":{"zone":"1"},"x":[1,2]}`},
		{`{"compute": {"userData": "c2VjcmV0"}, "COMPUTE": {"name": "n"}}`, `{"COMPUTE":{"name":"n"},"compute":{}}`},
		{` {"compute": {"name": "n"}} `, `{"compute": {"name": "n"}}`}, // no userData: verbatim
	}
	for _, tt := range tests {
		inst, err := imds.ParseInstance([]byte(tt.doc))
		if err != nil {
			t.Fatalf("ParseInstance(%s): %v", tt.doc, err)
		}
		if string(inst.Raw) != tt.want {
			t.Errorf("ParseInstance(%s).Raw = %s, want %s", tt.doc, inst.Raw, tt.want)
		}
	}
}
