package extconfig_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/azinit/azinit/datasource/azure/extconfig"
	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// golden compares v, as indented JSON, with testdata/name (rewritten with
// -update).
func golden(t *testing.T, name string, v any) {
	t.Helper()
	got, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s mismatch (-want +got):\n%s", path, cmp.Diff(string(want), string(got)))
	}
}

// ecDoc is an ExtensionsConfig document with the given Plugins and
// PluginSettings contents.
func ecDoc(plugins, settings string) []byte {
	return []byte(`<?xml version="1.0" encoding="utf-8"?>
<Extensions version="1.0.0.0" goalStateIncarnation="1">
<GuestAgentExtension xmlns:i="http://www.w3.org/2001/XMLSchema-instance"><GAFamilies><GAFamily><Name>Prod</Name><Uris><Uri>https://a/m.xml</Uri></Uris></GAFamily></GAFamilies></GuestAgentExtension>
<StatusUploadBlob statusBlobType="BlockBlob">https://s/status?sig=x</StatusUploadBlob>
<Plugins>` + plugins + `</Plugins>
<PluginSettings>` + settings + `</PluginSettings>
</Extensions>`)
}

// plugin is a Plugins/Plugin element.
func plugin(name, version, state string) string {
	return `<Plugin name="` + name + `" version="` + version + `" state="` + state + `" location="https://l/m.xml" failoverlocation="https://f/m.xml" />`
}

// settings is a RuntimeSettings JSON text with one handlerSettings.
func settings(handlerSettings string) string {
	return `{"runtimeSettings":[{"handlerSettings":` + handlerSettings + `}]}`
}

// withDefaults is want as a parser returns it from channel: the defaults
// the documents leave implicit filled in.
func withDefaults(want extconfig.ExtensionsGoalState, channel extconfig.Channel) extconfig.ExtensionsGoalState {
	want.Channel = channel
	if want.StatusBlobType == "" {
		want.StatusBlobType = extconfig.BlockBlob
	}
	if want.ActivityID == "" {
		want.ActivityID = extconfig.ZeroGUID
	}
	want.CorrelationID = extconfig.ZeroGUID
	return want
}
