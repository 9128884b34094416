// Package fabric is an offline Azure fabric: a wireserver, a HostGAPlugin,
// IMDS and blob storage on loopback, answering from a scenario directory
// as the platform does, recording every request, and injecting faults on
// demand (design.md §7). It also builds provisioning media.
//
// It never listens on anything but loopback: it exists so that nothing a
// test does ever leaves the machine.
package fabric

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/azinit/azinit/internal/logging"
	"github.com/azinit/azinit/internal/sys"
)

// DefaultListen is the wireserver's default listen address.
const DefaultListen = "127.0.0.1:0"

// maxRequestBody bounds what the fabric reads of a request body.
const maxRequestBody = 16 << 20

// ErrNotLoopback is returned (wrapped) for a listen address that is not on
// loopback.
var ErrNotLoopback = errors.New("not a loopback address")

// Options configure a fabric.
type Options struct {
	Scenario string // the scenario directory
	// Listen is the wireserver's address (default 127.0.0.1:0). The
	// HostGAPlugin and IMDS listen on their own addresses, by default the
	// same host with port 0. All must be loopback.
	Listen, HostGAPluginListen, IMDSListen string
	// Advertise, where set, are the base URLs the served documents give
	// for each server instead of the listeners' own: the addresses a VM
	// reaches the fabric at through forwarding (a QEMU guest dials
	// 168.63.129.16, which its user-mode network forwards here).
	Advertise Addrs
	Faults    []Fault
	RecordTo  io.Writer // gets the record as JSON lines; may be nil
	Log       *slog.Logger
}

// Addrs are the base URLs of the fabric's listeners, as --addr-file has them.
type Addrs struct {
	Wireserver   string `json:"wireserver"`
	HostGAPlugin string `json:"hostgaplugin"`
	IMDS         string `json:"imds"`
}

// WriteFile writes a as JSON to path atomically.
func (a Addrs) WriteFile(path string) error {
	b, err := json.MarshalIndent(a, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(path, append(b, '\n'), 0o644)
}

// writeFileAtomic writes data to the host path name through a root at its
// directory: a temporary file renamed into place, so readers never see
// half of it.
func writeFileAtomic(name string, data []byte, perm fs.FileMode) error {
	abs, err := filepath.Abs(name)
	if err != nil {
		return err
	}
	root, err := sys.OpenRoot(filepath.Dir(abs))
	if err != nil {
		return err
	}
	defer root.Close()
	if err := root.WriteFileAtomic("/"+filepath.Base(abs), data, perm); err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	return nil
}

// Fabric is a running fabric.
type Fabric struct {
	log       *slog.Logger
	scenario  string
	addrs     Addrs // the listeners
	public    Addrs // what the documents say
	servers   []*http.Server
	serving   sync.WaitGroup
	state     atomic.Pointer[state]
	reloadMu  sync.Mutex
	faults    *faultQueue
	rec       *recorder
	uploads   blobStore // status blobs agents uploaded
	closing   chan struct{}
	closeOnce sync.Once
}

// Start loads the scenario and starts the three listeners. The fabric runs
// until Close or until ctx ends.
func Start(ctx context.Context, o Options) (*Fabric, error) {
	log := o.Log
	if log == nil {
		log = logging.Discard()
	}
	if o.Scenario == "" {
		return nil, errors.New("fabric: no scenario directory")
	}
	scn, err := LoadScenario(o.Scenario)
	if err != nil {
		return nil, err
	}
	listen := cmp.Or(o.Listen, DefaultListen)
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("listen address %q: %w", listen, err)
	}
	f := &Fabric{
		log:      log,
		scenario: o.Scenario,
		faults:   newFaultQueue(o.Faults),
		rec:      newRecorder(o.RecordTo, log),
		uploads:  blobStore{blobs: map[string][]byte{}},
		closing:  make(chan struct{}),
	}
	servers := []struct {
		server Server
		addr   string
		url    *string
		route  func(*request) reply
	}{
		{ServerWireserver, listen, &f.addrs.Wireserver, f.serveWireserver},
		{ServerHostGAPlugin, cmp.Or(o.HostGAPluginListen, net.JoinHostPort(host, "0")), &f.addrs.HostGAPlugin, f.serveHostGAPlugin},
		{ServerIMDS, cmp.Or(o.IMDSListen, net.JoinHostPort(host, "0")), &f.addrs.IMDS, serveIMDS},
	}
	var listeners []net.Listener
	closeAll := func() {
		for _, ln := range listeners {
			ln.Close()
		}
	}
	for _, s := range servers {
		ln, err := listenLoopback(ctx, s.server, s.addr)
		if err != nil {
			closeAll()
			return nil, err
		}
		listeners = append(listeners, ln)
		*s.url = "http://" + ln.Addr().String()
	}
	f.public = Addrs{
		Wireserver:   cmp.Or(o.Advertise.Wireserver, f.addrs.Wireserver),
		HostGAPlugin: cmp.Or(o.Advertise.HostGAPlugin, f.addrs.HostGAPlugin),
		IMDS:         cmp.Or(o.Advertise.IMDS, f.addrs.IMDS),
	}
	st, err := buildState(scn, scn.Settings.Incarnation, f.public)
	if err != nil {
		closeAll()
		return nil, err
	}
	f.state.Store(st)
	for i, s := range servers {
		srv := &http.Server{
			Handler:           f.handler(s.server, s.route),
			ReadHeaderTimeout: 30 * time.Second,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		}
		f.servers = append(f.servers, srv)
		f.serving.Add(1)
		go func(ln net.Listener) {
			defer f.serving.Done()
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				log.Error("fabric listener failed", "server", s.server, "error", err)
			}
		}(listeners[i])
	}
	context.AfterFunc(ctx, func() { f.Close() })
	log.Info("fabric serving", "scenario", o.Scenario, "incarnation", st.incarnation,
		"wireserver", f.addrs.Wireserver, "hostgaplugin", f.addrs.HostGAPlugin, "imds", f.addrs.IMDS)
	return f, nil
}

// listenLoopback listens on addr, which must be a loopback address
// (127.0.0.0/8, ::1 or localhost).
func listenLoopback(ctx context.Context, server Server, addr string) (net.Listener, error) {
	if err := CheckLoopback(addr); err != nil {
		return nil, fmt.Errorf("%s: %w", server, err)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", server, err)
	}
	// "localhost" is resolved by the system: check what it became.
	if tcp, ok := ln.Addr().(*net.TCPAddr); !ok || !tcp.IP.IsLoopback() {
		ln.Close()
		return nil, fmt.Errorf("%s: %w: %s resolved to %s", server, ErrNotLoopback, addr, ln.Addr())
	}
	return ln, nil
}

// CheckLoopback returns an error unless addr (host:port) is on loopback.
func CheckLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("listen address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("listen address %q: %w: azinit-fabric listens only on 127.0.0.0/8, ::1 or localhost, so that nothing leaves the machine",
			addr, ErrNotLoopback)
	}
	return nil
}

// URLs are the base URLs of the fabric's listeners.
func (f *Fabric) URLs() Addrs { return f.addrs }

// Record returns every request recorded so far.
func (f *Fabric) Record() []Entry { return f.rec.snapshot() }

// HealthReports are the health reports the fabric accepted, in order.
func (f *Fabric) HealthReports() []Health { return HealthReports(f.Record()) }

// HealthReports are the health reports accepted in entries (a record, or
// part of one), in order.
func HealthReports(entries []Entry) []Health {
	var hs []Health
	for _, e := range entries {
		if h, ok := e.Health(); ok {
			hs = append(hs, h)
		}
	}
	return hs
}

// WaitFor returns the first recorded request matching match, waiting for
// it until ctx ends.
func (f *Fabric) WaitFor(ctx context.Context, match func(Entry) bool) (Entry, error) {
	return f.rec.waitFor(ctx, match)
}

// Incarnation is the incarnation of the goal state being served.
func (f *Fabric) Incarnation() string { return f.state.Load().incarnation }

// Reload re-reads the scenario. A changed scenario becomes a new goal
// state: the incarnation goes up by one (or to scenario.yaml's incarnation
// if that is higher). An unchanged one keeps its incarnation. On error the
// current goal state stays.
func (f *Fabric) Reload() error {
	f.reloadMu.Lock()
	defer f.reloadMu.Unlock()
	cur := f.state.Load()
	scn, err := LoadScenario(f.scenario)
	if err != nil {
		return err
	}
	if !scn.Changed(cur.scenario) {
		f.log.Info("scenario unchanged", "incarnation", cur.incarnation)
		return nil
	}
	st, err := buildState(scn, max(cur.counter+1, scn.Settings.Incarnation), f.public)
	if err != nil {
		return err
	}
	f.state.Store(st)
	f.log.Info("scenario reloaded", "incarnation", st.incarnation)
	return nil
}

// closeGrace is how long Close lets requests in flight finish. It is
// short because net/http counts a connection that never sent a request (a
// client's spare dial) as busy for 5 s.
const closeGrace = 250 * time.Millisecond

// Close stops the listeners, releasing requests held by faults, and
// closes the connections once the requests in flight have had closeGrace
// to finish.
func (f *Fabric) Close() error {
	var errs []error
	f.closeOnce.Do(func() {
		close(f.closing)
		ctx, cancel := context.WithTimeout(context.Background(), closeGrace)
		defer cancel()
		for _, srv := range f.servers {
			if err := srv.Shutdown(ctx); err != nil {
				errs = append(errs, srv.Close())
			}
		}
		f.serving.Wait()
	})
	return errors.Join(errs...)
}
