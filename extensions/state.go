package extensions

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/azinit/azinit/datasource/azure/extconfig"
)

// StatePath is where the manager keeps what it must remember across
// restarts.
const StatePath = "/var/lib/azinit/extensions/state.json"

// State is what the manager remembers across restarts: how far it got in
// the goal state it last took up, and the status of each handler.
type State struct {
	// GoalState is the id of the goal state last taken up.
	GoalState string `json:"goal_state,omitempty"`
	// Boot is the boot it was taken up in: every boot takes the goal
	// state up again (handlers expect enable at boot), while a restart
	// within a boot resumes it.
	Boot string `json:"boot,omitempty"`
	// Done lists the steps of GoalState that finished, so a restart
	// neither repeats them nor skips the rest.
	Done []string `json:"done,omitempty"`
	// Result is GoalState's outcome once every step finished; nil while
	// it is under way.
	Result *GoalStateResult `json:"result,omitempty"`
	// Handlers holds each handler's status, by handler name.
	Handlers map[string]HandlerStatus `json:"handlers,omitempty"`
}

// GoalStateResult is the outcome of a goal state as the platform sees it
// (vmArtifactsAggregateStatus.goalStateAggregateStatus).
type GoalStateResult struct {
	Status     string `json:"status"` // Success or Failed
	Code       int    `json:"code"`
	Message    string `json:"message"`
	InSvdSeqNo string `json:"in_svd_seq_no"`
	Time       string `json:"time"` // when it was reached, as timestampUTC
}

// HandlerStatus is a handler's own status (not its extensions'): the
// content of WALinuxAgent's config/HandlerStatus.
type HandlerStatus struct {
	// Version is the handler version the status is about, whose directory
	// holds the extensions' status files.
	Version string `json:"version"`
	Status  string `json:"status"` // Ready or NotReady
	Code    int    `json:"code"`
	Message string `json:"message"`
	// MultiConfig is set for handlers running several extensions.
	MultiConfig bool `json:"multi_config,omitempty"`
}

// Handler-level statuses.
const (
	statusReady    = "Ready"
	statusNotReady = "NotReady"
)

func (m *Manager) loadState() error {
	b, err := m.Root.ReadFile(StatePath)
	if errors.Is(err, fs.ErrNotExist) {
		m.state = State{}
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading the extensions state: %w", err)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		// It is ours and written atomically: unreadable means damaged. The
		// handlers' own files still say what is installed.
		m.Log.Warn("ignoring a damaged extensions state", "file", StatePath, "error", err)
		s = State{}
	}
	m.state = s
	return nil
}

// saveState writes the state; the caller holds m.mu.
func (m *Manager) saveState() error {
	b, err := json.MarshalIndent(m.state, "", "  ")
	if err != nil {
		return err
	}
	if err := m.Root.MkdirAll(path.Dir(StatePath), 0o700); err != nil {
		return err
	}
	if err := m.Root.WriteFileAtomic(StatePath, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("saving the extensions state: %w", err)
	}
	return nil
}

// setStatus records a handler's status, in the state and, when its
// directory exists, in config/HandlerStatus as WALinuxAgent keeps it.
func (m *Manager) setStatus(name string, hs HandlerStatus) error {
	m.mu.Lock()
	if m.state.Handlers == nil {
		m.state.Handlers = map[string]HandlerStatus{}
	}
	m.state.Handlers[name] = hs
	err := m.saveState()
	m.mu.Unlock()
	if err != nil {
		return err
	}
	dir := m.Layout.Dir(name, hs.Version)
	if _, statErr := m.Root.Stat(path.Join(dir, configDir)); statErr != nil {
		return nil
	}
	b, err := json.Marshal(struct {
		Name        string `json:"name"`
		Version     string `json:"version"`
		Status      string `json:"status"`
		Code        int    `json:"code"`
		Message     string `json:"message"`
		MultiConfig bool   `json:"supports_multi_config"`
		Extensions  any    `json:"extension_status"`
	}{name, hs.Version, hs.Status, hs.Code, hs.Message, hs.MultiConfig, nil})
	if err != nil {
		return err
	}
	return m.Root.WriteFileAtomic(path.Join(dir, handlerStatusFile), b, 0o600)
}

// forget drops an uninstalled handler's status: it is no longer reported.
func (m *Manager) forget(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.state.Handlers, name)
	return m.saveState()
}

// done reports whether step of the current goal state finished.
func (m *Manager) done(step string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Contains(m.state.Done, step)
}

// markDone records that step of the current goal state finished.
func (m *Manager) markDone(step string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.state.Done = append(m.state.Done, step)
	return m.saveState()
}

// handlerState is a handler version's installation state
// (config/HandlerState).
type handlerState string

// Installation states; a missing file is notInstalled.
const (
	notInstalled  handlerState = "NotInstalled"
	installed     handlerState = "Installed"
	enabled       handlerState = "Enabled"
	failedUpgrade handlerState = "FailedUpgrade"
)

func (m *Manager) readState(dir string) handlerState {
	b, err := m.Root.ReadFile(path.Join(dir, handlerStateFile))
	if err != nil {
		return notInstalled
	}
	switch s := handlerState(strings.TrimSpace(string(b))); s {
	case installed, enabled, failedUpgrade:
		return s
	}
	return notInstalled
}

func (m *Manager) writeState(dir string, s handlerState) error {
	return m.Root.WriteFileAtomic(path.Join(dir, handlerStateFile), []byte(s), 0o600)
}

// extensionState is whether a multi-config extension is enabled
// (config/<ext>.HandlerState, "enabled" or "disabled"; missing = disabled).
func (m *Manager) extensionEnabled(dir, ext string) bool {
	b, err := m.Root.ReadFile(path.Join(dir, configDir, ext+".HandlerState"))
	return err == nil && strings.TrimSpace(string(b)) == "enabled"
}

func (m *Manager) setExtensionEnabled(dir, ext string, on bool) error {
	s := "disabled"
	if on {
		s = "enabled"
	}
	return m.Root.WriteFileAtomic(path.Join(dir, configDir, ext+".HandlerState"), []byte(s), 0o600)
}

// handlerDir matches handler directory names: <Name>-<Version>.
var handlerDir = regexp.MustCompile(`^([^-]+)-([0-9]+(?:\.[0-9]+)*)$`)

// versionsOnDisk lists the versions of handler name that have a directory.
func (m *Manager) versionsOnDisk(name string) ([]extconfig.Version, error) {
	entries, err := m.Root.ReadDir(m.Layout.Lib)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var vs []extconfig.Version
	for _, e := range entries {
		g := handlerDir.FindStringSubmatch(e.Name())
		if !e.IsDir() || g == nil || g[1] != name {
			continue
		}
		if v, err := extconfig.ParseVersion(g[2]); err == nil {
			vs = append(vs, v)
		}
	}
	slices.SortFunc(vs, extconfig.Version.Compare)
	return vs, nil
}

// installedVersion is the highest version of handler name that is
// installed (its state neither NotInstalled nor FailedUpgrade), other than
// except; "" when there is none.
func (m *Manager) installedVersion(name, except string) (string, error) {
	vs, err := m.versionsOnDisk(name)
	if err != nil {
		return "", err
	}
	for _, v := range slices.Backward(vs) {
		if v.String() == except {
			continue
		}
		if s := m.readState(m.Layout.Dir(name, v.String())); s != notInstalled && s != failedUpgrade {
			return v.String(), nil
		}
	}
	return "", nil
}
