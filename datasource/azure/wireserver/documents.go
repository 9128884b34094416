package wireserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
)

// HostingEnvironment is the part of HostingEnvironmentConfig the agent
// uses, with the document itself (kept verbatim in
// /var/lib/waagent/HostingEnvironmentConfig.xml for compatibility).
type HostingEnvironment struct {
	VMName         string // Incarnation@instance, e.g. "MachineRole_IN_0"
	RoleName       string // Role@name
	DeploymentName string // Deployment@name
	Raw            []byte
}

// ParseHostingEnvironment parses a HostingEnvironmentConfig document.
func ParseHostingEnvironment(b []byte) (*HostingEnvironment, error) {
	root, err := parseXML(b, "HostingEnvironmentConfig")
	if err != nil {
		return nil, fmt.Errorf("parsing hosting environment: %w", err)
	}
	he := &HostingEnvironment{
		VMName:         root.find("Incarnation").attr("instance"),
		RoleName:       root.find("Role").attr("name"),
		DeploymentName: root.find("Deployment").attr("name"),
		Raw:            b,
	}
	for _, r := range []struct{ what, value string }{
		{"<Incarnation instance=...>", he.VMName},
		{"<Role name=...>", he.RoleName},
		{"<Deployment name=...>", he.DeploymentName},
	} {
		if r.value == "" {
			return nil, fmt.Errorf("parsing hosting environment: no %s", r.what)
		}
	}
	return he, nil
}

// HostingEnvironment fetches and parses the goal state's
// HostingEnvironmentConfig.
func (c *Client) HostingEnvironment(ctx context.Context, gs *GoalState) (*HostingEnvironment, error) {
	u, body, err := c.fetchDocument(ctx, "HostingEnvironmentConfig", gs.HostingEnvironmentConfig, c.header(true))
	if err != nil {
		return nil, err
	}
	he, err := ParseHostingEnvironment(body)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	return he, nil
}

// SharedConfig fetches the goal state's SharedConfig, which is kept opaque
// but must be a well-formed <SharedConfig> document.
func (c *Client) SharedConfig(ctx context.Context, gs *GoalState) ([]byte, error) {
	u, body, err := c.fetchDocument(ctx, "SharedConfig", gs.SharedConfig, c.header(true))
	if err != nil {
		return nil, err
	}
	if err := checkXML(body, "SharedConfig"); err != nil {
		return nil, fmt.Errorf("GET %s: parsing shared config: %w", u, err)
	}
	return body, nil
}

// ExtensionsConfig fetches the goal state's ExtensionsConfig, the
// extensions the VM should run and where to upload their status: a
// well-formed <Extensions> document, which the extconfig package parses. A
// goal state without one (a VM without extensions) is ErrNoExtensionsConfig.
func (c *Client) ExtensionsConfig(ctx context.Context, gs *GoalState) ([]byte, error) {
	if gs.ExtensionsConfig == "" {
		return nil, ErrNoExtensionsConfig
	}
	u, body, err := c.fetchDocument(ctx, "ExtensionsConfig", gs.ExtensionsConfig, c.header(true))
	if err != nil {
		return nil, err
	}
	if err := checkXML(body, "Extensions"); err != nil {
		return nil, fmt.Errorf("GET %s: parsing extensions config: %w", u, err)
	}
	return body, nil
}

// Certificates fetches the goal state's Certificates document, asking the
// WireServer to encrypt it to the transport certificate: transportCertHeader
// is its base64 DER (no PEM armour, no newlines) and cipher the content
// encryption ("AES128_CBC", "DES_EDE3_CBC"; "" omits the header). It returns
// the raw <CertificateFile> XML; decrypting it is another package's job.
// A goal state without certificates is ErrNoCertificates.
func (c *Client) Certificates(ctx context.Context, gs *GoalState, transportCertHeader string, cipher string) ([]byte, error) {
	if gs.Certificates == "" {
		return nil, ErrNoCertificates
	}
	if transportCertHeader == "" {
		return nil, errors.New("fetching certificates: no transport certificate")
	}
	h := c.header(true)
	h.Set("x-ms-guest-agent-public-x509-cert", transportCertHeader)
	if cipher != "" {
		h.Set("x-ms-cipher-name", cipher)
	}
	u, body, err := c.fetchDocument(ctx, "Certificates", gs.Certificates, h)
	if err != nil {
		return nil, err
	}
	if err := checkXML(body, "CertificateFile"); err != nil {
		return nil, fmt.Errorf("GET %s: parsing certificates: %w", u, err)
	}
	return body, nil
}

// fetchDocument GETs a goal-state child document, named doc, from uri
// re-based onto the endpoint, with the headers h.
func (c *Client) fetchDocument(ctx context.Context, doc, uri string, h http.Header) (*url.URL, []byte, error) {
	if uri == "" {
		return nil, nil, fmt.Errorf("goal state has no %s URI", doc)
	}
	u, err := c.rebase(doc, uri)
	if err != nil {
		return nil, nil, err
	}
	body, err := c.get(ctx, u, h)
	return u, body, err
}
