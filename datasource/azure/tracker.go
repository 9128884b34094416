package azure

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"slices"
	"time"

	"github.com/azinit/azinit/datasource/azure/certs"
	"github.com/azinit/azinit/datasource/azure/extconfig"
	"github.com/azinit/azinit/datasource/azure/hostgaplugin"
	"github.com/azinit/azinit/datasource/azure/wireserver"
	"github.com/azinit/azinit/internal/httpx"
	"github.com/azinit/azinit/internal/sys"
)

// Extensions is an extensions goal state and its id: "incarnation_<N>" for
// the wireserver's ExtensionsConfig, "etag_<ETag>" for vmSettings.
type Extensions struct {
	ID   string
	Goal *extconfig.ExtensionsGoalState
}

// ArtifactGetter reads a small blob the goal state points at (the
// InVMArtifactsProfile).
type ArtifactGetter interface {
	Get(ctx context.Context, url string) ([]byte, error)
}

// Tracker follows the extensions goal state (wire-protocol.md §6): the
// wireserver goal state with its ExtensionsConfig and certificates, and
// the HostGAPlugin's vmSettings (Fast Track), the newer of the two
// winning. Each Poll costs one request when nothing changed: vmSettings
// (conditional on its ETag) while the HostGAPlugin serves it, the
// wireserver goal state otherwise; the wireserver goal state is re-read
// every RecheckWireserver besides, and at once when vmSettings say the
// fabric changed something.
type Tracker struct {
	Root       *sys.Root
	Wireserver *wireserver.Client
	// HostGAPlugin is nil when Fast Track is off.
	HostGAPlugin *hostgaplugin.Client
	Artifacts    ArtifactGetter
	Transport    *certs.Pending
	// RecheckWireserver is how often the wireserver goal state is read
	// while vmSettings carry the changes.
	RecheckWireserver time.Duration
	Log               *slog.Logger
	Now               func() time.Time

	ws          *wireserver.GoalState
	wsRead      time.Time
	wsExt       *Extensions
	refresh     bool     // re-read the wireserver goal state at the next poll
	thumbprints []string // of the certificates written for ws

	vmsEtag     string
	vmsExt      *Extensions
	vmsServed   bool      // the HostGAPlugin answered vmSettings
	vmsNotUntil time.Time // vmSettings are not asked for before then (404)

	current Extensions
	// newest is the creation time of the newest goal state taken up:
	// never go back to an older one (§6).
	newest time.Time
}

// vmSettingsRetry is how long a HostGAPlugin without vmSettings (404) is
// left alone.
const vmSettingsRetry = 6 * time.Hour

// FastTrackFile remembers the newest Fast Track goal state across
// restarts, as the platform's agent does.
const FastTrackFile = LibDir + "/fast_track.json"

// Refresh has the next Poll re-read the wireserver goal state (a 410 Gone
// from a request made for the current one).
func (t *Tracker) Refresh() { t.refresh = true }

// FastTrack reports whether the HostGAPlugin serves vmSettings.
func (t *Tracker) FastTrack() bool { return t.vmsServed }

// Identity is how the HostGAPlugin knows this VM's goal state.
func (t *Tracker) Identity() hostgaplugin.Identity {
	if t.ws == nil {
		return hostgaplugin.Identity{}
	}
	return hostgaplugin.Identity{ContainerID: t.ws.ContainerID, ConfigName: t.ws.ConfigName}
}

// Current is the extensions goal state taken up last; ID "" before the
// first.
func (t *Tracker) Current() Extensions { return t.current }

// Poll reads what changed and reports whether the extensions goal state
// is a new one. Errors leave the last good goal state in place.
func (t *Tracker) Poll(ctx context.Context) (Extensions, bool, error) {
	if t.ws == nil && t.newest.IsZero() {
		t.newest = t.loadFastTrack()
	}
	now := t.Now()
	var errs []error
	wsChanged, wsPolled := false, false
	readWireserver := func() {
		changed, err := t.pollWireserver(ctx)
		wsChanged, wsPolled = wsChanged || changed, true
		if err != nil {
			errs = append(errs, err)
		}
	}
	if t.ws == nil {
		readWireserver() // the HostGAPlugin needs its identity
	}
	vmsChanged, fabricChanged := false, false
	if t.HostGAPlugin != nil && t.ws != nil && !now.Before(t.vmsNotUntil) {
		var err error
		if vmsChanged, fabricChanged, err = t.pollVMSettings(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	// The wireserver is read when it is the only source of changes, when
	// vmSettings say the fabric changed something (its documents are the
	// wireserver's), and every RecheckWireserver besides.
	if !wsPolled && (t.refresh || fabricChanged || !t.vmsServed || now.Sub(t.wsRead) >= t.RecheckWireserver || t.certificatesMissing()) {
		readWireserver()
	}

	var next *Extensions
	switch {
	case wsChanged && t.wsExt != nil && t.vmsExt != nil:
		next = t.wsExt
		if t.vmsExt.Goal.CreatedOn.After(t.wsExt.Goal.CreatedOn) {
			next = t.vmsExt
		}
	case vmsChanged:
		next = t.vmsExt
	case wsChanged:
		next = t.wsExt
	}
	if next == nil || next.ID == t.current.ID {
		return t.current, false, errors.Join(errs...)
	}
	// The same goal state seen again through the other channel is not a
	// new one; an older one is never taken up.
	if t.current.ID != "" && next.Goal.CreatedOn.Equal(t.newest) && next.Goal.Channel != t.current.Goal.Channel {
		return t.current, false, errors.Join(errs...)
	}
	if next.Goal.CreatedOn.Before(t.newest) {
		t.Log.Info("not taking up an extensions goal state older than the current one", "id", next.ID, "created", next.Goal.CreatedOn, "newest", t.newest)
		return t.current, false, errors.Join(errs...)
	}
	t.current, t.newest = *next, next.Goal.CreatedOn
	if next.Goal.Source == extconfig.SourceFastTrack {
		if err := t.saveFastTrack(); err != nil {
			errs = append(errs, err)
		}
	}
	t.Log.Info("new extensions goal state", "id", next.ID, "source", next.Goal.Source, "channel", next.Goal.Channel, "handlers", len(next.Goal.Handlers))
	return t.current, true, errors.Join(errs...)
}

// pollWireserver reads the goal state and, when its incarnation changed
// (or certificate files went missing), its ExtensionsConfig and
// certificates.
func (t *Tracker) pollWireserver(ctx context.Context) (bool, error) {
	gs, err := t.Wireserver.GoalState(ctx)
	if err != nil {
		return false, fmt.Errorf("goal state: %w", err)
	}
	t.wsRead = t.Now()
	if t.ws != nil && gs.Incarnation == t.ws.Incarnation && !t.refresh && !t.certificatesMissing() {
		return false, nil
	}
	ext, err := t.readExtensions(ctx, gs)
	if stale(err) {
		t.Log.Info("goal state changed while it was read, fetching it again", "cause", err)
		if gs, err = t.Wireserver.GoalState(ctx); err == nil {
			ext, err = t.readExtensions(ctx, gs)
		}
	}
	if err != nil {
		return false, err
	}
	t.refresh = false
	changed := t.ws == nil || gs.Incarnation != t.ws.Incarnation
	t.ws, t.wsExt = gs, ext
	return changed, nil
}

// readExtensions reads gs's ExtensionsConfig, whether it is on hold, and
// writes its certificates where handlers find them.
func (t *Tracker) readExtensions(ctx context.Context, gs *wireserver.GoalState) (*Extensions, error) {
	ext := &Extensions{ID: "incarnation_" + gs.Incarnation, Goal: &extconfig.ExtensionsGoalState{Channel: extconfig.ChannelWireServer, Source: extconfig.SourceFabric}}
	if gs.ExtensionsConfig != "" {
		goal, _, err := fetchExtensions(ctx, t.Wireserver, gs)
		if err != nil {
			return nil, fmt.Errorf("extensions config: %w", err)
		}
		ext.Goal = goal
	}
	if blob := ext.Goal.InVMArtifactsProfileBlob; blob != "" && t.Artifacts != nil {
		ext.Goal.OnHold = t.onHold(ctx, blob)
	}
	if gs.Certificates != "" && t.Transport != nil {
		cs, err := fetchCertificates(ctx, t.Wireserver, gs, t.Transport, t.Log)
		if err != nil {
			return nil, err
		}
		if err := certs.WriteFiles(t.Root, LibDir, cs); err != nil {
			return nil, err
		}
		t.thumbprints = t.thumbprints[:0]
		for _, c := range cs {
			t.thumbprints = append(t.thumbprints, c.Thumbprint)
		}
	}
	return ext, nil
}

// onHold reads the InVMArtifactsProfile; any failure means not on hold
// (§10).
func (t *Tracker) onHold(ctx context.Context, blob string) bool {
	b, err := t.Artifacts.Get(ctx, blob)
	if err != nil {
		t.Log.Warn("reading the InVMArtifactsProfile; taking the goal state as not on hold", "error", err)
		return false
	}
	p, err := extconfig.ParseArtifactsProfile(b)
	if err != nil {
		t.Log.Warn("parsing the InVMArtifactsProfile; taking the goal state as not on hold", "error", err)
		return false
	}
	return p.OnHold
}

// pollVMSettings asks the HostGAPlugin for vmSettings newer than those
// held. It reports whether a new Fast Track goal state arrived, and
// whether a new Fabric one did (which the wireserver has in full).
func (t *Tracker) pollVMSettings(ctx context.Context) (changed, fabric bool, err error) {
	r, err := t.HostGAPlugin.VMSettings(ctx, t.Identity(), t.vmsEtag)
	switch {
	case errors.Is(err, hostgaplugin.ErrNotSupported):
		if t.vmsServed {
			t.Log.Warn("the HostGAPlugin stopped serving vmSettings; following the wireserver only")
			t.refresh = true
		}
		t.vmsServed, t.vmsExt, t.vmsEtag = false, nil, ""
		t.vmsNotUntil = t.Now().Add(vmSettingsRetry)
		return false, false, nil
	case errors.Is(err, httpx.ErrGone):
		t.refresh = true
		return false, false, fmt.Errorf("vmSettings: %w", err)
	case err != nil:
		return false, false, fmt.Errorf("vmSettings: %w", err)
	}
	t.vmsServed = true
	if r.NotModified {
		return false, false, nil
	}
	t.vmsEtag = r.ETag
	goal, err := extconfig.ParseVMSettings(r.Body)
	if err != nil {
		return false, false, fmt.Errorf("vmSettings (ETag %s): %w", r.ETag, err)
	}
	if goal.Source == extconfig.SourceFabric {
		return false, true, nil
	}
	t.vmsExt = &Extensions{ID: "etag_" + r.ETag, Goal: goal}
	if t.unknownThumbprint(goal) {
		t.refresh = true
		return true, true, nil
	}
	return true, false, nil
}

// certificatesMissing reports whether a certificate file of the goal
// state went missing; it is then fetched again (§6).
func (t *Tracker) certificatesMissing() bool {
	for _, tp := range t.thumbprints {
		if _, err := t.Root.Stat(path.Join(LibDir, tp+".crt")); err != nil {
			return true
		}
	}
	return false
}

// unknownThumbprint reports whether a Fast Track goal state protects
// settings with a certificate the last Certificates did not carry.
func (t *Tracker) unknownThumbprint(goal *extconfig.ExtensionsGoalState) bool {
	for _, h := range goal.Handlers {
		for _, s := range h.Settings {
			if tp := s.ProtectedSettingsCertThumbprint; tp != "" && !slices.Contains(t.thumbprints, tp) {
				return true
			}
		}
	}
	return false
}

type fastTrackState struct {
	Timestamp time.Time `json:"timestamp"`
}

func (t *Tracker) loadFastTrack() time.Time {
	b, err := t.Root.ReadFile(FastTrackFile)
	if err != nil {
		return time.Time{}
	}
	var s fastTrackState
	if err := json.Unmarshal(b, &s); err != nil {
		t.Log.Warn("ignoring a damaged file", "file", FastTrackFile, "error", err)
		return time.Time{}
	}
	return s.Timestamp
}

func (t *Tracker) saveFastTrack() error {
	b, err := json.Marshal(fastTrackState{t.newest.UTC()})
	if err != nil {
		return err
	}
	if err := t.Root.MkdirAll(LibDir, 0o700); err != nil {
		return err
	}
	return t.Root.WriteFileAtomic(FastTrackFile, b, 0o644)
}
