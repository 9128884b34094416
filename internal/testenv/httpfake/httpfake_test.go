package httpfake

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestServer(t *testing.T) {
	s := Start(t, []string{"X-Kept"}, func(n int, w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.WriteHeader(200 + n)
		w.Write(body)
	})
	hc := &http.Client{Transport: &http.Transport{}}
	c := Confine(t, hc, s.Addr)
	for i, body := range []string{"one", "two"} {
		req, err := http.NewRequestWithContext(t.Context(), "POST", s.URL+"/p%2Fq?x=1", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Kept", "k")
		req.Header.Set("X-Dropped", "d")
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		echo, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 201+i || string(echo) != body {
			t.Errorf("answer %d: %d %q, want %d %q", i+1, resp.StatusCode, echo, 201+i, body)
		}
	}
	want := []Request{
		{Method: "POST", URI: "/p%2Fq?x=1", Header: map[string]string{"X-Kept": "k"}, Body: "one"},
		{Method: "POST", URI: "/p%2Fq?x=1", Header: map[string]string{"X-Kept": "k"}, Body: "two"},
	}
	if diff := cmp.Diff(want, s.Requests()); diff != "" {
		t.Errorf("Requests (-want +got):\n%s", diff)
	}

	if _, err := hc.Get("http://127.0.0.1:1/"); err == nil || !strings.Contains(err.Error(), "test dialer: refusing 127.0.0.1:1") {
		t.Errorf("dialling elsewhere: err = %v", err)
	}
	if diff := cmp.Diff([]string{"127.0.0.1:1"}, c.Refused()); diff != "" {
		t.Errorf("Refused (-want +got):\n%s", diff)
	}
}

func TestSleeper(t *testing.T) {
	var s Sleeper
	if got := s.Slept(); got != nil {
		t.Errorf("Slept before any wait = %v, want nil", got)
	}
	if err := s.Sleep(t.Context(), time.Hour); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.Sleep(ctx, time.Minute); err != context.Canceled {
		t.Errorf("Sleep with a cancelled context = %v, want context.Canceled", err)
	}
	if diff := cmp.Diff([]time.Duration{time.Hour, time.Minute}, s.Slept()); diff != "" {
		t.Errorf("Slept (-want +got):\n%s", diff)
	}
}
