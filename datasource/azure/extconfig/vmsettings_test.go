package extconfig_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/azinit/azinit/datasource/azure/extconfig"
	"github.com/azinit/azinit/internal/fixtures"
	"github.com/google/go-cmp/cmp"
)

func TestParseVMSettingsFixture(t *testing.T) {
	gs, err := extconfig.ParseVMSettings(fixtures.Read(t, "hostgaplugin/vm_settings.json"))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "hostgaplugin_vm_settings.golden.json", gs)
	want := [][]string{
		{"MIIBsAYJKoZIhvcNAQcDoIIBoTCCAZ0CAQAxggFpMIIBZQIBADBNMDkxNzA1BgoJkiaJk/Microsoft.Azure.Monitor.AzureMonitorLinuxAgent=="},
		{"MIIBsAYJKoZIhvcNAQcDoIIBoTCCAZ0CAQAxggFpMIIBZQIBADBNMDkxNzA1BgoJkiaJk/Microsoft.Azure.Security.Monitoring.AzureSecurityLinuxAgent=="},
		{""},
		{"", "", ""},
		{"MIIBsAYJKoZIhvcNAQcDoIIBoTCCAZ0CAQAxggFpddesZQewdDBgegkxNzA1BgoJkgergres/Microsoft.OSTCExtensions.VMAccessForLinux=="},
	}
	if diff := cmp.Diff(want, revealAll(gs)); diff != "" {
		t.Errorf("protected settings (-want +got):\n%s", diff)
	}
	if gs.HostGAPluginTooOld() || gs.SupportsEncodedSignature() {
		t.Errorf("HGAP 1.0.8.133: HostGAPluginTooOld = %v, SupportsEncodedSignature = %v; want false, false",
			gs.HostGAPluginTooOld(), gs.SupportsEncodedSignature())
	}
}

// handlerView is what must agree between the two channels for one goal
// state.
type handlerView struct {
	Name, Version string
	State         extconfig.State
	MultiConfig   bool
	ManifestURIs  []string
	Settings      []settingsView
}

type settingsView struct {
	Name            string
	SeqNo           int
	State           extconfig.State
	DependencyLevel int
	Public          string
	Thumbprint      string
	Protected       string
}

func viewOf(gs *extconfig.ExtensionsGoalState) []handlerView {
	var out []handlerView
	for _, h := range gs.Handlers {
		v := handlerView{Name: h.Name, Version: h.Version, State: h.State, MultiConfig: h.MultiConfig, ManifestURIs: h.ManifestURIs()}
		for _, s := range h.Settings {
			v.Settings = append(v.Settings, settingsView{
				Name: s.Name, SeqNo: s.SeqNo, State: s.State, DependencyLevel: s.DependencyLevel,
				Public: string(s.PublicSettings), Thumbprint: s.ProtectedSettingsCertThumbprint,
				Protected: s.ProtectedSettings.Reveal(),
			})
		}
		out = append(out, v)
	}
	return out
}

// TestChannelsAgree checks that hostgaplugin/ext_conf.xml and
// hostgaplugin/vm_settings.json, one goal state through both channels,
// give the same handlers and settings.
func TestChannelsAgree(t *testing.T) {
	ec, err := extconfig.ParseExtensionsConfig(fixtures.Read(t, "hostgaplugin/ext_conf.xml"))
	if err != nil {
		t.Fatal(err)
	}
	vms, err := extconfig.ParseVMSettings(fixtures.Read(t, "hostgaplugin/vm_settings.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := viewOf(ec)
	// The one place the fixtures themselves differ: VMAccess's certificate.
	if want[4].Settings[0].Thumbprint != "59A10F50FFE2A0408D3F03FE336C8FD5716CF25C" {
		t.Fatalf("VMAccess thumbprint in ext_conf.xml = %q; the fixture changed", want[4].Settings[0].Thumbprint)
	}
	want[4].Settings[0].Thumbprint = "F6ABAA61098A301EBB8A571C3C7CF77F355F7FA9"
	if diff := cmp.Diff(want, viewOf(vms)); diff != "" {
		t.Errorf("ExtensionsConfig and vmSettings disagree (-ExtensionsConfig +vmSettings):\n%s", diff)
	}
	if diff := cmp.Diff(ec.RequiredFeatures, vms.RequiredFeatures); diff != "" {
		t.Errorf("required features (-ExtensionsConfig +vmSettings):\n%s", diff)
	}
	if diff := cmp.Diff(ec.GAFamilies, vms.GAFamilies); diff != "" {
		t.Errorf("GA families (-ExtensionsConfig +vmSettings):\n%s", diff)
	}
	for _, c := range []struct{ name, ec, vms string }{
		{"status blob", ec.StatusUploadBlob, vms.StatusUploadBlob},
		{"activity id", ec.ActivityID, vms.ActivityID},
		{"correlation id", ec.CorrelationID, vms.CorrelationID},
		{"location", ec.Location, vms.Location},
	} {
		if c.ec != c.vms {
			t.Errorf("%s: ExtensionsConfig %q, vmSettings %q", c.name, c.ec, c.vms)
		}
	}
	// The vmSettings are the newer of the two (by 8.2 µs).
	if !vms.CreatedOn.After(ec.CreatedOn) {
		t.Errorf("vmSettings created %v, not after ExtensionsConfig's %v", vms.CreatedOn, ec.CreatedOn)
	}
}

// vmsDoc is a vmSettings document with the given extensionGoalStates.
func vmsDoc(extensions string) []byte {
	return []byte(`{"hostGAPluginVersion": "1.0.8.159", "extensionGoalStatesSource": "FastTrack", "extensionGoalStates": [` + extensions + `]}`)
}

func TestParseVMSettingsHandlers(t *testing.T) {
	const head = `"name": "A", "version": "1.0", "state": "enabled", "location": "https://l"`
	base := func(s ...extconfig.Settings) extconfig.Handler {
		return extconfig.Handler{Name: "A", Version: "1.0", State: "enabled", Location: "https://l", Settings: s}
	}
	for _, tc := range []struct {
		name, ext string
		want      extconfig.Handler
	}{
		{
			name: "no settings",
			ext:  `{` + head + `}`,
			want: base(),
		},
		{
			name: "single-config",
			ext: `{` + head + `, "failoverLocation": "https://f", "additionalLocations": ["https://x"], "encodedSignature": "c2ln",
				"settingsSeqNo": 2, "settings": [{"publicSettings": "{\"a\": [1, 2]}", "protectedSettings": "c2VjcmV0", "protectedSettingsCertThumbprint": "TP"}],
				"dependsOn": [{"dependencyLevel": 3, "dependsOnExtension": [{"handler": "B"}]}]}`,
			want: func() extconfig.Handler {
				h := base(extconfig.Settings{Name: "A", SeqNo: 2, State: "enabled", DependencyLevel: 3,
					PublicSettings: json.RawMessage(`{"a":[1,2]}`), ProtectedSettingsCertThumbprint: "TP", ProtectedSettings: extconfig.NewSecret("c2VjcmV0")})
				h.FailoverLocation, h.AdditionalLocations, h.EncodedSignature = "https://f", []string{"https://x"}, "c2ln"
				return h
			}(),
		},
		{
			name: "settings of an uninstalled single-config handler take its state; null public settings",
			ext:  `{"name": "A", "version": "1.0", "state": "uninstall", "settingsSeqNo": "4", "settings": [{"publicSettings": null}], "dependsOn": []}`,
			want: extconfig.Handler{Name: "A", Version: "1.0", State: "uninstall", Settings: []extconfig.Settings{{Name: "A", SeqNo: 4, State: "uninstall"}}},
		},
		{
			name: "public settings string holding null",
			ext:  `{` + head + `, "settingsSeqNo": 0, "settings": [{"publicSettings": "null"}]}`,
			want: base(extconfig.Settings{Name: "A", State: "enabled"}),
		},
		{
			name: "dependency without settings is ignored",
			ext:  `{` + head + `, "dependsOn": [{"dependencyLevel": 1}]}`,
			want: base(),
		},
		{
			name: "multi-config",
			ext: `{` + head + `, "isMultiConfig": true, "settings": [
				{"publicSettings": "{}", "seqNo": 1, "extensionName": "E1", "extensionState": "enabled"},
				{"seqNo": 2, "extensionName": "E2", "extensionState": "Disabled"}],
				"dependsOn": [{"name": "E2", "dependencyLevel": 2}, {"name": "E1", "dependencyLevel": "1"}]}`,
			want: func() extconfig.Handler {
				h := base(
					extconfig.Settings{Name: "E1", SeqNo: 1, State: "enabled", DependencyLevel: 1, PublicSettings: json.RawMessage(`{}`)},
					extconfig.Settings{Name: "E2", SeqNo: 2, State: "disabled", DependencyLevel: 2},
				)
				h.MultiConfig = true
				return h
			}(),
		},
		{
			name: "keys in any case",
			ext: `{"NAME": "A", "Version": "1.0", "sTaTe": "enabled", "LOCATION": "https://l", "failoverlocation": "https://f",
				"SettingsSeqNo": 1, "Settings": [{"PublicSettings": "{\"Key\": 1}", "ProtectedSettings": "cA==", "PROTECTEDSETTINGSCERTTHUMBPRINT": "TP"}],
				"DEPENDSON": [{"DependencyLevel": 5}]}`,
			want: func() extconfig.Handler {
				h := base(extconfig.Settings{Name: "A", SeqNo: 1, State: "enabled", DependencyLevel: 5,
					PublicSettings: json.RawMessage(`{"Key":1}`), ProtectedSettingsCertThumbprint: "TP", ProtectedSettings: extconfig.NewSecret("cA==")})
				h.FailoverLocation = "https://f"
				return h
			}(),
		},
		{
			// U+017F LATIN SMALL LETTER LONG S case-folds to s, as in
			// the platform's agent (str.casefold).
			name: "keys folded beyond ASCII",
			ext:  `{"name": "A", "version": "1.0", "ſtate": "enabled", "location": "https://l"}`,
			want: base(),
		},
		{
			name: "the last of repeated keys wins",
			ext:  `{` + head + `, "failoverlocation": "https://1", "failoverLocation": "https://2"}`,
			want: func() extconfig.Handler { h := base(); h.FailoverLocation = "https://2"; return h }(),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gs, err := extconfig.ParseVMSettings(vmsDoc(tc.ext))
			if err != nil {
				t.Fatal(err)
			}
			if len(gs.Handlers) != 1 {
				t.Fatalf("got %d handlers, want 1", len(gs.Handlers))
			}
			if diff := cmp.Diff(tc.want, gs.Handlers[0]); diff != "" {
				t.Errorf("handler mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseVMSettingsDocument(t *testing.T) {
	version := func(s string) extconfig.Version {
		v, err := extconfig.ParseVersion(s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		name, doc string
		want      extconfig.ExtensionsGoalState
	}{
		{
			name: "empty",
			doc:  `{}`,
			want: extconfig.ExtensionsGoalState{Source: extconfig.SourceUnknown},
		},
		{
			name: "attributes",
			doc: `{"hostGAPluginVersion": "1.0.8.159", "vmSettingsSchemaVersion": "0.0", "activityId": "act", "correlationId": "",
				"inSvdSeqNo": 12, "extensionsLastModifiedTickCount": 637726657706205299, "extensionGoalStatesSource": "Fabric",
				"onHold": "True", "statusUploadBlob": {"value": " https://s?sig=1 "}, "inVMMetadata": {"location": "westus"},
				"requiredFeatures": [{"name": "MultipleExtensionsPerHandler"}],
				"gaFamilies": [{"name": "Prod", "version": "9.9.9.9", "isVersionFromRSM": true, "uris": ["https://a"]}, {"name": "Test"}]}`,
			want: extconfig.ExtensionsGoalState{
				Source: extconfig.SourceFabric, HostGAPluginVersion: version("1.0.8.159"), SchemaVersion: version("0.0"),
				ActivityID: "act", InSvdSeqNo: "12", CreatedOn: time.Date(2021, 11, 16, 13, 22, 50, 620529900, time.UTC),
				OnHold: true, StatusUploadBlob: "https://s?sig=1", Location: "westus",
				RequiredFeatures: []string{"MultipleExtensionsPerHandler"},
				GAFamilies: []extconfig.GAFamily{
					{Name: "Prod", Version: "9.9.9.9", IsVersionFromRSM: true, URIs: []string{"https://a"}},
					{Name: "Test"},
				},
			},
		},
		{
			name: "page blob; ticks as a string; odd inVMMetadata",
			doc:  `{"statusUploadBlob": {"statusBlobType": "PageBlob", "value": "u"}, "extensionsLastModifiedTickCount": "1", "inVMMetadata": "x"}`,
			want: extconfig.ExtensionsGoalState{Source: extconfig.SourceUnknown, StatusUploadBlob: "u", StatusBlobType: extconfig.PageBlob,
				CreatedOn: time.Date(1, 1, 1, 0, 0, 0, 100, time.UTC)},
		},
		{
			name: "unknown blob type",
			doc:  `{"statusUploadBlob": {"statusBlobType": "AppendBlob", "value": "u"}}`,
			want: extconfig.ExtensionsGoalState{Source: extconfig.SourceUnknown, StatusUploadBlob: "u"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gs, err := extconfig.ParseVMSettings([]byte(tc.doc))
			if err != nil {
				t.Fatal(err)
			}
			want := withDefaults(tc.want, extconfig.ChannelHostGAPlugin)
			if diff := cmp.Diff(&want, gs); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseVMSettingsErrors(t *testing.T) {
	const secret = "c2VjcmV0LXByb3RlY3RlZA"
	const head = `"name": "A", "version": "1.0", "state": "enabled"`
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"empty", ``, "invalid JSON"},
		{"null", `null`, "the document is null"},
		{"array", `[]`, "the document is a JSON array, want an object"},
		{"trailing data", `{} {}`, "invalid JSON"},
		{"bad HGAP version", `{"hostGAPluginVersion": "1.0.x"}`, `hostGAPluginVersion: invalid version "1.0.x"`},
		{"bad schema version", `{"vmSettingsSchemaVersion": "v1"}`, `vmSettingsSchemaVersion: invalid version`},
		{"status blob without value", `{"statusUploadBlob": {"statusBlobType": "BlockBlob"}}`, "statusUploadBlob: missing value"},
		{"status blob not an object", `{"statusUploadBlob": "https://s"}`, "statusUploadBlob: got a JSON string, want an object"},
		{"onHold", `{"onHold": 1}`, "onHold: got a JSON number, want true or false"},
		{"requiredFeatures not an array", `{"requiredFeatures": {"name": "x"}}`, "requiredFeatures: got a JSON object, want an array"},
		{"required feature without name", `{"requiredFeatures": [{"value": "x"}]}`, "requiredFeatures[0]: A required feature is missing the 'name' property"},
		{"gaFamilies not an array", `{"gaFamilies": "Prod"}`, "gaFamilies: got a JSON string, want an array"},
		{"GA family without name", `{"gaFamilies": [null]}`, "gaFamilies[0]: missing name"},
		{"extensionGoalStates not an array", `{"extensionGoalStates": {}}`, "extensionGoalStates: got a JSON object, want an array"},
		{"null extension", string(vmsDoc(`null`)), "extensionGoalStates[0]: got null, want an object"},
		{"extension without name", string(vmsDoc(`{"version": "1.0", "state": "enabled"}`)), "extensionGoalStates[0]: missing name"},
		{"extension without version", string(vmsDoc(`{"name": "A", "state": "enabled"}`)), "extensionGoalStates[0]: missing version (extension: A)"},
		{"bad state", string(vmsDoc(`{"name": "A", "version": "1", "state": "Enabled"}`)), "extensionGoalStates[0]: Invalid extension state: Enabled (A)"},
		{"missing state", string(vmsDoc(`{"name": "A", "version": "1"}`)), "Invalid extension state: null (A)"},
		{"additionalLocations not an array", string(vmsDoc(`{` + head + `, "additionalLocations": "https://x"}`)),
			"extensionGoalStates.additionalLocations: got a JSON string, want an array"},
		{"settings not an array", string(vmsDoc(`{` + head + `, "settings": {}}`)), "extensionGoalStates.settings: got a JSON object, want an array"},
		{"dependsOn not an array", string(vmsDoc(`{` + head + `, "dependsOn": {}}`)), "extensionGoalStates.dependsOn: got a JSON object, want an array"},
		{"single-config with two settings", string(vmsDoc(`{` + head + `, "settingsSeqNo": 0, "settings": [{}, {}]}`)),
			"extensionGoalStates[0]: Single-config extension includes multiple settings (extension: A)"},
		{"null settings", string(vmsDoc(`{` + head + `, "settingsSeqNo": 0, "settings": [null]}`)), "extensionGoalStates[0]: settings[0]: got null"},
		{"protected settings without thumbprint", string(vmsDoc(`{` + head + `, "settingsSeqNo": 0, "settings": [{"protectedSettings": "` + secret + `"}]}`)),
			"extensionGoalStates[0]: settings[0]: The certificate thumbprint for protected settings is missing (extension: A)"},
		{"protected settings not a string", string(vmsDoc(`{` + head + `, "settingsSeqNo": 0, "settings": [{"protectedSettings": 12345678901234567890, "protectedSettingsCertThumbprint": "T"}]}`)),
			"settings[0]: protectedSettings: got a JSON number, want a string (extension: A)"},
		{"public settings not a string", string(vmsDoc(`{` + head + `, "settingsSeqNo": 0, "settings": [{"publicSettings": {"a": 1}}]}`)),
			"extensionGoalStates.settings.publicSettings: got a JSON object, want a string"},
		{"public settings not JSON", string(vmsDoc(`{` + head + `, "settingsSeqNo": 0, "settings": [{"publicSettings": "{a"}]}`)),
			"settings[0]: publicSettings: the string is not a JSON document (extension: A): invalid JSON at offset 2"},
		{"missing settingsSeqNo", string(vmsDoc(`{` + head + `, "settings": [{}]}`)), "settings[0]: missing settingsSeqNo (extension: A)"},
		{"seqNo not an integer", string(vmsDoc(`{` + head + `, "settingsSeqNo": 1.5, "settings": [{}]}`)),
			"extensionGoalStates.settingsSeqNo: got a JSON number, want an integer"},
		{"multi-config without extensionName", string(vmsDoc(`{` + head + `, "isMultiConfig": true, "settings": [{"seqNo": 0, "extensionState": "enabled"}]}`)),
			"settings[0]: missing extensionName (extension: A)"},
		{"multi-config without seqNo", string(vmsDoc(`{` + head + `, "isMultiConfig": true, "settings": [{"extensionName": "E", "extensionState": "enabled"}]}`)),
			"settings[0]: missing seqNo (extension: A)"},
		{"multi-config without extensionState", string(vmsDoc(`{` + head + `, "isMultiConfig": true, "settings": [{"extensionName": "E", "seqNo": 0}]}`)),
			"settings[0]: missing extensionState (extension: A)"},
		{"single-config with two dependsOn", string(vmsDoc(`{` + head + `, "dependsOn": [{"dependencyLevel": 1}, {"dependencyLevel": 2}]}`)),
			"dependsOn: dependsOn should be an array with exactly one item for single-config extensions (A) (got 2)"},
		{"dependsOn without level", string(vmsDoc(`{` + head + `, "dependsOn": [{}]}`)), "dependsOn: missing dependencyLevel (extension: A)"},
		{"null dependsOn element", string(vmsDoc(`{` + head + `, "dependsOn": [null]}`)), "dependsOn: element 0 is null"},
		{"multi-config dependency on an unknown extension", string(vmsDoc(`{` + head + `, "isMultiConfig": true,
			"settings": [{"extensionName": "E1", "seqNo": 0, "extensionState": "enabled"}], "dependsOn": [{"name": "E9", "dependencyLevel": 1}]}`)),
			"dependsOn: [0]: Dependency 'E9' does not correspond to any of the settings in the extension A (settings: E1)"},
		{"multi-config dependency without a level", string(vmsDoc(`{` + head + `, "isMultiConfig": true,
			"settings": [{"extensionName": "E1", "seqNo": 0, "extensionState": "enabled"}], "dependsOn": [{"name": "E1"}]}`)),
			"dependsOn: [0]: missing dependencyLevel (extension: A)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := extconfig.ParseVMSettings([]byte(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "parsing vmSettings: ") {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
			for _, s := range []string{secret, "12345678901234567890"} {
				if strings.Contains(err.Error(), s) {
					t.Errorf("err = %v quotes the protected settings", err)
				}
			}
		})
	}
}

// TestParseVMSettingsCaseInsensitive checks that every key the parser
// reads is found in any case: the fixture with all keys upper-cased, and
// with all lower-cased, parses to the same goal state.
func TestParseVMSettingsCaseInsensitive(t *testing.T) {
	doc := fixtures.Read(t, "hostgaplugin/vm_settings.json")
	want, err := extconfig.ParseVMSettings(doc)
	if err != nil {
		t.Fatal(err)
	}
	for _, fold := range []func(string) string{strings.ToUpper, strings.ToLower} {
		var v any
		d := json.NewDecoder(bytes.NewReader(doc))
		d.UseNumber() // the ticks do not fit a float64
		if err := d.Decode(&v); err != nil {
			t.Fatal(err)
		}
		folded, err := json.Marshal(foldKeys(v, fold))
		if err != nil {
			t.Fatal(err)
		}
		got, err := extconfig.ParseVMSettings(folded)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("mismatch (-fixture +folded keys):\n%s", diff)
		}
	}
}

// foldKeys applies fold to every object key in v (publicSettings are
// strings, so their keys stay).
func foldKeys(v any, fold func(string) string) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[fold(k)] = foldKeys(e, fold)
		}
		return out
	case []any:
		for i, e := range v {
			v[i] = foldKeys(e, fold)
		}
	}
	return v
}
