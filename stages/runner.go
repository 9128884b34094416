// Package stages runs azinit's boot stages: which modules run in which
// stage, in what order and how often, with the datasource each stage
// reads, the semaphores that make "once per instance" true, and status.json
// recording every module's outcome and duration.
package stages

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"sync"
	"time"

	"github.com/azinit/azinit/datasource/azure"
	"github.com/azinit/azinit/datasource/azure/certs"
	"github.com/azinit/azinit/datasource/azure/kvp"
	"github.com/azinit/azinit/internal/config"
	"github.com/azinit/azinit/internal/httpx"
	"github.com/azinit/azinit/internal/logging"
	"github.com/azinit/azinit/internal/sys"
	"github.com/azinit/azinit/modules"
)

// Frequency is how often a module runs.
type Frequency string

// The frequencies.
const (
	PerInstance Frequency = "per-instance" // once for each VM instance
	PerBoot     Frequency = "per-boot"     // once each boot
	Always      Frequency = "always"       // every time its stage runs
)

// Step is a module in a stage, with its frequency.
type Step struct {
	Module    modules.Module
	Frequency Frequency
}

// Stage is a list of modules and the sources they need read live; the
// rest of the datasource comes from the cache the previous stage left.
type Stage struct {
	Name    string
	Sources azure.Sources
	// TransportKey has the stage make the transport key pair ready (load
	// it, or generate it while the stage works) for the certificates step,
	// and save it before exiting.
	TransportKey bool
	Steps        []Step
}

// Options are what a stage runs with.
type Options struct {
	Root   *sys.Root
	Config *config.Config
	Log    *slog.Logger
	Run    sys.Runner
	Kernel sys.Kernel
	// HTTP reaches the platform; nil builds one from the configuration.
	HTTP *httpx.Client
	Now  func() time.Time
}

// ErrFailed is returned when a stage ran but some of its work failed;
// status.json says what.
var ErrFailed = errors.New("stage finished with errors")

// Where the stages keep state under the target root (design.md §5).
const (
	StateDir       = "/var/lib/azinit"
	InstanceIDPath = StateDir + "/instance-id"
	bootSemDir     = "/run/azinit/sem"
)

// Run runs stage s: it reads the datasource, resolves the instance, runs
// each module due, waits for the background work they started, and
// records all of it in status.json. One module failing does not stop the
// others; the stage then returns ErrFailed.
func Run(ctx context.Context, o Options, s Stage) error {
	o = o.withDefaults()
	r := &run{o: o, stage: s}
	status, err := loadStatus(o.Root, s.Name == Names[0])
	if err != nil {
		return err
	}
	r.status = status
	r.st = &StageStatus{Start: o.Now().UTC(), Errors: []string{}, Modules: []ModuleStatus{}}
	status.V1.Stage = s.Name
	status.V1.Stages[s.Name] = r.st
	if err := r.save(); err != nil {
		return err
	}

	d := r.datasource(ctx)
	inst := r.instance(d)
	status.V1.InstanceID = inst.ID
	r.runModules(ctx, r.env(d, inst))
	if r.transport != nil {
		r.saveTransport(ctx)
	}
	if s.Sources != 0 { // modules may have added to it (certificates)
		if err := d.SaveCache(o.Root); err != nil {
			r.fail("datasource cache", err)
		}
	}
	if err := writeInstanceData(o.Root, d); err != nil {
		r.fail("instance data", err)
	}

	end := o.Now().UTC()
	r.st.End, r.st.DurationMS = &end, ms(end.Sub(r.st.Start))
	status.V1.Stage = ""
	if err := r.save(); err != nil {
		return err
	}
	if s.Name == Names[len(Names)-1] {
		res := Result{V1: ResultV1{Datasource: "azure", InstanceID: inst.ID, Errors: status.Errors()}}
		if err := writeJSON(o.Root, ResultPath, res); err != nil {
			return err
		}
	}
	if len(r.st.Errors) > 0 {
		return fmt.Errorf("%s: %w: %d (see %s)", s.Name, ErrFailed, len(r.st.Errors), StatusPath)
	}
	return nil
}

func (o Options) withDefaults() Options {
	if o.Log == nil {
		o.Log = logging.Discard()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.HTTP == nil {
		o.HTTP = azure.NewHTTPClient(o.Config.Datasource.Azure, o.Log)
	}
	return o
}

// run is one stage run.
type run struct {
	o      Options
	stage  Stage
	status *Status
	st     *StageStatus
	// transport is the key pair being prepared for the certificates step,
	// in stages that read the wireserver.
	transport *certs.Pending
}

func (r *run) save() error { return writeJSON(r.o.Root, StatusPath, r.status) }

// fail records a failure of what (a source, a module) in the stage.
func (r *run) fail(what string, err error) {
	r.st.Errors = append(r.st.Errors, fmt.Sprintf("%s: %v", what, err))
}

func (r *run) azureOptions() azure.Options {
	return azure.Options{
		Root:               r.o.Root,
		Config:             r.o.Config.Datasource.Azure,
		HTTP:               r.o.HTTP,
		PasswordSaltLength: r.o.Config.Users.PasswordSaltLength,
		Log:                r.o.Log,
	}
}

// moduleOptions are the platform options modules get: with the transport
// key being prepared, for the certificates step.
func (r *run) moduleOptions() azure.Options {
	o := r.azureOptions()
	o.Transport = r.transport
	return o
}

// datasource is the cache the previous stage left, refreshed from the
// stage's live sources, and cached again for the next stage.
func (r *run) datasource(ctx context.Context) *azure.Data {
	if r.stage.TransportKey {
		// Generating a key takes tens of milliseconds: it runs while the
		// sources are read and the modules work.
		r.transport = certs.PrepareTransport(r.o.Root, azure.LibDir, rand.Reader, r.o.Log)
	}
	d, err := azure.LoadCache(r.o.Root)
	switch {
	case errors.Is(err, azure.ErrNoCache):
		d = &azure.Data{}
	case err != nil:
		r.fail("datasource cache", err)
		if d == nil {
			d = &azure.Data{}
		}
	}
	if r.stage.Sources == 0 {
		return d
	}
	// The certificates step fetches the certificates, with the key.
	if err := d.Fetch(ctx, r.azureOptions(), r.stage.Sources); err != nil {
		r.fail("datasource", err)
	}
	if err := d.SaveCache(r.o.Root); err != nil {
		r.fail("datasource cache", err)
	}
	return d
}

// saveTransport keeps the transport key pair for later boots and the
// extensions (a pair generated this time is saved; a loaded one is left).
func (r *run) saveTransport(ctx context.Context) {
	t, err := r.transport.Wait(ctx)
	if err == nil {
		if err = r.o.Root.MkdirAll(azure.LibDir, 0o700); err == nil {
			err = t.Save(r.o.Root, azure.LibDir)
		}
	}
	if err != nil {
		r.fail("transport key", err)
	}
}

// instance resolves the VM instance and its state directory, starting a
// new one when the id changed.
func (r *run) instance(d *azure.Data) modules.Instance {
	id, err := instanceID(r.o.Config.Datasource.Azure.Sysfs, d)
	if err != nil {
		r.fail("instance id", err)
	}
	prev, _ := r.o.Root.ReadFile(InstanceIDPath)
	if id == "" {
		id = string(prev) // keep going as the instance last seen
	}
	if id == "" {
		id = "unknown"
	}
	inst := modules.Instance{ID: id, Dir: path.Join(StateDir, "instances", id)}
	if err := r.o.Root.MkdirAll(path.Join(inst.Dir, "sem"), 0o700); err != nil {
		r.fail("instance directory", err)
		return inst
	}
	if string(prev) != id {
		r.o.Log.Info("new instance", "instance", id, "previous", string(prev))
		if len(prev) > 0 {
			if err := r.o.Root.WriteFileAtomic(StateDir+"/previous-instance-id", prev, 0o644); err != nil {
				r.fail("instance id", err)
			}
		}
		if err := r.o.Root.WriteFileAtomic(InstanceIDPath, []byte(id), 0o644); err != nil {
			r.fail("instance id", err)
		}
	}
	return inst
}

// instanceID is the DMI system UUID (Gen1 byte order fixed), else IMDS
// vmId, else the goal state's container.
func instanceID(sysfs string, d *azure.Data) (string, error) {
	id, err := azure.InstanceID(sysfs)
	if err == nil {
		return id, nil
	}
	switch {
	case d.IMDS != nil && d.IMDS.Compute.VMID != "":
		return d.IMDS.Compute.VMID, nil
	case d.GoalState != nil:
		return d.GoalState.ContainerID, nil
	}
	return "", err
}

func (r *run) env(d *azure.Data, inst modules.Instance) *modules.Env {
	env := &modules.Env{
		Root:     r.o.Root,
		Run:      r.o.Run,
		Kernel:   r.o.Kernel,
		Live:     r.o.Root.Live(),
		Config:   r.o.Config,
		Data:     d,
		Azure:    r.moduleOptions(),
		Instance: inst,
		Log:      r.o.Log,
		Now:      r.o.Now,
		Failures: r.failures,
	}
	if _, err := r.o.Root.Stat(kvp.Dir); err == nil {
		if pool, err := kvp.Open(r.o.Root, kvp.Options{}); err == nil {
			env.KVP = pool
		}
	}
	return env
}

// failures are the failures recorded this boot, for report-ready.
func (r *run) failures() []modules.Failure {
	var out []modules.Failure
	for _, name := range Names {
		if st := r.status.V1.Stages[name]; st != nil {
			for _, e := range st.Errors {
				out = append(out, modules.Failure{Stage: name, What: e})
			}
		}
	}
	return out
}

// job is work a module deferred.
type job struct {
	module string
	name   string
	fn     func(context.Context) error
}

// runModules runs the steps due, then the work they deferred, all of it
// at once. A module's semaphore is written once it and its deferred work
// succeeded.
func (r *run) runModules(ctx context.Context, env *modules.Env) {
	var jobs []job
	current := ""
	// Modules call Defer while they run, so current names the caller.
	env.Defer = func(name string, fn func(context.Context) error) {
		jobs = append(jobs, job{module: current, name: name, fn: fn})
	}
	pending := map[string]Step{} // modules whose semaphore waits for their jobs
	for _, step := range r.stage.Steps {
		name := step.Module.Name()
		sem := r.semaphore(env.Instance, step)
		if sem != "" {
			if _, err := r.o.Root.Stat(sem); err == nil {
				r.record(ModuleStatus{Name: name, Frequency: step.Frequency, Outcome: OutcomeDoneBefore, Start: r.o.Now().UTC()}, nil)
				continue
			}
		}
		current = name
		before := len(jobs)
		start := r.o.Now().UTC()
		var outcome modules.Outcome
		d, err := logging.Op(ctx, r.o.Log, "module "+name, func(ctx context.Context) (err error) {
			outcome, err = step.Module.Apply(ctx, env)
			return err
		})
		r.record(ModuleStatus{Name: name, Frequency: step.Frequency, Outcome: string(outcome), Start: start, DurationMS: ms(d)}, err)
		switch {
		case err != nil:
		case len(jobs) > before:
			pending[name] = step
		default:
			r.markDone(sem)
		}
	}
	failedJobs := map[string]bool{}
	var wg sync.WaitGroup
	done := make([]ModuleStatus, len(jobs))
	errs := make([]error, len(jobs))
	for i, j := range jobs {
		wg.Go(func() {
			start := r.o.Now()
			op := "deferred " + j.module + ": " + j.name
			d, err := logging.Op(ctx, r.o.Log, op, j.fn)
			done[i] = ModuleStatus{Name: j.module + ": " + j.name, Frequency: pending[j.module].Frequency,
				Outcome: string(modules.Changed), Start: start.UTC(), DurationMS: ms(d)}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, j := range jobs {
		if errs[i] != nil {
			failedJobs[j.module] = true
		}
		r.record(done[i], errs[i])
	}
	for name, step := range pending {
		if !failedJobs[name] {
			r.markDone(r.semaphore(env.Instance, step))
		}
	}
}

// record adds a module's run to the status and saves it.
func (r *run) record(m ModuleStatus, err error) {
	if err != nil {
		m.Outcome, m.Error = OutcomeFailed, err.Error()
		r.fail(m.Name, err)
	}
	r.st.Modules = append(r.st.Modules, m)
	if err := r.save(); err != nil {
		r.o.Log.Error("saving the status", "error", err)
	}
}

// semaphore is the file that says a step already ran: per instance in the
// instance directory, per boot under /run; "" for steps that always run.
func (r *run) semaphore(inst modules.Instance, step Step) string {
	switch step.Frequency {
	case PerInstance:
		return path.Join(inst.Dir, "sem", step.Module.Name())
	case PerBoot:
		return path.Join(bootSemDir, step.Module.Name())
	}
	return ""
}

// markDone writes a semaphore. Failing to only means the step runs again.
func (r *run) markDone(sem string) {
	if sem == "" {
		return
	}
	err := r.o.Root.MkdirAll(path.Dir(sem), 0o700)
	if err == nil {
		err = r.o.Root.WriteFileAtomic(sem, []byte(r.stage.Name+" "+r.o.Now().UTC().Format(time.RFC3339)+"\n"), 0o600)
	}
	if err != nil {
		r.o.Log.Error("writing a semaphore", "file", sem, "error", err)
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Names are the stages in boot order.
var Names = []string{"local", "network", "config", "final"}
