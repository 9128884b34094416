package fabric

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/xml"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// state is everything the fabric serves for one goal state: the scenario
// and the documents made from it, ready to send. It is immutable; a reload
// replaces it whole.
type state struct {
	scenario *Scenario
	counter  int // the fabric's incarnation number

	// The goal state as served (from raw/goalstate.xml when replayed).
	incarnation string
	containerID string
	instanceID  string

	// The documents, ready to send.
	versions, goalState, hostingEnv, sharedConfig, extensionsConfig, fullConfig []byte

	rawCertificates []byte // raw/certificates.xml, rewritten; nil: built per request
	// builtCertificates memoizes the documents built for a transport
	// certificate and cipher (key: header + "\x00" + cipher): building one
	// costs milliseconds of key derivation, which would otherwise be billed
	// to every client's fetch.
	builtCertificates sync.Map
	vmSettings        []byte // raw/vmsettings.json, rewritten; nil: the HostGAPlugin answers 404
	vmSettingsETag    string
	imds              any               // instance metadata, decoded
	blobs             map[string][]byte // by name: raw/blobs (text ones rewritten), packages, manifests
	// storageBlocked makes direct GETs of manifests and packages fail,
	// as on a VM without outbound storage access.
	storageBlocked bool
}

// buildState makes the documents of scenario s as goal state number
// counter, served at addrs.
func buildState(s *Scenario, counter int, addrs Addrs) (*state, error) {
	rw, err := newRewriter(addrs)
	if err != nil {
		return nil, err
	}
	st := &state{
		scenario:    s,
		counter:     counter,
		incarnation: strconv.Itoa(counter),
		containerID: s.Settings.ContainerID,
		instanceID:  s.Settings.RoleInstanceID,
		blobs:       map[string][]byte{},
	}
	raw := func(name string) []byte {
		if b, ok := s.Raw[name]; ok {
			return rw.rewrite(b)
		}
		return nil
	}
	if gs := raw(RawGoalState); gs != nil {
		ids, err := parseGoalStateIDs(gs)
		if err != nil {
			return nil, fmt.Errorf("scenario %s: raw/%s: %w", s.Dir, RawGoalState, err)
		}
		st.goalState, st.incarnation, st.containerID, st.instanceID = gs, ids.Incarnation, ids.ContainerID, ids.InstanceID
	}
	st.rawCertificates = raw(RawCertificates)
	d := newDocData(s.Settings, counter, st.incarnation, addrs.Wireserver, len(s.Certificates) > 0 || st.rawCertificates != nil)
	if s.Extensions != nil {
		if err := st.addExtensions(s, &d, addrs.Wireserver); err != nil {
			return nil, fmt.Errorf("scenario %s: %s: %w", s.Dir, ExtensionsFile, err)
		}
	}
	for _, doc := range []struct {
		dst       *[]byte
		raw, name string
	}{
		{&st.versions, RawVersions, "versions"},
		{&st.goalState, RawGoalState, "goalstate"},
		{&st.hostingEnv, RawHostingEnv, "hostingenv"},
		{&st.sharedConfig, RawSharedConfig, "sharedconfig"},
		{&st.extensionsConfig, RawExtensionsConfig, "extensionsconfig"},
		{&st.fullConfig, "", "fullconfig"},
	} {
		if *doc.dst = raw(doc.raw); *doc.dst == nil {
			if *doc.dst, err = render(doc.name, d); err != nil {
				return nil, err
			}
		}
	}
	if vms := raw(RawVMSettings); vms != nil {
		st.vmSettings = vms
	} else if s.Extensions != nil && s.Extensions.FastTrack {
		if st.vmSettings, err = d.vmSettings(s.Extensions.OnHold); err != nil {
			return nil, fmt.Errorf("scenario %s: vmSettings: %w", s.Dir, err)
		}
	}
	if st.vmSettings != nil {
		// Like the HostGAPlugin's, the ETag is a bare number: agents use it
		// in file names.
		sum := sha256.Sum256(st.vmSettings)
		st.vmSettingsETag = strconv.FormatUint(binary.BigEndian.Uint64(sum[:8]), 10)
	}
	imds := s.IMDS
	if imds == nil {
		if imds, err = synthesizeIMDS(s.Env, s.Settings); err != nil {
			return nil, err
		}
	}
	if st.imds, err = decodeIMDS(imds); err != nil {
		return nil, fmt.Errorf("scenario %s: imds.json: %w", s.Dir, err)
	}
	for name, b := range s.Blobs {
		if isText(b) {
			b = rw.rewrite(b)
		}
		st.blobs[name] = b
	}
	return st, nil
}

// addExtensions adds the handlers of extensions.yaml to the documents d
// and serves their packages, manifests and, when on hold, the
// InVMArtifactsProfile. Captured blobs of the same names win.
func (st *state) addExtensions(s *Scenario, d *docData, wireserver string) error {
	ext := s.Extensions
	if err := d.addExtensions(ext, wireserver); err != nil {
		return err
	}
	st.storageBlocked = !ext.StorageReachableOrDefault()
	for name, b := range s.Packages {
		st.blobs[name] = b
	}
	type manifestPackage struct{ Version, URL string }
	for _, p := range ext.Plugins {
		var packages []manifestPackage
		for _, v := range s.packageVersions[p.Name] {
			packages = append(packages, manifestPackage{v, wireserver + blobPrefix + url.PathEscape(packageBlob(p.Name, v))})
		}
		doc, err := render("manifest", packages)
		if err != nil {
			return err
		}
		st.blobs[manifestBlob(p.Name)] = doc
	}
	if ext.OnHold {
		st.blobs[artifactsProfileBlob(d.VMID)] = []byte(`{"onHold": true}` + "\n")
	}
	return nil
}

// isText reports whether a blob is a text document whose addresses may be
// rewritten (manifests, profiles) rather than a binary package.
func isText(b []byte) bool {
	return utf8.Valid(b) && !bytes.ContainsRune(b, 0)
}

type goalStateIDs struct {
	Incarnation string `xml:"Incarnation"`
	ContainerID string `xml:"Container>ContainerId"`
	InstanceID  string `xml:"Container>RoleInstanceList>RoleInstance>InstanceId"`
}

// parseGoalStateIDs reads what identifies a goal state document.
func parseGoalStateIDs(b []byte) (goalStateIDs, error) {
	var ids goalStateIDs
	if err := xml.Unmarshal(b, &ids); err != nil {
		return ids, fmt.Errorf("malformed goal state: %w", err)
	}
	ids.Incarnation = strings.TrimSpace(ids.Incarnation)
	ids.ContainerID = strings.TrimSpace(ids.ContainerID)
	ids.InstanceID = strings.TrimSpace(ids.InstanceID)
	if ids.Incarnation == "" || ids.ContainerID == "" || ids.InstanceID == "" {
		return ids, fmt.Errorf("goal state lacks Incarnation, Container/ContainerId or its RoleInstance/InstanceId")
	}
	return ids, nil
}
