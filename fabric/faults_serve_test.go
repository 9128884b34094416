package fabric

import (
	"context"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// try sends a GET and reads the answer, returning what went wrong instead
// of failing.
func try(ctx context.Context, url string) (status int, body []byte, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := client().Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

func TestFaultActions(t *testing.T) {
	isVersions := func(body []byte) bool {
		var v struct {
			XMLName   xml.Name
			Preferred string `xml:"Preferred>Version"`
		}
		return xml.Unmarshal(body, &v) == nil && v.XMLName.Local == "Versions" && v.Preferred == ProtocolVersion
	}
	tests := []struct {
		fault      string
		clientWait time.Duration // how long the client waits; 0: as long as the test
		check      func(status int, body []byte, err error) string
		wantStatus int // recorded
		wantAction string
	}{
		{"versions:503", 0, func(status int, _ []byte, err error) string {
			if err != nil || status != 503 {
				return "want a 503 answer"
			}
			return ""
		}, 503, "503"},
		{"versions:timeout", 100 * time.Millisecond, func(_ int, _ []byte, err error) string {
			if !errors.Is(err, context.DeadlineExceeded) {
				return "want the client's context to end"
			}
			return ""
		}, 0, "timeout"},
		{"versions:reset", 0, func(_ int, _ []byte, err error) string {
			if !errors.Is(err, syscall.ECONNRESET) {
				return "want a connection reset"
			}
			return ""
		}, 0, "reset"},
		{"versions:truncate", 0, func(status int, _ []byte, err error) string {
			if status != 200 || !errors.Is(err, io.ErrUnexpectedEOF) {
				return "want a 200 whose body ends early"
			}
			return ""
		}, 200, "truncate"},
		{"versions:garbage", 0, func(status int, body []byte, err error) string {
			if err != nil || status != 200 || isVersions(body) || len(body) == 0 {
				return "want a 200 with a body that is not the versions document"
			}
			return ""
		}, 200, "garbage"},
		{"versions:slow=20ms", 0, func(status int, body []byte, err error) string {
			if err != nil || status != 200 || !isVersions(body) {
				return "want the versions document"
			}
			return ""
		}, 200, "slow=20ms"},
	}
	for _, tt := range tests {
		t.Run(tt.fault, func(t *testing.T) {
			fault, err := ParseFault(tt.fault)
			if err != nil {
				t.Fatal(err)
			}
			f := startFabric(t, Options{Scenario: demoScenario(t), Faults: []Fault{fault}})
			url := f.URLs().Wireserver + "/?comp=versions"
			ctx := t.Context()
			if tt.clientWait > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.clientWait)
				defer cancel()
			}
			status, body, err := try(ctx, url)
			if problem := tt.check(status, body, err); problem != "" {
				t.Errorf("faulted request: status %d, body %.40q, error %v: %s", status, body, err, problem)
			}
			rec := f.Record()
			if len(rec) != 1 || rec[0].Kind != KindVersions || rec[0].Status != tt.wantStatus || rec[0].Fault != tt.wantAction {
				t.Errorf("record %+v, want one versions entry with status %d and fault %q", rec, tt.wantStatus, tt.wantAction)
			}
			// Count 1: the next request is answered normally.
			if status, body, err := try(t.Context(), url); err != nil || status != 200 || !isVersions(body) {
				t.Errorf("the request after the fault: %d %.40q %v", status, body, err)
			}
		})
	}
}

func TestFaultCountAndOrder(t *testing.T) {
	var faults []Fault
	for _, spec := range []string{"goalstate:500:2", "goalstate:410", "health:429"} {
		f, err := ParseFault(spec)
		if err != nil {
			t.Fatal(err)
		}
		faults = append(faults, f)
	}
	f := startFabric(t, Options{Scenario: demoScenario(t), Faults: faults})
	var got []int
	for range 4 {
		status, _, err := try(t.Context(), f.URLs().Wireserver+"/machine/?comp=goalstate")
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, status)
	}
	if want := []int{500, 500, 410, 200}; !slices.Equal(got, want) {
		t.Errorf("goal state statuses %v, want %v", got, want)
	}
	// A faulted health report is not taken; the retry is.
	for _, want := range []int{429, 200} {
		resp, err := client().Post(f.URLs().Wireserver+"/provisioning/health", "application/json", strings.NewReader(`{"state":"Ready"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("health: %s, want %d", resp.Status, want)
		}
	}
	readies := 0
	for _, e := range f.Record() {
		if _, ok := e.Health(); ok {
			readies++
		}
	}
	if readies != 1 {
		t.Errorf("%d health reports taken, want 1", readies)
	}
}
