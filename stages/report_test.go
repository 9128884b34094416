package stages

import (
	"bytes"
	"errors"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/azinit/azinit/modules"
	"github.com/azinit/azinit/modules/modulestest"
)

func TestReportAndAnalyze(t *testing.T) {
	root := modulestest.NewRoot(t)
	if r, err := ReadReport(root); err != nil || r.State != StateNotStarted || r.ExitCode() != 3 {
		t.Fatalf("before any stage: %+v, %v", r, err)
	}
	t0 := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	end := t0.Add(80 * time.Millisecond)
	st := &Status{V1: StatusV1{Datasource: "azure", InstanceID: "i-1", Stages: map[string]*StageStatus{
		"local": {Start: t0, End: &end, DurationMS: 20, Errors: []string{}, Modules: []ModuleStatus{
			{Name: "hostname", Outcome: "changed", Start: t0, DurationMS: 2},
		}},
		"network": {Start: t0.Add(30 * time.Millisecond), End: &end, DurationMS: 50, Errors: []string{"users: boom"}, Modules: []ModuleStatus{
			{Name: "users", Outcome: OutcomeFailed, Start: t0.Add(35 * time.Millisecond), DurationMS: 33, Error: "boom"},
			{Name: "ssh-keys", Outcome: OutcomeDoneBefore},
			{Name: "report-ready", Outcome: "changed", Start: t0.Add(70 * time.Millisecond), DurationMS: 5},
		}},
	}}}
	if err := writeJSON(root, StatusPath, st); err != nil {
		t.Fatal(err)
	}
	r, err := ReadReport(root)
	if err != nil || r.State != StateRunning || r.ExitCode() != 1 || len(r.Errors) != 1 {
		t.Fatalf("running with an error: %+v, %v", r, err)
	}
	writeJSON(root, ResultPath, Result{V1: ResultV1{Datasource: "azure"}})
	root.MkdirAll("/var/lib/azinit/instances/i-1", 0o700)
	root.WriteFileAtomic("/var/lib/azinit/instances/i-1/"+modules.ProvisioningFile, []byte(`{"state":"Ready","incarnation":"1"}`), 0o600)
	if r, _ = ReadReport(root); r.State != StateDone || r.Provisioning == nil || r.Provisioning.State != "Ready" {
		t.Fatalf("done: %+v", r)
	}
	var text bytes.Buffer
	r.WriteText(&text)
	for _, want := range []string{"status:        done", "provisioning:  Ready (incarnation 1", "network      done in 50.0 ms", "error:         users: boom"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("status text lacks %q:\n%s", want, text.String())
		}
	}

	a, err := Analyze(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Modules) != 3 || a.Modules[0].Module != "users" || a.ReadyMS != 75 {
		t.Errorf("analysis = %+v", a)
	}
	text.Reset()
	a.WriteText(&text)
	if !strings.Contains(text.String(), "75.0 ms  provisioning reported") || !strings.Contains(text.String(), "33.0 ms  network  users (failed)") {
		t.Errorf("analysis text:\n%s", text.String())
	}
}

func TestClean(t *testing.T) {
	root := modulestest.NewRoot(t)
	for _, f := range []string{"/var/lib/azinit/instance-id", "/run/azinit/status.json", "/var/lib/waagent/provisioned", LogPath} {
		root.MkdirAll(f[:strings.LastIndex(f, "/")], 0o755)
		root.WriteFileAtomic(f, []byte("x"), 0o600)
	}
	if err := Clean(root, false); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"/var/lib/azinit", "/run/azinit", "/var/lib/waagent/provisioned"} {
		if _, err := root.Stat(f); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s survived clean: %v", f, err)
		}
	}
	if _, err := root.Stat(LogPath); err != nil {
		t.Errorf("clean without --logs removed the log: %v", err)
	}
	Clean(root, true)
	if _, err := root.Stat(LogPath); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("clean --logs kept the log: %v", err)
	}
}
