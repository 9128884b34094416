package wireserver

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// GoalState is the WireServer's goal state (GET /machine/?comp=goalstate).
// The URIs are as the document gives them (they name the platform
// address); the client re-bases them onto its endpoint when fetching.
type GoalState struct {
	Incarnation    string // compared for equality only
	ContainerID    string
	RoleInstanceID string
	ConfigName     string

	HostingEnvironmentConfig string
	SharedConfig             string
	ExtensionsConfig         string // "" when the VM has no extensions
	FullConfig               string // "" when absent; nothing reads it
	Certificates             string // "" when there are none
	RemoteAccessInfo         string // "" when absent

	Raw []byte // the document as received
}

// Goal-state fetches are repeated while the document has no RoleInstance
// (the role is not ready yet): up to goalStateFetches times, this far apart.
const (
	goalStateFetches = 6
	goalStateWait    = 500 * time.Millisecond
)

// ParseGoalState parses a goal state document. Elements are found by local
// name wherever they are, so namespaces and unknown elements do not matter.
// A document without a RoleInstance is an error matching ErrNoRoleInstance.
func ParseGoalState(b []byte) (*GoalState, error) {
	gs, err := parseGoalState(b)
	if err != nil {
		return nil, fmt.Errorf("parsing goal state: %w", err)
	}
	return gs, nil
}

func parseGoalState(b []byte) (*GoalState, error) {
	root, err := parseXML(b, "GoalState")
	if err != nil {
		return nil, err
	}
	ri := root.find("RoleInstance")
	if ri == nil {
		return nil, ErrNoRoleInstance
	}
	gs := &GoalState{
		Incarnation:              root.findValue("Incarnation"),
		ContainerID:              root.find("Container").findValue("ContainerId"),
		RoleInstanceID:           ri.findValue("InstanceId"),
		ConfigName:               ri.findValue("ConfigName"),
		HostingEnvironmentConfig: ri.findValue("HostingEnvironmentConfig"),
		SharedConfig:             ri.findValue("SharedConfig"),
		ExtensionsConfig:         ri.findValue("ExtensionsConfig"),
		FullConfig:               ri.findValue("FullConfig"),
		Certificates:             ri.findValue("Certificates"),
		RemoteAccessInfo:         root.find("Container").findValue("RemoteAccessInfo"),
		Raw:                      b,
	}
	required := []struct{ name, value string }{
		{"Incarnation", gs.Incarnation},
		{"ContainerId", gs.ContainerID},
		{"InstanceId", gs.RoleInstanceID},
		{"HostingEnvironmentConfig", gs.HostingEnvironmentConfig},
		{"SharedConfig", gs.SharedConfig},
	}
	for _, r := range required {
		if r.value == "" {
			return nil, fmt.Errorf("no <%s>", r.name)
		}
	}
	uris := []struct{ name, value string }{
		{"HostingEnvironmentConfig", gs.HostingEnvironmentConfig},
		{"SharedConfig", gs.SharedConfig},
		{"ExtensionsConfig", gs.ExtensionsConfig},
		{"FullConfig", gs.FullConfig},
		{"Certificates", gs.Certificates},
		{"RemoteAccessInfo", gs.RemoteAccessInfo},
	}
	for _, u := range uris {
		if u.value == "" {
			continue
		}
		if _, err := parseDocumentURI(u.value); err != nil {
			return nil, fmt.Errorf("<%s>: %w", u.name, err)
		}
	}
	return gs, nil
}

// GoalState fetches and parses the goal state. While the document has no
// RoleInstance it is fetched again, up to 6 times 0.5 s apart.
func (c *Client) GoalState(ctx context.Context) (*GoalState, error) {
	u, err := c.endpointURL("/machine/?comp=goalstate")
	if err != nil {
		return nil, err
	}
	for n := 1; ; n++ {
		body, err := c.get(ctx, u, c.header(true))
		if err != nil {
			return nil, err
		}
		gs, err := ParseGoalState(body)
		if err == nil {
			return gs, nil
		}
		if !errors.Is(err, ErrNoRoleInstance) {
			return nil, fmt.Errorf("GET %s: %w", u, err)
		}
		if n == goalStateFetches {
			return nil, fmt.Errorf("GET %s: %w (%d fetches)", u, err, n)
		}
		c.logger().Debug("goal state has no role instance yet, fetching again", "fetch", n, "delay", goalStateWait)
		if err := c.sleep(ctx, goalStateWait); err != nil {
			return nil, fmt.Errorf("GET %s: %w (last: %w)", u, err, ErrNoRoleInstance)
		}
	}
}
