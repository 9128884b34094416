package fabric

import (
	"fmt"
	"net/http"
	"path"
	"strings"
	"sync"
)

// blobStore holds the blobs agents uploaded (status blobs), by name.
type blobStore struct {
	mu    sync.Mutex
	blobs map[string][]byte
}

func (s *blobStore) put(name string, b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.blobs[name] = b
}

func (s *blobStore) get(name string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.blobs[name]
	return b, ok
}

// getBlob answers a GET of a blob URL.
func (f *Fabric) getBlob(q *request) reply {
	if q.r.Method != http.MethodGet {
		return methodNotAllowed(http.MethodGet + ", " + http.MethodPut)
	}
	if q.st.storageBlocked && (q.entry.Kind == KindManifest || q.entry.Kind == KindPackage) {
		// What storage answers a VM whose network may not reach it.
		q.entry.Error = "storage is unreachable (extensions.yaml storage_reachable: false): use the HostGAPlugin's /extensionArtifact"
		return reply{status: http.StatusForbidden, header: http.Header{"Content-Type": {"application/xml"}}, body: []byte(storageForbidden)}
	}
	return f.blob(q, path.Base(q.r.URL.Path))
}

// storageForbidden is Azure Storage's answer to a request its firewall
// refuses.
const storageForbidden = `<?xml version="1.0" encoding="utf-8"?><Error><Code>AuthorizationFailure</Code>` +
	`<Message>This request is not authorized to perform this operation.</Message></Error>`

// blob answers the blob called name: from the scenario's raw/blobs, else
// one an agent uploaded.
func (f *Fabric) blob(q *request, name string) reply {
	b, ok := q.st.blobs[name]
	if !ok {
		b, ok = f.uploads.get(name)
	}
	if !ok {
		return textReply(http.StatusNotFound, fmt.Sprintf("azinit-fabric: no blob %q", name))
	}
	ctype := "application/octet-stream"
	switch strings.ToLower(path.Ext(name)) {
	case ".xml":
		ctype = "application/xml"
	case ".json", ".status":
		ctype = "application/json"
	}
	return reply{status: http.StatusOK, header: http.Header{"Content-Type": {ctype}}, body: b}
}

// putBlob takes a direct status upload to the blob URL (wire-protocol.md
// §13.3): a block blob PUT, or a page blob's create PUT and page writes.
// Storage answers 201.
func (f *Fabric) putBlob(q *request) reply {
	if err := f.storeStatus(q, path.Base(q.r.URL.Path), q.body, q.r.Header.Get("x-ms-range")); err != nil {
		return q.reject(http.StatusBadRequest, err)
	}
	return reply{status: http.StatusCreated}
}

// storeStatus records and keeps a status blob write whose content starts
// the status document; other writes (page blob creation, later pages) are
// accepted as they are.
func (f *Fabric) storeStatus(q *request, name string, content []byte, pageRange string) error {
	if !statusChunk(content, pageRange) {
		return nil
	}
	status, err := ParseAggregateStatus(content)
	if err != nil {
		return err
	}
	q.entry.Body = status
	f.uploads.put(name, status)
	return nil
}
