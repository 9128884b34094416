package extconfig

import (
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// StatusValue is an extension's status.
type StatusValue string

// Status values; success and error are terminal.
const (
	StatusTransitioning StatusValue = "transitioning"
	StatusWarning       StatusValue = "warning"
	StatusError         StatusValue = "error"
	StatusSuccess       StatusValue = "success"
)

// Terminal reports whether the extension is done with its operation.
func (v StatusValue) Terminal() bool { return v == StatusSuccess || v == StatusError }

func (v StatusValue) valid() bool {
	return v == StatusTransitioning || v == StatusWarning || v.Terminal()
}

// Status is the first entry of an extension's status file,
// status/<seqNo>.status (§17.5), as the agent reports it.
type Status struct {
	Version      string // as written ("1.0" or 1.0); informational
	TimestampUTC string // informational
	Name         string // as written; the agent reports the extension's own name

	Operation string
	// Status is the extension's status; a value outside the four is
	// reported as error.
	Status                   StatusValue
	Code                     int
	ConfigurationAppliedTime string
	Message                  string // formattedMessage.message
	Substatus                []Substatus

	// Truncated is set when the file was over MaxStatusFileSize: Message
	// and the substatus names and messages were cut and the substatus
	// list may be shorter than the file's.
	Truncated bool
}

// Substatus is one entry of a status's substatus list.
type Substatus struct {
	Name    string
	Status  StatusValue
	Code    int
	Message string // formattedMessage.message; "" when there is none
}

// Size limits of status files (§17.5). Sizes are counted in characters,
// as the platform's agent counts them.
const (
	MaxStatusFileSize       = 128 * 1024
	maxStatusMessageLength  = 1024
	maxSubstatusFieldLength = 10 * 1024
	truncatedSuffix         = " ... [TRUNCATED]"
)

// ErrStatusMalformed marks a status file that is valid JSON but not a
// valid status; the agent reports the extension as error with code 1012
// ("Could not get a valid status from the extension …"). Invalid JSON is
// an error that does not match it (also reported as 1012, worded
// differently).
var ErrStatusMalformed = errors.New("invalid status format by extension")

// ParseStatus parses an extension status file: a JSON array whose first
// element is used. An empty array or null gives nil and no error (the
// extension reported no status yet). Parsing is lenient as extensions are:
// version and code may be numbers or strings, formattedMessage may be
// missing or null, substatus null. A file over MaxStatusFileSize is cut
// down as the platform's agent does (Truncated).
func ParseStatus(b []byte) (*Status, error) {
	s, err := parseStatus(b)
	if err != nil {
		return nil, fmt.Errorf("parsing the extension status: %w", err)
	}
	if s != nil && utf8.RuneCount(b) > MaxStatusFileSize {
		s.truncate()
	}
	return s, nil
}

func parseStatus(b []byte) (*Status, error) {
	var list []json.RawMessage
	if err := decodeJSON(b, &list); err != nil {
		if jsonKind(b) != "array" && json.Valid(b) {
			return nil, fmt.Errorf("%w: the extension status must be an array", ErrStatusMalformed)
		}
		return nil, err
	}
	if len(list) == 0 {
		return nil, nil
	}
	top, err := asObject(list[0], "[0]")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStatusMalformed, err)
	}
	if !top.has("status") {
		return nil, fmt.Errorf("%w: Missing status key", ErrStatusMalformed)
	}
	st, err := asObject(top["status"], "status")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStatusMalformed, err)
	}
	if !st.has("status") {
		return nil, fmt.Errorf("%w: Missing status/status key", ErrStatusMalformed)
	}
	s := &Status{
		Version:                  top.text("version"),
		TimestampUTC:             top.text("timestampUTC"),
		Name:                     st.text("name"),
		Operation:                st.text("operation"),
		Status:                   StatusValue(st.text("status")),
		ConfigurationAppliedTime: st.text("configurationAppliedTime"),
	}
	if jsonKind(st["status"]) != "string" || !s.Status.valid() {
		s.Status = StatusError
	}
	if s.Code, err = st.integer("code", "status/code", 0); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStatusMalformed, err)
	}
	if s.Message, err = formattedMessage(st, "status/formattedMessage"); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStatusMalformed, err)
	}
	if st.isNull("substatus") {
		return s, nil // some extensions write null for none
	}
	var subs []json.RawMessage
	if jsonKind(st["substatus"]) != "array" || json.Unmarshal(st["substatus"], &subs) != nil {
		return nil, fmt.Errorf("%w: status/substatus: got %s, want an array", ErrStatusMalformed, got(st["substatus"]))
	}
	for i, raw := range subs {
		if jsonKind(raw) == "null" {
			continue
		}
		sub, err := substatus(raw, fmt.Sprintf("substatus[%d]", i))
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrStatusMalformed, err)
		}
		s.Substatus = append(s.Substatus, sub)
	}
	return s, nil
}

func substatus(raw json.RawMessage, path string) (Substatus, error) {
	o, err := asObject(raw, path)
	if err != nil {
		return Substatus{}, err
	}
	if !o.has("status") {
		return Substatus{}, fmt.Errorf("Missing %s/status key", path)
	}
	sub := Substatus{Name: o.text("name"), Status: StatusValue(o.text("status"))}
	if jsonKind(o["status"]) != "string" || !sub.Status.valid() {
		return Substatus{}, fmt.Errorf("%s/status: got %s, want transitioning, warning, error or success", path, got(o["status"]))
	}
	if sub.Code, err = o.integer("code", path+"/code", 0); err != nil {
		return Substatus{}, err
	}
	if sub.Message, err = formattedMessage(o, path+"/formattedMessage"); err != nil {
		return Substatus{}, err
	}
	return sub, nil
}

// formattedMessage is the message of o's formattedMessage, which, unless
// absent or null, must be an object with lang and message.
func formattedMessage(o object, path string) (string, error) {
	if o.isNull("formattedMessage") {
		return "", nil
	}
	fm, err := asObject(o["formattedMessage"], path)
	if err != nil {
		return "", err
	}
	for _, key := range []string{"lang", "message"} {
		if !fm.has(key) {
			return "", fmt.Errorf("Missing %s/%s key", path, key)
		}
	}
	return fm.text("message"), nil
}

// truncate cuts an oversized status down as the platform's agent does:
// the message to 1 KiB, each substatus name and message to 10 KiB, and the
// substatus list where the running total of those fields passes
// MaxStatusFileSize.
func (s *Status) truncate() {
	s.Truncated = true
	var size, n int
	s.Message, size = truncateField(s.Message, maxStatusMessageLength)
	for i := range s.Substatus {
		sub := &s.Substatus[i]
		sub.Name, n = truncateField(sub.Name, maxSubstatusFieldLength)
		size += n
		sub.Message, n = truncateField(sub.Message, maxSubstatusFieldLength)
		size += n
		if size > MaxStatusFileSize {
			s.Substatus = s.Substatus[:i]
			return
		}
	}
}

// truncateField cuts field to limit characters plus a marker when it has
// limit or more, and returns its new length in characters.
func truncateField(field string, limit int) (string, int) {
	n := utf8.RuneCountInString(field)
	if n < limit {
		return field, n
	}
	i := 0
	for range limit {
		_, w := utf8.DecodeRuneInString(field[i:])
		i += w
	}
	field = field[:i] + truncatedSuffix
	return field, limit + len(truncatedSuffix)
}

// Heartbeat is the first entry of a handler's heartbeat.log (§17.6); its
// status and message replace the handler's in the status report.
type Heartbeat struct {
	Status string // Ready, NotReady, …, as written
	Code   int
	// Message is formattedMessage.message; HasMessage is false when the
	// heartbeat has no formattedMessage (the handler message stays).
	Message    string
	HasMessage bool
}

// ParseHeartbeat parses heartbeat.log: a JSON array whose first element
// has a heartbeat object.
func ParseHeartbeat(b []byte) (*Heartbeat, error) {
	h, err := parseHeartbeat(b)
	if err != nil {
		return nil, fmt.Errorf("parsing the heartbeat: %w", err)
	}
	return h, nil
}

func parseHeartbeat(b []byte) (*Heartbeat, error) {
	var list []json.RawMessage
	if err := decodeJSON(b, &list); err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("the array is empty")
	}
	top, err := asObject(list[0], "[0]")
	if err != nil {
		return nil, err
	}
	hb, err := asObject(top["heartbeat"], "[0].heartbeat")
	if err != nil {
		return nil, err
	}
	h := &Heartbeat{Status: hb.text("status"), HasMessage: !hb.isNull("formattedMessage")}
	if h.Code, err = hb.integer("code", "[0].heartbeat.code", 0); err != nil {
		return nil, err
	}
	if h.Message, err = formattedMessage(hb, "[0].heartbeat.formattedMessage"); err != nil {
		return nil, err
	}
	return h, nil
}
