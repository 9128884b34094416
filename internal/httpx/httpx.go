// Package httpx is the one place HTTP requests are retried. Each platform
// endpoint describes its rules as a Policy (which statuses are retried,
// how long to wait, when to give up); Client.Do applies them, with an
// injectable sleep so tests never wait.
package httpx

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// DefaultMaxBody bounds how much of a response body is read.
const DefaultMaxBody = 16 << 20

// Response is a response whose body has been read in full.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Policy is how one kind of request is retried.
type Policy struct {
	// Attempts is the total number of attempts; values below 1 mean 1.
	Attempts int
	// Backoff is the wait before retry n (n = 1 before the second attempt).
	Backoff func(n int) time.Duration
	// Retry reports whether a response status is worth another attempt; a
	// 2xx it names counts as a failure. Transport errors (refused, reset,
	// timeout, truncated body) are always retried.
	Retry func(status int) bool
	// Throttled statuses switch every later wait to ThrottleDelay and raise
	// the attempts to at least ThrottleAttempts.
	Throttled        func(status int) bool
	ThrottleDelay    time.Duration
	ThrottleAttempts int
	// Timeout bounds each attempt; Deadline bounds the whole call, waits
	// included. Zero means no bound beyond the caller's context.
	Timeout  time.Duration
	Deadline time.Duration
}

// Client sends requests under a Policy.
type Client struct {
	// HTTP sends the requests; nil means a shared Direct client.
	HTTP *http.Client
	// Sleep waits between attempts; nil sleeps for real.
	Sleep func(ctx context.Context, d time.Duration) error
	Log   *slog.Logger
	// MaxBody bounds a response body; 0 means DefaultMaxBody.
	MaxBody int64
	// Timeout, when set, caps every policy's per-attempt timeout: for
	// networks known to answer fast, and for tests.
	Timeout time.Duration
}

// direct is the client used when Client.HTTP is nil. Like
// http.DefaultClient it holds only a connection pool.
var direct = Direct()

// Direct returns an HTTP client for platform endpoints: no proxy (the
// wireserver, HostGAPlugin and IMDS are reached directly, whatever
// http_proxy says) and no redirects (a redirect could lead away from the
// configured endpoint). Per-request bounds come from the Policy.
func Direct() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     30 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// ErrGone matches an *Error whose last status was 410 Gone: the platform
// says the caller's view (goal state, container) is stale.
var ErrGone = errors.New("410 Gone")

// ErrBodyTooLarge is returned when a response exceeds the client's MaxBody.
var ErrBodyTooLarge = errors.New("response body too large")

// Error is a request that did not succeed. Its message names the endpoint
// (with SAS signatures redacted) and the cause, never a request body.
type Error struct {
	Endpoint string // "GET http://127.0.0.1:80/machine/?comp=goalstate"
	Attempts int
	Status   int    // last HTTP status; 0 when no response arrived
	Body     []byte // last response body, for callers that inspect it
	Err      error  // cause of the last failure
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s: %v (%d attempt%s)", e.Endpoint, e.Err, e.Attempts, plural(e.Attempts))
}

func (e *Error) Unwrap() error { return e.Err }

func (e *Error) Is(target error) bool { return target == ErrGone && e.Status == http.StatusGone }

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// StatusError is the cause of an *Error when the server answered with a
// status the policy does not accept.
type StatusError struct{ Status int }

func (e *StatusError) Error() string {
	return fmt.Sprintf("HTTP %d %s", e.Status, http.StatusText(e.Status))
}

// Do sends the request built by newReq until it succeeds (2xx) or the
// policy gives up. newReq is called once per attempt so bodies can be resent.
func (c *Client) Do(ctx context.Context, newReq func(ctx context.Context) (*http.Request, error), p Policy) (*Response, error) {
	return c.do(ctx, newReq, p, nil)
}

// Download is Do for bodies too large to hold in memory (extension
// packages): a successful response's body is written to f, which is emptied
// before each attempt, and bounded by the client's MaxBody. The Response
// has no Body.
func (c *Client) Download(ctx context.Context, newReq func(ctx context.Context) (*http.Request, error), p Policy, f *os.File) (*Response, error) {
	return c.do(ctx, newReq, p, f)
}

func (c *Client) do(ctx context.Context, newReq func(ctx context.Context) (*http.Request, error), p Policy, sink *os.File) (*Response, error) {
	if p.Deadline > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.Deadline)
		defer cancel()
	}
	if c.Timeout > 0 && (p.Timeout == 0 || c.Timeout < p.Timeout) {
		p.Timeout = c.Timeout
	}
	attempts := max(p.Attempts, 1)
	throttled := false
	var last Error
	for n := 1; ; n++ {
		resp, endpoint, err := c.attempt(ctx, newReq, p.Timeout, sink)
		if err == nil && p.Retry != nil && p.Retry(resp.Status) {
			// Some 2xx mean "not yet" (the wireserver's 205, 206).
			err = &StatusError{Status: resp.Status}
		}
		if err == nil {
			return resp, nil
		}
		if ctx.Err() != nil {
			// An attempt cut short by the deadline says nothing new: name
			// the last outcome the endpoint gave, if it gave one.
			if n == 1 {
				last = Error{Endpoint: endpoint, Err: err}
			}
			last.Attempts = n
			last.Err = fmt.Errorf("%w (last: %v)", context.Cause(ctx), last.Err)
			return nil, &last
		}
		last = Error{Endpoint: endpoint, Attempts: n, Err: err}
		if resp != nil {
			last.Status, last.Body = resp.Status, resp.Body
		}
		if resp != nil {
			if p.Throttled != nil && p.Throttled(resp.Status) && !throttled {
				throttled = true
				attempts = max(attempts, p.ThrottleAttempts)
			}
			if p.Retry == nil || !p.Retry(resp.Status) {
				return nil, &last
			}
		} else if errors.Is(err, ErrBodyTooLarge) || errors.Is(err, errBadRequest) {
			return nil, &last
		}
		if n >= attempts {
			return nil, &last
		}
		delay := p.ThrottleDelay
		if !throttled && p.Backoff != nil {
			delay = p.Backoff(n)
		}
		c.logger().Debug("retrying request", "endpoint", endpoint, "attempt", n, "cause", err, "delay", delay)
		if err := c.sleep(ctx, delay); err != nil {
			last.Err = fmt.Errorf("%w (last: %v)", err, last.Err)
			return nil, &last
		}
	}
}

var errBadRequest = errors.New("building request")

// attempt sends one request. It returns a response whenever the server
// answered, with a non-nil error when the status is not 2xx.
func (c *Client) attempt(ctx context.Context, newReq func(ctx context.Context) (*http.Request, error), timeout time.Duration, sink *os.File) (*Response, string, error) {
	parent := ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	// timedOut names a per-attempt timeout, which net/http reports only as
	// "context deadline exceeded".
	timedOut := func(err error) error {
		if ctx.Err() != nil && parent.Err() == nil {
			return fmt.Errorf("no response within %s: %w", timeout, err)
		}
		return err
	}
	req, err := newReq(ctx)
	if err != nil {
		return nil, "request", fmt.Errorf("%w: %w", errBadRequest, err)
	}
	endpoint := req.Method + " " + RedactURL(req.URL)
	hc := c.HTTP
	if hc == nil {
		hc = direct
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, endpoint, timedOut(unwrapURLError(err))
	}
	defer resp.Body.Close()
	limit := c.MaxBody
	if limit <= 0 {
		limit = DefaultMaxBody
	}
	ok := resp.StatusCode >= 200 && resp.StatusCode <= 299
	r := &Response{Status: resp.StatusCode, Header: resp.Header}
	if ok && sink != nil {
		n, err := copyTo(sink, io.LimitReader(resp.Body, limit+1))
		if err != nil {
			return nil, endpoint, timedOut(err)
		}
		if n > limit {
			return nil, endpoint, fmt.Errorf("%w (over %d bytes)", ErrBodyTooLarge, limit)
		}
		return r, endpoint, nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, endpoint, timedOut(fmt.Errorf("reading response: %w", err))
	}
	if int64(len(body)) > limit {
		return nil, endpoint, fmt.Errorf("%w (over %d bytes)", ErrBodyTooLarge, limit)
	}
	r.Body = body
	if !ok {
		return r, endpoint, &StatusError{Status: resp.StatusCode}
	}
	return r, endpoint, nil
}

// copyTo replaces f's content with what r yields.
func copyTo(f *os.File, r io.Reader) (int64, error) {
	if err := f.Truncate(0); err != nil {
		return 0, fmt.Errorf("emptying %s: %w", f.Name(), err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, fmt.Errorf("rewinding %s: %w", f.Name(), err)
	}
	n, err := io.Copy(f, r)
	if err != nil {
		return n, fmt.Errorf("reading response into %s: %w", f.Name(), err)
	}
	return n, nil
}

// unwrapURLError drops net/http's "Get "URL": " prefix: the endpoint is
// already named, and the URL may carry a SAS signature.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func (c *Client) sleep(ctx context.Context, d time.Duration) error {
	if c.Sleep != nil {
		return c.Sleep(ctx, d)
	}
	return Sleep(ctx, d)
}

func (c *Client) logger() *slog.Logger {
	if c.Log != nil {
		return c.Log
	}
	return slog.New(slog.DiscardHandler)
}

// Sleep waits for d or until ctx ends.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// Fibonacci waits unit×2, ×3, ×5, ×8, ×13, … before retries 1, 2, 3, …:
// the schedule WALinuxAgent uses against the wireserver.
func Fibonacci(unit time.Duration) func(n int) time.Duration {
	return func(n int) time.Duration {
		a, b := 1, 1
		for range n {
			a, b = b, a+b
		}
		return time.Duration(b) * unit
	}
}

// Exponential waits base, 2×base, 4×base, … capped at limit, each scaled by
// a random factor in [1-jitter, 1+jitter] so that many VMs restarting at
// once do not retry in step.
func Exponential(base, limit time.Duration, jitter float64) func(n int) time.Duration {
	return func(n int) time.Duration {
		d := base
		for i := 1; i < n && d < limit; i++ {
			d *= 2
		}
		d = min(d, limit)
		if jitter > 0 {
			d = time.Duration(float64(d) * (1 - jitter + 2*jitter*rand.Float64()))
		}
		return d
	}
}

// Statuses returns a predicate true for the listed statuses.
func Statuses(codes ...int) func(int) bool {
	return func(s int) bool {
		for _, c := range codes {
			if s == c {
				return true
			}
		}
		return false
	}
}

// RedactURL renders u with every SAS signature ("sig") value replaced, so
// storage URLs can be logged and put in errors.
func RedactURL(u *url.URL) string {
	if u == nil {
		return ""
	}
	if !strings.Contains(strings.ToLower(u.RawQuery), "sig=") {
		return u.String()
	}
	c := *u
	q := strings.Split(c.RawQuery, "&")
	for i, kv := range q {
		if k, _, ok := strings.Cut(kv, "="); ok && strings.EqualFold(k, "sig") {
			q[i] = k + "=REDACTED"
		}
	}
	c.RawQuery = strings.Join(q, "&")
	return c.String()
}
