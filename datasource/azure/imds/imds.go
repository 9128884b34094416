// Package imds reads the Azure Instance Metadata Service: the VM's compute
// and network metadata from /metadata/instance.
package imds

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/azinit/azinit/internal/httpx"
)

// API versions: the current one with the "extended" section, and the one
// to fall back to when IMDS answers 400 (an older host that does not know
// the newer version), as cloud-init does.
const (
	apiVersion         = "2021-08-01"
	fallbackAPIVersion = "2019-06-01"
)

// Defaults for Client: IMDS may take a while to come up early in boot, so
// the whole call keeps trying for minutes, each attempt for at most 30 s.
const (
	DefaultDeadline = 300 * time.Second
	DefaultTimeout  = 30 * time.Second
)

// backoff grows from 500 ms to 8 s between attempts; the ±25% jitter keeps
// VMs booting together from retrying in step while still growing.
var backoff = httpx.Exponential(500*time.Millisecond, 8*time.Second, 0.25)

// Client fetches instance metadata.
type Client struct {
	// BaseURL is IMDS's address, "http://169.254.169.254" on Azure.
	BaseURL string
	// HTTP sends the requests; it should not use a proxy (IMDS refuses
	// proxied requests). nil means an httpx.Client over a proxy-less
	// transport.
	HTTP *httpx.Client
	// Deadline bounds the whole call, retries and waits included
	// (DefaultDeadline when 0); Timeout bounds each attempt (DefaultTimeout
	// when 0).
	Deadline time.Duration
	Timeout  time.Duration
	// Log gets the API fallback and the fetched instance (never userData);
	// nil discards.
	Log *slog.Logger
}

// Instance fetches and parses /metadata/instance. It retries 404, 410,
// 429, 5xx and connection failures with growing, jittered waits until the
// deadline, and falls back once to the older API version on 400.
func (c *Client) Instance(ctx context.Context) (*Instance, error) {
	base, err := c.base()
	if err != nil {
		return nil, err
	}
	deadline := orDefault(c.Deadline, DefaultDeadline)
	ctx, cancel := context.WithTimeoutCause(ctx, deadline,
		fmt.Errorf("no instance metadata within %s: %w", deadline, context.DeadlineExceeded))
	defer cancel()

	hc := c.http()
	endpoint := base + "/metadata/instance?api-version=" + apiVersion + "&extended=true"
	resp, err := c.get(ctx, hc, endpoint)
	var he *httpx.Error
	if errors.As(err, &he) && he.Status == http.StatusBadRequest {
		c.logger().Warn("IMDS refused the API version; falling back", "api_version", apiVersion, "fallback", fallbackAPIVersion)
		endpoint = base + "/metadata/instance?api-version=" + fallbackAPIVersion
		resp, err = c.get(ctx, hc, endpoint)
	}
	if err != nil {
		return nil, err // names the endpoint and the cause
	}
	inst, err := ParseInstance(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", endpoint, err)
	}
	c.logger().Debug("fetched instance metadata", "endpoint", endpoint, "instance", inst)
	return inst, nil
}

func (c *Client) get(ctx context.Context, hc *httpx.Client, endpoint string) (*httpx.Response, error) {
	return hc.Do(ctx, func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Metadata", "true")
		req.Header.Set("x-ms-client-request-id", newUUID())
		return req, nil
	}, httpx.Policy{
		Attempts: math.MaxInt, // until the deadline
		Backoff:  backoff,
		Retry:    retryable,
		Timeout:  orDefault(c.Timeout, DefaultTimeout),
	})
}

// retryable statuses: IMDS answers 404 and 410 while it is not ready yet
// and 429 when throttling.
func retryable(status int) bool {
	return status == http.StatusNotFound || status == http.StatusGone ||
		status == http.StatusTooManyRequests || status >= 500
}

func (c *Client) base() (string, error) {
	u, err := url.Parse(c.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("instance metadata: base URL %q is not an http(s) URL", c.BaseURL)
	}
	return strings.TrimRight(c.BaseURL, "/"), nil
}

func (c *Client) http() *httpx.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil
	return &httpx.Client{HTTP: &http.Client{Transport: t}, Log: c.Log}
}

func (c *Client) logger() *slog.Logger {
	if c.Log != nil {
		return c.Log
	}
	return slog.New(slog.DiscardHandler)
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// newUUID returns a random (version 4) UUID for x-ms-client-request-id,
// which lets Azure support find a request in its logs.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
