package stages

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/azinit/azinit/internal/config"
	"github.com/azinit/azinit/internal/sys"
	"github.com/azinit/azinit/modules"
	"github.com/azinit/azinit/modules/modulestest"
)

// fake is a scripted module that logs its runs.
type fake struct {
	name   string
	err    error
	job    bool  // start a background job
	jobErr error // what the job returns
	runs   *[]string
	mu     *sync.Mutex
}

func (f fake) Name() string { return f.name }

func (f fake) Apply(ctx context.Context, env *modules.Env) (modules.Outcome, error) {
	f.mu.Lock()
	*f.runs = append(*f.runs, f.name)
	f.mu.Unlock()
	if f.job {
		env.Defer("job", func(context.Context) error {
			f.mu.Lock()
			*f.runs = append(*f.runs, f.name+" job")
			f.mu.Unlock()
			return f.jobErr
		})
	}
	if f.err != nil {
		return "", f.err
	}
	return modules.Changed, nil
}

type world struct {
	root   *sys.Root
	sysfs  string
	cfg    config.Config
	runs   []string
	mu     sync.Mutex
	failed error
}

func newWorld(t *testing.T) *world {
	w := &world{root: modulestest.NewRoot(t), sysfs: t.TempDir(), cfg: config.Default()}
	w.cfg.Datasource.Azure.Sysfs = w.sysfs
	w.setID(t, "11111111-2222-3333-4444-555555555555")
	return w
}

// setID makes the DMI say id (as a Gen2 VM, so it is used as is).
func (w *world) setID(t *testing.T, id string) {
	dir := filepath.Join(w.sysfs, "class/dmi/id")
	os.MkdirAll(dir, 0o755)
	os.MkdirAll(filepath.Join(w.sysfs, "firmware/efi"), 0o755)
	if err := os.WriteFile(filepath.Join(dir, "product_uuid"), []byte(id), 0o444); err != nil {
		t.Fatal(err)
	}
}

func (w *world) module(name string) fake { return fake{name: name, runs: &w.runs, mu: &w.mu} }

func (w *world) run(t *testing.T, s Stage) error {
	t.Helper()
	w.runs = nil
	return Run(t.Context(), Options{Root: w.root, Config: &w.cfg, Run: &modulestest.Runner{}, Kernel: &modulestest.Kernel{}}, s)
}

// reboot forgets what /run held.
func (w *world) reboot(t *testing.T) {
	if err := os.RemoveAll(w.root.HostPath("/run")); err != nil {
		t.Fatal(err)
	}
}

func TestFrequencies(t *testing.T) {
	w := newWorld(t)
	stage := Stage{Name: "local", Steps: []Step{
		{w.module("instance"), PerInstance},
		{w.module("boot"), PerBoot},
		{w.module("always"), Always},
	}}
	for i, want := range [][]string{
		{"instance", "boot", "always"}, // first boot
		{"always"},                     // the same boot again
	} {
		if err := w.run(t, stage); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, w.runs); diff != "" {
			t.Errorf("run %d (-want +got):\n%s", i, diff)
		}
	}
	w.reboot(t)
	w.run(t, stage)
	if diff := cmp.Diff([]string{"boot", "always"}, w.runs); diff != "" {
		t.Errorf("after a reboot (-want +got):\n%s", diff)
	}
	w.setID(t, "99999999-2222-3333-4444-555555555555")
	w.reboot(t)
	w.run(t, stage)
	if diff := cmp.Diff([]string{"instance", "boot", "always"}, w.runs); diff != "" {
		t.Errorf("new instance (-want +got):\n%s", diff)
	}
	if got := modulestest.ReadFile(t, w.root, StateDir+"/previous-instance-id"); got != "11111111-2222-3333-4444-555555555555" {
		t.Errorf("previous-instance-id = %q", got)
	}
}

func TestFailureDoesNotStopOthers(t *testing.T) {
	w := newWorld(t)
	bad := w.module("bad")
	bad.err = errors.New("boom")
	stage := Stage{Name: "local", Steps: []Step{{bad, PerInstance}, {w.module("good"), PerInstance}}}
	err := w.run(t, stage)
	if !errors.Is(err, ErrFailed) {
		t.Fatalf("err = %v, want ErrFailed", err)
	}
	if diff := cmp.Diff([]string{"bad", "good"}, w.runs); diff != "" {
		t.Errorf("runs (-want +got):\n%s", diff)
	}
	st, err := ReadStatus(w.root)
	if err != nil {
		t.Fatal(err)
	}
	local := st.V1.Stages["local"]
	if local.End == nil || len(local.Modules) != 2 || local.Modules[0].Outcome != OutcomeFailed ||
		local.Modules[0].Error != "boom" || local.Modules[1].Outcome != "changed" {
		t.Errorf("status = %+v", local)
	}
	if diff := cmp.Diff([]string{"bad: boom"}, local.Errors); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
	// The failed module runs again; the one that succeeded does not.
	w.run(t, stage)
	if diff := cmp.Diff([]string{"bad"}, w.runs); diff != "" {
		t.Errorf("second run (-want +got):\n%s", diff)
	}
}

func TestDeferredWork(t *testing.T) {
	w := newWorld(t)
	bad, good := w.module("other"), w.module("keys")
	bad.job, bad.jobErr = true, errors.New("keygen died")
	good.job = true
	stage := Stage{Name: "network", Steps: []Step{{bad, PerInstance}, {good, PerInstance}, {w.module("ready"), Always}}}
	if err := w.run(t, stage); !errors.Is(err, ErrFailed) {
		t.Fatalf("err = %v, want ErrFailed from the deferred job", err)
	}
	// Deferred work starts once every module has run.
	if i := slices.Index(w.runs, "ready"); i != 2 || len(w.runs) != 5 {
		t.Errorf("runs %q: want the modules, then the jobs", w.runs)
	}
	st, _ := ReadStatus(w.root)
	mods := st.V1.Stages["network"].Modules
	var names []string
	for _, m := range mods {
		names = append(names, m.Name+"="+m.Outcome)
	}
	if diff := cmp.Diff([]string{"other=changed", "keys=changed", "ready=changed", "other: job=failed", "keys: job=changed"}, names); diff != "" {
		t.Errorf("modules (-want +got):\n%s", diff)
	}
	// The module whose deferred work failed runs again; the other not.
	w.run(t, stage)
	if diff := cmp.Diff([]string{"other", "ready", "other job"}, w.runs); diff != "" {
		t.Errorf("second run (-want +got):\n%s", diff)
	}
}

func TestResultAfterFinal(t *testing.T) {
	w := newWorld(t)
	bad := w.module("bad")
	bad.err = errors.New("boom")
	w.run(t, Stage{Name: "local", Steps: []Step{{bad, Always}}})
	if _, err := ReadResult(w.root); !os.IsNotExist(err) {
		t.Fatalf("result.json before the final stage: %v", err)
	}
	if err := w.run(t, Stage{Name: "final", Steps: []Step{{w.module("msg"), Always}}}); err != nil {
		t.Fatal(err)
	}
	res, err := ReadResult(w.root)
	if err != nil {
		t.Fatal(err)
	}
	if res.V1.InstanceID != "11111111-2222-3333-4444-555555555555" || len(res.V1.Errors) != 1 || !strings.Contains(res.V1.Errors[0], "boom") {
		t.Errorf("result = %+v", res.V1)
	}
	// The local stage starts a new boot's status.
	w.run(t, Stage{Name: "local"})
	st, _ := ReadStatus(w.root)
	if _, ok := st.V1.Stages["final"]; ok {
		t.Error("the local stage kept the previous boot's stages")
	}
}
