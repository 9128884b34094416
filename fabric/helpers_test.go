package fabric

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

// demoScenario returns a copy of testdata/scenarios/demo that the test may
// change.
func demoScenario(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "demo")
	if err := os.CopyFS(dir, os.DirFS(filepath.Join("..", "testdata", "scenarios", "demo"))); err != nil {
		t.Fatal(err)
	}
	return dir
}

// startFabric starts a fabric on 127.0.0.1:0 for the test.
func startFabric(t *testing.T, o Options) *Fabric {
	t.Helper()
	f, err := Start(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := f.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return f
}

// client is an HTTP client that opens a connection per request, so a
// faulted connection is never silently retried on a fresh one.
func client() *http.Client {
	return &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
}

// call sends one request and returns the response with its body read.
func call(t *testing.T, method, url string, body []byte, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, url, err)
	}
	return resp, b
}

// lastEntry is the last recorded request.
func lastEntry(t *testing.T, f *Fabric) Entry {
	t.Helper()
	rec := f.Record()
	if len(rec) == 0 {
		t.Fatal("nothing recorded")
	}
	return rec[len(rec)-1]
}
