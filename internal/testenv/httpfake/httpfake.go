// Package httpfake is test support for clients of the platform's HTTP
// endpoints: a loopback server that records what it is sent, a confinement
// that lets a client dial nothing else, and a sleeper that records waits.
package httpfake

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// Request is what a Server saw of one request.
type Request struct {
	Method string
	URI    string            // as sent: escaped path and raw query
	Header map[string]string // only the headers the Server was told to keep
	Body   string
}

// Server is an HTTP server on 127.0.0.1 that records every request.
type Server struct {
	URL  string // base URL, http://127.0.0.1:port
	Addr string // host:port, what a client dials

	reqs record[Request]
}

// Start starts a Server that lives until the end of the test. It records
// each request, keeping the named headers that are set, then has answer
// reply; n counts the requests from 1, and r.Body can be read again.
func Start(t testing.TB, headers []string, answer func(n int, w http.ResponseWriter, r *http.Request)) *Server {
	t.Helper()
	s := &Server{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		req := Request{Method: r.Method, URI: r.RequestURI, Header: map[string]string{}, Body: string(body)}
		for _, k := range headers {
			if v := r.Header.Get(k); v != "" {
				req.Header[k] = v
			}
		}
		answer(s.reqs.add(req), w, r)
	}))
	t.Cleanup(srv.Close)
	s.URL, s.Addr = srv.URL, srv.Listener.Addr().String()
	return s
}

// Requests returns the requests seen so far, in the order they arrived.
func (s *Server) Requests() []Request { return s.reqs.all() }

// Confinement records what a confined client tried to dial elsewhere.
type Confinement struct {
	refused record[string]
}

// Confine makes hc, whose Transport must be an *http.Transport, dial addr
// and nothing else: any other address is refused with an error, and kept
// in the returned Confinement for tests that want no attempt at all.
func Confine(t testing.TB, hc *http.Client, addr string) *Confinement {
	c := &Confinement{}
	tr := hc.Transport.(*http.Transport)
	tr.DialContext = func(ctx context.Context, network, a string) (net.Conn, error) {
		if a != addr {
			c.refused.add(a)
			return nil, fmt.Errorf("test dialer: refusing %s", a)
		}
		var d net.Dialer
		return d.DialContext(ctx, network, a)
	}
	t.Cleanup(tr.CloseIdleConnections)
	return c
}

// Refused returns the addresses refused so far, nil if none.
func (c *Confinement) Refused() []string { return c.refused.all() }

// Sleeper stands in for httpx.Sleep: it records each wait and returns at
// once. The zero value is ready to use.
type Sleeper struct {
	slept record[time.Duration]
}

// Sleep records d and returns ctx.Err(), without waiting.
func (s *Sleeper) Sleep(ctx context.Context, d time.Duration) error {
	s.slept.add(d)
	return ctx.Err()
}

// Slept returns the waits asked for so far, nil if none.
func (s *Sleeper) Slept() []time.Duration { return s.slept.all() }

// record is a list that handlers and clients append to while the test
// reads it.
type record[T any] struct {
	mu    sync.Mutex
	items []T
}

// add appends x and returns how many items there are now.
func (r *record[T]) add(x T) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.items = append(r.items, x)
	return len(r.items)
}

// all returns a copy of the items, nil if none.
func (r *record[T]) all() []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]T(nil), r.items...)
}
