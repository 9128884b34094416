// Package agent is azinit-extensions' daemon: it follows the goal state,
// hands new ones to the extensions manager, and uploads the aggregate
// status, telling systemd how it goes.
package agent

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/azinit/azinit/datasource/azure"
	"github.com/azinit/azinit/datasource/azure/certs"
	"github.com/azinit/azinit/datasource/azure/hostgaplugin"
	"github.com/azinit/azinit/datasource/azure/storage"
	"github.com/azinit/azinit/datasource/azure/wireserver"
	"github.com/azinit/azinit/extensions"
	"github.com/azinit/azinit/internal/config"
	"github.com/azinit/azinit/internal/httpx"
	"github.com/azinit/azinit/internal/sys"
	"github.com/azinit/azinit/internal/version"
)

// DisableFile keeps the extension agent from doing anything while it
// exists, as it keeps the platform's agent.
const DisableFile = azure.LibDir + "/disable_agent"

// StatusFile holds the last status uploaded, for people and tools.
const StatusFile = "/var/lib/azinit/extensions/status.json"

// Options configure the agent.
type Options struct {
	Root   *sys.Root
	Config *config.Config
	Log    *slog.Logger
	Run    sys.Runner
	// Notify sends a state line to systemd (sd_notify); nil outside it.
	Notify func(state string)
	// Watchdog is how often systemd wants to hear from the agent; 0 when
	// it does not watch.
	Watchdog time.Duration
	// Once takes the goal state up, reports status once and returns.
	Once bool
	// BootID tells boots apart: a new boot takes the goal state up again.
	BootID string
	Now    func() time.Time
}

// agent is one run of the daemon.
type agent struct {
	o       Options
	tracker *azure.Tracker
	manager *extensions.Manager
	hgap    *hostgaplugin.Client
	store   *storage.Client
	fetch   *fetcher
	info    extensions.AgentInfo

	uploaded   []byte // the last status uploaded, timestamps left out
	uploadedAt time.Time
}

// Run runs the agent until ctx ends (or once, with Options.Once).
func Run(ctx context.Context, o Options) error {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Notify == nil {
		o.Notify = func(string) {}
	}
	if _, err := o.Root.Stat(DisableFile); err == nil {
		o.Log.Info("extension handling is disabled", "file", DisableFile)
		o.Notify("READY=1\nSTATUS=disabled by " + DisableFile)
		return nil
	}
	a, err := newAgent(o)
	if err != nil {
		return err
	}
	if err := a.manager.Open(); err != nil {
		return err
	}
	// The stages saved the transport key pair; a VM they did not provision
	// gets one now, kept for the next run.
	t, err := a.tracker.Transport.Wait(ctx)
	if err != nil {
		return fmt.Errorf("transport key: %w", err)
	}
	if err := o.Root.MkdirAll(azure.LibDir, 0o700); err != nil {
		return err
	}
	if err := t.Save(o.Root, azure.LibDir); err != nil {
		return err
	}
	if o.Once {
		return a.once(ctx)
	}
	return a.loop(ctx)
}

func newAgent(o Options) (*agent, error) {
	az, ext := o.Config.Datasource.Azure, o.Config.Extensions
	wsURL := azure.WireserverURL(o.Root, az, o.Log)
	ws, err := url.Parse(wsURL)
	if err != nil || ws.Hostname() == "" {
		return nil, fmt.Errorf("wireserver address %q: not a URL", wsURL)
	}
	platformHTTP := azure.NewHTTPClient(az, o.Log)
	maxPackage := int64(ext.MaxPackageMB) << 20
	storeHTTP := *platformHTTP
	storeHTTP.HTTP, storeHTTP.MaxBody = storage.NewHTTPClient(ext.HTTPProxy), maxPackage
	hgapHTTP := *platformHTTP
	hgapHTTP.MaxBody = maxPackage

	// The HostGAPlugin carries status uploads and artifact downloads
	// whether or not goal states come from it (Fast Track).
	endpoint := az.HostGAPlugin
	if endpoint == "" {
		endpoint = "http://" + ws.Hostname() + ":32526"
	}
	a := &agent{
		o:     o,
		store: &storage.Client{HTTP: &storeHTTP, Log: o.Log},
		hgap:  &hostgaplugin.Client{Endpoint: endpoint, HTTP: &hgapHTTP, Log: o.Log},
	}
	a.fetch = &fetcher{store: a.store, hgap: a.hgap, log: o.Log}
	a.tracker = &azure.Tracker{
		Root:              o.Root,
		Wireserver:        &wireserver.Client{Endpoint: wsURL, HTTP: platformHTTP, Log: o.Log},
		Artifacts:         a.fetch,
		RecheckWireserver: wireserverRecheck,
		Log:               o.Log,
		Now:               o.Now,
	}
	if ext.FastTrack {
		a.tracker.HostGAPlugin = a.hgap
	}
	a.tracker.Transport = certs.PrepareTransport(o.Root, azure.LibDir, rand.Reader, o.Log)
	a.manager = &extensions.Manager{
		Root:              o.Root,
		Run:               o.Run,
		Fetch:             a.fetch,
		Layout:            extensions.Layout{Lib: azure.LibDir, LogDir: ext.LogDir},
		Log:               o.Log,
		Now:               o.Now,
		Sleep:             httpx.Sleep,
		BootID:            o.BootID,
		WireserverAddress: ws.Hostname(),
		Timeouts: extensions.Timeouts{
			Install:   time.Duration(ext.Timeouts.Install),
			Enable:    time.Duration(ext.Timeouts.Enable),
			Disable:   time.Duration(ext.Timeouts.Disable),
			Update:    time.Duration(ext.Timeouts.Update),
			Uninstall: time.Duration(ext.Timeouts.Uninstall),
		},
		ResourceLimits:   ext.ResourceLimits && o.Root.Live(),
		MaxPackageBytes:  maxPackage,
		Disabled:         !ext.Enabled,
		HonorOnHold:      ext.HonorOnHold,
		DependencyPoll:   5 * time.Second,
		DependencyBudget: 90 * time.Minute,
	}
	a.info = machineInfo(o.Root)
	return a, nil
}

// wireserverRecheck is how often the wireserver goal state is read while
// vmSettings carry the changes.
const wireserverRecheck = 5 * time.Minute

// once takes the current goal state up, waits for the handlers' final
// status, and reports it; it fails when a handler is not in the state the
// goal state asks for.
func (a *agent) once(ctx context.Context) error {
	cur, _, pollErr := a.tracker.Poll(ctx)
	if cur.ID == "" {
		return fmt.Errorf("no goal state: %w", pollErr)
	}
	if pollErr != nil {
		a.o.Log.Warn("reading the goal state", "error", pollErr)
	}
	a.fetch.setGoal(a.tracker.Identity(), cur.Goal.Source == "FastTrack")
	err := a.manager.Apply(ctx, cur.ID, cur.Goal)
	if err == nil {
		// Handlers may finish in the background (enable often detaches).
		err = a.manager.Settle(ctx, time.Duration(a.o.Config.Extensions.Timeouts.Enable))
	}
	return errors.Join(err, a.report(ctx, true))
}

// loop polls the goal state every period and applies new ones in the
// background, so status keeps flowing while a handler runs. A goal state
// that arrives meanwhile waits for the running one; only the newest does.
func (a *agent) loop(ctx context.Context) error {
	period := time.Duration(a.o.Config.Extensions.GoalStatePeriod)
	applied := make(chan error, 1)
	running, ready := false, false
	var pending *azure.Extensions
	start := func(e azure.Extensions) {
		running = true
		a.fetch.setGoal(a.tracker.Identity(), e.Goal.Source == "FastTrack")
		go func() { applied <- a.manager.Apply(ctx, e.ID, e.Goal) }()
	}
	poll := time.NewTimer(0)
	defer poll.Stop()
	var watchdog <-chan time.Time
	if a.o.Watchdog > 0 {
		t := time.NewTicker(a.o.Watchdog / 2)
		defer t.Stop()
		watchdog = t.C
	}
	for {
		select {
		case <-ctx.Done():
			a.o.Notify("STOPPING=1\nSTATUS=stopping: letting the running handler command finish")
			if running {
				<-applied
			}
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			if err := a.report(final, true); err != nil {
				a.o.Log.Warn("uploading the last status", "error", err)
			}
			return nil
		case err := <-applied:
			running = false
			if err != nil && ctx.Err() == nil {
				a.o.Log.Error("taking up the goal state", "error", err)
			}
			if pending != nil {
				start(*pending)
				pending = nil
			}
			a.reportLogged(ctx, false)
		case <-watchdog:
			a.o.Notify("WATCHDOG=1")
		case <-poll.C:
			cur, changed, err := a.tracker.Poll(ctx)
			if err != nil && ctx.Err() == nil {
				a.o.Log.Warn("reading the goal state", "error", err)
			}
			if changed {
				if running {
					pending = &cur
				} else {
					start(cur)
				}
			}
			a.reportLogged(ctx, false)
			if !ready {
				a.o.Notify("READY=1")
				ready = true
			}
			a.o.Notify("STATUS=" + a.summary(cur, running))
			poll.Reset(period)
		}
	}
}

func (a *agent) summary(cur azure.Extensions, running bool) string {
	if cur.ID == "" {
		return "waiting for a goal state"
	}
	state := "done"
	if running {
		state = "running"
	}
	return fmt.Sprintf("goal state %s: %s, %d handler(s)", cur.ID, state, len(cur.Goal.Handlers))
}

func (a *agent) reportLogged(ctx context.Context, force bool) {
	if err := a.report(ctx, force); err != nil && ctx.Err() == nil {
		a.o.Log.Warn("uploading the status", "error", err)
	}
}

// timestamps matches the timestamps of a status document, which change
// at every upload while the status itself may not.
var timestamps = regexp.MustCompile(`"timestampUTC":"[^"]*"`)

// report uploads the aggregate status when it changed, or when the last
// upload is status_period old (the platform takes it as a heartbeat):
// through the HostGAPlugin, else directly to the status blob.
func (a *agent) report(ctx context.Context, force bool) error {
	cur := a.tracker.Current()
	if cur.ID == "" || cur.Goal.StatusUploadBlob == "" {
		return nil
	}
	info := a.info
	info.FastTrack = a.tracker.FastTrack()
	doc, err := a.manager.Status(info)
	if err != nil {
		return err
	}
	now := a.o.Now()
	key := timestamps.ReplaceAll(doc, nil)
	if !force && bytes.Equal(key, a.uploaded) && now.Sub(a.uploadedAt) < time.Duration(a.o.Config.Extensions.StatusPeriod) {
		return nil
	}
	blob := storage.Blob{URL: cur.Goal.StatusUploadBlob, Type: cur.Goal.StatusBlobType}
	viaHGAP := a.hgap.PutStatus(ctx, a.tracker.Identity(), blob, doc, now)
	if errors.Is(viaHGAP, httpx.ErrGone) {
		a.tracker.Refresh()
	}
	if viaHGAP != nil {
		if err := a.store.PutStatus(ctx, blob, doc, now); err != nil {
			return errors.Join(viaHGAP, err)
		}
	}
	a.uploaded, a.uploadedAt = key, now
	if err := a.o.Root.MkdirAll(path.Dir(StatusFile), 0o700); err != nil {
		return err
	}
	return a.o.Root.WriteFileAtomic(StatusFile, doc, 0o600)
}

// machineInfo is what the status says about the machine.
func machineInfo(root *sys.Root) extensions.AgentInfo {
	info := extensions.AgentInfo{Version: version.Version}
	if root.Live() {
		info.ComputerName, _ = os.Hostname()
	} else if b, err := root.ReadFile("/etc/hostname"); err == nil {
		info.ComputerName = strings.TrimSpace(string(b))
	}
	if b, err := root.ReadFile("/etc/os-release"); err == nil {
		rel := parseOSRelease(b)
		info.OSName, info.OSVersion = rel["ID"], rel["VERSION_ID"]
	}
	return info
}

// parseOSRelease reads os-release's KEY=value lines, quotes removed.
func parseOSRelease(b []byte) map[string]string {
	m := map[string]string{}
	for line := range strings.Lines(string(b)) {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok || strings.HasPrefix(k, "#") {
			continue
		}
		m[k] = strings.Trim(v, `"'`)
	}
	return m
}
