package extconfig_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/azinit/azinit/datasource/azure/extconfig"
	"github.com/azinit/azinit/internal/fixtures"
	"github.com/google/go-cmp/cmp"
)

func TestParseExtensionsConfigFixtures(t *testing.T) {
	for _, tc := range []struct {
		fixture, golden string
		// protected are the expected protectedSettings, per handler and
		// settings ("" for none); they are redacted in the golden files.
		protected [][]string
	}{
		{
			fixture: "wire/ext_conf.xml", golden: "wire_ext_conf.golden.json",
			protected: [][]string{{"MIICWgYJK"}},
		},
		{
			fixture: "hostgaplugin/ext_conf.xml", golden: "hostgaplugin_ext_conf.golden.json",
			protected: [][]string{
				{"MIIBsAYJKoZIhvcNAQcDoIIBoTCCAZ0CAQAxggFpMIIBZQIBADBNMDkxNzA1BgoJkiaJk/Microsoft.Azure.Monitor.AzureMonitorLinuxAgent=="},
				{"MIIBsAYJKoZIhvcNAQcDoIIBoTCCAZ0CAQAxggFpMIIBZQIBADBNMDkxNzA1BgoJkiaJk/Microsoft.Azure.Security.Monitoring.AzureSecurityLinuxAgent=="},
				{""},
				{"", "", ""},
				{"MIIBsAYJKoZIhvcNAQcDoIIBoTCCAZ0CAQAxggFpddesZQewdDBgegkxNzA1BgoJkgergres/Microsoft.OSTCExtensions.VMAccessForLinux=="},
			},
		},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			gs, err := extconfig.ParseExtensionsConfig(fixtures.Read(t, tc.fixture))
			if err != nil {
				t.Fatal(err)
			}
			golden(t, tc.golden, gs)
			if diff := cmp.Diff(tc.protected, revealAll(gs)); diff != "" {
				t.Errorf("protected settings (-want +got):\n%s", diff)
			}
		})
	}
}

// revealAll lists the protected settings of every handler's settings.
func revealAll(gs *extconfig.ExtensionsGoalState) [][]string {
	var out [][]string
	for _, h := range gs.Handlers {
		var ps []string
		for _, s := range h.Settings {
			ps = append(ps, s.ProtectedSettings.Reveal())
		}
		out = append(out, ps)
	}
	return out
}

// TestParseExtensionsConfigHandlers covers the rules that make a handler
// invalid (§9) and those that do not.
func TestParseExtensionsConfigHandlers(t *testing.T) {
	const pub = `{"publicSettings":{"k":"v"}}`
	base := func(invalid string, s ...extconfig.Settings) extconfig.Handler {
		return extconfig.Handler{
			Name: "A", Version: "1.0", State: "enabled",
			Location: "https://l/m.xml", FailoverLocation: "https://f/m.xml",
			Settings: s, Invalid: invalid,
		}
	}
	enabled := func(name string, seqNo, level int, public string) extconfig.Settings {
		s := extconfig.Settings{Name: name, SeqNo: seqNo, State: "enabled", DependencyLevel: level}
		if public != "" {
			s.PublicSettings = json.RawMessage(public)
		}
		return s
	}
	for _, tc := range []struct {
		name              string
		plugins, settings string
		want              extconfig.Handler
	}{
		{
			name:     "single-config",
			plugins:  plugin("A", "1.0", "enabled"),
			settings: `<Plugin name="A" version="1.0"><RuntimeSettings seqNo="3">` + settings(pub) + `</RuntimeSettings></Plugin>`,
			want:     base("", enabled("A", 3, 0, `{"k":"v"}`)),
		},
		{
			name:     "no settings",
			plugins:  plugin("A", "1.0", "enabled"),
			settings: `<Plugin name="B" version="1.0"><RuntimeSettings seqNo="3">` + settings(pub) + `</RuntimeSettings></Plugin>`,
			want:     base(""),
		},
		{
			name:     "settings matched by name in any case",
			plugins:  plugin("A", "1.0", "enabled"),
			settings: `<Plugin name="a" version="1.0"><RuntimeSettings seqNo="0">` + settings(pub) + `</RuntimeSettings></Plugin>`,
			want:     base("", enabled("A", 0, 0, `{"k":"v"}`)),
		},
		{
			name:     "settings without RuntimeSettings",
			plugins:  plugin("A", "1.0", "enabled"),
			settings: `<Plugin name="A" version="1.0"></Plugin>`,
			want:     base(""),
		},
		{
			name:    "empty state",
			plugins: `<Plugin name="A" version="1.0" location="https://l/m.xml" />`,
			want:    extconfig.Handler{Name: "A", Version: "1.0", Invalid: "Received empty Extensions.Plugins.Plugin.state, failing Handler"},
		},
		{
			name:     "unknown state",
			plugins:  plugin("A", "1.0", "Enabled"),
			settings: `<Plugin name="A" version="1.0"><RuntimeSettings seqNo="0">` + settings(pub) + `</RuntimeSettings></Plugin>`,
			want: func() extconfig.Handler {
				h := base("Unknown ext handler state:Enabled", enabled("A", 0, 0, `{"k":"v"}`))
				h.State = "Enabled"
				return h
			}(),
		},
		{
			name:     "disabled and uninstall are handler states",
			plugins:  plugin("A", "1.0", "uninstall"),
			settings: `<Plugin name="A" version="1.0"><RuntimeSettings seqNo="0">` + settings(pub) + `</RuntimeSettings></Plugin>`,
			want: func() extconfig.Handler {
				// A single-config handler's settings stay enabled
				// whatever the handler's state, as with the platform's agent.
				h := base("", enabled("A", 0, 0, `{"k":"v"}`))
				h.State = "uninstall"
				return h
			}(),
		},
		{
			name:    "version mismatch",
			plugins: plugin("A", "1.0", "enabled"),
			settings: `<Plugin name="A" version="1.1"><RuntimeSettings seqNo="0">{}</RuntimeSettings></Plugin>` +
				`<Plugin name="A" version="1.0"><RuntimeSettings seqNo="0">{}</RuntimeSettings></Plugin>`,
			want: base("Extension PluginSettings Version Mismatch! Expected PluginSettings version: 1.0 for Extension: A but found versions: (1.1, 1.0)"),
		},
		{
			name:    "duplicate settings",
			plugins: plugin("A", "1.0", "enabled"),
			settings: `<Plugin name="A" version="1.0"><RuntimeSettings seqNo="0">{}</RuntimeSettings></Plugin>` +
				`<Plugin name="A" version="1.0"><RuntimeSettings seqNo="1">{}</RuntimeSettings></Plugin>`,
			want: base("Multiple plugin settings found for the same extension: A and version: 1.0 (Expected: 1; Available: 2)"),
		},
		{
			name:    "RuntimeSettings and ExtensionRuntimeSettings",
			plugins: plugin("A", "1.0", "enabled"),
			settings: `<Plugin name="A" version="1.0"><RuntimeSettings seqNo="0">{}</RuntimeSettings>` +
				`<ExtensionRuntimeSettings seqNo="0" name="E">{}</ExtensionRuntimeSettings></Plugin>`,
			want: base("Both RuntimeSettings and ExtensionRuntimeSettings found for the same extension: A and version: 1.0"),
		},
		{
			name:    "two RuntimeSettings",
			plugins: plugin("A", "1.0", "enabled"),
			settings: `<Plugin name="A" version="1.0"><RuntimeSettings seqNo="0">{}</RuntimeSettings>` +
				`<RuntimeSettings seqNo="1">{}</RuntimeSettings></Plugin>`,
			want: base("Multiple RuntimeSettings found for the same extension: A and version: 1.0 (Expected: 1; Available: 2)"),
		},
		{
			name:    "two DependsOn for single-config",
			plugins: plugin("A", "1.0", "enabled"),
			settings: `<Plugin name="A" version="1.0"><DependsOn dependencyLevel="1"/><DependsOn dependencyLevel="2"/>` +
				`<RuntimeSettings seqNo="0">{}</RuntimeSettings></Plugin>`,
			want: base("Extension Handler can only have a single dependsOn node for Single config extensions. Found: 2"),
		},
		{
			name:    "dependency level",
			plugins: plugin("A", "1.0", "enabled"),
			settings: `<Plugin name="A" version="1.0"><DependsOn dependencyLevel="2"><DependsOnExtension handler="B"/></DependsOn>` +
				`<RuntimeSettings seqNo="0">` + settings(pub) + `</RuntimeSettings></Plugin>`,
			want: base("", enabled("A", 0, 2, `{"k":"v"}`)),
		},
		{
			name:    "unreadable dependency level is 0",
			plugins: plugin("A", "1.0", "enabled"),
			settings: `<Plugin name="A" version="1.0"><DependsOn dependencyLevel="high"/>` +
				`<RuntimeSettings seqNo="0">` + settings(pub) + `</RuntimeSettings></Plugin>`,
			want: base("", enabled("A", 0, 0, `{"k":"v"}`)),
		},
		{
			name:     "missing seqNo",
			plugins:  plugin("A", "1.0", "enabled"),
			settings: `<Plugin name="A" version="1.0"><RuntimeSettings>` + settings(pub) + `</RuntimeSettings></Plugin>`,
			want:     base("SeqNo not specified for the Extension: A"),
		},
		{
			name:     "seqNo not an integer",
			plugins:  plugin("A", "1.0", "enabled"),
			settings: `<Plugin name="A" version="1.0"><RuntimeSettings seqNo="one">` + settings(pub) + `</RuntimeSettings></Plugin>`,
			want:     base("SeqNo is not an integer for the Extension: A"),
		},
		{
			name:     "invalid JSON keeps name and seqNo",
			plugins:  plugin("A", "1.0", "enabled"),
			settings: `<Plugin name="A" version="1.0"><DependsOn dependencyLevel="1"/><RuntimeSettings seqNo="4">{"runtimeSettings":[</RuntimeSettings></Plugin>`,
			want:     base("", enabled("A", 4, 1, "")),
		},
		{
			name:     "empty JSON keeps name and seqNo",
			plugins:  plugin("A", "1.0", "enabled"),
			settings: `<Plugin name="A" version="1.0"><RuntimeSettings seqNo="4">  </RuntimeSettings></Plugin>`,
			want:     base("", enabled("A", 4, 0, "")),
		},
		{
			name:     "runtimeSettings missing",
			plugins:  plugin("A", "1.0", "enabled"),
			settings: `<Plugin name="A" version="1.0"><RuntimeSettings seqNo="0">{"settings":[]}</RuntimeSettings></Plugin>`,
			want:     base("Invalid runtime settings for the Extension: A: runtimeSettings: got nothing, want an array"),
		},
		{
			name:     "settings not an object",
			plugins:  plugin("A", "1.0", "enabled"),
			settings: `<Plugin name="A" version="1.0"><RuntimeSettings seqNo="0">[]</RuntimeSettings></Plugin>`,
			want:     base("Invalid runtime settings for the Extension: A: the settings: got a JSON array, want an object"),
		},
		{
			name:     "handlerSettings not an object",
			plugins:  plugin("A", "1.0", "enabled"),
			settings: `<Plugin name="A" version="1.0"><RuntimeSettings seqNo="0">{"runtimeSettings":[{"handlerSettings":"x"}]}</RuntimeSettings></Plugin>`,
			want:     base("Invalid runtime settings for the Extension: A: runtimeSettings[0].handlerSettings: got a JSON string, want an object"),
		},
		{
			name:     "protectedSettings not a string",
			plugins:  plugin("A", "1.0", "enabled"),
			settings: `<Plugin name="A" version="1.0"><RuntimeSettings seqNo="0">` + settings(`{"protectedSettings":12345678}`) + `</RuntimeSettings></Plugin>`,
			want:     base("Invalid runtime settings for the Extension: A: runtimeSettings[0].handlerSettings.protectedSettings: got a JSON number, want a string"),
		},
		{
			name:     "empty runtimeSettings",
			plugins:  plugin("A", "1.0", "enabled"),
			settings: `<Plugin name="A" version="1.0"><RuntimeSettings seqNo="0">{"runtimeSettings":[]}</RuntimeSettings></Plugin>`,
			want:     base(""),
		},
		{
			name:    "two runtimeSettings elements, keys matched exactly, null public settings",
			plugins: plugin("A", "1.0", "enabled"),
			settings: `<Plugin name="A" version="1.0"><RuntimeSettings seqNo="1">{"runtimeSettings":[` +
				`{"handlerSettings":{"publicSettings":null,"PublicSettings":{"x":1}}},` +
				`{"handlerSettings":{"publicSettings":[1, 2]}}]}</RuntimeSettings></Plugin>`,
			want: base("", enabled("A", 1, 0, ""), enabled("A", 1, 0, "[1,2]")),
		},
		{
			name:    "protected settings and thumbprint",
			plugins: plugin("A", "1.0", "enabled"),
			settings: `<Plugin name="A" version="1.0"><RuntimeSettings seqNo="0">` +
				settings(`{"protectedSettingsCertThumbprint":"TP","protectedSettings":"c2VjcmV0"}`) + `</RuntimeSettings></Plugin>`,
			want: base("", extconfig.Settings{Name: "A", State: "enabled", ProtectedSettingsCertThumbprint: "TP", ProtectedSettings: extconfig.NewSecret("c2VjcmV0")}),
		},
		{
			name:    "multi-config",
			plugins: plugin("A", "1.0", "enabled"),
			settings: `<Plugin name="A" version="1.0">` +
				`<DependsOn dependencyLevel="2" name="E1"><DependsOnExtension extension="E2" handler="A"/></DependsOn>` +
				`<DependsOn dependencyLevel="x" name="E2"/>` +
				`<ExtensionRuntimeSettings seqNo="5" name="E1" state="enabled">` + settings(pub) + `</ExtensionRuntimeSettings>` +
				`<ExtensionRuntimeSettings seqNo="6" name="E2" state="Disabled">` + settings(pub) + `</ExtensionRuntimeSettings>` +
				`<ExtensionRuntimeSettings seqNo="7" name="E3">not json</ExtensionRuntimeSettings></Plugin>`,
			want: func() extconfig.Handler {
				h := base("", enabled("E1", 5, 2, `{"k":"v"}`), enabled("E2", 6, 0, `{"k":"v"}`), enabled("E3", 7, 0, ""))
				h.MultiConfig = true
				h.Settings[1].State = "disabled"
				return h
			}(),
		},
		{
			name:    "multi-config DependsOn without name",
			plugins: plugin("A", "1.0", "enabled"),
			settings: `<Plugin name="A" version="1.0"><DependsOn dependencyLevel="2"/>` +
				`<ExtensionRuntimeSettings seqNo="5" name="E1">` + settings(pub) + `</ExtensionRuntimeSettings></Plugin>`,
			want: base("No Name not specified for DependsOn object in ExtensionRuntimeSettings for MultiConfig!"),
		},
		{
			name:    "multi-config extension without name keeps the ones before",
			plugins: plugin("A", "1.0", "enabled"),
			settings: `<Plugin name="A" version="1.0">` +
				`<ExtensionRuntimeSettings seqNo="5" name="E1">` + settings(pub) + `</ExtensionRuntimeSettings>` +
				`<ExtensionRuntimeSettings seqNo="6">` + settings(pub) + `</ExtensionRuntimeSettings></Plugin>`,
			want: func() extconfig.Handler {
				h := base("Extension Name not specified for ExtensionRuntimeSettings for MultiConfig!", enabled("E1", 5, 0, `{"k":"v"}`))
				h.MultiConfig = true
				return h
			}(),
		},
		{
			name:    "multi-config extension without seqNo",
			plugins: plugin("A", "1.0", "enabled"),
			settings: `<Plugin name="A" version="1.0">` +
				`<ExtensionRuntimeSettings name="E1">` + settings(pub) + `</ExtensionRuntimeSettings></Plugin>`,
			want: func() extconfig.Handler {
				h := base("SeqNo not specified for the Extension: E1")
				h.MultiConfig = true
				return h
			}(),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gs, err := extconfig.ParseExtensionsConfig(ecDoc(tc.plugins, tc.settings))
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

func TestParseExtensionsConfigDocument(t *testing.T) {
	const ticks = "637726657706205217"
	created := time.Date(2021, 11, 16, 13, 22, 50, 620521700, time.UTC)
	for _, tc := range []struct {
		name string
		doc  string
		want extconfig.ExtensionsGoalState
	}{
		{
			name: "empty",
			doc:  `<Extensions/>`,
			want: extconfig.ExtensionsGoalState{},
		},
		{
			name: "page blob, metadata",
			doc: `<Extensions><StatusUploadBlob statusBlobType="PageBlob">
				https://s/status?a=1&amp;sig=2
			</StatusUploadBlob><InVMGoalStateMetaData inSvdSeqNo="7" createdOnTicks="` + ticks + `" activityId="act" correlationId="" /></Extensions>`,
			want: extconfig.ExtensionsGoalState{
				StatusUploadBlob: "https://s/status?a=1&sig=2", StatusBlobType: extconfig.PageBlob,
				InSvdSeqNo: "7", CreatedOn: created, ActivityID: "act",
			},
		},
		{
			name: "blob type is case-sensitive; unreadable ticks",
			doc:  `<Extensions><StatusUploadBlob statusBlobType="pageblob">u</StatusUploadBlob><InVMGoalStateMetaData createdOnTicks="soon"/></Extensions>`,
			want: extconfig.ExtensionsGoalState{StatusUploadBlob: "u"},
		},
		{
			name: "ticks out of range",
			doc:  `<Extensions><InVMGoalStateMetaData createdOnTicks="3155378976000000000"/></Extensions>`,
			want: extconfig.ExtensionsGoalState{},
		},
		{
			name: "missing blob type",
			doc:  `<Extensions><StatusUploadBlob>u</StatusUploadBlob></Extensions>`,
			want: extconfig.ExtensionsGoalState{StatusUploadBlob: "u"},
		},
		{
			name: "GA families, required features, artifacts profile, namespaces",
			doc: `<Extensions xmlns:x="urn:x"><GuestAgentExtension><GAFamilies><x:GAFamily><Name>Prod</Name><Version>9.9.9.10</Version>` +
				`<FromVersion>9.9.9.9</FromVersion><IsVersionFromRSM>True</IsVersionFromRSM><IsVMEnabledForRSMUpgrades>false</IsVMEnabledForRSMUpgrades>` +
				`<Uris><Uri>https://a</Uri><Uri> https://b </Uri></Uris></x:GAFamily></GAFamilies><Location>westus</Location></GuestAgentExtension>` +
				`<RequiredFeatures><RequiredFeature><Name>MultipleExtensionsPerHandler</Name><Value>1.0</Value></RequiredFeature><RequiredFeature/></RequiredFeatures>` +
				`<InVMArtifactsProfileBlob>https://p?sig=1</InVMArtifactsProfileBlob></Extensions>`,
			want: extconfig.ExtensionsGoalState{
				GAFamilies: []extconfig.GAFamily{{
					Name: "Prod", Version: "9.9.9.10", FromVersion: "9.9.9.9", IsVersionFromRSM: true,
					URIs: []string{"https://a", "https://b"},
				}},
				Location:                 "westus",
				RequiredFeatures:         []string{"MultipleExtensionsPerHandler", ""},
				InVMArtifactsProfileBlob: "https://p?sig=1",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gs, err := extconfig.ParseExtensionsConfig([]byte(tc.doc))
			if err != nil {
				t.Fatal(err)
			}
			want := withDefaults(tc.want, extconfig.ChannelWireServer)
			want.Source = extconfig.SourceFabric
			if diff := cmp.Diff(&want, gs); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseExtensionsConfigErrors(t *testing.T) {
	const secret = "c2VjcmV0LXByb3RlY3RlZA"
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"empty", ``, "no <Extensions> element"},
		{"not XML", `{"runtimeSettings": []}`, "no <Extensions> element"},
		{"wrong root", `<GoalState/>`, "expected element type <Extensions> but have <GoalState>"},
		{"unclosed", `<Extensions><Plugins>`, "XML syntax error on line 1: unexpected EOF"},
		{"secret in a broken element", `<Extensions><PluginSettings><Plugin name="A" version="1"><RuntimeSettings seqNo="0">` +
			`{"runtimeSettings":[{"handlerSettings":{"protectedSettings":"<` + secret + `>"}}]}</RuntimeSettings></Plugin></PluginSettings></Extensions>`,
			"XML syntax error on line 1: mismatched end element"},
		{"secret in an entity", `<Extensions><PluginSettings><Plugin name="A" version="1"><RuntimeSettings seqNo="0">` +
			`{"runtimeSettings":[{"handlerSettings":{"protectedSettings":"&` + secret + `"}}]}</RuntimeSettings></Plugin></PluginSettings></Extensions>`,
			"XML syntax error on line 1: invalid character entity"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := extconfig.ParseExtensionsConfig([]byte(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "parsing ExtensionsConfig: ") {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("err = %v quotes the protected settings", err)
			}
		})
	}
}

func TestManifestURIs(t *testing.T) {
	gs, err := extconfig.ParseExtensionsConfig(ecDoc(`<Plugin name="A" version="1.0" state="enabled" failoverlocation="https://f">`+
		`<additionalLocations><additionalLocation>https://x</additionalLocation><additionalLocation>https://y</additionalLocation></additionalLocations></Plugin>`, ""))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"https://f", "https://x", "https://y"}, gs.Handlers[0].ManifestURIs()); diff != "" {
		t.Errorf("ManifestURIs mismatch (-want +got):\n%s", diff)
	}
}
