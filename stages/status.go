package stages

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"time"

	"github.com/azinit/azinit/internal/sys"
)

// The per-boot progress and outcome (design.md §5), under the target root.
const (
	StatusPath = "/run/azinit/status.json"
	ResultPath = "/run/azinit/result.json"
)

// Status is the boot's progress: each stage run so far, module by module.
type Status struct {
	V1 StatusV1 `json:"v1"`
}

// StatusV1 is version 1 of status.json.
type StatusV1 struct {
	Datasource string `json:"datasource"`
	InstanceID string `json:"instance_id,omitempty"`
	// Stage is the stage running now, "" between stages.
	Stage  string                  `json:"stage"`
	Stages map[string]*StageStatus `json:"stages"`
}

// StageStatus is one stage's run.
type StageStatus struct {
	Start      time.Time  `json:"start"`
	End        *time.Time `json:"end,omitempty"`
	DurationMS float64    `json:"duration_ms,omitempty"`
	// Errors are the stage's failures: sources it could not read, modules
	// that failed.
	Errors  []string       `json:"errors"`
	Modules []ModuleStatus `json:"modules"`
}

// ModuleStatus is one module's run in a stage.
type ModuleStatus struct {
	Name       string    `json:"name"`
	Frequency  Frequency `json:"frequency"`
	Outcome    string    `json:"outcome"` // changed, unchanged, skipped, failed, done-before, running
	Start      time.Time `json:"start"`
	DurationMS float64   `json:"duration_ms"`
	Error      string    `json:"error,omitempty"`
}

// Outcomes the runner adds to the modules' own.
const (
	OutcomeFailed     = "failed"
	OutcomeDoneBefore = "done-before" // its semaphore says it already ran
	OutcomeRunning    = "running"
)

// Result is the boot's outcome, written when the final stage ends.
type Result struct {
	V1 ResultV1 `json:"v1"`
}

// ResultV1 is version 1 of result.json.
type ResultV1 struct {
	Datasource string   `json:"datasource"`
	InstanceID string   `json:"instance_id,omitempty"`
	Errors     []string `json:"errors"`
}

// ReadStatus reads status.json under root; a boot whose stages have not
// started has none (fs.ErrNotExist).
func ReadStatus(root *sys.Root) (*Status, error) {
	var s Status
	if err := readJSON(root, StatusPath, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// ReadResult reads result.json under root: fs.ErrNotExist until the final
// stage has ended.
func ReadResult(root *sys.Root) (*Result, error) {
	var r Result
	if err := readJSON(root, ResultPath, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

func readJSON(root *sys.Root, name string, v any) error {
	b, err := root.ReadFile(name)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// writeJSON writes v to name under root atomically, world-readable: the
// status holds no secrets (errors never carry them).
func writeJSON(root *sys.Root, name string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := root.MkdirAll(path.Dir(name), 0o755); err != nil {
		return err
	}
	return root.WriteFileAtomic(name, append(b, '\n'), 0o644)
}

// loadStatus is the status to continue this boot with: a fresh one when
// the boot begins (the local stage) or none exists yet.
func loadStatus(root *sys.Root, fresh bool) (*Status, error) {
	if !fresh {
		s, err := ReadStatus(root)
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	return &Status{V1: StatusV1{Datasource: "azure", Stages: map[string]*StageStatus{}}}, nil
}

// Errors are all the stages' errors, in stage order.
func (s *Status) Errors() []string {
	var errs []string
	for _, name := range Names {
		if st := s.V1.Stages[name]; st != nil {
			errs = append(errs, st.Errors...)
		}
	}
	return errs
}
