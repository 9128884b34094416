package azure_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/azinit/azinit/datasource/azure"
	"github.com/azinit/azinit/datasource/azure/certs"
	"github.com/azinit/azinit/datasource/azure/wireserver"
	"github.com/azinit/azinit/fabric"
	"github.com/azinit/azinit/internal/config"
	"github.com/azinit/azinit/internal/httpx"
	"github.com/azinit/azinit/internal/sys"
)

const demo = "../../testdata/scenarios/demo"

// waits records the client's backoff instead of sleeping it.
type waits struct {
	mu sync.Mutex
	d  []time.Duration
}

func (w *waits) sleep(ctx context.Context, d time.Duration) error {
	w.mu.Lock()
	w.d = append(w.d, d)
	w.mu.Unlock()
	return ctx.Err()
}

func (w *waits) total() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	var t time.Duration
	for _, d := range w.d {
		t += d
	}
	return t
}

// transport is generated once: every case asks for certificates.
var transport = sync.OnceValues(func() (*certs.Transport, error) { return certs.GenerateTransport(rand.Reader) })

// setup starts the demo fabric with the given faults and returns fetch
// options for it whose waits are recorded, not slept. Attempts time out
// after 1 s so that a held request costs little.
func setup(t testing.TB, faults ...string) (*fabric.Fabric, azure.Options, *waits) {
	t.Helper()
	fs, err := fabric.ParseFaults(faults)
	if err != nil {
		t.Fatal(err)
	}
	f, err := fabric.Start(t.Context(), fabric.Options{Scenario: demo, Faults: fs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	root, err := sys.OpenRoot(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	img := filepath.Join(t.TempDir(), "ovf.udf")
	if err := fabric.WriteMediaFile(img, demo, fabric.MediaUDF); err != nil {
		t.Fatal(err)
	}
	tr, err := transport()
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Save(root, azure.LibDir); err != nil {
		t.Fatal(err)
	}
	w := &waits{}
	cfg := config.Default().Datasource.Azure
	cfg.Wireserver, cfg.IMDS, cfg.Media, cfg.MediaWait = f.URLs().Wireserver, f.URLs().IMDS, img, 0
	return f, azure.Options{
		Root:      root,
		Config:    cfg,
		HTTP:      &httpx.Client{Sleep: w.sleep, Timeout: time.Second},
		Transport: certs.PrepareTransport(root, azure.LibDir, rand.Reader, nil),
	}, w
}

// The outcomes a fault can have.
const (
	ok       = "ok"       // the request succeeds, without a retry
	retried  = "retried"  // it succeeds after the protocol's retries
	failed   = "failed"   // it fails with an error naming the endpoint and cause
	fellBack = "fellback" // a fallback (the other cipher) succeeded
)

var actions = []string{"404", "410", "429", "500", "503", "timeout", "reset", "truncate", "garbage", "slow=50ms"}

// expect is the outcome of each fault action for a request kind, as
// wire-protocol.md §1 and the IMDS rules have it. A 410 on a wireserver
// document refreshes the goal state and succeeds; health reports ignore
// their response body.
var expect = map[fabric.Kind]map[string]string{
	fabric.KindVersions:         wireRead(failed),
	fabric.KindGoalState:        wireRead(failed),
	fabric.KindHostingEnv:       wireRead(failed),
	fabric.KindSharedConfig:     wireRead(failed),
	fabric.KindExtensionsConfig: wireRead(failed),
	// Any failure with AES-128 falls back to asking for 3DES.
	fabric.KindCertificates: {"404": fellBack, "410": retried, "429": retried, "500": retried, "503": retried,
		"timeout": retried, "reset": retried, "truncate": retried, "garbage": fellBack, "slow=50ms": ok},
	fabric.KindIMDS: {"404": retried, "410": retried, "429": retried, "500": retried, "503": retried,
		"timeout": retried, "reset": retried, "truncate": retried, "garbage": failed, "slow=50ms": ok},
}

func wireRead(garbage string) map[string]string {
	return map[string]string{"404": failed, "410": retried, "429": retried, "500": retried, "503": retried,
		"timeout": retried, "reset": retried, "truncate": retried, "garbage": garbage, "slow=50ms": ok}
}

// cause is what a failure's error must say about why.
func cause(kind fabric.Kind, action string) string {
	switch {
	case action[0] >= '0' && action[0] <= '9':
		return "HTTP " + action
	case kind == fabric.KindIMDS:
		return "invalid instance metadata"
	}
	return "parsing"
}

// TestFaultMatrix injects every fault action into every request kind the
// datasource makes, once, and checks that the clients retry as the
// protocol says and then succeed, or fail with an error naming the
// endpoint and the cause, within a bound.
func TestFaultMatrix(t *testing.T) {
	for kind, outcomes := range expect {
		for _, action := range actions {
			fault := fmt.Sprintf("%s:%s:1", kind, action)
			t.Run(fault, func(t *testing.T) {
				t.Parallel()
				f, o, w := setup(t, fault)
				start := time.Now()
				data := &azure.Data{}
				err := data.Fetch(t.Context(), o, azure.All)
				elapsed := time.Since(start)
				check(t, f, kind, outcomes[action], action, err, w)
				if outcomes[action] != failed && (data.OVF == nil || data.IMDS == nil || len(data.Certificates) != 1) {
					t.Errorf("incomplete data: ovf %v, imds %v, %d certificates", data.OVF != nil, data.IMDS != nil, len(data.Certificates))
				}
				// Bounds: a held request costs one 1 s attempt; the
				// recorded waits are the protocol's first backoff steps.
				if elapsed > 10*time.Second || w.total() > 32*time.Second {
					t.Errorf("took %v and waited %v", elapsed, w.total())
				}
			})
		}
	}
}

// TestHealthFaults does the same for the health report, XML and JSON.
func TestHealthFaults(t *testing.T) {
	xmlOutcomes := map[string]string{"404": failed, "410": retried, "429": retried, "500": retried, "503": retried,
		"timeout": retried, "reset": retried, "truncate": retried, "garbage": ok, "slow=50ms": ok}
	jsonOutcomes := map[string]string{"404": failed, "410": failed, "429": retried, "500": retried, "503": retried,
		"timeout": retried, "reset": retried, "truncate": retried, "garbage": ok, "slow=50ms": ok}
	for _, json := range []bool{false, true} {
		outcomes := map[bool]map[string]string{false: xmlOutcomes, true: jsonOutcomes}[json]
		for _, action := range actions {
			fault := "health:" + action + ":1"
			t.Run(fmt.Sprintf("json=%v/%s", json, fault), func(t *testing.T) {
				t.Parallel()
				f, o, w := setup(t, fault)
				// A report before anything was fetched fetches the goal state.
				err := (&azure.Data{}).ReportHealth(t.Context(), o, wireserver.Health{State: wireserver.StateReady}, json)
				check(t, f, fabric.KindHealth, outcomes[action], action, err, w)
				if err == nil {
					ready := 0
					for _, e := range f.Record() {
						if h, ok := e.Health(); ok && h.State == "Ready" {
							ready++
						}
					}
					// A truncated answer hides that the report arrived,
					// so the client rightly sends it again.
					if want := map[bool]int{false: 1, true: 2}[action == "truncate"]; ready != want {
						t.Errorf("%d Ready reports recorded, want %d", ready, want)
					}
				}
			})
		}
	}
}

func check(t *testing.T, f *fabric.Fabric, kind fabric.Kind, want, action string, err error, w *waits) {
	t.Helper()
	switch want {
	case ok, fellBack:
		if err != nil {
			t.Fatalf("want success, got %v", err)
		}
		if len(w.d) != 0 {
			t.Errorf("waited %v, want no retry", w.d)
		}
	case retried:
		if err != nil {
			t.Fatalf("want success after retries, got %v", err)
		}
		requests := 0
		for _, e := range f.Record() {
			if e.Kind == kind {
				requests++
			}
		}
		if requests < 2 {
			t.Errorf("%d %s requests, want a retry", requests, kind)
		}
	case failed:
		if err == nil {
			t.Fatal("want an error")
		}
		host := strings.TrimPrefix(f.URLs().Wireserver, "http://")
		if kind == fabric.KindIMDS {
			host = strings.TrimPrefix(f.URLs().IMDS, "http://")
		}
		if !strings.Contains(err.Error(), host) || !strings.Contains(err.Error(), cause(kind, action)) {
			t.Errorf("error %q does not name the endpoint %s and the cause %q", err, host, cause(kind, action))
		}
		if strings.Contains(err.Error(), "Demo-Only-Passw0rd!") {
			t.Errorf("error leaks the password: %v", err)
		}
	}
	for _, d := range w.d {
		if d <= 0 {
			t.Errorf("non-positive wait %v", d)
		}
	}
}
