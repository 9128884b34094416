package storage

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/azinit/azinit/datasource/azure/extconfig"
	"github.com/azinit/azinit/internal/httpx"
)

const (
	// Version is the storage service version status uploads speak
	// (x-ms-version), WALinuxAgent's StatusBlob version.
	Version = "2014-02-14"
	// DateFormat is how x-ms-date is written: ISO 8601 as the platform's
	// agent sends it, not RFC 1123 (SAS-authenticated requests accept it).
	DateFormat = "2006-01-02T15:04:05Z"
	// PageSize is the page blob granularity: sizes and ranges are
	// multiples of it.
	PageSize = 512
	// MaxPageWrite is the most one page PUT carries.
	MaxPageWrite = 4 << 20
)

// Blob is where the aggregate status goes: the StatusUploadBlob SAS URL and
// its type.
type Blob struct {
	URL  string
	Type extconfig.BlobType
}

// Request is one HTTP request of a status upload, as sent directly or
// wrapped for the HostGAPlugin. Body is nil for a request without one (a
// page blob's create PUT); it may share memory with the status it came
// from.
type Request struct {
	URL    string
	Header http.Header
	Body   []byte
}

// StatusRequests lays out the upload of status to b (wire-protocol.md
// §13.3): one BlockBlob PUT; or, for a PageBlob, the create PUT (no body,
// x-ms-blob-content-length = size rounded up to 512) then PUTs of ≤4 MiB
// pages (URL + "&comp=page" or "?comp=page", body padded to 512 with pad,
// x-ms-range, x-ms-page-write: update). Every request carries
// x-ms-version Version and x-ms-date now in DateFormat. The direct path
// pads with NUL; the HostGAPlugin path with spaces.
func StatusRequests(b Blob, status []byte, now time.Time, pad byte) ([]Request, error) {
	u, err := parseBlobURL(b.URL)
	if err != nil {
		return nil, fmt.Errorf("status blob: %w", err)
	}
	switch b.Type {
	case extconfig.BlockBlob:
		body := status
		if body == nil {
			body = []byte{} // a block blob PUT always has a body, if empty
		}
		h := statusHeader(now, len(body), "x-ms-blob-type", string(extconfig.BlockBlob))
		return []Request{{URL: b.URL, Header: h, Body: body}}, nil
	case extconfig.PageBlob:
		return pageRequests(b.URL, status, now, pad), nil
	}
	return nil, fmt.Errorf("status blob %s: type %q: want %s or %s", httpx.RedactURL(u), b.Type, extconfig.BlockBlob, extconfig.PageBlob)
}

// pageRequests is the page blob upload of status to blobURL.
func pageRequests(blobURL string, status []byte, now time.Time, pad byte) []Request {
	reqs := make([]Request, 0, 1+(len(status)+MaxPageWrite-1)/MaxPageWrite)
	reqs = append(reqs, Request{URL: blobURL, Header: statusHeader(now, 0,
		"x-ms-blob-content-length", strconv.Itoa(roundUp(len(status))),
		"x-ms-blob-type", string(extconfig.PageBlob))})
	pageURL := blobURL + "?comp=page"
	if strings.Contains(blobURL, "?") {
		pageURL = blobURL + "&comp=page"
	}
	for start := 0; start < len(status); start += MaxPageWrite {
		chunk := status[start:min(start+MaxPageWrite, len(status))]
		if n := roundUp(len(chunk)); n != len(chunk) {
			padded := make([]byte, n)
			copy(padded, chunk)
			for i := len(chunk); i < n; i++ {
				padded[i] = pad
			}
			chunk = padded
		}
		reqs = append(reqs, Request{URL: pageURL, Body: chunk, Header: statusHeader(now, len(chunk),
			"x-ms-range", fmt.Sprintf("bytes=%d-%d", start, start+len(chunk)-1),
			"x-ms-page-write", "update")})
	}
	return reqs
}

// statusHeader is the header set of a status upload request: the common
// headers and the pairs kv.
func statusHeader(now time.Time, contentLength int, kv ...string) http.Header {
	h := http.Header{}
	h.Set("Content-Length", strconv.Itoa(contentLength))
	h.Set("x-ms-date", now.UTC().Format(DateFormat))
	h.Set("x-ms-version", Version)
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

// roundUp rounds n up to a multiple of PageSize.
func roundUp(n int) int { return (n + PageSize - 1) / PageSize * PageSize }

// parseBlobURL accepts an absolute http(s) URL. Its errors never quote the
// URL whole: it may carry a SAS signature.
func parseBlobURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("no URL")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("URL does not parse") // url.Parse's error quotes the signature
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%s is not an absolute http(s) URL", httpx.RedactURL(u))
	}
	return u, nil
}
