package extconfig_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/azinit/azinit/datasource/azure/extconfig"
	"github.com/azinit/azinit/internal/fixtures"
	"github.com/google/go-cmp/cmp"
)

func TestParseArtifactsProfile(t *testing.T) {
	p, err := extconfig.ParseArtifactsProfile(fixtures.Read(t, "wire/in_vm_artifacts_profile.json"))
	if err != nil || !p.OnHold {
		t.Fatalf("fixture: %+v, %v; want on hold", p, err)
	}
	for _, tc := range []struct {
		doc    string
		onHold bool
		err    string
	}{
		{doc: `{"onHold": false}`},
		{doc: `{"onHold": "TRUE"}`, onHold: true},
		{doc: `{"onHold": "false"}`},
		{doc: `{"onHold": null, "profileId": "p"}`},
		{doc: `{"OnHold": true}`}, // keys are matched exactly
		{doc: ``},
		{doc: "{\"onHold\": true}   \x00\x00\x00", onHold: true}, // page blob padding
		{doc: `{"onHold": "yes"}`, err: "onHold: got a JSON string, want true or false"},
		{doc: `{"onHold": 1}`, err: "onHold: got a JSON number, want true or false"},
		{doc: `[true]`, err: "got a JSON array, want an object"},
		{doc: `{"onHold": true`, err: "invalid JSON"},
	} {
		p, err := extconfig.ParseArtifactsProfile([]byte(tc.doc))
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseArtifactsProfile(%q) = %+v, %v; want an error containing %q", tc.doc, p, err, tc.err)
			}
		case err != nil || p.OnHold != tc.onHold:
			t.Errorf("ParseArtifactsProfile(%q) = %+v, %v; want OnHold %v", tc.doc, p, err, tc.onHold)
		}
	}
}

func TestParseHandlerManifest(t *testing.T) {
	m, err := extconfig.ParseHandlerManifest(fixtures.Read(t, "ext/handler_manifest/valid_manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := &extconfig.HandlerManifest{
		Name:           "ExampleHandlerLinux",
		InstallCommand: "install_cmd", UninstallCommand: "uninstall_cmd", UpdateCommand: "update_cmd",
		EnableCommand: "enable_cmd", DisableCommand: "disable_cmd",
		ReportHeartbeat: true, ContinueOnUpdateFailure: true, SupportsMultipleExtensions: true, UpdateWithInstall: true,
	}
	if diff := cmp.Diff(want, m); diff != "" {
		t.Errorf("fixture (-want +got):\n%s", diff)
	}

	const full = `[{"name": "X", "version": 1.0, "handlerManifest": {
		"installCommand": "/bin/install.sh", "enableCommand": "//enable.sh arg", "uninstallCommand": "u", "updateCommand": "up",
		"reportHeartbeat": "True", "continueOnUpdateFailure": "yes", "supportsMultipleExtensions": 1,
		"updateMode": "UpdateWithoutInstall", "rebootAfterInstall": false},
		"resourceLimits": {"cpuQuotaPercentage": 50, "memoryQuotaInMB": "100", "services": [{"name": "a.service", "cpuQuotaPercentage": 20}, {"name": "b.service"}]},
		"signingInfo": {"type": "X", "publisher": "P", "version": "1.0.0"}}, {"ignored": true}]`
	m, err = extconfig.ParseHandlerManifest([]byte(full))
	if err != nil {
		t.Fatal(err)
	}
	fifty, hundred, twenty := 50, 100, 20
	want = &extconfig.HandlerManifest{
		Name:           "X",
		InstallCommand: "/bin/install.sh", EnableCommand: "//enable.sh arg", UninstallCommand: "u", UpdateCommand: "up",
		ReportHeartbeat: true, UpdateMode: "UpdateWithoutInstall",
		ResourceLimits: &extconfig.ResourceLimits{
			CPUQuotaPercentage: &fifty, MemoryQuotaInMB: &hundred,
			Services: []extconfig.ServiceLimits{{Name: "a.service", CPUQuotaPercentage: &twenty}, {Name: "b.service"}},
		},
		SigningInfo: &extconfig.SigningInfo{Type: "X", Publisher: "P", Version: "1.0.0"},
	}
	if diff := cmp.Diff(want, m); diff != "" {
		t.Errorf("full manifest (-want +got):\n%s", diff)
	}
	for op, want := range map[extconfig.Operation]string{
		extconfig.OpInstall: "bin/install.sh", extconfig.OpEnable: "enable.sh arg", extconfig.OpUninstall: "u", extconfig.OpUpdate: "up",
	} {
		if got, err := m.Command(op); err != nil || got != want {
			t.Errorf("Command(%s) = %q, %v; want %q", op, got, err, want)
		}
	}
	if _, err := m.Command(extconfig.OpDisable); !errors.Is(err, extconfig.ErrNoCommand) {
		t.Errorf("Command(disable) error = %v, want ErrNoCommand", err)
	}

	for _, tc := range []struct {
		mode string
		want bool
	}{{`"updatewithinstall"`, true}, {`"UpdateWithInstall"`, true}, {`"UpdateWithoutInstall"`, false}, {`""`, false}, {`null`, true}} {
		m, err := extconfig.ParseHandlerManifest([]byte(`[{"handlerManifest": {"updateMode": ` + tc.mode + `}}]`))
		if err != nil || m.UpdateWithInstall != tc.want {
			t.Errorf("updateMode %s: UpdateWithInstall = %v, %v; want %v", tc.mode, m.UpdateWithInstall, err, tc.want)
		}
	}
}

func TestParseHandlerManifestErrors(t *testing.T) {
	for _, tc := range []struct{ doc, want string }{
		{``, "got nothing, want an array"},
		{`{"handlerManifest": {}}`, "got a JSON object, want an array"},
		{`[]`, "the array is empty"},
		{`[null]`, "[0]: got a JSON null, want an object"},
		{`[{"name": "x"}]`, "[0].handlerManifest: got nothing, want an object"},
		{`[{"handlerManifest": null}]`, "[0].handlerManifest: got a JSON null, want an object"},
		{`[{"HandlerManifest": {}}]`, "[0].handlerManifest: got nothing"},
		{`[{"handlerManifest": {"enableCommand": ["a"]}}]`, "[0].handlerManifest.enableCommand: got a JSON array, want a string"},
		{`[{"handlerManifest": {}, "resourceLimits": []}]`, "[0].resourceLimits: got a JSON array, want an object"},
		{`[{"handlerManifest": {}, "resourceLimits": {"cpuQuotaPercentage": "half"}}]`, "[0].resourceLimits.cpuQuotaPercentage: got a JSON string, want an integer"},
		{`[{"handlerManifest": {}, "resourceLimits": {"services": [{"cpuQuotaPercentage": true}]}}]`, "[0].resourceLimits.services[0].cpuQuotaPercentage: got a JSON bool"},
		{`[{"handlerManifest": {}, "signingInfo": "x"}]`, "[0].signingInfo: got a JSON string, want an object"},
		{`[{"handlerManifest": {}`, "invalid JSON"},
	} {
		_, err := extconfig.ParseHandlerManifest([]byte(tc.doc))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "parsing HandlerManifest.json: ") {
			t.Errorf("ParseHandlerManifest(%s) error = %v, want one containing %q", tc.doc, err, tc.want)
		}
	}
}

func TestParseStatusFixture(t *testing.T) {
	b := fixtures.Read(t, "ext/sample-status.json")
	s, err := extconfig.ParseStatus(b)
	if err != nil {
		t.Fatal(err)
	}
	var raw []struct {
		Status struct {
			Substatus []struct{ Name string }
		}
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	want := &extconfig.Status{
		Version: "1.0", TimestampUTC: "2019-06-06T23:52:59Z", Name: "Microsoft.Azure.Extension.VMExtension",
		Operation: "Enable", Status: extconfig.StatusSuccess, Code: 1,
		Message: "Aenean semper nunc nisl, vitae sollicitudin felis consequat at. In lobortis elementum sapien, non commodo odio semper ac.",
		// code "0" as a string, formattedMessage null
		Substatus: []extconfig.Substatus{{Name: raw[0].Status.Substatus[0].Name, Status: extconfig.StatusSuccess}},
	}
	if diff := cmp.Diff(want, s); diff != "" {
		t.Errorf("fixture (-want +got):\n%s", diff)
	}
}

func TestParseStatus(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		want      *extconfig.Status
	}{
		{"empty array", `[]`, nil},
		{"null", `null`, nil},
		{
			"VMAccess style: version and code as strings, substatus without formattedMessage",
			`[{"version": "1.0", "timestampUTC": "t", "status": {"name": "n", "operation": "Enable", "status": "error", "code": "52",
				"formattedMessage": {"lang": "en-US", "message": "m"}, "substatus": [{"name": "ErrorClarification", "status": "error", "code": 3}, null]}}, {"ignored": 1}]`,
			&extconfig.Status{Version: "1.0", TimestampUTC: "t", Name: "n", Operation: "Enable", Status: extconfig.StatusError, Code: 52, Message: "m",
				Substatus: []extconfig.Substatus{{Name: "ErrorClarification", Status: extconfig.StatusError, Code: 3}}},
		},
		{
			"unknown status becomes error; numbers; null substatus",
			`[{"version": 1.0, "status": {"status": "done", "code": 0.0, "configurationAppliedTime": "2019-06-06T23:52:59Z", "substatus": null}}]`,
			&extconfig.Status{Version: "1.0", Status: extconfig.StatusError, ConfigurationAppliedTime: "2019-06-06T23:52:59Z"},
		},
		{
			"status not a string becomes error",
			`[{"status": {"status": 1}}]`,
			&extconfig.Status{Status: extconfig.StatusError},
		},
		{
			"transitioning, null formattedMessage and code",
			`[{"status": {"status": "transitioning", "code": null, "formattedMessage": null, "substatus": []}}]`,
			&extconfig.Status{Status: extconfig.StatusTransitioning},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := extconfig.ParseStatus([]byte(tc.doc))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, s); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseStatusErrors(t *testing.T) {
	for _, tc := range []struct {
		doc, want string
		malformed bool
	}{
		{`[{"status": {"status": "success"}`, "invalid JSON", false},
		{``, "invalid JSON", false},
		{`{"status": {"status": "success"}}`, "the extension status must be an array", true},
		{`[1]`, "[0]: got a JSON number, want an object", true},
		{`[{"version": 1}]`, "Missing status key", true},
		{`[{"status": "success"}]`, "status: got a JSON string, want an object", true},
		{`[{"status": {"code": 0}}]`, "Missing status/status key", true},
		{`[{"status": {"status": "success", "code": "zero"}}]`, "status/code: got a JSON string, want an integer", true},
		{`[{"status": {"status": "success", "formattedMessage": {"lang": "en-US"}}}]`, "Missing status/formattedMessage/message key", true},
		{`[{"status": {"status": "success", "formattedMessage": "done"}}]`, "status/formattedMessage: got a JSON string", true},
		{`[{"status": {"status": "success", "substatus": {}}}]`, "status/substatus: got a JSON object, want an array", true},
		{`[{"status": {"status": "success", "substatus": [{"name": "x"}]}}]`, "Missing substatus[0]/status key", true},
		{`[{"status": {"status": "success", "substatus": [{"status": "Success"}]}}]`, "substatus[0]/status: got a JSON string, want transitioning, warning, error or success", true},
		{`[{"status": {"status": "success", "substatus": [{"status": "success", "formattedMessage": {"message": "m"}}]}}]`, "Missing substatus[0]/formattedMessage/lang key", true},
	} {
		_, err := extconfig.ParseStatus([]byte(tc.doc))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "parsing the extension status: ") {
			t.Errorf("ParseStatus(%s) error = %v, want one containing %q", tc.doc, err, tc.want)
			continue
		}
		if errors.Is(err, extconfig.ErrStatusMalformed) != tc.malformed {
			t.Errorf("ParseStatus(%s) error = %v; matches ErrStatusMalformed: %v, want %v", tc.doc, err, !tc.malformed, tc.malformed)
		}
	}
}

// TestParseStatusTruncation covers the size rules of §17.5 for a file over
// 128 KiB: the message cut to 1024 characters, substatus names and
// messages to 10 KiB each, substatus dropped once the running total
// passes 128 KiB.
func TestParseStatusTruncation(t *testing.T) {
	const suffix = " ... [TRUNCATED]"
	const tenK = 10 * 1024
	sub := func(name, message string) string {
		return fmt.Sprintf(`{"name": %q, "status": "success", "formattedMessage": {"lang": "en-US", "message": %q}}`, name, message)
	}
	doc := func(message string, subs ...string) []byte {
		return []byte(fmt.Sprintf(`[{"status": {"status": "success", "formattedMessage": {"lang": "en-US", "message": %q}, "substatus": [%s]}}]`,
			message, strings.Join(subs, ",")))
	}
	long := strings.Repeat("é", 20*1024) // 2 bytes, 1 character each
	var subs []string
	for range 8 {
		subs = append(subs, sub(long, long))
	}
	s, err := extconfig.ParseStatus(doc(strings.Repeat("m", 5000), subs...))
	if err != nil {
		t.Fatal(err)
	}
	cutLong := strings.Repeat("é", tenK) + suffix
	// 1040 for the message, then 2×10256 per substatus: six fit in
	// 131072, the seventh passes it.
	if !s.Truncated || s.Message != strings.Repeat("m", 1024)+suffix || len(s.Substatus) != 6 {
		t.Fatalf("Truncated %v, message %d characters, %d substatus; want true, 1040, 6", s.Truncated, len([]rune(s.Message)), len(s.Substatus))
	}
	for i, sub := range s.Substatus {
		if sub.Name != cutLong || sub.Message != cutLong {
			t.Errorf("substatus %d: name %d and message %d characters, want %d", i, len([]rune(sub.Name)), len([]rune(sub.Message)), len([]rune(cutLong)))
		}
	}

	// Under the limit, nothing is cut, however long the fields.
	small, err := extconfig.ParseStatus(doc(strings.Repeat("m", 5000), sub(long[:2*tenK], "")))
	if err != nil {
		t.Fatal(err)
	}
	if small.Truncated || len([]rune(small.Message)) != 5000 || len([]rune(small.Substatus[0].Name)) != tenK {
		t.Errorf("a small file was truncated: %v", small.Truncated)
	}

	// Over the limit, a field shorter than its limit stays; one of exactly
	// its limit gets the marker (the platform agent's rule).
	padded, err := extconfig.ParseStatus(doc(strings.Repeat("m", 1024), sub(strings.Repeat("n", 1023), ""), sub("p", strings.Repeat("x", extconfig.MaxStatusFileSize))))
	if err != nil {
		t.Fatal(err)
	}
	if !padded.Truncated || padded.Message != strings.Repeat("m", 1024)+suffix || padded.Substatus[0].Name != strings.Repeat("n", 1023) ||
		len(padded.Substatus) != 2 || padded.Substatus[1].Message != strings.Repeat("x", tenK)+suffix {
		t.Errorf("got Truncated %v, message %d, %d substatus", padded.Truncated, len(padded.Message), len(padded.Substatus))
	}
}

func TestParseHeartbeat(t *testing.T) {
	for _, tc := range []struct {
		doc  string
		want *extconfig.Heartbeat
		err  string
	}{
		{doc: `[{"version": 1.0, "heartbeat": {"status": "Ready", "code": 0, "formattedMessage": {"lang": "en-US", "message": "ok"}}}]`,
			want: &extconfig.Heartbeat{Status: "Ready", Message: "ok", HasMessage: true}},
		{doc: `[{"heartbeat": {"status": "NotReady", "code": "5"}}]`, want: &extconfig.Heartbeat{Status: "NotReady", Code: 5}},
		{doc: `[]`, err: "the array is empty"},
		{doc: `{"heartbeat": {}}`, err: "the document is a JSON object, want an array"},
		{doc: `[{"status": "Ready"}]`, err: "[0].heartbeat: got nothing, want an object"},
		{doc: `[{"heartbeat": {"status": "Ready", "formattedMessage": {"message": "m"}}}]`, err: "Missing [0].heartbeat.formattedMessage/lang key"},
		{doc: `[{"heartbeat": {"status": "Ready", "code": []}}]`, err: "[0].heartbeat.code: got a JSON array, want an integer"},
	} {
		h, err := extconfig.ParseHeartbeat([]byte(tc.doc))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.HasPrefix(err.Error(), "parsing the heartbeat: ") {
				t.Errorf("ParseHeartbeat(%s) error = %v, want one containing %q", tc.doc, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseHeartbeat(%s): %v", tc.doc, err)
			continue
		}
		if diff := cmp.Diff(tc.want, h); diff != "" {
			t.Errorf("ParseHeartbeat(%s) (-want +got):\n%s", tc.doc, diff)
		}
	}
}

func TestParseEvent(t *testing.T) {
	e, err := extconfig.ParseEvent(fixtures.Read(t, "ext/event.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := &extconfig.Event{EventID: 1, ProviderID: "69B669B9-4AF8-4C50-BDC4-6006FA76E975", Parameters: []extconfig.EventParam{
		{Name: "Name", Type: extconfig.ParamString, Value: "CustomScript"},
		{Name: "Version", Type: extconfig.ParamString, Value: "1.4.1.0"},
		{Name: "IsInternal", Type: extconfig.ParamBool, Value: "False"},
		{Name: "Operation", Type: extconfig.ParamString, Value: "RunScript"},
		{Name: "OperationSuccess", Type: extconfig.ParamBool, Value: "True"},
		{Name: "Message", Type: extconfig.ParamString, Value: "(01302)Script is finished.&#10;---stdout---&#10;hello&#10;&#10;---errout---&#10;&#10;"},
		{Name: "Duration", Type: extconfig.ParamUint64, Value: "0"},
		{Name: "ExtensionType", Type: extconfig.ParamString, Value: ""},
	}}
	if diff := cmp.Diff(want, e); diff != "" {
		t.Errorf("fixture (-want +got):\n%s", diff)
	}

	e, err = extconfig.ParseEvent([]byte(`{"eventId": "7", "providerId": "P", "parameters": [{"name": "Value", "value": 1.5e3}, {"name": "N", "value": -2}]}`))
	if err != nil {
		t.Fatal(err)
	}
	want = &extconfig.Event{EventID: 7, ProviderID: "P", Parameters: []extconfig.EventParam{
		{Name: "Value", Type: extconfig.ParamFloat64, Value: "1.5e3"},
		{Name: "N", Type: extconfig.ParamUint64, Value: "-2"},
	}}
	if diff := cmp.Diff(want, e); diff != "" {
		t.Errorf("numbers (-want +got):\n%s", diff)
	}

	for _, tc := range []struct{ doc, want string }{
		{`[]`, "the document: got a JSON array, want an object"},
		{`{"providerId": "P"}`, "missing eventId"},
		{`{"eventId": "one", "providerId": "P"}`, "eventId: got a JSON string, want an integer"},
		{`{"eventId": 1}`, "providerId: got nothing, want a non-empty string"},
		{`{"eventId": 1, "providerId": "P", "parameters": {}}`, "parameters: got a JSON object, want an array"},
		{`{"eventId": 1, "providerId": "P", "parameters": ["x"]}`, "parameters[0]: got a JSON string, want an object"},
		{`{"eventId": 1, "providerId": "P", "parameters": [{"value": 1}]}`, "parameters[0].name: got nothing, want a string"},
		{`{"eventId": 1, "providerId": "P", "parameters": [{"name": "x", "value": null}]}`, "parameters[0].value: got a JSON null"},
		{`{"eventId": 1, "providerId": "P", "parameters": [{"name": "x", "value": {}}]}`, "parameters[0].value: got a JSON object"},
	} {
		_, err := extconfig.ParseEvent([]byte(tc.doc))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "parsing the event: ") {
			t.Errorf("ParseEvent(%s) error = %v, want one containing %q", tc.doc, err, tc.want)
		}
	}
}
