package fabric

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/azinit/azinit/datasource/azure/certs"
)

// goalStateDoc is what tests read from a goal state.
type goalStateDoc struct {
	Incarnation string `xml:"Incarnation"`
	ContainerID string `xml:"Container>ContainerId"`
	Role        struct {
		InstanceID    string `xml:"InstanceId"`
		Configuration struct {
			HostingEnvironmentConfig string
			SharedConfig             string
			ExtensionsConfig         string
			FullConfig               string
			Certificates             string
			ConfigName               string
		}
	} `xml:"Container>RoleInstanceList>RoleInstance"`
}

func getGoalState(t *testing.T, f *Fabric) goalStateDoc {
	t.Helper()
	resp, body := call(t, http.MethodGet, f.URLs().Wireserver+"/machine/?comp=goalstate", nil, "x-ms-version", ProtocolVersion)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("goal state: %s: %s", resp.Status, body)
	}
	var gs goalStateDoc
	if err := xml.Unmarshal(body, &gs); err != nil {
		t.Fatalf("goal state: %v\n%s", err, body)
	}
	return gs
}

// rootElement is the name of the root element of an XML document.
func rootElement(t *testing.T, doc []byte) string {
	t.Helper()
	var root struct{ XMLName xml.Name }
	if err := xml.Unmarshal(doc, &root); err != nil {
		t.Fatalf("not XML: %v\n%s", err, doc)
	}
	return root.XMLName.Local
}

func TestWireserverDocuments(t *testing.T) {
	f := startFabric(t, Options{Scenario: demoScenario(t)})
	ws := f.URLs().Wireserver

	resp, body := call(t, http.MethodGet, ws+"/?comp=versions", nil)
	var versions struct {
		Preferred string   `xml:"Preferred>Version"`
		Supported []string `xml:"Supported>Version"`
	}
	if err := xml.Unmarshal(body, &versions); err != nil || resp.StatusCode != http.StatusOK ||
		versions.Preferred != ProtocolVersion || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/xml") {
		t.Errorf("versions: %s %q %+v %v", resp.Status, resp.Header.Get("Content-Type"), versions, err)
	}

	// WALinuxAgent asks for /machine/?comp=goalstate, the documented
	// report-ready client for /machine?comp=goalstate with only x-ms-version.
	_, slash := call(t, http.MethodGet, ws+"/machine/?comp=goalstate", nil, "x-ms-version", ProtocolVersion)
	_, noSlash := call(t, http.MethodGet, ws+"/machine?comp=goalstate", nil, "x-ms-version", ProtocolVersion)
	if !bytes.Equal(slash, noSlash) {
		t.Errorf("goal states differ:\n%s\n%s", slash, noSlash)
	}
	gs := getGoalState(t, f)
	if gs.Incarnation != "1" || gs.ContainerID != "3b0f6e52-8c4a-4d7e-a1f9-5e2c7d9b0a63" ||
		gs.Role.InstanceID != "9d2e4f60-1a3b-4c5d-8e7f-0a1b2c3d4e5f._azinit-demo" || gs.Role.Configuration.ConfigName == "" {
		t.Errorf("goal state: %+v", gs)
	}
	c := gs.Role.Configuration
	for uri, root := range map[string]string{
		c.HostingEnvironmentConfig: "HostingEnvironmentConfig",
		c.SharedConfig:             "SharedConfig",
		c.ExtensionsConfig:         "Extensions",
		c.FullConfig:               "FullConfig",
	} {
		if !strings.HasPrefix(uri, ws+"/machine/") || !strings.Contains(uri, "incarnation=1") {
			t.Errorf("config URI %q is not the fabric's for incarnation 1", uri)
		}
		resp, body := call(t, http.MethodGet, uri, nil, "x-ms-version", ProtocolVersion)
		if resp.StatusCode != http.StatusOK || rootElement(t, body) != root {
			t.Errorf("GET %s: %s, root %s, want 200 and %s", uri, resp.Status, rootElement(t, body), root)
		}
	}
	if !strings.Contains(c.Certificates, "comp=certificates") {
		t.Errorf("the demo has certificates but the goal state's Certificates URI is %q", c.Certificates)
	}

	_, ext := call(t, http.MethodGet, c.ExtensionsConfig, nil)
	var ec struct {
		Incarnation string `xml:"goalStateIncarnation,attr"`
		StatusBlob  struct {
			Type string `xml:"statusBlobType,attr"`
			URL  string `xml:",chardata"`
		} `xml:"StatusUploadBlob"`
		Plugins []struct{} `xml:"Plugins>Plugin"`
	}
	if err := xml.Unmarshal(ext, &ec); err != nil {
		t.Fatal(err)
	}
	if ec.Incarnation != "1" || ec.StatusBlob.Type != "BlockBlob" || !strings.HasPrefix(ec.StatusBlob.URL, ws+blobPrefix) || len(ec.Plugins) != 0 {
		t.Errorf("extensions config: %+v", ec)
	}

	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{http.MethodPost, "/machine?comp=telemetrydata", http.StatusOK},
		{http.MethodPost, "/machine?comp=roleProperties", http.StatusAccepted},
		{http.MethodPost, "/HealthService", http.StatusOK},
		{http.MethodPost, "/machine/?comp=goalstate", http.StatusMethodNotAllowed},
		{http.MethodGet, "/machine?comp=health", http.StatusMethodNotAllowed},
		{http.MethodGet, "/nothing/here", http.StatusNotFound},
	} {
		if resp, body := call(t, tc.method, ws+tc.path, []byte("<x/>")); resp.StatusCode != tc.want {
			t.Errorf("%s %s: %s (%s), want %d", tc.method, tc.path, resp.Status, body, tc.want)
		}
	}
}

func TestCertificatesNeedTransportCert(t *testing.T) {
	f := startFabric(t, Options{Scenario: demoScenario(t)})
	uri := getGoalState(t, f).Role.Configuration.Certificates
	resp, body := call(t, http.MethodGet, uri, nil, "x-ms-version", ProtocolVersion)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "x-ms-guest-agent-public-x509-cert") {
		t.Errorf("without the transport certificate: %s %s, want 400 naming the header", resp.Status, body)
	}
	resp, body = call(t, http.MethodGet, uri, nil, "x-ms-guest-agent-public-x509-cert", "not base64!")
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("with a bad transport certificate header: %s %s, want 400", resp.Status, body)
	}
	if e := lastEntry(t, f); e.Kind != KindCertificates || e.Error == "" {
		t.Errorf("record: %+v", e)
	}
}

func TestHealthReports(t *testing.T) {
	f := startFabric(t, Options{Scenario: demoScenario(t)})
	ws := f.URLs().Wireserver
	gs := getGoalState(t, f)
	doc := func(container, instance, health string) []byte {
		return []byte(`<?xml version="1.0" encoding="utf-8"?><Health xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema">` +
			`<GoalStateIncarnation>1</GoalStateIncarnation><Container><ContainerId>` + container + `</ContainerId><RoleInstanceList><Role><InstanceId>` +
			instance + `</InstanceId><Health>` + health + `</Health></Role></RoleInstanceList></Container></Health>`)
	}
	tests := []struct {
		name, path string
		body       []byte
		status     int
		want       Health // recorded body
		accepted   bool
	}{
		{"xml ready", "/machine?comp=health", doc(gs.ContainerID, gs.Role.InstanceID, `<State>Ready</State>`),
			http.StatusOK, Health{State: StateReady}, true},
		{"xml not ready", "/machine?comp=health", doc(gs.ContainerID, gs.Role.InstanceID,
			`<State>NotReady</State><Details><SubStatus>ProvisioningFailed</SubStatus><Description>no &lt;disk&gt;</Description></Details>`),
			http.StatusOK, Health{State: StateNotReady, SubStatus: "ProvisioningFailed", Description: "no <disk>"}, true},
		{"xml other container", "/machine?comp=health", doc("00000000-0000-0000-0000-000000000000", gs.Role.InstanceID, `<State>Ready</State>`),
			http.StatusBadRequest, Health{State: StateReady}, false},
		{"xml other instance", "/machine?comp=health", doc(gs.ContainerID, "x._other", `<State>Ready</State>`),
			http.StatusBadRequest, Health{State: StateReady}, false},
		{"xml malformed", "/machine?comp=health", []byte(`<Health><Container>`), http.StatusBadRequest, Health{}, false},
		{"json ready", "/provisioning/health", []byte(`{"state":"Ready"}`), http.StatusOK, Health{State: StateReady}, true},
		{"json not ready", "/provisioning/health", []byte(`{"state":"NotReady","details":{"subStatus":"ProvisioningFailed","description":"result=error"}}`),
			http.StatusOK, Health{State: StateNotReady, SubStatus: "ProvisioningFailed", Description: "result=error"}, true},
		{"json malformed", "/provisioning/health", []byte(`{"state":`), http.StatusBadRequest, Health{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := call(t, http.MethodPost, ws+tt.path, tt.body, "Content-Type", "text/xml;charset=utf-8")
			if resp.StatusCode != tt.status {
				t.Errorf("%s (%s), want %d", resp.Status, body, tt.status)
			}
			e := lastEntry(t, f)
			if e.Kind != KindHealth || e.Status != tt.status || (e.Error != "") == tt.accepted {
				t.Errorf("record: %+v", e)
			}
			var recorded Health
			if e.Body != nil {
				if err := json.Unmarshal(e.Body, &recorded); err != nil {
					t.Fatal(err)
				}
			}
			if diff := cmp.Diff(tt.want, recorded); diff != "" {
				t.Errorf("recorded body (-want +got):\n%s", diff)
			}
			if h, ok := e.Health(); ok != tt.accepted || (ok && h != tt.want) {
				t.Errorf("Entry.Health() = %+v, %v", h, ok)
			}
		})
	}
	readies := 0
	for _, e := range f.Record() {
		if h, ok := e.Health(); ok && h.State == StateReady {
			readies++
		}
	}
	if readies != 2 {
		t.Errorf("%d Ready reports accepted, want 2 (one XML, one JSON)", readies)
	}
}

func TestStatusUploads(t *testing.T) {
	f := startFabric(t, Options{Scenario: demoScenario(t)})
	want := json.RawMessage(compact(t, aggregateStatus))
	padded := []byte(aggregateStatus + strings.Repeat(" ", 512-len(aggregateStatus)%512))
	nulPadded := []byte(aggregateStatus + strings.Repeat("\x00", 512-len(aggregateStatus)%512))

	_, ext := call(t, http.MethodGet, getGoalState(t, f).Role.Configuration.ExtensionsConfig, nil)
	var ec struct {
		URL string `xml:"StatusUploadBlob"`
	}
	if err := xml.Unmarshal(ext, &ec); err != nil {
		t.Fatal(err)
	}
	hgap := f.URLs().HostGAPlugin + "/status"
	tests := []struct {
		name, method, url string
		body              []byte
		header            []string
		status            int
		recorded          json.RawMessage
	}{
		{"hostgaplugin block blob", http.MethodPut, hgap, hgapEnvelope(padded), nil, http.StatusOK, want},
		{"hostgaplugin page blob create", http.MethodPut, hgap, []byte(`{"headers":[{"headerName":"x-ms-blob-type","headerValue":"PageBlob"}],"requestUri":"https://a.blob.core.windows.net/s/vm.status"}`),
			nil, http.StatusOK, nil},
		{"hostgaplugin first page", http.MethodPut, hgap, hgapEnvelope(padded, [2]string{"x-ms-range", "bytes=0-1023"}, [2]string{"x-ms-page-write", "update"}),
			nil, http.StatusOK, want},
		{"hostgaplugin not an envelope", http.MethodPut, hgap, []byte(aggregateStatus), nil, http.StatusBadRequest, nil},
		{"hostgaplugin not a status", http.MethodPut, hgap, hgapEnvelope([]byte("<status/>")), nil, http.StatusBadRequest, nil},
		{"direct block blob", http.MethodPut, ec.URL, []byte(aggregateStatus), []string{"x-ms-blob-type", "BlockBlob"}, http.StatusCreated, want},
		{"direct page blob create", http.MethodPut, ec.URL, nil, []string{"x-ms-blob-type", "PageBlob", "x-ms-blob-content-length", "1024"}, http.StatusCreated, nil},
		{"direct page", http.MethodPut, ec.URL + "&comp=page", nulPadded, []string{"x-ms-range", "bytes=0-1023", "x-ms-page-write", "update"}, http.StatusCreated, want},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := call(t, tt.method, tt.url, tt.body, tt.header...)
			if resp.StatusCode != tt.status {
				t.Errorf("%s (%s), want %d", resp.Status, body, tt.status)
			}
			e := lastEntry(t, f)
			if e.Kind != KindStatus || string(e.Body) != string(tt.recorded) {
				t.Errorf("record: kind %s body %s, want status %s", e.Kind, e.Body, tt.recorded)
			}
		})
	}
	// The uploaded status can be read back from its blob URL.
	resp, body := call(t, http.MethodGet, ec.URL, nil)
	if resp.StatusCode != http.StatusOK || string(body) != string(want) {
		t.Errorf("GET status blob: %s %s", resp.Status, body)
	}
}

func TestHostGAPlugin(t *testing.T) {
	f := startFabric(t, Options{Scenario: demoScenario(t)})
	hgap := f.URLs().HostGAPlugin
	for _, tc := range []struct {
		path   string
		header []string
		status int
		body   string
	}{
		{"/versions", nil, http.StatusOK, `["2015-09-01"]`},
		{"/health", nil, http.StatusOK, ""},
		{"/vmSettings", nil, http.StatusNotFound, ""},
		{"/extensionArtifact", nil, http.StatusBadRequest, ""},
		{"/extensionArtifact", []string{"x-ms-artifact-location", "https://a.blob.core.windows.net/c/none_manifest.xml"}, http.StatusNotFound, ""},
		{"/nothing", nil, http.StatusNotFound, ""},
	} {
		resp, body := call(t, http.MethodGet, hgap+tc.path, nil, tc.header...)
		if resp.StatusCode != tc.status || (tc.body != "" && string(body) != tc.body) {
			t.Errorf("GET %s: %s %s, want %d %s", tc.path, resp.Status, body, tc.status, tc.body)
		}
	}
	want := []Kind{KindOther, KindOther, KindVMSettings, KindOther, KindManifest, KindOther}
	var got []Kind
	for _, e := range f.Record() {
		got = append(got, e.Kind)
		if e.Server != ServerHostGAPlugin {
			t.Errorf("entry %+v is not the HostGAPlugin's", e)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("kinds (-want +got):\n%s", diff)
	}
}

func TestIMDS(t *testing.T) {
	f := startFabric(t, Options{Scenario: demoScenario(t)})
	imds := f.URLs().IMDS
	meta := []string{"Metadata", "true"}
	tests := []struct {
		path   string
		header []string
		status int
	}{
		{"/metadata/instance?api-version=2021-08-01", meta, http.StatusOK},
		{"/metadata/instance?api-version=2021-08-01", nil, http.StatusBadRequest},
		{"/metadata/instance?api-version=2021-08-01", []string{"Metadata", "false"}, http.StatusBadRequest},
		{"/metadata/instance", meta, http.StatusBadRequest},
		{"/metadata/instance?api-version=2099-01-01", meta, http.StatusBadRequest},
		{"/metadata/instance?api-version=latest", meta, http.StatusBadRequest},
		{"/metadata/instance?api-version=2017-04-02", meta, http.StatusOK},
		{"/metadata/instance?api-version=2023-11-15&extended=true", meta, http.StatusOK},
		{"/metadata/instance/compute?api-version=2018-02-01", meta, http.StatusOK},
		{"/metadata/instance/compute/vmSize?api-version=2017-08-01&format=text", meta, http.StatusOK},
		{"/metadata/instance/compute?api-version=2017-08-01&format=text", meta, http.StatusBadRequest},
		{"/metadata/instance/compute/nothing?api-version=2017-08-01", meta, http.StatusNotFound},
		{"/metadata/attested/document?api-version=2021-08-01", meta, http.StatusNotFound},
	}
	bodies := map[string][]byte{}
	for _, tt := range tests {
		resp, body := call(t, http.MethodGet, imds+tt.path, nil, tt.header...)
		if resp.StatusCode != tt.status {
			t.Errorf("GET %s (header %v): %s %s, want %d", tt.path, tt.header, resp.Status, body, tt.status)
		}
		if resp.StatusCode == http.StatusBadRequest && tt.path != "/metadata/instance/compute?api-version=2017-08-01&format=text" {
			var e struct{ Error string }
			if err := json.Unmarshal(body, &e); err != nil || !strings.HasPrefix(e.Error, "Bad request.") {
				t.Errorf("GET %s: 400 body %s is not IMDS's JSON error", tt.path, body)
			}
		}
		bodies[tt.path] = body
	}

	var md struct {
		Compute struct {
			OSProfile struct {
				AdminUsername, ComputerName, DisablePasswordAuthentication string
			} `json:"osProfile"`
			PublicKeys []struct{ KeyData, Path string } `json:"publicKeys"`
			VMID       string                           `json:"vmId"`
			Name       string                           `json:"name"`
			Location   string                           `json:"location"`
			VMSize     string                           `json:"vmSize"`
			OSType     string                           `json:"osType"`
			UserData   *string                          `json:"userData"`
		} `json:"compute"`
		Network struct {
			Interface []struct {
				IPv4 struct {
					IPAddress []struct{ PrivateIPAddress string } `json:"ipAddress"`
				} `json:"ipv4"`
			} `json:"interface"`
		} `json:"network"`
		Extended *struct {
			Compute struct {
				PPSType       string `json:"ppsType"`
				HasCustomData bool   `json:"hasCustomData"`
			} `json:"compute"`
		} `json:"extended"`
	}
	if err := json.Unmarshal(bodies["/metadata/instance?api-version=2023-11-15&extended=true"], &md); err != nil {
		t.Fatal(err)
	}
	c := md.Compute
	if c.OSProfile.AdminUsername != "azureuser" || c.OSProfile.ComputerName != "azinit-demo" || c.OSProfile.DisablePasswordAuthentication != "false" ||
		c.VMID != "7a5c9a0e-3f1d-4c52-9b1e-0d6f2a8c4e11" || c.Name != "azinit-demo" || c.Location != "westeurope" || c.VMSize != "Standard_B2s" ||
		c.OSType != "Linux" || c.UserData == nil || *c.UserData != "" {
		t.Errorf("compute: %+v", c)
	}
	if len(c.PublicKeys) != 1 || !strings.HasPrefix(c.PublicKeys[0].KeyData, "ssh-ed25519 ") || c.PublicKeys[0].Path != "/home/azureuser/.ssh/authorized_keys" {
		t.Errorf("publicKeys (only the inline key; the other is a certificate): %+v", c.PublicKeys)
	}
	if len(md.Network.Interface) != 1 || len(md.Network.Interface[0].IPv4.IPAddress) != 1 || md.Network.Interface[0].IPv4.IPAddress[0].PrivateIPAddress == "" {
		t.Errorf("network: %+v", md.Network)
	}
	if md.Extended == nil || md.Extended.Compute.PPSType != "None" || !md.Extended.Compute.HasCustomData {
		t.Errorf("extended: %+v", md.Extended)
	}
	if strings.Contains(string(bodies["/metadata/instance?api-version=2021-08-01"]), `"extended"`) {
		t.Error("extended metadata without extended=true")
	}
	if got := string(bodies["/metadata/instance/compute/vmSize?api-version=2017-08-01&format=text"]); got != "Standard_B2s" {
		t.Errorf("vmSize as text = %q", got)
	}
	var compute map[string]any
	if err := json.Unmarshal(bodies["/metadata/instance/compute?api-version=2018-02-01"], &compute); err != nil || compute["vmId"] != c.VMID {
		t.Errorf("/metadata/instance/compute: %v %v", compute["vmId"], err)
	}
	for _, e := range f.Record() {
		if e.Kind != KindIMDS || e.Server != ServerIMDS {
			t.Errorf("entry %+v is not imds", e)
		}
	}
}

func TestIMDSFromFile(t *testing.T) {
	dir := demoScenario(t)
	writeFile(t, filepath.Join(dir, "imds.json"), `{"compute":{"vmId":"from-file","platformFaultDomain":0},"extended":{"compute":{"ppsType":"Running"}}}`)
	f := startFabric(t, Options{Scenario: dir})
	_, body := call(t, http.MethodGet, f.URLs().IMDS+"/metadata/instance?api-version=2021-08-01", nil, "Metadata", "true")
	if string(body) != `{"compute":{"platformFaultDomain":0,"vmId":"from-file"}}` {
		t.Errorf("got %s", body)
	}
}

func TestRecordFile(t *testing.T) {
	recordFile := filepath.Join(t.TempDir(), "record.jsonl")
	w, err := os.Create(recordFile)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	f := startFabric(t, Options{Scenario: demoScenario(t), RecordTo: w, Faults: []Fault{{Kind: KindVersions, Action: ActionStatus, Status: 503, Count: 1}}})
	ws := f.URLs().Wireserver
	call(t, http.MethodGet, ws+"/?comp=versions", nil)
	call(t, http.MethodGet, ws+"/?comp=versions", nil)
	call(t, http.MethodPost, ws+"/provisioning/health", []byte(`{"state":"Ready"}`))
	call(t, http.MethodPut, f.URLs().HostGAPlugin+"/status", hgapEnvelope([]byte(aggregateStatus)))
	call(t, http.MethodGet, f.URLs().IMDS+"/metadata/instance?api-version=2021-08-01", nil, "Metadata", "true")

	b, err := os.ReadFile(recordFile)
	if err != nil {
		t.Fatal(err)
	}
	var fromFile []Entry
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var e Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("record line %q: %v", sc.Text(), err)
		}
		fromFile = append(fromFile, e)
	}
	if diff := cmp.Diff(f.Record(), fromFile); diff != "" {
		t.Errorf("record file differs from the in-memory record (-memory +file):\n%s", diff)
	}
	type short struct {
		Seq    int64
		Server Server
		Kind   Kind
		Status int
		Fault  string
		Body   string
	}
	var got []short
	for _, e := range fromFile {
		got = append(got, short{e.Seq, e.Server, e.Kind, e.Status, e.Fault, string(e.Body)})
		if e.Time.IsZero() || e.Method == "" || e.Path == "" {
			t.Errorf("incomplete entry %+v", e)
		}
	}
	want := []short{
		{1, ServerWireserver, KindVersions, 503, "503", ""},
		{2, ServerWireserver, KindVersions, 200, "", ""},
		{3, ServerWireserver, KindHealth, 200, "", `{"state":"Ready"}`},
		{4, ServerHostGAPlugin, KindStatus, 200, "", compact(t, aggregateStatus)},
		{5, ServerIMDS, KindIMDS, 200, "", ""},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("record (-want +got):\n%s", diff)
	}
	if fromFile[0].Path != "/?comp=versions" {
		t.Errorf("path %q, want it with its query", fromFile[0].Path)
	}
}

func TestWaitFor(t *testing.T) {
	f := startFabric(t, Options{Scenario: demoScenario(t)})
	go func() {
		resp, err := client().Post(f.URLs().Wireserver+"/provisioning/health", "application/json", strings.NewReader(`{"state":"Ready"}`))
		if err == nil {
			resp.Body.Close()
		}
	}()
	e, err := f.WaitFor(t.Context(), func(e Entry) bool { h, ok := e.Health(); return ok && h.State == StateReady })
	if err != nil || e.Kind != KindHealth {
		t.Fatalf("WaitFor = %+v, %v", e, err)
	}
}

func TestReload(t *testing.T) {
	dir := demoScenario(t)
	f := startFabric(t, Options{Scenario: dir})
	first := getGoalState(t, f)
	if first.Incarnation != "1" {
		t.Fatalf("incarnation %s, want 1", first.Incarnation)
	}

	if err := f.Reload(); err != nil {
		t.Fatal(err)
	}
	if gs := getGoalState(t, f); gs.Incarnation != "1" {
		t.Errorf("unchanged scenario: incarnation %s, want 1", gs.Incarnation)
	}

	ovfEnv := filepath.Join(dir, "ovf-env.xml")
	b, err := os.ReadFile(ovfEnv)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, ovfEnv, strings.Replace(string(b), "<UserName>azureuser</UserName>", "<UserName>otheruser</UserName>", 1))
	if err := f.Reload(); err != nil {
		t.Fatal(err)
	}
	second := getGoalState(t, f)
	if second.Incarnation != "2" || !strings.Contains(second.Role.Configuration.ExtensionsConfig, "incarnation=2") {
		t.Errorf("changed scenario: incarnation %s, extensions config %s; want 2", second.Incarnation, second.Role.Configuration.ExtensionsConfig)
	}
	if resp, _ := call(t, http.MethodGet, second.Role.Configuration.ExtensionsConfig, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("new extensions config: %s", resp.Status)
	}
	if resp, _ := call(t, http.MethodGet, first.Role.Configuration.ExtensionsConfig, nil); resp.StatusCode != http.StatusGone {
		t.Errorf("the old incarnation's extensions config: %s, want 410", resp.Status)
	}
	_, md := call(t, http.MethodGet, f.URLs().IMDS+"/metadata/instance/compute/osProfile/adminUsername?api-version=2021-08-01&format=text", nil, "Metadata", "true")
	if string(md) != "otheruser" {
		t.Errorf("IMDS admin user after reload = %q", md)
	}

	// POST /_fabric/reload does the same; a broken scenario keeps the goal state.
	writeFile(t, filepath.Join(dir, "scenario.yaml"), "incarnation: 7\n")
	resp, body := call(t, http.MethodPost, f.URLs().Wireserver+"/_fabric/reload", nil)
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "incarnation 7" {
		t.Errorf("POST /_fabric/reload: %s %s, want incarnation 7 (scenario.yaml's, higher than 3)", resp.Status, body)
	}
	writeFile(t, filepath.Join(dir, "scenario.yaml"), "no_such_key: 1\n")
	resp, body = call(t, http.MethodPost, f.URLs().Wireserver+"/_fabric/reload", nil)
	if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(string(body), "no_such_key") {
		t.Errorf("reload of a broken scenario: %s %s", resp.Status, body)
	}
	if gs := getGoalState(t, f); gs.Incarnation != "7" {
		t.Errorf("after a failed reload: incarnation %s, want 7", gs.Incarnation)
	}
}

func TestRefusesNonLoopback(t *testing.T) {
	dir := demoScenario(t)
	for _, o := range []Options{
		{Scenario: dir, Listen: "0.0.0.0:0"},
		{Scenario: dir, Listen: ":0"},
		{Scenario: dir, Listen: "192.0.2.1:80"},
		{Scenario: dir, HostGAPluginListen: "[::]:0"},
		{Scenario: dir, IMDSListen: "169.254.169.254:80"},
	} {
		if f, err := Start(t.Context(), o); !errors.Is(err, ErrNotLoopback) {
			if f != nil {
				f.Close()
			}
			t.Errorf("Start(%+v) = %v, want ErrNotLoopback", o, err)
		}
	}
	for _, addr := range []string{"127.0.0.1:80", "127.0.0.2:0", "[::1]:32526", "localhost:0"} {
		if err := CheckLoopback(addr); err != nil {
			t.Errorf("CheckLoopback(%q) = %v", addr, err)
		}
	}
}

func TestAddrsWriteFile(t *testing.T) {
	f := startFabric(t, Options{Scenario: demoScenario(t)})
	path := filepath.Join(t.TempDir(), "addrs.json")
	if err := f.URLs().WriteFile(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]string
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"wireserver": f.URLs().Wireserver, "hostgaplugin": f.URLs().HostGAPlugin, "imds": f.URLs().IMDS}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	for _, u := range want {
		if !strings.HasPrefix(u, "http://127.0.0.1:") {
			t.Errorf("URL %q is not on 127.0.0.1", u)
		}
	}
}

// TestCertificatesRoundTrip decrypts what the fabric serves with the
// agent's own code and finds the demo's certificate and key.
func TestCertificatesRoundTrip(t *testing.T) {
	f := startFabric(t, Options{Scenario: demoScenario(t)})
	uri := getGoalState(t, f).Role.Configuration.Certificates
	transport, err := certs.GenerateTransport(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	header := base64.StdEncoding.EncodeToString(transport.Cert.Raw)
	for _, cipher := range []string{"AES128_CBC", "DES_EDE3_CBC", ""} {
		resp, body := call(t, http.MethodGet, uri, nil, "x-ms-version", ProtocolVersion, "x-ms-agent-name", "WALinuxAgent",
			"x-ms-guest-agent-public-x509-cert", header, "x-ms-cipher-name", cipher)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("cipher %q: %s %s", cipher, resp.Status, body)
		}
		doc, err := certs.ParseCertificatesXML(body)
		if err != nil {
			t.Fatal(err)
		}
		got, err := certs.Decrypt(doc.Data, transport)
		if err != nil {
			t.Fatalf("cipher %q: %v", cipher, err)
		}
		if len(got) != 1 || got[0].Thumbprint != "78D15AB03028D61EA100309BE54A4609167BA4FA" || got[0].Key == nil || doc.Incarnation != "1" {
			t.Errorf("cipher %q: incarnation %s, %d certificates %+v; want the demo's with its key", cipher, doc.Incarnation, len(got), got)
		}
	}
	resp, body := call(t, http.MethodGet, uri, nil, "x-ms-guest-agent-public-x509-cert", header, "x-ms-cipher-name", "ROT13")
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "ROT13") {
		t.Errorf("unknown cipher: %s %s, want 400 naming it", resp.Status, body)
	}
}

func TestNoCertificates(t *testing.T) {
	dir := demoScenario(t)
	if err := os.RemoveAll(filepath.Join(dir, "certificates")); err != nil {
		t.Fatal(err)
	}
	f := startFabric(t, Options{Scenario: dir})
	gs := getGoalState(t, f)
	if gs.Role.Configuration.Certificates != "" {
		t.Errorf("a scenario without certificates has a Certificates URI %q", gs.Role.Configuration.Certificates)
	}
}
