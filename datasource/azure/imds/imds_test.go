package imds_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/azinit/azinit/datasource/azure/imds"
	"github.com/azinit/azinit/internal/fixtures"
	"github.com/azinit/azinit/internal/httpx"
	"github.com/google/go-cmp/cmp"
)

// fake is a loopback IMDS. Like the real one it answers 400 to a request
// without "Metadata: true". Each request takes the next scripted reply;
// when the script runs out it serves body.
type fake struct {
	t    testing.TB
	srv  *httptest.Server
	body []byte

	mu       sync.Mutex
	script   []reply
	requests []*http.Request
}

// reply is a scripted answer: a status, or a connection reset, or a
// per-API-version answer.
type reply struct {
	status int
	reset  bool
	hang   bool // wait until the client gives up
	// onlyAPI, when set, applies the reply only to requests for this
	// api-version; others get the body.
	onlyAPI string
}

func newFake(t testing.TB, body []byte, script ...reply) *fake {
	f := &fake{t: t, body: body, script: script}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fake) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests = append(f.requests, r)
	var rep reply
	if len(f.script) > 0 && (f.script[0].onlyAPI == "" || f.script[0].onlyAPI == r.URL.Query().Get("api-version")) {
		rep, f.script = f.script[0], f.script[1:]
	}
	f.mu.Unlock()
	switch {
	case r.Header.Get("Metadata") != "true":
		http.Error(w, `{"error": "Bad request. Required metadata header not specified"}`, http.StatusBadRequest)
	case rep.reset:
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			f.t.Error(err)
			return
		}
		conn.(*net.TCPConn).SetLinger(0) // close with RST
		conn.Close()
	case rep.hang:
		<-r.Context().Done()
	case rep.status != 0:
		http.Error(w, http.StatusText(rep.status), rep.status)
	default:
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Write(f.body)
	}
}

// received returns the requests so far.
func (f *fake) received() []*http.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*http.Request(nil), f.requests...)
}

func (f *fake) urls() []string {
	var out []string
	for _, r := range f.received() {
		out = append(out, r.URL.RequestURI())
	}
	return out
}

// sleeper records the waits between attempts instead of waiting.
type sleeper struct {
	mu     sync.Mutex
	delays []time.Duration
	// block, when > 0, makes the block-th wait and later ones last until
	// the context ends, as a real wait past the deadline would.
	block int
}

func (s *sleeper) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.delays = append(s.delays, d)
	n := len(s.delays)
	s.mu.Unlock()
	if s.block > 0 && n >= s.block {
		<-ctx.Done()
		return context.Cause(ctx)
	}
	return nil
}

func client(f *fake, s *sleeper) *imds.Client {
	return &imds.Client{
		BaseURL: f.srv.URL,
		HTTP:    &httpx.Client{HTTP: f.srv.Client(), Sleep: s.sleep},
	}
}

const (
	current  = "/metadata/instance?api-version=2021-08-01&extended=true"
	fallback = "/metadata/instance?api-version=2019-06-01"
)

var uuid4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestInstance(t *testing.T) {
	f := newFake(t, readTestdata(t, "instance-2021-08-01.json"))
	inst, err := client(f, &sleeper{}).Instance(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(modern(), inst, ignoreSecrets, ignoreRaw); diff != "" {
		t.Errorf("Instance mismatch (-want +got):\n%s", diff)
	}
	if string(inst.Compute.UserData()) != modernUserData {
		t.Errorf("UserData() = %q", inst.Compute.UserData())
	}
	if diff := cmp.Diff([]string{current}, f.urls()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
	r := f.received()[0]
	if r.Method != http.MethodGet || r.Header.Get("Metadata") != "true" {
		t.Errorf("request %s with Metadata %q, want GET with Metadata: true", r.Method, r.Header.Get("Metadata"))
	}
	if id := r.Header.Get("x-ms-client-request-id"); !uuid4.MatchString(id) {
		t.Errorf("x-ms-client-request-id %q is not a version 4 UUID", id)
	}
}

func TestInstanceNeedsMetadataHeader(t *testing.T) {
	f := newFake(t, []byte(`{}`))
	resp, err := f.srv.Client().Get(f.srv.URL + current)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("the fake answered %d without Metadata: true, want 400", resp.StatusCode)
	}
}

func TestInstanceFallsBackOn400(t *testing.T) {
	f := newFake(t, fixtures.Read(t, "imds/valid.json"), reply{status: http.StatusBadRequest, onlyAPI: "2021-08-01"})
	inst, err := client(f, &sleeper{}).Instance(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if inst.Compute.VMID != "e7fdbfc4-2deb-4a4e-8615-ea6aaf50162e" {
		t.Errorf("vmId %q", inst.Compute.VMID)
	}
	if diff := cmp.Diff([]string{current, fallback}, f.urls()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

func TestInstanceFallsBackOnce(t *testing.T) {
	f := newFake(t, []byte(`{}`), reply{status: 400}, reply{status: 400}, reply{status: 400})
	_, err := client(f, &sleeper{}).Instance(t.Context())
	var he *httpx.Error
	if !errors.As(err, &he) || he.Status != http.StatusBadRequest {
		t.Fatalf("error %v, want an *httpx.Error with status 400", err)
	}
	if !strings.Contains(err.Error(), "GET "+f.srv.URL+fallback) || !strings.Contains(err.Error(), "HTTP 400") {
		t.Errorf("error %q does not name the endpoint and the cause", err)
	}
	if diff := cmp.Diff([]string{current, fallback}, f.urls()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

func TestInstanceRetries(t *testing.T) {
	f := newFake(t, fixtures.Read(t, "imds/valid.json"),
		// The reset comes first: on a reused connection net/http would
		// resend the request itself.
		reply{reset: true}, reply{status: 404}, reply{status: 410}, reply{status: 429}, reply{status: 500}, reply{status: 503})
	s := &sleeper{}
	inst, err := client(f, s).Instance(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if inst.Compute.Name != "health" {
		t.Errorf("name %q", inst.Compute.Name)
	}
	urls := f.urls()
	if len(urls) != 7 {
		t.Fatalf("%d requests, want 7: %v", len(urls), urls)
	}
	ids := map[string]bool{}
	for i, r := range f.received() {
		if urls[i] != current {
			t.Errorf("request %d for %s, want %s", i, urls[i], current)
		}
		ids[r.Header.Get("x-ms-client-request-id")] = true
	}
	if len(ids) != 7 {
		t.Errorf("%d distinct request ids over 7 requests", len(ids))
	}
	checkBackoff(t, s.delays, 6)
}

// checkBackoff checks n waits that double from 500 ms up to 8 s, each
// within ±25% of its nominal value (so each grows from the one before until
// the cap) and not all exactly nominal (jittered).
func checkBackoff(t *testing.T, delays []time.Duration, n int) {
	t.Helper()
	if len(delays) != n {
		t.Fatalf("%d waits, want %d: %v", len(delays), n, delays)
	}
	jittered := false
	var prev time.Duration
	nominal := 500 * time.Millisecond
	for i, d := range delays {
		if d < nominal*3/4 || d > nominal*5/4 {
			t.Errorf("wait %d is %s, want %s ±25%%", i+1, d, nominal)
		}
		if i > 0 && nominal > prev && d <= delays[i-1] {
			t.Errorf("wait %d (%s) does not grow from %s", i+1, d, delays[i-1])
		}
		jittered = jittered || d != nominal
		prev, nominal = nominal, min(2*nominal, 8*time.Second)
	}
	if !jittered {
		t.Errorf("waits %v are not jittered", delays)
	}
}

func TestInstanceDeadline(t *testing.T) {
	f := newFake(t, []byte(`{}`), reply{status: 503}, reply{status: 503}, reply{status: 503}, reply{status: 503}, reply{status: 503})
	s := &sleeper{block: 3}
	c := client(f, s)
	c.Deadline = 50 * time.Millisecond
	_, err := c.Instance(t.Context())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v, want a deadline", err)
	}
	for _, want := range []string{"GET " + f.srv.URL + current, "no instance metadata within 50ms", "last: HTTP 503", "3 attempts"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	checkBackoff(t, s.delays, 3)
}

func TestInstanceAttemptTimeout(t *testing.T) {
	f := newFake(t, []byte(`{"compute": {"name": "n"}}`), reply{hang: true})
	c := client(f, &sleeper{})
	c.Timeout = 20 * time.Millisecond
	inst, err := c.Instance(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if inst.Compute.Name != "n" || len(f.urls()) != 2 {
		t.Errorf("name %q after %d requests, want n after 2", inst.Compute.Name, len(f.urls()))
	}
}

func TestInstanceErrors(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		script []reply
		want   []string
		is     error
	}{
		{"403 is not retried", `{}`, []reply{{status: 403}}, []string{"GET ", current, "HTTP 403 Forbidden", "(1 attempt)"}, nil},
		{"not JSON", `<html>ok</html>`, nil, []string{"GET ", current, "invalid instance metadata: not a JSON object"}, imds.ErrInvalid},
		{"wrong type", `{"compute": {"vmId": 1}}`, nil, []string{current, "compute.vmId"}, imds.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, []byte(tt.body), tt.script...)
			_, err := client(f, &sleeper{}).Instance(t.Context())
			if err == nil {
				t.Fatal("Instance succeeded")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %q is not %q", err, tt.is)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestInstanceBaseURL(t *testing.T) {
	for _, base := range []string{"", "169.254.169.254", "ftp://127.0.0.1", "http://"} {
		_, err := (&imds.Client{BaseURL: base}).Instance(t.Context())
		if err == nil || !strings.Contains(err.Error(), "base URL") {
			t.Errorf("BaseURL %q: error %v, want one naming the base URL", base, err)
		}
	}
	f := newFake(t, []byte(`{"compute": {"name": "n"}}`))
	inst, err := (&imds.Client{BaseURL: f.srv.URL + "/"}).Instance(t.Context())
	if err != nil || inst.Compute.Name != "n" {
		t.Fatalf("with a trailing slash and the default HTTP client: %v", err)
	}
	if diff := cmp.Diff([]string{current}, f.urls()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

func BenchmarkInstance(b *testing.B) {
	f := newFake(b, fixtures.Read(b, "imds/valid.json"))
	c := client(f, &sleeper{})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Instance(b.Context()); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseInstance(b *testing.B) {
	doc := readTestdata(b, "instance-2021-08-01.json")
	b.ReportAllocs()
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		if _, err := imds.ParseInstance(doc); err != nil {
			b.Fatal(err)
		}
	}
}
