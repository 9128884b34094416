package hostgaplugin

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/azinit/azinit/datasource/azure/extconfig"
	"github.com/azinit/azinit/datasource/azure/storage"
	"github.com/azinit/azinit/datasource/azure/wireserver"
	"github.com/azinit/azinit/internal/httpx"
	"github.com/azinit/azinit/internal/testenv/httpfake"
	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

const (
	secret  = "s3cr3tSIGvalue"
	blobURL = "https://acct.blob.core.windows.net/$system/vm.status?sv=2018-03-28&sr=b&sk=system-1&sig=" + secret + "&se=9999-01-01T00%3a00%3a00Z&sp=w"
)

var (
	id  = Identity{ContainerID: "3b0f6e52-8c4a-4d7e-a1f9-5e2c7d9b0a63", ConfigName: "d.0.d.0._vm.1.xml"}
	now = time.Date(2025, 11, 20, 8, 38, 33, 0, time.UTC)
)

// protocolHeaders are the headers the fake records: those the HostGAPlugin
// protocol defines.
var protocolHeaders = []string{
	"User-Agent", "Content-Type", "If-None-Match", "x-ms-version", "x-ms-containerid", "x-ms-host-config-name",
	"x-ms-artifact-location", "x-ms-artifact-manifest-location", "x-ms-verify-from-artifacts-blob",
}

// answer is one reply of the fake.
type answer struct {
	status int
	header http.Header
	body   string
}

// fake is a HostGAPlugin on 127.0.0.1 giving its answers in turn (the last
// one repeated), and a client that can dial nothing else.
type fake struct {
	*httpfake.Server
	client  *Client
	logs    bytes.Buffer
	sleeper httpfake.Sleeper

	mu           sync.Mutex
	correlations []string
}

func newFake(t testing.TB, answers ...answer) *fake {
	t.Helper()
	f := &fake{}
	f.Server = httpfake.Start(t, protocolHeaders, func(n int, w http.ResponseWriter, r *http.Request) {
		if c := r.Header.Get("x-ms-client-correlationid"); c != "" {
			f.mu.Lock()
			f.correlations = append(f.correlations, c)
			f.mu.Unlock()
		}
		a := answers[min(n, len(answers))-1]
		for k, v := range a.header {
			w.Header()[k] = v
		}
		w.WriteHeader(a.status)
		io.WriteString(w, a.body)
	})
	hc := httpx.Direct()
	httpfake.Confine(t, hc, f.Addr)
	f.client = &Client{
		Endpoint: f.URL,
		HTTP:     &httpx.Client{HTTP: hc, Sleep: f.sleeper.Sleep},
		Log:      slog.New(slog.NewTextHandler(&f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	return f
}

func ok(body string) answer { return answer{status: http.StatusOK, body: body} }

func status(code int) answer {
	return answer{status: code, body: fmt.Sprintf("fake HostGAPlugin says %d", code)}
}

// identity is the header set of requests made for id, with extra headers.
func identity(extra ...string) map[string]string {
	h := map[string]string{"User-Agent": "azinit", "x-ms-version": "2015-09-01",
		"x-ms-containerid": id.ContainerID, "x-ms-host-config-name": id.ConfigName}
	for i := 0; i+1 < len(extra); i += 2 {
		h[extra[i]] = extra[i+1]
	}
	return h
}

func TestVersions(t *testing.T) {
	f := newFake(t, status(503), ok(`["2015-09-01", "2012-11-30"]`))
	vs, err := f.client.Versions(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"2015-09-01", "2012-11-30"}, vs); diff != "" {
		t.Errorf("Versions (-want +got):\n%s", diff)
	}
	want := httpfake.Request{Method: "GET", URI: "/versions", Header: map[string]string{"User-Agent": "azinit"}}
	if diff := cmp.Diff([]httpfake.Request{want, want}, f.Requests()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}

	f = newFake(t, ok(`["2012-11-30"]`))
	if _, err := f.client.Versions(t.Context()); !errors.Is(err, ErrUnsupportedVersion) ||
		!strings.Contains(err.Error(), "/versions: ") {
		t.Errorf("Versions without 2015-09-01: err = %v", err)
	}
}

func TestParseVersions(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr string
	}{
		{`["2015-09-01"]`, []string{"2015-09-01"}, ""},
		{` [ "2012-11-30" , "2015-09-01" ] `, []string{"2012-11-30", "2015-09-01"}, ""},
		{`["2012-11-30"]`, nil, `want 2015-09-01, offered ["2012-11-30"] (1 in all)`},
		{`[]`, nil, "offered [] (0 in all)"},
		{`["1","2","3","4","5","6","7","8","9"]`, nil, `offered ["1" "2" "3" "4" "5" "6" "7" "8"] (9 in all)`},
		{`2015-09-01`, nil, "want a JSON array of strings"},
		{`{"versions":["2015-09-01"]}`, nil, "want a JSON array of strings"},
		{`[2015]`, nil, "want a JSON array of strings"},
		{``, nil, "want a JSON array of strings"},
	}
	for _, tt := range tests {
		got, err := ParseVersions([]byte(tt.in))
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseVersions(%q) err = %v, want one containing %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseVersions(%q): %v", tt.in, err)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("ParseVersions(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestHealth(t *testing.T) {
	f := newFake(t, ok(""))
	if err := f.client.Health(t.Context()); err != nil {
		t.Fatal(err)
	}
	f = newFake(t, status(500))
	err := f.client.Health(t.Context())
	if err == nil || !strings.Contains(err.Error(), "/health: HTTP 500 Internal Server Error (1 attempt)") {
		t.Errorf("unhealthy: err = %v", err)
	}
	if n := len(f.Requests()); n != 1 {
		t.Errorf("%d requests, want one attempt", n)
	}
}

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestVMSettings(t *testing.T) {
	const doc = `{"hostGAPluginVersion":"1.0.8.133"}`
	tests := []struct {
		name     string
		answer   answer
		etag     string
		want     *VMSettings
		wantErr  string
		is       error
		notMatch string // a prefix the error must start with
	}{
		{name: "200", answer: answer{status: 200, header: http.Header{"Etag": {"123"}}, body: doc},
			want: &VMSettings{Body: []byte(doc), ETag: "123"}},
		{name: "200 again", answer: answer{status: 200, header: http.Header{"Etag": {"124"}}, body: doc}, etag: "123",
			want: &VMSettings{Body: []byte(doc), ETag: "124"}},
		{name: "304", answer: answer{status: 304, header: http.Header{"Etag": {"123"}}}, etag: "123",
			want: &VMSettings{ETag: "123", NotModified: true}},
		{name: "304 unasked", answer: answer{status: 304}, wantErr: "HTTP 304 Not Modified (1 attempt)"},
		{name: "404", answer: status(404), wantErr: "/vmSettings: HTTP 404 Not Found (1 attempt)", is: ErrNotSupported},
		{name: "410", answer: status(410), etag: "123", wantErr: "HTTP 410 Gone (1 attempt)", is: httpx.ErrGone},
		{name: "no etag", answer: ok(doc), wantErr: "/vmSettings: HTTP 200 without an ETag"},
		{name: "502", answer: status(502), wantErr: "[Internal error in HostGAPlugin] GET http://"},
		{name: "500", answer: status(500), wantErr: "HTTP 500 Internal Server Error (1 attempt)"},
		{name: "503", answer: status(503), wantErr: "HTTP 503 Service Unavailable (1 attempt)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, tt.answer)
			got, err := f.client.VMSettings(t.Context(), id, tt.etag)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				if tt.is != nil && !errors.Is(err, tt.is) {
					t.Errorf("err = %v, want one matching %v", err, tt.is)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("VMSettings (-want +got):\n%s", diff)
				}
			}
			want := identity()
			if tt.etag != "" {
				want["If-None-Match"] = tt.etag
			}
			if diff := cmp.Diff([]httpfake.Request{{Method: "GET", URI: "/vmSettings", Header: want}}, f.Requests()); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
			if len(f.correlations) != 1 || !uuidV4.MatchString(f.correlations[0]) {
				t.Errorf("x-ms-client-correlationid %q, want one random UUID", f.correlations)
			}
			if len(f.sleeper.Slept()) != 0 {
				t.Errorf("waited %v: vmSettings has one attempt", f.sleeper.Slept())
			}
		})
	}
}

func TestVMSettingsCorrelationIDs(t *testing.T) {
	f := newFake(t, answer{status: 200, header: http.Header{"Etag": {"1"}}, body: "{}"})
	for range 3 {
		if _, err := f.client.VMSettings(t.Context(), id, ""); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	for _, c := range f.correlations {
		seen[c] = true
	}
	if len(seen) != 3 {
		t.Errorf("correlation ids %q, want a fresh one per request", f.correlations)
	}
}

func TestVMSettingsUnreachable(t *testing.T) {
	f := newFake(t, ok(""))
	f.client.Endpoint = "http://127.0.0.1:1" // refused by the test dialer
	_, err := f.client.VMSettings(t.Context(), id, "")
	if err == nil || !strings.Contains(err.Error(), "(1 attempt)") {
		t.Errorf("err = %v, want one failed attempt", err)
	}
}

func TestGetArtifact(t *testing.T) {
	location := "https://acct.blob.core.windows.net/ext/manifest.xml?sig=" + secret
	f := newFake(t, status(400), ok("<PluginVersionManifest/>"))
	got, err := f.client.Get(t.Context(), id, Artifact{Location: location, VerifyFromBlob: true})
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "<PluginVersionManifest/>" {
		t.Errorf("Get = %q", got)
	}
	want := httpfake.Request{Method: "GET", URI: "/extensionArtifact", Header: identity(
		"x-ms-artifact-location", location, "x-ms-verify-from-artifacts-blob", "true")}
	if diff := cmp.Diff([]httpfake.Request{want, want}, f.Requests()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]time.Duration{2 * time.Second}, f.sleeper.Slept()); diff != "" {
		t.Errorf("waits (-want +got):\n%s", diff)
	}

	f = newFake(t, answer{status: 400, body: "<Error><Code>InvalidContainerConfiguration</Code></Error>"})
	_, err = f.client.Get(t.Context(), id, Artifact{Location: location})
	if !errors.Is(err, wireserver.ErrInvalidContainer) || !strings.Contains(err.Error(), "(6 attempts)") {
		t.Errorf("stale container: err = %v, want ErrInvalidContainer after 6 attempts", err)
	}
	if !strings.Contains(err.Error(), "fetching https://acct.blob.core.windows.net/ext/manifest.xml?sig=REDACTED through the HostGAPlugin") {
		t.Errorf("error does not name the artifact: %v", err)
	}
	if strings.Contains(err.Error()+f.logs.String(), secret) {
		t.Errorf("error or log reveals the SAS signature: %v\n%s", err, f.logs.String())
	}

	f = newFake(t, status(410))
	if _, err := f.client.Get(t.Context(), id, Artifact{Location: location}); !errors.Is(err, httpx.ErrGone) || len(f.Requests()) != 1 {
		t.Errorf("410: err = %v after %d requests, want ErrGone after 1", err, len(f.Requests()))
	}
	if _, err := f.client.Get(t.Context(), id, Artifact{}); err == nil || !strings.Contains(err.Error(), "no location") {
		t.Errorf("no location: err = %v", err)
	}
}

func TestDownloadArtifact(t *testing.T) {
	pkg := strings.Repeat("PK", 50000)
	f := newFake(t, status(500), ok(pkg))
	out, err := os.Create(filepath.Join(t.TempDir(), "Ext__1.0.zip"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	a := Artifact{Location: "https://acct/ext/Ext__1.0.zip?sig=" + secret, ManifestLocation: "https://acct/ext/manifest.xml?sig=" + secret}
	if err := f.client.Download(t.Context(), id, a, out); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(out.Name())
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != pkg {
		t.Errorf("downloaded %d bytes, want the %d served", len(got), len(pkg))
	}
	want := httpfake.Request{Method: "GET", URI: "/extensionArtifact", Header: identity(
		"x-ms-artifact-location", a.Location, "x-ms-artifact-manifest-location", a.ManifestLocation)}
	if diff := cmp.Diff([]httpfake.Request{want, want}, f.Requests()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}

	f = newFake(t, status(400))
	if err := f.client.Download(t.Context(), id, a, out); err == nil || len(f.Requests()) != 1 {
		t.Errorf("400 for a package: err = %v after %d requests, want a failure without retry", err, len(f.Requests()))
	}
}

// envelopeOf decodes a PUT /status body.
type envelopeOf struct {
	Content *string `json:"content"`
	Headers []struct {
		Name  string `json:"headerName"`
		Value string `json:"headerValue"`
	} `json:"headers"`
	RequestURI string `json:"requestUri"`
}

func TestPutStatusBlockBlob(t *testing.T) {
	f := newFake(t, ok(""))
	status := []byte(`{"version":"1.1"}`)
	if err := f.client.PutStatus(t.Context(), id, storage.Blob{URL: blobURL, Type: extconfig.BlockBlob}, status, now); err != nil {
		t.Fatal(err)
	}
	reqs := f.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	golden(t, "status_blockblob.json", []byte(reqs[0].Body+"\n"))
	want := httpfake.Request{Method: "PUT", URI: "/status", Header: identity("Content-Type", "application/json"), Body: reqs[0].Body}
	if diff := cmp.Diff(want, reqs[0]); diff != "" {
		t.Errorf("request (-want +got):\n%s", diff)
	}
	if strings.Contains(f.logs.String(), secret) {
		t.Errorf("the log reveals the SAS signature:\n%s", f.logs.String())
	}
}

// TestPutStatusPageBlob checks the envelopes of a page blob upload: the
// create PUT without content, then pages padded with spaces.
func TestPutStatusPageBlob(t *testing.T) {
	for _, size := range []int{0, 1, 511, 512, 513, 4<<20 + 1} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			f := newFake(t, ok(""))
			status := bytes.Repeat([]byte("s"), size)
			if err := f.client.PutStatus(t.Context(), id, storage.Blob{URL: blobURL, Type: extconfig.PageBlob}, status, now); err != nil {
				t.Fatal(err)
			}
			want, err := storage.StatusRequests(storage.Blob{URL: blobURL, Type: extconfig.PageBlob}, status, now, ' ')
			if err != nil {
				t.Fatal(err)
			}
			reqs := f.Requests()
			if len(reqs) != len(want) {
				t.Fatalf("%d requests, want %d", len(reqs), len(want))
			}
			var content []byte
			for i, r := range reqs {
				var env envelopeOf
				if err := json.Unmarshal([]byte(r.Body), &env); err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				if env.RequestURI != want[i].URL {
					t.Errorf("request %d: requestUri %q, want %q", i, env.RequestURI, want[i].URL)
				}
				got := map[string]string{}
				for _, h := range env.Headers {
					got[h.Name] = h.Value
				}
				wantHeaders := map[string]string{}
				for k := range want[i].Header {
					name := k
					if k != "Content-Length" {
						name = strings.ToLower(k)
					}
					wantHeaders[name] = want[i].Header.Get(k)
				}
				if diff := cmp.Diff(wantHeaders, got); diff != "" {
					t.Errorf("request %d headers (-want +got):\n%s", i, diff)
				}
				if i == 0 {
					if env.Content != nil {
						t.Errorf("the create PUT has content")
					}
					continue
				}
				b, err := base64.StdEncoding.DecodeString(*env.Content)
				if err != nil {
					t.Fatalf("request %d content: %v", i, err)
				}
				content = append(content, b...)
			}
			rounded := (size + 511) / 512 * 512
			if wantContent := append(status, bytes.Repeat([]byte(" "), rounded-size)...); !bytes.Equal(content, wantContent) {
				t.Errorf("content: %d bytes, want the status padded with spaces to %d", len(content), rounded)
			}
		})
	}
}

func TestPutStatusFailures(t *testing.T) {
	blob := storage.Blob{URL: blobURL, Type: extconfig.PageBlob}
	tests := []struct {
		name     string
		answers  []answer
		want     string
		is       error
		requests int
	}{
		{"gone", []answer{status(410)}, "request 1 of 2: PUT http://", httpx.ErrGone, 1},
		{"gone on a page", []answer{ok(""), status(410)}, "request 2 of 2: PUT http://", httpx.ErrGone, 2},
		{"retried", []answer{status(500), ok("")}, "", nil, 3},
		{"stale container", []answer{{status: 400, body: "InvalidContainerConfiguration"}}, "invalid container configuration", wireserver.ErrInvalidContainer, 1},
		{"unhealthy", []answer{status(500)}, "HTTP 500 Internal Server Error (6 attempts)", nil, 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, tt.answers...)
			err := f.client.PutStatus(t.Context(), id, blob, []byte("{}"), now)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
			} else {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("err = %v, want one containing %q", err, tt.want)
				}
				if !strings.Contains(err.Error(), "status upload to https://acct.blob.core.windows.net/$system/vm.status?") ||
					!strings.Contains(err.Error(), "sig=REDACTED") || strings.Contains(err.Error(), secret) {
					t.Errorf("error does not name the blob redacted: %v", err)
				}
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("err = %v, want one matching %v", err, tt.is)
			}
			if n := len(f.Requests()); n != tt.requests {
				t.Errorf("%d requests, want %d", n, tt.requests)
			}
			if strings.Contains(f.logs.String(), secret) {
				t.Errorf("the log reveals the SAS signature:\n%s", f.logs.String())
			}
		})
	}
}

func TestBadInput(t *testing.T) {
	f := newFake(t, ok(""))
	c, ctx := f.client, t.Context()
	blob := storage.Blob{URL: blobURL, Type: extconfig.BlockBlob}
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"no container id", c.PutStatus(ctx, Identity{ConfigName: "x"}, blob, nil, now), `identity incomplete: container id ""`},
		{"no config name", func() error { _, err := c.VMSettings(ctx, Identity{ContainerID: "x"}, ""); return err }(), `config name ""`},
		{"bad blob", c.PutStatus(ctx, id, storage.Blob{URL: "/x?sig=" + secret, Type: extconfig.BlockBlob}, nil, now), "not an absolute http(s) URL"},
		{"no endpoint", (&Client{}).Health(ctx), "hostgaplugin endpoint not configured"},
		{"endpoint path", (&Client{Endpoint: "http://127.0.0.1:1/x"}).Health(ctx), "want http://host[:port] or a bare host"},
		{"endpoint scheme", (&Client{Endpoint: "ftp://127.0.0.1:1"}).Health(ctx), "want http://host[:port] or a bare host"},
	}
	for _, tt := range tests {
		if tt.err == nil || !strings.Contains(tt.err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want one containing %q", tt.name, tt.err, tt.want)
		}
		if tt.err != nil && strings.Contains(tt.err.Error(), secret) {
			t.Errorf("%s: error reveals the SAS signature: %v", tt.name, tt.err)
		}
	}
	if n := len(f.Requests()); n != 0 {
		t.Errorf("bad input sent %d requests", n)
	}
}

// TestEndpointURL resolves endpoints without sending anything.
func TestEndpointURL(t *testing.T) {
	tests := map[string]string{
		"168.63.129.16":          "http://168.63.129.16:32526/health",
		"127.0.0.1:8080":         "http://127.0.0.1:8080/health",
		"::1":                    "http://[::1]:32526/health",
		"[::1]":                  "http://[::1]:32526/health",
		"http://127.0.0.1:32526": "http://127.0.0.1:32526/health",
		"http://127.0.0.1/":      "http://127.0.0.1/health",
	}
	for endpoint, want := range tests {
		got, err := (&Client{Endpoint: endpoint}).url("/health")
		if err != nil || got != want {
			t.Errorf("endpoint %q: %q, %v; want %q", endpoint, got, err, want)
		}
	}
}

// golden compares got with testdata/name, rewriting it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s (-want +got):\n%s", path, diff)
	}
}
