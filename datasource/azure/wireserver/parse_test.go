package wireserver

import (
	"errors"
	"strings"
	"testing"

	"github.com/azinit/azinit/internal/fixtures"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

const fixtureBase = "http://168.63.129.16:80/machine/865a6683-91d8-450f-99ae/bc8b9d47%2Db5ed%2D4704%2D85d9%2Dfd74cc967ec2.%5Fcanary"

// fixtureGoalState is wire/goal_state.xml as parsed.
var fixtureGoalState = GoalState{
	Incarnation:              "1",
	ContainerID:              "c6d5526c-5ac2-4200-b6e2-56f2b70c5ab2",
	RoleInstanceID:           "b61f93d0-e1ed-40b2-b067-22c243233448.MachineRole_IN_0",
	ConfigName:               "bc8b9d47-b5ed-4704-85d9-fd74cc967ec2.5.bc8b9d47-b5ed-4704-85d9-fd74cc967ec2.5._canary.1.xml",
	HostingEnvironmentConfig: fixtureBase + "?comp=config&type=hostingEnvironmentConfig&incarnation=1",
	SharedConfig:             fixtureBase + "?comp=config&type=sharedConfig&incarnation=1",
	ExtensionsConfig:         fixtureBase + "?comp=config&type=extensionsConfig&incarnation=1",
	FullConfig:               fixtureBase + "?comp=config&type=fullConfig&incarnation=1",
	Certificates:             fixtureBase + "?comp=certificates&incarnation=1",
}

var ignoreRaw = cmpopts.IgnoreFields(GoalState{}, "Raw")

func TestParseVersions(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    *Versions
		wantErr string
		is      error
	}{
		{"fixture", string(fixtures.Read(t, "wire/version_info.xml")),
			&Versions{Preferred: "2012-11-30", Supported: []string{"2010-12-15", "2010-28-10"}}, "", nil},
		{"supported only",
			"<Versions><Preferred><Version>2015-01-01</Version></Preferred><Supported><Version>2012-11-30</Version></Supported></Versions>",
			&Versions{Preferred: "2015-01-01", Supported: []string{"2012-11-30"}}, "", nil},
		{"bom and namespace",
			"\xef\xbb\xbf<v:Versions xmlns:v=\"urn:x\"><v:Preferred><v:Version> 2012-11-30 </v:Version></v:Preferred></v:Versions>",
			&Versions{Preferred: "2012-11-30"}, "", nil},
		{"unsupported",
			"<Versions><Preferred><Version>2010-12-15</Version></Preferred><Supported><Version>2010-28-10</Version></Supported></Versions>",
			nil, `want 2012-11-30, offered preferred "2010-12-15", supported ["2010-28-10"]`, ErrUnsupportedVersion},
		{"no versions", "<Versions/>", nil, "parsing versions: no <Preferred> or <Supported> <Version>", nil},
		{"wrong root", "<html><body>oops</body></html>", nil, "parsing versions: line 1: root element is <html>, want <Versions>", nil},
		{"garbage", "garbage", nil, "parsing versions: no <Versions> element", nil},
		{"truncated", "<Versions><Preferred><Vers", nil, "parsing versions: XML syntax error on line 1: unexpected EOF", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseVersions([]byte(tt.in))
			checkErr(t, err, tt.wantErr, tt.is)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseVersions (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseGoalState(t *testing.T) {
	full := string(fixtures.Read(t, "wire/goal_state.xml"))
	noExt := fixtureGoalState
	noExt.ExtensionsConfig = ""
	withRemote := fixtureGoalState
	withRemote.RemoteAccessInfo = "http://168.63.129.16:80/remoteaccessinfouri/"

	tests := []struct {
		name string
		in   string
		want *GoalState
	}{
		{"fixture", full, &fixtureGoalState},
		{"fixture without extensions", string(fixtures.Read(t, "wire/goal_state_no_ext.xml")), &noExt},
		{"byte-order mark", "\xef\xbb\xbf" + full, &fixtureGoalState},
		{"remote access info", strings.Replace(full, "<RoleInstanceList>",
			"<RemoteAccessInfo>http://168.63.129.16:80/remoteaccessinfouri/</RemoteAccessInfo><RoleInstanceList>", 1), &withRemote},
		{"unknown elements", strings.NewReplacer(
			"<Incarnation>", "<Future a=\"b\"><X/></Future><Incarnation>",
			"<Configuration>", "<Configuration><NewThing>http://x</NewThing>",
		).Replace(full), &fixtureGoalState},
		{"default namespace", strings.Replace(full, "<GoalState ", `<GoalState xmlns="http://schemas.microsoft.com/goalstate" `, 1), &fixtureGoalState},
		{"prefixed namespace", prefixElements(full, "gs"), &fixtureGoalState},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseGoalState([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, ignoreRaw); diff != "" {
				t.Errorf("ParseGoalState (-want +got):\n%s", diff)
			}
			if string(got.Raw) != tt.in {
				t.Error("Raw is not the document")
			}
		})
	}
}

// prefixElements puts every element of doc in the namespace prefix p.
func prefixElements(doc, p string) string {
	// Replacer compares in argument order: "<?" and "</" before "<".
	doc = strings.NewReplacer("<?", "<?", "</", "</"+p+":", "<", "<"+p+":").Replace(doc)
	return strings.Replace(doc, "<"+p+":GoalState ", "<"+p+":GoalState xmlns:"+p+`="urn:azure:goalstate" `, 1)
}

func TestParseGoalStateErrors(t *testing.T) {
	full := string(fixtures.Read(t, "wire/goal_state.xml"))
	without := func(element string) string {
		start := strings.Index(full, "<"+element+">")
		end := strings.Index(full, "</"+element+">") + len("</"+element+">")
		return full[:start] + full[end:]
	}
	tests := []struct {
		name    string
		in      string
		wantErr string
		is      error
	}{
		{"no role instance", without("RoleInstanceList"), "parsing goal state: goal state has no RoleInstance", ErrNoRoleInstance},
		{"no incarnation", without("Incarnation"), "parsing goal state: no <Incarnation>", nil},
		{"no container id", without("ContainerId"), "parsing goal state: no <ContainerId>", nil},
		{"no instance id", without("InstanceId"), "parsing goal state: no <InstanceId>", nil},
		{"no hosting environment", without("HostingEnvironmentConfig"), "parsing goal state: no <HostingEnvironmentConfig>", nil},
		{"no shared config", without("SharedConfig"), "parsing goal state: no <SharedConfig>", nil},
		{"file uri", strings.Replace(full, "http://168.63.129.16:80/machine/865a6683-91d8-450f-99ae/bc8b9d47%2Db5ed%2D4704%2D85d9%2Dfd74cc967ec2.%5Fcanary?comp=certificates", "file:///etc/shadow?", 1),
			`parsing goal state: <Certificates>: "file:///etc/shadow?&incarnation=1" is not an absolute http(s) URI`, nil},
		{"relative uri", strings.Replace(full, "http://168.63.129.16:80/machine/865a6683-91d8-450f-99ae/bc8b9d47%2Db5ed%2D4704%2D85d9%2Dfd74cc967ec2.%5Fcanary?comp=config&amp;type=sharedConfig", "/machine?x", 1),
			`parsing goal state: <SharedConfig>: "/machine?x&incarnation=1" is not an absolute http(s) URI`, nil},
		{"bad uri", strings.Replace(full, "http://168.63.129.16:80/machine/865a6683-91d8-450f-99ae/bc8b9d47%2Db5ed%2D4704%2D85d9%2Dfd74cc967ec2.%5Fcanary?comp=config&amp;type=fullConfig", "http://[::1", 1),
			`parsing goal state: <FullConfig>: parse "http://[::1&incarnation=1"`, nil},
		{"truncated", full[:len(full)/2], "parsing goal state: XML syntax error on line ", nil},
		{"garbage", "\x00\x01garbage", "parsing goal state: XML syntax error on line 1: illegal character code U+0000", nil},
		{"empty", "", "parsing goal state: no <GoalState> element", nil},
		{"html", "<html><body>Service Unavailable</body></html>", "parsing goal state: line 1: root element is <html>, want <GoalState>", nil},
		{"two roots", full + "<GoalState/>", "parsing goal state: line 29: second root element <GoalState> after <GoalState>", nil},
		{"utf-16 declaration", strings.Replace(full, "utf-8", "utf-16", 1), `parsing goal state: xml: encoding "utf-16" declared but Decoder.CharsetReader is nil`, nil},
		{"undefined entity", strings.Replace(full, "<Incarnation>1", "<Incarnation>&x;", 1), "parsing goal state: XML syntax error on line 4: invalid character entity &x;", nil},
		{"too many elements", "<GoalState>" + strings.Repeat("<a/>", maxElements) + "</GoalState>", "parsing goal state: line 1: more than 65536 elements", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseGoalState([]byte(tt.in))
			checkErr(t, err, tt.wantErr, tt.is)
			if got != nil {
				t.Errorf("got %+v with an error", got)
			}
		})
	}
}

func TestParseHostingEnvironment(t *testing.T) {
	doc := fixtures.Read(t, "wire/hosting_env.xml")
	got, err := ParseHostingEnvironment(doc)
	if err != nil {
		t.Fatal(err)
	}
	want := &HostingEnvironment{
		VMName:         "MachineRole_IN_0",
		RoleName:       "MachineRole",
		DeploymentName: "db00a7755a5e4e8a8fe4b19bc3b330c3",
		Raw:            doc,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ParseHostingEnvironment (-want +got):\n%s", diff)
	}

	errs := []struct {
		name, in, wantErr string
	}{
		{"no instance", strings.Replace(string(doc), `instance="MachineRole_IN_0"`, "", 1), "parsing hosting environment: no <Incarnation instance=...>"},
		{"no role", strings.Replace(string(doc), `<Role guid`, "<Rolle guid", 1), "parsing hosting environment: no <Role name=...>"},
		{"no deployment", strings.Replace(string(doc), `<Deployment name="db00a7755a5e4e8a8fe4b19bc3b330c3"`, "<Deployment", 1), "parsing hosting environment: no <Deployment name=...>"},
		{"shared config is not one", string(fixtures.Read(t, "wire/shared_config.xml")), "parsing hosting environment: line 1: root element is <SharedConfig>, want <HostingEnvironmentConfig>"},
		{"truncated", string(doc[:100]), "parsing hosting environment: XML syntax error on line 3: unexpected EOF"},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseHostingEnvironment([]byte(tt.in))
			checkErr(t, err, tt.wantErr, nil)
		})
	}
}

func TestCheckSharedConfig(t *testing.T) {
	doc := fixtures.Read(t, "wire/shared_config.xml")
	if err := checkXML(doc, "SharedConfig"); err != nil {
		t.Fatal(err)
	}
	if err := checkXML(doc[:len(doc)-20], "SharedConfig"); err == nil {
		t.Error("truncated shared config accepted")
	}
}

// checkErr fails unless err contains wantErr (and matches is, when set),
// or, with wantErr empty, err is nil.
func checkErr(t *testing.T, err error, wantErr string, is error) {
	t.Helper()
	if wantErr == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if err == nil || !strings.Contains(err.Error(), wantErr) {
		t.Fatalf("err = %v, want one containing %q", err, wantErr)
	}
	if is != nil && !errors.Is(err, is) {
		t.Fatalf("err = %v, want errors.Is %v", err, is)
	}
}
