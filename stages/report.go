package stages

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/azinit/azinit/datasource/azure"
	"github.com/azinit/azinit/internal/sys"
	"github.com/azinit/azinit/modules"
)

// The states of a boot, as `azinit status` says them.
const (
	StateNotStarted = "not started"
	StateRunning    = "running"
	StateDone       = "done"
	// StateDisabled: azinit does not run this boot (Reason says why, as
	// azinit-generator decided), so nothing is to wait for.
	StateDisabled = "disabled"
)

// Report is what `azinit status` shows.
type Report struct {
	State        string                  `json:"state"`
	Reason       string                  `json:"reason,omitempty"` // why disabled
	Stage        string                  `json:"stage,omitempty"`  // running now
	InstanceID   string                  `json:"instance_id,omitempty"`
	Provisioning *modules.Provisioning   `json:"provisioning,omitempty"`
	Stages       map[string]*StageStatus `json:"stages,omitempty"`
	Errors       []string                `json:"errors"`
}

// ReadReport reads the boot's status, result and provisioning record
// under root.
func ReadReport(root *sys.Root) (*Report, error) {
	st, err := ReadStatus(root)
	if errors.Is(err, fs.ErrNotExist) {
		return &Report{State: StateNotStarted, Errors: []string{}}, nil
	}
	if err != nil {
		return nil, err
	}
	r := &Report{State: StateRunning, Stage: st.V1.Stage, InstanceID: st.V1.InstanceID, Stages: st.V1.Stages, Errors: st.Errors()}
	if r.Errors == nil {
		r.Errors = []string{}
	}
	if _, err := ReadResult(root); err == nil {
		r.State = StateDone
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if r.InstanceID != "" {
		b, err := root.ReadFile(path.Join(StateDir, "instances", r.InstanceID, modules.ProvisioningFile))
		switch {
		case err == nil:
			var p modules.Provisioning
			if err := json.Unmarshal(b, &p); err != nil {
				return nil, fmt.Errorf("%s: %w", modules.ProvisioningFile, err)
			}
			r.Provisioning = &p
		case !errors.Is(err, fs.ErrNotExist):
			return nil, err
		}
	}
	return r, nil
}

// ExitCode is `azinit status`'s exit code: 0 done without errors (or
// disabled), 1 an error, 3 not finished.
func (r *Report) ExitCode() int {
	switch {
	case len(r.Errors) > 0:
		return 1
	case r.State != StateDone && r.State != StateDisabled:
		return 3
	}
	return 0
}

// Settled says there is nothing more to wait for: the boot stages
// finished, or azinit does not run this boot.
func (r *Report) Settled() bool { return r.State == StateDone || r.State == StateDisabled }

// WriteText prints the report for people.
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "status:\t%s", r.State)
	if r.Stage != "" {
		fmt.Fprintf(tw, " (stage %s)", r.Stage)
	}
	if r.Reason != "" {
		fmt.Fprintf(tw, ": %s", r.Reason)
	}
	fmt.Fprintln(tw)
	if r.InstanceID != "" {
		fmt.Fprintf(tw, "instance:\t%s\n", r.InstanceID)
	}
	switch p := r.Provisioning; {
	case p == nil:
		fmt.Fprintf(tw, "provisioning:\tnot reported\n")
	case p.Description != "":
		fmt.Fprintf(tw, "provisioning:\t%s (incarnation %s, %s): %s\n", p.State, p.Incarnation, p.Time.Format("2006-01-02 15:04:05Z"), p.Description)
	default:
		fmt.Fprintf(tw, "provisioning:\t%s (incarnation %s, %s)\n", p.State, p.Incarnation, p.Time.Format("2006-01-02 15:04:05Z"))
	}
	for _, name := range Names {
		st := r.Stages[name]
		switch {
		case st == nil:
			fmt.Fprintf(tw, "  %s\tnot run\n", name)
		case st.End == nil:
			fmt.Fprintf(tw, "  %s\trunning\n", name)
		default:
			fmt.Fprintf(tw, "  %s\tdone in %.1f ms\t%d error(s)\n", name, st.DurationMS, len(st.Errors))
		}
	}
	for _, e := range r.Errors {
		fmt.Fprintf(tw, "error:\t%s\n", e)
	}
	return tw.Flush()
}

// Timing is one module's (or background job's) duration in a stage.
type Timing struct {
	Stage      string  `json:"stage"`
	Module     string  `json:"module"`
	Outcome    string  `json:"outcome"`
	DurationMS float64 `json:"duration_ms"`
}

// Analysis is where a boot's time went: each stage's duration and every
// module's, slowest first.
type Analysis struct {
	Stages map[string]float64 `json:"stages_ms"`
	// ReadyMS is when provisioning was reported this boot, from the first
	// stage's start: what the platform waits for. 0 when it was not.
	ReadyMS float64  `json:"ready_ms,omitempty"`
	Modules []Timing `json:"modules"`
}

// Analyze reads status.json under root.
func Analyze(root *sys.Root) (*Analysis, error) {
	st, err := ReadStatus(root)
	if err != nil {
		return nil, err
	}
	a := &Analysis{Stages: map[string]float64{}}
	first := time.Time{}
	for _, s := range st.V1.Stages {
		if first.IsZero() || s.Start.Before(first) {
			first = s.Start
		}
	}
	for name, s := range st.V1.Stages {
		a.Stages[name] = s.DurationMS
		for _, m := range s.Modules {
			if m.Outcome == OutcomeDoneBefore {
				continue
			}
			a.Modules = append(a.Modules, Timing{Stage: name, Module: m.Name, Outcome: m.Outcome, DurationMS: m.DurationMS})
			if m.Name == (modules.ReportReady{}).Name() && m.Outcome == string(modules.Changed) {
				a.ReadyMS = float64(m.Start.Sub(first).Microseconds())/1000 + m.DurationMS
			}
		}
	}
	slices.SortStableFunc(a.Modules, func(x, y Timing) int {
		switch {
		case x.DurationMS > y.DurationMS:
			return -1
		case x.DurationMS < y.DurationMS:
			return 1
		}
		return strings.Compare(x.Stage+x.Module, y.Stage+y.Module)
	})
	return a, nil
}

// WriteText prints the analysis for people.
func (a *Analysis) WriteText(w io.Writer) error {
	var b strings.Builder
	total := 0.0
	for _, name := range Names {
		if d, ok := a.Stages[name]; ok {
			fmt.Fprintf(&b, "%9.1f ms  %s\n", d, name)
			total += d
		}
	}
	fmt.Fprintf(&b, "%9.1f ms  total\n", total)
	if a.ReadyMS > 0 {
		fmt.Fprintf(&b, "%9.1f ms  provisioning reported, from the first stage's start\n", a.ReadyMS)
	}
	fmt.Fprintf(&b, "\nmodules, slowest first:\n")
	for _, m := range a.Modules {
		fmt.Fprintf(&b, "%9.1f ms  %-8s %s (%s)\n", m.DurationMS, m.Stage, m.Module, m.Outcome)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Clean forgets the instance, so the next boot provisions again as for a
// new VM: azinit's state, this boot's status and cache, and WALinuxAgent's
// provisioned marker. With logs, the stages' log goes too.
func Clean(root *sys.Root, logs bool) error {
	paths := []string{StateDir, path.Dir(StatusPath), path.Join(azure.LibDir, "provisioned")}
	if logs {
		paths = append(paths, LogPath)
	}
	var errs []error
	for _, p := range paths {
		if err := root.RemoveAll(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("removing %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// LogPath is where the stages append their log under the root, besides
// stderr (which the journal captures): the first place to look on a VM
// that did not boot as it should.
const LogPath = "/var/log/azinit.log"
