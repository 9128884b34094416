package fabric

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/azinit/azinit/datasource/azure/certs"
	"github.com/azinit/azinit/datasource/azure/extconfig"
	"github.com/azinit/azinit/fabric/certificates"
)

// writeCertFiles writes b as the agent does: <THUMBPRINT>.crt and .prv in dir.
func writeCertFiles(t *testing.T, dir string, b certificates.Bundle) {
	t.Helper()
	key, err := x509.MarshalPKCS8PrivateKey(b.Key)
	if err != nil {
		t.Fatal(err)
	}
	tp := certs.Thumbprint(b.Cert.Raw)
	writeFile(t, filepath.Join(dir, tp+".crt"), string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: b.Cert.Raw})))
	writeFile(t, filepath.Join(dir, tp+".prv"), string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key})))
}

// handlerLayout installs a version of the test handler as the agent lays
// it out (wire-protocol.md §17.1, §17.3, §20) under a temporary lib
// directory holding the scenario certificate; it returns the handler
// directory and its log folder.
func handlerLayout(t *testing.T, cert certificates.Bundle, version string) (base, logDir string) {
	t.Helper()
	for _, tool := range []string{"sh", "openssl", "sha256sum", "sed"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the test handler needs %s, which is not installed: %v", tool, err)
		}
	}
	tmp := t.TempDir()
	lib := filepath.Join(tmp, "lib")
	name := "Azinit.Test.Handler"
	// Every version is the same script, which reads its version from its
	// directory name.
	base = filepath.Join(lib, name+"-"+version)
	if err := os.CopyFS(base, os.DirFS(filepath.Join("..", "testdata", "handlers", name+"-1.0.0"))); err != nil {
		t.Fatal(err)
	}
	// The agent adds u+x to every file of the package.
	if err := os.Chmod(filepath.Join(base, "bin", "handler.sh"), 0o744); err != nil {
		t.Fatal(err)
	}
	writeCertFiles(t, lib, cert)
	logDir = filepath.Join(tmp, "log", name)
	for _, d := range []string{filepath.Join(base, "config"), filepath.Join(base, "status"), filepath.Join(logDir, "events")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	env, err := json.Marshal(map[string]string{
		"logFolder": logDir, "configFolder": filepath.Join(base, "config"), "statusFolder": filepath.Join(base, "status"),
		"heartbeatFile": filepath.Join(base, "heartbeat.log"), "eventsFolder": filepath.Join(logDir, "events"),
		"eventsFolder_preview": filepath.Join(logDir, "events"),
	})
	if err != nil {
		t.Fatal(err)
	}
	// Python's json.dumps separators, as the platform's agent writes it.
	doc := `[{"name": "` + name + `", "version": 1.0, "handlerEnvironment": ` +
		strings.NewReplacer(`","`, `", "`, `":"`, `": "`).Replace(string(env)) + `}]`
	writeFile(t, filepath.Join(base, "HandlerEnvironment.json"), doc)
	return base, logDir
}

// runHandler runs the handler's command for op as the agent does and
// returns its exit code.
func runHandler(t *testing.T, base, op string, env ...string) int {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", filepath.Join(base, "bin", "handler.sh")+" "+op)
	cmd.Dir = base
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode()
	}
	if err != nil {
		t.Fatalf("handler %s: %v\n%s", op, err, out)
	}
	return 0
}

// settingsFile is a settings file as the agent writes it (§17.4).
func settingsFile(t *testing.T, s extconfig.Settings) string {
	t.Helper()
	public := json.RawMessage("null")
	if s.PublicSettings != nil {
		public = s.PublicSettings
	}
	b, err := json.Marshal(map[string]any{"runtimeSettings": []any{map[string]any{"handlerSettings": map[string]any{
		"publicSettings": public, "protectedSettings": s.ProtectedSettings.Reveal(),
		"protectedSettingsCertThumbprint": s.ProtectedSettingsCertThumbprint,
	}}}})
	if err != nil {
		t.Fatal(err)
	}
	return strings.NewReplacer(`","`, `", "`, `":"`, `": "`, `":{`, `": {`, `":[`, `": [`).Replace(string(b))
}

func readStatus(t *testing.T, file string) *extconfig.Status {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	st, err := extconfig.ParseStatus(b)
	if err != nil || st == nil {
		t.Fatalf("%s: %v\n%s", file, err, b)
	}
	return st
}

func operationsLog(t *testing.T, logDir string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(logDir, "operations.log"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// TestHandlerScript runs the test handler for real with the sample
// scenario's settings, as the agent would.
func TestHandlerScript(t *testing.T) {
	s := loadScenario(t, sampleScenario(t))
	st, err := buildState(s, 1, testAddrs)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := extconfig.ParseExtensionsConfig(st.extensionsConfig)
	if err != nil {
		t.Fatal(err)
	}
	settings := ec.Handlers[0].Settings[0]
	sum := sha256.Sum256([]byte(s.Extensions.Plugins[0].protected.Reveal()))
	protectedSum := hex.EncodeToString(sum[:])

	base, logDir := handlerLayout(t, s.Certificates[0], "1.0.0")
	writeFile(t, filepath.Join(base, "config", "0.settings"), settingsFile(t, settings))
	if code := runHandler(t, base, "install", "ConfigSequenceNumber=0", "AZURE_GUEST_AGENT_UNINSTALL_CMD_EXIT_CODE=NOT_RUN"); code != 0 {
		t.Errorf("install exited %d", code)
	}
	if _, err := os.Stat(filepath.Join(base, "status", "0.status")); err == nil {
		t.Error("install wrote a status file")
	}
	if code := runHandler(t, base, "enable", "ConfigSequenceNumber=0", "AZURE_GUEST_AGENT_UNINSTALL_CMD_EXIT_CODE=NOT_RUN"); code != 0 {
		t.Errorf("enable exited %d", code)
	}
	status := readStatus(t, filepath.Join(base, "status", "0.status"))
	if status.Status != extconfig.StatusSuccess || status.Operation != "Enable" || status.Name != "Azinit.Test.Handler" || status.Code != 0 ||
		!strings.Contains(status.Message, "hello") || !strings.Contains(status.Message, "protected-sha256="+protectedSum) ||
		strings.Contains(status.Message, "s3cret") {
		t.Errorf("enable status: %+v", status)
	}
	if mrseq, err := os.ReadFile(filepath.Join(base, "mrseq")); err != nil || string(mrseq) != "0\n" {
		t.Errorf("mrseq %q, %v", mrseq, err)
	}

	// Knobs in the public settings; no protected settings.
	writeFile(t, filepath.Join(base, "config", "1.settings"), settingsFile(t, extconfig.Settings{
		PublicSettings: json.RawMessage(`{"message": "knobs", "enableStatus": "error", "enableExit": 3, "disableSleep": 0}`)}))
	if code := runHandler(t, base, "enable", "ConfigSequenceNumber=1"); code != 3 {
		t.Errorf("enable with enableExit 3 exited %d", code)
	}
	if status := readStatus(t, filepath.Join(base, "status", "1.status")); status.Status != extconfig.StatusError ||
		!strings.Contains(status.Message, "knobs") || strings.Contains(status.Message, "protected-sha256") {
		t.Errorf("enable with enableStatus error: %+v", status)
	}
	if code := runHandler(t, base, "disable", "ConfigSequenceNumber=1"); code != 0 {
		t.Errorf("disable exited %d", code)
	}
	if status := readStatus(t, filepath.Join(base, "status", "1.status")); status.Status != extconfig.StatusSuccess || status.Operation != "Disable" {
		t.Errorf("disable status: %+v", status)
	}

	// A multi-config extension whose protected settings do not decrypt.
	broken := settings
	broken.ProtectedSettings = extconfig.NewSecret("MIIBAAYJKoZIhvcNAQcDoA==")
	writeFile(t, filepath.Join(base, "config", "first.0.settings"), settingsFile(t, broken))
	runHandler(t, base, "enable", "ConfigSequenceNumber=0", "ConfigExtensionName=first")
	if status := readStatus(t, filepath.Join(base, "status", "first.0.status")); status.Status != extconfig.StatusError || status.Code != 1 ||
		!strings.Contains(status.Message, "do not decrypt") {
		t.Errorf("status with undecryptable protected settings: %+v", status)
	}

	want := []string{
		"install version=1.0.0 seq=0 ext=- uninstall_exit=NOT_RUN from=",
		"enable version=1.0.0 seq=0 ext=- uninstall_exit=NOT_RUN from=",
		"enable version=1.0.0 seq=1 ext=- uninstall_exit= from=",
		"disable version=1.0.0 seq=1 ext=- uninstall_exit= from=",
		"enable version=1.0.0 seq=0 ext=first uninstall_exit= from=",
	}
	if diff := cmp.Diff(want, operationsLog(t, logDir)); diff != "" {
		t.Errorf("operations.log (-want +got):\n%s", diff)
	}
}

// TestHandlerScriptVersion checks that a version's script reports the
// version of its directory.
func TestHandlerScriptVersion(t *testing.T) {
	s := loadScenario(t, sampleScenario(t))
	base, logDir := handlerLayout(t, s.Certificates[0], "1.1.0")
	writeFile(t, filepath.Join(base, "config", "0.settings"), settingsFile(t, extconfig.Settings{PublicSettings: json.RawMessage(`{"message": "up"}`)}))
	if code := runHandler(t, base, "update", "ConfigSequenceNumber=0", "VERSION=1.1.0", "AZURE_GUEST_AGENT_UPDATING_FROM_VERSION=1.0.0"); code != 0 {
		t.Errorf("update exited %d", code)
	}
	if status := readStatus(t, filepath.Join(base, "status", "0.status")); status.Operation != "Update" || status.Status != extconfig.StatusSuccess {
		t.Errorf("update status: %+v", status)
	}
	if diff := cmp.Diff([]string{"update version=1.1.0 seq=0 ext=- uninstall_exit= from=1.0.0"}, operationsLog(t, logDir)); diff != "" {
		t.Errorf("operations.log (-want +got):\n%s", diff)
	}
	m, err := extconfig.ParseHandlerManifest(mustRead(t, filepath.Join(base, "HandlerManifest.json")))
	if err != nil || m.EnableCommand != "bin/handler.sh enable" || !m.SupportsMultipleExtensions || m.ReportHeartbeat || m.ContinueOnUpdateFailure {
		t.Errorf("HandlerManifest.json: %+v, %v", m, err)
	}
}

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
