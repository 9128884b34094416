package fabric

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Action is what a fault does to a request.
type Action string

// The fault actions.
const (
	// ActionStatus answers with Fault.Status instead of handling the request.
	ActionStatus Action = "status"
	// ActionTimeout never answers: the request is held until the client
	// gives up (its connection closes), the fabric closes, or MaxHold passes,
	// and then the connection is closed without a response.
	ActionTimeout Action = "timeout"
	// ActionReset closes the connection with a TCP RST.
	ActionReset Action = "reset"
	// ActionTruncate announces the full Content-Length, sends half of the
	// body and closes the connection.
	ActionTruncate Action = "truncate"
	// ActionGarbage answers 200 with a body that is not the expected format.
	ActionGarbage Action = "garbage"
	// ActionSlow waits Fault.Delay, then answers normally.
	ActionSlow Action = "slow"
)

// MaxHold bounds how long a timeout fault holds a request.
const MaxHold = 2 * time.Minute

// ErrBadFault is returned (wrapped) by ParseFault for a malformed spec.
var ErrBadFault = errors.New("bad fault")

// Fault makes the first Count requests of a kind misbehave.
type Fault struct {
	Kind   Kind
	Action Action
	Status int           // for ActionStatus: 400..599
	Delay  time.Duration // for ActionSlow
	Count  int           // how many requests of Kind get it; at least 1
}

// ParseFaults parses a list of --fault specifications.
func ParseFaults(specs []string) ([]Fault, error) {
	var faults []Fault
	for _, s := range specs {
		f, err := ParseFault(s)
		if err != nil {
			return nil, err
		}
		faults = append(faults, f)
	}
	return faults, nil
}

// ParseFault parses KIND:ACTION[:COUNT], the --fault syntax. ACTION is an
// HTTP status 400..599, timeout, reset, truncate, garbage or
// slow=DURATION; COUNT defaults to 1.
func ParseFault(s string) (Fault, error) {
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return Fault{}, fmt.Errorf("%w %q: want KIND:ACTION[:COUNT]", ErrBadFault, s)
	}
	f := Fault{Kind: Kind(parts[0]), Count: 1}
	if !knownKind(f.Kind) {
		return Fault{}, fmt.Errorf("%w %q: unknown kind %q (want one of %s)", ErrBadFault, s, parts[0], kindList())
	}
	action := parts[1]
	switch {
	case action == string(ActionTimeout), action == string(ActionReset),
		action == string(ActionTruncate), action == string(ActionGarbage):
		f.Action = Action(action)
	case strings.HasPrefix(action, "slow="):
		d, err := time.ParseDuration(strings.TrimPrefix(action, "slow="))
		if err != nil || d <= 0 {
			return Fault{}, fmt.Errorf("%w %q: slow wants a positive duration such as slow=500ms", ErrBadFault, s)
		}
		f.Action, f.Delay = ActionSlow, d
	default:
		code, err := strconv.Atoi(action)
		if err != nil || code < 400 || code > 599 {
			return Fault{}, fmt.Errorf("%w %q: action %q is not an HTTP status 400-599, timeout, reset, truncate, garbage or slow=DURATION",
				ErrBadFault, s, action)
		}
		f.Action, f.Status = ActionStatus, code
	}
	if len(parts) == 3 {
		n, err := strconv.Atoi(parts[2])
		if err != nil || n < 1 {
			return Fault{}, fmt.Errorf("%w %q: count %q is not a positive integer", ErrBadFault, s, parts[2])
		}
		f.Count = n
	}
	return f, nil
}

func kindList() string {
	var names []string
	for _, k := range Kinds() {
		names = append(names, string(k))
	}
	return strings.Join(names, ", ")
}

// action is the ACTION part of the spec, as the record's fault field shows it.
func (f Fault) action() string {
	switch f.Action {
	case ActionStatus:
		return strconv.Itoa(f.Status)
	case ActionSlow:
		return "slow=" + f.Delay.String()
	}
	return string(f.Action)
}

// String is the fault in --fault syntax.
func (f Fault) String() string {
	return fmt.Sprintf("%s:%s:%d", f.Kind, f.action(), f.Count)
}

// faultQueue hands out faults: a request of a kind gets the first fault for
// that kind with uses left, so faults for one kind apply in order.
type faultQueue struct {
	mu     sync.Mutex
	faults []Fault
	left   []int
}

func newFaultQueue(faults []Fault) *faultQueue {
	q := &faultQueue{faults: faults, left: make([]int, len(faults))}
	for i, f := range faults {
		q.left[i] = max(f.Count, 1)
	}
	return q
}

// take returns the fault for the next request of kind, if any.
func (q *faultQueue) take(kind Kind) (Fault, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, f := range q.faults {
		if f.Kind == kind && q.left[i] > 0 {
			q.left[i]--
			return f, true
		}
	}
	return Fault{}, false
}
