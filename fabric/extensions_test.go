package fabric

import (
	"archive/zip"
	"bytes"
	"crypto/rsa"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/azinit/azinit/datasource/azure/certs/pkcs"
	"github.com/azinit/azinit/datasource/azure/extconfig"
	"github.com/azinit/azinit/fabric/certificates"
	"github.com/azinit/azinit/internal/testenv"
)

// testAddrs are the fixed addresses golden documents are made for.
var testAddrs = Addrs{"http://127.0.0.1:8080", "http://127.0.0.1:32526", "http://127.0.0.1:8081"}

// sampleScenario returns a copy of testdata/scenarios/extensions, with the
// handlers where its extensions.yaml looks for them, that the test may
// change.
func sampleScenario(t *testing.T) string {
	t.Helper()
	tmp := t.TempDir()
	for _, dir := range []string{"scenarios/extensions", "handlers"} {
		if err := os.CopyFS(filepath.Join(tmp, dir), os.DirFS(filepath.Join("..", "testdata", dir))); err != nil {
			t.Fatal(err)
		}
	}
	// Version 1.1.0 is the same handler: it takes its version from its
	// directory name.
	handlers := filepath.Join(tmp, "handlers")
	if err := os.CopyFS(filepath.Join(handlers, "Azinit.Test.Handler-1.1.0"), os.DirFS(filepath.Join(handlers, "Azinit.Test.Handler-1.0.0"))); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(tmp, "scenarios", "extensions")
}

// richExtensions uses every feature of extensions.yaml; its packages are
// the test handler's under extensions/ and a verbatim zip.
const richExtensions = `fast_track: true
status_blob_type: PageBlob
on_hold: true
storage_reachable: false
required_features: [MultipleExtensionsPerHandler]
plugins:
  - name: Azinit.Test.Handler
    version: "1.1"
    seq_no: 3
    public_settings: {message: 'a <b> & "c"', enableExit: 0, nested: {list: [1, 2.5, true, null], when: 2025-01-02}}
    protected_settings: {secret: s3cret}
    certificate: 78d15ab03028d61ea100309be54a4609167ba4fa
    depends_on: 1
  - name: Azinit.Test.Multi
    version: "1.0.0"
    extensions:
      - {name: first, seq_no: 2, public_settings: {message: one}, protected_settings: {k: v}, depends_on: 2}
      - {name: second, state: disabled}
  - name: Azinit.Test.Bare
    version: "2.0"
    state: disabled
    depends_on: 3
  - name: Azinit.Test.Gone
    version: "9.9"
    state: uninstall
`

// richScenario is the sample scenario with richExtensions.
func richScenario(t *testing.T) string {
	t.Helper()
	dir := sampleScenario(t)
	writeFile(t, filepath.Join(dir, ExtensionsFile), richExtensions)
	handlers := filepath.Join(dir, "..", "..", "handlers")
	if err := os.CopyFS(filepath.Join(dir, "extensions"), os.DirFS(handlers)); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "extensions", "Azinit.Test.Multi__1.0.0.zip"), "not even a zip: served as it is")
	writeFile(t, filepath.Join(dir, "extensions", "Azinit.Test.Bare-2.0.0", "HandlerManifest.json"), "[]")
	return dir
}

func loadScenario(t *testing.T, dir string) *Scenario {
	t.Helper()
	s, err := LoadScenario(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestParseExtensions(t *testing.T) {
	ext, err := ParseExtensions([]byte(richExtensions), "extensions.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if ext.StorageReachableOrDefault() || ext.PackagesDir() != "extensions" || ext.StatusBlobType != "PageBlob" {
		t.Errorf("storage reachable %v, packages %q, status blob %q", ext.StorageReachableOrDefault(), ext.PackagesDir(), ext.StatusBlobType)
	}
	p := ext.Plugins[0]
	if got, want := string(p.publicJSON), `{"enableExit":0,"message":"a <b> & \"c\"","nested":{"list":[1,2.5,true,null],"when":"2025-01-02T00:00:00Z"}}`; got != want {
		t.Errorf("public settings %s, want %s", got, want)
	}
	if p.protected.Reveal() != `{"secret":"s3cret"}` || p.Certificate != "78D15AB03028D61EA100309BE54A4609167BA4FA" || p.seqNo() != 3 || *p.DependsOn != 1 || p.State != "enabled" {
		t.Errorf("plugin 0: %+v", p)
	}
	if m := ext.Plugins[1]; m.hasSettings() || len(m.Extensions) != 2 || m.Extensions[1].State != "disabled" || m.Extensions[1].hasSettings() {
		t.Errorf("multi-config plugin: %+v", m)
	}

	empty, err := ParseExtensions(nil, "extensions.yaml")
	if err != nil || !empty.StorageReachableOrDefault() || empty.StatusBlobType != "BlockBlob" || len(empty.Plugins) != 0 {
		t.Errorf("empty file: %+v, %v", empty, err)
	}
}

func TestParseExtensionsErrors(t *testing.T) {
	plugin := func(extra string) string {
		return "plugins:\n  - name: A.B\n    version: \"1.0\"\n" + extra
	}
	tests := []struct {
		name, yaml string
		want       []string // in the error, besides the file name
	}{
		{"unknown key", "fast_trak: true\n", []string{"fast_trak"}},
		{"unknown plugin key", plugin("    sequence: 1\n"), []string{"sequence"}},
		{"bad state", plugin("    state: running\n"), []string{"plugin A.B", "running"}},
		{"bad extension state", plugin("    extensions: [{name: x, state: uninstall}]\n"), []string{"plugin A.B", "extension x", "uninstall"}},
		{"bad name", "plugins: [{name: My-Handler, version: '1.0'}]\n", []string{"plugin My-Handler", "Publisher.Type"}},
		{"bad version", "plugins: [{name: A.B, version: latest}]\n", []string{"plugin A.B", "latest"}},
		{"twice", "plugins: [{name: A.B, version: '1'}, {name: a.b, version: '2'}]\n", []string{"plugin a.b", "twice"}},
		{"multi-config with settings", plugin("    public_settings: {a: 1}\n    extensions: [{name: x}]\n"), []string{"plugin A.B", "multi-config"}},
		{"multi-config with seq_no", plugin("    seq_no: 0\n    extensions: [{name: x}]\n"), []string{"plugin A.B", "multi-config"}},
		{"extension twice", plugin("    extensions: [{name: x}, {name: x}]\n"), []string{"extension x", "twice"}},
		{"bad extension name", plugin("    extensions: [{name: 'a.b'}]\n"), []string{"extensions[0]", "a.b"}},
		{"negative seq_no", plugin("    seq_no: -1\n"), []string{"plugin A.B", "seq_no"}},
		{"negative depends_on", plugin("    depends_on: -2\n"), []string{"plugin A.B", "depends_on"}},
		{"certificate without protected settings", plugin("    certificate: 78D15AB03028D61EA100309BE54A4609167BA4FA\n"), []string{"plugin A.B", "without protected_settings"}},
		{"bad certificate", plugin("    protected_settings: {a: 1}\n    certificate: ABC\n"), []string{"plugin A.B", "ABC"}},
		{"settings not a mapping", plugin("    public_settings: [1, 2]\n"), []string{"line 4"}},
		{"non-string key", plugin("    public_settings: {a: {1: x}}\n"), []string{"plugin A.B", "public_settings", ".a", "key"}},
		{"infinity", plugin("    public_settings: {a: [.inf]}\n"), []string{"public_settings", ".a[0]"}},
		{"bad status blob type", "status_blob_type: AppendBlob\n", []string{"AppendBlob"}},
		{"empty feature", "required_features: ['']\n", []string{"required_features[0]"}},
		{"not a mapping", "- a\n", []string{"cannot unmarshal"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseExtensions([]byte(tt.yaml), "dir/extensions.yaml")
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range append(tt.want, "dir/extensions.yaml: ") {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
		})
	}
	// Protected settings never show in an error.
	_, err := ParseExtensions([]byte(plugin("    protected_settings: {k: [s3cret, {1: s3cret}, .nan]}\n")), "extensions.yaml")
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error %v", err)
	}
}

func TestLoadExtensionsErrors(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string
		files map[string]string
		want  []string
	}{
		{"missing package", "plugins: [{name: Azinit.Test.Handler, version: '1.2'}]\n", nil,
			[]string{"plugin Azinit.Test.Handler", "no package for version 1.2", "1.0.0, 1.1.0"}},
		{"missing packages directory", "packages: ../nowhere\nplugins: [{name: A.B, version: '1.0'}]\n", nil,
			[]string{"plugin A.B", "../nowhere/A.B-1.0/", "none"}},
		{"unknown certificate", "plugins: [{name: Azinit.Test.Handler, version: '1.0.0', protected_settings: {a: 1}, certificate: 0000000000000000000000000000000000000000}]\n", nil,
			[]string{"plugin Azinit.Test.Handler", "certificate 0000000000000000000000000000000000000000"}},
		{"directory and zip", "plugins: [{name: Azinit.Test.Handler, version: '1.0.0'}]\n",
			map[string]string{"../../handlers/Azinit.Test.Handler__1.0.0.zip": "PK"}, []string{"Azinit.Test.Handler__1.0.0.zip", "keep one"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := sampleScenario(t)
			if !strings.HasPrefix(tt.yaml, "packages:") {
				tt.yaml = "packages: ../../handlers\n" + tt.yaml
			}
			writeFile(t, filepath.Join(dir, ExtensionsFile), tt.yaml)
			for name, content := range tt.files {
				writeFile(t, filepath.Join(dir, name), content)
			}
			_, err := LoadScenario(dir)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range append(tt.want, filepath.Join(dir, ExtensionsFile)) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
		})
	}

	t.Run("protected settings without a certificate", func(t *testing.T) {
		dir := minimalScenario(t, "vm")
		writeFile(t, filepath.Join(dir, ExtensionsFile), "plugins: [{name: A.B, version: '1', state: uninstall, protected_settings: {a: 1}}]\n")
		_, err := LoadScenario(dir)
		if err == nil || !strings.Contains(err.Error(), "plugin A.B") || !strings.Contains(err.Error(), "no certificate") &&
			!strings.Contains(err.Error(), "scenario has none") {
			t.Errorf("error %v", err)
		}
	})
	t.Run("a handler being uninstalled needs no package", func(t *testing.T) {
		dir := minimalScenario(t, "vm")
		writeFile(t, filepath.Join(dir, ExtensionsFile), "plugins: [{name: A.B, version: '1', state: uninstall}]\n")
		s := loadScenario(t, dir)
		st, err := buildState(s, 1, testAddrs)
		if err != nil {
			t.Fatal(err)
		}
		m, err := extconfig.ParseManifest(st.blobs[manifestBlob("A.B")])
		if err != nil || len(m.Packages) != 0 {
			t.Errorf("manifest of a handler without packages: %+v, %v", m, err)
		}
	})
}

func TestZipPackageIsDeterministic(t *testing.T) {
	dir := richScenario(t)
	pkg := filepath.Join(dir, "extensions", "Azinit.Test.Handler-1.0.0")
	first := loadScenario(t, dir).Packages[packageBlob("Azinit.Test.Handler", "1.0.0")]
	later := time.Now().Add(time.Hour)
	for _, name := range []string{"HandlerManifest.json", "bin/handler.sh", "bin"} {
		if err := os.Chtimes(filepath.Join(pkg, name), later, later); err != nil {
			t.Fatal(err)
		}
	}
	again := loadScenario(t, dir)
	if !bytes.Equal(first, again.Packages[packageBlob("Azinit.Test.Handler", "1.0.0")]) {
		t.Error("zipping the same package twice gave different bytes")
	}
	zr, err := zip.NewReader(bytes.NewReader(first), int64(len(first)))
	if err != nil {
		t.Fatal(err)
	}
	type entry struct {
		Name string
		Mode os.FileMode
		Time time.Time
	}
	var got []entry
	for _, f := range zr.File {
		got = append(got, entry{f.Name, f.Mode(), f.Modified.UTC()})
	}
	want := []entry{
		{"HandlerManifest.json", 0o644, packageZipTime},
		{"bin/", os.ModeDir | 0o755, packageZipTime},
		{"bin/handler.sh", 0o644, packageZipTime}, // as on disk: the agent adds u+x
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
	script, err := fsRead(zr, "bin/handler.sh")
	if err != nil || !strings.HasPrefix(script, "#!/bin/sh\n") {
		t.Errorf("bin/handler.sh in the zip: %.20q, %v", script, err)
	}
	if err := os.Chmod(filepath.Join(pkg, "bin", "handler.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	if s := loadScenario(t, dir); !s.Changed(again) {
		t.Error("a mode change is not a scenario change")
	}
	if s := loadScenario(t, dir); bytes.Equal(first, s.Packages[packageBlob("Azinit.Test.Handler", "1.0.0")]) {
		t.Error("the zip did not keep the new mode")
	}
}

func fsRead(zr *zip.Reader, name string) (string, error) {
	f, err := zr.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	return string(b), err
}

// TestGoldenExtensions pins the documents generated for richExtensions,
// the encrypted protected settings (random) masked. Run with -update to
// rewrite them.
func TestGoldenExtensions(t *testing.T) {
	s := loadScenario(t, richScenario(t))
	for i := range s.Extensions.Plugins {
		p := &s.Extensions.Plugins[i]
		for _, set := range append([]*ExtensionSettings{&p.ExtensionSettings}, extensionSettings(p)...) {
			if set.sealed != "" {
				set.sealed = "SEALED"
			}
		}
	}
	st, err := buildState(s, 1, testAddrs)
	if err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string][]byte{
		"extensions/extensionsconfig.xml": st.extensionsConfig,
		"extensions/vmsettings.json":      st.vmSettings,
		"extensions/manifest.xml":         st.blobs[manifestBlob("Azinit.Test.Handler")],
	} {
		checkGolden(t, name, got)
	}
}

func extensionSettings(p *Plugin) []*ExtensionSettings {
	var out []*ExtensionSettings
	for i := range p.Extensions {
		out = append(out, &p.Extensions[i].ExtensionSettings)
	}
	return out
}

// TestExtensionsRoundTrip parses what the fabric generates with the
// agent's parsers and checks that they read the handlers and settings of
// extensions.yaml, protected settings decrypted with the scenario's key.
func TestExtensionsRoundTrip(t *testing.T) {
	for name, dir := range map[string]string{"sample": sampleScenario(t), "rich": richScenario(t)} {
		t.Run(name, func(t *testing.T) {
			s := loadScenario(t, dir)
			st, err := buildState(s, 1, testAddrs)
			if err != nil {
				t.Fatal(err)
			}
			ec, err := extconfig.ParseExtensionsConfig(st.extensionsConfig)
			if err != nil {
				t.Fatal(err)
			}
			docs := map[extconfig.Channel]*extconfig.ExtensionsGoalState{extconfig.ChannelWireServer: ec}
			if s.Extensions.FastTrack {
				if docs[extconfig.ChannelHostGAPlugin], err = extconfig.ParseVMSettings(st.vmSettings); err != nil {
					t.Fatal(err)
				}
			}
			for channel, gs := range docs {
				decryptAll(t, gs.Handlers, s.Certificates[0])
				if diff := cmp.Diff(wantHandlers(s.Extensions, channel), gs.Handlers); diff != "" {
					t.Errorf("%s handlers (-want +got):\n%s", channel, diff)
				}
				if gs.StatusBlobType != extconfig.BlobType(s.Extensions.StatusBlobType) || gs.OnHold != (s.Extensions.OnHold && channel == extconfig.ChannelHostGAPlugin) ||
					!cmp.Equal(gs.RequiredFeatures, s.Extensions.RequiredFeatures, cmpopts.EquateEmpty()) || gs.CreatedOn != ec.CreatedOn || gs.InSvdSeqNo != "1" {
					t.Errorf("%s goal state: %+v", channel, gs)
				}
			}
			if s.Extensions.OnHold {
				profile, err := extconfig.ParseArtifactsProfile(st.blobs[filepath.Base(strings.Split(ec.InVMArtifactsProfileBlob, "?")[0])])
				if err != nil || !profile.OnHold {
					t.Errorf("artifacts profile %s: %+v, %v", ec.InVMArtifactsProfileBlob, profile, err)
				}
			}
			for _, h := range ec.Handlers {
				m, err := extconfig.ParseManifest(st.blobs[filepath.Base(h.Location)])
				if err != nil {
					t.Fatalf("manifest of %s: %v", h.Name, err)
				}
				if h.State == extconfig.StateUninstall {
					continue
				}
				pkg, err := m.Select(h.Version)
				if err != nil {
					t.Fatalf("%s %s: %v", h.Name, h.Version, err)
				}
				if _, ok := st.blobs[filepath.Base(pkg.URIs[0])]; !ok {
					t.Errorf("%s: package %s is not served", h.Name, pkg.URIs[0])
				}
			}
		})
	}
}

// decryptAll replaces every protected setting with its plaintext.
func decryptAll(t *testing.T, hs []extconfig.Handler, b certificates.Bundle) {
	t.Helper()
	for i := range hs {
		for j := range hs[i].Settings {
			s := &hs[i].Settings[j]
			if !s.ProtectedSettings.IsSet() {
				continue
			}
			der, err := base64.StdEncoding.DecodeString(s.ProtectedSettings.Reveal())
			if err != nil {
				t.Fatal(err)
			}
			plain, err := pkcs.OpenEnvelope(der, b.Key.(*rsa.PrivateKey), b.Cert)
			if err != nil {
				t.Fatalf("%s: protected settings: %v", s.Name, err)
			}
			s.ProtectedSettings = extconfig.NewSecret(string(plain))
		}
	}
}

// wantHandlers is what an agent must read of ext on channel.
func wantHandlers(ext *Extensions, channel extconfig.Channel) []extconfig.Handler {
	settings := func(name string, s *ExtensionSettings, state extconfig.State) extconfig.Settings {
		level := 0
		if s.DependsOn != nil {
			level = *s.DependsOn
		}
		return extconfig.Settings{Name: name, SeqNo: s.seqNo(), State: state, DependencyLevel: level,
			PublicSettings: s.publicJSON, ProtectedSettingsCertThumbprint: s.thumbprint,
			ProtectedSettings: s.protected}
	}
	var hs []extconfig.Handler
	for _, p := range ext.Plugins {
		loc := manifestURL(testAddrs.Wireserver, p.Name)
		h := extconfig.Handler{Name: p.Name, Version: p.Version, State: extconfig.State(p.State),
			Location: loc, FailoverLocation: loc + "?failover=true", MultiConfig: p.Extensions != nil}
		if p.Extensions == nil && p.hasSettings() {
			// ExtensionsConfig's single-config settings are always
			// enabled; vmSettings' take the handler's state.
			state := extconfig.StateEnabled
			if channel == extconfig.ChannelHostGAPlugin {
				state = h.State
			}
			h.Settings = []extconfig.Settings{settings(p.Name, &p.ExtensionSettings, state)}
		}
		for _, x := range p.Extensions {
			h.Settings = append(h.Settings, settings(x.Name, &x.ExtensionSettings, extconfig.State(x.State)))
		}
		hs = append(hs, h)
	}
	return hs
}

// TestProtectedSettingsOpenSSL proves that what handlers run to decrypt
// protected settings recovers them.
func TestProtectedSettingsOpenSSL(t *testing.T) {
	s := loadScenario(t, sampleScenario(t))
	p := s.Extensions.Plugins[0]
	dir := t.TempDir()
	writeCertFiles(t, dir, s.Certificates[0])
	der, err := base64.StdEncoding.DecodeString(p.sealed)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "protected.der"), string(der))
	for _, command := range []string{"smime", "cms"} {
		out, _ := testenv.OpenSSL(t, dir, command, "-decrypt", "-inform", "DER", "-in", "protected.der",
			"-recip", p.thumbprint+".crt", "-inkey", p.thumbprint+".prv")
		if string(out) != `{"secret":"s3cret"}` {
			t.Errorf("openssl %s -decrypt: %q", command, out)
		}
	}
}

func TestServeExtensions(t *testing.T) {
	f := startFabric(t, Options{Scenario: sampleScenario(t)})
	ws, hgap := f.URLs().Wireserver, f.URLs().HostGAPlugin
	_, body := call(t, http.MethodGet, getGoalState(t, f).Role.Configuration.ExtensionsConfig, nil)
	ec, err := extconfig.ParseExtensionsConfig(body)
	if err != nil || len(ec.Handlers) != 1 {
		t.Fatalf("extensions config: %v\n%s", err, body)
	}
	h := ec.Handlers[0]
	var manifests [][]byte
	for _, uri := range h.ManifestURIs() {
		resp, body := call(t, http.MethodGet, uri, nil)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %s", uri, resp.Status)
		}
		manifests = append(manifests, body)
	}
	if len(manifests) != 2 || !bytes.Equal(manifests[0], manifests[1]) {
		t.Errorf("location and failover location serve different manifests")
	}
	m, err := extconfig.ParseManifest(manifests[0])
	if err != nil {
		t.Fatal(err)
	}
	pkg, err := m.Select(h.Version)
	if err != nil {
		t.Fatal(err)
	}
	resp, zipped := call(t, http.MethodGet, pkg.URIs[0], nil)
	if _, err := zip.NewReader(bytes.NewReader(zipped), int64(len(zipped))); resp.StatusCode != http.StatusOK || err != nil {
		t.Errorf("package %s: %s, %v", pkg.URIs[0], resp.Status, err)
	}
	if resp, _ := call(t, http.MethodGet, hgap+"/vmSettings", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("vmSettings without fast_track: %s, want 404", resp.Status)
	}
	var kinds []Kind
	for _, e := range f.Record() {
		if strings.HasPrefix(e.Path, blobPrefix) {
			kinds = append(kinds, e.Kind)
		}
	}
	if diff := cmp.Diff([]Kind{KindManifest, KindManifest, KindPackage}, kinds); diff != "" {
		t.Errorf("blob kinds (-want +got):\n%s", diff)
	}
	if !strings.HasPrefix(pkg.URIs[0], ws+blobPrefix) {
		t.Errorf("package URL %s is not the fabric's", pkg.URIs[0])
	}
}

func TestServeFastTrackOnHoldNoStorage(t *testing.T) {
	f := startFabric(t, Options{Scenario: richScenario(t)})
	hgap := f.URLs().HostGAPlugin
	resp, body := call(t, http.MethodGet, hgap+"/vmSettings", nil)
	etag := resp.Header.Get("Etag")
	if resp.StatusCode != http.StatusOK || etag == "" {
		t.Fatalf("vmSettings: %s, ETag %q", resp.Status, etag)
	}
	vms, err := extconfig.ParseVMSettings(body)
	if err != nil || vms.Source != extconfig.SourceFastTrack || !vms.OnHold || len(vms.Handlers) != 4 {
		t.Fatalf("vmSettings: %+v, %v", vms, err)
	}
	if resp, _ := call(t, http.MethodGet, hgap+"/vmSettings", nil, "If-None-Match", etag); resp.StatusCode != http.StatusNotModified {
		t.Errorf("vmSettings with its ETag: %s, want 304", resp.Status)
	}

	_, body = call(t, http.MethodGet, getGoalState(t, f).Role.Configuration.ExtensionsConfig, nil)
	ec, err := extconfig.ParseExtensionsConfig(body)
	if err != nil {
		t.Fatal(err)
	}
	resp, body = call(t, http.MethodGet, ec.InVMArtifactsProfileBlob, nil)
	if profile, err := extconfig.ParseArtifactsProfile(body); resp.StatusCode != http.StatusOK || err != nil || !profile.OnHold {
		t.Errorf("artifacts profile: %s %s", resp.Status, body)
	}

	manifest := ec.Handlers[0].Location
	if resp, body := call(t, http.MethodGet, manifest, nil); resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "AuthorizationFailure") {
		t.Errorf("direct GET of %s without storage access: %s %s, want 403", manifest, resp.Status, body)
	}
	if e := lastEntry(t, f); e.Kind != KindManifest || !strings.Contains(e.Error, "storage_reachable") {
		t.Errorf("record of the refused GET: %+v", e)
	}
	resp, body = call(t, http.MethodGet, hgap+"/extensionArtifact", nil, "x-ms-artifact-location", manifest)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("manifest through the HostGAPlugin: %s %s", resp.Status, body)
	}
	m, err := extconfig.ParseManifest(body)
	if err != nil {
		t.Fatal(err)
	}
	pkg, err := m.Select(ec.Handlers[0].Version)
	if err != nil || pkg.Version != "1.1.0" {
		t.Fatalf("select %s: %+v, %v", ec.Handlers[0].Version, pkg, err)
	}
	if resp, _ := call(t, http.MethodGet, pkg.URIs[0], nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("direct package GET without storage access: %s, want 403", resp.Status)
	}
	resp, _ = call(t, http.MethodGet, hgap+"/extensionArtifact", nil, "x-ms-artifact-location", pkg.URIs[0], "x-ms-artifact-manifest-location", manifest)
	if resp.StatusCode != http.StatusOK || lastEntry(t, f).Kind != KindPackage {
		t.Errorf("package through the HostGAPlugin: %s", resp.Status)
	}
}

func TestReloadExtensions(t *testing.T) {
	dir := sampleScenario(t)
	f := startFabric(t, Options{Scenario: dir})
	handlerConfig := func() extconfig.Handler {
		_, body := call(t, http.MethodGet, getGoalState(t, f).Role.Configuration.ExtensionsConfig, nil)
		ec, err := extconfig.ParseExtensionsConfig(body)
		if err != nil || len(ec.Handlers) != 1 {
			t.Fatalf("extensions config: %v\n%s", err, body)
		}
		return ec.Handlers[0]
	}
	before := handlerConfig()
	reload := func(want string) {
		t.Helper()
		if err := f.Reload(); err != nil {
			t.Fatal(err)
		}
		if f.Incarnation() != want {
			t.Errorf("incarnation %s, want %s", f.Incarnation(), want)
		}
	}
	// Protected settings are encrypted afresh on every load; that alone is
	// no change.
	reload("1")
	if after := handlerConfig(); after.Settings[0].ProtectedSettings.Reveal() != before.Settings[0].ProtectedSettings.Reveal() {
		t.Error("an unchanged scenario got new protected settings")
	}

	yml := filepath.Join(dir, ExtensionsFile)
	b, err := os.ReadFile(yml)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, yml, strings.Replace(string(b), `version: "1.0.0"`, `version: "1.1.0"`, 1))
	reload("2")
	if h := handlerConfig(); h.Version != "1.1.0" {
		t.Errorf("after the update: version %s", h.Version)
	}

	writeFile(t, filepath.Join(dir, "..", "..", "handlers", "Azinit.Test.Handler-1.1.0", "NOTICE"), "a new file\n")
	reload("3")
	_, zipped := call(t, http.MethodGet, f.URLs().Wireserver+blobPrefix+packageBlob("Azinit.Test.Handler", "1.1.0"), nil)
	zr, err := zip.NewReader(bytes.NewReader(zipped), int64(len(zipped)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fsRead(zr, "NOTICE"); err != nil {
		t.Errorf("the reloaded package lacks the new file: %v", err)
	}

	writeFile(t, yml, "plugins: [{name: Azinit.Test.Handler, version: '1.0.0', state: paused}]\n")
	if err := f.Reload(); err == nil || !strings.Contains(err.Error(), "paused") || f.Incarnation() != "3" {
		t.Errorf("reload of a bad extensions.yaml: %v, incarnation %s", err, f.Incarnation())
	}
}

func FuzzParseExtensions(f *testing.F) {
	sample, err := os.ReadFile(filepath.Join("..", "testdata", "scenarios", "extensions", ExtensionsFile))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sample)
	f.Add([]byte(richExtensions))
	f.Add([]byte("plugins: [{name: A.B, version: '1', extensions: [{name: x, public_settings: {a: {1: 2}}}]}]\n"))
	f.Add([]byte("required_features: ['']\nstatus_blob_type: x\n"))
	f.Add([]byte("plugins:\n  - &a {name: A.B, version: '1'}\n  - *a\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ext, err := ParseExtensions(b, "extensions.yaml")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "extensions.yaml: ") {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		for _, p := range ext.Plugins {
			if !pluginNamePattern.MatchString(p.Name) || !versionPattern.MatchString(p.Version) {
				t.Fatalf("bad plugin accepted: %q %q", p.Name, p.Version)
			}
			for _, s := range append([]*ExtensionSettings{&p.ExtensionSettings}, extensionSettings(&p)...) {
				if s.PublicSettings != nil && s.publicJSON == nil || s.ProtectedSettings != nil && !s.protected.IsSet() {
					t.Fatal("settings without their JSON")
				}
			}
		}
	})
}

func TestExtensionsPrintNoSecret(t *testing.T) {
	s := loadScenario(t, sampleScenario(t))
	for _, format := range []string{"%v", "%+v", "%#v"} {
		if out := fmt.Sprintf(format, s.Extensions); strings.Contains(out, "s3cret") {
			t.Errorf("%s of the extensions shows the protected settings: %s", format, out)
		}
	}
}

// BenchmarkLoadExtensionsScenario measures a load of the sample scenario
// (a reload costs the same): zipping two packages and encrypting the
// protected settings.
func BenchmarkLoadExtensionsScenario(b *testing.B) {
	dir := filepath.Join("..", "testdata", "scenarios", "extensions")
	for b.Loop() {
		if _, err := LoadScenario(dir); err != nil {
			b.Fatal(err)
		}
	}
}
