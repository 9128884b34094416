package blackbox

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/azinit/azinit/fabric"
)

const testHandler = "Azinit.Test.Handler"

// extMachine is a VM running azinit-extensions against a fabric serving a
// copy of the extensions scenario, which tests edit and reload.
type extMachine struct {
	*vm
	t        testing.TB
	scenario string // the scenario copy
	handlers string // its packages: the test handler as 1.0.0 and 1.1.0
}

// newExtMachine starts the fabric on the extensions scenario with
// extensionsYAML (the sample's when ""), once prepare changed the
// scenario; config is added to azinit's.
func newExtMachine(t testing.TB, extensionsYAML, config string, prepare ...func(*extMachine)) *extMachine {
	t.Helper()
	for _, tool := range []string{"openssl", "sha256sum", "sed"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the test handler needs %s: %v", tool, err)
		}
	}
	tmp := t.TempDir()
	m := &extMachine{t: t, scenario: filepath.Join(tmp, "scenario"), handlers: filepath.Join(tmp, "handlers")}
	if err := os.CopyFS(m.scenario, os.DirFS("../../testdata/scenarios/extensions")); err != nil {
		t.Fatal(err)
	}
	for _, version := range []string{"1.0.0", "1.1.0"} {
		m.addHandler(testHandler, version)
	}
	m.setExtensions(extensionsYAML)
	for _, p := range prepare {
		p(m)
	}
	f, err := fabric.Start(context.Background(), fabric.Options{Scenario: m.scenario})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	m.vm = &vm{root: t.TempDir(), fabric: f}
	u := f.URLs()
	writeFile(t, m.root, "/etc/azinit/azinit.yaml", fmt.Sprintf(`datasource:
  azure:
    wireserver: %s
    hostgaplugin: %s
    imds: %s
    retry_unit: 5ms
    request_timeout: 2s
extensions:
  goal_state_period: 1s
  status_period: 2s
`, u.Wireserver, u.HostGAPlugin, u.IMDS), 0o644)
	if config != "" {
		writeFile(t, m.root, "/etc/azinit/azinit.yaml.d/50-test.yaml", "extensions:\n"+config, 0o644)
	}
	return m
}

// addHandler makes the test handler available as name-version: the
// script takes both from its directory's name.
func (m *extMachine) addHandler(name, version string) {
	if err := os.CopyFS(filepath.Join(m.handlers, name+"-"+version), os.DirFS("../../testdata/handlers/"+testHandler+"-1.0.0")); err != nil {
		m.t.Fatal(err)
	}
}

// setExtensions writes extensions.yaml ("" keeps the sample's plugin),
// its packages taken from the machine's handlers.
func (m *extMachine) setExtensions(doc string) {
	if doc == "" {
		b, err := os.ReadFile("../../testdata/scenarios/extensions/extensions.yaml")
		if err != nil {
			m.t.Fatal(err)
		}
		doc = string(b)
	}
	doc = strings.Replace(doc, "packages: ../../handlers", "packages: ../handlers", 1)
	if err := os.WriteFile(filepath.Join(m.scenario, fabric.ExtensionsFile), []byte(doc), 0o644); err != nil {
		m.t.Fatal(err)
	}
	if m.vm != nil {
		if err := m.fabric.Reload(); err != nil {
			m.t.Fatal(err)
		}
	}
}

// once runs azinit-extensions --once, which must succeed, and returns
// its stderr.
func (m *extMachine) once() string {
	m.t.Helper()
	_, stderr, err := m.run(m.t, "azinit-extensions", "--once")
	if err != nil {
		m.t.Fatalf("azinit-extensions --once: %v\n%s", err, stderr)
	}
	return stderr
}

// onceFailing runs azinit-extensions --once, which must fail saying
// which handler failed.
func (m *extMachine) onceFailing(name string) {
	m.t.Helper()
	_, stderr, err := m.run(m.t, "azinit-extensions", "--once")
	if err == nil || !strings.Contains(stderr, "handlers not in their requested state: "+name) {
		m.t.Errorf("azinit-extensions --once: %v, want a failure naming %s\n%s", err, name, stderr)
	}
}

// ops returns the operations handler name logged since the last call.
func (m *extMachine) ops(name string) []string {
	m.t.Helper()
	file := filepath.Join(m.root, "var/log/azure", name, "operations.log")
	b, err := os.ReadFile(file)
	if err != nil {
		return nil
	}
	os.Remove(file)
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

// lastStatus is the handler entries of the last status the fabric took.
func (m *extMachine) lastStatus() []fabric.HandlerStatus {
	m.t.Helper()
	var last []fabric.HandlerStatus
	found := false
	for _, e := range m.fabric.Record() {
		if e.Kind != fabric.KindStatus || e.Body == nil {
			continue
		}
		hs, ok := e.Handlers()
		if !ok {
			m.t.Fatalf("status is not an aggregate status:\n%s", e.Body)
		}
		last, found = hs, true
	}
	if !found {
		m.t.Fatal("the fabric recorded no status")
	}
	return last
}

func (m *extMachine) checkOps(name string, want ...string) {
	m.t.Helper()
	if diff := cmp.Diff(want, m.ops(name)); diff != "" {
		m.t.Errorf("%s operations (-want +got):\n%s", name, diff)
	}
}

func TestExtensionLifecycle(t *testing.T) {
	m := newExtMachine(t, "", "")
	stderr := m.once()
	m.checkOps(testHandler,
		"install version=1.0.0 seq=0 ext=- uninstall_exit=NOT_RUN from=",
		"enable version=1.0.0 seq=0 ext=- uninstall_exit=NOT_RUN from=")
	sum := sha256.Sum256([]byte(`{"secret":"s3cret"}`))
	st := m.lastStatus()
	if len(st) != 1 || st[0].Status != "Ready" || st[0].RuntimeSettingsStatus == nil ||
		st[0].RuntimeSettingsStatus.SettingsStatus.Status.Status != "success" ||
		!strings.Contains(st[0].RuntimeSettingsStatus.SettingsStatus.Status.FormattedMessage.Message, "protected-sha256="+hex.EncodeToString(sum[:])) {
		t.Errorf("status after the first goal state: %+v", st)
	}
	// The secret reached the handler, and nothing else.
	if strings.Contains(stderr, "s3cret") {
		t.Error("the log shows the protected settings")
	}
	filepath.WalkDir(m.root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if b, _ := os.ReadFile(p); bytes.Contains(b, []byte("s3cret")) {
				t.Errorf("%s holds the protected settings in clear", p)
			}
		}
		return nil
	})

	settings := func(version, state string, seq int) string {
		return fmt.Sprintf(`packages: ../handlers
plugins:
  - {name: %s, version: "%s", state: %s, seq_no: %d, public_settings: {message: hello}, protected_settings: {secret: s3cret}}
`, testHandler, version, state, seq)
	}
	m.setExtensions(settings("1.0.0", "enabled", 1))
	m.once()
	m.checkOps(testHandler, "enable version=1.0.0 seq=1 ext=- uninstall_exit=NOT_RUN from=")
	if st := m.lastStatus(); len(st) != 1 || st[0].RuntimeSettingsStatus == nil || st[0].RuntimeSettingsStatus.SequenceNumber != 1 {
		t.Errorf("status after the new settings: %+v", st)
	}

	m.setExtensions(settings("1.1.0", "enabled", 2))
	m.once()
	m.checkOps(testHandler,
		"disable version=1.0.0 seq=2 ext=- uninstall_exit= from=",
		"update version=1.1.0 seq=2 ext=- uninstall_exit= from=1.0.0",
		"uninstall version=1.0.0 seq=2 ext=- uninstall_exit= from=",
		"install version=1.1.0 seq=2 ext=- uninstall_exit=0 from=",
		"enable version=1.1.0 seq=2 ext=- uninstall_exit=0 from=")
	if _, err := os.Stat(filepath.Join(m.root, "var/lib/waagent", testHandler+"-1.0.0")); err == nil {
		t.Error("the old version is still on disk")
	}
	if st := m.lastStatus(); len(st) != 1 || st[0].HandlerVersion != "1.1.0" || st[0].Status != "Ready" {
		t.Errorf("status after the update: %+v", st)
	}

	m.setExtensions(settings("1.1.0", "disabled", 2))
	m.once()
	m.checkOps(testHandler, "disable version=1.1.0 seq=2 ext=- uninstall_exit= from=")
	if st := m.lastStatus(); len(st) != 1 || st[0].Status != "NotReady" || st[0].FormattedMessage.Message != "Plugin disabled" {
		t.Errorf("status after disabling: %+v", st)
	}

	m.setExtensions(settings("1.1.0", "uninstall", 2))
	m.once()
	m.checkOps(testHandler, "uninstall version=1.1.0 seq=2 ext=- uninstall_exit= from=")
	if st := m.lastStatus(); len(st) != 0 {
		t.Errorf("an uninstalled handler is still reported: %+v", st)
	}
	if _, err := os.Stat(filepath.Join(m.root, "var/lib/waagent", testHandler+"-1.1.0")); err == nil {
		t.Error("the uninstalled handler is still on disk")
	}
}

func TestExtensionFailures(t *testing.T) {
	for _, tc := range []struct {
		name    string
		public  string
		code    int
		message string
	}{
		{"failing install", "{installExit: 52}", 1007, "Non-zero exit code: 52, "},
		{"hung enable", "{enableSleep: 600}", 1011, "Timeout(2): "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := newExtMachine(t, fmt.Sprintf(`packages: ../handlers
plugins:
  - {name: %s, version: "1.0.0", public_settings: %s}
`, testHandler, tc.public), "  timeouts: {enable: 2s}\n")
			m.onceFailing(testHandler)
			st := m.lastStatus()
			if len(st) != 1 || st[0].Status != "NotReady" || st[0].Code != tc.code || !strings.Contains(st[0].FormattedMessage.Message, tc.message) {
				t.Fatalf("status: %+v, want NotReady, code %d, %q", st, tc.code, tc.message)
			}
			if rs := st[0].RuntimeSettingsStatus; rs == nil || rs.SettingsStatus.Status.Status != "error" || rs.SettingsStatus.Status.Code != tc.code {
				t.Errorf("extension status: %+v, want error %d", rs, tc.code)
			}
			// The command is gone with everything it started.
			dir := filepath.Join(m.root, "var/lib/waagent", testHandler+"-1.0.0")
			if pids := processesIn(dir); len(pids) > 0 {
				t.Errorf("processes %v still run in %s", pids, dir)
			}
		})
	}
}

// processesIn lists the live processes whose working directory is dir.
func processesIn(dir string) []string {
	var pids []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if cwd, err := os.Readlink("/proc/" + e.Name() + "/cwd"); err == nil && cwd == dir {
			if stat, err := os.ReadFile("/proc/" + e.Name() + "/stat"); err == nil && !strings.Contains(string(stat), ") Z ") {
				pids = append(pids, e.Name())
			}
		}
	}
	return pids
}

// maliciousPackage is a package with HandlerManifest.json and one hostile
// entry.
func maliciousPackage(t testing.TB, add func(w *zip.Writer)) []byte {
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	f, _ := w.Create("HandlerManifest.json")
	f.Write([]byte(`[{"handlerManifest": {"installCommand": "x", "uninstallCommand": "x", "updateCommand": "x", "enableCommand": "x", "disableCommand": "x"}}]`))
	add(w)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestMaliciousPackagesAreRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		add  func(w *zip.Writer)
	}{
		{"zip slip", func(w *zip.Writer) {
			f, _ := w.Create("../../../../evil")
			f.Write([]byte("pwned"))
		}},
		{"escaping symlink", func(w *zip.Writer) {
			h := &zip.FileHeader{Name: "bin"}
			h.SetMode(os.ModeSymlink | 0o777)
			f, _ := w.CreateHeader(h)
			f.Write([]byte("../../../../etc"))
			g, _ := w.Create("bin/evil")
			g.Write([]byte("pwned"))
		}},
		{"zip bomb", func(w *zip.Writer) {
			f, _ := w.CreateHeader(&zip.FileHeader{Name: "bomb", Method: zip.Deflate})
			zeros := make([]byte, 1<<20)
			for range 64 {
				f.Write(zeros)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := newExtMachine(t, "plugins:\n  - {name: "+testHandler+", version: \"1.0.0\", public_settings: {a: 1}}\n", "  max_package_mb: 1\n",
				func(m *extMachine) {
					os.MkdirAll(filepath.Join(m.scenario, "extensions"), 0o755)
					pkg := filepath.Join(m.scenario, "extensions", testHandler+"__1.0.0.zip")
					if err := os.WriteFile(pkg, maliciousPackage(t, tc.add), 0o644); err != nil {
						t.Fatal(err)
					}
				})
			m.onceFailing(testHandler)
			st := m.lastStatus()
			if len(st) != 1 || st[0].Code != 1005 || !strings.Contains(st[0].FormattedMessage.Message, "unsafe archive") {
				t.Errorf("status: %+v, want code 1005 naming the unsafe archive", st)
			}
			filepath.WalkDir(m.root, func(p string, d fs.DirEntry, err error) error {
				if err == nil && (d.Name() == "evil" || d.Name() == "bomb") {
					t.Errorf("the package wrote %s", p)
				}
				return nil
			})
			if _, err := os.Stat(filepath.Join(m.root, "var/lib/waagent", testHandler+"-1.0.0")); err == nil {
				t.Error("the refused package left a handler directory")
			}
		})
	}
}

// daemon is a running azinit-extensions.
type daemon struct {
	cmd    *exec.Cmd
	stderr bytes.Buffer
}

func (m *extMachine) startDaemon(env ...string) *daemon {
	d := &daemon{cmd: exec.Command(binary("azinit-extensions"), "--root", m.root)}
	d.cmd.Env = append(os.Environ(), env...)
	d.cmd.Stderr = &d.stderr
	if err := d.cmd.Start(); err != nil {
		m.t.Fatal(err)
	}
	m.t.Cleanup(func() { d.cmd.Process.Kill(); d.cmd.Wait() })
	return d
}

// stop sends SIGTERM and waits for a clean exit.
func (d *daemon) stop(t testing.TB) {
	t.Helper()
	d.cmd.Process.Signal(syscall.SIGTERM)
	if err := d.cmd.Wait(); err != nil {
		t.Fatalf("azinit-extensions after SIGTERM: %v\n%s", err, d.stderr.String())
	}
}

// eventually polls cond until it holds or a minute passed.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestExtensionsDaemonRestartsMidGoalState(t *testing.T) {
	const second = "Azinit.Test.Second"
	m := newExtMachine(t, fmt.Sprintf(`packages: ../handlers
plugins:
  - {name: %s, version: "1.0.0", public_settings: {installSleep: 2}}
  - {name: %s, version: "1.0.0", public_settings: {message: two}}
`, testHandler, second), "", func(m *extMachine) { m.addHandler(second, "1.0.0") })
	logged := func(name, op string) func() bool {
		return func() bool {
			b, _ := os.ReadFile(filepath.Join(m.root, "var/log/azure", name, "operations.log"))
			return strings.Contains(string(b), op)
		}
	}

	d := m.startDaemon()
	eventually(t, "the first install to start", logged(testHandler, "install"))
	d.stop(t) // mid-install: it finishes, nothing else starts
	first := m.ops(testHandler)
	if len(first) != 2 || !strings.HasPrefix(first[0], "install") || !strings.HasPrefix(first[1], "enable") {
		t.Errorf("before the restart %s ran %q, want its install and enable", testHandler, first)
	}
	if ops := m.ops(second); ops != nil {
		t.Errorf("%s ran %q after SIGTERM", second, ops)
	}

	uploads := len(m.fabric.Record())
	d = m.startDaemon()
	eventually(t, "the second handler's enable", logged(second, "enable"))
	eventually(t, "a status with both handlers", func() bool {
		st := m.lastStatus()
		return len(m.fabric.Record()) > uploads && len(st) == 2 && st[0].Status == "Ready" && st[1].Status == "Ready"
	})
	d.stop(t)
	m.checkOps(testHandler) // nothing ran twice
	m.checkOps(second,
		"install version=1.0.0 seq=0 ext=- uninstall_exit=NOT_RUN from=",
		"enable version=1.0.0 seq=0 ext=- uninstall_exit=NOT_RUN from=")
}

func TestExtensionsFastTrack(t *testing.T) {
	doc := func(onHold bool, seq int) string {
		return fmt.Sprintf(`fast_track: true
on_hold: %t
storage_reachable: false
packages: ../handlers
plugins:
  - {name: %s, version: "1.0.0", seq_no: %d, public_settings: {message: hello}, protected_settings: {secret: s3cret}}
`, onHold, testHandler, seq)
	}
	m := newExtMachine(t, doc(true, 0), "")
	m.once()
	m.checkOps(testHandler) // on hold: nothing runs

	m.setExtensions(doc(false, 0))
	m.once()
	m.checkOps(testHandler,
		"install version=1.0.0 seq=0 ext=- uninstall_exit=NOT_RUN from=",
		"enable version=1.0.0 seq=0 ext=- uninstall_exit=NOT_RUN from=")
	// Storage refused the artifacts; the HostGAPlugin served them.
	kinds := map[string]int{}
	for _, e := range m.fabric.Record() {
		kinds[fmt.Sprintf("%s %s %d", e.Server, e.Kind, e.Status)]++
	}
	for _, want := range []string{"wireserver manifest 403", "hostgaplugin manifest 200", "hostgaplugin package 200", "hostgaplugin vmsettings 200"} {
		if kinds[want] == 0 {
			t.Errorf("no %q request recorded: %v", want, kinds)
		}
	}

	// The daemon sees the next change through vmSettings alone.
	before := len(m.fabric.Record())
	d := m.startDaemon()
	eventually(t, "the daemon's first vmSettings poll", func() bool {
		for _, e := range m.fabric.Record()[before:] {
			if e.Kind == fabric.KindVMSettings {
				return true
			}
		}
		return false
	})
	m.setExtensions(doc(false, 1))
	eventually(t, "enable with the new settings", func() bool {
		b, _ := os.ReadFile(filepath.Join(m.root, "var/log/azure", testHandler, "operations.log"))
		return strings.Contains(string(b), "enable version=1.0.0 seq=1")
	})
	d.stop(t)
	if !strings.Contains(d.stderr.String(), "source=FastTrack channel=HostGAPlugin") {
		t.Errorf("the change did not come through vmSettings:\n%s", d.stderr.String())
	}
}

func TestExtensionsDaemonTalksToSystemd(t *testing.T) {
	m := newExtMachine(t, "", "")
	sock := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	d := m.startDaemon("NOTIFY_SOCKET="+sock, "WATCHDOG_USEC=400000")
	var got []string
	buf := make([]byte, 4096)
	seen := func(prefix string) bool {
		for _, s := range got {
			if strings.HasPrefix(s, prefix) {
				return true
			}
		}
		return false
	}
	read := func(prefix string) {
		t.Helper()
		conn.SetReadDeadline(time.Now().Add(time.Minute))
		for !seen(prefix) {
			n, err := conn.Read(buf)
			if err != nil {
				t.Fatalf("waiting for %s: %v (got %q)", prefix, err, got)
			}
			got = append(got, strings.Split(string(buf[:n]), "\n")...)
		}
	}
	read("READY=1")
	read("STATUS=goal state incarnation_1")
	read("WATCHDOG=1")
	d.cmd.Process.Signal(syscall.SIGTERM)
	read("STOPPING=1")
	if err := d.cmd.Wait(); err != nil {
		t.Errorf("azinit-extensions after SIGTERM: %v\n%s", err, d.stderr.String())
	}
}

// Without Fast Track the HostGAPlugin still serves the artifacts storage
// refuses.
func TestArtifactsThroughTheHostGAPluginWithoutFastTrack(t *testing.T) {
	m := newExtMachine(t, fmt.Sprintf(`storage_reachable: false
packages: ../handlers
plugins:
  - {name: %s, version: "1.0.0", public_settings: {message: hello}}
`, testHandler), "  fast_track: false\n")
	m.once()
	m.checkOps(testHandler,
		"install version=1.0.0 seq=0 ext=- uninstall_exit=NOT_RUN from=",
		"enable version=1.0.0 seq=0 ext=- uninstall_exit=NOT_RUN from=")
	for _, e := range m.fabric.Record() {
		if e.Kind == fabric.KindVMSettings {
			t.Errorf("vmSettings asked for with fast_track off: %+v", e)
		}
	}
}
