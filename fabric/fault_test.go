package fabric

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseFault(t *testing.T) {
	tests := []struct {
		spec string
		want Fault
	}{
		{"health:503", Fault{Kind: KindHealth, Action: ActionStatus, Status: 503, Count: 1}},
		{"goalstate:410:3", Fault{Kind: KindGoalState, Action: ActionStatus, Status: 410, Count: 3}},
		{"imds:404", Fault{Kind: KindIMDS, Action: ActionStatus, Status: 404, Count: 1}},
		{"status:timeout", Fault{Kind: KindStatus, Action: ActionTimeout, Count: 1}},
		{"certificates:reset:2", Fault{Kind: KindCertificates, Action: ActionReset, Count: 2}},
		{"extensionsconfig:truncate", Fault{Kind: KindExtensionsConfig, Action: ActionTruncate, Count: 1}},
		{"versions:garbage", Fault{Kind: KindVersions, Action: ActionGarbage, Count: 1}},
		{"manifest:slow=1.5s:4", Fault{Kind: KindManifest, Action: ActionSlow, Delay: 1500 * time.Millisecond, Count: 4}},
	}
	for _, tt := range tests {
		got, err := ParseFault(tt.spec)
		if err != nil {
			t.Errorf("ParseFault(%q): %v", tt.spec, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("ParseFault(%q) (-want +got):\n%s", tt.spec, diff)
		}
		// The spec round-trips through String.
		again, err := ParseFault(got.String())
		if err != nil || again != got {
			t.Errorf("ParseFault(%q.String() = %q) = %+v, %v", tt.spec, got.String(), again, err)
		}
	}
}

func TestParseFaultErrors(t *testing.T) {
	for _, spec := range []string{
		"", "health", "health:", "nosuchkind:503", "health:200", "health:600", "health:302",
		"health:explode", "health:slow=", "health:slow=-1s", "health:slow=fast",
		"health:503:0", "health:503:-1", "health:503:x", "health:503:1:2",
	} {
		if _, err := ParseFault(spec); !errors.Is(err, ErrBadFault) {
			t.Errorf("ParseFault(%q) = %v, want ErrBadFault", spec, err)
		}
	}
}

func TestFaultQueueAppliesInOrder(t *testing.T) {
	q := newFaultQueue([]Fault{
		{Kind: KindHealth, Action: ActionStatus, Status: 500, Count: 2},
		{Kind: KindGoalState, Action: ActionReset, Count: 1},
		{Kind: KindHealth, Action: ActionTimeout, Count: 1},
	})
	var got []string
	for range 5 {
		f, ok := q.take(KindHealth)
		if !ok {
			got = append(got, "-")
			continue
		}
		got = append(got, f.action())
	}
	if diff := cmp.Diff([]string{"500", "500", "timeout", "-", "-"}, got); diff != "" {
		t.Errorf("health faults (-want +got):\n%s", diff)
	}
	if f, ok := q.take(KindGoalState); !ok || f.Action != ActionReset {
		t.Errorf("goalstate fault = %+v, %v; want reset", f, ok)
	}
	if _, ok := q.take(KindGoalState); ok {
		t.Error("goalstate fault applied twice, want once")
	}
}

func FuzzParseFault(f *testing.F) {
	for _, s := range []string{"health:503", "goalstate:410:3", "status:timeout", "manifest:slow=1.5s:4", "a:b:c:d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fault, err := ParseFault(s)
		if err != nil {
			return
		}
		if fault.Count < 1 || !knownKind(fault.Kind) {
			t.Fatalf("ParseFault(%q) = %+v: invalid fault accepted", s, fault)
		}
		again, err := ParseFault(fault.String())
		if err != nil || again != fault {
			t.Fatalf("ParseFault(%q).String() = %q does not round-trip: %+v, %v", s, fault.String(), again, err)
		}
	})
}

func TestParseFaults(t *testing.T) {
	got, err := ParseFaults([]string{"goalstate:503:2", "imds:timeout"})
	if err != nil || len(got) != 2 || got[0].Count != 2 || got[1].Action != ActionTimeout {
		t.Fatalf("ParseFaults = %+v, %v", got, err)
	}
	if _, err := ParseFaults([]string{"imds:timeout", "nope"}); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("a bad spec: err = %v", err)
	}
}
