package storage

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/azinit/azinit/datasource/azure/extconfig"
	"github.com/google/go-cmp/cmp"
)

const (
	secret  = "s3cr3tSIGvalue"
	blobURL = "https://acct.blob.core.windows.net/$system/vm.status?sv=2018-03-28&sr=b&sk=system-1&sig=" + secret + "&se=9999-01-01T00%3a00%3a00Z&sp=w"
)

var now = time.Date(2025, 11, 20, 8, 38, 33, 0, time.FixedZone("CET", 3600))

const date = "2025-11-20T07:38:33Z"

// statusOf is a status document of n bytes: JSON-looking and without the
// padding bytes, so padding is told apart from content.
func statusOf(n int) []byte {
	b := bytes.Repeat([]byte("x"), n)
	if n >= 2 {
		b[0], b[n-1] = '{', '}'
	}
	return b
}

func TestStatusRequestsBlockBlob(t *testing.T) {
	status := []byte(`{"version":"1.1"}`)
	reqs, err := StatusRequests(Blob{URL: blobURL, Type: extconfig.BlockBlob}, status, now, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []Request{{
		URL: blobURL,
		Header: http.Header{
			"Content-Length": {"17"},
			"X-Ms-Blob-Type": {"BlockBlob"},
			"X-Ms-Date":      {date},
			"X-Ms-Version":   {"2014-02-14"},
		},
		Body: status,
	}}
	if diff := cmp.Diff(want, reqs); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}

	reqs, err = StatusRequests(Blob{URL: blobURL, Type: extconfig.BlockBlob}, nil, now, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(reqs) != 1 || reqs[0].Body == nil || len(reqs[0].Body) != 0 || reqs[0].Header.Get("Content-Length") != "0" {
		t.Errorf("empty block blob status: %+v, want one request with an empty, non-nil body", reqs)
	}
}

// TestStatusRequestsPageBlob checks every request of a page blob upload:
// the create PUT, then pages of at most 4 MiB, each padded to 512 bytes.
func TestStatusRequestsPageBlob(t *testing.T) {
	for _, size := range []int{0, 1, 511, 512, 513, 4 << 20, 4<<20 + 1} {
		for _, pad := range []byte{0, ' '} {
			t.Run(fmt.Sprintf("%d/pad%q", size, pad), func(t *testing.T) {
				status := statusOf(size)
				reqs, err := StatusRequests(Blob{URL: blobURL, Type: extconfig.PageBlob}, status, now, pad)
				if err != nil {
					t.Fatal(err)
				}
				rounded := (size + 511) / 512 * 512
				pages := (size + MaxPageWrite - 1) / MaxPageWrite
				if len(reqs) != 1+pages {
					t.Fatalf("%d requests, want 1 + %d pages", len(reqs), pages)
				}
				create := Request{URL: blobURL, Header: http.Header{
					"Content-Length":           {"0"},
					"X-Ms-Blob-Content-Length": {strconv.Itoa(rounded)},
					"X-Ms-Blob-Type":           {"PageBlob"},
					"X-Ms-Date":                {date},
					"X-Ms-Version":             {"2014-02-14"},
				}}
				if diff := cmp.Diff(create, reqs[0]); diff != "" {
					t.Errorf("create PUT (-want +got):\n%s", diff)
				}
				var content []byte
				for i, r := range reqs[1:] {
					start := i * MaxPageWrite
					end := min(start+MaxPageWrite, rounded)
					wantHeader := http.Header{
						"Content-Length":  {strconv.Itoa(end - start)},
						"X-Ms-Date":       {date},
						"X-Ms-Page-Write": {"update"},
						"X-Ms-Range":      {fmt.Sprintf("bytes=%d-%d", start, end-1)},
						"X-Ms-Version":    {"2014-02-14"},
					}
					if diff := cmp.Diff(wantHeader, r.Header); diff != "" {
						t.Errorf("page %d header (-want +got):\n%s", i, diff)
					}
					if r.URL != blobURL+"&comp=page" {
						t.Errorf("page %d URL = %q, want the blob URL + &comp=page", i, r.URL)
					}
					if len(r.Body) != end-start || len(r.Body)%512 != 0 {
						t.Errorf("page %d: %d bytes, want %d (a multiple of 512)", i, len(r.Body), end-start)
					}
					content = append(content, r.Body...)
				}
				if !bytes.Equal(content[:size], status) {
					t.Error("the pages do not carry the status")
				}
				if padding := content[size:]; !bytes.Equal(padding, bytes.Repeat([]byte{pad}, rounded-size)) {
					t.Errorf("padding %q, want %d × %q", padding, rounded-size, pad)
				}
			})
		}
	}
}

func TestStatusRequestsPageURL(t *testing.T) {
	reqs, err := StatusRequests(Blob{URL: "http://127.0.0.1/c/vm.status", Type: extconfig.PageBlob}, []byte("{}"), now, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := reqs[1].URL; got != "http://127.0.0.1/c/vm.status?comp=page" {
		t.Errorf("page URL of a blob URL without a query = %q, want ?comp=page", got)
	}
}

func TestStatusRequestsErrors(t *testing.T) {
	tests := []struct {
		name string
		blob Blob
		want string
	}{
		{"no URL", Blob{Type: extconfig.BlockBlob}, "status blob: no URL"},
		{"unparsable", Blob{URL: "https://acct\x7f.blob/x?sig=" + secret, Type: extconfig.BlockBlob}, "URL does not parse"},
		{"relative", Blob{URL: "/x?sig=" + secret, Type: extconfig.BlockBlob}, "/x?sig=REDACTED is not an absolute http(s) URL"},
		{"scheme", Blob{URL: "ftp://acct/x?sig=" + secret, Type: extconfig.BlockBlob}, "not an absolute http(s) URL"},
		{"type", Blob{URL: blobURL, Type: "AppendBlob"}, `type "AppendBlob": want BlockBlob or PageBlob`},
		{"no type", Blob{URL: blobURL}, `type "": want BlockBlob or PageBlob`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := StatusRequests(tt.blob, []byte("{}"), now, 0)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error reveals the SAS signature: %v", err)
			}
		})
	}
}
