package fabric

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"net/url"
	"strings"
	"text/template"
	"time"
)

// ProtocolVersion is the wireserver protocol version agents require.
const ProtocolVersion = "2012-11-30"

// privateIP is the fake VM's address in SharedConfig and IMDS.
const privateIP = "10.0.0.4"

// docData is what the generated wireserver documents are made of.
type docData struct {
	Settings
	Incarnation     string
	HostingEnvURL   string
	SharedConfigURL string
	ExtensionsURL   string
	FullConfigURL   string
	CertificatesURL string // empty when the goal state has no certificates
	ConfigName      string
	DeploymentID    string
	RoleName        string
	PrivateIP       string
	StatusBlobURL   string
	StatusBlobType  string // BlockBlob or PageBlob
	CreatedOnTicks  int64
	ActivityID      string
	CorrelationID   string

	// From extensions.yaml (extdocs.go); none without one.
	RequiredFeatures    []string
	Plugins             []pluginDoc
	ArtifactsProfileURL string // set when the extensions are on hold
}

// newDocData lays out the documents of goal state number counter, whose
// incarnation is spelled incarnation.
func newDocData(s Settings, counter int, incarnation, wireserver string, withCertificates bool) docData {
	base := fmt.Sprintf("%s/machine/%s/%s?", wireserver, url.PathEscape(s.ContainerID), url.PathEscape(s.RoleInstanceID))
	inc := url.QueryEscape(incarnation)
	config := func(typ string) string { return base + "comp=config&type=" + typ + "&incarnation=" + inc }
	deployment := strings.ReplaceAll(derivedUUID("deployment", s.VMName), "-", "")
	d := docData{
		Settings:        s,
		Incarnation:     incarnation,
		HostingEnvURL:   config("hostingEnvironmentConfig"),
		SharedConfigURL: config("sharedConfig"),
		ExtensionsURL:   config("extensionsConfig"),
		FullConfigURL:   config("fullConfig"),
		ConfigName:      fmt.Sprintf("%s.0.%s.0._%s.1.xml", deployment, deployment, s.VMName),
		DeploymentID:    deployment,
		RoleName:        "_" + s.VMName,
		PrivateIP:       privateIP,
		StatusBlobURL: wireserver + blobPrefix + "status/" + url.PathEscape(s.VMID) +
			".status?sv=2018-03-28&sr=b&sk=system-1&sig=azinit-fabric&se=9999-01-01T00%3a00%3a00Z&sp=w",
		StatusBlobType: "BlockBlob",
		// Agents never take an extensions goal state older than the last
		// one: each goal state is a second younger than the one before.
		CreatedOnTicks: dotnetTicks(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(counter) * time.Second)),
		ActivityID:     derivedUUID("activity", s.VMName, incarnation),
		CorrelationID:  derivedUUID("correlation", s.VMName, incarnation),
	}
	if withCertificates {
		d.CertificatesURL = base + "comp=certificates&incarnation=" + inc
	}
	return d
}

// dotnetTicks is t in .NET ticks (100 ns since 0001-01-01 UTC), the unit of
// createdOnTicks.
func dotnetTicks(t time.Time) int64 {
	const unixEpochTicks = 621355968000000000
	return unixEpochTicks + t.UnixNano()/100
}

// xmlText escapes s for XML text, leaving quotes as they are, so JSON
// inside an element reads as the platform writes it.
var xmlText = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace

// xmlEscape escapes s for XML text and attribute values.
func xmlEscape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

var documentTemplates = template.Must(template.New("").Funcs(template.FuncMap{"x": xmlEscape, "text": xmlText, "guid": func(s string) string { return "{" + xmlEscape(s) + "}" }}).Parse(`
{{- define "versions" -}}
<?xml version="1.0" encoding="utf-8"?>
<Versions>
  <Preferred>
    <Version>2012-11-30</Version>
  </Preferred>
  <Supported>
    <Version>2012-11-30</Version>
    <Version>2010-12-15</Version>
    <Version>2010-28-10</Version>
  </Supported>
</Versions>
{{end}}

{{- define "goalstate" -}}
<?xml version="1.0" encoding="utf-8"?>
<GoalState xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:noNamespaceSchemaLocation="goalstate10.xsd">
  <Version>2010-12-15</Version>
  <Incarnation>{{x .Incarnation}}</Incarnation>
  <Machine>
    <ExpectedState>Started</ExpectedState>
    <StopRolesDeadlineHint>300000</StopRolesDeadlineHint>
    <LBProbePorts>
      <Port>16001</Port>
    </LBProbePorts>
    <ExpectHealthReport>FALSE</ExpectHealthReport>
  </Machine>
  <Container>
    <ContainerId>{{x .ContainerID}}</ContainerId>
    <RoleInstanceList>
      <RoleInstance>
        <InstanceId>{{x .RoleInstanceID}}</InstanceId>
        <State>Started</State>
        <Configuration>
          <HostingEnvironmentConfig>{{x .HostingEnvURL}}</HostingEnvironmentConfig>
          <SharedConfig>{{x .SharedConfigURL}}</SharedConfig>
          <ExtensionsConfig>{{x .ExtensionsURL}}</ExtensionsConfig>
          <FullConfig>{{x .FullConfigURL}}</FullConfig>
{{- if .CertificatesURL}}
          <Certificates>{{x .CertificatesURL}}</Certificates>
{{- end}}
          <ConfigName>{{x .ConfigName}}</ConfigName>
        </Configuration>
      </RoleInstance>
    </RoleInstanceList>
  </Container>
</GoalState>
{{end}}

{{- define "hostingenv" -}}
<?xml version="1.0" encoding="utf-8"?>
<HostingEnvironmentConfig version="1.0.0.0" goalStateIncarnation="{{x .Incarnation}}">
  <StoredCertificates />
  <Deployment name="{{x .DeploymentID}}" guid="{{guid .ContainerID}}" incarnation="0" isNonCancellableTopologyChangeEnabled="false">
    <Service name="{{x .VMName}}" guid="{00000000-0000-0000-0000-000000000000}" />
    <ServiceInstance name="{{x .DeploymentID}}.0" guid="{{guid .VMID}}" />
  </Deployment>
  <Incarnation number="1" instance="{{x .RoleName}}" guid="{{guid .VMID}}" />
  <Role guid="{{guid .VMID}}" name="{{x .RoleName}}" hostingEnvironmentVersion="1" software="" softwareType="ApplicationPackage" entryPoint="" parameters="" settleTimeSeconds="10" />
  <HostingEnvironmentSettings name="full" runtime="rd_fabric_stable.azinit-fabric">
    <CAS mode="full" />
    <PrivilegeLevel mode="max" />
    <AdditionalProperties><CgiHandlers></CgiHandlers></AdditionalProperties>
  </HostingEnvironmentSettings>
  <ApplicationSettings />
  <ResourceReferences>
    <Resource name="DiagnosticStore" type="directory" request="Microsoft.Cis.Fabric.Controller.Descriptions.ServiceDescription.Data.Policy" sticky="true" size="1" path="{{x .DeploymentID}}.{{x .RoleName}}.DiagnosticStore\" disableQuota="false" />
  </ResourceReferences>
</HostingEnvironmentConfig>
{{end}}

{{- define "sharedconfig" -}}
<?xml version="1.0" encoding="utf-8"?>
<SharedConfig version="1.0.0.0" goalStateIncarnation="{{x .Incarnation}}">
  <Deployment name="{{x .DeploymentID}}" guid="{{guid .ContainerID}}" incarnation="0" isNonCancellableTopologyChangeEnabled="false">
    <Service name="{{x .VMName}}" guid="{00000000-0000-0000-0000-000000000000}" />
    <ServiceInstance name="{{x .DeploymentID}}.0" guid="{{guid .VMID}}" />
  </Deployment>
  <Incarnation number="1" instance="{{x .RoleName}}" guid="{{guid .VMID}}" />
  <Role guid="{{guid .VMID}}" name="{{x .RoleName}}" settleTimeSeconds="0" />
  <LoadBalancerSettings timeoutSeconds="0" waitLoadBalancerProbeCount="8">
    <Probes>
      <Probe name="D41D8CD98F00B204E9800998ECF8427E" />
    </Probes>
  </LoadBalancerSettings>
  <OutputEndpoints>
    <Endpoint name="{{x .RoleName}}:openInternalEndpoint" type="SFS">
      <Target instance="{{x .RoleName}}" endpoint="openInternalEndpoint" />
    </Endpoint>
  </OutputEndpoints>
  <Instances>
    <Instance id="{{x .RoleName}}" address="{{x .PrivateIP}}">
      <FaultDomains randomId="0" updateId="0" updateCount="0" />
      <InputEndpoints>
        <Endpoint name="openInternalEndpoint" address="{{x .PrivateIP}}" protocol="any" isPublic="false" enableDirectServerReturn="false" isDirectAddress="false" disableStealthMode="false">
          <LocalPorts>
            <LocalPortSelfManaged />
          </LocalPorts>
        </Endpoint>
      </InputEndpoints>
    </Instance>
  </Instances>
</SharedConfig>
{{end}}

{{- define "fullconfig" -}}
<?xml version="1.0" encoding="utf-8"?>
<!-- azinit-fabric: a stand-in; agents do not read FullConfig (WALinuxAgent ignores it). -->
<FullConfig version="1.0.0.0" goalStateIncarnation="{{x .Incarnation}}" />
{{end}}

{{- define "extensionsconfig" -}}
<?xml version="1.0" encoding="utf-8"?>
<Extensions version="1.0.0.0" goalStateIncarnation="{{x .Incarnation}}">
  <GuestAgentExtension xmlns:i="http://www.w3.org/2001/XMLSchema-instance">
    <GAFamilies />
    <Location>{{x .Location}}</Location>
    <ServiceName>CRP</ServiceName>
  </GuestAgentExtension>

{{- if .RequiredFeatures}}
  <RequiredFeatures>
{{- range .RequiredFeatures}}
    <RequiredFeature>
      <Name>{{x .}}</Name>
    </RequiredFeature>
{{- end}}
  </RequiredFeatures>
{{- end}}
  <StatusUploadBlob statusBlobType="{{x .StatusBlobType}}">{{x .StatusBlobURL}}</StatusUploadBlob>
{{- if .Plugins}}
  <Plugins>
{{- range .Plugins}}
    <Plugin name="{{x .Name}}" version="{{x .Version}}" location="{{x .Location}}" failoverlocation="{{x .FailoverLocation}}" state="{{x .State}}" autoUpgrade="false" runAsStartupTask="false" isJson="true" useExactVersion="true" />
{{- end}}
  </Plugins>
  <PluginSettings>
{{- range .Plugins}}
{{- if or .Settings .Extensions .DependsOn}}
    <Plugin name="{{x .Name}}" version="{{x .Version}}">
{{- range .DependsOn}}
      <DependsOn dependencyLevel="{{.Level}}"{{if .Name}} name="{{x .Name}}"{{end}} />
{{- end}}
{{- with .Settings}}
      <RuntimeSettings seqNo="{{.SeqNo}}">{{text .JSON}}</RuntimeSettings>
{{- end}}
{{- range .Extensions}}
      <ExtensionRuntimeSettings seqNo="{{.SeqNo}}" name="{{x .Name}}" state="{{x .State}}">{{text .JSON}}</ExtensionRuntimeSettings>
{{- end}}
    </Plugin>
{{- end}}
{{- end}}
  </PluginSettings>
{{- end}}
{{- if .ArtifactsProfileURL}}
  <InVMArtifactsProfileBlob>{{x .ArtifactsProfileURL}}</InVMArtifactsProfileBlob>
{{- end}}
  <InVMGoalStateMetaData inSvdSeqNo="{{x .Incarnation}}" createdOnTicks="{{.CreatedOnTicks}}" activityId="{{x .ActivityID}}" correlationId="{{x .CorrelationID}}" />
</Extensions>
{{end}}

{{- define "manifest" -}}
<?xml version="1.0" encoding="utf-8"?>
<PluginVersionManifest xmlns:i="http://www.w3.org/2001/XMLSchema-instance">
  <Plugins>
{{- range .}}
    <Plugin>
      <Version>{{x .Version}}</Version>
      <Uris>
        <Uri>{{x .URL}}</Uri>
      </Uris>
    </Plugin>
{{- end}}
  </Plugins>
  <InternalPlugins />
</PluginVersionManifest>
{{end}}
`))

// render renders the named document template.
func render(name string, d any) ([]byte, error) {
	var b bytes.Buffer
	if err := documentTemplates.ExecuteTemplate(&b, name, d); err != nil {
		return nil, fmt.Errorf("rendering %s: %w", name, err)
	}
	return b.Bytes(), nil
}
