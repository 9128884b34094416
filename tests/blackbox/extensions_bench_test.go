package blackbox

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/azinit/azinit/fabric"
)

// settingsYAML is the sample plugin at sequence number seq.
func settingsYAML(seq int, fastTrack bool) string {
	return fmt.Sprintf(`fast_track: %t
packages: ../handlers
plugins:
  - {name: %s, version: "1.0.0", seq_no: %d, public_settings: {message: hello}, protected_settings: {secret: s3cret}}
`, fastTrack, testHandler, seq)
}

// BenchmarkGoalStateChangeToEnable is the time from a new goal state at
// the fabric to the handler's enable starting, with the daemon polling
// every second: the target is the poll interval plus 50 ms at most.
func BenchmarkGoalStateChangeToEnable(b *testing.B) {
	for _, fastTrack := range []bool{false, true} {
		b.Run(fmt.Sprintf("fast_track=%t", fastTrack), func(b *testing.B) {
			benchChangeToEnable(b, fastTrack)
		})
	}
}

func benchChangeToEnable(b *testing.B, fastTrack bool) {
	m := newExtMachine(b, settingsYAML(0, fastTrack), "")
	d := m.startDaemon()
	opsFile := filepath.Join(m.root, "var/log/azure", testHandler, "operations.log")
	waitFor := func(line string) time.Time {
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Millisecond) {
			if b, _ := os.ReadFile(opsFile); strings.Contains(string(b), line) {
				return time.Now()
			}
			if time.Now().After(deadline) {
				b.Fatalf("no %q within a minute\n%s", line, d.stderr.String())
			}
		}
	}
	waitFor("enable version=1.0.0 seq=0 ")
	var latencies []time.Duration
	seq := 0
	for b.Loop() {
		seq++
		if err := os.WriteFile(filepath.Join(m.scenario, fabric.ExtensionsFile), []byte(settingsYAML(seq, fastTrack)), 0o644); err != nil {
			b.Fatal(err)
		}
		if err := m.fabric.Reload(); err != nil {
			b.Fatal(err)
		}
		changed := time.Now()
		latencies = append(latencies, waitFor(fmt.Sprintf("enable version=1.0.0 seq=%d ", seq)).Sub(changed))
	}
	slices.Sort(latencies)
	b.ReportMetric(float64(latencies[len(latencies)/2])/1e6, "ms-to-enable/median")
	b.ReportMetric(float64(latencies[len(latencies)-1])/1e6, "ms-to-enable/max")
}

// BenchmarkExtensionsIdle watches the daemon for a minute once its goal
// state is done, polling at the default period: resident memory, CPU
// used, and the requests it made, per hour. Targets: RSS ≤ 15 MB, CPU ≤
// 0.1 %, requests ≤ 400/h.
func BenchmarkExtensionsIdle(b *testing.B) {
	for _, fastTrack := range []bool{false, true} {
		b.Run(fmt.Sprintf("fast_track=%t", fastTrack), func(b *testing.B) {
			window := time.Minute
			if s := os.Getenv("AZINIT_IDLE_WINDOW"); s != "" {
				w, err := time.ParseDuration(s)
				if err != nil {
					b.Fatal(err)
				}
				window = w
			}
			for b.Loop() {
				benchIdle(b, fastTrack, window)
			}
		})
	}
}

func benchIdle(b *testing.B, fastTrack bool, window time.Duration) {
	m := newExtMachine(b, settingsYAML(0, fastTrack), "  goal_state_period: 10s\n  status_period: 5m\n")
	d := m.startDaemon()
	opsFile := filepath.Join(m.root, "var/log/azure", testHandler, "operations.log")
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		if out, _ := os.ReadFile(opsFile); strings.Contains(string(out), "enable") {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("the handler was not enabled\n%s", d.stderr.String())
		}
	}
	// Let the goal state's status go out, then watch.
	time.Sleep(2 * time.Second)
	pid := d.cmd.Process.Pid
	cpu0, requests0, start := cpuTicks(b, pid), len(m.fabric.Record()), time.Now()
	time.Sleep(window)
	cpu1, requests1, elapsed := cpuTicks(b, pid), len(m.fabric.Record()), time.Since(start)
	const ticksPerSecond = 100 // USER_HZ
	b.ReportMetric(float64(cpu1-cpu0)/ticksPerSecond/elapsed.Seconds()*100, "%cpu")
	b.ReportMetric(float64(rssKB(b, pid))/1024, "MB-rss")
	b.ReportMetric(float64(requests1-requests0)/elapsed.Hours(), "requests/h")
}

// cpuTicks is the user and system time process pid used, in clock ticks.
func cpuTicks(b *testing.B, pid int) int {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	_, rest, _ := strings.Cut(string(stat), ") ")
	f := strings.Fields(rest)
	utime, _ := strconv.Atoi(f[11])
	stime, _ := strconv.Atoi(f[12])
	return utime + stime
}

// rssKB is process pid's resident set, in KiB.
func rssKB(b *testing.B, pid int) int {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	b.Fatal("no VmRSS")
	return 0
}
