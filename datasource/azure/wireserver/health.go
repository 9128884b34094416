package wireserver

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Health states and sub-states reported to the WireServer.
const (
	StateReady    = "Ready"
	StateNotReady = "NotReady"

	SubStatusProvisioning       = "Provisioning"
	SubStatusProvisioningFailed = "ProvisioningFailed"
)

// MaxDescription is how many characters of a health description are sent:
// the WireServer takes 4096 bytes, less a 10% margin (WALinuxAgent's limit).
const MaxDescription = 3686

// Health is one health report.
type Health struct {
	State       string // StateReady or StateNotReady
	SubStatus   string // with StateNotReady: "", SubStatusProvisioning or SubStatusProvisioningFailed
	Description string // with a SubStatus; truncated to MaxDescription characters when sent
}

// Ready is the report that provisioning succeeded.
func Ready() Health { return Health{State: StateReady} }

// NotReady is a report that the VM is not ready, with a sub-status
// (SubStatusProvisioning while provisioning, SubStatusProvisioningFailed
// when it failed) and a description.
func NotReady(subStatus, description string) Health {
	return Health{State: StateNotReady, SubStatus: subStatus, Description: description}
}

// Validate reports whether h is a report the WireServer understands.
func (h Health) Validate() error {
	switch h.State {
	case StateReady:
		if h.SubStatus != "" || h.Description != "" {
			return errors.New("health Ready takes no sub-status or description")
		}
	case StateNotReady:
		switch h.SubStatus {
		case SubStatusProvisioning, SubStatusProvisioningFailed:
		case "":
			if h.Description != "" {
				return errors.New("health description given without a sub-status")
			}
		default:
			return fmt.Errorf("health sub-status %q: want %s or %s", h.SubStatus, SubStatusProvisioning, SubStatusProvisioningFailed)
		}
	default:
		return fmt.Errorf("health state %q: want %s or %s", h.State, StateReady, StateNotReady)
	}
	return nil
}

// description is the description as sent: at most MaxDescription
// characters (an invalid UTF-8 byte counts as one).
func (h Health) description() string {
	n := 0
	for i := range h.Description {
		if n == MaxDescription {
			return h.Description[:i]
		}
		n++
	}
	return h.Description
}

// healthXML renders the report the way WALinuxAgent does (wire-protocol.md
// §8), byte for byte.
func healthXML(gs *GoalState, h Health) []byte {
	var b strings.Builder
	text := func(s string) { xml.EscapeText(&b, []byte(s)) } // cannot fail on a strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="utf-8"?><Health xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema"><GoalStateIncarnation>`)
	text(gs.Incarnation)
	b.WriteString(`</GoalStateIncarnation><Container><ContainerId>`)
	text(gs.ContainerID)
	b.WriteString(`</ContainerId><RoleInstanceList><Role><InstanceId>`)
	text(gs.RoleInstanceID)
	b.WriteString(`</InstanceId><Health><State>`)
	text(h.State)
	b.WriteString(`</State>`)
	if h.SubStatus != "" {
		b.WriteString(`<Details><SubStatus>`)
		text(h.SubStatus)
		b.WriteString(`</SubStatus><Description>`)
		text(h.description())
		b.WriteString(`</Description></Details>`)
	}
	b.WriteString(`</Health></Role></RoleInstanceList></Container></Health>`)
	return []byte(b.String())
}

// ReportHealth posts h for the goal state's role instance to
// /machine?comp=health, under HealthPolicy.
func (c *Client) ReportHealth(ctx context.Context, gs *GoalState, h Health) error {
	if err := h.Validate(); err != nil {
		return err
	}
	u, err := c.endpointURL("/machine?comp=health")
	if err != nil {
		return err
	}
	hdr := c.header(true)
	hdr.Set("Content-Type", "text/xml;charset=utf-8")
	_, err = c.send(ctx, http.MethodPost, u, hdr, healthXML(gs, h), orDefault(c.HealthPolicy, HealthPolicy))
	return err
}

// healthJSON is the body of /provisioning/health (anchors.md §4.4).
type healthJSON struct {
	State   string             `json:"state"`
	Details *healthJSONDetails `json:"details,omitempty"`
}

type healthJSONDetails struct {
	SubStatus   string `json:"subStatus"`
	Description string `json:"description"`
}

// ReportHealthJSON posts h to /provisioning/health, the JSON endpoint that
// needs no goal state, under JSONHealthPolicy.
func (c *Client) ReportHealthJSON(ctx context.Context, h Health) error {
	if err := h.Validate(); err != nil {
		return err
	}
	u, err := c.endpointURL("/provisioning/health")
	if err != nil {
		return err
	}
	doc := healthJSON{State: h.State}
	if h.SubStatus != "" {
		doc.Details = &healthJSONDetails{SubStatus: h.SubStatus, Description: h.description()}
	}
	body, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("encoding health report: %w", err)
	}
	hdr := c.header(true)
	hdr.Set("Content-Type", "application/json")
	hdr.Set("x-ms-guest-agent-name", hdr.Get("User-Agent"))
	_, err = c.send(ctx, http.MethodPost, u, hdr, body, orDefault(c.JSONHealthPolicy, JSONHealthPolicy))
	return err
}
