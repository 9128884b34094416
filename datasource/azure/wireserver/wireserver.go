// Package wireserver talks to the Azure WireServer: endpoint discovery from
// DHCP leases, version negotiation, the goal state and its child documents,
// certificates, and health reports (wire-protocol.md §1-§8).
//
// Parsing is pure (ParseGoalState, ParseVersions, ...); Client does the
// I/O through httpx, with WALinuxAgent's retry rules as its default policy.
// Every URI the WireServer hands out is re-based onto the configured
// endpoint, so a client pointed at a loopback fabric never dials the real
// platform address.
package wireserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/azinit/azinit/internal/httpx"
)

const (
	// ProtocolVersion is the wire protocol version azinit speaks.
	ProtocolVersion = "2012-11-30"
	// AgentName is sent as x-ms-agent-name: the WireServer knows guest
	// agents by WALinuxAgent's name.
	AgentName = "WALinuxAgent"
	// DefaultUserAgent is the User-Agent when Client.UserAgent is empty.
	DefaultUserAgent = "azinit"
)

var (
	// ErrInvalidContainer is a 400 whose body says
	// InvalidContainerConfiguration: like 410 Gone, the caller's goal state
	// is stale and should be re-fetched.
	ErrInvalidContainer = errors.New("invalid container configuration")
	// ErrUnsupportedVersion is a WireServer that does not offer ProtocolVersion.
	ErrUnsupportedVersion = errors.New("wire protocol version not supported")
	// ErrNoRoleInstance is a goal state without a RoleInstance: the role is
	// not ready yet.
	ErrNoRoleInstance = errors.New("goal state has no RoleInstance")
	// ErrNoCertificates is a goal state without a Certificates URI.
	ErrNoCertificates = errors.New("goal state has no Certificates URI")
	// ErrNoExtensionsConfig is a goal state without an ExtensionsConfig URI.
	ErrNoExtensionsConfig = errors.New("goal state has no ExtensionsConfig URI")
)

// Client talks to one WireServer.
type Client struct {
	// Endpoint is the base URL ("http://127.0.0.1:8080") or a bare host
	// ("168.63.129.16", meaning http). It is required: an empty one is an
	// error rather than a silent default to the platform address.
	Endpoint string
	// HTTP sends the requests; nil means a default httpx.Client, whose
	// transport uses no proxy and follows no redirect.
	HTTP *httpx.Client
	Log  *slog.Logger // nil discards
	// Policy governs WireServer requests; its zero value (Attempts 0) means
	// ProtocolPolicy(). HealthPolicy and JSONHealthPolicy do the same for
	// the XML and JSON health reports.
	Policy           httpx.Policy
	HealthPolicy     httpx.Policy
	JSONHealthPolicy httpx.Policy
	UserAgent        string // "" means DefaultUserAgent
}

// retryStatuses are the statuses WALinuxAgent retries (restutil.RETRY_CODES);
// throttleStatuses switch the wait to ThrottleDelay (THROTTLE_CODES).
var (
	retryStatuses    = []int{205, 206, 403, 500, 501, 502, 503, 504, 507, 429}
	throttleStatuses = []int{403, 503, 429}
)

// ProtocolPolicy is the default retry policy for WireServer requests: 6
// attempts with waits of 2, 3, 5, 8, 13 s; throttling statuses switch to 1 s
// waits and at least 25 attempts; 10 s per attempt.
func ProtocolPolicy() httpx.Policy {
	return httpx.Policy{
		Attempts:         6,
		Backoff:          httpx.Fibonacci(time.Second),
		Retry:            httpx.Statuses(retryStatuses...),
		Throttled:        httpx.Statuses(throttleStatuses...),
		ThrottleDelay:    time.Second,
		ThrottleAttempts: 25,
		Timeout:          10 * time.Second,
	}
}

// HealthPolicy is the default policy for XML health reports: 30 attempts
// with waits of 15 s × 2, 3, 5, 8, …, and the same throttling rule.
func HealthPolicy() httpx.Policy {
	p := ProtocolPolicy()
	p.Attempts = 30
	p.Backoff = httpx.Fibonacci(15 * time.Second)
	return p
}

// JSONHealthPolicy is the default policy for /provisioning/health: 429, 500
// and 503 (and transport errors) are retried with waits growing to 15 s,
// for at most 20 minutes.
func JSONHealthPolicy() httpx.Policy {
	return httpx.Policy{
		Attempts: 120,
		Backoff:  httpx.Exponential(time.Second, 15*time.Second, 0.1),
		Retry:    httpx.Statuses(429, 500, 503),
		Timeout:  10 * time.Second,
		Deadline: 20 * time.Minute,
	}
}

func orDefault(p httpx.Policy, def func() httpx.Policy) httpx.Policy {
	if p.Attempts == 0 {
		return def()
	}
	return p
}

// base is the configured endpoint reduced to scheme and host.
func (c *Client) base() (*url.URL, error) {
	if c.Endpoint == "" {
		return nil, errors.New("wireserver endpoint not configured")
	}
	s := c.Endpoint
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("wireserver endpoint %q: %w", c.Endpoint, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("wireserver endpoint %q: want http://host[:port]", c.Endpoint)
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" {
		return nil, fmt.Errorf("wireserver endpoint %q: want no path or query", c.Endpoint)
	}
	return &url.URL{Scheme: u.Scheme, Host: u.Host}, nil
}

// endpointURL is pathQuery ("/machine/?comp=goalstate") on the endpoint.
func (c *Client) endpointURL(pathQuery string) (*url.URL, error) {
	b, err := c.base()
	if err != nil {
		return nil, err
	}
	return b.Parse(pathQuery)
}

// rebase moves a URI from a WireServer document onto the configured
// endpoint, keeping its path and query: the documents name the platform
// address, which a client pointed elsewhere must never dial.
func (c *Client) rebase(doc, raw string) (*url.URL, error) {
	b, err := c.base()
	if err != nil {
		return nil, err
	}
	u, err := parseDocumentURI(raw)
	if err != nil {
		return nil, fmt.Errorf("%s URI: %w", doc, err)
	}
	if u.Host != b.Host || u.Scheme != b.Scheme {
		c.logger().Debug("re-basing wireserver URI onto the configured endpoint",
			"document", doc, "from", u.Scheme+"://"+u.Host, "to", b.String())
	}
	u.Scheme, u.Host, u.User = b.Scheme, b.Host, nil
	return u, nil
}

// parseDocumentURI accepts only absolute http(s) URIs.
func parseDocumentURI(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%q is not an absolute http(s) URI", raw)
	}
	return u, nil
}

// header is the header set for a request: User-Agent always, and the x-ms
// protocol headers (wire-protocol.md §1) when protocol is true.
func (c *Client) header(protocol bool) http.Header {
	h := http.Header{}
	ua := c.UserAgent
	if ua == "" {
		ua = DefaultUserAgent
	}
	h.Set("User-Agent", ua)
	if protocol {
		h.Set("x-ms-agent-name", AgentName)
		h.Set("x-ms-version", ProtocolVersion)
	}
	return h
}

// send makes one request under p and returns the response body.
func (c *Client) send(ctx context.Context, method string, u *url.URL, h http.Header, body []byte, p httpx.Policy) ([]byte, error) {
	target := u.String()
	newReq := func(ctx context.Context) (*http.Request, error) {
		var r io.Reader
		if body != nil {
			r = bytes.NewReader(body)
		}
		req, err := http.NewRequestWithContext(ctx, method, target, r)
		if err != nil {
			return nil, err
		}
		req.Header = h.Clone()
		return req, nil
	}
	resp, err := c.httpClient().Do(ctx, newReq, p)
	if err != nil {
		var he *httpx.Error
		if errors.As(err, &he) && he.Status == http.StatusBadRequest &&
			bytes.Contains(he.Body, []byte("InvalidContainerConfiguration")) {
			return nil, fmt.Errorf("%w: %w", ErrInvalidContainer, err)
		}
		return nil, err
	}
	return resp.Body, nil
}

// get fetches a document under the protocol policy.
func (c *Client) get(ctx context.Context, u *url.URL, h http.Header) ([]byte, error) {
	return c.send(ctx, http.MethodGet, u, h, nil, orDefault(c.Policy, ProtocolPolicy))
}

func (c *Client) httpClient() *httpx.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return &httpx.Client{Log: c.Log}
}

// sleep waits through the httpx client's Sleep, so tests never wait.
func (c *Client) sleep(ctx context.Context, d time.Duration) error {
	if c.HTTP != nil && c.HTTP.Sleep != nil {
		return c.HTTP.Sleep(ctx, d)
	}
	return httpx.Sleep(ctx, d)
}

func (c *Client) logger() *slog.Logger {
	if c.Log != nil {
		return c.Log
	}
	return slog.New(slog.DiscardHandler)
}
