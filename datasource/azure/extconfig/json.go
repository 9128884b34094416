package extconfig

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
)

// The platform's documents and the files extensions write are loose about
// types: numbers arrive as strings and the other way round. The types here
// accept what the platform's agent accepts and report anything else as a
// *json.UnmarshalTypeError, which encoding/json completes with the field's
// path and which jsonError words without quoting the value.

// flexInt is an integer written as a JSON number (integral) or a string
// holding one. Null leaves it unchanged.
type flexInt int

func (n *flexInt) UnmarshalJSON(b []byte) error {
	v, ok, err := jsonInt(b)
	if err != nil || !ok {
		return err
	}
	*n = flexInt(v)
	return nil
}

// jsonInt reads an integer from a JSON number or string; ok is false for
// null.
func jsonInt(b []byte) (n int, ok bool, err error) {
	b = bytes.TrimSpace(b)
	typeErr := &json.UnmarshalTypeError{Value: jsonKind(b), Type: reflect.TypeFor[int]()}
	text := string(b)
	switch jsonKind(b) {
	case "null":
		return 0, false, nil
	case "string":
		if err := json.Unmarshal(b, &text); err != nil {
			return 0, false, typeErr
		}
		text = strings.TrimSpace(text)
	case "number":
	default:
		return 0, false, typeErr
	}
	if i, err := strconv.Atoi(text); err == nil {
		return i, true, nil
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, false, typeErr
	}
	return int(f), true, nil
}

// flexString is a string written as a JSON string or number (the number's
// text). Null leaves it unchanged.
type flexString string

func (s *flexString) UnmarshalJSON(b []byte) error {
	switch jsonKind(b) {
	case "null":
		return nil
	case "number":
		*s = flexString(bytes.TrimSpace(b))
		return nil
	case "string":
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = flexString(v)
		return nil
	}
	return &json.UnmarshalTypeError{Value: jsonKind(b), Type: reflect.TypeFor[string]()}
}

// flexBool is true or false, written as a JSON boolean or a string "true"
// or "false" in any case. Null leaves it unchanged.
type flexBool bool

func (v *flexBool) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch jsonKind(b) {
	case "null":
		return nil
	case "bool":
		*v = string(b) == "true"
		return nil
	case "string":
		var s string
		if err := json.Unmarshal(b, &s); err == nil {
			switch strings.ToLower(s) {
			case "true":
				*v = true
				return nil
			case "false":
				*v = false
				return nil
			}
		}
	}
	return &json.UnmarshalTypeError{Value: jsonKind(b), Type: reflect.TypeFor[bool]()}
}

// jsonKind names the kind of the JSON value b from its first byte.
func jsonKind(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return "nothing"
	}
	switch b[0] {
	case 'n':
		return "null"
	case 't', 'f':
		return "bool"
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	}
	return "number"
}

// jsonError words an encoding/json error with the path of the field at
// fault and without quoting the document: neither the value (the field may
// be secret) nor Go type names.
func jsonError(err error) error {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		value, _, _ := strings.Cut(typeErr.Value, " ") // "number 12" → "number"
		if typeErr.Field == "" {
			return fmt.Errorf("the document is a JSON %s, want %s", value, describeType(typeErr.Type))
		}
		return fmt.Errorf("%s: got a JSON %s, want %s", typeErr.Field, value, describeType(typeErr.Type))
	case errors.As(err, &syntaxErr):
		return fmt.Errorf("invalid JSON at offset %d: %w", syntaxErr.Offset, syntaxErr)
	}
	return err
}

// describeType says in JSON terms what a Go type decodes from.
func describeType(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Slice:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64, reflect.Uint64:
		return "an integer"
	}
	return "a " + t.Kind().String()
}

// got describes the JSON value raw for a message: "nothing" when absent,
// else "a JSON <kind>".
func got(raw json.RawMessage) string {
	if k := jsonKind(raw); k != "nothing" {
		return "a JSON " + k
	}
	return "nothing"
}

// decodeJSON decodes b into v, wording errors with jsonError.
func decodeJSON(b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return jsonError(err)
	}
	return nil
}

// object is a JSON object whose keys are matched exactly, as the platform's
// agent reads the files extensions write (a Python dict), unlike vmSettings.
type object map[string]json.RawMessage

// asObject decodes raw as an object; what names it in errors.
func asObject(raw json.RawMessage, what string) (object, error) {
	if jsonKind(raw) != "object" {
		return nil, fmt.Errorf("%s: got %s, want an object", what, got(raw))
	}
	var o object
	if err := json.Unmarshal(raw, &o); err != nil {
		return nil, fmt.Errorf("%s: %w", what, jsonError(err))
	}
	return o, nil
}

// has reports whether key is present, even as null.
func (o object) has(key string) bool {
	_, ok := o[key]
	return ok
}

// isNull reports whether key is absent or null.
func (o object) isNull(key string) bool {
	return jsonKind(o[key]) == "null" || !o.has(key)
}

// text is key's value as text: a string's content, or a number's or
// boolean's JSON text; "" when absent, null, an object or an array.
func (o object) text(key string) string {
	raw := bytes.TrimSpace(o[key])
	switch jsonKind(raw) {
	case "string":
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
	case "number", "bool":
		return string(raw)
	}
	return ""
}

// integer is key's value as an integer (a number or a string holding one);
// def when absent or null.
func (o object) integer(key, path string, def int) (int, error) {
	if o.isNull(key) {
		return def, nil
	}
	n, _, err := jsonInt(o[key])
	if err != nil {
		return 0, fmt.Errorf("%s: got %s, want an integer", path, got(o[key]))
	}
	return n, nil
}
