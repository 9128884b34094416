// Package hostgaplugin talks to the HostGAPlugin, the platform's proxy
// for guest agents on the WireServer's host, port 32526 (wire-protocol.md
// §12): its versions and health, Fast Track's vmSettings, extension
// artifacts fetched on the VM's behalf, and the status upload.
//
// Like the wireserver package, parsing is pure (ParseVersions) and Client
// does the I/O through httpx. Requests follow the transport rules of §1
// except where §12 says one attempt (health, vmSettings). Artifact and
// status blob URLs carry SAS tokens: they travel in headers and bodies,
// never in the request URL, and errors name them redacted.
package hostgaplugin

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/azinit/azinit/datasource/azure/storage"
	"github.com/azinit/azinit/datasource/azure/wireserver"
	"github.com/azinit/azinit/internal/httpx"
)

const (
	// APIVersion is the HostGAPlugin API version azinit speaks
	// (x-ms-version).
	APIVersion = "2015-09-01"
	// Port is the HostGAPlugin's port on the WireServer's host.
	Port = 32526
)

var (
	// ErrNotSupported is a HostGAPlugin that answers vmSettings with 404:
	// it does not support Fast Track, and the goal state comes from the
	// WireServer alone.
	ErrNotSupported = errors.New("vmSettings not supported by the HostGAPlugin")
	// ErrUnsupportedVersion is a HostGAPlugin that does not offer APIVersion.
	ErrUnsupportedVersion = errors.New("HostGAPlugin API version not supported")
)

// Identity is how the HostGAPlugin knows the VM's goal state:
// x-ms-containerid and x-ms-host-config-name (ContainerId and ConfigName of
// the wireserver goal state).
type Identity struct {
	ContainerID, ConfigName string
}

// Client talks to one HostGAPlugin.
type Client struct {
	// Endpoint is the base URL ("http://127.0.0.1:32526") or a bare host
	// ("168.63.129.16", meaning http on Port). It is required: an empty
	// one is an error rather than a silent default to the platform address.
	Endpoint string
	// HTTP sends the requests; nil means a default httpx.Client, whose
	// transport uses no proxy and follows no redirect.
	HTTP *httpx.Client
	Log  *slog.Logger // nil discards
}

// attemptTimeout bounds every attempt, as §1's socket timeout does.
const attemptTimeout = 10 * time.Second

// ArtifactPolicy is the policy for /extensionArtifact fetches of manifests
// and profiles: the rules of §1, with 400 retried too (the HostGAPlugin
// answers 400 while it cannot reach the artifact yet).
func ArtifactPolicy() httpx.Policy {
	p := wireserver.ProtocolPolicy()
	retry := p.Retry
	p.Retry = func(status int) bool { return status == http.StatusBadRequest || retry(status) }
	return p
}

// singleAttempt is the policy where §12 allows one attempt.
func singleAttempt() httpx.Policy { return httpx.Policy{Attempts: 1, Timeout: attemptTimeout} }

// ParseVersions parses the /versions answer, a JSON array of API versions,
// and accepts it only when it offers APIVersion; otherwise the error
// matches ErrUnsupportedVersion and names what was offered.
func ParseVersions(b []byte) ([]string, error) {
	var vs []string
	if err := json.Unmarshal(b, &vs); err != nil {
		return nil, fmt.Errorf("parsing HostGAPlugin versions: want a JSON array of strings: %w", err)
	}
	if !slices.Contains(vs, APIVersion) {
		offered := vs
		if len(offered) > 8 {
			offered = offered[:8]
		}
		return nil, fmt.Errorf("%w: want %s, offered %q (%d in all)", ErrUnsupportedVersion, APIVersion, offered, len(vs))
	}
	return vs, nil
}

// Versions asks the HostGAPlugin which API versions it speaks (GET
// /versions) and checks that APIVersion is one of them.
func (c *Client) Versions(ctx context.Context) ([]string, error) {
	resp, err := c.send(ctx, http.MethodGet, "/versions", http.Header{}, nil, wireserver.ProtocolPolicy(), nil)
	if err != nil {
		return nil, err
	}
	vs, err := ParseVersions(resp.Body)
	if err != nil {
		u, _ := c.url("/versions") // resolved already by send
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	return vs, nil
}

// Health reports whether the HostGAPlugin is healthy (GET /health
// answering 2xx), in one attempt.
func (c *Client) Health(ctx context.Context) error {
	_, err := c.send(ctx, http.MethodGet, "/health", http.Header{}, nil, singleAttempt(), nil)
	return err
}

// VMSettings is an answer to GET /vmSettings.
type VMSettings struct {
	Body        []byte // the vmSettings JSON; nil when NotModified
	ETag        string // the answer's ETag; with NotModified, the one sent
	NotModified bool   // 304: the caller's copy (ETag) is current
}

// VMSettings is GET /vmSettings (§12.5), Fast Track's goal state: one
// attempt, no retry; If-None-Match etag when etag != "";
// x-ms-client-correlationid a fresh random UUID. 304 is NotModified; 404
// an error matching ErrNotSupported; 410 an error matching httpx.ErrGone
// (the caller's Identity is stale); a 200 without an ETag an error; a 502
// (the HostGAPlugin failed upstream) an error prefixed "[Internal error in
// HostGAPlugin]".
func (c *Client) VMSettings(ctx context.Context, id Identity, etag string) (*VMSettings, error) {
	h, err := id.header()
	if err != nil {
		return nil, err
	}
	h.Set("x-ms-client-correlationid", newUUID())
	if etag != "" {
		h.Set("If-None-Match", etag)
	}
	resp, err := c.send(ctx, http.MethodGet, "/vmSettings", h, nil, singleAttempt(), nil)
	var he *httpx.Error
	switch {
	case err == nil:
	case !errors.As(err, &he):
		return nil, err
	case he.Status == http.StatusNotModified && etag != "":
		c.logger().Debug("vmSettings not modified", "etag", etag)
		return &VMSettings{ETag: etag, NotModified: true}, nil
	case he.Status == http.StatusNotFound:
		return nil, fmt.Errorf("%w: %w", ErrNotSupported, err)
	case he.Status == http.StatusBadGateway:
		return nil, fmt.Errorf("[Internal error in HostGAPlugin] %w", err)
	default:
		return nil, err
	}
	tag := resp.Header.Get("ETag")
	if tag == "" {
		u, _ := c.url("/vmSettings") // resolved already by send
		return nil, fmt.Errorf("GET %s: HTTP %d without an ETag", u, resp.Status)
	}
	return &VMSettings{Body: resp.Body, ETag: tag}, nil
}

// Artifact is one GET /extensionArtifact (§12.3): the HostGAPlugin fetches
// Location (a manifest, a package or the InVMArtifactsProfile) on the
// VM's behalf.
type Artifact struct {
	Location string
	// ManifestLocation is the manifest a package was chosen from (package
	// downloads only; "" omits it).
	ManifestLocation string
	// VerifyFromBlob asks the HostGAPlugin to check the artifact against
	// the artifacts blob: for manifests and packages of a Fast Track goal
	// state.
	VerifyFromBlob bool
}

func (a Artifact) header(id Identity) (http.Header, error) {
	if a.Location == "" {
		return nil, errors.New("HostGAPlugin artifact: no location")
	}
	h, err := id.header()
	if err != nil {
		return nil, err
	}
	h.Set("x-ms-artifact-location", a.Location)
	if a.ManifestLocation != "" {
		h.Set("x-ms-artifact-manifest-location", a.ManifestLocation)
	}
	if a.VerifyFromBlob {
		h.Set("x-ms-verify-from-artifacts-blob", "true")
	}
	return h, nil
}

// Get fetches a manifest or a profile through the HostGAPlugin, under
// ArtifactPolicy.
func (c *Client) Get(ctx context.Context, id Identity, a Artifact) ([]byte, error) {
	h, err := a.header(id)
	if err != nil {
		return nil, err
	}
	resp, err := c.send(ctx, http.MethodGet, "/extensionArtifact", h, nil, ArtifactPolicy(), nil)
	if err != nil {
		return nil, fmt.Errorf("fetching %s through the HostGAPlugin: %w", storage.Redact(a.Location), err)
	}
	return resp.Body, nil
}

// Download streams a package through the HostGAPlugin into f, under
// storage.DownloadPolicy. f is emptied before each attempt.
func (c *Client) Download(ctx context.Context, id Identity, a Artifact, f *os.File) error {
	h, err := a.header(id)
	if err != nil {
		return err
	}
	if _, err := c.send(ctx, http.MethodGet, "/extensionArtifact", h, nil, storage.DownloadPolicy(), f); err != nil {
		return fmt.Errorf("downloading %s through the HostGAPlugin: %w", storage.Redact(a.Location), err)
	}
	return nil
}

// PutStatus sends the status to b via PUT /status (§12.4), under §1's
// rules: one envelope per storage.StatusRequests request (page padding
// ' '), each answered 2xx. A 410 matches httpx.ErrGone: the caller
// refreshes the goal state and does not fall back to a direct upload.
func (c *Client) PutStatus(ctx context.Context, id Identity, b storage.Blob, status []byte, now time.Time) error {
	h, err := id.header()
	if err != nil {
		return err
	}
	h.Set("Content-Type", "application/json")
	reqs, err := storage.StatusRequests(b, status, now, ' ')
	if err != nil {
		return err
	}
	for i, r := range reqs {
		body, err := statusEnvelope(r)
		if err != nil {
			return err
		}
		if _, err := c.send(ctx, http.MethodPut, "/status", h, body, wireserver.ProtocolPolicy(), nil); err != nil {
			return fmt.Errorf("status upload to %s through the HostGAPlugin, request %d of %d: %w",
				storage.Redact(b.URL), i+1, len(reqs), err)
		}
	}
	c.logger().Debug("status uploaded through the HostGAPlugin", "blob", storage.Redact(b.URL), "type", b.Type,
		"bytes", len(status), "requests", len(reqs))
	return nil
}

// envelope is the PUT /status body. Its fields, and those of
// envelopeHeader, are in the sorted order the platform's agent writes.
type envelope struct {
	// Content is the request's body, base64 (encoding/json's []byte); nil
	// omits it, for a request without a body.
	Content    *[]byte          `json:"content,omitempty"`
	Headers    []envelopeHeader `json:"headers"`
	RequestURI string           `json:"requestUri"`
}

type envelopeHeader struct {
	Name  string `json:"headerName"`
	Value string `json:"headerValue"`
}

// statusEnvelope is the PUT /status body that has the HostGAPlugin send r: JSON
// {"content": base64 body (omitted when r has none), "headers":
// [{"headerName", "headerValue"}, ...] sorted by name, "requestUri"}. The
// storage headers are spelled as the platform's agent spells them
// ("Content-Length", "x-ms-version"). The result holds r.URL's signature:
// it must not be logged.
func statusEnvelope(r storage.Request) ([]byte, error) {
	env := envelope{RequestURI: r.URL, Headers: []envelopeHeader{}}
	if r.Body != nil {
		env.Content = &r.Body
	}
	for _, k := range slices.Sorted(maps.Keys(r.Header)) {
		name := k
		if lower := strings.ToLower(k); strings.HasPrefix(lower, "x-ms-") {
			name = lower
		}
		for _, v := range r.Header[k] {
			env.Headers = append(env.Headers, envelopeHeader{Name: name, Value: v})
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // "&" in a SAS URL stays as the platform's agent writes it
	if err := enc.Encode(env); err != nil {
		return nil, fmt.Errorf("encoding the HostGAPlugin status envelope: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// header is the header set identifying the goal state to the HostGAPlugin.
func (id Identity) header() (http.Header, error) {
	if id.ContainerID == "" || id.ConfigName == "" {
		return nil, fmt.Errorf("HostGAPlugin identity incomplete: container id %q, config name %q", id.ContainerID, id.ConfigName)
	}
	h := http.Header{}
	h.Set("x-ms-version", APIVersion)
	h.Set("x-ms-containerid", id.ContainerID)
	h.Set("x-ms-host-config-name", id.ConfigName)
	return h, nil
}

// send makes one request for path under p; with sink, a successful body
// goes there. A 400 saying InvalidContainerConfiguration matches
// wireserver.ErrInvalidContainer: like 410, the Identity is stale.
func (c *Client) send(ctx context.Context, method, path string, h http.Header, body []byte, p httpx.Policy, sink *os.File) (*httpx.Response, error) {
	target, err := c.url(path)
	if err != nil {
		return nil, err
	}
	h.Set("User-Agent", wireserver.DefaultUserAgent)
	newReq := func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, method, target, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header = h.Clone()
		return req, nil
	}
	hc := c.httpClient()
	var resp *httpx.Response
	if sink != nil {
		resp, err = hc.Download(ctx, newReq, p, sink)
	} else {
		resp, err = hc.Do(ctx, newReq, p)
	}
	var he *httpx.Error
	if errors.As(err, &he) && he.Status == http.StatusBadRequest &&
		bytes.Contains(he.Body, []byte("InvalidContainerConfiguration")) {
		return nil, fmt.Errorf("%w: %w", wireserver.ErrInvalidContainer, err)
	}
	return resp, err
}

// url is path on the endpoint.
func (c *Client) url(path string) (string, error) {
	if c.Endpoint == "" {
		return "", errors.New("hostgaplugin endpoint not configured")
	}
	s := c.Endpoint
	if !strings.Contains(s, "://") {
		host := s
		if _, _, err := net.SplitHostPort(s); err != nil {
			host = net.JoinHostPort(strings.Trim(s, "[]"), strconv.Itoa(Port))
		}
		s = "http://" + host
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("hostgaplugin endpoint %q: %w", c.Endpoint, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return "", fmt.Errorf("hostgaplugin endpoint %q: want http://host[:port] or a bare host", c.Endpoint)
	}
	return u.Scheme + "://" + u.Host + path, nil
}

func (c *Client) httpClient() *httpx.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return &httpx.Client{Log: c.Log}
}

func (c *Client) logger() *slog.Logger {
	if c.Log != nil {
		return c.Log
	}
	return slog.New(slog.DiscardHandler)
}

// newUUID is a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
