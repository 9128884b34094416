package extconfig

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// The ExtensionsConfig document (wire-protocol.md §9), as much of it as the
// agent reads. Elements are matched by local name, so namespaces do not
// matter.
type ecDocument struct {
	XMLName          xml.Name           `xml:"Extensions"`
	GAFamilies       []ecGAFamily       `xml:"GuestAgentExtension>GAFamilies>GAFamily"`
	Location         string             `xml:"GuestAgentExtension>Location"`
	RequiredFeatures []ecNamed          `xml:"RequiredFeatures>RequiredFeature"`
	StatusUploadBlob []ecStatusBlob     `xml:"StatusUploadBlob"`
	Plugins          []ecPlugin         `xml:"Plugins>Plugin"`
	PluginSettings   []ecPluginSettings `xml:"PluginSettings>Plugin"`
	ArtifactsProfile []string           `xml:"InVMArtifactsProfileBlob"`
	Metadata         []ecMetadata       `xml:"InVMGoalStateMetaData"`
}

type ecGAFamily struct {
	Name                      string   `xml:"Name"`
	Version                   string   `xml:"Version"`
	FromVersion               string   `xml:"FromVersion"`
	IsVersionFromRSM          string   `xml:"IsVersionFromRSM"`
	IsVMEnabledForRSMUpgrades string   `xml:"IsVMEnabledForRSMUpgrades"`
	URIs                      []string `xml:"Uris>Uri"`
}

type ecNamed struct {
	Name string `xml:"Name"`
}

type ecStatusBlob struct {
	Type string `xml:"statusBlobType,attr"`
	URL  string `xml:",chardata"`
}

type ecPlugin struct {
	Name                string   `xml:"name,attr"`
	Version             string   `xml:"version,attr"`
	State               string   `xml:"state,attr"`
	Location            string   `xml:"location,attr"`
	FailoverLocation    string   `xml:"failoverlocation,attr"`
	EncodedSignature    string   `xml:"encodedSignature,attr"`
	AdditionalLocations []string `xml:"additionalLocations>additionalLocation"`
}

type ecPluginSettings struct {
	Name                     string              `xml:"name,attr"`
	Version                  string              `xml:"version,attr"`
	DependsOn                []ecDependsOn       `xml:"DependsOn"`
	RuntimeSettings          []ecRuntimeSettings `xml:"RuntimeSettings"`
	ExtensionRuntimeSettings []ecRuntimeSettings `xml:"ExtensionRuntimeSettings"`
}

type ecDependsOn struct {
	Level string `xml:"dependencyLevel,attr"`
	Name  string `xml:"name,attr"` // the extension it applies to (multi-config)
}

type ecRuntimeSettings struct {
	SeqNo string `xml:"seqNo,attr"`
	Name  string `xml:"name,attr"`  // ExtensionRuntimeSettings only
	State string `xml:"state,attr"` // ExtensionRuntimeSettings only
	JSON  string `xml:",chardata"`
}

type ecMetadata struct {
	InSvdSeqNo     string `xml:"inSvdSeqNo,attr"`
	CreatedOnTicks string `xml:"createdOnTicks,attr"`
	ActivityID     string `xml:"activityId,attr"`
	CorrelationID  string `xml:"correlationId,attr"`
}

// ParseExtensionsConfig parses an ExtensionsConfig document (§9). A
// handler whose configuration is inconsistent is returned with Invalid
// set, as the platform's agent does, rather than failing the document.
func ParseExtensionsConfig(b []byte) (*ExtensionsGoalState, error) {
	var doc ecDocument
	if err := xml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("parsing ExtensionsConfig: %w", xmlError(err, "Extensions"))
	}
	gs := &ExtensionsGoalState{
		Channel:        ChannelWireServer,
		Source:         SourceFabric,
		Location:       strings.TrimSpace(doc.Location),
		ActivityID:     ZeroGUID,
		CorrelationID:  ZeroGUID,
		StatusBlobType: BlockBlob,
	}
	for _, f := range doc.GAFamilies {
		gs.GAFamilies = append(gs.GAFamilies, GAFamily{
			Name:                      strings.TrimSpace(f.Name),
			Version:                   strings.TrimSpace(f.Version),
			FromVersion:               strings.TrimSpace(f.FromVersion),
			IsVersionFromRSM:          isTrue(f.IsVersionFromRSM),
			IsVMEnabledForRSMUpgrades: isTrue(f.IsVMEnabledForRSMUpgrades),
			URIs:                      trimAll(f.URIs),
		})
	}
	for _, f := range doc.RequiredFeatures {
		// A feature without a name is kept: it is unsupported, so the
		// goal state fails as it should.
		gs.RequiredFeatures = append(gs.RequiredFeatures, strings.TrimSpace(f.Name))
	}
	if len(doc.StatusUploadBlob) > 0 {
		gs.StatusUploadBlob = strings.TrimSpace(doc.StatusUploadBlob[0].URL)
		gs.StatusBlobType = blobType(doc.StatusUploadBlob[0].Type)
	}
	if len(doc.ArtifactsProfile) > 0 {
		gs.InVMArtifactsProfileBlob = strings.TrimSpace(doc.ArtifactsProfile[0])
	}
	if len(doc.Metadata) > 0 {
		m := doc.Metadata[0]
		gs.InSvdSeqNo = m.InSvdSeqNo
		gs.CreatedOn = ticksToTime(m.CreatedOnTicks)
		gs.ActivityID = idOrZero(m.ActivityID)
		gs.CorrelationID = idOrZero(m.CorrelationID)
	}
	for _, p := range doc.Plugins {
		gs.Handlers = append(gs.Handlers, ecHandler(p, doc.PluginSettings))
	}
	return gs, nil
}

// ecHandler builds the handler of Plugin p with its settings from all.
func ecHandler(p ecPlugin, all []ecPluginSettings) Handler {
	h := Handler{Name: p.Name, Version: p.Version, State: State(p.State)}
	if p.State == "" {
		h.Invalid = "Received empty Extensions.Plugins.Plugin.state, failing Handler"
		return h
	}
	h.Location = strings.TrimSpace(p.Location)
	h.FailoverLocation = strings.TrimSpace(p.FailoverLocation)
	h.AdditionalLocations = trimAll(p.AdditionalLocations)
	h.EncodedSignature = strings.TrimSpace(p.EncodedSignature)
	err := ecSettings(&h, all)
	if err == nil && !h.State.handlerState() {
		err = fmt.Errorf("Unknown ext handler state:%s", h.State)
	}
	if err != nil {
		h.Invalid = err.Error()
	}
	return h
}

// ecSettings adds to h the settings of the PluginSettings/Plugin matching
// it, stopping at the first inconsistency (what was added stays, as with
// the platform's agent).
func ecSettings(h *Handler, all []ecPluginSettings) error {
	var matching []ecPluginSettings
	var versions []string
	for _, ps := range all {
		if strings.EqualFold(ps.Name, h.Name) {
			matching = append(matching, ps)
			if !slices.Contains(versions, ps.Version) {
				versions = append(versions, ps.Version)
			}
		}
	}
	switch {
	case len(matching) == 0:
		return nil
	case len(versions) > 1 || versions[0] != h.Version:
		return fmt.Errorf("Extension PluginSettings Version Mismatch! Expected PluginSettings version: %s for Extension: %s but found versions: (%s)",
			h.Version, h.Name, strings.Join(versions, ", "))
	case len(matching) > 1:
		return fmt.Errorf("Multiple plugin settings found for the same extension: %s and version: %s (Expected: 1; Available: %d)",
			h.Name, h.Version, len(matching))
	}
	ps := matching[0]
	single, multi := ps.RuntimeSettings, ps.ExtensionRuntimeSettings
	switch {
	case len(single) > 0 && len(multi) > 0:
		return fmt.Errorf("Both RuntimeSettings and ExtensionRuntimeSettings found for the same extension: %s and version: %s", h.Name, h.Version)
	case len(single) > 1:
		return fmt.Errorf("Multiple RuntimeSettings found for the same extension: %s and version: %s (Expected: 1; Available: %d)",
			h.Name, h.Version, len(single))
	case len(single) == 1:
		if len(ps.DependsOn) > 1 {
			return fmt.Errorf("Extension Handler can only have a single dependsOn node for Single config extensions. Found: %d", len(ps.DependsOn))
		}
		level := 0
		if len(ps.DependsOn) == 1 {
			level = dependencyLevel(ps.DependsOn[0].Level)
		}
		return h.addSettings(single[0], h.Name, StateEnabled, level)
	case len(multi) > 0:
		levels := make(map[string]int)
		for _, d := range ps.DependsOn {
			if d.Name == "" {
				return errors.New("No Name not specified for DependsOn object in ExtensionRuntimeSettings for MultiConfig!")
			}
			levels[d.Name] = dependencyLevel(d.Level)
		}
		h.MultiConfig = true
		for _, rs := range multi {
			if rs.Name == "" {
				return errors.New("Extension Name not specified for ExtensionRuntimeSettings for MultiConfig!")
			}
			state := StateEnabled
			if rs.State != "" {
				state = State(strings.ToLower(rs.State))
			}
			if err := h.addSettings(rs, rs.Name, state, levels[rs.Name]); err != nil {
				return err
			}
		}
	}
	return nil
}

// dependencyLevel reads DependsOn@dependencyLevel; 0 when it is not an
// integer.
func dependencyLevel(s string) int {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0
	}
	return n
}

// addSettings adds the settings of one RuntimeSettings or
// ExtensionRuntimeSettings element for the extension name.
func (h *Handler) addSettings(rs ecRuntimeSettings, name string, state State, level int) error {
	if rs.SeqNo == "" {
		return fmt.Errorf("SeqNo not specified for the Extension: %s", name)
	}
	seqNo, err := strconv.Atoi(strings.TrimSpace(rs.SeqNo))
	if err != nil {
		return fmt.Errorf("SeqNo is not an integer for the Extension: %s", name)
	}
	base := Settings{Name: name, SeqNo: seqNo, State: state, DependencyLevel: level}
	if !json.Valid([]byte(rs.JSON)) {
		// Invalid (or empty) JSON: keep the extension, without settings,
		// so that its status can still be reported.
		h.Settings = append(h.Settings, base)
		return nil
	}
	doc, err := asObject(json.RawMessage(rs.JSON), "the settings")
	if err != nil {
		return fmt.Errorf("Invalid runtime settings for the Extension: %s: %v", name, err)
	}
	var list []json.RawMessage
	if jsonKind(doc["runtimeSettings"]) != "array" {
		return fmt.Errorf("Invalid runtime settings for the Extension: %s: runtimeSettings: got %s, want an array", name, got(doc["runtimeSettings"]))
	}
	if err := json.Unmarshal(doc["runtimeSettings"], &list); err != nil {
		return fmt.Errorf("Invalid runtime settings for the Extension: %s: runtimeSettings: %v", name, jsonError(err))
	}
	for i, item := range list {
		o, err := asObject(item, fmt.Sprintf("runtimeSettings[%d]", i))
		if err == nil {
			o, err = asObject(o["handlerSettings"], fmt.Sprintf("runtimeSettings[%d].handlerSettings", i))
		}
		if err != nil {
			return fmt.Errorf("Invalid runtime settings for the Extension: %s: %v", name, err)
		}
		s, err := handlerSettings(base, o, fmt.Sprintf("runtimeSettings[%d].handlerSettings", i))
		if err != nil {
			return fmt.Errorf("Invalid runtime settings for the Extension: %s: %v", name, err)
		}
		h.Settings = append(h.Settings, s)
	}
	return nil
}

// handlerSettings fills base from a handlerSettings object: publicSettings
// any JSON value, the thumbprint and protectedSettings strings.
func handlerSettings(base Settings, o object, path string) (Settings, error) {
	s := base
	if !o.isNull("publicSettings") {
		s.PublicSettings = compactJSON(o["publicSettings"])
	}
	for _, key := range []string{"protectedSettingsCertThumbprint", "protectedSettings"} {
		if !o.isNull(key) && jsonKind(o[key]) != "string" {
			return Settings{}, fmt.Errorf("%s.%s: got %s, want a string", path, key, got(o[key]))
		}
	}
	s.ProtectedSettingsCertThumbprint = o.text("protectedSettingsCertThumbprint")
	s.ProtectedSettings = NewSecret(o.text("protectedSettings"))
	return s, nil
}

// compactJSON is the valid JSON value raw without insignificant space.
func compactJSON(raw json.RawMessage) json.RawMessage {
	var buf bytes.Buffer
	if json.Compact(&buf, raw) != nil {
		return raw
	}
	return buf.Bytes()
}

func isTrue(s string) bool { return strings.EqualFold(strings.TrimSpace(s), "true") }

func trimAll(ss []string) []string {
	var out []string
	for _, s := range ss {
		out = append(out, strings.TrimSpace(s))
	}
	return out
}

// xmlError words an encoding/xml error with its line, dropping the
// fragments of the document some messages quote (element names, entities):
// inside text they may be part of a secret.
func xmlError(err error, root string) error {
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("no <%s> element", root)
	}
	var syntax *xml.SyntaxError
	if !errors.As(err, &syntax) {
		return err
	}
	msg := syntax.Msg
	if i := strings.IndexAny(msg, "<&:"); i >= 0 {
		msg = strings.TrimSpace(msg[:i])
	}
	if msg == "element" {
		msg = "mismatched end element"
	}
	return fmt.Errorf("XML syntax error on line %d: %s", syntax.Line, msg)
}
