package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/azinit/azinit/datasource/azure/extconfig"
	"github.com/azinit/azinit/internal/httpx"
	"github.com/azinit/azinit/internal/testenv/httpfake"
	"github.com/google/go-cmp/cmp"
)

// storageHeaders are the headers the fake records: those storage defines.
var storageHeaders = []string{
	"Content-Length", "User-Agent", "x-ms-blob-type", "x-ms-blob-content-length",
	"x-ms-date", "x-ms-version", "x-ms-range", "x-ms-page-write",
}

// fake is blob storage on 127.0.0.1 answering with statuses in turn (the
// last one repeated), and a client that can dial nothing else.
type fake struct {
	*httpfake.Server
	client  *Client
	logs    bytes.Buffer
	sleeper httpfake.Sleeper
	body    []byte // the body of 2xx answers
}

func newFake(t testing.TB, answer ...int) *fake {
	t.Helper()
	f := &fake{body: []byte(`{"onHold": true}`)}
	f.Server = httpfake.Start(t, storageHeaders, func(n int, w http.ResponseWriter, r *http.Request) {
		status := answer[min(n, len(answer))-1]
		w.WriteHeader(status)
		if status >= 200 && status < 300 && r.Method == http.MethodGet {
			w.Write(f.body)
		} else if status >= 400 {
			fmt.Fprintf(w, "fake storage says %d", status)
		}
	})
	hc := NewHTTPClient("")
	httpfake.Confine(t, hc, f.Addr)
	f.client = &Client{
		HTTP: &httpx.Client{HTTP: hc, Sleep: f.sleeper.Sleep},
		Log:  slog.New(slog.NewTextHandler(&f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	return f
}

// blob is the status blob on the fake, with a SAS token.
func (f *fake) blob(typ extconfig.BlobType) Blob {
	return Blob{URL: f.URL + "/blob/status/vm.status?sv=2018-03-28&sr=b&sig=" + secret + "&sp=w", Type: typ}
}

func TestPutStatusBlockBlob(t *testing.T) {
	f := newFake(t, http.StatusCreated)
	status := []byte(`{"version":"1.1","aggregateStatus":{}}`)
	if err := f.client.PutStatus(t.Context(), f.blob(extconfig.BlockBlob), status, now); err != nil {
		t.Fatal(err)
	}
	want := []httpfake.Request{{
		Method: "PUT",
		URI:    "/blob/status/vm.status?sv=2018-03-28&sr=b&sig=" + secret + "&sp=w",
		Header: map[string]string{
			"Content-Length": fmt.Sprint(len(status)), "User-Agent": "azinit", "x-ms-blob-type": "BlockBlob",
			"x-ms-date": date, "x-ms-version": "2014-02-14",
		},
		Body: string(status),
	}}
	if diff := cmp.Diff(want, f.Requests()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
	if strings.Contains(f.logs.String(), secret) {
		t.Errorf("the log reveals the SAS signature:\n%s", f.logs.String())
	}
}

func TestPutStatusPageBlob(t *testing.T) {
	f := newFake(t, http.StatusCreated)
	status := statusOf(513)
	if err := f.client.PutStatus(t.Context(), f.blob(extconfig.PageBlob), status, now); err != nil {
		t.Fatal(err)
	}
	uri := "/blob/status/vm.status?sv=2018-03-28&sr=b&sig=" + secret + "&sp=w"
	common := func(kv ...string) map[string]string {
		h := map[string]string{"User-Agent": "azinit", "x-ms-date": date, "x-ms-version": "2014-02-14"}
		for i := 0; i+1 < len(kv); i += 2 {
			h[kv[i]] = kv[i+1]
		}
		return h
	}
	want := []httpfake.Request{
		{Method: "PUT", URI: uri, Header: common("Content-Length", "0", "x-ms-blob-content-length", "1024", "x-ms-blob-type", "PageBlob")},
		{Method: "PUT", URI: uri + "&comp=page", Header: common("Content-Length", "1024", "x-ms-range", "bytes=0-1023", "x-ms-page-write", "update"),
			Body: string(status) + strings.Repeat("\x00", 511)},
	}
	if diff := cmp.Diff(want, f.Requests()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

func TestPutStatusFailures(t *testing.T) {
	tests := []struct {
		name     string
		answer   []int
		typ      extconfig.BlobType
		want     string // in the error
		gone     bool
		requests int
		sleeps   []time.Duration
	}{
		{"201 required", []int{http.StatusOK}, extconfig.BlockBlob, "HTTP 200 OK, want 201 Created", false, 1, nil},
		{"retried 500", []int{500, 500, 201}, extconfig.BlockBlob, "", false, 3, []time.Duration{2 * time.Second, 3 * time.Second}},
		{"exhausted", []int{500}, extconfig.BlockBlob, "HTTP 500 Internal Server Error (6 attempts)", false, 6,
			[]time.Duration{2 * time.Second, 3 * time.Second, 5 * time.Second, 8 * time.Second, 13 * time.Second}},
		{"throttled", []int{503, 201}, extconfig.BlockBlob, "", false, 2, []time.Duration{time.Second}},
		{"gone", []int{410}, extconfig.BlockBlob, "HTTP 410 Gone (1 attempt)", true, 1, nil},
		{"forbidden", []int{403}, extconfig.BlockBlob, "HTTP 403 Forbidden (25 attempts)", false, 25, nil},
		{"page create fails", []int{404}, extconfig.PageBlob, "request 1 of 2: PUT", false, 1, nil},
		{"page write fails", []int{201, 400}, extconfig.PageBlob, "request 2 of 2: PUT", false, 2, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, tt.answer...)
			err := f.client.PutStatus(t.Context(), f.blob(tt.typ), []byte(`{}`), now)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
			} else if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			}
			if err != nil {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error reveals the SAS signature: %v", err)
				}
				if !strings.Contains(err.Error(), "sig=REDACTED") {
					t.Errorf("error does not name the blob (redacted): %v", err)
				}
			}
			if errors.Is(err, httpx.ErrGone) != tt.gone {
				t.Errorf("errors.Is(err, httpx.ErrGone) = %v, want %v", !tt.gone, tt.gone)
			}
			if n := len(f.Requests()); n != tt.requests {
				t.Errorf("%d requests, want %d", n, tt.requests)
			}
			if tt.sleeps != nil {
				if diff := cmp.Diff(tt.sleeps, f.sleeper.Slept()); diff != "" {
					t.Errorf("waits (-want +got):\n%s", diff)
				}
			}
			if strings.Contains(f.logs.String(), secret) {
				t.Errorf("the log reveals the SAS signature:\n%s", f.logs.String())
			}
		})
	}
}

func TestGet(t *testing.T) {
	f := newFake(t, 503, 200)
	u := f.URL + "/blob/profile.json?sig=" + secret
	got, err := f.client.Get(t.Context(), u)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != `{"onHold": true}` {
		t.Errorf("Get = %q", got)
	}
	want := []httpfake.Request{
		{Method: "GET", URI: "/blob/profile.json?sig=" + secret, Header: map[string]string{"User-Agent": "azinit"}},
		{Method: "GET", URI: "/blob/profile.json?sig=" + secret, Header: map[string]string{"User-Agent": "azinit"}},
	}
	if diff := cmp.Diff(want, f.Requests()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}

	f = newFake(t, 404)
	_, err = f.client.Get(t.Context(), f.URL+"/blob/profile.json?sig="+secret)
	if err == nil || !strings.Contains(err.Error(), "GET "+f.URL+"/blob/profile.json?sig=REDACTED: HTTP 404 Not Found (1 attempt)") {
		t.Errorf("Get of a missing blob: err = %v", err)
	}
	if strings.Contains(f.logs.String()+err.Error(), secret) {
		t.Errorf("error or log reveals the SAS signature: %v\n%s", err, f.logs.String())
	}
	if _, err := f.client.Get(t.Context(), "ftp://x/y?sig="+secret); err == nil || strings.Contains(err.Error(), secret) {
		t.Errorf("Get of an ftp URL: err = %v", err)
	}
}

func TestDownload(t *testing.T) {
	f := newFake(t, 500, 200)
	f.body = bytes.Repeat([]byte("zip"), 100000)
	out, err := os.Create(filepath.Join(t.TempDir(), "pkg.zip"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if err := f.client.Download(t.Context(), f.URL+"/blob/Ext__1.0.zip?sig="+secret, out); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(out.Name())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, f.body) {
		t.Errorf("downloaded %d bytes, want the %d served", len(got), len(f.body))
	}
	if p := DownloadPolicy(); p.Timeout != 0 || p.Deadline != DownloadDeadline || p.Attempts != 6 {
		t.Errorf("DownloadPolicy = %+v", p)
	}
}

// TestNewHTTPClientProxy sends a request for a storage host through a
// proxy on loopback: the proxy gets it, the storage host is never dialled.
func TestNewHTTPClientProxy(t *testing.T) {
	var got []string
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Method+" "+r.RequestURI)
		w.Write([]byte("via proxy"))
	}))
	defer proxy.Close()
	for _, setting := range []string{proxy.URL, strings.TrimPrefix(proxy.URL, "http://")} {
		got = nil
		hc := NewHTTPClient(setting)
		httpfake.Confine(t, hc, proxy.Listener.Addr().String())
		c := &Client{HTTP: &httpx.Client{HTTP: hc}}
		body, err := c.Get(t.Context(), "http://acct.blob.example.invalid/c/manifest.xml?sig="+secret)
		if err != nil {
			t.Fatalf("proxy %q: %v", setting, err)
		}
		if string(body) != "via proxy" || len(got) != 1 || got[0] != "GET http://acct.blob.example.invalid/c/manifest.xml?sig="+secret {
			t.Errorf("proxy %q: body %q, proxy saw %q", setting, body, got)
		}
	}
}

func TestNewHTTPClientBadProxy(t *testing.T) {
	hc := NewHTTPClient("http://user:pa55word@proxy:bad-port/")
	httpfake.Confine(t, hc, "127.0.0.1:1")
	c := &Client{HTTP: &httpx.Client{HTTP: hc, Sleep: func(ctx context.Context, _ time.Duration) error { return ctx.Err() }}}
	_, err := c.Get(t.Context(), "http://acct.blob.example.invalid/c/m.xml")
	if err == nil || !strings.Contains(err.Error(), "storage proxy setting: want http://host:port") {
		t.Fatalf("err = %v, want one about the proxy setting", err)
	}
	if strings.Contains(err.Error(), "pa55word") {
		t.Errorf("error reveals the proxy password: %v", err)
	}
}

func TestNoRedirect(t *testing.T) {
	f := newFake(t, http.StatusFound)
	_, err := f.client.Get(t.Context(), f.URL+"/blob/m.xml")
	if err == nil || !strings.Contains(err.Error(), "HTTP 302") {
		t.Errorf("err = %v, want the 302 reported, not followed", err)
	}
	if n := len(f.Requests()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}
