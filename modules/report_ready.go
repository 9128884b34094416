package modules

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"time"

	"github.com/azinit/azinit/datasource/azure"
	"github.com/azinit/azinit/datasource/azure/wireserver"
	"github.com/azinit/azinit/internal/version"
)

// ReportReady tells the platform how provisioning went, as soon as the
// admin can log in: Ready, or NotReady/ProvisioningFailed with the reason
// when login is impossible, so the VM does not sit in "Creating" until the
// platform gives up. It first writes the report to the Hyper-V KVP pool
// (PROVISIONING_REPORT, cloud-init's format; the host reads it even when
// the wireserver cannot be reached), then sends the health report. It
// reports once per instance and goal state incarnation, so it runs with
// frequency always and keeps its own record (provisioning.json in the
// instance directory).
type ReportReady struct{}

// Name implements Module.
func (ReportReady) Name() string { return "report-ready" }

// Provisioning is what report-ready last reported for an instance.
type Provisioning struct {
	State       string    `json:"state"` // "Ready" or "ProvisioningFailed"
	Incarnation string    `json:"incarnation"`
	Time        time.Time `json:"time"`
	Description string    `json:"description,omitempty"`
}

// ProvisioningFile is Provisioning's file in the instance directory.
const ProvisioningFile = "provisioning.json"

// The KVP key of the provisioning report, and the documentation every
// failure report points to (the reason format of cloud-init's Azure
// datasource, which the platform's tooling parses).
const (
	kvpProvisioningReport = "PROVISIONING_REPORT"
	provisioningDocs      = "https://aka.ms/linuxprovisioningerror"
	maxReason             = 512
)

// Apply implements Module.
func (ReportReady) Apply(ctx context.Context, env *Env) (Outcome, error) {
	reason := loginImpossible(env)
	want := Provisioning{State: wireserver.StateReady, Time: env.Now().UTC()}
	if reason != "" {
		want.State = wireserver.SubStatusProvisioningFailed
		want.Description = describeFailure(reason, env)
	}
	if env.Data.GoalState != nil {
		want.Incarnation = env.Data.GoalState.Incarnation
	}
	recorded := path.Join(env.Instance.Dir, ProvisioningFile)
	if last, err := readProvisioning(env, recorded); err != nil {
		return "", err
	} else if last != nil && last.State == want.State && last.Incarnation == want.Incarnation {
		return Unchanged, nil
	}

	report := "result=success|agent=" + agent() + "|pps_type=None|vm_id=" + env.Instance.ID + "|timestamp=" + want.Time.Format(time.RFC3339)
	health := wireserver.Health{State: wireserver.StateReady}
	if reason != "" {
		report = want.Description
		health = wireserver.Health{State: wireserver.StateNotReady, SubStatus: wireserver.SubStatusProvisioningFailed, Description: want.Description}
	}
	// KVP first: the host snapshots the pool when the health report lands.
	if env.KVP != nil {
		if err := env.KVP.Write(kvpProvisioningReport, report); err != nil {
			env.Log.Warn("writing the provisioning report to KVP", "error", err)
		}
	}
	if err := env.Data.ReportHealth(ctx, env.Azure, health, env.Config.Datasource.Azure.Health == "json"); err != nil {
		return "", fmt.Errorf("reporting %s: %w", want.State, err)
	}
	if env.Data.GoalState != nil { // ReportHealth fetches it when it had to
		want.Incarnation = env.Data.GoalState.Incarnation
	}
	env.Log.Info("reported provisioning to the platform", "state", want.State, "incarnation", want.Incarnation)

	b, _ := json.Marshal(want)
	if err := env.Root.WriteFileAtomic(recorded, append(b, '\n'), 0o600); err != nil {
		return "", err
	}
	if reason == "" {
		// WALinuxAgent's marker: its provisioning (and tools that check)
		// see the VM as provisioned, for this instance.
		if err := env.Root.MkdirAll(azure.LibDir, 0o700); err != nil {
			return "", err
		}
		if err := env.Root.WriteFileAtomic(path.Join(azure.LibDir, "provisioned"), []byte(env.Instance.ID), 0o600); err != nil {
			return "", err
		}
	}
	return Changed, nil
}

func readProvisioning(env *Env, name string) (*Provisioning, error) {
	b, err := env.Root.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var p Provisioning
	if err := json.Unmarshal(b, &p); err != nil {
		// A damaged record only means reporting again.
		env.Log.Warn("ignoring an unreadable provisioning record", "file", name, "error", err)
		return nil, nil
	}
	return &p, nil
}

// loginImpossible says why provisioning failed, "" when it did not: the
// provisioning media held an invalid ovf-env.xml (whatever else the VM
// learnt, it is not what the platform asked for), or the admin cannot log
// in. The admin can when the user exists and has a usable password or an
// installed SSH key.
func loginImpossible(env *Env) string {
	if env.Data.InvalidOVF != "" {
		return "the provisioning media's ovf-env.xml is invalid"
	}
	user := env.Data.Username()
	if user == "" {
		return "the platform named no admin user (no provisioning media and no instance metadata)"
	}
	acct, err := LookupUser(env.Root, user)
	if err != nil {
		return fmt.Sprintf("the admin user %s was not created", user)
	}
	if env.Data.HasPassword() && hasPassword(env, user) {
		return ""
	}
	keys, _ := env.Data.AuthorizedKeys()
	for _, k := range keys {
		if keyInstalled(env, acct, k.Key) {
			return ""
		}
	}
	return fmt.Sprintf("no password and no SSH key were installed for %s", user)
}

// hasPassword reports whether /etc/shadow holds a usable hash for user.
func hasPassword(env *Env, user string) bool {
	b, err := env.Root.ReadFile("/etc/shadow")
	if err != nil {
		return false
	}
	for line := range bytes.Lines(b) {
		f := strings.Split(strings.TrimSpace(string(line)), ":")
		if len(f) > 1 && f[0] == user {
			return f[1] != "" && !strings.HasPrefix(f[1], "!") && !strings.HasPrefix(f[1], "*")
		}
	}
	return false
}

// keyInstalled reports whether key is in a file of the account's ~/.ssh,
// where Azure's key paths point.
func keyInstalled(env *Env, acct Account, key string) bool {
	names, err := env.Root.Glob(path.Join(acct.Home, ".ssh", "*"))
	if err != nil {
		return false
	}
	for _, name := range names {
		if b, err := env.Root.ReadFile(name); err == nil && bytes.Contains(b, []byte(key)) {
			return true
		}
	}
	return false
}

// describeFailure is the failure report in cloud-init's encoding:
// result=error|reason=...|agent=...|vm_id=...|timestamp=...|documentation_url=...
// The reason is the login problem and the failures that led to it.
func describeFailure(reason string, env *Env) string {
	var failures []string
	for _, f := range env.Failures() {
		failures = append(failures, f.What)
	}
	if len(failures) > 0 {
		reason += " (" + strings.Join(failures, "; ") + ")"
	}
	// '|' separates the fields; newlines do not belong in one.
	reason = strings.NewReplacer("|", "/", "\n", " ", "\r", " ").Replace(reason)
	if r := []rune(reason); len(r) > maxReason {
		reason = string(r[:maxReason-1]) + "…"
	}
	return "result=error|reason=" + reason + "|agent=" + agent() + "|vm_id=" + env.Instance.ID +
		"|timestamp=" + env.Now().UTC().Format(time.RFC3339) + "|documentation_url=" + provisioningDocs
}

func agent() string { return "azinit/" + version.Version }
