package fabric

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/azinit/azinit/fabric/certificates"
)

// serveWireserver answers the wireserver listener (wire-protocol.md §3-§9,
// §12.8, §14, azure-init's /provisioning/health) and the blob URLs under
// blobPrefix.
func (f *Fabric) serveWireserver(q *request) reply {
	st, r := q.st, q.r
	switch q.entry.Kind {
	case KindVersions:
		return get(q, xmlDoc(st.versions))
	case KindGoalState:
		return get(q, xmlDoc(st.goalState))
	case KindHostingEnv:
		return getConfig(q, xmlDoc(st.hostingEnv))
	case KindSharedConfig:
		return getConfig(q, xmlDoc(st.sharedConfig))
	case KindExtensionsConfig:
		return getConfig(q, xmlDoc(st.extensionsConfig))
	case KindCertificates:
		return getConfig(q, func() reply { return serveCertificates(q) })
	case KindHealth:
		return post(q, func() reply { return health(q) })
	case KindTelemetry:
		return post(q, func() reply { return reply{status: http.StatusOK} })
	case KindStatus:
		return f.putBlob(q)
	case KindManifest, KindPackage:
		return f.getBlob(q)
	}
	p, query := r.URL.Path, r.URL.Query()
	switch {
	case strings.HasPrefix(p, blobPrefix):
		return f.getBlob(q)
	case p == "/_fabric/reload":
		return post(q, func() reply {
			if err := f.Reload(); err != nil {
				return q.reject(http.StatusInternalServerError, fmt.Errorf("reload: %w", err))
			}
			return textReply(http.StatusOK, "incarnation "+f.Incarnation())
		})
	case p == "/HealthService":
		return post(q, func() reply { return reply{status: http.StatusOK} })
	case machinePath(p) && query.Get("comp") == "config" && query.Get("type") == "fullConfig":
		return getConfig(q, xmlDoc(st.fullConfig))
	case machinePath(p) && query.Get("comp") == "roleProperties":
		return post(q, func() reply { return reply{status: http.StatusAccepted} })
	}
	return notFound(q)
}

func get(q *request, answer func() reply) reply {
	if q.r.Method != http.MethodGet {
		return methodNotAllowed(http.MethodGet)
	}
	return answer()
}

func post(q *request, answer func() reply) reply {
	if q.r.Method != http.MethodPost {
		return methodNotAllowed(http.MethodPost)
	}
	return answer()
}

func xmlDoc(doc []byte) func() reply { return func() reply { return xmlReply(doc) } }

// getConfig answers a goal state child document. A URI of another
// incarnation is gone, as the wireserver says when the goal state moved on.
func getConfig(q *request, answer func() reply) reply {
	return get(q, func() reply {
		if inc := q.r.URL.Query().Get("incarnation"); inc != "" && inc != q.st.incarnation {
			return q.reject(http.StatusGone, fmt.Errorf("incarnation %s is not the current goal state's (%s)", inc, q.st.incarnation))
		}
		return answer()
	})
}

// serveCertificates answers comp=certificates: the scenario's certificates
// encrypted to the transport certificate the agent sends.
func serveCertificates(q *request) reply {
	st := q.st
	header := q.r.Header.Get("x-ms-guest-agent-public-x509-cert")
	if header == "" {
		return q.reject(http.StatusBadRequest, errors.New(
			"no x-ms-guest-agent-public-x509-cert header: send the agent's transport certificate (base64 DER) to encrypt the certificates to"))
	}
	der, err := base64.StdEncoding.DecodeString(header)
	if err != nil {
		return q.reject(http.StatusBadRequest, fmt.Errorf("x-ms-guest-agent-public-x509-cert header is not base64: %w", err))
	}
	if st.rawCertificates != nil {
		return xmlReply(st.rawCertificates)
	}
	cipher := q.r.Header.Get("x-ms-cipher-name")
	key := header + "\x00" + cipher
	if doc, ok := st.builtCertificates.Load(key); ok {
		return xmlReply(doc.([]byte))
	}
	// Without certificates the document has no Data: "no certificates".
	doc, err := certificates.Build(st.scenario.Certificates, der, cipher, st.incarnation)
	if err != nil {
		return q.reject(http.StatusBadRequest, fmt.Errorf("building the certificates: %w", err))
	}
	st.builtCertificates.Store(key, doc)
	return xmlReply(doc)
}

// health accepts a health report. The record keeps what it said even
// when it is refused.
func health(q *request) reply {
	h, err := parseHealthRequest(q)
	if h != nil {
		q.entry.Body, _ = marshalJSON(h)
	}
	if err != nil {
		return q.reject(http.StatusBadRequest, err)
	}
	return reply{status: http.StatusOK}
}

// parseHealthRequest reads azure-init's JSON /provisioning/health or the
// XML comp=health document, which must name the current goal state's
// container and role instance.
func parseHealthRequest(q *request) (*Health, error) {
	if q.r.URL.Path == "/provisioning/health" {
		return ParseHealthJSON(q.body)
	}
	doc, err := ParseHealthXML(q.body)
	if err != nil {
		return nil, err
	}
	switch {
	case doc.ContainerID != q.st.containerID:
		return &doc.Health, fmt.Errorf("%w: ContainerId %q is not the current goal state's %q", ErrBadHealth, doc.ContainerID, q.st.containerID)
	case doc.InstanceID != q.st.instanceID:
		return &doc.Health, fmt.Errorf("%w: InstanceId %q is not the current goal state's %q", ErrBadHealth, doc.InstanceID, q.st.instanceID)
	}
	return &doc.Health, nil
}
