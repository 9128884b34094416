package fabric

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"sync"
	"time"
)

// Entry is one request as the fabric saw it: one line of --record.
type Entry struct {
	Seq    int64     `json:"seq"` // 1, 2, ... in the order the fabric answered
	Time   time.Time `json:"time"`
	Server Server    `json:"server"`
	Method string    `json:"method"`
	Path   string    `json:"path"` // with the query
	// Status is the HTTP status the fabric answered, 0 when it answered none
	// (timeout and reset faults).
	Status int  `json:"status"`
	Kind   Kind `json:"kind"`
	// Fault is the injected fault's action ("503", "timeout",
	// "slow=200ms", ...), empty when none.
	Fault string `json:"fault,omitempty"`
	// Body is what the request carried, decoded, when the fabric handled it:
	// for health, a Health; for status, the aggregate status object.
	Body json.RawMessage `json:"body,omitempty"`
	// Error says why the fabric rejected the request (a 4xx answer).
	Error string `json:"error,omitempty"`
}

// Health returns the health report the fabric accepted in e, if e is one.
func (e Entry) Health() (Health, bool) {
	var h Health
	if e.Kind != KindHealth || e.Body == nil || e.Error != "" || json.Unmarshal(e.Body, &h) != nil {
		return Health{}, false
	}
	return h, true
}

// HandlerStatus is what tests read of one handler in an aggregate status.
type HandlerStatus struct {
	HandlerName, HandlerVersion, Status string
	Code                                int
	FormattedMessage                    struct{ Message string }
	RuntimeSettingsStatus               *struct {
		SequenceNumber int
		SettingsStatus struct {
			Status struct {
				Status, Operation string
				Code              int
				FormattedMessage  struct{ Message string }
			}
		}
	}
}

// Handlers returns the handlers of the aggregate status the fabric
// accepted in e, if e is one.
func (e Entry) Handlers() ([]HandlerStatus, bool) {
	var doc struct {
		AggregateStatus struct{ HandlerAggregateStatus []HandlerStatus }
	}
	if e.Kind != KindStatus || e.Body == nil || e.Error != "" || json.Unmarshal(e.Body, &doc) != nil {
		return nil, false
	}
	return doc.AggregateStatus.HandlerAggregateStatus, true
}

// recorder keeps the record in memory and writes it, one JSON line per
// request, to an optional writer.
type recorder struct {
	mu      sync.Mutex
	entries []Entry
	w       io.Writer
	log     *slog.Logger
	failed  bool          // a write to w failed (logged once)
	changed chan struct{} // closed and replaced on every add
}

func newRecorder(w io.Writer, log *slog.Logger) *recorder {
	return &recorder{w: w, log: log, changed: make(chan struct{})}
}

func (r *recorder) add(e Entry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e.Seq = int64(len(r.entries) + 1)
	r.entries = append(r.entries, e)
	if r.w != nil && !r.failed {
		if err := writeLine(r.w, e); err != nil {
			r.failed = true
			r.log.Error("writing the record failed; the in-memory record goes on", "error", err)
		}
	}
	close(r.changed)
	r.changed = make(chan struct{})
}

// writeLine writes e as one JSON line with a single Write and flushes a
// buffered writer, so a reader never sees half a line.
func writeLine(w io.Writer, e Entry) error {
	line, err := marshalJSON(e)
	if err != nil {
		return err
	}
	if _, err := w.Write(append(line, '\n')); err != nil {
		return err
	}
	if fl, ok := w.(interface{ Flush() error }); ok {
		return fl.Flush()
	}
	return nil
}

func (r *recorder) snapshot() []Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Entry(nil), r.entries...)
}

// waitFor returns the first entry matching match, waiting for it until ctx
// ends.
func (r *recorder) waitFor(ctx context.Context, match func(Entry) bool) (Entry, error) {
	next := 0
	for {
		r.mu.Lock()
		entries, changed := r.entries[next:], r.changed
		r.mu.Unlock()
		for _, e := range entries {
			if match(e) {
				return e, nil
			}
		}
		next += len(entries)
		select {
		case <-ctx.Done():
			return Entry{}, context.Cause(ctx)
		case <-changed:
		}
	}
}

// marshalJSON is json.Marshal without HTML escaping: the record and the
// documents are read by people and agents, not embedded in HTML, and
// "&" in a path or "<" in a description should read as themselves.
func marshalJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
