package ovf_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/azinit/azinit/datasource/azure/ovf"
	"github.com/azinit/azinit/internal/fixtures"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

var ignoreSecrets = cmpopts.IgnoreUnexported(ovf.Environment{})

func TestParseFixture(t *testing.T) {
	env, err := ovf.Parse(fixtures.Read(t, "ovf-env.xml"))
	if err != nil {
		t.Fatal(err)
	}
	want := &ovf.Environment{
		Version:              "1.0",
		ConfigurationSetType: "LinuxProvisioningConfiguration",
		HostName:             "HostName",
		UserName:             "UserName",
		PublicKeys: []ovf.PublicKey{{
			Fingerprint: "EB0C0AB4B2D5FC35F2F0658D19F44C8283E2DD62",
			Path:        "$HOME/UserName/.ssh/authorized_keys",
			Value:       "ssh-rsa AAAANOTAREALKEY== foo@bar.local",
		}},
		KeyPairs: []ovf.KeyPair{{
			Fingerprint: "EB0C0AB4B2D5FC35F2F0658D19F44C8283E2DD62",
			Path:        "$HOME/UserName/.ssh/id_rsa",
		}},
		Platform: ovf.PlatformSettings{KmsServerHostname: "kms.core.windows.net"},
	}
	if diff := cmp.Diff(want, env, ignoreSecrets); diff != "" {
		t.Errorf("Parse(fixture) mismatch (-want +got):\n%s", diff)
	}
	if got := env.Password(); got != "UserPassword" {
		t.Errorf("Password() = %q, want %q", got, "UserPassword")
	}
	// "CustomData" is unpadded base64 for these seven bytes.
	if got, want := env.CustomData(), []byte("\x0a\xeb\x2d\xa2\x60\xda\xb5"); !bytes.Equal(got, want) {
		t.Errorf("CustomData() = %q, want %q", got, want)
	}
}

// doc builds an ovf-env.xml the way Azure spells it, with the given
// LinuxProvisioningConfigurationSet and PlatformSettings contents.
func doc(set, platform string) string {
	return `<?xml version="1.0" encoding="utf-8"?>
<Environment xmlns="http://schemas.dmtf.org/ovf/environment/1" xmlns:oe="http://schemas.dmtf.org/ovf/environment/1" xmlns:wa="http://schemas.microsoft.com/windowsazure" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <wa:ProvisioningSection>
  <wa:Version>1.0</wa:Version>
  <LinuxProvisioningConfigurationSet xmlns="http://schemas.microsoft.com/windowsazure" xmlns:i="http://www.w3.org/2001/XMLSchema-instance">
   <ConfigurationSetType>LinuxProvisioningConfiguration</ConfigurationSetType>
` + set + `
  </LinuxProvisioningConfigurationSet>
 </wa:ProvisioningSection>
 <wa:PlatformSettingsSection>
  <wa:Version>1.0</wa:Version>
  <wa:PlatformSettings>
` + platform + `
  </wa:PlatformSettings>
 </wa:PlatformSettingsSection>
</Environment>
`
}

const (
	names = "<HostName>vm1</HostName><UserName>azureuser</UserName>"
	pga   = "<wa:ProvisionGuestAgent>true</wa:ProvisionGuestAgent>"
)

// base is what doc(names, pga) parses to.
func base() *ovf.Environment {
	return &ovf.Environment{
		Version:              "1.0",
		ConfigurationSetType: "LinuxProvisioningConfiguration",
		HostName:             "vm1",
		UserName:             "azureuser",
		Platform:             ovf.PlatformSettings{ProvisionGuestAgent: true},
	}
}

func with(f func(e *ovf.Environment)) *ovf.Environment {
	e := base()
	f(e)
	return e
}

// minimal is the document cloud-init writes for WALinuxAgent when the VM
// was provisioned from IMDS alone: ns0/ns1 prefixes, no default namespace.
const minimal = `<ns0:Environment xmlns:ns0="http://schemas.dmtf.org/ovf/environment/1" xmlns:ns1="http://schemas.microsoft.com/windowsazure" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <ns1:ProvisioningSection>
  <ns1:Version>1.0</ns1:Version>
  <ns1:LinuxProvisioningConfigurationSet>
   <ns1:ConfigurationSetType>LinuxProvisioningConfiguration</ns1:ConfigurationSetType>
   <ns1:UserName>azureuser</ns1:UserName>
   <ns1:DisableSshPasswordAuthentication>true</ns1:DisableSshPasswordAuthentication>
   <ns1:HostName>vm1</ns1:HostName>
  </ns1:LinuxProvisioningConfigurationSet>
 </ns1:ProvisioningSection>
 <ns1:PlatformSettingsSection>
  <ns1:Version>1.0</ns1:Version>
  <ns1:PlatformSettings>
   <ns1:ProvisionGuestAgent>true</ns1:ProvisionGuestAgent>
  </ns1:PlatformSettings>
 </ns1:PlatformSettingsSection>
</ns0:Environment>`

// plain has no namespaces at all, as hand-written documents do.
const plain = `<Environment><ProvisioningSection><Version>1.0</Version>
<LinuxProvisioningConfigurationSet><HostName>vm1</HostName><UserName>azureuser</UserName></LinuxProvisioningConfigurationSet>
</ProvisioningSection><PlatformSettingsSection><PlatformSettings/></PlatformSettingsSection></Environment>`

// ovfDefault puts every element, the WA ones included, in the OVF default
// namespace.
const ovfDefault = `<Environment xmlns="http://schemas.dmtf.org/ovf/environment/1"><ProvisioningSection><Version>1.0</Version>
<LinuxProvisioningConfigurationSet><HostName>vm1</HostName><UserName>azureuser</UserName></LinuxProvisioningConfigurationSet>
</ProvisioningSection><PlatformSettingsSection><PlatformSettings><ProvisionGuestAgent>false</ProvisionGuestAgent></PlatformSettings></PlatformSettingsSection></Environment>`

func TestParse(t *testing.T) {
	tests := []struct {
		name       string
		doc        string
		want       *ovf.Environment
		password   string
		customData string
	}{
		{"names only", doc(names, pga), base(), "", ""},
		{"cloud-init minimal, other prefixes", minimal, with(func(e *ovf.Environment) {
			e.DisableSSHPasswordAuthentication = true
		}), "", ""},
		{"no namespaces", plain, with(func(e *ovf.Environment) { e.ConfigurationSetType = "" }), "", ""},
		{"WA elements in the OVF default namespace", ovfDefault, with(func(e *ovf.Environment) {
			e.ConfigurationSetType = ""
			e.Platform.ProvisionGuestAgent = false
		}), "", ""},
		{"UTF-8 BOM", "\xef\xbb\xbf" + doc(names, pga), base(), "", ""},
		{"surrounding whitespace trimmed", doc("<HostName>\n  vm1\n</HostName><UserName> azureuser </UserName>", pga), base(), "", ""},
		{"ProvisionGuestAgent missing means true", doc(names, ""), base(), "", ""},
		{"ProvisionGuestAgent nil means true", doc(names, `<wa:ProvisionGuestAgent xsi:nil="true"/>`), base(), "", ""},
		{"ProvisionGuestAgent False", doc(names, "<wa:ProvisionGuestAgent>False</wa:ProvisionGuestAgent>"),
			with(func(e *ovf.Environment) { e.Platform.ProvisionGuestAgent = false }), "", ""},
		{"DisableSshPasswordAuthentication TRUE", doc(names+"<DisableSshPasswordAuthentication>TRUE</DisableSshPasswordAuthentication>", pga),
			with(func(e *ovf.Environment) { e.DisableSSHPasswordAuthentication = true }), "", ""},
		{"DisableSshPasswordAuthentication yes is not true", doc(names+"<DisableSshPasswordAuthentication>yes</DisableSshPasswordAuthentication>", pga), base(), "", ""},
		{"PPS settings", doc(names, pga+`<wa:PreprovisionedVm>true</wa:PreprovisionedVm>
			<wa:PreprovisionedVMType>Savable</wa:PreprovisionedVMType>
			<wa:ProvisionGuestProxyAgent>TRUE</wa:ProvisionGuestProxyAgent>`),
			with(func(e *ovf.Environment) {
				e.Platform.PreprovisionedVM = true
				e.Platform.PreprovisionedVMType = "Savable"
				e.Platform.ProvisionGuestProxyAgent = true
			}), "", ""},
		{"PPS type nil", doc(names, pga+`<wa:PreprovisionedVm>false</wa:PreprovisionedVm><wa:PreprovisionedVMType xsi:nil="true">Running</wa:PreprovisionedVMType>`), base(), "", ""},
		{"platform strings", doc(names, pga+`<wa:KmsServerHostname>kms.core.windows.net</wa:KmsServerHostname><wa:GuestAgentPackageName>pkg.zip</wa:GuestAgentPackageName>`),
			with(func(e *ovf.Environment) {
				e.Platform.KmsServerHostname = "kms.core.windows.net"
				e.Platform.GuestAgentPackageName = "pkg.zip"
			}), "", ""},
		{"GuestAgentPackageName nil, i: prefix", doc(names, pga+`<wa:GuestAgentPackageName xmlns:i="http://www.w3.org/2001/XMLSchema-instance" i:nil="true">x</wa:GuestAgentPackageName>`), base(), "", ""},
		{"password kept verbatim, entities decoded", doc(names+"<UserPassword> p&amp;ss&lt;1 </UserPassword>", pga), base(), " p&ss<1 ", ""},
		{"password in CDATA", doc(names+"<UserPassword><![CDATA[a<b>&c]]></UserPassword>", pga), base(), "a<b>&c", ""},
		{"empty password is none", doc(names+"<UserPassword></UserPassword>", pga), base(), "", ""},
		{"nil password is none", doc(names+`<UserPassword xsi:nil="true"/>`, pga), base(), "", ""},
		{"72-character password", doc(names+"<UserPassword>"+strings.Repeat("é", 72)+"</UserPassword>", pga), base(), strings.Repeat("é", 72), ""},
		{"custom data over lines", doc(names+"<CustomData>\n  I2Nsb3VkLWNv\n  bmZpZwo=\n</CustomData>", pga), base(), "", "#cloud-config\n"},
		{"empty custom data is none", doc(names+"<CustomData/>", pga), base(), "", ""},
		{"keys", doc(names+`<SSH><PublicKeys>
			<PublicKey><Fingerprint>AA</Fingerprint><Path>/home/u/.ssh/authorized_keys</Path><Value>ssh-ed25519 AAAAC3 u@h</Value></PublicKey>
			<PublicKey><Fingerprint>BB</Fingerprint><Path>/home/u/.ssh/authorized_keys</Path></PublicKey>
		</PublicKeys><KeyPairs><KeyPair><Fingerprint>CC</Fingerprint><Path>/home/u/.ssh/id_rsa</Path></KeyPair></KeyPairs></SSH>`, pga),
			with(func(e *ovf.Environment) {
				e.PublicKeys = []ovf.PublicKey{
					{Fingerprint: "AA", Path: "/home/u/.ssh/authorized_keys", Value: "ssh-ed25519 AAAAC3 u@h"},
					{Fingerprint: "BB", Path: "/home/u/.ssh/authorized_keys"},
				}
				e.KeyPairs = []ovf.KeyPair{{Fingerprint: "CC", Path: "/home/u/.ssh/id_rsa"}}
			}), "", ""},
		{"empty SSH", doc(names+"<SSH><PublicKeys/></SSH>", pga), base(), "", ""},
		{"unknown elements ignored", doc(names+"<Future><HostName>other</HostName></Future><Unknown>x</Unknown>", pga+"<wa:RetainWindowsPEPassInUnattend>true</wa:RetainWindowsPEPassInUnattend>"), base(), "", ""},
		{"other namespaces ignored, so no duplicate", doc(names+`<HostName xmlns="urn:elsewhere">other</HostName>`, pga), base(), "", ""},
		{"later version", strings.Replace(doc(names, pga), "<wa:Version>1.0</wa:Version>", "<wa:Version>2.0</wa:Version>", 1),
			with(func(e *ovf.Environment) { e.Version = "2.0" }), "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, err := ovf.Parse([]byte(tt.doc))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, env, ignoreSecrets); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
			if got := env.Password(); got != tt.password {
				t.Errorf("Password() = %q, want %q", got, tt.password)
			}
			if got := env.HasPassword(); got != (tt.password != "") {
				t.Errorf("HasPassword() = %v", got)
			}
			if got := string(env.CustomData()); got != tt.customData {
				t.Errorf("CustomData() = %q, want %q", got, tt.customData)
			}
			if got := env.HasCustomData(); got != (tt.customData != "") {
				t.Errorf("HasCustomData() = %v", got)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		is   error
		want []string // substrings of the message
		not  string   // must not appear in the message
	}{
		{"empty", "", ovf.ErrSyntax, []string{"no root element"}, ""},
		{"only a declaration", `<?xml version="1.0"?>`, ovf.ErrSyntax, []string{"no root element"}, ""},
		{"not XML", "HostName=vm1", ovf.ErrSyntax, []string{"no root element"}, ""},
		{"mismatched tag", "<Environment>\n <ProvisioningSection>\n </Environment>", ovf.ErrSyntax, []string{"line 3, column", "ProvisioningSection"}, ""},
		{"truncated", doc(names, pga)[:300], ovf.ErrSyntax, []string{"line ", "unexpected EOF"}, ""},
		{"second root", doc(names, pga) + "<Environment/>", ovf.ErrSyntax, []string{"line 17", "second root element"}, ""},
		{"UTF-16 declared", `<?xml version="1.0" encoding="utf-16"?><Environment/>`, ovf.ErrSyntax, []string{"line 1", "utf-16"}, ""},
		{"too deep", "<Environment>" + strings.Repeat("<a>", 100) + strings.Repeat("</a>", 100) + "</Environment>", ovf.ErrSyntax, []string{"nested deeper than 64"}, ""},
		{"wrong root", "<Envelope/>", ovf.ErrInvalid, []string{"root element is Envelope"}, ""},
		{"root in another namespace", `<Environment xmlns="urn:x"/>`, ovf.ErrInvalid, []string{"{urn:x}Environment"}, ""},
		{"no ProvisioningSection", "<Environment/>", ovf.ErrInvalid, []string{"missing Environment/ProvisioningSection"}, ""},
		{"no Version", strings.Replace(doc(names, pga), "<wa:Version>1.0</wa:Version>", "", 1), ovf.ErrInvalid, []string{"missing Environment/ProvisioningSection/Version"}, ""},
		{"no configuration set", `<Environment><ProvisioningSection><Version>1.0</Version></ProvisioningSection></Environment>`, ovf.ErrInvalid,
			[]string{"missing Environment/ProvisioningSection/LinuxProvisioningConfigurationSet"}, ""},
		{"no HostName", doc("<UserName>u</UserName>", pga), ovf.ErrInvalid, []string{"missing Environment/ProvisioningSection/LinuxProvisioningConfigurationSet/HostName"}, ""},
		{"no UserName", doc("<HostName>h</HostName>", pga), ovf.ErrInvalid, []string{"missing", "LinuxProvisioningConfigurationSet/UserName"}, ""},
		{"empty HostName", doc("<HostName> </HostName><UserName>u</UserName>", pga), ovf.ErrInvalid, []string{"LinuxProvisioningConfigurationSet/HostName is empty"}, ""},
		{"nil UserName", doc(`<HostName>h</HostName><UserName xsi:nil="true">u</UserName>`, pga), ovf.ErrInvalid, []string{"UserName is empty"}, ""},
		{"no PlatformSettingsSection", strings.SplitAfter(doc(names, pga), "</wa:ProvisioningSection>")[0] + "</Environment>", ovf.ErrInvalid,
			[]string{"missing Environment/PlatformSettingsSection"}, ""},
		{"no PlatformSettings", `<Environment><ProvisioningSection><Version>1.0</Version><LinuxProvisioningConfigurationSet>` + names +
			`</LinuxProvisioningConfigurationSet></ProvisioningSection><PlatformSettingsSection/></Environment>`, ovf.ErrInvalid,
			[]string{"missing Environment/PlatformSettingsSection/PlatformSettings"}, ""},
		{"HostName twice", doc(names+"\n<HostName>vm2</HostName>", pga), ovf.ErrInvalid,
			[]string{"LinuxProvisioningConfigurationSet/HostName appears more than once (lines 7 and 8)"}, ""},
		{"UserPassword twice", doc(names+"<UserPassword>Secret1!</UserPassword><UserPassword>Secret2!</UserPassword>", pga), ovf.ErrInvalid,
			[]string{"UserPassword appears more than once"}, "Secret"},
		{"CustomData twice", doc(names+"<CustomData>YQ==</CustomData><CustomData>Yg==</CustomData>", pga), ovf.ErrInvalid, []string{"CustomData appears more than once"}, ""},
		{"SSH twice", doc(names+"<SSH/><SSH/>", pga), ovf.ErrInvalid, []string{"SSH appears more than once"}, ""},
		{"PublicKeys twice", doc(names+"<SSH><PublicKeys/><PublicKeys/></SSH>", pga), ovf.ErrInvalid, []string{"SSH/PublicKeys appears more than once"}, ""},
		{"Fingerprint twice", doc(names+"<SSH><PublicKeys><PublicKey><Fingerprint>A</Fingerprint><Fingerprint>B</Fingerprint></PublicKey></PublicKeys></SSH>", pga),
			ovf.ErrInvalid, []string{"PublicKey/Fingerprint appears more than once"}, ""},
		{"KeyPair Path twice", doc(names+"<SSH><KeyPairs><KeyPair><Path>A</Path><Path>B</Path></KeyPair></KeyPairs></SSH>", pga),
			ovf.ErrInvalid, []string{"KeyPair/Path appears more than once"}, ""},
		{"ProvisioningSection twice", strings.Replace(doc(names, pga), "<wa:PlatformSettingsSection>", "<wa:ProvisioningSection/><wa:PlatformSettingsSection>", 1),
			ovf.ErrInvalid, []string{"Environment/ProvisioningSection appears more than once"}, ""},
		{"ProvisionGuestAgent twice", doc(names, pga+pga), ovf.ErrInvalid, []string{"PlatformSettings/ProvisionGuestAgent appears more than once"}, ""},
		{"PreprovisionedVMType twice", doc(names, "<wa:PreprovisionedVMType>Running</wa:PreprovisionedVMType><wa:PreprovisionedVMType>Savable</wa:PreprovisionedVMType>"),
			ovf.ErrInvalid, []string{"PreprovisionedVMType appears more than once"}, ""},
		{"bad base64", doc(names+"<CustomData>c2VjcmV0!!bad</CustomData>", pga), ovf.ErrInvalid,
			[]string{"LinuxProvisioningConfigurationSet/CustomData is not valid base64"}, "c2VjcmV0"},
		{"impossible base64 length", doc(names+"<CustomData>c2VjcmV0X</CustomData>", pga), ovf.ErrInvalid, []string{"CustomData is not valid base64"}, "c2VjcmV0"},
		{"password too long", doc(names+"<UserPassword>"+strings.Repeat("Pw", 36)+"x</UserPassword>", pga), ovf.ErrPasswordTooLong, []string{"longer than 72 characters"}, "PwPw"},
		{"entity in password", doc(names+"<UserPassword>Sec&ret;word</UserPassword>", pga), ovf.ErrSyntax, []string{"line 7, column", "malformed content in UserPassword"}, "ret"},
		{"element in password", doc(names+"<UserPassword>Sec<ret>word</UserPassword>", pga), ovf.ErrSyntax, []string{"malformed content in UserPassword"}, "ret"},
		{"bad character in password", doc(names+"<UserPassword>Sec\x01ret</UserPassword>", pga), ovf.ErrSyntax, []string{"malformed content in UserPassword"}, ""},
		{"entity in custom data", doc(names+"<CustomData>c2Vj&cmV0;</CustomData>", pga), ovf.ErrSyntax, []string{"malformed content in UserPassword or CustomData"}, "cmV0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, err := ovf.Parse([]byte(tt.doc))
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", env)
			}
			if !errors.Is(err, tt.is) {
				t.Errorf("error %q is not %q", err, tt.is)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if tt.not != "" && strings.Contains(err.Error(), tt.not) {
				t.Errorf("error %q reveals %q", err, tt.not)
			}
		})
	}
}

// TestSecretsNotRendered prints, logs and encodes an Environment every way
// a caller might, and looks for the password and the custom data.
func TestSecretsNotRendered(t *testing.T) {
	const password, customData = "Pa55-w0rd-Zq!", "#!/bin/sh\necho s3cr3t-payload\n"
	b64 := "IyEvYmluL3NoCmVjaG8gczNjcjN0LXBheWxvYWQK"
	env, err := ovf.Parse([]byte(doc(names+"<UserPassword>"+password+"</UserPassword><CustomData>"+b64+"</CustomData>", pga)))
	if err != nil {
		t.Fatal(err)
	}
	if env.Password() != password || string(env.CustomData()) != customData {
		t.Fatalf("secrets not parsed: %q %q", env.Password(), env.CustomData())
	}
	type holder struct {
		env   ovf.Environment
		Env   *ovf.Environment
		Value ovf.Environment
	}
	var out []string
	for _, v := range []any{env, *env, holder{*env, env, *env}} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
			out = append(out, fmt.Sprintf(verb, v))
		}
	}
	var logs bytes.Buffer
	slog.New(slog.NewTextHandler(&logs, nil)).Info("parsed", "env", env, "value", *env)
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("parsed", "env", env, "value", *env)
	out = append(out, logs.String())
	j, err := json.Marshal(holder{*env, env, *env})
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, string(j))
	for _, s := range out {
		for _, secret := range []string{password, "s3cr3t", b64, fmt.Sprintf("%x", password), fmt.Sprintf("%x", "s3cr3t"),
			strings.Trim(fmt.Sprint([]byte(password)), "[]"), strings.Trim(fmt.Sprint([]byte("s3cr3t")), "[]")} {
			if strings.Contains(s, secret) {
				t.Errorf("secret %q rendered in %q", secret, s)
			}
		}
	}
	if !strings.Contains(logs.String(), "has_password=true") || !strings.Contains(string(j), `"has_custom_data":true`) {
		t.Errorf("renderings do not say the secrets are present:\n%s\n%s", logs.String(), j)
	}
}

func TestMarshalJSON(t *testing.T) {
	env, err := ovf.Parse([]byte(doc(names+"<UserPassword>pw</UserPassword>", pga)))
	if err != nil {
		t.Fatal(err)
	}
	got, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"version":"1.0","configuration_set_type":"LinuxProvisioningConfiguration","hostname":"vm1","username":"azureuser",` +
		`"disable_ssh_password_authentication":false,"public_keys":[],"key_pairs":[],"has_password":true,"has_custom_data":false,` +
		`"kms_server_hostname":"","provision_guest_agent":true,"guest_agent_package_name":"","preprovisioned_vm":false,` +
		`"preprovisioned_vm_type":"","provision_guest_proxy_agent":false}`
	if diff := cmp.Diff(want, string(got)); diff != "" {
		t.Errorf("json.Marshal mismatch (-want +got):\n%s", diff)
	}
}

func TestRedactGolden(t *testing.T) {
	in, err := os.ReadFile(filepath.Join("testdata", "redact.xml"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := ovf.Redact(in)
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "redact.golden.xml")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("Redact mismatch (-want +got):\n%s", diff)
	}
	checkRedacted(t, in, got)
}

func TestRedactFixture(t *testing.T) {
	in := fixtures.Read(t, "ovf-env.xml")
	got, err := ovf.Redact(in)
	if err != nil {
		t.Fatal(err)
	}
	want := bytes.Replace(in, []byte("<UserPassword>UserPassword</UserPassword>"), []byte("<UserPassword></UserPassword>"), 1)
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("Redact(fixture) mismatch (-want +got):\n%s", diff)
	}
	checkRedacted(t, in, got)
}

// checkRedacted checks that the redacted document parses to the original
// Environment less its password.
func checkRedacted(t *testing.T, in, out []byte) {
	t.Helper()
	before, err := ovf.Parse(in)
	if err != nil {
		t.Fatal(err)
	}
	after, err := ovf.Parse(out)
	if err != nil {
		t.Fatalf("redacted document does not parse: %v", err)
	}
	if !before.HasPassword() || after.HasPassword() {
		t.Errorf("HasPassword before %v, after %v; want true, false", before.HasPassword(), after.HasPassword())
	}
	if diff := cmp.Diff(before, after, ignoreSecrets); diff != "" {
		t.Errorf("redaction changed the document (-before +after):\n%s", diff)
	}
	if !bytes.Equal(before.CustomData(), after.CustomData()) {
		t.Errorf("redaction changed CustomData")
	}
}

func TestRedactErrors(t *testing.T) {
	for _, in := range []string{"", "<Environment>", "<a><UserPassword>Sec&ret;</UserPassword></a>"} {
		out, err := ovf.Redact([]byte(in))
		if !errors.Is(err, ovf.ErrSyntax) || out != nil {
			t.Errorf("Redact(%q) = %q, %v; want nil, ErrSyntax", in, out, err)
		}
		if err != nil && strings.Contains(err.Error(), "ret") {
			t.Errorf("Redact(%q) error %q reveals the password", in, err)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	doc := fixtures.Read(b, "ovf-env.xml")
	b.ReportAllocs()
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		if _, err := ovf.Parse(doc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRedact(b *testing.B) {
	doc := fixtures.Read(b, "ovf-env.xml")
	b.ReportAllocs()
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		if _, err := ovf.Redact(doc); err != nil {
			b.Fatal(err)
		}
	}
}
