package extensions

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/azinit/azinit/datasource/azure/extconfig"
	"github.com/azinit/azinit/internal/logging"
	"github.com/azinit/azinit/internal/sys"
)

// handlerScript is a handler for these tests: it logs each operation to
// <lib>/ops.log, writes a success status on enable, and obeys knobs in
// its public settings file ("<op>Exit", "<op>Sleep", "<op>Status").
const handlerScript = `#!/bin/sh
op=$1
seq=${ConfigSequenceNumber:-0}
ext=${ConfigExtensionName:-}
base=$seq
[ -n "$ext" ] && base=$ext.$seq
settings=config/$base.settings
knob() { [ -s "$settings" ] && sed -n "s/.*\"$op$1\": *\"\{0,1\}\([^\",}]*\).*/\1/p" "$settings"; }
echo "$op $AZURE_GUEST_AGENT_EXTENSION_VERSION seq=$seq ext=${ext:--} uninstall=${AZURE_GUEST_AGENT_UNINSTALL_CMD_EXIT_CODE:--} from=${AZURE_GUEST_AGENT_UPDATING_FROM_VERSION:--}" >> ../ops.log
sleep=$(knob Sleep)
if [ -n "$sleep" ]; then
	sleep "$sleep" &
	echo $! > ../sleeper.pid
	wait
fi
status=$(knob Status)
if [ "$op" = enable ] || [ -n "$status" ]; then
	echo "$seq" > mrseq
	printf '[{"version": 1.0, "status": {"operation": "%s", "status": "%s", "code": 0, "formattedMessage": {"lang": "en-US", "message": "%s done"}}}]' "$op" "${status:-success}" "$op" > status/$base.status.tmp
	mv status/$base.status.tmp status/$base.status
fi
exit $(knob Exit | grep . || echo 0)
`

func handlerManifest(multi bool) string {
	return fmt.Sprintf(`[{"name": "test", "version": 1.0, "handlerManifest": {
		"installCommand": "bin/handler.sh install", "uninstallCommand": "bin/handler.sh uninstall",
		"updateCommand": "bin/handler.sh update", "enableCommand": "bin/handler.sh enable",
		"disableCommand": "bin/handler.sh disable", "supportsMultipleExtensions": %t}}]`, multi)
}

// packageZip builds a handler package; the script is stored 0644, as
// real handlers ship theirs.
func packageZip(t testing.TB, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	for name, content := range files {
		h := &zip.FileHeader{Name: name, Method: zip.Deflate}
		h.SetMode(0o644)
		f, err := w.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		f.Write([]byte(content))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// fakeFetcher serves packages by version.
type fakeFetcher struct {
	packages  map[string][]byte
	manifests int
}

func (f *fakeFetcher) Manifest(ctx context.Context, h *extconfig.Handler) (*extconfig.Manifest, string, error) {
	f.manifests++
	var doc strings.Builder
	doc.WriteString("<PluginVersionManifest><Plugins>")
	for _, v := range []string{"1.0.0", "1.1.0"} {
		if _, ok := f.packages[v]; ok {
			fmt.Fprintf(&doc, "<Plugin><Version>%s</Version><Uris><Uri>http://127.0.0.1/%s</Uri></Uris></Plugin>", v, v)
		}
	}
	doc.WriteString("</Plugins></PluginVersionManifest>")
	m, err := extconfig.ParseManifest([]byte(doc.String()))
	return m, "http://127.0.0.1/manifest", err
}

func (f *fakeFetcher) Package(ctx context.Context, pkg extconfig.Package, manifestLocation string, file *os.File) error {
	b, ok := f.packages[pkg.Version]
	if !ok {
		return errors.New("404")
	}
	_, err := file.Write(b)
	return err
}

const testName = "Azinit.Test.Handler"

type fixture struct {
	t     *testing.T
	dir   string
	root  *sys.Root
	fetch *fakeFetcher
	m     *Manager
}

func newFixture(t *testing.T, multi bool) *fixture {
	dir := t.TempDir()
	root, err := sys.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	pkg := func() []byte {
		return packageZip(t, map[string]string{"HandlerManifest.json": handlerManifest(multi), "bin/handler.sh": handlerScript})
	}
	f := &fixture{t: t, dir: dir, root: root, fetch: &fakeFetcher{packages: map[string][]byte{"1.0.0": pkg(), "1.1.0": pkg()}}}
	f.m = f.manager()
	return f
}

// manager is a fresh manager on the fixture's root, as after a restart.
func (f *fixture) manager() *Manager {
	m := &Manager{
		Root: f.root, Run: sys.ExecRunner{}, Fetch: f.fetch,
		Layout: Layout{Lib: "/var/lib/waagent", LogDir: "/var/log/azure"},
		Log:    logging.Discard(), Now: time.Now,
		Sleep: func(ctx context.Context, d time.Duration) error { return ctx.Err() },
		Timeouts: Timeouts{Install: time.Minute, Enable: time.Minute, Disable: time.Minute,
			Update: time.Minute, Uninstall: time.Minute},
		MaxPackageBytes: 1 << 20, DependencyPoll: time.Millisecond, DependencyBudget: time.Minute,
		WireserverAddress: "127.0.0.1", BootID: "boot-1", HonorOnHold: true,
	}
	if err := m.Open(); err != nil {
		f.t.Fatal(err)
	}
	return m
}

func (f *fixture) apply(id string, gs *extconfig.ExtensionsGoalState) {
	f.t.Helper()
	if err := f.m.Apply(context.Background(), id, gs); err != nil {
		f.t.Fatalf("Apply %s: %v", id, err)
	}
}

// ops returns and forgets the operations the handlers logged.
func (f *fixture) ops() []string {
	f.t.Helper()
	file := filepath.Join(f.dir, "var/lib/waagent/ops.log")
	b, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		f.t.Fatal(err)
	}
	os.Remove(file)
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

func (f *fixture) handlerStatus(name string) HandlerStatus {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	return f.m.state.Handlers[name]
}

func (f *fixture) exists(rel string) bool {
	_, err := os.Stat(filepath.Join(f.dir, rel))
	return err == nil
}

func goal(handlers ...extconfig.Handler) *extconfig.ExtensionsGoalState {
	return &extconfig.ExtensionsGoalState{InSvdSeqNo: "1", StatusUploadBlob: "http://127.0.0.1/status", Handlers: handlers}
}

func handler(version string, state extconfig.State, seq int, public string) extconfig.Handler {
	return extconfig.Handler{
		Name: testName, Version: version, State: state, Location: "http://127.0.0.1/manifest",
		Settings: []extconfig.Settings{{Name: testName, SeqNo: seq, State: extconfig.StateEnabled, PublicSettings: json.RawMessage(public)}},
	}
}

func TestInstallEnableAndSettings(t *testing.T) {
	t.Parallel()
	f := newFixture(t, false)
	h := handler("1.0", extconfig.StateEnabled, 0, `{"message":"hello, world: a"}`)
	h.Settings[0].ProtectedSettings = extconfig.NewSecret("MIIBsecret")
	h.Settings[0].ProtectedSettingsCertThumbprint = "F6ABAA61098A301EBB8A571C3C7CF77F355F7FA9"
	f.apply("incarnation_1", goal(h))

	want := []string{
		"install 1.0.0 seq=0 ext=- uninstall=NOT_RUN from=-",
		"enable 1.0.0 seq=0 ext=- uninstall=NOT_RUN from=-",
	}
	if diff := cmp.Diff(want, f.ops()); diff != "" {
		t.Errorf("operations (-want +got):\n%s", diff)
	}
	dir := filepath.Join(f.dir, "var/lib/waagent", testName+"-1.0.0")
	settings, _ := os.ReadFile(filepath.Join(dir, "config/0.settings"))
	wantSettings := `{"runtimeSettings": [{"handlerSettings": {"publicSettings": {"message": "hello, world: a"}, "protectedSettings": "MIIBsecret", "protectedSettingsCertThumbprint": "F6ABAA61098A301EBB8A571C3C7CF77F355F7FA9"}}]}`
	if string(settings) != wantSettings {
		t.Errorf("settings file:\n got %s\nwant %s", settings, wantSettings)
	}
	env, _ := os.ReadFile(filepath.Join(dir, "HandlerEnvironment.json"))
	wantEnv := fmt.Sprintf(`[{"name": "%s", "version": 1.0, "handlerEnvironment": {"logFolder": "%[2]s/var/log/azure/%[1]s", "configFolder": "%[3]s/config", "statusFolder": "%[3]s/status", "heartbeatFile": "%[3]s/heartbeat.log", "eventsFolder": "%[2]s/var/log/azure/%[1]s/events", "eventsFolder_preview": "%[2]s/var/log/azure/%[1]s/events"}}]`, testName, f.dir, dir)
	if string(env) != wantEnv {
		t.Errorf("HandlerEnvironment.json:\n got %s\nwant %s", env, wantEnv)
	}
	for file, mode := range map[string]os.FileMode{"bin/handler.sh": 0o744, "config": 0o700 | os.ModeDir, "status": 0o700 | os.ModeDir, "config/0.settings": 0o600} {
		if st, err := os.Stat(filepath.Join(dir, file)); err != nil || st.Mode() != mode {
			t.Errorf("%s: mode %v, %v; want %v", file, st.Mode(), err, mode)
		}
	}
	if got := f.handlerStatus(testName); got.Status != statusReady || got.Message != "Plugin enabled" || got.Version != "1.0.0" {
		t.Errorf("handler status = %+v", got)
	}
	if f.m.readState(f.m.Layout.Dir(testName, "1.0.0")) != enabled {
		t.Error("HandlerState is not Enabled")
	}
	if f.exists("var/lib/waagent/" + testName + "__1.0.0.zip") {
		t.Error("the package was left behind")
	}

	// The same goal state again: nothing runs. A new one: enable again,
	// with the next settings.
	f.apply("incarnation_1", goal(h))
	if ops := f.ops(); ops != nil {
		t.Errorf("the finished goal state ran again: %q", ops)
	}
	f.apply("incarnation_2", goal(handler("1.0", extconfig.StateEnabled, 1, `{}`)))
	if diff := cmp.Diff([]string{"enable 1.0.0 seq=1 ext=- uninstall=NOT_RUN from=-"}, f.ops()); diff != "" {
		t.Errorf("operations (-want +got):\n%s", diff)
	}

	// A new boot takes the same goal state up again.
	f.m = f.manager()
	f.m.BootID = "boot-2"
	f.apply("incarnation_2", goal(handler("1.0", extconfig.StateEnabled, 1, `{}`)))
	if diff := cmp.Diff([]string{"enable 1.0.0 seq=1 ext=- uninstall=NOT_RUN from=-"}, f.ops()); diff != "" {
		t.Errorf("after a reboot (-want +got):\n%s", diff)
	}
}

func TestUpdateSequence(t *testing.T) {
	t.Parallel()
	f := newFixture(t, false)
	f.apply("incarnation_1", goal(handler("1.0.0", extconfig.StateEnabled, 0, `{}`)))
	f.ops()
	f.apply("incarnation_2", goal(handler("1.1.0", extconfig.StateEnabled, 1, `{}`)))
	want := []string{
		"disable 1.0.0 seq=1 ext=- uninstall=- from=-",
		"update 1.1.0 seq=1 ext=- uninstall=- from=1.0.0",
		"uninstall 1.0.0 seq=1 ext=- uninstall=- from=-",
		"install 1.1.0 seq=1 ext=- uninstall=0 from=-",
		"enable 1.1.0 seq=1 ext=- uninstall=0 from=-",
	}
	if diff := cmp.Diff(want, f.ops()); diff != "" {
		t.Errorf("update (-want +got):\n%s", diff)
	}
	if f.exists("var/lib/waagent/" + testName + "-1.0.0") {
		t.Error("the old version's directory is still there")
	}
	if b, _ := os.ReadFile(filepath.Join(f.dir, "var/lib/waagent", testName+"-1.1.0/status/0.status")); len(b) == 0 {
		t.Error("the old version's status files were not carried over")
	}

	// Downgrade: the old (higher) version's update runs, "from" the new.
	f.apply("incarnation_3", goal(handler("1.0.0", extconfig.StateEnabled, 2, `{}`)))
	want = []string{
		"disable 1.1.0 seq=2 ext=- uninstall=- from=-",
		"update 1.1.0 seq=2 ext=- uninstall=- from=1.0.0",
		"uninstall 1.1.0 seq=2 ext=- uninstall=- from=-",
		"install 1.0.0 seq=2 ext=- uninstall=0 from=-",
		"enable 1.0.0 seq=2 ext=- uninstall=0 from=-",
	}
	if diff := cmp.Diff(want, f.ops()); diff != "" {
		t.Errorf("downgrade (-want +got):\n%s", diff)
	}
}

func TestFailedUpdateIsRetried(t *testing.T) {
	t.Parallel()
	f := newFixture(t, false)
	f.apply("incarnation_1", goal(handler("1.0.0", extconfig.StateEnabled, 0, `{}`)))
	f.ops()
	f.apply("incarnation_2", goal(handler("1.1.0", extconfig.StateEnabled, 1, `{"updateExit": 3}`)))
	if got := f.handlerStatus(testName); got.Code != CodeUpdate || !strings.Contains(got.Message, "Non-zero exit code: 3") {
		t.Errorf("handler status = %+v, want code %d", got, CodeUpdate)
	}
	if s := f.m.readState(f.m.Layout.Dir(testName, "1.1.0")); s != failedUpgrade {
		t.Errorf("new version's HandlerState = %s, want FailedUpgrade", s)
	}
	f.ops()
	f.apply("incarnation_3", goal(handler("1.1.0", extconfig.StateEnabled, 2, `{}`)))
	ops := f.ops()
	if len(ops) != 5 || !strings.HasPrefix(ops[4], "enable 1.1.0 seq=2") {
		t.Errorf("retry ran %q, want the whole update sequence", ops)
	}
}

func TestDisableAndUninstall(t *testing.T) {
	t.Parallel()
	f := newFixture(t, false)
	f.apply("incarnation_1", goal(handler("1.0.0", extconfig.StateEnabled, 0, `{}`)))
	f.ops()
	f.apply("incarnation_2", goal(handler("1.0.0", extconfig.StateDisabled, 0, `{}`)))
	if diff := cmp.Diff([]string{"disable 1.0.0 seq=0 ext=- uninstall=- from=-"}, f.ops()); diff != "" {
		t.Errorf("disable (-want +got):\n%s", diff)
	}
	if got := f.handlerStatus(testName); got.Status != statusNotReady || got.Message != "Plugin disabled" {
		t.Errorf("handler status = %+v", got)
	}
	f.apply("incarnation_3", goal(handler("1.0.0", extconfig.StateUninstall, 0, `{}`)))
	if diff := cmp.Diff([]string{"uninstall 1.0.0 seq=0 ext=- uninstall=- from=-"}, f.ops()); diff != "" {
		t.Errorf("uninstall (-want +got):\n%s", diff)
	}
	if f.exists("var/lib/waagent/" + testName + "-1.0.0") {
		t.Error("the handler directory is still there")
	}
	doc, err := f.m.Status(AgentInfo{})
	if err != nil || strings.Contains(string(doc), testName) {
		t.Errorf("an uninstalled handler is still reported: %s, %v", doc, err)
	}
}

func TestFailures(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		public   string
		packages map[string][]byte
		code     int
		message  string
	}{
		{name: "install exits 52", public: `{"installExit": 52}`, code: CodeInstall, message: "Non-zero exit code: 52, "},
		{name: "enable exits 3", public: `{"enableExit": 3}`, code: CodeEnable, message: "Non-zero exit code: 3, "},
		{name: "enable hangs", public: `{"enableSleep": 600}`, code: CodeTimeout, message: "Timeout(1): "},
		{name: "no such version", packages: map[string][]byte{}, code: CodeUnknown, message: "Unable to find version 1.0.0 in manifest"},
		{name: "zip slip", packages: map[string][]byte{"1.0.0": packageZip(t, map[string]string{"../../../evil": "x", "HandlerManifest.json": handlerManifest(false)})}, code: CodePackageExtraction, message: "Failed to extract package"},
		{name: "no handler manifest", packages: map[string][]byte{"1.0.0": packageZip(t, map[string]string{"bin/handler.sh": handlerScript})}, code: CodePackageExtraction, message: "has no HandlerManifest.json"},
		{name: "package too large", packages: map[string][]byte{"1.0.0": bytes.Repeat([]byte{0}, 2<<20)}, code: CodePackageDownload, message: "over the 1048576-byte limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, false)
			if tc.packages != nil {
				f.fetch.packages = tc.packages
			}
			f.m.Timeouts.Enable = time.Second
			f.apply("incarnation_1", goal(handler("1.0.0", extconfig.StateEnabled, 0, or(tc.public, `{}`))))
			got := f.handlerStatus(testName)
			if got.Status != statusNotReady || got.Code != tc.code || !strings.Contains(got.Message, tc.message) {
				t.Errorf("handler status = %+v, want NotReady, code %d, message containing %q", got, tc.code, tc.message)
			}
			if f.exists("evil") || f.exists("var/evil") || f.exists("var/lib/evil") {
				t.Error("the package wrote outside its directory")
			}
			doc, _ := f.m.Status(AgentInfo{})
			if !strings.Contains(string(doc), fmt.Sprintf(`"code":%d`, tc.code)) {
				t.Errorf("the aggregate status does not carry code %d: %s", tc.code, doc)
			}
			if b, err := os.ReadFile(filepath.Join(f.dir, "var/lib/waagent/sleeper.pid")); err == nil {
				var pid int
				fmt.Sscan(string(b), &pid)
				if alive(pid) {
					t.Errorf("the hung command's child %d outlived the timeout", pid)
				}
			}
		})
	}
}

func TestResumeAfterRestart(t *testing.T) {
	t.Parallel()
	f := newFixture(t, false)
	second := handler("1.0.0", extconfig.StateEnabled, 0, `{}`)
	second.Name = "Azinit.Test.Second"
	gs := goal(handler("1.0.0", extconfig.StateEnabled, 0, `{}`), second)

	// Stop once the first handler is through: the second is left undone.
	ctx, cancel := context.WithCancel(context.Background())
	f.m.Run = runnerFunc(func(ctx context.Context, c sys.Command) (sys.Result, error) {
		res, err := sys.ExecRunner{}.Run(ctx, c)
		if strings.HasSuffix(c.Args[len(c.Args)-1], testName+"-1.0.0/bin/handler.sh enable") {
			cancel()
		}
		return res, err
	})
	if err := f.m.Apply(ctx, "incarnation_1", gs); !errors.Is(err, context.Canceled) {
		t.Fatalf("Apply = %v, want it stopped", err)
	}
	f.m = f.manager()
	f.apply("incarnation_1", gs)
	want := []string{
		"install 1.0.0 seq=0 ext=- uninstall=NOT_RUN from=-",
		"enable 1.0.0 seq=0 ext=- uninstall=NOT_RUN from=-",
		"install 1.0.0 seq=0 ext=- uninstall=NOT_RUN from=-",
		"enable 1.0.0 seq=0 ext=- uninstall=NOT_RUN from=-",
	}
	if diff := cmp.Diff(want, f.ops()); diff != "" {
		t.Errorf("operations over the restart (-want +got):\n%s", diff)
	}
	if !f.exists("var/lib/waagent/Azinit.Test.Second-1.0.0") {
		t.Error("the second handler was not installed after the restart")
	}
}

type runnerFunc func(context.Context, sys.Command) (sys.Result, error)

func (r runnerFunc) Run(ctx context.Context, c sys.Command) (sys.Result, error) { return r(ctx, c) }

func TestDependencies(t *testing.T) {
	t.Parallel()
	f := newFixture(t, false)
	first := handler("1.0.0", extconfig.StateEnabled, 0, `{"enableStatus": "error"}`)
	second := handler("1.0.0", extconfig.StateEnabled, 0, `{}`)
	second.Name = "Azinit.Test.Second"
	second.Settings[0].Name, second.Settings[0].DependencyLevel = second.Name, 1
	// Listed first, it still runs after its dependency.
	f.apply("incarnation_1", goal(second, first))
	if diff := cmp.Diff([]string{"install 1.0.0 seq=0 ext=- uninstall=NOT_RUN from=-", "enable 1.0.0 seq=0 ext=- uninstall=NOT_RUN from=-"}, f.ops()); diff != "" {
		t.Errorf("operations (-want +got):\n%s", diff)
	}
	if got := f.handlerStatus(second.Name); got.Code != CodeUnknown || got.Message != "Dependent Extension "+testName+" did not succeed. Status was error" {
		t.Errorf("dependent handler status = %+v", got)
	}
}

func TestMultiConfig(t *testing.T) {
	t.Parallel()
	f := newFixture(t, true)
	h := extconfig.Handler{
		Name: testName, Version: "1.0.0", State: extconfig.StateEnabled, MultiConfig: true, Location: "http://127.0.0.1/m",
		Settings: []extconfig.Settings{
			{Name: "first", SeqNo: 3, State: extconfig.StateEnabled},
			{Name: "second", SeqNo: 0, State: extconfig.StateEnabled},
		},
	}
	f.apply("incarnation_1", goal(h))
	want := []string{
		"install 1.0.0 seq=3 ext=first uninstall=NOT_RUN from=-",
		"enable 1.0.0 seq=3 ext=first uninstall=NOT_RUN from=-",
		"enable 1.0.0 seq=0 ext=second uninstall=NOT_RUN from=-",
	}
	if diff := cmp.Diff(want, f.ops()); diff != "" {
		t.Errorf("operations (-want +got):\n%s", diff)
	}
	doc, _ := f.m.Status(AgentInfo{})
	for _, s := range []string{`"extensionName":"first"`, `"extensionName":"second"`, `"sequenceNumber":3`} {
		if !strings.Contains(string(doc), s) {
			t.Errorf("status lacks %s: %s", s, doc)
		}
	}

	h.Settings[1].State = extconfig.StateDisabled
	f.apply("incarnation_2", goal(h))
	want = []string{
		"disable 1.0.0 seq=0 ext=second uninstall=- from=-",
		"enable 1.0.0 seq=3 ext=first uninstall=NOT_RUN from=-",
	}
	if diff := cmp.Diff(want, f.ops()); diff != "" {
		t.Errorf("operations (-want +got):\n%s", diff)
	}
	dir := "var/lib/waagent/" + testName + "-1.0.0/"
	if f.exists(dir+"config/second.0.settings") || f.exists(dir+"status/second.0.status") {
		t.Error("the disabled extension's files are still there")
	}
	doc, _ = f.m.Status(AgentInfo{})
	if strings.Contains(string(doc), `"extensionName":"second"`) {
		t.Errorf("a disabled extension is still reported: %s", doc)
	}
}

func TestGoalStateLevelRefusals(t *testing.T) {
	t.Parallel()
	f := newFixture(t, false)
	gs := goal(handler("1.0.0", extconfig.StateEnabled, 0, `{}`))
	gs.RequiredFeatures = []string{"SomethingNew"}
	f.apply("incarnation_1", gs)
	if f.ops() != nil {
		t.Error("a goal state with unsupported features ran handlers")
	}
	doc, _ := f.m.Status(AgentInfo{})
	if !strings.Contains(string(doc), `"status":"Failed","code":2001`) {
		t.Errorf("status = %s, want the goal state Failed with 2001", doc)
	}

	f.m.Disabled = true
	f.apply("incarnation_2", goal(handler("1.0.0", extconfig.StateEnabled, 0, `{}`)))
	if f.ops() != nil {
		t.Error("disabled extension processing ran handlers")
	}
	if got := f.handlerStatus(testName); got.Code != CodeEnable {
		t.Errorf("handler status = %+v, want code %d", got, CodeEnable)
	}
}

func TestAggregateStatus(t *testing.T) {
	t.Parallel()
	f := newFixture(t, false)
	f.m.Now = func() time.Time { return time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC) }
	f.apply("incarnation_1", goal(handler("1.0.0", extconfig.StateEnabled, 0, `{}`)))
	doc, err := f.m.Status(AgentInfo{Version: "1.2.3", ComputerName: "vm", OSName: "debian", OSVersion: "13", FastTrack: true})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"version":"1.1","timestampUTC":"2026-11-22T08:00:00Z","aggregateStatus":{"guestAgentStatus":{"version":"2.15.0.1","status":"Ready","formattedMessage":{"lang":"en-US","message":"Guest Agent is running (azinit 1.2.3)"}},` +
		`"handlerAggregateStatus":[{"handlerVersion":"1.0.0","handlerName":"Azinit.Test.Handler","status":"Ready","code":0,"useExactVersion":true,"formattedMessage":{"lang":"en-US","message":"Plugin enabled"},` +
		`"runtimeSettingsStatus":{"settingsStatus":{"status":{"name":"Azinit.Test.Handler","configurationAppliedTime":null,"operation":"enable","status":"success","code":0,"formattedMessage":{"lang":"en-US","message":"enable done"}},"version":1.0,"timestampUTC":"2026-11-22T08:00:00Z"},"sequenceNumber":0}}],` +
		`"vmArtifactsAggregateStatus":{"goalStateAggregateStatus":{"formattedMessage":{"lang":"en-US","message":"GoalState executed successfully"},"timestampUTC":"2026-11-22T08:00:00Z","inSvdSeqNo":"1","status":"Success","code":0}}},` +
		`"guestOSInfo":{"computerName":"vm","osName":"debian","osVersion":"13","version":"2.15.0.1"},"supportedFeatures":[{"Key":"MultipleExtensionsPerHandler","Value":"1.0"},{"Key":"FastTrack","Value":"1.0"}]}`
	if string(doc) != want {
		t.Errorf("status:\n got %s\nwant %s", doc, want)
	}
}

func TestRedactSAS(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"no url": "no url",
		"GET https://a.blob/x?sv=2020&sig=abc%2F&se=1 failed": "GET https://a.blob/x?sv=<redacted>&sig=<redacted>&se=<redacted> failed",
		"https://a/b?comp=page&sig=zz":                        "https://a/b?comp=page&sig=<redacted>",
	} {
		if got := redactSAS(in); got != want {
			t.Errorf("redactSAS(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCommandOutput(t *testing.T) {
	t.Parallel()
	file := func(s string) *os.File {
		f, err := os.CreateTemp(t.TempDir(), "out")
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(s)
		return f
	}
	for _, tc := range []struct {
		name           string
		stdout, stderr string
		wantOut        int // characters of stdout kept
		wantErr        int
	}{
		{"short", "out", "err", 3, 3},
		{"long stdout", strings.Repeat("o", 5000), "err", 3200 - 20 - 3, 3},
		{"both long", strings.Repeat("o", 5000), strings.Repeat("e", 5000), 1590, 1590},
		{"multibyte", strings.Repeat("é", 4000), "", 3180, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := commandOutput(file(tc.stdout), file(tc.stderr))
			out, errOut, _ := strings.Cut(strings.TrimPrefix(got, "[stdout]\n"), "\n\n[stderr]\n")
			if n := len([]rune(out)); n != tc.wantOut {
				t.Errorf("stdout kept %d characters, want %d", n, tc.wantOut)
			}
			if n := len([]rune(errOut)); n != tc.wantErr {
				t.Errorf("stderr kept %d characters, want %d", n, tc.wantErr)
			}
			if n := len([]rune(got)); n > maxOutput {
				t.Errorf("output is %d characters, over %d", n, maxOutput)
			}
		})
	}
}

func or(s, fallback string) string {
	if s == "" {
		return fallback
	}
	return s
}

// alive reports whether process pid runs (a zombie waiting for its
// reaper does not).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	_, after, _ := strings.Cut(string(b), ") ")
	return !strings.HasPrefix(after, "Z")
}

func TestHeartbeat(t *testing.T) {
	t.Parallel()
	f := newFixture(t, false)
	f.apply("incarnation_1", goal(handler("1.0.0", extconfig.StateEnabled, 0, `{}`)))
	dir := filepath.Join(f.dir, "var/lib/waagent", testName+"-1.0.0")
	manifest := strings.Replace(handlerManifest(false), `"supportsMultipleExtensions"`, `"reportHeartbeat": true, "supportsMultipleExtensions"`, 1)
	if err := os.WriteFile(filepath.Join(dir, handlerManifestFile), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	heartbeat := filepath.Join(dir, heartbeatFile)
	os.WriteFile(heartbeat, []byte(`[{"version": 1.0, "heartbeat": {"status": "Installing", "code": 0, "formattedMessage": {"lang": "en-US", "message": "warming up"}}}]`), 0o644)
	for _, tc := range []struct {
		age  time.Duration
		want string
	}{
		{0, `"status":"Installing","code":0,"useExactVersion":true,"formattedMessage":{"lang":"en-US","message":"warming up"}`},
		{11 * time.Minute, `"status":"Unresponsive","code":-1,"useExactVersion":true,"formattedMessage":{"lang":"en-US","message":"Extension heartbeat is not responsive"}`},
	} {
		when := time.Now().Add(-tc.age)
		os.Chtimes(heartbeat, when, when)
		doc, err := f.m.Status(AgentInfo{})
		if err != nil || !strings.Contains(string(doc), tc.want) {
			t.Errorf("heartbeat %s old: status %s, want %s", tc.age, doc, tc.want)
		}
	}
}
