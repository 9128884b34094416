package extensions

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/azinit/azinit/datasource/azure/extconfig"
	"github.com/azinit/azinit/internal/sys"
)

// Fetcher gets what a goal state points at.
type Fetcher interface {
	// Manifest fetches the handler's version manifest from one of its
	// locations and tells which location answered.
	Manifest(ctx context.Context, h *extconfig.Handler) (*extconfig.Manifest, string, error)
	// Package downloads pkg into f, which it empties before each attempt.
	Package(ctx context.Context, pkg extconfig.Package, manifestLocation string, f *os.File) error
}

// Manager takes goal states up: it installs, enables, disables, updates
// and uninstalls handlers, and gathers their status. Apply and Status may
// run concurrently; Apply calls must not overlap.
type Manager struct {
	Root   *sys.Root
	Run    sys.Runner
	Fetch  Fetcher
	Layout Layout
	Log    *slog.Logger
	Now    func() time.Time
	// Sleep waits between polls of a dependency's status.
	Sleep func(ctx context.Context, d time.Duration) error

	// BootID tells boots apart (/proc/sys/kernel/random/boot_id).
	BootID string
	// WireserverAddress is handed to handlers
	// (AZURE_GUEST_AGENT_WIRE_PROTOCOL_ADDRESS).
	WireserverAddress string
	Timeouts          Timeouts
	// ResourceLimits runs commands in a systemd scope under the
	// handler's slice, with the limits its manifest asks for.
	ResourceLimits bool
	// MaxPackageBytes bounds a package, downloaded and unpacked.
	MaxPackageBytes int64
	// HonorOnHold holds handlers while the goal state is on hold
	// (over-provisioning, §10).
	HonorOnHold bool
	// Disabled reports every handler as refused without running anything
	// (extension processing turned off by configuration).
	Disabled bool
	// DependencyPoll and DependencyBudget pace the wait for a dependency's
	// terminal status (every 5 s, at most 90 min per goal state).
	DependencyPoll, DependencyBudget time.Duration

	mu      sync.Mutex
	state   State
	current *extconfig.ExtensionsGoalState
}

// Open loads what the manager remembers from its last run.
func (m *Manager) Open() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.loadState()
}

// supportedRequiredFeatures are the required features azinit implements.
var supportedRequiredFeatures = []string{"MultipleExtensionsPerHandler"}

// Apply takes up the goal state id. It returns at once for the goal state
// it already finished in this boot, and resumes one it did not finish (a
// restart): steps that finished are not run again. When ctx ends it stops between
// steps, lets the running command finish, and returns ctx's error; the
// goal state is resumed by the next Apply.
func (m *Manager) Apply(ctx context.Context, id string, gs *extconfig.ExtensionsGoalState) error {
	m.mu.Lock()
	m.current = gs
	fresh := m.state.GoalState != id || m.state.Boot != m.BootID
	if !fresh && m.state.Result != nil {
		m.mu.Unlock()
		return nil
	}
	if gs.OnHold && m.HonorOnHold {
		m.mu.Unlock()
		m.Log.Info("extensions on hold: the goal state is not processed", "goal_state", id)
		return nil
	}
	if fresh {
		m.state.GoalState, m.state.Boot, m.state.Done, m.state.Result = id, m.BootID, nil, nil
	}
	err := m.saveState()
	m.mu.Unlock()
	if err != nil {
		return err
	}

	var unsupported []string
	for _, f := range gs.RequiredFeatures {
		if !slices.Contains(supportedRequiredFeatures, f) {
			unsupported = append(unsupported, f)
		}
	}
	if len(unsupported) > 0 {
		return m.finish(gs, "Failed", CodeUnsupportedFeatures,
			fmt.Sprintf("Failing GS %s as Unsupported features found: %s", id, strings.Join(unsupported, ", ")))
	}

	items := plan(gs)
	maxLevel := 0
	for _, it := range items {
		maxLevel = max(maxLevel, it.level)
	}
	deadline := m.Now().Add(m.DependencyBudget)
	skip := "" // why the remaining items are skipped, once a dependency failed
	for _, it := range items {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !m.done(it.key()) {
			if skip != "" {
				m.report(it, &Error{Code: CodeUnknown, Message: skip})
			} else {
				m.process(ctx, it)
			}
			if err := m.markDone(it.key()); err != nil {
				return err
			}
		}
		if skip == "" && it.settings != nil && it.level >= 0 && it.level < maxLevel {
			var err error
			if skip, err = m.awaitDependency(ctx, it, deadline); err != nil {
				return err
			}
		}
	}
	if err := m.removeStale(gs); err != nil {
		m.Log.Warn("removing handlers no longer in the goal state", "error", err)
	}
	return m.finish(gs, "Success", 0, "GoalState executed successfully")
}

// finish records the outcome of the goal state.
func (m *Manager) finish(gs *extconfig.ExtensionsGoalState, status string, code int, msg string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.state.Result = &GoalStateResult{
		Status: status, Code: code, Message: msg,
		InSvdSeqNo: gs.InSvdSeqNo, Time: m.Now().UTC().Format(timeLayout),
	}
	return m.saveState()
}

// timeLayout is how status timestamps are written.
const timeLayout = "2006-01-02T15:04:05Z"

// item is one (handler, extension settings) pair of a goal state; a
// handler without settings is one item with nil settings.
type item struct {
	handler  *extconfig.Handler
	settings *extconfig.Settings
	// level orders items (§17.10): the dependency level, or -level-1 for
	// items that are not enabled, which go first in reverse level order.
	level int
}

// key names the item's step in State.Done.
func (it item) key() string {
	if it.settings == nil {
		return it.handler.Name
	}
	return it.handler.Name + "/" + it.settings.Name
}

// ext is the extension name passed to commands: multi-config only.
func (it item) ext() string {
	if it.settings == nil || !it.handler.MultiConfig {
		return ""
	}
	return it.settings.Name
}

// seq is the settings' sequence number, 0 without settings.
func (it item) seq() int {
	if it.settings == nil {
		return 0
	}
	return it.settings.SeqNo
}

// plan lists the goal state's items in processing order.
func plan(gs *extconfig.ExtensionsGoalState) []item {
	var items []item
	for i := range gs.Handlers {
		h := &gs.Handlers[i]
		if len(h.Settings) == 0 {
			items = append(items, item{handler: h, level: levelKey(h.State, extconfig.StateEnabled, 0)})
		}
		for j := range h.Settings {
			s := &h.Settings[j]
			items = append(items, item{handler: h, settings: s, level: levelKey(h.State, s.State, s.DependencyLevel)})
		}
	}
	slices.SortStableFunc(items, func(a, b item) int { return cmp.Compare(a.level, b.level) })
	return items
}

func levelKey(handler, ext extconfig.State, level int) int {
	if handler != extconfig.StateEnabled || ext != extconfig.StateEnabled {
		return -level - 1
	}
	return level
}

// process runs one item and reports its failure, if it fails.
func (m *Manager) process(ctx context.Context, it item) {
	h := it.handler
	log := m.Log.With("handler", h.Name, "state", h.State)
	if it.settings != nil {
		log = log.With("extension", it.settings.Name, "seq", it.settings.SeqNo)
	}
	err := checkNames(h)
	switch {
	case h.Invalid != "":
		err = &Error{Code: CodeUnknown, Message: "Ran into config errors: " + h.Invalid}
	case err != nil:
		err = &Error{Code: CodeUnknown, Message: "Ran into config errors: " + err.Error()}
	case m.Disabled:
		code := CodeEnable
		if h.State != extconfig.StateEnabled {
			code = CodeDisable
		}
		err = &Error{Code: code, Message: "Extension will not be processed since extension processing is disabled in the azinit configuration (extensions.enabled)"}
	case h.State == extconfig.StateEnabled:
		err = m.enable(ctx, it, log)
	case h.State == extconfig.StateDisabled:
		err = m.disable(ctx, it, log)
	default:
		err = m.uninstall(ctx, it, log)
	}
	if err != nil {
		log.Warn("handler failed", "code", codeOf(err), "error", err)
		m.report(it, err)
	}
}

// report records an item's failure as its handler's status.
func (m *Manager) report(it item, err error) {
	version := it.handler.Version
	m.mu.Lock()
	if old, ok := m.state.Handlers[it.handler.Name]; ok && old.Version != "" {
		version = old.Version
	}
	m.mu.Unlock()
	hs := HandlerStatus{Version: version, Status: statusNotReady, Code: codeOf(err), Message: err.Error(), MultiConfig: it.handler.MultiConfig}
	if e, ok := errors.AsType[*Error](err); ok {
		hs.Message = e.Message
	}
	if serr := m.setStatus(it.handler.Name, hs); serr != nil {
		m.Log.Error("recording a handler status", "handler", it.handler.Name, "error", serr)
	}
}

// awaitDependency waits for the item's status to become terminal, for the
// items of higher levels that depend on it. It returns why the remaining
// items must be skipped, "" when they may run.
func (m *Manager) awaitDependency(ctx context.Context, it item, deadline time.Time) (string, error) {
	name := it.handler.Name
	if it.handler.MultiConfig {
		name = it.settings.Name
	}
	for {
		m.mu.Lock()
		hs, ok := m.state.Handlers[it.handler.Name]
		m.mu.Unlock()
		if !ok || hs.Status != statusReady {
			return "Skipping processing of extensions since execution of dependent extension " + name + " failed", nil
		}
		if st, err := m.readStatus(hs.Version, it); err == nil && st != nil && st.Status.Terminal() {
			if st.Status != extconfig.StatusSuccess {
				return fmt.Sprintf("Dependent Extension %s did not succeed. Status was %s", name, st.Status), nil
			}
			return "", nil
		}
		if !m.Now().Before(deadline) {
			return "Skipping processing of extensions since execution of dependent extension " + name + " timed out", nil
		}
		if err := m.Sleep(ctx, m.DependencyPoll); err != nil {
			return "", err
		}
	}
}

// Settle waits, up to timeout, for every enabled extension of the goal
// state taken up last to report a terminal status, then says which
// handlers did not reach the state the goal state asks for.
func (m *Manager) Settle(ctx context.Context, timeout time.Duration) error {
	m.mu.Lock()
	gs := m.current
	m.mu.Unlock()
	if gs == nil || gs.OnHold && m.HonorOnHold {
		return nil
	}
	deadline := m.Now().Add(timeout)
	for {
		problems, waiting := m.unsettled(gs)
		if !waiting || !m.Now().Before(deadline) {
			if len(problems) == 0 {
				return nil
			}
			return fmt.Errorf("handlers not in their requested state: %s", strings.Join(problems, "; "))
		}
		if err := m.Sleep(ctx, settlePoll); err != nil {
			return err
		}
	}
}

// settlePoll is how often Settle looks at the status files.
const settlePoll = 250 * time.Millisecond

// unsettled describes each item of gs that is not (yet) in its requested
// state, and says whether some may still get there (an extension still
// working on its status).
func (m *Manager) unsettled(gs *extconfig.ExtensionsGoalState) (problems []string, waiting bool) {
	for _, it := range plan(gs) {
		m.mu.Lock()
		hs, reported := m.state.Handlers[it.handler.Name]
		m.mu.Unlock()
		switch {
		case it.handler.State == extconfig.StateUninstall:
			if reported {
				problems = append(problems, it.key()+": still installed")
			}
		case !reported:
			problems = append(problems, it.key()+": not processed")
		case hs.Code != 0:
			problems = append(problems, fmt.Sprintf("%s: %s (code %d)", it.key(), hs.Message, hs.Code))
		case it.level < 0 || it.settings == nil:
			// Disabled: the handler's own status says it all.
		default:
			st, err := m.readStatus(hs.Version, it)
			switch {
			case err != nil:
				problems = append(problems, fmt.Sprintf("%s: %v", it.key(), err))
			case st == nil || !st.Status.Terminal():
				problems, waiting = append(problems, it.key()+": no final status yet"), true
			case st.Status != extconfig.StatusSuccess:
				problems = append(problems, fmt.Sprintf("%s: status %s (code %d)", it.key(), st.Status, st.Code))
			}
		}
	}
	return problems, waiting
}
