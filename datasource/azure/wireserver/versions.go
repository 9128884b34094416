package wireserver

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// Versions is the WireServer's answer to GET /?comp=versions.
type Versions struct {
	Preferred string
	Supported []string
}

// ParseVersions parses a versions document and accepts it only when
// ProtocolVersion is preferred or supported; otherwise the error matches
// ErrUnsupportedVersion and names what was offered.
func ParseVersions(b []byte) (*Versions, error) {
	root, err := parseXML(b, "Versions")
	if err != nil {
		return nil, fmt.Errorf("parsing versions: %w", err)
	}
	v := &Versions{Preferred: root.find("Preferred").findValue("Version")}
	if s := root.find("Supported"); s != nil {
		for _, e := range s.findAll("Version") {
			v.Supported = append(v.Supported, e.value())
		}
	}
	if v.Preferred == "" && len(v.Supported) == 0 {
		return nil, errors.New("parsing versions: no <Preferred> or <Supported> <Version>")
	}
	if v.Preferred != ProtocolVersion && !slices.Contains(v.Supported, ProtocolVersion) {
		return nil, fmt.Errorf("%w: want %s, offered preferred %q, supported %q",
			ErrUnsupportedVersion, ProtocolVersion, v.Preferred, v.Supported)
	}
	return v, nil
}

// Versions asks the WireServer which protocol versions it speaks and checks
// that ProtocolVersion is one of them. The request carries no x-ms headers.
func (c *Client) Versions(ctx context.Context) (*Versions, error) {
	u, err := c.endpointURL("/?comp=versions")
	if err != nil {
		return nil, err
	}
	body, err := c.get(ctx, u, c.header(false))
	if err != nil {
		return nil, err
	}
	v, err := ParseVersions(body)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	return v, nil
}
