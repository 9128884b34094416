package fabric

import (
	"net/http"
	"net/url"
	"path"
	"strings"
)

// Kind names what a request was, as the record and --fault spell it.
type Kind string

// The request kinds (design.md §7).
const (
	KindVersions         Kind = "versions"
	KindGoalState        Kind = "goalstate"
	KindHostingEnv       Kind = "hostingenv"
	KindSharedConfig     Kind = "sharedconfig"
	KindExtensionsConfig Kind = "extensionsconfig"
	KindCertificates     Kind = "certificates"
	KindHealth           Kind = "health"
	KindTelemetry        Kind = "telemetry"
	KindStatus           Kind = "status"
	KindManifest         Kind = "manifest"
	KindPackage          Kind = "package"
	KindVMSettings       Kind = "vmsettings"
	KindIMDS             Kind = "imds"
	KindOther            Kind = "other"
)

// Kinds lists every request kind.
func Kinds() []Kind {
	return []Kind{KindVersions, KindGoalState, KindHostingEnv, KindSharedConfig, KindExtensionsConfig,
		KindCertificates, KindHealth, KindTelemetry, KindStatus, KindManifest, KindPackage,
		KindVMSettings, KindIMDS, KindOther}
}

func knownKind(k Kind) bool {
	for _, c := range Kinds() {
		if c == k {
			return true
		}
	}
	return false
}

// Server names one of the fabric's three listeners.
type Server string

// The fabric's listeners.
const (
	ServerWireserver   Server = "wireserver"
	ServerHostGAPlugin Server = "hostgaplugin"
	ServerIMDS         Server = "imds"
)

// blobPrefix is where the wireserver listener serves blob URLs (status
// blob, manifests, packages, replayed storage blobs).
const blobPrefix = "/blob/"

// classify says what kind of request r is on server. It looks only at the
// method, path, query and headers, so faults can be chosen before the
// request is handled.
func classify(server Server, r *http.Request) Kind {
	switch server {
	case ServerIMDS:
		return KindIMDS
	case ServerHostGAPlugin:
		switch r.URL.Path {
		case "/status":
			return KindStatus
		case "/vmSettings":
			return KindVMSettings
		case "/extensionArtifact":
			return artifactKind(r.Header.Get("x-ms-artifact-location"))
		}
		return KindOther
	}
	p, q := r.URL.Path, r.URL.Query()
	switch {
	case strings.HasPrefix(p, blobPrefix):
		if r.Method == http.MethodPut {
			return KindStatus
		}
		return blobKind(path.Base(p))
	case p == "/provisioning/health":
		return KindHealth
	case p == "/" && q.Get("comp") == "versions":
		return KindVersions
	case !machinePath(p):
		return KindOther
	}
	switch q.Get("comp") {
	case "goalstate":
		return KindGoalState
	case "health":
		return KindHealth
	case "telemetrydata":
		return KindTelemetry
	case "certificates":
		return KindCertificates
	case "config":
		switch q.Get("type") {
		case "hostingEnvironmentConfig":
			return KindHostingEnv
		case "sharedConfig":
			return KindSharedConfig
		case "extensionsConfig":
			return KindExtensionsConfig
		}
	}
	return KindOther
}

// artifactKind classifies a HostGAPlugin artifact by the blob URL it names.
func artifactKind(location string) Kind {
	u, err := url.Parse(location)
	if err != nil || location == "" {
		return KindOther
	}
	return blobKind(path.Base(u.Path))
}

// blobKind classifies a downloaded blob by its name: extension and agent
// manifests carry "manifest" in their names; handler packages are zips or
// named "<Publisher.Type>__<Version>".
func blobKind(name string) Kind {
	lower := strings.ToLower(name)
	switch {
	case strings.Contains(lower, "manifest"):
		return KindManifest
	case strings.HasSuffix(lower, ".zip") || strings.Contains(name, "__"):
		return KindPackage
	}
	return KindOther
}

// machinePath reports whether p is under the wireserver's /machine.
func machinePath(p string) bool { return p == "/machine" || strings.HasPrefix(p, "/machine/") }
