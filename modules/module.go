// Package modules holds azinit's modules: each a small idempotent
// reconciler that reads what the platform asks for (Env.Data) and the
// configuration, compares it with the system under Env.Root, and changes
// only what differs. Modules know nothing of stages or command lines; the
// stages package runs them.
package modules

import (
	"context"
	"log/slog"
	"time"

	"github.com/azinit/azinit/datasource/azure"
	"github.com/azinit/azinit/internal/config"
	"github.com/azinit/azinit/internal/sys"
)

// Outcome says what a module did. A module that fails returns an error;
// the stage records it as failed.
type Outcome string

// The outcomes of a module that did not fail.
const (
	Changed   Outcome = "changed"   // it changed the system
	Unchanged Outcome = "unchanged" // the system was already as asked
	Skipped   Outcome = "skipped"   // nothing to do here: nothing asked, or offline
)

// Module is one reconciler.
type Module interface {
	// Name is the module's name in status, logs and semaphores.
	Name() string
	Apply(ctx context.Context, env *Env) (Outcome, error)
}

// Env is a module's view of the machine and of the platform's request.
type Env struct {
	Root *sys.Root
	Run  sys.Runner
	// Kernel makes effects on the running kernel; only when Live.
	Kernel sys.Kernel
	// Live reports that Root is the running system: kernel-level effects
	// (sethostname, restarting services, DHCP) are allowed. Offline,
	// modules change files only and say what they skipped.
	Live   bool
	Config *config.Config
	// Data is what the platform asks for, fetched or cached by the stage.
	Data *azure.Data
	// Azure reaches the platform, for modules that report to it.
	Azure    azure.Options
	Instance Instance
	// KVP is the Hyper-V data exchange pool; nil when there is none.
	KVP KVP
	Log *slog.Logger
	Now func() time.Time
	// Defer has fn run once the stage's modules are done (after Ready is
	// reported), alongside other deferred work, and the stage wait for it
	// before it exits, recording its outcome under name: work that must be
	// done before the next stage (and before sshd starts), but that the
	// platform need not wait for.
	Defer func(name string, fn func(context.Context) error)
	// Failures are the modules that failed so far this boot, in order.
	Failures func() []Failure
}

// Instance is the VM instance being provisioned.
type Instance struct {
	ID string
	// Dir holds the instance's state (root-absolute, 0700):
	// /var/lib/azinit/instances/<id>.
	Dir string
}

// Failure is something that failed in a stage: a source that could not be
// read, a module.
type Failure struct {
	Stage string
	What  string // "users: ...": what failed and why
}

// KVP writes records to the Hyper-V data exchange pool.
type KVP interface {
	Write(key, value string) error
}
