package extconfig

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Event is a telemetry event as queued in the events directory (§14):
// sent to the WireServer as <Event id=EventID> of provider ProviderID.
type Event struct {
	EventID    int
	ProviderID string
	Parameters []EventParam
}

// EventParam is one parameter of an event, typed as the telemetry
// endpoint types it.
type EventParam struct {
	Name string
	Type ParamType
	// Value is the value as text: a string's content, "True" or "False",
	// or a number as written.
	Value string
}

// ParamType is the type attribute (T) of a telemetry parameter.
type ParamType string

// Parameter types: JSON strings, integers, booleans and other numbers.
const (
	ParamString  ParamType = "mt:wstr"
	ParamUint64  ParamType = "mt:uint64"
	ParamBool    ParamType = "mt:bool"
	ParamFloat64 ParamType = "mt:float64"
)

// ParseEvent parses an event file: {"eventId": n, "providerId": "…",
// "parameters": [{"name": "…", "value": …}]}, keys matched exactly.
// A parameter value must be a string, a number or a boolean.
func ParseEvent(b []byte) (*Event, error) {
	e, err := parseEvent(b)
	if err != nil {
		return nil, fmt.Errorf("parsing the event: %w", err)
	}
	return e, nil
}

func parseEvent(b []byte) (*Event, error) {
	o, err := asObject(b, "the document")
	if err != nil {
		return nil, err
	}
	e := &Event{ProviderID: o.text("providerId")}
	if !o.has("eventId") || jsonKind(o["eventId"]) == "null" {
		return nil, fmt.Errorf("missing eventId")
	}
	if e.EventID, err = o.integer("eventId", "eventId", 0); err != nil {
		return nil, err
	}
	if jsonKind(o["providerId"]) != "string" || e.ProviderID == "" {
		return nil, fmt.Errorf("providerId: got %s, want a non-empty string", got(o["providerId"]))
	}
	var params []json.RawMessage
	if !o.isNull("parameters") {
		if jsonKind(o["parameters"]) != "array" || json.Unmarshal(o["parameters"], &params) != nil {
			return nil, fmt.Errorf("parameters: got %s, want an array", got(o["parameters"]))
		}
	}
	for i, raw := range params {
		path := fmt.Sprintf("parameters[%d]", i)
		p, err := asObject(raw, path)
		if err != nil {
			return nil, err
		}
		if jsonKind(p["name"]) != "string" {
			return nil, fmt.Errorf("%s.name: got %s, want a string", path, got(p["name"]))
		}
		param := EventParam{Name: p.text("name"), Value: p.text("value")}
		value := bytes.TrimSpace(p["value"])
		switch jsonKind(value) {
		case "string":
			param.Type = ParamString
		case "bool":
			param.Type, param.Value = ParamBool, "False"
			if string(value) == "true" {
				param.Value = "True"
			}
		case "number":
			param.Type = ParamFloat64
			if !bytes.ContainsAny(value, ".eE") {
				param.Type = ParamUint64
			}
		default:
			return nil, fmt.Errorf("%s.value: got %s, want a string, a number or a boolean", path, got(p["value"]))
		}
		e.Parameters = append(e.Parameters, param)
	}
	return e, nil
}
