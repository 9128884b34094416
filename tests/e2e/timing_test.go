package e2e

import (
	"bufio"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// timeline is when, in seconds since the kernel started (the journal's
// monotonic clock), the guest got its DHCP lease and reported Ready.
type timeline struct {
	Lease, Ready float64
}

// FromLease is the time from the DHCP lease to Ready.
func (tl timeline) FromLease() float64 { return tl.Ready - tl.Lease }

func (tl timeline) String() string {
	return fmt.Sprintf("kernel start → Ready %.2f s, DHCP lease → Ready %.2f s (lease at %.2f s)", tl.Ready, tl.FromLease(), tl.Lease)
}

var (
	monotonicLine = regexp.MustCompile(`^\[\s*(\d+\.\d+)\]\s(.*)$`)
	leaseLine     = regexp.MustCompile(`systemd-networkd\[\d+\]: \S+: DHCPv4 address \S+`)
	// azinit's report-ready module, and WALinuxAgent's daemon right after
	// it posted Ready.
	readyLines = []*regexp.Regexp{
		regexp.MustCompile(`azinit-network\[\d+\]: .*msg="reported provisioning to the platform".* state=Ready`),
		regexp.MustCompile(`Provisioning complete`),
	}
)

// parseTimeline reads the first DHCP lease and the first Ready from a
// journal printed with `journalctl -o short-monotonic`.
func parseTimeline(journal string) (timeline, error) {
	var tl timeline
	lease, ready := false, false
	s := bufio.NewScanner(strings.NewReader(journal))
	s.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for s.Scan() {
		m := monotonicLine.FindStringSubmatch(s.Text())
		if m == nil {
			continue
		}
		at, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			continue
		}
		if !lease && leaseLine.MatchString(m[2]) {
			tl.Lease, lease = at, true
		}
		for _, re := range readyLines {
			if !ready && re.MatchString(m[2]) {
				tl.Ready, ready = at, true
			}
		}
	}
	switch {
	case !lease:
		return tl, fmt.Errorf("no DHCP lease in the journal")
	case !ready:
		return tl, fmt.Errorf("no Ready in the journal")
	}
	return tl, nil
}

// logTiming writes the boot's time to Ready to the test output.
func (g *guest) logTiming(what string) timeline {
	g.t.Helper()
	tl, err := parseTimeline(g.output("journal.txt"))
	if err != nil {
		g.t.Errorf("%s: timing: %v", what, err)
		return tl
	}
	g.t.Logf("%s: %v (QEMU TCG: no KVM here, several times slower than a real VM)", what, tl)
	return tl
}

func TestParseTimeline(t *testing.T) {
	journal := `-- Journal begins at Sun 2026-11-22 13:00:00 UTC. --
[    0.000000] localhost kernel: Linux version 6.1.0-50-amd64
[    9.871234] azinit-ext systemd-networkd[201]: ens3: DHCPv4 address 168.0.0.15/7, gateway 168.0.0.2 acquired from 168.0.0.2
[   10.002000] azinit-ext azinit-network[260]: time=2026-11-22T13:00:10.002Z level=INFO msg="reported provisioning to the platform" stage=network module=report-ready state=NotReady incarnation=1
[   11.250000] azinit-ext azinit-network[260]: time=2026-11-22T13:00:11.250Z level=INFO msg="reported provisioning to the platform" stage=network module=report-ready state=Ready incarnation=1
[   12.000000] azinit-ext systemd-networkd[201]: ens3: DHCPv4 address 168.0.0.15/7, gateway 168.0.0.2 acquired from 168.0.0.2
`
	tl, err := parseTimeline(journal)
	if err != nil {
		t.Fatal(err)
	}
	if tl.Lease != 9.871234 || tl.Ready != 11.25 {
		t.Errorf("timeline %+v", tl)
	}
	if _, err := parseTimeline("[    1.000000] host kernel: nothing\n"); err == nil {
		t.Error("a journal without a lease parsed")
	}
}
