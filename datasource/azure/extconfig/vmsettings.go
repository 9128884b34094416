package extconfig

import (
	"encoding/json"
	"fmt"
	"strings"
)

// The vmSettings document (wire-protocol.md §12.6), as much of it as the
// agent reads. The platform mixes the case of its keys
// (failoverlocation/failoverLocation, dependsOnExtension/DependsOnExtension)
// and its agent matches all of them case-insensitively: encoding/json does
// the same for struct fields (exact match first, else Unicode case folding;
// with repeated keys the last wins, as in the platform's agent), at every
// level. What it does not do is done by hand: reject a null document and
// null array elements, decode publicSettings from its JSON string, and keep
// protectedSettings out of error messages (json.RawMessage, checked here).
type vmsDocument struct {
	HostGAPluginVersion             flexString      `json:"hostGAPluginVersion"`
	SchemaVersion                   flexString      `json:"vmSettingsSchemaVersion"`
	ActivityID                      flexString      `json:"activityId"`
	CorrelationID                   flexString      `json:"correlationId"`
	InSvdSeqNo                      flexString      `json:"inSvdSeqNo"`
	ExtensionsLastModifiedTickCount flexString      `json:"extensionsLastModifiedTickCount"`
	ExtensionGoalStatesSource       *flexString     `json:"extensionGoalStatesSource"`
	OnHold                          flexBool        `json:"onHold"`
	StatusUploadBlob                *vmsStatusBlob  `json:"statusUploadBlob"`
	InVMMetadata                    json.RawMessage `json:"inVMMetadata"` // not the agent's business: never an error
	RequiredFeatures                []*vmsFeature   `json:"requiredFeatures"`
	GAFamilies                      []*vmsGAFamily  `json:"gaFamilies"`
	ExtensionGoalStates             []*vmsExtension `json:"extensionGoalStates"`
}

type vmsStatusBlob struct {
	Type  flexString  `json:"statusBlobType"`
	Value *flexString `json:"value"`
}

type vmsFeature struct {
	Name *flexString `json:"name"`
}

type vmsGAFamily struct {
	Name                      *flexString `json:"name"`
	Version                   flexString  `json:"version"`
	FromVersion               flexString  `json:"fromVersion"`
	IsVersionFromRSM          flexBool    `json:"isVersionFromRSM"`
	IsVMEnabledForRSMUpgrades flexBool    `json:"isVMEnabledForRSMUpgrades"`
	URIs                      []string    `json:"uris"`
}

type vmsExtension struct {
	Name                *string         `json:"name"`
	Version             *flexString     `json:"version"`
	State               *string         `json:"state"`
	EncodedSignature    string          `json:"encodedSignature"`
	IsMultiConfig       flexBool        `json:"isMultiConfig"`
	Location            string          `json:"location"`
	FailoverLocation    string          `json:"failoverLocation"`
	AdditionalLocations []string        `json:"additionalLocations"`
	SettingsSeqNo       *flexInt        `json:"settingsSeqNo"`
	Settings            []*vmsSettings  `json:"settings"`
	DependsOn           []*vmsDependsOn `json:"dependsOn"`
}

type vmsSettings struct {
	PublicSettings    *string         `json:"publicSettings"` // a JSON document in a string
	ProtectedSettings json.RawMessage `json:"protectedSettings"`
	Thumbprint        *flexString     `json:"protectedSettingsCertThumbprint"`
	ExtensionName     *string         `json:"extensionName"`  // multi-config
	SeqNo             *flexInt        `json:"seqNo"`          // multi-config
	ExtensionState    *string         `json:"extensionState"` // multi-config
}

type vmsDependsOn struct {
	DependencyLevel *flexInt `json:"dependencyLevel"`
	Name            *string  `json:"name"` // multi-config: the extension it applies to
}

// ParseVMSettings parses a vmSettings document from the HostGAPlugin
// (§12.6). Unlike ExtensionsConfig, any inconsistency fails the whole
// document, as it does for the platform's agent.
func ParseVMSettings(b []byte) (*ExtensionsGoalState, error) {
	gs, err := parseVMSettings(b)
	if err != nil {
		return nil, fmt.Errorf("parsing vmSettings: %w", err)
	}
	return gs, nil
}

func parseVMSettings(b []byte) (*ExtensionsGoalState, error) {
	var doc *vmsDocument
	if err := decodeJSON(b, &doc); err != nil {
		return nil, err
	}
	if doc == nil {
		return nil, fmt.Errorf("the document is null, want an object")
	}
	gs := &ExtensionsGoalState{
		Channel:       ChannelHostGAPlugin,
		Source:        SourceUnknown,
		ActivityID:    idOrZero(string(doc.ActivityID)),
		CorrelationID: idOrZero(string(doc.CorrelationID)),
		InSvdSeqNo:    string(doc.InSvdSeqNo),
		CreatedOn:     ticksToTime(string(doc.ExtensionsLastModifiedTickCount)),
		OnHold:        bool(doc.OnHold),
		// Absent, the status blob type is BlockBlob; so is any other value.
		StatusBlobType: BlockBlob,
	}
	var err error
	if doc.HostGAPluginVersion != "" {
		if gs.HostGAPluginVersion, err = ParseVersion(string(doc.HostGAPluginVersion)); err != nil {
			return nil, fmt.Errorf("hostGAPluginVersion: %w", err)
		}
	}
	if doc.SchemaVersion != "" {
		if gs.SchemaVersion, err = ParseVersion(string(doc.SchemaVersion)); err != nil {
			return nil, fmt.Errorf("vmSettingsSchemaVersion: %w", err)
		}
	}
	if doc.ExtensionGoalStatesSource != nil {
		gs.Source = Source(*doc.ExtensionGoalStatesSource)
	}
	if blob := doc.StatusUploadBlob; blob != nil {
		if blob.Value == nil {
			return nil, fmt.Errorf("statusUploadBlob: missing value")
		}
		gs.StatusUploadBlob = strings.TrimSpace(string(*blob.Value))
		gs.StatusBlobType = blobType(string(blob.Type))
	}
	var meta struct {
		Location flexString `json:"location"`
	}
	if json.Unmarshal(doc.InVMMetadata, &meta) == nil {
		gs.Location = string(meta.Location)
	}
	for i, f := range doc.RequiredFeatures {
		if f == nil || f.Name == nil {
			return nil, fmt.Errorf("requiredFeatures[%d]: A required feature is missing the 'name' property", i)
		}
		gs.RequiredFeatures = append(gs.RequiredFeatures, string(*f.Name))
	}
	for i, f := range doc.GAFamilies {
		if f == nil || f.Name == nil {
			return nil, fmt.Errorf("gaFamilies[%d]: missing name", i)
		}
		gs.GAFamilies = append(gs.GAFamilies, GAFamily{
			Name:                      string(*f.Name),
			Version:                   string(f.Version),
			FromVersion:               string(f.FromVersion),
			IsVersionFromRSM:          bool(f.IsVersionFromRSM),
			IsVMEnabledForRSMUpgrades: bool(f.IsVMEnabledForRSMUpgrades),
			URIs:                      f.URIs,
		})
	}
	for i, e := range doc.ExtensionGoalStates {
		h, err := vmsHandler(e)
		if err != nil {
			return nil, fmt.Errorf("extensionGoalStates[%d]: %w", i, err)
		}
		gs.Handlers = append(gs.Handlers, h)
	}
	return gs, nil
}

// vmsHandler builds the handler of one element of extensionGoalStates.
func vmsHandler(e *vmsExtension) (Handler, error) {
	switch {
	case e == nil:
		return Handler{}, fmt.Errorf("got null, want an object")
	case e.Name == nil:
		return Handler{}, fmt.Errorf("missing name")
	case e.Version == nil:
		return Handler{}, fmt.Errorf("missing version (extension: %s)", *e.Name)
	case e.State == nil || !State(*e.State).handlerState():
		state := "null"
		if e.State != nil {
			state = *e.State
		}
		return Handler{}, fmt.Errorf("Invalid extension state: %s (%s)", state, *e.Name)
	}
	h := Handler{
		Name:                *e.Name,
		Version:             string(*e.Version),
		State:               State(*e.State),
		EncodedSignature:    e.EncodedSignature,
		MultiConfig:         bool(e.IsMultiConfig),
		Location:            e.Location,
		FailoverLocation:    e.FailoverLocation,
		AdditionalLocations: e.AdditionalLocations,
	}
	if !h.MultiConfig && len(e.Settings) > 1 {
		return Handler{}, fmt.Errorf("Single-config extension includes multiple settings (extension: %s)", h.Name)
	}
	for i, raw := range e.Settings {
		s, err := vmsSettingsOf(&h, e, raw)
		if err != nil {
			return Handler{}, fmt.Errorf("settings[%d]: %w", i, err)
		}
		h.Settings = append(h.Settings, s)
	}
	if e.DependsOn != nil {
		if err := vmsDependencies(&h, e.DependsOn); err != nil {
			return Handler{}, fmt.Errorf("dependsOn: %w", err)
		}
	}
	return h, nil
}

// vmsSettingsOf builds the settings of handler h from one element of its
// settings.
func vmsSettingsOf(h *Handler, e *vmsExtension, raw *vmsSettings) (Settings, error) {
	if raw == nil {
		return Settings{}, fmt.Errorf("got null, want an object (extension: %s)", h.Name)
	}
	var s Settings
	if raw.PublicSettings != nil {
		var public json.RawMessage
		if err := json.Unmarshal([]byte(*raw.PublicSettings), &public); err != nil {
			return Settings{}, fmt.Errorf("publicSettings: the string is not a JSON document (extension: %s): %w", h.Name, jsonError(err))
		}
		if jsonKind(public) != "null" {
			s.PublicSettings = compactJSON(public)
		}
	}
	switch jsonKind(raw.ProtectedSettings) {
	case "nothing", "null":
	case "string":
		var protected string
		if err := json.Unmarshal(raw.ProtectedSettings, &protected); err != nil {
			return Settings{}, fmt.Errorf("protectedSettings: %w", jsonError(err))
		}
		if raw.Thumbprint == nil {
			return Settings{}, fmt.Errorf("The certificate thumbprint for protected settings is missing (extension: %s)", h.Name)
		}
		s.ProtectedSettings = NewSecret(protected)
	default:
		return Settings{}, fmt.Errorf("protectedSettings: got %s, want a string (extension: %s)", got(raw.ProtectedSettings), h.Name)
	}
	if raw.Thumbprint != nil {
		s.ProtectedSettingsCertThumbprint = string(*raw.Thumbprint)
	}
	if !h.MultiConfig {
		if e.SettingsSeqNo == nil {
			return Settings{}, fmt.Errorf("missing settingsSeqNo (extension: %s)", h.Name)
		}
		s.Name, s.SeqNo, s.State = h.Name, int(*e.SettingsSeqNo), h.State
		return s, nil
	}
	switch {
	case raw.ExtensionName == nil:
		return Settings{}, fmt.Errorf("missing extensionName (extension: %s)", h.Name)
	case raw.SeqNo == nil:
		return Settings{}, fmt.Errorf("missing seqNo (extension: %s)", h.Name)
	case raw.ExtensionState == nil:
		return Settings{}, fmt.Errorf("missing extensionState (extension: %s)", h.Name)
	}
	s.Name, s.SeqNo, s.State = *raw.ExtensionName, int(*raw.SeqNo), State(strings.ToLower(*raw.ExtensionState))
	return s, nil
}

// vmsDependencies sets the dependency levels of h's settings from its
// dependsOn array.
func vmsDependencies(h *Handler, dependsOn []*vmsDependsOn) error {
	for i, d := range dependsOn {
		if d == nil {
			return fmt.Errorf("element %d is null, want an object (extension: %s)", i, h.Name)
		}
	}
	if !h.MultiConfig {
		switch {
		case len(dependsOn) > 1:
			return fmt.Errorf("dependsOn should be an array with exactly one item for single-config extensions (%s) (got %d)", h.Name, len(dependsOn))
		case len(dependsOn) == 0:
			return nil // level 0
		case dependsOn[0].DependencyLevel == nil:
			return fmt.Errorf("missing dependencyLevel (extension: %s)", h.Name)
		}
		// Without settings the level has nothing to apply to.
		if len(h.Settings) > 0 {
			h.Settings[0].DependencyLevel = int(*dependsOn[0].DependencyLevel)
		}
		return nil
	}
	for i, d := range dependsOn {
		name := "null"
		if d.Name != nil {
			name = *d.Name
		}
		j := -1
		for k := range h.Settings {
			if d.Name != nil && h.Settings[k].Name == *d.Name {
				j = k
			}
		}
		switch {
		case j < 0:
			var names []string
			for _, s := range h.Settings {
				names = append(names, s.Name)
			}
			return fmt.Errorf("[%d]: Dependency '%s' does not correspond to any of the settings in the extension %s (settings: %s)",
				i, name, h.Name, strings.Join(names, ", "))
		case d.DependencyLevel == nil:
			return fmt.Errorf("[%d]: missing dependencyLevel (extension: %s)", i, h.Name)
		}
		h.Settings[j].DependencyLevel = int(*d.DependencyLevel)
	}
	return nil
}
