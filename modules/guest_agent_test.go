package modules_test

import (
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/azinit/azinit/modules"
	"github.com/azinit/azinit/modules/modulestest"
)

// guestAgentEnv is an Env whose OVF sets ProvisionGuestAgent to provision.
func guestAgentEnv(t *testing.T, provision bool) *modules.Env {
	t.Helper()
	doc := modulestest.OVFDoc("azureuser", "", "<HostName>vm1</HostName>")
	if !provision {
		doc = strings.Replace(doc, "<wa:ProvisionGuestAgent>true<", "<wa:ProvisionGuestAgent>false<", 1)
	}
	return modulestest.Env(t, modulestest.NewRoot(t), modulestest.OVF(t, doc))
}

const disableAgent = "/var/lib/waagent/disable_agent"

func TestGuestAgentDisabled(t *testing.T) {
	env := guestAgentEnv(t, false)
	var outcomes []modules.Outcome
	for range 2 {
		got, err := (modules.GuestAgent{}).Apply(t.Context(), env)
		if err != nil {
			t.Fatal(err)
		}
		outcomes = append(outcomes, got)
	}
	if diff := cmp.Diff([]modules.Outcome{modules.Changed, modules.Unchanged}, outcomes); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
	if got := modulestest.ReadFile(t, env.Root, disableAgent); got != "" {
		t.Errorf("disable_agent holds %q, want it empty", got)
	}
	if got := modulestest.Mode(t, env.Root, "/var/lib/waagent"); got != 0o700 {
		t.Errorf("/var/lib/waagent mode %v, want 0700", got)
	}
}

func TestGuestAgentEnabled(t *testing.T) {
	for _, leftover := range []bool{true, false} {
		env := guestAgentEnv(t, true)
		if leftover {
			if err := os.MkdirAll(env.Root.HostPath("/var/lib/waagent"), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(env.Root.HostPath(disableAgent), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		var outcomes []modules.Outcome
		for range 2 {
			got, err := (modules.GuestAgent{}).Apply(t.Context(), env)
			if err != nil {
				t.Fatal(err)
			}
			outcomes = append(outcomes, got)
		}
		want := []modules.Outcome{modules.Unchanged, modules.Unchanged}
		if leftover {
			want[0] = modules.Changed
		}
		if diff := cmp.Diff(want, outcomes); diff != "" {
			t.Errorf("leftover=%v: outcomes (-want +got):\n%s", leftover, diff)
		}
		if _, err := os.Stat(env.Root.HostPath(disableAgent)); !os.IsNotExist(err) {
			t.Errorf("leftover=%v: disable_agent still there (%v)", leftover, err)
		}
	}
}
