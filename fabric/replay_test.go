package fabric

import (
	"encoding/base64"
	"encoding/pem"
	"html"
	"net/http"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/azinit/azinit/internal/fixtures"
)

// TestReplayWALinuxAgentFixtures serves WALinuxAgent's captured documents
// from raw/ and checks that no platform address survives in anything the
// fabric serves, and that the addresses it put in their place work.
func TestReplayWALinuxAgentFixtures(t *testing.T) {
	const manifest = "Microsoft.OSTCExtensions_ExampleHandlerLinux_asiaeast_manifest.xml"
	for _, extConf := range []string{"wire/ext_conf.xml", "hostgaplugin/ext_conf.xml"} {
		t.Run(extConf, func(t *testing.T) {
			dir := t.TempDir()
			for fixture, dst := range map[string]string{
				"ovf-env.xml":                       "ovf-env.xml",
				"wire/goal_state.xml":               "raw/" + RawGoalState,
				"wire/hosting_env.xml":              "raw/" + RawHostingEnv,
				"wire/shared_config.xml":            "raw/" + RawSharedConfig,
				extConf:                             "raw/" + RawExtensionsConfig,
				"wire/certs.xml":                    "raw/" + RawCertificates,
				"hostgaplugin/vm_settings.json":     "raw/" + RawVMSettings,
				"wire/version_info.xml":             "raw/" + RawVersions,
				"wire/manifest.xml":                 "raw/blobs/" + manifest,
				"wire/ga_manifest.xml":              "raw/blobs/manifest_of_ga.xml",
				"wire/in_vm_artifacts_profile.json": "raw/blobs/in_vm_artifacts_profile.json",
			} {
				writeFile(t, filepath.Join(dir, dst), string(fixtures.Read(t, fixture)))
			}
			f := startFabric(t, Options{Scenario: dir})
			ws, hgap := f.URLs().Wireserver, f.URLs().HostGAPlugin
			transportCert, _ := pem.Decode(fixtures.Read(t, "wire/trans_cert"))
			if transportCert == nil {
				t.Fatal("wire/trans_cert is not PEM")
			}

			served := map[string][]byte{}
			fetch := func(method, url string, header ...string) []byte {
				resp, body := call(t, method, url, nil, header...)
				if resp.StatusCode != http.StatusOK {
					t.Errorf("GET %s: %s %s", url, resp.Status, body)
				}
				served[url] = body
				return body
			}
			fetch(http.MethodGet, ws+"/?comp=versions")
			gs := getGoalState(t, f)
			served["goal state"] = fetch(http.MethodGet, ws+"/machine/?comp=goalstate")
			c := gs.Role.Configuration
			for _, uri := range []string{c.HostingEnvironmentConfig, c.SharedConfig, c.ExtensionsConfig} {
				fetch(http.MethodGet, uri)
			}
			fetch(http.MethodGet, c.Certificates, "x-ms-guest-agent-public-x509-cert", base64.StdEncoding.EncodeToString(transportCert.Bytes),
				"x-ms-cipher-name", "AES128_CBC")
			resp, vmSettings := call(t, http.MethodGet, hgap+"/vmSettings", nil)
			served["vmSettings"] = vmSettings
			etag := resp.Header.Get("ETag")
			if resp.StatusCode != http.StatusOK || etag == "" {
				t.Errorf("vmSettings: %s, ETag %q", resp.Status, etag)
			}
			if resp, _ := call(t, http.MethodGet, hgap+"/vmSettings", nil, "If-None-Match", etag); resp.StatusCode != http.StatusNotModified {
				t.Errorf("vmSettings with a matching If-None-Match: %s, want 304", resp.Status)
			}
			// Every blob URL in what was served points at the fabric; the
			// ones the scenario has are served, rewritten too.
			fabricURL := regexp.MustCompile(`http://127\.0\.0\.1:\d+` + blobPrefix + `[^"<\s]*`)
			for _, doc := range served {
				for _, u := range fabricURL.FindAllString(string(doc), -1) {
					u = html.UnescapeString(u)
					switch path.Base(strings.SplitN(u, "?", 2)[0]) {
					case manifest, "manifest_of_ga.xml":
						fetch(http.MethodGet, u)
					}
				}
			}
			if extConf == "wire/ext_conf.xml" && served[ws+blobPrefix+"rdfepirv2hknprdstr03/b01058962be54ceca550a390fa5ff064/"+manifest] == nil {
				t.Errorf("the plugin manifest URL was not rewritten to the fabric's blob URL; served %d documents", len(served))
			}
			for name, doc := range served {
				for _, platform := range []string{"168.63.129.16", "mock-goal-state", "blob.core.windows.net"} {
					if strings.Contains(string(doc), platform) {
						t.Errorf("%s still holds %s", name, platform)
					}
				}
			}
			// The HostGAPlugin serves an artifact by its original URL.
			if resp, body := call(t, http.MethodGet, hgap+"/extensionArtifact", nil, "x-ms-artifact-location",
				"http://mock-goal-state/rdfepirv2hknprdstr03.blob.core.windows.net/b01058962be54ceca550a390fa5ff064/"+manifest); resp.StatusCode != http.StatusOK ||
				!strings.Contains(string(body), "<PluginVersionManifest") {
				t.Errorf("extensionArtifact: %s %.60s", resp.Status, body)
			}
			if e := lastEntry(t, f); e.Kind != KindManifest {
				t.Errorf("extensionArtifact of a manifest recorded as %s", e.Kind)
			}
			// Health reports name the replayed goal state.
			if resp, body := call(t, http.MethodPost, ws+"/machine?comp=health", []byte(healthWALA)); resp.StatusCode != http.StatusOK {
				t.Errorf("health for the replayed goal state: %s %s", resp.Status, body)
			}
		})
	}
}
