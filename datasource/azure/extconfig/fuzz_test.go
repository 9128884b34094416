package extconfig_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/azinit/azinit/datasource/azure/extconfig"
	"github.com/azinit/azinit/internal/fixtures"
)

// protectedRE finds protected settings written as JSON strings, in any key
// case (vmSettings) and inside XML text (ExtensionsConfig).
var protectedRE = regexp.MustCompile(`(?i)"protectedSettings"\s*:\s*"([^"\\]*)"`)

// checkSecrets fails when err or a rendering of gs quotes a protected
// setting of data. Short or repeated values collide with the parser's own
// words or with other fields, so only those found once, of 6 bytes or
// more, are looked for.
func checkSecrets(t *testing.T, data []byte, gs *extconfig.ExtensionsGoalState, err error) {
	var secrets []string
	for _, m := range protectedRE.FindAllSubmatch(data, -1) {
		if len(m[1]) >= 6 && bytes.Count(data, m[1]) == 1 {
			secrets = append(secrets, string(m[1]))
		}
	}
	var texts []string
	if err != nil {
		texts = append(texts, err.Error())
	} else {
		j, jerr := json.Marshal(gs)
		if jerr != nil {
			t.Fatal(jerr)
		}
		texts = append(texts, fmt.Sprintf("%+v", gs), fmt.Sprintf("%#v", gs), string(j))
	}
	for _, s := range secrets {
		for _, text := range texts {
			if strings.Contains(text, s) {
				t.Fatalf("protected settings %q in %.500s", s, text)
			}
		}
	}
}

func FuzzParseExtensionsConfig(f *testing.F) {
	f.Add(fixtures.Read(f, "wire/ext_conf.xml"))
	f.Add(fixtures.Read(f, "hostgaplugin/ext_conf.xml"))
	f.Add(ecDoc(plugin("A", "1.0", "enabled"), `<Plugin name="a" version="1.0"><DependsOn dependencyLevel="2" name="E1"/>`+
		`<ExtensionRuntimeSettings seqNo="5" name="E1" state="Disabled">`+settings(`{"protectedSettings":"c2VjcmV0LXByb3RlY3RlZA","publicSettings":{}}`)+
		`</ExtensionRuntimeSettings><ExtensionRuntimeSettings seqNo="x">{</ExtensionRuntimeSettings></Plugin>`))
	f.Add([]byte(`<Extensions><StatusUploadBlob statusBlobType="PageBlob">u</StatusUploadBlob><InVMGoalStateMetaData createdOnTicks="1e17"/></Extensions>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		gs, err := extconfig.ParseExtensionsConfig(data)
		checkSecrets(t, data, gs, err)
	})
}

func FuzzParseVMSettings(f *testing.F) {
	f.Add(fixtures.Read(f, "hostgaplugin/vm_settings.json"))
	f.Add(vmsDoc(`{"name": "A", "version": "1.0", "state": "enabled", "isMultiConfig": true, "settings": [
		{"publicSettings": "{}", "seqNo": "1", "extensionName": "E1", "extensionState": "enabled", "protectedSettings": "c2VjcmV0LXByb3RlY3RlZA"}],
		"dependsOn": [{"name": "E1", "dependencyLevel": 2}]}`))
	f.Add([]byte(`{"statusUploadBlob": {"value": null}, "extensionsLastModifiedTickCount": "-1", "onHold": "TRUE", "ſtate": 1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		gs, err := extconfig.ParseVMSettings(data)
		checkSecrets(t, data, gs, err)
	})
}

func FuzzParseManifest(f *testing.F) {
	f.Add(fixtures.Read(f, "wire/manifest.xml"), "1.0")
	f.Add(fixtures.Read(f, "wire/ga_manifest.xml"), "9.9")
	f.Fuzz(func(t *testing.T, data []byte, requested string) {
		m, err := extconfig.ParseManifest(data)
		if err != nil {
			return
		}
		for i, p := range m.Packages {
			if i > 0 && mustParse(t, m.Packages[i-1].Version).Compare(mustParse(t, p.Version)) > 0 {
				t.Fatalf("packages out of order: %s before %s", m.Packages[i-1].Version, p.Version)
			}
			if got, err := m.Select(p.Version); err != nil {
				t.Fatalf("Select(%q) of a listed version: %v", p.Version, err)
			} else if !mustParse(t, p.Version).Matches(mustParse(t, got.Version)) {
				t.Fatalf("Select(%q) = %s, which it does not match", p.Version, got.Version)
			}
			if _, ok := m.Lookup(p.Version); !ok {
				t.Fatalf("Lookup(%q) of a listed version failed", p.Version)
			}
		}
		if p, err := m.Select(requested); err == nil {
			if v, _ := extconfig.ParseVersion(requested); !v.Matches(mustParse(t, p.Version)) {
				t.Fatalf("Select(%q) = %s, which it does not match", requested, p.Version)
			}
		}
	})
}

func mustParse(t *testing.T, s string) extconfig.Version {
	v, err := extconfig.ParseVersion(s)
	if err != nil {
		t.Fatalf("ParseVersion(%q): %v", s, err)
	}
	return v
}

func FuzzVersion(f *testing.F) {
	for _, s := range [][2]string{{"1.0", "1.0.0"}, {"2.1.6", "2.1.6.1"}, {"1.0-beta2", "1.0rc"}, {"01.1", "1.0.alpha"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		v, errV := extconfig.ParseVersion(a)
		w, errW := extconfig.ParseVersion(b)
		if errV != nil || errW != nil {
			return
		}
		if v.String() != a || v.Compare(v) != 0 || !v.Matches(v) {
			t.Fatalf("%q: String %q, Compare to itself %d, Matches itself %v", a, v.String(), v.Compare(v), v.Matches(v))
		}
		if v.Compare(w) != -w.Compare(v) {
			t.Fatalf("Compare(%q, %q) = %d but Compare(%q, %q) = %d", a, b, v.Compare(w), b, a, w.Compare(v))
		}
		// Matching each other means the same numbers; only a pre-release
		// tag can then tell them apart.
		if v.Matches(w) && w.Matches(v) && v.Compare(w) != 0 && strings.Trim(a+b, "0123456789.") == "" {
			t.Fatalf("%q and %q match each other but differ", a, b)
		}
	})
}

func FuzzParseArtifactsProfile(f *testing.F) {
	f.Add(fixtures.Read(f, "wire/in_vm_artifacts_profile.json"))
	f.Add([]byte(`{"onHold": "False"}` + "\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = extconfig.ParseArtifactsProfile(data)
	})
}

func FuzzParseHandlerManifest(f *testing.F) {
	f.Add(fixtures.Read(f, "ext/handler_manifest/valid_manifest.json"))
	f.Add([]byte(`[{"handlerManifest": {"enableCommand": "/e", "updateMode": "UpdateWithoutInstall", "reportHeartbeat": "TRUE"},
		"resourceLimits": {"cpuQuotaPercentage": "50", "services": [{"name": "s", "cpuQuotaPercentage": 2.0}]}, "signingInfo": {"type": "t"}}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := extconfig.ParseHandlerManifest(data)
		if err != nil {
			return
		}
		for _, op := range []extconfig.Operation{extconfig.OpInstall, extconfig.OpUninstall, extconfig.OpUpdate, extconfig.OpEnable, extconfig.OpDisable} {
			if cmd, err := m.Command(op); err == nil && (cmd == "" || cmd[0] == '/') {
				t.Fatalf("Command(%s) = %q", op, cmd)
			}
		}
	})
}

func FuzzParseStatus(f *testing.F) {
	f.Add(fixtures.Read(f, "ext/sample-status.json"))
	f.Add([]byte(`[{"version": "1.0", "status": {"status": "warning", "code": "7", "formattedMessage": {"lang": "en", "message": "m"},
		"substatus": [null, {"name": "n", "status": "error", "code": 1.0}]}}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := extconfig.ParseStatus(data)
		if err != nil || s == nil {
			return
		}
		if s.Status != extconfig.StatusTransitioning && s.Status != extconfig.StatusWarning && !s.Status.Terminal() {
			t.Fatalf("status %q", s.Status)
		}
		if s.Truncated && utf8.RuneCountInString(s.Message) > 1024+len(" ... [TRUNCATED]") {
			t.Fatalf("truncated message of %d characters", utf8.RuneCountInString(s.Message))
		}
	})
}

func FuzzParseHeartbeat(f *testing.F) {
	f.Add([]byte(`[{"version": 1.0, "heartbeat": {"status": "Ready", "code": 0, "formattedMessage": {"lang": "en-US", "message": "ok"}}}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = extconfig.ParseHeartbeat(data)
	})
}

func FuzzParseEvent(f *testing.F) {
	f.Add(fixtures.Read(f, "ext/event.json"))
	f.Add([]byte(`{"eventId": "4", "providerId": "P", "parameters": [{"name": "Value", "value": 1.5e3}, {"name": "B", "value": false}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := extconfig.ParseEvent(data)
		if err != nil {
			return
		}
		for _, p := range e.Parameters {
			switch p.Type {
			case extconfig.ParamString, extconfig.ParamUint64, extconfig.ParamBool, extconfig.ParamFloat64:
			default:
				t.Fatalf("parameter %q of type %q", p.Name, p.Type)
			}
		}
	})
}
