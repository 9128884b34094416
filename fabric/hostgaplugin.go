package fabric

import (
	"errors"
	"net/http"
	"net/url"
	"path"
	"strings"
)

// HostGAPluginVersion is the API version the HostGAPlugin advertises.
const HostGAPluginVersion = "2015-09-01"

// serveHostGAPlugin answers the HostGAPlugin listener (wire-protocol.md §12).
func (f *Fabric) serveHostGAPlugin(q *request) reply {
	switch q.r.URL.Path {
	case "/versions":
		return get(q, func() reply { return jsonReply(http.StatusOK, []byte(`["`+HostGAPluginVersion+`"]`)) })
	case "/health":
		return get(q, func() reply { return reply{status: http.StatusOK} })
	case "/status":
		if q.r.Method != http.MethodPut {
			return methodNotAllowed(http.MethodPut)
		}
		return f.putStatus(q)
	case "/vmSettings":
		return get(q, func() reply { return vmSettings(q) })
	case "/extensionArtifact":
		return get(q, func() reply {
			loc := q.r.Header.Get("x-ms-artifact-location")
			if loc == "" {
				return q.reject(http.StatusBadRequest, errors.New("no x-ms-artifact-location header"))
			}
			u, err := url.Parse(loc)
			if err != nil {
				return q.reject(http.StatusBadRequest, err)
			}
			return f.blob(q, path.Base(u.Path))
		})
	}
	return notFound(q)
}

// vmSettings answers Fast Track's /vmSettings from raw/vmsettings.json or,
// with fast_track in extensions.yaml, generated, with an ETag and 304 when
// the agent has it already; without either, the HostGAPlugin does not
// support vmSettings (404).
func vmSettings(q *request) reply {
	st := q.st
	if st.vmSettings == nil {
		return textReply(http.StatusNotFound, "vmSettings are not supported (the scenario has no raw/vmsettings.json nor fast_track: true in extensions.yaml)")
	}
	h := http.Header{"Etag": {st.vmSettingsETag}}
	if strings.Trim(q.r.Header.Get("If-None-Match"), `"`) == st.vmSettingsETag {
		return reply{status: http.StatusNotModified, header: h}
	}
	rep := jsonReply(http.StatusOK, st.vmSettings)
	rep.header.Set("Etag", st.vmSettingsETag)
	return rep
}

// putStatus takes a status upload through the HostGAPlugin: the blob
// content comes base64 in an envelope naming the blob.
func (f *Fabric) putStatus(q *request) reply {
	env, err := ParseStatusEnvelope(q.body)
	if err != nil {
		return q.reject(http.StatusBadRequest, err)
	}
	u, err := url.Parse(env.RequestURI)
	if err != nil {
		return q.reject(http.StatusBadRequest, err)
	}
	if err := f.storeStatus(q, path.Base(u.Path), env.Content, env.Headers["x-ms-range"]); err != nil {
		return q.reject(http.StatusBadRequest, err)
	}
	return reply{status: http.StatusOK}
}
