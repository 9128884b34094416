package httpx

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// script answers the i-th request with statuses[i] (the last one repeats).
func script(t *testing.T, statuses ...int) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1)) - 1
		s := statuses[min(i, len(statuses)-1)]
		w.WriteHeader(s)
		w.Write([]byte("body"))
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func get(url string) func(ctx context.Context) (*http.Request, error) {
	return func(ctx context.Context) (*http.Request, error) {
		return http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	}
}

// recorder is an injected sleep that records the waits instead of waiting.
type recorder struct{ waits []time.Duration }

func (r *recorder) sleep(ctx context.Context, d time.Duration) error {
	r.waits = append(r.waits, d)
	return ctx.Err()
}

func TestDoRetries(t *testing.T) {
	wire := Policy{
		Attempts:         6,
		Backoff:          Fibonacci(time.Second),
		Retry:            Statuses(206, 429, 500, 503),
		Throttled:        Statuses(429, 503),
		ThrottleDelay:    time.Second,
		ThrottleAttempts: 25,
	}
	tests := []struct {
		name      string
		statuses  []int
		wantErr   bool
		wantCalls int
		wantWaits []time.Duration
	}{
		{"first try", []int{200}, false, 1, nil},
		{"fibonacci until success", []int{500, 500, 500, 200}, false, 4, []time.Duration{2 * time.Second, 3 * time.Second, 5 * time.Second}},
		{"gives up after attempts", []int{500}, true, 6, []time.Duration{2e9, 3e9, 5e9, 8e9, 13e9}},
		{"not retried", []int{404}, true, 1, nil},
		{"gone is never retried", []int{410}, true, 1, nil},
		{"throttle switches to fixed delay", []int{500, 429, 200}, false, 3, []time.Duration{2 * time.Second, time.Second}},
		{"a retried 2xx is not success", []int{206, 200}, false, 2, []time.Duration{2 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, calls := script(t, tt.statuses...)
			rec := &recorder{}
			c := &Client{Sleep: rec.sleep}
			resp, err := c.Do(t.Context(), get(srv.URL+"/x"), wire)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err == nil && string(resp.Body) != "body" {
				t.Errorf("body = %q", resp.Body)
			}
			if got := int(calls.Load()); got != tt.wantCalls {
				t.Errorf("calls = %d, want %d", got, tt.wantCalls)
			}
			if diff := cmp.Diff(tt.wantWaits, rec.waits); diff != "" {
				t.Errorf("waits (-want +got):\n%s", diff)
			}
		})
	}
}

func TestThrottleRaisesAttempts(t *testing.T) {
	srv, calls := script(t, 503)
	rec := &recorder{}
	c := &Client{Sleep: rec.sleep}
	p := Policy{Attempts: 6, Retry: Statuses(503), Throttled: Statuses(503), ThrottleDelay: time.Second, ThrottleAttempts: 25}
	_, err := c.Do(t.Context(), get(srv.URL), p)
	if err == nil {
		t.Fatal("want error")
	}
	if calls.Load() != 25 {
		t.Errorf("calls = %d, want 25", calls.Load())
	}
	for _, w := range rec.waits {
		if w != time.Second {
			t.Fatalf("throttled wait %v, want 1s", w)
		}
	}
}

func TestErrorNamesEndpointAndCause(t *testing.T) {
	srv, _ := script(t, 410)
	c := &Client{Sleep: (&recorder{}).sleep}
	_, err := c.Do(t.Context(), get(srv.URL+"/machine/?comp=goalstate"), Policy{Attempts: 3})
	if !errors.Is(err, ErrGone) {
		t.Fatalf("errors.Is(err, ErrGone) = false for %v", err)
	}
	var he *Error
	if !errors.As(err, &he) || he.Status != 410 || string(he.Body) != "body" {
		t.Fatalf("err = %#v", err)
	}
	for _, want := range []string{"GET " + srv.URL + "/machine/?comp=goalstate", "HTTP 410 Gone", "1 attempt"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

func TestTransportErrorsAreRetried(t *testing.T) {
	// A listener that accepts and immediately closes: every attempt fails
	// without a response.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepted atomic.Int32
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			conn.Close()
		}
	}()
	rec := &recorder{}
	c := &Client{Sleep: rec.sleep}
	_, err = c.Do(t.Context(), get("http://"+ln.Addr().String()+"/"), Policy{Attempts: 3, Backoff: Fibonacci(time.Millisecond)})
	var he *Error
	if !errors.As(err, &he) || he.Attempts != 3 || he.Status != 0 {
		t.Fatalf("err = %v", err)
	}
	if len(rec.waits) != 2 {
		t.Errorf("waits = %v, want 2", rec.waits)
	}
}

func TestPerAttemptTimeoutIsNamed(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	for _, tc := range []struct {
		client, policy time.Duration
	}{{0, 20 * time.Millisecond}, {20 * time.Millisecond, time.Hour}} {
		c := &Client{Sleep: (&recorder{}).sleep, Timeout: tc.client}
		_, err := c.Do(t.Context(), get(srv.URL), Policy{Attempts: 2, Timeout: tc.policy})
		if err == nil || !strings.Contains(err.Error(), "no response within 20ms") || !strings.Contains(err.Error(), "2 attempts") {
			t.Fatalf("client timeout %v, policy timeout %v: err = %v", tc.client, tc.policy, err)
		}
	}
}

func TestDeadlineStopsRetrying(t *testing.T) {
	srv, _ := script(t, 500)
	c := &Client{} // real sleep: the deadline must cut the 1 h wait short
	_, err := c.Do(t.Context(), get(srv.URL), Policy{Attempts: 5, Retry: Statuses(500), Backoff: func(int) time.Duration { return time.Hour }, Deadline: 30 * time.Millisecond})
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "HTTP 500") {
		t.Fatalf("err = %v, want deadline with the last cause", err)
	}
}

func TestDirectDoesNotFollowRedirects(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	srv := httptest.NewServer(http.RedirectHandler(other.URL, http.StatusFound))
	defer srv.Close()
	_, err := (&Client{}).Do(t.Context(), get(srv.URL), Policy{})
	var he *Error
	if !errors.As(err, &he) || he.Status != http.StatusFound || elsewhere.Load() != 0 {
		t.Fatalf("err = %v, redirect target hit %d times", err, elsewhere.Load())
	}
}

// A deadline that cuts an attempt short still names the last answer.
func TestDeadlineKeepsTheLastAnswer(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			w.WriteHeader(503)
			return
		}
		<-r.Context().Done() // the second attempt outlives the deadline
	}))
	defer srv.Close()
	c := &Client{Sleep: (&recorder{}).sleep}
	_, err := c.Do(t.Context(), get(srv.URL), Policy{Attempts: 5, Retry: Statuses(503), Deadline: 50 * time.Millisecond})
	var he *Error
	if !errors.As(err, &he) || he.Status != 503 || he.Attempts != 2 || !strings.Contains(err.Error(), "last: HTTP 503") {
		t.Fatalf("err = %v (%+v)", err, he)
	}
}

func TestBodyLimit(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(strings.Repeat("x", 100)))
	}))
	defer srv.Close()
	c := &Client{MaxBody: 10}
	_, err := c.Do(t.Context(), get(srv.URL), Policy{Attempts: 3})
	var he *Error
	if !errors.Is(err, ErrBodyTooLarge) || !errors.As(err, &he) || he.Attempts != 1 {
		t.Fatalf("err = %v", err)
	}
}

func TestBackoffs(t *testing.T) {
	fib := Fibonacci(time.Second)
	var got []time.Duration
	for n := 1; n <= 6; n++ {
		got = append(got, fib(n))
	}
	want := []time.Duration{2e9, 3e9, 5e9, 8e9, 13e9, 21e9}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Fibonacci (-want +got):\n%s", diff)
	}
	exp := Exponential(100*time.Millisecond, time.Second, 0.2)
	for n, base := range []time.Duration{100e6, 200e6, 400e6, 800e6, 1e9, 1e9} {
		d := exp(n + 1)
		if d < base*8/10 || d > base*12/10 {
			t.Errorf("Exponential(%d) = %v, want %v ±20%%", n+1, d, base)
		}
	}
}

func TestRedactURL(t *testing.T) {
	u, _ := url.Parse("https://acct.blob.core.windows.net/$system/vm.status?sv=2018-03-28&sr=b&sig=SECRET%3d&sp=w")
	got := RedactURL(u)
	if strings.Contains(got, "SECRET") || !strings.Contains(got, "sig=REDACTED") || !strings.Contains(got, "sv=2018-03-28") {
		t.Errorf("RedactURL = %q", got)
	}
	plain, _ := url.Parse("http://127.0.0.1/machine/?comp=goalstate")
	if RedactURL(plain) != plain.String() {
		t.Errorf("RedactURL changed %q", plain)
	}
}

func TestDownload(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch n.Add(1) {
		case 1: // a body cut short: the next attempt must not append to it
			w.Header().Set("Content-Length", "100")
			w.Write([]byte("partial"))
		case 2:
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("busy"))
		default:
			w.Write([]byte("package"))
		}
	}))
	defer srv.Close()
	f, err := os.Create(filepath.Join(t.TempDir(), "pkg.zip"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rec := &recorder{}
	c := &Client{Sleep: rec.sleep}
	resp, err := c.Download(t.Context(), get(srv.URL), Policy{Attempts: 3, Retry: Statuses(503)}, f)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != 200 || resp.Body != nil || string(got) != "package" || n.Load() != 3 {
		t.Errorf("status %d, body %q, file %q after %d requests", resp.Status, resp.Body, got, n.Load())
	}

	c.MaxBody = 3
	_, err = c.Download(t.Context(), get(srv.URL), Policy{Attempts: 3}, f)
	if !errors.Is(err, ErrBodyTooLarge) {
		t.Errorf("over MaxBody: err = %v", err)
	}
}
