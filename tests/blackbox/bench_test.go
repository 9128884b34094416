package blackbox

import (
	"crypto/rand"
	"slices"
	"testing"
	"time"

	"github.com/azinit/azinit/datasource/azure"
	"github.com/azinit/azinit/datasource/azure/certs"
	"github.com/azinit/azinit/internal/sys"
)

// BenchmarkQueryFetch is `azinit query --fetch` end to end: process start,
// config, the media image, IMDS, versions, goal state, hosting environment,
// shared config and certificates decrypted, JSON out; against the fabric on
// loopback. The transport key pair is on disk, as on a provisioned VM.
func BenchmarkQueryFetch(b *testing.B) {
	v := newVM(b, demo)
	saveTransport(b, v.root)
	benchRun(b, v, "azinit", "query", "--fetch")
}

// BenchmarkQueryFetchNoTransportKey is the same with no key pair on disk:
// a throwaway one is generated while the other sources are read.
func BenchmarkQueryFetchNoTransportKey(b *testing.B) {
	benchRun(b, newVM(b, demo), "azinit", "query", "--fetch")
}

func saveTransport(b *testing.B, dir string) {
	b.Helper()
	root, err := sys.OpenRoot(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer root.Close()
	t, err := certs.GenerateTransport(rand.Reader)
	if err == nil {
		err = root.MkdirAll("/var/lib", 0o755)
	}
	if err == nil {
		err = t.Save(root, azure.LibDir)
	}
	if err != nil {
		b.Fatal(err)
	}
}

// benchRun runs a binary b.N times and reports the median and the 95th
// percentile besides the mean: the targets are stated as medians.
func benchRun(b *testing.B, v *vm, name string, args ...string) {
	b.Helper()
	var runs []time.Duration
	for b.Loop() {
		start := time.Now()
		if _, stderr, err := v.run(b, name, args...); err != nil {
			b.Fatalf("%s %v: %v\n%s", name, args, err, stderr)
		}
		runs = append(runs, time.Since(start))
	}
	slices.Sort(runs)
	b.ReportMetric(float64(runs[len(runs)/2])/1e6, "ms/median")
	b.ReportMetric(float64(runs[len(runs)*95/100])/1e6, "ms/p95")
}

// BenchmarkFirstBoot is first-boot provisioning as the platform sees it:
// from azinit-local's start to the fabric recording Ready, with real
// useradd and host-key generation, on a fresh root each time. (The
// network stage then waits for the RSA host key before it exits; that is
// not part of the time to Ready.)
func BenchmarkFirstBoot(b *testing.B) {
	requireRoot(b)
	var toReady []time.Duration
	for b.Loop() {
		b.StopTimer()
		m := newMachine(b, demo)
		b.StartTimer()
		start := time.Now()
		for _, stage := range stageBinaries[:2] {
			if _, stderr, err := m.run(b, stage); err != nil {
				b.Fatalf("%s: %v\n%s", stage, err, stderr)
			}
		}
		var ready time.Time
		for _, e := range m.fabric.Record() {
			if h, ok := e.Health(); ok && h.State == "Ready" {
				ready = e.Time
			}
		}
		if ready.IsZero() {
			b.Fatal("no Ready recorded")
		}
		toReady = append(toReady, ready.Sub(start))
	}
	slices.Sort(toReady)
	b.ReportMetric(float64(toReady[len(toReady)/2])/1e6, "ms-to-ready/median")
	b.ReportMetric(float64(toReady[len(toReady)*95/100])/1e6, "ms-to-ready/p95")
}
