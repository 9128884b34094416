package fabric

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
)

// HostGAPluginBuild is the HostGAPlugin version generated vmSettings
// claim: the first to carry encodedSignature (wire-protocol.md §12.6).
const HostGAPluginBuild = "1.0.8.159"

// pluginDoc is what ExtensionsConfig says of one handler.
type pluginDoc struct {
	Name, Version, State       string
	Location, FailoverLocation string
	Settings                   *runtimeSettingsDoc  // single-config; nil without settings
	Extensions                 []runtimeSettingsDoc // multi-config
	DependsOn                  []dependsOnDoc
}

// runtimeSettingsDoc is one RuntimeSettings or ExtensionRuntimeSettings.
type runtimeSettingsDoc struct {
	Name  string // multi-config only
	SeqNo int
	State string // multi-config only
	JSON  string

	src *ExtensionSettings // what JSON was made from
}

type dependsOnDoc struct {
	Level int
	Name  string // the extension it applies to, multi-config only
}

// handlerSettingsJSON is one element of runtimeSettings (§9, §17.4).
type handlerSettingsJSON struct {
	Thumbprint string          `json:"protectedSettingsCertThumbprint,omitempty"`
	Protected  string          `json:"protectedSettings,omitempty"`
	Public     json.RawMessage `json:"publicSettings,omitempty"`
}

// manifestURL is where the fabric serves a handler's manifest.
func manifestURL(wireserver, name string) string {
	return wireserver + blobPrefix + url.PathEscape(manifestBlob(name))
}

// artifactsProfileBlob is the blob name of the InVMArtifactsProfile.
func artifactsProfileBlob(vmID string) string { return vmID + ".vmSettings" }

// addExtensions adds the scenario's extensions to the documents.
func (d *docData) addExtensions(ext *Extensions, wireserver string) error {
	d.StatusBlobType = ext.StatusBlobType
	d.RequiredFeatures = ext.RequiredFeatures
	if ext.OnHold {
		d.ArtifactsProfileURL = wireserver + blobPrefix + "status/" + url.PathEscape(artifactsProfileBlob(d.VMID)) +
			"?sv=2018-03-28&sr=b&sk=system-1&sig=azinit-fabric&se=9999-01-01T00%3a00%3a00Z&sp=r"
	}
	for i := range ext.Plugins {
		p := &ext.Plugins[i]
		loc := manifestURL(wireserver, p.Name)
		doc := pluginDoc{Name: p.Name, Version: p.Version, State: p.State, Location: loc,
			// The same blob: agents that try both find it either way.
			FailoverLocation: loc + "?failover=true"}
		if p.Extensions == nil {
			if p.DependsOn != nil {
				doc.DependsOn = []dependsOnDoc{{Level: *p.DependsOn}}
			}
			if p.hasSettings() {
				js, err := runtimeSettings(&p.ExtensionSettings)
				if err != nil {
					return fmt.Errorf("plugin %s: %w", p.Name, err)
				}
				doc.Settings = &runtimeSettingsDoc{SeqNo: p.seqNo(), JSON: js, src: &p.ExtensionSettings}
			}
		}
		for j := range p.Extensions {
			x := &p.Extensions[j]
			if x.DependsOn != nil {
				doc.DependsOn = append(doc.DependsOn, dependsOnDoc{Level: *x.DependsOn, Name: x.Name})
			}
			js, err := runtimeSettings(&x.ExtensionSettings)
			if err != nil {
				return fmt.Errorf("plugin %s: extension %s: %w", p.Name, x.Name, err)
			}
			doc.Extensions = append(doc.Extensions, runtimeSettingsDoc{Name: x.Name, SeqNo: x.seqNo(), State: x.State, JSON: js, src: &x.ExtensionSettings})
		}
		d.Plugins = append(d.Plugins, doc)
	}
	return nil
}

// runtimeSettings is the RuntimeSettings JSON of s.
func runtimeSettings(s *ExtensionSettings) (string, error) {
	type item struct {
		HandlerSettings handlerSettingsJSON `json:"handlerSettings"`
	}
	b, err := marshalJSON(struct {
		RuntimeSettings []item `json:"runtimeSettings"`
	}{[]item{{handlerSettingsJSON{Thumbprint: s.thumbprint, Protected: s.sealed, Public: s.publicJSON}}}})
	return string(b), err
}

// The vmSettings document (wire-protocol.md §12.6).
type (
	vmSettingsJSON struct {
		HostGAPluginVersion             string                  `json:"hostGAPluginVersion"`
		SchemaVersion                   string                  `json:"vmSettingsSchemaVersion"`
		ActivityID                      string                  `json:"activityId"`
		CorrelationID                   string                  `json:"correlationId"`
		InSvdSeqNo                      any                     `json:"inSvdSeqNo"`
		ExtensionsLastModifiedTickCount int64                   `json:"extensionsLastModifiedTickCount"`
		ExtensionGoalStatesSource       string                  `json:"extensionGoalStatesSource"`
		OnHold                          bool                    `json:"onHold"`
		StatusUploadBlob                vmsStatusBlobJSON       `json:"statusUploadBlob"`
		InVMMetadata                    vmsMetadataJSON         `json:"inVMMetadata"`
		RequiredFeatures                []vmsFeatureJSON        `json:"requiredFeatures"`
		GAFamilies                      []struct{}              `json:"gaFamilies"`
		ExtensionGoalStates             []vmsExtensionGoalState `json:"extensionGoalStates"`
	}
	vmsStatusBlobJSON struct {
		Type  string `json:"statusBlobType"`
		Value string `json:"value"`
	}
	vmsMetadataJSON struct {
		SubscriptionID    string `json:"subscriptionId"`
		ResourceGroupName string `json:"resourceGroupName"`
		VMName            string `json:"vmName"`
		Location          string `json:"location"`
		VMID              string `json:"vmId"`
		VMSize            string `json:"vmSize"`
		OSType            string `json:"osType"`
	}
	vmsFeatureJSON struct {
		Name string `json:"name"`
	}
	vmsExtensionGoalState struct {
		Name             string            `json:"name"`
		Version          string            `json:"version"`
		Location         string            `json:"location"`
		FailoverLocation string            `json:"failoverLocation"`
		State            string            `json:"state"`
		AutoUpgrade      bool              `json:"autoUpgrade"`
		RunAsStartupTask bool              `json:"runAsStartupTask"`
		IsJSON           bool              `json:"isJson"`
		UseExactVersion  bool              `json:"useExactVersion"`
		SettingsSeqNo    int               `json:"settingsSeqNo"`
		IsMultiConfig    bool              `json:"isMultiConfig"`
		Settings         []vmsSettingsJSON `json:"settings"`
		DependsOn        []vmsDependsOn    `json:"dependsOn,omitempty"`
	}
	vmsSettingsJSON struct {
		Thumbprint     string  `json:"protectedSettingsCertThumbprint,omitempty"`
		Protected      string  `json:"protectedSettings,omitempty"`
		Public         *string `json:"publicSettings,omitempty"` // a JSON document in a string
		SeqNo          *int    `json:"seqNo,omitempty"`
		ExtensionName  string  `json:"extensionName,omitempty"`
		ExtensionState string  `json:"extensionState,omitempty"`
	}
	vmsDependsOn struct {
		DependencyLevel    int        `json:"dependencyLevel"`
		Name               string     `json:"name,omitempty"`
		DependsOnExtension []struct{} `json:"dependsOnExtension"`
	}
)

// vmSettings renders the handlers of d as Fast Track vmSettings.
func (d *docData) vmSettings(onHold bool) ([]byte, error) {
	var seqNo any = d.Incarnation
	if n, err := strconv.Atoi(d.Incarnation); err == nil {
		seqNo = n
	}
	doc := vmSettingsJSON{
		HostGAPluginVersion:             HostGAPluginBuild,
		SchemaVersion:                   "0.0",
		ActivityID:                      d.ActivityID,
		CorrelationID:                   d.CorrelationID,
		InSvdSeqNo:                      seqNo,
		ExtensionsLastModifiedTickCount: d.CreatedOnTicks,
		ExtensionGoalStatesSource:       "FastTrack",
		OnHold:                          onHold,
		StatusUploadBlob:                vmsStatusBlobJSON{Type: d.StatusBlobType, Value: d.StatusBlobURL},
		InVMMetadata: vmsMetadataJSON{SubscriptionID: d.SubscriptionID, ResourceGroupName: d.ResourceGroup,
			VMName: d.VMName, Location: d.Location, VMID: d.VMID, VMSize: d.VMSize, OSType: "Linux"},
		RequiredFeatures:    []vmsFeatureJSON{},
		GAFamilies:          []struct{}{},
		ExtensionGoalStates: []vmsExtensionGoalState{},
	}
	for _, f := range d.RequiredFeatures {
		doc.RequiredFeatures = append(doc.RequiredFeatures, vmsFeatureJSON{Name: f})
	}
	for _, p := range d.Plugins {
		g := vmsExtensionGoalState{Name: p.Name, Version: p.Version, Location: p.Location, FailoverLocation: p.FailoverLocation,
			State: p.State, IsJSON: true, UseExactVersion: true, IsMultiConfig: p.Extensions != nil,
			Settings: []vmsSettingsJSON{}}
		if p.Settings != nil {
			g.SettingsSeqNo = p.Settings.SeqNo
			g.Settings = append(g.Settings, vmsSettings(p.Settings.src))
		}
		for _, x := range p.Extensions {
			s := vmsSettings(x.src)
			seq := x.SeqNo
			s.SeqNo, s.ExtensionName, s.ExtensionState = &seq, x.Name, x.State
			g.Settings = append(g.Settings, s)
		}
		for _, dep := range p.DependsOn {
			g.DependsOn = append(g.DependsOn, vmsDependsOn{DependencyLevel: dep.Level, Name: dep.Name, DependsOnExtension: []struct{}{}})
		}
		doc.ExtensionGoalStates = append(doc.ExtensionGoalStates, g)
	}
	b, err := marshalJSON(doc)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return nil, err
	}
	return append(out.Bytes(), '\n'), nil
}

// vmsSettings are s as a vmSettings settings element, whose
// publicSettings are a JSON document in a string.
func vmsSettings(s *ExtensionSettings) vmsSettingsJSON {
	v := vmsSettingsJSON{Thumbprint: s.thumbprint, Protected: s.sealed}
	if s.publicJSON != nil {
		public := string(s.publicJSON)
		v.Public = &public
	}
	return v
}
