package imds

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/azinit/azinit/internal/fixtures"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// FuzzParseInstance checks that ParseInstance never panics, that Raw
// parses to the same Instance without userData, and that no rendering of
// an Instance depends on its userData.
func FuzzParseInstance(f *testing.F) {
	f.Add(fixtures.Read(f, "imds/valid.json"))
	modern, err := os.ReadFile("testdata/instance-2021-08-01.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(modern)
	for _, s := range []string{
		`{"compute": {"osProfile": {"disablePasswordAuthentication": "TRUE"}, "userData": "aGVs\nbG8="}}`,
		`{"Compute": {"USERDATA": "c2VjcmV0"}, "compute": {"userData": "c2VjcmV0"}}`,
		`{"compute": {"vmId": 42}}`,
		`{"network": {"interface": [{"ipv4": {"ipAddress": [{"privateIpAddress": "10.0.0.4"}]}}]}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		inst, err := ParseInstance(data)
		if err != nil {
			return
		}
		again, err := ParseInstance(inst.Raw)
		if err != nil {
			t.Fatalf("Raw does not parse: %v\n%s", err, inst.Raw)
		}
		if again.Compute.HasUserData() {
			t.Fatalf("Raw holds userData: %s", inst.Raw)
		}
		ignore := cmp.Options{cmpopts.IgnoreUnexported(Compute{}), cmpopts.IgnoreFields(Instance{}, "Raw"), cmpopts.EquateEmpty()}
		if diff := cmp.Diff(inst, again, ignore); diff != "" {
			t.Fatalf("Raw parses to another Instance:\n%s", diff)
		}
		other := *inst
		if inst.Compute.HasUserData() {
			alt := append(inst.Compute.UserData(), "-other"...)
			other.Compute.userData = func() []byte { return alt }
		}
		if diff := cmp.Diff(renderings(t, inst), renderings(t, &other)); diff != "" {
			t.Fatalf("renderings depend on userData:\n%s", diff)
		}
	})
}

// renderings are the ways a caller might print, log or encode inst.
func renderings(t *testing.T, inst *Instance) []string {
	type holder struct {
		inst Instance
		Inst *Instance
	}
	var out []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x"} {
		out = append(out, fmt.Sprintf(verb, inst), fmt.Sprintf(verb, holder{*inst, inst}))
	}
	var logs strings.Builder
	slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}})).Info("imds", "instance", inst)
	j, err := json.Marshal(holder{*inst, inst})
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, logs.String(), string(j))
	// A closure prints as its address, which differs between inst and its copy.
	if inst.Compute.userData != nil {
		addr := fmt.Sprintf("%p", inst.Compute.userData)
		for i, s := range out {
			s = strings.ReplaceAll(s, addr, "ADDR")
			out[i] = strings.ReplaceAll(s, strings.TrimPrefix(addr, "0x"), "ADDR")
		}
	}
	return out
}
