package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// timeline is when, in seconds since the kernel started (the journal's
// monotonic clock), the guest got its DHCP lease, systemd started the
// provisioning agent's networked part, and it reported Ready.
type timeline struct {
	Lease, Start, Ready float64
}

// FromLease is the time from the DHCP lease to Ready.
func (tl timeline) FromLease() float64 { return tl.Ready - tl.Lease }

func (tl timeline) String() string {
	return fmt.Sprintf("kernel start → Ready %.2f s, DHCP lease → Ready %.2f s (lease at %.2f s, agent started at %.2f s)",
		tl.Ready, tl.FromLease(), tl.Lease, tl.Start)
}

var (
	monotonicLine = regexp.MustCompile(`^\[\s*(\d+\.\d+)\]\s(.*)$`)
	leaseLine     = regexp.MustCompile(`systemd-networkd\[\d+\]: \S+: DHCPv4 address \S+`)
	// azinit-network is a oneshot (Starting), walinuxagent simple (Started).
	startLine = regexp.MustCompile(`systemd\[1\]: Start(ing|ed) (azinit-network|walinuxagent)\.service`)
	// azinit's report-ready module.
	readyLine = regexp.MustCompile(`azinit-network\[\d+\]: .*msg="reported provisioning to the platform".* state=Ready`)
	// WALinuxAgent's daemon right after it posted Ready, in its own log.
	waagentReadyLine = regexp.MustCompile(`(?m)^(\S+Z) INFO Daemon Daemon Provisioning complete$`)
)

var errNoReady = errors.New("no Ready in the journal")

// parseTimeline reads the first DHCP lease and the first Ready from a
// journal printed with `journalctl -o short-monotonic`.
func parseTimeline(journal string) (timeline, error) {
	var tl timeline
	lease, start, ready := false, false, false
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
		if !start && startLine.MatchString(m[2]) {
			tl.Start, start = at, true
		}
		if !ready && readyLine.MatchString(m[2]) {
			tl.Ready, ready = at, true
		}
	}
	switch {
	case !lease:
		return tl, fmt.Errorf("no DHCP lease in the journal")
	case !ready:
		return tl, errNoReady
	}
	return tl, nil
}

// waagentReady is when /var/log/waagent.log says WALinuxAgent reported
// Ready, on the journal's monotonic clock. The log has wall-clock times;
// clock is "<uptime> <unix time>", both read at one instant.
func waagentReady(log []byte, clock string) (float64, error) {
	m := waagentReadyLine.FindSubmatch(log)
	if m == nil {
		return 0, fmt.Errorf("no Ready in waagent.log")
	}
	at, err := time.Parse(time.RFC3339Nano, string(m[1]))
	if err != nil {
		return 0, err
	}
	var uptime, now float64
	if _, err := fmt.Sscan(clock, &uptime, &now); err != nil {
		return 0, fmt.Errorf("clock %q: %w", clock, err)
	}
	return uptime - (now - float64(at.UnixNano())/1e9), nil
}

// logTiming writes the boot's time to Ready to the test output.
func (g *guest) logTiming(what string) timeline {
	g.t.Helper()
	tl, err := parseTimeline(g.output("journal.txt"))
	if log, ok := g.files["/var/log/waagent.log"]; ok && err != nil && tl.Lease > 0 {
		tl.Ready, err = waagentReady(log, g.output("clock.txt"))
	}
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
[    9.900000] azinit-ext systemd[1]: Starting azinit-network.service - azinit network stage: users, SSH keys, report ready...
[   10.002000] azinit-ext azinit-network[260]: time=2026-11-22T13:00:10.002Z level=INFO msg="reported provisioning to the platform" stage=network module=report-ready state=NotReady incarnation=1
[   11.250000] azinit-ext azinit-network[260]: time=2026-11-22T13:00:11.250Z level=INFO msg="reported provisioning to the platform" stage=network module=report-ready state=Ready incarnation=1
[   12.000000] azinit-ext systemd-networkd[201]: ens3: DHCPv4 address 168.0.0.15/7, gateway 168.0.0.2 acquired from 168.0.0.2
`
	tl, err := parseTimeline(journal)
	if err != nil {
		t.Fatal(err)
	}
	if tl.Lease != 9.871234 || tl.Start != 9.9 || tl.Ready != 11.25 {
		t.Errorf("timeline %+v", tl)
	}
	if _, err := parseTimeline("[    1.000000] host kernel: nothing\n"); err == nil {
		t.Error("a journal without a lease parsed")
	}
	log := "2026-11-22T14:21:39.102233Z INFO Daemon Daemon Save custom data\n" +
		"2026-11-22T14:21:44.282515Z INFO Daemon Daemon Provisioning complete\n"
	// At uptime 49.23 s the clock said 14:21:45.290478330.
	ready, err := waagentReady([]byte(log), "49.23 1795357305.290478330")
	if err != nil || ready < 48.22 || ready > 48.23 {
		t.Errorf("waagentReady = %v, %v; want 48.22", ready, err)
	}
}
