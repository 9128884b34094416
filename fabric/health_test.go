package fabric

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Health documents as the real clients send them.
const (
	// WALinuxAgent's _build_health_report (wire-protocol.md §8).
	healthWALA = `<?xml version="1.0" encoding="utf-8"?><Health xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema"><GoalStateIncarnation>1</GoalStateIncarnation><Container><ContainerId>c6d5526c-5ac2-4200-b6e2-56f2b70c5ab2</ContainerId><RoleInstanceList><Role><InstanceId>b61f93d0-e1ed-40b2-b067-22c243233448.MachineRole_IN_0</InstanceId><Health><State>Ready</State></Health></Role></RoleInstanceList></Container></Health>`
	// WALinuxAgent's NotReady with details, escaped.
	healthWALANotReady = `<?xml version="1.0" encoding="utf-8"?><Health xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema"><GoalStateIncarnation>1</GoalStateIncarnation><Container><ContainerId>c6d5526c-5ac2-4200-b6e2-56f2b70c5ab2</ContainerId><RoleInstanceList><Role><InstanceId>b61f93d0-e1ed-40b2-b067-22c243233448.MachineRole_IN_0</InstanceId><Health><State>NotReady</State><Details><SubStatus>ProvisioningFailed</SubStatus><Description>Failed to mount dvd &lt;oops&gt; &amp; more</Description></Details></Health></Role></RoleInstanceList></Container></Health>`
	// report-ready.sh's heredoc: one element per line.
	healthShell = `<?xml version="1.0" encoding="utf-8"?>
<Health xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema">
<GoalStateIncarnation>1</GoalStateIncarnation>
<Container>
<ContainerId>c6d5526c-5ac2-4200-b6e2-56f2b70c5ab2</ContainerId>
<RoleInstanceList>
<Role>
<InstanceId>b61f93d0-e1ed-40b2-b067-22c243233448.MachineRole_IN_0</InstanceId>
<Health>
<State>Ready</State>
</Health>
</Role>
</RoleInstanceList>
</Container>
</Health>`
	// report-ready.py's ElementTree.tostring: no declaration, no namespaces.
	healthPython = `<Health><GoalStateIncarnation>1</GoalStateIncarnation><Container><ContainerId>c6d5526c-5ac2-4200-b6e2-56f2b70c5ab2</ContainerId><RoleInstanceList><Role><InstanceId>b61f93d0-e1ed-40b2-b067-22c243233448.MachineRole_IN_0</InstanceId><Health><State>Ready</State></Health></Role></RoleInstanceList></Container></Health>`
)

func TestParseHealthXML(t *testing.T) {
	ready := HealthXML{
		Health:      Health{State: StateReady},
		Incarnation: "1",
		ContainerID: "c6d5526c-5ac2-4200-b6e2-56f2b70c5ab2",
		InstanceID:  "b61f93d0-e1ed-40b2-b067-22c243233448.MachineRole_IN_0",
	}
	notReady := ready
	notReady.Health = Health{State: StateNotReady, SubStatus: "ProvisioningFailed", Description: "Failed to mount dvd <oops> & more"}
	tests := []struct {
		name, doc string
		want      HealthXML
	}{
		{"walinuxagent", healthWALA, ready},
		{"walinuxagent not ready", healthWALANotReady, notReady},
		{"report-ready.sh", healthShell, ready},
		{"report-ready.py", healthPython, ready},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseHealthXML([]byte(tt.doc))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, *got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseHealthXMLErrors(t *testing.T) {
	for name, doc := range map[string]string{
		"empty":      ``,
		"malformed":  `<Health><Container>`,
		"not xml":    `{"state":"Ready"}`,
		"wrong root": `<Status><Container><RoleInstanceList><Role><Health><State>Ready</State></Health></Role></RoleInstanceList></Container></Status>`,
		"no role":    `<Health><Container><ContainerId>c</ContainerId></Container></Health>`,
		"two roles":  `<Health><Container><RoleInstanceList><Role><Health><State>Ready</State></Health></Role><Role><Health><State>Ready</State></Health></Role></RoleInstanceList></Container></Health>`,
		"no state":   `<Health><Container><RoleInstanceList><Role><InstanceId>i</InstanceId></Role></RoleInstanceList></Container></Health>`,
		"bad state":  `<Health><Container><RoleInstanceList><Role><Health><State>Happy</State></Health></Role></RoleInstanceList></Container></Health>`,
	} {
		if _, err := ParseHealthXML([]byte(doc)); !errors.Is(err, ErrBadHealth) {
			t.Errorf("%s: ParseHealthXML = %v, want ErrBadHealth", name, err)
		}
	}
}

func TestParseHealthJSON(t *testing.T) {
	tests := []struct {
		doc  string
		want Health
	}{
		{`{"state":"Ready"}`, Health{State: StateReady}},
		{`{"state":"NotReady","details":{"subStatus":"ProvisioningFailed","description":"result=error|reason=x"}}`,
			Health{State: StateNotReady, SubStatus: "ProvisioningFailed", Description: "result=error|reason=x"}},
		{`{"state":"NotReady","details":{"subStatus":"Provisioning"},"extra":1}`, Health{State: StateNotReady, SubStatus: "Provisioning"}},
	}
	for _, tt := range tests {
		got, err := ParseHealthJSON([]byte(tt.doc))
		if err != nil {
			t.Errorf("ParseHealthJSON(%s): %v", tt.doc, err)
			continue
		}
		if diff := cmp.Diff(tt.want, *got); diff != "" {
			t.Errorf("ParseHealthJSON(%s) (-want +got):\n%s", tt.doc, diff)
		}
	}
	for _, doc := range []string{``, `{`, `[]`, `{}`, `{"state":"ready"}`, `{"state":1}`, healthWALA} {
		if _, err := ParseHealthJSON([]byte(doc)); !errors.Is(err, ErrBadHealth) {
			t.Errorf("ParseHealthJSON(%q) = %v, want ErrBadHealth", doc, err)
		}
	}
}

func FuzzParseHealthXML(f *testing.F) {
	for _, doc := range []string{healthWALA, healthWALANotReady, healthShell, healthPython, `<Health/>`} {
		f.Add([]byte(doc))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHealthXML(b)
		if err != nil {
			if !errors.Is(err, ErrBadHealth) {
				t.Fatalf("error %v is not ErrBadHealth", err)
			}
			return
		}
		if h.State != StateReady && h.State != StateNotReady {
			t.Fatalf("accepted state %q", h.State)
		}
	})
}

func FuzzParseHealthJSON(f *testing.F) {
	for _, doc := range []string{`{"state":"Ready"}`, `{"state":"NotReady","details":{"subStatus":"ProvisioningFailed","description":"x"}}`} {
		f.Add([]byte(doc))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHealthJSON(b)
		if err != nil {
			if !errors.Is(err, ErrBadHealth) {
				t.Fatalf("error %v is not ErrBadHealth", err)
			}
			return
		}
		if h.State != StateReady && h.State != StateNotReady {
			t.Fatalf("accepted state %q", h.State)
		}
	})
}
