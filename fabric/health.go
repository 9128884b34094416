package fabric

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"strings"
)

// Health is a health report as the record keeps it, from either the XML
// comp=health document or the JSON /provisioning/health body.
type Health struct {
	State       string `json:"state"`
	SubStatus   string `json:"substatus,omitempty"`
	Description string `json:"description,omitempty"`
}

// The health states the wireserver accepts.
const (
	StateReady    = "Ready"
	StateNotReady = "NotReady"
)

// ErrBadHealth is returned (wrapped) for a health report the wireserver
// rejects.
var ErrBadHealth = errors.New("bad health report")

// HealthXML is a parsed comp=health document: the report and the goal state
// it names.
type HealthXML struct {
	Health
	Incarnation string
	ContainerID string
	InstanceID  string
}

// ParseHealthXML parses a comp=health document (wire-protocol.md §8).
// Whitespace around values is ignored, so pretty-printed documents parse.
func ParseHealthXML(b []byte) (*HealthXML, error) {
	var doc struct {
		XMLName     xml.Name
		Incarnation string `xml:"GoalStateIncarnation"`
		Container   struct {
			ContainerID string `xml:"ContainerId"`
			Roles       []struct {
				InstanceID string `xml:"InstanceId"`
				Health     struct {
					State   string `xml:"State"`
					Details struct {
						SubStatus   string `xml:"SubStatus"`
						Description string `xml:"Description"`
					} `xml:"Details"`
				} `xml:"Health"`
			} `xml:"RoleInstanceList>Role"`
		} `xml:"Container"`
	}
	if err := xml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%w: malformed XML: %w", ErrBadHealth, err)
	}
	if doc.XMLName.Local != "Health" {
		return nil, fmt.Errorf("%w: root element is <%s>, want <Health>", ErrBadHealth, doc.XMLName.Local)
	}
	if len(doc.Container.Roles) != 1 {
		return nil, fmt.Errorf("%w: %d Container/RoleInstanceList/Role elements, want 1", ErrBadHealth, len(doc.Container.Roles))
	}
	role := doc.Container.Roles[0]
	h := &HealthXML{
		Health: Health{
			State:       strings.TrimSpace(role.Health.State),
			SubStatus:   strings.TrimSpace(role.Health.Details.SubStatus),
			Description: strings.TrimSpace(role.Health.Details.Description),
		},
		Incarnation: strings.TrimSpace(doc.Incarnation),
		ContainerID: strings.TrimSpace(doc.Container.ContainerID),
		InstanceID:  strings.TrimSpace(role.InstanceID),
	}
	if err := h.Health.validate(); err != nil {
		return nil, err
	}
	return h, nil
}

// ParseHealthJSON parses a /provisioning/health body:
// {"state":"Ready"} or {"state":"NotReady","details":{"subStatus":...,"description":...}}.
func ParseHealthJSON(b []byte) (*Health, error) {
	var doc struct {
		State   string `json:"state"`
		Details struct {
			SubStatus   string `json:"subStatus"`
			Description string `json:"description"`
		} `json:"details"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%w: malformed JSON: %w", ErrBadHealth, err)
	}
	h := &Health{State: doc.State, SubStatus: doc.Details.SubStatus, Description: doc.Details.Description}
	if err := h.validate(); err != nil {
		return nil, err
	}
	return h, nil
}

func (h *Health) validate() error {
	switch h.State {
	case StateReady, StateNotReady:
		return nil
	case "":
		return fmt.Errorf("%w: no state", ErrBadHealth)
	}
	return fmt.Errorf("%w: state %q, want %s or %s", ErrBadHealth, h.State, StateReady, StateNotReady)
}
