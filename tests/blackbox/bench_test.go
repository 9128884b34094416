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
