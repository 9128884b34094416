package fabric

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// ErrBadStatus is returned (wrapped) for a status upload the fabric cannot
// decode.
var ErrBadStatus = errors.New("bad status upload")

// StatusEnvelope is the HostGAPlugin PUT /status body (wire-protocol.md
// §12.4): the blob content, base64, with the headers and blob URL the agent
// would have used for a direct upload.
type StatusEnvelope struct {
	Content    []byte
	Headers    map[string]string // header names lower-cased
	RequestURI string
}

// ParseStatusEnvelope parses a HostGAPlugin /status body.
func ParseStatusEnvelope(b []byte) (*StatusEnvelope, error) {
	var doc struct {
		Content *string `json:"content"`
		Headers []struct {
			Name  string `json:"headerName"`
			Value string `json:"headerValue"`
		} `json:"headers"`
		RequestURI string `json:"requestUri"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%w: HostGAPlugin envelope is not JSON: %w", ErrBadStatus, err)
	}
	if doc.RequestURI == "" {
		return nil, fmt.Errorf("%w: HostGAPlugin envelope has no requestUri", ErrBadStatus)
	}
	env := &StatusEnvelope{Headers: map[string]string{}, RequestURI: doc.RequestURI}
	for _, h := range doc.Headers {
		env.Headers[strings.ToLower(h.Name)] = h.Value
	}
	if doc.Content != nil {
		c, err := base64.StdEncoding.DecodeString(*doc.Content)
		if err != nil {
			return nil, fmt.Errorf("%w: HostGAPlugin envelope content is not base64: %w", ErrBadStatus, err)
		}
		env.Content = c
	}
	return env, nil
}

// ParseAggregateStatus returns the aggregate status object in b, compacted.
// Page blobs are padded with NULs (direct upload) or spaces (HostGAPlugin),
// so trailing padding is ignored.
func ParseAggregateStatus(b []byte) (json.RawMessage, error) {
	b = bytes.TrimRight(b, " \t\r\n\x00")
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil {
		return nil, fmt.Errorf("%w: status is not a JSON object: %w", ErrBadStatus, err)
	}
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadStatus, err)
	}
	return out.Bytes(), nil
}

// statusChunk says whether a status blob write carries the start of the
// status document: a block blob PUT or the first page of a page blob
// (x-ms-range starting at 0), as opposed to a page blob's create PUT (no
// content) or a later page.
func statusChunk(content []byte, pageRange string) bool {
	if len(content) == 0 {
		return false
	}
	if pageRange == "" {
		return true
	}
	return strings.HasPrefix(strings.TrimSpace(strings.TrimPrefix(pageRange, "bytes=")), "0-")
}
