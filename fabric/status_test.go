package fabric

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// aggregateStatus is a status blob as WALinuxAgent's serializer writes it
// (wire-protocol.md §13.2), shortened.
const aggregateStatus = `{"version": "1.1", "timestampUTC": "2025-11-20T08:38:28Z", "aggregateStatus": {"guestAgentStatus": {"version": "2.15.0.1", "status": "Ready", "formattedMessage": {"lang": "en-US", "message": "Guest Agent is running"}}, "handlerAggregateStatus": [], "vmArtifactsAggregateStatus": {"goalStateAggregateStatus": {"formattedMessage": {"lang": "en-US", "message": "GoalState executed successfully"}, "timestampUTC": "2025-11-20T08:38:28Z", "inSvdSeqNo": "1", "status": "Success", "code": 0}}}, "guestOSInfo": {"computerName": "myvm", "osName": "debian", "osVersion": "12", "version": "2.15.0.1"}, "supportedFeatures": [{"Key": "MultipleExtensionsPerHandler", "Value": "1.0"}]}`

// hgapEnvelope wraps content as WALinuxAgent's _build_status_data does.
func hgapEnvelope(content []byte, headers ...[2]string) []byte {
	type header struct {
		Name  string `json:"headerName"`
		Value string `json:"headerValue"`
	}
	env := struct {
		Content    string   `json:"content,omitempty"`
		Headers    []header `json:"headers"`
		RequestURI string   `json:"requestUri"`
	}{
		Content:    base64.StdEncoding.EncodeToString(content),
		RequestURI: "https://acct.blob.core.windows.net/$system/vm.status?sv=2018-03-28&sr=b&sk=system-1&sig=XXX&sp=w",
	}
	for _, h := range headers {
		env.Headers = append(env.Headers, header{h[0], h[1]})
	}
	b, _ := json.Marshal(env)
	return b
}

func compact(t *testing.T, s string) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(s)); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestParseStatusEnvelope(t *testing.T) {
	env, err := ParseStatusEnvelope(hgapEnvelope([]byte(aggregateStatus),
		[2]string{"Content-Length", "17"}, [2]string{"x-ms-blob-type", "BlockBlob"}))
	if err != nil {
		t.Fatal(err)
	}
	want := &StatusEnvelope{
		Content:    []byte(aggregateStatus),
		Headers:    map[string]string{"content-length": "17", "x-ms-blob-type": "BlockBlob"},
		RequestURI: "https://acct.blob.core.windows.net/$system/vm.status?sv=2018-03-28&sr=b&sk=system-1&sig=XXX&sp=w",
	}
	if diff := cmp.Diff(want, env); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	for name, doc := range map[string]string{
		"not json":   `content`,
		"no uri":     `{"content":""}`,
		"bad base64": `{"content":"!!!","requestUri":"http://x/y"}`,
	} {
		if _, err := ParseStatusEnvelope([]byte(doc)); !errors.Is(err, ErrBadStatus) {
			t.Errorf("%s: ParseStatusEnvelope = %v, want ErrBadStatus", name, err)
		}
	}
}

func TestParseAggregateStatus(t *testing.T) {
	want := compact(t, aggregateStatus)
	for name, content := range map[string]string{
		"plain":          aggregateStatus,
		"space padded":   aggregateStatus + strings.Repeat(" ", 512-len(aggregateStatus)%512),
		"NUL padded":     aggregateStatus + strings.Repeat("\x00", 512-len(aggregateStatus)%512),
		"newline at end": aggregateStatus + "\n",
	} {
		got, err := ParseAggregateStatus([]byte(content))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if string(got) != want {
			t.Errorf("%s: got %s, want %s", name, got, want)
		}
	}
	for _, doc := range []string{``, `[]`, `"status"`, `{"a":`, "\x00" + aggregateStatus} {
		if _, err := ParseAggregateStatus([]byte(doc)); !errors.Is(err, ErrBadStatus) {
			t.Errorf("ParseAggregateStatus(%q) = %v, want ErrBadStatus", doc, err)
		}
	}
}

func TestStatusChunk(t *testing.T) {
	tests := []struct {
		content, pageRange string
		want               bool
	}{
		{aggregateStatus, "", true},                       // block blob
		{"", "", false},                                   // page blob create
		{aggregateStatus, "bytes=0-1023", true},           // first page
		{aggregateStatus, "bytes=4194304-4195327", false}, // a later page
	}
	for _, tt := range tests {
		if got := statusChunk([]byte(tt.content), tt.pageRange); got != tt.want {
			t.Errorf("statusChunk(%.10q, %q) = %v, want %v", tt.content, tt.pageRange, got, tt.want)
		}
	}
}

func FuzzParseStatusEnvelope(f *testing.F) {
	f.Add(hgapEnvelope([]byte(aggregateStatus)))
	f.Add(hgapEnvelope([]byte(aggregateStatus+"   "), [2]string{"x-ms-range", "bytes=0-511"}))
	f.Add([]byte(`{"requestUri":"x","headers":[{"headerName":"A"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		env, err := ParseStatusEnvelope(b)
		if err != nil {
			if !errors.Is(err, ErrBadStatus) {
				t.Fatalf("error %v is not ErrBadStatus", err)
			}
			return
		}
		if env.RequestURI == "" {
			t.Fatal("envelope without requestUri accepted")
		}
	})
}

func FuzzParseAggregateStatus(f *testing.F) {
	f.Add([]byte(aggregateStatus))
	f.Add([]byte(aggregateStatus + "\x00\x00  "))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := ParseAggregateStatus(b)
		if err != nil {
			if !errors.Is(err, ErrBadStatus) {
				t.Fatalf("error %v is not ErrBadStatus", err)
			}
			return
		}
		var obj map[string]any
		if err := json.Unmarshal(got, &obj); err != nil {
			t.Fatalf("accepted status is not a JSON object: %v", err)
		}
	})
}
