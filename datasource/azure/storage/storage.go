// Package storage talks to Azure Storage directly, outside the platform's
// private endpoints: it fetches extension manifests, the
// InVMArtifactsProfile and packages from their blob URLs, and uploads the
// aggregate status to the status blob (wire-protocol.md §1, §10, §11,
// §13.3). StatusRequests lays out a status upload; the hostgaplugin
// package sends the same requests wrapped for the HostGAPlugin.
//
// Blob URLs carry SAS tokens: every URL in an error or a log line goes
// through httpx.RedactURL.
package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/azinit/azinit/datasource/azure/wireserver"
	"github.com/azinit/azinit/internal/httpx"
)

// DownloadDeadline bounds one package download, waits included: the
// platform's agent gives up on a package after 5 minutes (§11.3).
const DownloadDeadline = 5 * time.Minute

// Policy is the retry policy for storage requests: the transport rules
// of §1 that every platform request follows (6 attempts, Fibonacci waits,
// throttling, 10 s per attempt).
func Policy() httpx.Policy { return wireserver.ProtocolPolicy() }

// DownloadPolicy is Policy for package downloads: an attempt is not cut
// off after 10 s (the platform's agent bounds an idle socket, not a whole
// body, and packages are large); DownloadDeadline bounds the whole call.
func DownloadPolicy() httpx.Policy {
	p := Policy()
	p.Timeout = 0
	p.Deadline = DownloadDeadline
	return p
}

// Client talks to Azure Storage.
type Client struct {
	// HTTP sends the requests; nil means one whose transport is
	// NewHTTPClient(""): the environment's proxy, no redirects.
	HTTP *httpx.Client
	Log  *slog.Logger // nil discards
}

// NewHTTPClient returns an HTTP client for storage: through proxy, or,
// when proxy is "", through the proxy http_proxy/https_proxy/no_proxy name
// (upper-case too; loopback is never proxied). proxy is a URL
// ("http://host:port") or a bare host:port. Redirects are not followed. A
// proxy that does not parse makes every request fail with an error saying
// so.
func NewHTTPClient(proxy string) *http.Client {
	c := httpx.Direct()
	c.Transport.(*http.Transport).Proxy = proxyFunc(proxy)
	return c
}

// proxyFunc is the transport's proxy choice for the proxy setting.
func proxyFunc(proxy string) func(*http.Request) (*url.URL, error) {
	if proxy == "" {
		return http.ProxyFromEnvironment
	}
	u, err := parseProxy(proxy)
	if err != nil {
		return func(*http.Request) (*url.URL, error) { return nil, err }
	}
	return http.ProxyURL(u)
}

// parseProxy parses a proxy setting. Its errors never quote the setting,
// which may hold a password.
func parseProxy(proxy string) (*url.URL, error) {
	s := proxy
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return nil, errors.New("storage proxy setting: want http://host:port or host:port")
	}
	return u, nil
}

// defaultHTTP is the client used when Client.HTTP is nil. Like
// http.DefaultClient it holds only a connection pool.
var defaultHTTP = sync.OnceValue(func() *http.Client { return NewHTTPClient("") })

// Get fetches a blob (an extension manifest, the InVMArtifactsProfile)
// under Policy.
func (c *Client) Get(ctx context.Context, rawURL string) ([]byte, error) {
	resp, err := c.do(ctx, http.MethodGet, rawURL, nil, nil, Policy(), nil)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// Download streams a blob (an extension package) into f under
// DownloadPolicy. f is emptied before each attempt.
func (c *Client) Download(ctx context.Context, rawURL string, f *os.File) error {
	_, err := c.do(ctx, http.MethodGet, rawURL, nil, nil, DownloadPolicy(), f)
	return err
}

// PutStatus uploads status to b directly (§13.3), under Policy: the
// requests of StatusRequests, page padding NUL, each of which must answer
// 201 Created.
func (c *Client) PutStatus(ctx context.Context, b Blob, status []byte, now time.Time) error {
	reqs, err := StatusRequests(b, status, now, 0)
	if err != nil {
		return err
	}
	for i, r := range reqs {
		resp, err := c.do(ctx, http.MethodPut, r.URL, r.Header, r.Body, Policy(), nil)
		if err != nil {
			return fmt.Errorf("status upload, request %d of %d: %w", i+1, len(reqs), err)
		}
		if resp.Status != http.StatusCreated {
			return fmt.Errorf("status upload, request %d of %d: PUT %s: HTTP %d %s, want 201 Created",
				i+1, len(reqs), Redact(r.URL), resp.Status, http.StatusText(resp.Status))
		}
	}
	c.logger().Debug("status uploaded", "blob", Redact(b.URL), "type", b.Type, "bytes", len(status), "requests", len(reqs))
	return nil
}

// do sends one request to rawURL under p; with sink, a successful body
// goes there.
func (c *Client) do(ctx context.Context, method, rawURL string, h http.Header, body []byte, p httpx.Policy, sink *os.File) (*httpx.Response, error) {
	if _, err := parseBlobURL(rawURL); err != nil {
		return nil, fmt.Errorf("%s blob: %w", method, err)
	}
	newReq := func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, method, rawURL, bytes.NewReader(body))
		if err != nil {
			return nil, errors.New("blob URL does not parse") // the cause quotes the signature
		}
		req.Header = h.Clone()
		if req.Header == nil {
			req.Header = http.Header{}
		}
		req.Header.Set("User-Agent", wireserver.DefaultUserAgent)
		return req, nil
	}
	hc := c.httpClient()
	if sink != nil {
		return hc.Download(ctx, newReq, p, sink)
	}
	return hc.Do(ctx, newReq, p)
}

func (c *Client) httpClient() *httpx.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return &httpx.Client{HTTP: defaultHTTP(), Log: c.Log}
}

func (c *Client) logger() *slog.Logger {
	if c.Log != nil {
		return c.Log
	}
	return slog.New(slog.DiscardHandler)
}

// Redact is the URL raw with its SAS signature ("sig") redacted, for
// errors and logs.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return httpx.RedactURL(u)
}
