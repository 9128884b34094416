package wireserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/azinit/azinit/internal/fixtures"
	"github.com/azinit/azinit/internal/httpx"
	"github.com/azinit/azinit/internal/testenv/httpfake"
	"github.com/google/go-cmp/cmp"
)

// protocolHeaders are the headers the fake records: those the protocol
// defines.
var protocolHeaders = []string{
	"User-Agent", "x-ms-agent-name", "x-ms-version", "Content-Type",
	"x-ms-guest-agent-public-x509-cert", "x-ms-cipher-name", "x-ms-guest-agent-name",
}

// fake is a WireServer on 127.0.0.1 and a client that can reach nothing
// else: its dialer refuses every other address and records the refusal.
type fake struct {
	*httpfake.Server
	client   *Client
	confined *httpfake.Confinement
	sleeper  httpfake.Sleeper
}

func newFake(t testing.TB, h http.Handler) *fake {
	t.Helper()
	f := &fake{}
	f.Server = httpfake.Start(t, protocolHeaders, func(_ int, w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) })
	// The production client (no proxy, no redirects), confined to the fake.
	hc := httpx.Direct()
	f.confined = httpfake.Confine(t, hc, f.Addr)
	f.client = &Client{
		Endpoint:  f.URL,
		UserAgent: "azinit-test/1",
		HTTP:      &httpx.Client{HTTP: hc, Sleep: f.sleeper.Sleep},
	}
	return f
}

// checkDials fails if the client dialled anything but the fake.
func (f *fake) checkDials(t *testing.T) {
	t.Helper()
	for _, d := range f.confined.Refused() {
		t.Errorf("client dialled %s; only the fake %s is allowed", d, f.Addr)
	}
}

// platform serves the wire fixtures the way the WireServer does.
func platform(t testing.TB) http.Handler {
	versions := fixtures.Read(t, "wire/version_info.xml")
	goalState := fixtures.Read(t, "wire/goal_state.xml")
	hostingEnv := fixtures.Read(t, "wire/hosting_env.xml")
	sharedConfig := fixtures.Read(t, "wire/shared_config.xml")
	extConf := fixtures.Read(t, "wire/ext_conf.xml")
	certs := fixtures.Read(t, "wire/certs.xml")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		switch {
		case r.URL.Path == "/" && q.Get("comp") == "versions":
			w.Write(versions)
		case r.URL.Path == "/machine/" && q.Get("comp") == "goalstate":
			w.Write(goalState)
		case r.URL.Path == "/machine" && q.Get("comp") == "health" && r.Method == http.MethodPost:
		case r.URL.Path == "/provisioning/health" && r.Method == http.MethodPost:
		case strings.HasPrefix(r.URL.EscapedPath(), "/machine/865a6683-91d8-450f-99ae/") && q.Get("comp") == "certificates":
			w.Write(certs)
		case strings.HasPrefix(r.URL.EscapedPath(), "/machine/865a6683-91d8-450f-99ae/") && q.Get("comp") == "config":
			switch q.Get("type") {
			case "hostingEnvironmentConfig":
				w.Write(hostingEnv)
			case "sharedConfig":
				w.Write(sharedConfig)
			case "extensionsConfig":
				w.Write(extConf)
			default:
				http.NotFound(w, r)
			}
		default:
			http.NotFound(w, r)
		}
	})
}

const (
	goalStateURI  = "/machine/?comp=goalstate"
	fixtureURI    = "/machine/865a6683-91d8-450f-99ae/bc8b9d47%2Db5ed%2D4704%2D85d9%2Dfd74cc967ec2.%5Fcanary"
	transportCert = "MIIDBzCCAe+gAwIBAgIJAPbase64"
)

func protocol(extra ...string) map[string]string {
	h := map[string]string{"User-Agent": "azinit-test/1", "x-ms-agent-name": "WALinuxAgent", "x-ms-version": "2012-11-30"}
	for i := 0; i < len(extra); i += 2 {
		h[extra[i]] = extra[i+1]
	}
	return h
}

// TestProvisioningExchange runs the provisioning-time exchange against the
// fake: the goal state names 168.63.129.16, yet every request must reach
// the fake, with the protocol's paths and headers.
func TestProvisioningExchange(t *testing.T) {
	var logs bytes.Buffer
	f := newFake(t, platform(t))
	f.client.Log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, ctx := f.client, t.Context()

	v, err := c.Versions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v.Preferred != ProtocolVersion {
		t.Errorf("Preferred = %q", v.Preferred)
	}
	gs, err := c.GoalState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&fixtureGoalState, gs, ignoreRaw); diff != "" {
		t.Errorf("GoalState (-want +got):\n%s", diff)
	}
	he, err := c.HostingEnvironment(ctx, gs)
	if err != nil {
		t.Fatal(err)
	}
	if he.VMName != "MachineRole_IN_0" || he.RoleName != "MachineRole" || he.DeploymentName != "db00a7755a5e4e8a8fe4b19bc3b330c3" {
		t.Errorf("HostingEnvironment = %+v", he)
	}
	if !bytes.Equal(he.Raw, fixtures.Read(t, "wire/hosting_env.xml")) {
		t.Error("HostingEnvironment.Raw is not the document")
	}
	shared, err := c.SharedConfig(ctx, gs)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(shared, fixtures.Read(t, "wire/shared_config.xml")) {
		t.Error("SharedConfig is not the document")
	}
	ext, err := c.ExtensionsConfig(ctx, gs)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ext, fixtures.Read(t, "wire/ext_conf.xml")) {
		t.Error("ExtensionsConfig is not the document")
	}
	if _, err := c.ExtensionsConfig(ctx, &GoalState{}); !errors.Is(err, ErrNoExtensionsConfig) {
		t.Errorf("a goal state without extensions: err = %v", err)
	}
	certs, err := c.Certificates(ctx, gs, transportCert, "AES128_CBC")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(certs, fixtures.Read(t, "wire/certs.xml")) {
		t.Error("Certificates is not the document")
	}
	if _, err := c.Certificates(ctx, gs, transportCert, ""); err != nil {
		t.Fatal(err)
	}
	if err := c.ReportHealth(ctx, gs, Ready()); err != nil {
		t.Fatal(err)
	}

	ready, err := os.ReadFile("testdata/health_ready.xml")
	if err != nil {
		t.Fatal(err)
	}
	want := []httpfake.Request{
		{Method: "GET", URI: "/?comp=versions", Header: map[string]string{"User-Agent": "azinit-test/1"}},
		{Method: "GET", URI: goalStateURI, Header: protocol()},
		{Method: "GET", URI: fixtureURI + "?comp=config&type=hostingEnvironmentConfig&incarnation=1", Header: protocol()},
		{Method: "GET", URI: fixtureURI + "?comp=config&type=sharedConfig&incarnation=1", Header: protocol()},
		{Method: "GET", URI: fixtureURI + "?comp=config&type=extensionsConfig&incarnation=1", Header: protocol()},
		{Method: "GET", URI: fixtureURI + "?comp=certificates&incarnation=1", Header: protocol(
			"x-ms-guest-agent-public-x509-cert", transportCert, "x-ms-cipher-name", "AES128_CBC")},
		{Method: "GET", URI: fixtureURI + "?comp=certificates&incarnation=1", Header: protocol(
			"x-ms-guest-agent-public-x509-cert", transportCert)},
		{Method: "POST", URI: "/machine?comp=health", Header: protocol("Content-Type", "text/xml;charset=utf-8"), Body: string(ready)},
	}
	if diff := cmp.Diff(want, f.Requests()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
	f.checkDials(t)
	if !strings.Contains(logs.String(), "re-basing wireserver URI onto the configured endpoint") ||
		!strings.Contains(logs.String(), "from=http://168.63.129.16:80") {
		t.Errorf("no debug line about re-basing the goal state's URIs:\n%s", logs.String())
	}
}

func TestReportHealthGolden(t *testing.T) {
	tests := []struct {
		name   string
		health Health
		golden string
	}{
		{"ready", Ready(), "testdata/health_ready.xml"},
		{"not ready with details", NotReady(SubStatusProvisioningFailed, "Failed to mount dvd <oops> & more"), "testdata/health_notready.xml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, platform(t))
			if err := f.client.ReportHealth(t.Context(), &fixtureGoalState, tt.health); err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(tt.golden)
			if err != nil {
				t.Fatal(err)
			}
			reqs := f.Requests()
			if len(reqs) != 1 || reqs[0].Body != string(want) {
				t.Errorf("body:\n%s\nwant:\n%s", reqs[0].Body, want)
			}
		})
	}
}

func TestHealthDescription(t *testing.T) {
	gs := &GoalState{Incarnation: "2", ContainerID: "c&d", RoleInstanceID: "r<1>"}
	tests := []struct {
		name, description, want string
	}{
		{"escaped", `a "quoted" 'x' <b> & c`, "a &#34;quoted&#34; &#39;x&#39; &lt;b&gt; &amp; c"},
		{"truncated to 3686 characters, not bytes", strings.Repeat("é", 5000), strings.Repeat("é", MaxDescription)},
		{"truncated before escaping", strings.Repeat("a", MaxDescription-1) + "<<<", strings.Repeat("a", MaxDescription-1) + "&lt;"},
		{"invalid utf-8 and control characters", "bad \xff\x01 end", "bad \uFFFD\uFFFD end"},
		{"newlines", "line1\nline2", "line1&#xA;line2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := string(healthXML(gs, NotReady(SubStatusProvisioningFailed, tt.description)))
			want := "<Description>" + tt.want + "</Description>"
			if !strings.Contains(body, want) {
				t.Errorf("body %q does not contain %q", body, want)
			}
			if !strings.Contains(body, "<ContainerId>c&amp;d</ContainerId>") || !strings.Contains(body, "<InstanceId>r&lt;1&gt;</InstanceId>") {
				t.Errorf("goal state values not escaped: %s", body)
			}
			if err := checkXML([]byte(body), "Health"); err != nil {
				t.Errorf("not well-formed: %v", err)
			}
		})
	}
}

func TestHealthValidate(t *testing.T) {
	tests := []struct {
		name    string
		h       Health
		wantErr string
	}{
		{"ready", Ready(), ""},
		{"provisioning", NotReady(SubStatusProvisioning, "Starting"), ""},
		{"failed", NotReady(SubStatusProvisioningFailed, "boom"), ""},
		{"not ready, no details", Health{State: StateNotReady}, ""},
		{"unknown state", Health{State: "Healthy"}, `health state "Healthy": want Ready or NotReady`},
		{"empty state", Health{}, `health state "": want Ready or NotReady`},
		{"ready with details", Health{State: StateReady, SubStatus: SubStatusProvisioning}, "health Ready takes no sub-status or description"},
		{"unknown sub-status", NotReady("Oops", ""), `health sub-status "Oops"`},
		{"description without sub-status", Health{State: StateNotReady, Description: "x"}, "health description given without a sub-status"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkErr(t, tt.h.Validate(), tt.wantErr, nil)
			if tt.wantErr == "" {
				return
			}
			// An invalid report is never sent.
			f := newFake(t, platform(t))
			if err := f.client.ReportHealth(t.Context(), &fixtureGoalState, tt.h); err == nil {
				t.Error("ReportHealth accepted it")
			}
			if err := f.client.ReportHealthJSON(t.Context(), tt.h); err == nil {
				t.Error("ReportHealthJSON accepted it")
			}
			if n := len(f.Requests()); n != 0 {
				t.Errorf("%d requests sent", n)
			}
		})
	}
}

func TestReportHealthJSON(t *testing.T) {
	tests := []struct {
		name string
		h    Health
		want string
	}{
		{"ready", Ready(), `{"state":"Ready"}`},
		{"failed", NotReady(SubStatusProvisioningFailed, "result=error|reason=x"),
			`{"state":"NotReady","details":{"subStatus":"ProvisioningFailed","description":"result=error|reason=x"}}`},
		{"not ready, no details", Health{State: StateNotReady}, `{"state":"NotReady"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, platform(t))
			if err := f.client.ReportHealthJSON(t.Context(), tt.h); err != nil {
				t.Fatal(err)
			}
			want := []httpfake.Request{{Method: "POST", URI: "/provisioning/health", Body: tt.want, Header: protocol(
				"Content-Type", "application/json", "x-ms-guest-agent-name", "azinit-test/1")}}
			if diff := cmp.Diff(want, f.Requests()); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReportHealthJSONRetries(t *testing.T) {
	for _, status := range []int{429, 500, 503} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			f := newFake(t, failFirst(1, status, platform(t)))
			if err := f.client.ReportHealthJSON(t.Context(), Ready()); err != nil {
				t.Fatal(err)
			}
			if n := len(f.Requests()); n != 2 {
				t.Errorf("%d requests, want 2", n)
			}
		})
	}
	t.Run("gives up", func(t *testing.T) {
		f := newFake(t, failFirst(1000, 503, platform(t)))
		err := f.client.ReportHealthJSON(t.Context(), Ready())
		if n := len(f.Requests()); err == nil || n != JSONHealthPolicy().Attempts {
			t.Errorf("err = %v after %d requests, want an error after %d", err, n, JSONHealthPolicy().Attempts)
		}
	})
	for _, status := range []int{400, 404, 502} {
		t.Run(fmt.Sprintf("%d not retried", status), func(t *testing.T) {
			f := newFake(t, failFirst(1, status, platform(t)))
			err := f.client.ReportHealthJSON(t.Context(), Ready())
			if n := len(f.Requests()); err == nil || n != 1 {
				t.Errorf("err = %v after %d requests, want an error after 1", err, n)
			}
		})
	}
}

// failFirst answers the first n requests with status, then passes to next.
func failFirst(n, status int, next http.Handler) http.Handler {
	var mu sync.Mutex
	seen := 0
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen++
		fail := seen <= n
		mu.Unlock()
		if fail {
			w.WriteHeader(status)
			fmt.Fprintf(w, "status %d", status)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func TestRetries(t *testing.T) {
	fib := []time.Duration{2 * time.Second, 3 * time.Second, 5 * time.Second, 8 * time.Second, 13 * time.Second}
	for _, status := range retryStatuses {
		throttle := status == 403 || status == 503 || status == 429
		t.Run(fmt.Sprintf("%d then success", status), func(t *testing.T) {
			f := newFake(t, failFirst(1, status, platform(t)))
			if _, err := f.client.GoalState(t.Context()); err != nil {
				t.Fatal(err)
			}
			want := []time.Duration{2 * time.Second}
			if throttle {
				want = []time.Duration{time.Second}
			}
			if diff := cmp.Diff(want, f.sleeper.Slept()); diff != "" || len(f.Requests()) != 2 {
				t.Errorf("%d requests, waits (-want +got):\n%s", len(f.Requests()), diff)
			}
		})
		t.Run(fmt.Sprintf("%d until give up", status), func(t *testing.T) {
			f := newFake(t, failFirst(1000, status, platform(t)))
			_, err := f.client.GoalState(t.Context())
			var he *httpx.Error
			if !errors.As(err, &he) {
				t.Fatalf("err = %v, want an *httpx.Error", err)
			}
			wantWaits, wantAttempts := fib, 6
			if throttle {
				wantAttempts = 25
				wantWaits = nil
				for range 24 {
					wantWaits = append(wantWaits, time.Second)
				}
			}
			if he.Attempts != wantAttempts || len(f.Requests()) != wantAttempts {
				t.Errorf("%d attempts, %d requests, want %d", he.Attempts, len(f.Requests()), wantAttempts)
			}
			if diff := cmp.Diff(wantWaits, f.sleeper.Slept()); diff != "" {
				t.Errorf("waits (-want +got):\n%s", diff)
			}
			msg := err.Error()
			if !strings.Contains(msg, "GET http://"+f.Addr+goalStateURI) || !strings.Contains(msg, fmt.Sprintf("HTTP %d", status)) {
				t.Errorf("error %q does not name the endpoint and the status", msg)
			}
		})
	}
}

func TestNotRetried(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		body    string
		is      error
		wantErr string
	}{
		{"gone", 410, "", httpx.ErrGone, "HTTP 410 Gone (1 attempt)"},
		{"invalid container", 400, "<Error><Code>InvalidContainerConfiguration</Code></Error>", ErrInvalidContainer,
			"invalid container configuration: GET http://"},
		{"other bad request", 400, "<Error><Code>Other</Code></Error>", nil, "HTTP 400 Bad Request (1 attempt)"},
		{"not found", 404, "", nil, "HTTP 404 Not Found (1 attempt)"},
		{"redirect is not followed", 302, "", nil, "HTTP 302 Found (1 attempt)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.status == 302 {
					w.Header().Set("Location", "http://168.63.129.16/machine/?comp=goalstate")
				}
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			}))
			_, err := f.client.GoalState(t.Context())
			checkErr(t, err, tt.wantErr, tt.is)
			if tt.is != ErrInvalidContainer && errors.Is(err, ErrInvalidContainer) {
				t.Errorf("%v matches ErrInvalidContainer", err)
			}
			if n := len(f.Requests()); n != 1 {
				t.Errorf("%d requests, want 1", n)
			}
			f.checkDials(t)
		})
	}
}

// hijack answers a request by doing something to its connection instead.
func hijack(t *testing.T, w http.ResponseWriter, fn func(c net.Conn)) {
	c, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		t.Error(err)
		return
	}
	fn(c)
	c.Close()
}

func TestTransportFailures(t *testing.T) {
	goalState := fixtures.Read(t, "wire/goal_state.xml")
	reset := func(c net.Conn) { c.(*net.TCPConn).SetLinger(0) } // close sends RST
	truncate := func(c net.Conn) {
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(goalState), goalState[:100])
	}
	tests := []struct {
		name    string
		first   func(c net.Conn) // what happens to the first connection
		always  bool             // to every connection
		wantErr string
	}{
		{"connection reset, then success", reset, false, ""},
		{"truncated body, then success", truncate, false, ""},
		{"connection reset every time", reset, true, "(6 attempts)"},
		{"truncated body every time", truncate, true, "reading response: unexpected EOF (6 attempts)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			n := 0
			f := newFake(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				n++
				broken := n == 1 || tt.always
				mu.Unlock()
				if broken {
					hijack(t, w, tt.first)
					return
				}
				w.Write(goalState)
			}))
			gs, err := f.client.GoalState(t.Context())
			checkErr(t, err, tt.wantErr, nil)
			if tt.wantErr == "" && gs.Incarnation != "1" {
				t.Errorf("goal state %+v", gs)
			}
			want := 2
			if tt.always {
				want = 6
			}
			if got := len(f.Requests()); got != want {
				t.Errorf("%d requests, want %d", got, want)
			}
		})
	}
}

func TestGarbageBodies(t *testing.T) {
	tests := []struct {
		name    string
		call    func(c *Client, ctx context.Context) error
		body    string
		wantErr string
	}{
		{"goal state", func(c *Client, ctx context.Context) error { _, err := c.GoalState(ctx); return err },
			"<html>oops</html>", "GET http://{addr}/machine/?comp=goalstate: parsing goal state: line 1: root element is <html>, want <GoalState>"},
		{"versions", func(c *Client, ctx context.Context) error { _, err := c.Versions(ctx); return err },
			"\x00garbage", "GET http://{addr}/?comp=versions: parsing versions: XML syntax error"},
		{"hosting environment", func(c *Client, ctx context.Context) error {
			_, err := c.HostingEnvironment(ctx, &fixtureGoalState)
			return err
		}, "<HostingEnvironmentConfig>", "GET http://{addr}" + fixtureURI + "?comp=config&type=hostingEnvironmentConfig&incarnation=1: parsing hosting environment: XML syntax error on line 1: unexpected EOF"},
		{"shared config", func(c *Client, ctx context.Context) error {
			_, err := c.SharedConfig(ctx, &fixtureGoalState)
			return err
		},
			"<SharedConfig><a></SharedConfig>", "parsing shared config: XML syntax error on line 1: element <a> closed by </SharedConfig>"},
		{"certificates", func(c *Client, ctx context.Context) error {
			_, err := c.Certificates(ctx, &fixtureGoalState, transportCert, "AES128_CBC")
			return err
		}, "not xml", "parsing certificates: no <CertificateFile> element"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, tt.body) }))
			err := tt.call(f.client, t.Context())
			checkErr(t, err, strings.ReplaceAll(tt.wantErr, "{addr}", f.Addr), nil)
		})
	}
}

func TestGoalStateWithoutRoleInstance(t *testing.T) {
	full := fixtures.Read(t, "wire/goal_state.xml")
	start := bytes.Index(full, []byte("<RoleInstanceList>"))
	end := bytes.Index(full, []byte("</RoleInstanceList>")) + len("</RoleInstanceList>")
	empty := append(append([]byte{}, full[:start]...), full[end:]...)
	serve := func(emptyFetches int) http.Handler {
		var mu sync.Mutex
		n := 0
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			n++
			doc := full
			if n <= emptyFetches {
				doc = empty
			}
			mu.Unlock()
			w.Write(doc)
		})
	}
	half := 500 * time.Millisecond

	f := newFake(t, serve(2))
	gs, err := f.client.GoalState(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if gs.RoleInstanceID != fixtureGoalState.RoleInstanceID {
		t.Errorf("RoleInstanceID = %q", gs.RoleInstanceID)
	}
	if diff := cmp.Diff([]time.Duration{half, half}, f.sleeper.Slept()); diff != "" || len(f.Requests()) != 3 {
		t.Errorf("%d requests, waits (-want +got):\n%s", len(f.Requests()), diff)
	}

	f = newFake(t, serve(100))
	_, err = f.client.GoalState(t.Context())
	checkErr(t, err, "parsing goal state: goal state has no RoleInstance (6 fetches)", ErrNoRoleInstance)
	if diff := cmp.Diff([]time.Duration{half, half, half, half, half}, f.sleeper.Slept()); diff != "" || len(f.Requests()) != 6 {
		t.Errorf("%d requests, waits (-want +got):\n%s", len(f.Requests()), diff)
	}
}

func TestVersionsUnsupported(t *testing.T) {
	f := newFake(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `<?xml version="1.0" encoding="utf-8"?><Versions><Preferred><Version>2010-12-15</Version></Preferred></Versions>`)
	}))
	_, err := f.client.Versions(t.Context())
	checkErr(t, err, `want 2012-11-30, offered preferred "2010-12-15"`, ErrUnsupportedVersion)
}

func TestCertificatesPreconditions(t *testing.T) {
	f := newFake(t, platform(t))
	noCerts := fixtureGoalState
	noCerts.Certificates = ""
	if _, err := f.client.Certificates(t.Context(), &noCerts, transportCert, "AES128_CBC"); !errors.Is(err, ErrNoCertificates) {
		t.Errorf("err = %v, want ErrNoCertificates", err)
	}
	if _, err := f.client.Certificates(t.Context(), &fixtureGoalState, "", "AES128_CBC"); err == nil {
		t.Error("no error without a transport certificate")
	}
	if n := len(f.Requests()); n != 0 {
		t.Errorf("%d requests sent", n)
	}
}

func TestEndpoint(t *testing.T) {
	tests := []struct {
		name     string
		endpoint string // %s is the fake's host:port
		wantErr  string
	}{
		{"url", "http://%s", ""},
		{"trailing slash", "http://%s/", ""},
		{"bare host", "%s", ""},
		{"empty", "", "wireserver endpoint not configured"},
		{"path", "http://%s/wire", "want no path or query"},
		{"query", "http://%s/?x=1", "want no path or query"},
		{"scheme", "ftp://%s", "want http://host[:port]"},
		{"no host", "http://", "want http://host[:port]"},
		{"bad", "http://[::1", `wireserver endpoint "http://[::1"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, platform(t))
			if strings.Contains(tt.endpoint, "%s") {
				f.client.Endpoint = fmt.Sprintf(tt.endpoint, f.Addr)
			} else {
				f.client.Endpoint = tt.endpoint
			}
			_, err := f.client.GoalState(t.Context())
			checkErr(t, err, tt.wantErr, nil)
			if tt.wantErr != "" && len(f.Requests()) != 0 {
				t.Error("a request was sent")
			}
			f.checkDials(t)
		})
	}
}

func TestRebase(t *testing.T) {
	tests := []struct {
		name, endpoint, uri, want, wantErr string
	}{
		{"platform address", "http://127.0.0.1:8080", fixtureGoalState.SharedConfig,
			"http://127.0.0.1:8080" + fixtureURI + "?comp=config&type=sharedConfig&incarnation=1", ""},
		{"https endpoint", "https://[::1]:8443", "http://168.63.129.16/machine?comp=x#frag", "https://[::1]:8443/machine?comp=x#frag", ""},
		{"user info dropped", "http://127.0.0.1", "http://u:p@168.63.129.16/a", "http://127.0.0.1/a", ""},
		{"file", "http://127.0.0.1", "file:///etc/shadow", "", `SharedConfig URI: "file:///etc/shadow" is not an absolute http(s) URI`},
		{"opaque", "http://127.0.0.1", "http:foo", "", "is not an absolute http(s) URI"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Client{Endpoint: tt.endpoint}
			u, err := c.rebase("SharedConfig", tt.uri)
			checkErr(t, err, tt.wantErr, nil)
			if err == nil && u.String() != tt.want {
				t.Errorf("rebase = %s, want %s", u, tt.want)
			}
		})
	}
}

func TestPerAttemptTimeout(t *testing.T) {
	f := newFake(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	p := ProtocolPolicy()
	p.Attempts, p.Timeout = 2, 20*time.Millisecond
	f.client.Policy = p
	_, err := f.client.GoalState(t.Context())
	checkErr(t, err, "no response within 20ms: context deadline exceeded (2 attempts)", nil)
}

func TestPolicies(t *testing.T) {
	type view struct {
		Attempts, ThrottleAttempts int
		Waits                      []time.Duration
		Retried, Throttled         []int
		ThrottleDelay, Timeout     time.Duration
		Deadline                   time.Duration
	}
	see := func(p httpx.Policy) view {
		v := view{Attempts: p.Attempts, ThrottleAttempts: p.ThrottleAttempts, ThrottleDelay: p.ThrottleDelay, Timeout: p.Timeout, Deadline: p.Deadline}
		for n := 1; n <= 5; n++ {
			v.Waits = append(v.Waits, p.Backoff(n))
		}
		for s := 100; s < 600; s++ {
			if p.Retry(s) {
				v.Retried = append(v.Retried, s)
			}
			if p.Throttled != nil && p.Throttled(s) {
				v.Throttled = append(v.Throttled, s)
			}
		}
		return v
	}
	s := time.Second
	tests := []struct {
		name string
		got  httpx.Policy
		want view
	}{
		{"protocol", ProtocolPolicy(), view{6, 25, []time.Duration{2 * s, 3 * s, 5 * s, 8 * s, 13 * s},
			[]int{205, 206, 403, 429, 500, 501, 502, 503, 504, 507}, []int{403, 429, 503}, s, 10 * s, 0}},
		{"health", HealthPolicy(), view{30, 25, []time.Duration{30 * s, 45 * s, 75 * s, 120 * s, 195 * s},
			[]int{205, 206, 403, 429, 500, 501, 502, 503, 504, 507}, []int{403, 429, 503}, s, 10 * s, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, see(tt.got)); diff != "" {
				t.Errorf("policy (-want +got):\n%s", diff)
			}
		})
	}
	j := JSONHealthPolicy()
	if j.Deadline != 20*time.Minute || j.Timeout != 10*s || !j.Retry(429) || !j.Retry(500) || !j.Retry(503) || j.Retry(502) || j.Retry(400) {
		t.Errorf("JSONHealthPolicy = %+v", j)
	}
}

func TestHealthUsesHealthPolicy(t *testing.T) {
	f := newFake(t, failFirst(2, 500, platform(t)))
	if err := f.client.ReportHealth(t.Context(), &fixtureGoalState, Ready()); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]time.Duration{30 * time.Second, 45 * time.Second}, f.sleeper.Slept()); diff != "" {
		t.Errorf("waits (-want +got):\n%s", diff)
	}
}

func BenchmarkGoalState(b *testing.B) {
	f := newFake(b, platform(b))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.client.GoalState(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
