package kvp_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/azinit/azinit/datasource/azure/kvp"
	"github.com/azinit/azinit/internal/sys"
	"github.com/google/go-cmp/cmp"
)

// boot is the injected boot time; files made by the tests are newer.
var boot = time.Now().Add(-time.Hour).Truncate(time.Second)

func bootTime() (time.Time, error) { return boot, nil }

// newRoot returns a root on Hyper-V (with /var/lib/hyperv) and the pool
// file's host path.
func newRoot(t testing.TB) (*sys.Root, string) {
	t.Helper()
	root, err := sys.OpenRoot(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	if err := root.MkdirAll(kvp.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return root, root.HostPath(kvp.PoolPath)
}

func open(t testing.TB, root *sys.Root) *kvp.Pool {
	t.Helper()
	p, err := kvp.Open(root, kvp.Options{BootTime: bootTime})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func readPool(t testing.TB, path string) []kvp.Record {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := kvp.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func TestRoundTrip(t *testing.T) {
	root, path := newRoot(t)
	p := open(t, root)
	first := []kvp.Record{
		{Key: "PROVISIONING_REPORT", Value: "result=success|agent=azinit|vm_id=5c08b38e"},
		{Key: "empty", Value: ""},
		{Key: "ünïcödé|κλειδί", Value: "värde ✓ 値"},
	}
	if err := p.WriteAll(first); err != nil {
		t.Fatal(err)
	}
	if err := p.Write("second", "batch"); err != nil {
		t.Fatal(err)
	}
	want := append(first, kvp.Record{Key: "second", Value: "batch"})
	if diff := cmp.Diff(want, readPool(t, path)); diff != "" {
		t.Errorf("pool (-want +got):\n%s", diff)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != 4*kvp.RecordSize {
		t.Errorf("pool is %d bytes, want %d", fi.Size(), 4*kvp.RecordSize)
	}
	// Each field is the text, then NULs to its end.
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rec := raw[:kvp.RecordSize]
	key, value := rec[:kvp.KeyFieldSize], rec[kvp.KeyFieldSize:]
	if !bytes.Equal(key, padded("PROVISIONING_REPORT", kvp.KeyFieldSize)) || !bytes.Equal(value, padded(first[0].Value, kvp.ValueFieldSize)) {
		t.Errorf("record 0 is not the NUL-padded key and value")
	}
}

func padded(s string, n int) []byte {
	b := make([]byte, n)
	copy(b, s)
	return b
}

func TestChunks(t *testing.T) {
	tests := []struct {
		name   string
		value  string
		chunks []int // chunk lengths in bytes; nil: one record, key unchanged
	}{
		{"empty", "", nil},
		{"at the limit", strings.Repeat("a", 1022), nil},
		{"one byte over", strings.Repeat("a", 1023), []int{1022, 1}},
		{"two full chunks", strings.Repeat("a", 2044), []int{1022, 1022}},
		{"two full and one byte", strings.Repeat("a", 2045), []int{1022, 1022, 1}},
		{"2-byte characters at the limit", strings.Repeat("é", 511), nil},
		{"2-byte characters over", strings.Repeat("é", 512), []int{1022, 2}},
		{"3-byte character across the limit", "a" + strings.Repeat("€", 341), []int{1021, 3}},
		{"4-byte character across the limit", "a" + strings.Repeat("😀", 256), []int{1021, 4}},
		{"4-byte character ending at the limit", "ab" + strings.Repeat("😀", 256), []int{1022, 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root, path := newRoot(t)
			if err := open(t, root).Write("key", tt.value); err != nil {
				t.Fatal(err)
			}
			recs := readPool(t, path)
			var want []kvp.Record
			if tt.chunks == nil {
				want = []kvp.Record{{Key: "key", Value: tt.value}}
			} else {
				rest := tt.value
				for i, n := range tt.chunks {
					want = append(want, kvp.Record{Key: fmt.Sprintf("key|%d", i), Value: rest[:n]})
					rest = rest[n:]
				}
			}
			if diff := cmp.Diff(want, recs); diff != "" {
				t.Errorf("records (-want +got):\n%s", diff)
			}
			for _, r := range recs {
				if !utf8.ValidString(r.Value) || len(r.Value) > kvp.MaxValueSize {
					t.Errorf("chunk %s: %d bytes, valid UTF-8 %v", r.Key, len(r.Value), utf8.ValidString(r.Value))
				}
			}
		})
	}
}

func TestWriteErrors(t *testing.T) {
	long := strings.Repeat("a", 1023)
	tests := []struct {
		name    string
		records []kvp.Record
		is      error
	}{
		{"key at the limit", []kvp.Record{{Key: strings.Repeat("k", 254), Value: "v"}}, nil},
		{"key over the limit", []kvp.Record{{Key: strings.Repeat("k", 255), Value: "v"}}, kvp.ErrKeyTooLong},
		{"multibyte key over the limit", []kvp.Record{{Key: strings.Repeat("ключ", 32), Value: "v"}}, kvp.ErrKeyTooLong},
		{"chunked key at the limit", []kvp.Record{{Key: strings.Repeat("k", 252), Value: long}}, nil},
		{"chunked key over the limit", []kvp.Record{{Key: strings.Repeat("k", 253), Value: long}}, kvp.ErrKeyTooLong},
		{"tenth chunk's key over the limit", []kvp.Record{{Key: strings.Repeat("k", 252), Value: strings.Repeat("a", 10*1022+1)}}, kvp.ErrKeyTooLong},
		{"empty key", []kvp.Record{{Key: "", Value: "v"}}, kvp.ErrInvalid},
		{"NUL in key", []kvp.Record{{Key: "a\x00b", Value: "v"}}, kvp.ErrInvalid},
		{"NUL in value", []kvp.Record{{Key: "k", Value: "a\x00b"}}, kvp.ErrInvalid},
		{"invalid UTF-8 key", []kvp.Record{{Key: "\xff", Value: "v"}}, kvp.ErrInvalid},
		{"invalid UTF-8 value", []kvp.Record{{Key: "k", Value: "ok\xc3"}}, kvp.ErrInvalid},
		{"a bad record spoils the batch", []kvp.Record{{Key: "ok", Value: "v"}, {Key: "", Value: "v"}}, kvp.ErrInvalid},
		{"batch over the pool", make1025(), kvp.ErrPoolFull},
		{"value over the pool", []kvp.Record{{Key: "k", Value: strings.Repeat("a", 1024*1022+1)}}, kvp.ErrPoolFull},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root, path := newRoot(t)
			err := open(t, root).WriteAll(tt.records)
			if !errors.Is(err, tt.is) || (tt.is == nil) != (err == nil) {
				t.Fatalf("WriteAll: %v, want %v", err, tt.is)
			}
			if _, statErr := os.Stat(path); err != nil && !errors.Is(statErr, os.ErrNotExist) {
				t.Errorf("a failed write touched the pool: %v", statErr)
			}
		})
	}
}

func make1025() []kvp.Record {
	recs := make([]kvp.Record, 1025)
	for i := range recs {
		recs[i] = kvp.Record{Key: fmt.Sprint("k", i), Value: "v"}
	}
	return recs
}

func TestNoPool(t *testing.T) {
	dir := t.TempDir()
	root, err := sys.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	p := open(t, root)
	if err := p.Write("k", "v"); !errors.Is(err, kvp.ErrNoPool) {
		t.Fatalf("Write without %s: %v, want ErrNoPool", kvp.Dir, err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("Write created %v", entries)
	}
}

func TestStalePoolTruncatedOnce(t *testing.T) {
	root, path := newRoot(t)
	old := []kvp.Record{{Key: "old1", Value: "previous boot"}, {Key: "old2", Value: "previous boot"}}
	if err := open(t, root).WriteAll(old); err != nil {
		t.Fatal(err)
	}
	stale := boot.Add(-time.Minute)
	if err := os.Chtimes(path, stale, stale); err != nil {
		t.Fatal(err)
	}
	p := open(t, root)
	if err := p.Write("new1", "this boot"); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]kvp.Record{{Key: "new1", Value: "this boot"}}, readPool(t, path)); diff != "" {
		t.Errorf("after the first write (-want +got):\n%s", diff)
	}
	// Only before the first write: even a pool that looks stale again is
	// kept from then on.
	if err := os.Chtimes(path, stale, stale); err != nil {
		t.Fatal(err)
	}
	if err := p.Write("new2", "this boot"); err != nil {
		t.Fatal(err)
	}
	want := []kvp.Record{{Key: "new1", Value: "this boot"}, {Key: "new2", Value: "this boot"}}
	if diff := cmp.Diff(want, readPool(t, path)); diff != "" {
		t.Errorf("after the second write (-want +got):\n%s", diff)
	}
}

func TestCurrentPoolKept(t *testing.T) {
	root, path := newRoot(t)
	if err := open(t, root).Write("earlier", "this boot"); err != nil {
		t.Fatal(err)
	}
	if err := open(t, root).Write("later", "this boot"); err != nil {
		t.Fatal(err)
	}
	want := []kvp.Record{{Key: "earlier", Value: "this boot"}, {Key: "later", Value: "this boot"}}
	if diff := cmp.Diff(want, readPool(t, path)); diff != "" {
		t.Errorf("pool (-want +got):\n%s", diff)
	}
}

func TestBootTimeError(t *testing.T) {
	root, path := newRoot(t)
	p, err := kvp.Open(root, kvp.Options{BootTime: func() (time.Time, error) { return time.Time{}, errors.New("no /proc") }})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Write("k", "v"); err == nil || !strings.Contains(err.Error(), "boot time: no /proc") {
		t.Fatalf("Write: %v, want the boot time error", err)
	}
	if fi, err := os.Stat(path); err == nil && fi.Size() != 0 {
		t.Errorf("pool has %d bytes", fi.Size())
	}
}

func TestTornRecordCutOff(t *testing.T) {
	root, path := newRoot(t)
	p := open(t, root)
	if err := p.WriteAll([]kvp.Record{{Key: "a", Value: "1"}, {Key: "b", Value: "2"}}); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(padded("torn", 700)) // a writer died mid-record
	f.Close()
	if err := p.Write("c", "3"); err != nil {
		t.Fatal(err)
	}
	want := []kvp.Record{{Key: "a", Value: "1"}, {Key: "b", Value: "2"}, {Key: "c", Value: "3"}}
	if diff := cmp.Diff(want, readPool(t, path)); diff != "" {
		t.Errorf("pool (-want +got):\n%s", diff)
	}
}

func TestPoolFull(t *testing.T) {
	root, path := newRoot(t)
	p := open(t, root)
	recs := make1025()[:kvp.MaxRecords-1]
	if err := p.WriteAll(recs); err != nil {
		t.Fatal(err)
	}
	// Two chunks do not fit in the one record left: neither is written.
	if err := p.Write("big", strings.Repeat("a", 1500)); !errors.Is(err, kvp.ErrPoolFull) {
		t.Fatalf("Write of two chunks into one free record: %v, want ErrPoolFull", err)
	}
	if err := p.Write("last", "fits"); err != nil {
		t.Fatal(err)
	}
	err := p.Write("one more", "v")
	if !errors.Is(err, kvp.ErrPoolFull) || !strings.Contains(err.Error(), "it holds 1024, 1 more do not fit") {
		t.Fatalf("Write to a full pool: %v, want ErrPoolFull", err)
	}
	if got := readPool(t, path); len(got) != kvp.MaxRecords || got[kvp.MaxRecords-1].Key != "last" {
		t.Errorf("pool holds %d records", len(got))
	}
}

// TestConcurrentWriters writes batches from goroutines, each through its
// own Pool (its own file descriptions, as separate processes would have)
// or a shared one, until the pool is full. flock keeps the batches whole
// and the count exact.
func TestConcurrentWriters(t *testing.T) {
	root, path := newRoot(t)
	shared := open(t, root)
	const writers, batches, perBatch = 8, 40, 5 // 1600 records offered
	var wg sync.WaitGroup
	var mu sync.Mutex
	written, full := 0, 0
	for w := range writers {
		p := shared
		if w%2 == 0 {
			p = open(t, root)
		}
		wg.Go(func() {
			for b := range batches {
				var recs []kvp.Record
				for i := range perBatch {
					key := fmt.Sprintf("w%d|b%d|r%d", w, b, i)
					// 1500 bytes: two chunks per record.
					recs = append(recs, kvp.Record{Key: key, Value: value(key)})
				}
				err := p.WriteAll(recs)
				mu.Lock()
				switch {
				case err == nil:
					written++
				case errors.Is(err, kvp.ErrPoolFull):
					full++
				default:
					t.Error(err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	const chunksPerBatch = 2 * perBatch
	if want := kvp.MaxRecords / chunksPerBatch; written != want || full != writers*batches-want {
		t.Errorf("%d batches written, %d refused; want %d and %d", written, full, want, writers*batches-want)
	}
	recs := readPool(t, path)
	if len(recs) != written*chunksPerBatch {
		t.Fatalf("pool holds %d records, want %d", len(recs), written*chunksPerBatch)
	}
	// Every batch is whole, in order, not interleaved with another.
	for i := 0; i < len(recs); i += chunksPerBatch {
		batch, _, _ := strings.Cut(recs[i].Key, "|r")
		for j := range perBatch {
			key := fmt.Sprintf("%s|r%d", batch, j)
			first, second := recs[i+2*j], recs[i+2*j+1]
			if first.Key != key+"|0" || second.Key != key+"|1" || first.Value+second.Value != value(key) {
				t.Fatalf("records %d and %d (%s, %s) are not the chunks of %s", i+2*j, i+2*j+1, first.Key, second.Key, key)
			}
		}
	}
}

// value is the 1500-byte value TestConcurrentWriters writes for key.
func value(key string) string {
	return strings.Repeat(key+";", 1500/(len(key)+1)+1)[:1500]
}

func TestReadAll(t *testing.T) {
	full := padded(strings.Repeat("k", 512), kvp.RecordSize) // a key without a NUL
	copy(full[kvp.KeyFieldSize:], "value\x00junk after the NUL")
	tests := []struct {
		name string
		data []byte
		want []kvp.Record
		err  string
	}{
		{"empty", nil, nil, ""},
		{"full-width key, value ends at NUL", full, []kvp.Record{{Key: strings.Repeat("k", 512), Value: "value"}}, ""},
		{"all NULs", make([]byte, kvp.RecordSize), []kvp.Record{{}}, ""},
		{"torn tail", append(bytes.Clone(full), "partial"...), []kvp.Record{{Key: strings.Repeat("k", 512), Value: "value"}},
			"kvp: truncated record at offset 2560: 7 of 2560 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := kvp.ReadAll(bytes.NewReader(tt.data))
			if (err == nil) != (tt.err == "") || (err != nil && err.Error() != tt.err) {
				t.Errorf("error %v, want %q", err, tt.err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("records (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHostBootTime(t *testing.T) {
	if _, err := os.Stat("/proc/stat"); err != nil {
		t.Skip("no /proc/stat")
	}
	bt, err := kvp.HostBootTime()
	if err != nil {
		t.Fatal(err)
	}
	if bt.IsZero() || bt.After(time.Now()) {
		t.Errorf("boot time %v", bt)
	}
}

func TestOpenNeedsRoot(t *testing.T) {
	if _, err := kvp.Open(nil, kvp.Options{}); err == nil {
		t.Error("Open(nil) succeeded")
	}
}

func BenchmarkWrite(b *testing.B) {
	batch := make([]kvp.Record, 32)
	for i := range batch {
		batch[i] = kvp.Record{Key: fmt.Sprintf("azinit|bench|%d", i), Value: `{"name":"modules/hostname","type":"finish","ts":"2026-01-01T00:00:00Z","result":"SUCCESS"}`}
	}
	for _, bc := range []struct {
		name    string
		records []kvp.Record
	}{
		{"record", batch[:1]},
		{"batch32", batch},
		{"4KiB-value", []kvp.Record{{Key: "azinit|bench|big", Value: strings.Repeat("x", 4096)}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			root, path := newRoot(b)
			p := open(b, root)
			held, n := 0, 0
			for _, r := range bc.records {
				n += max(1, (len(r.Value)+kvp.MaxValueSize-1)/kvp.MaxValueSize)
			}
			b.ReportAllocs()
			for b.Loop() {
				// Empty the pool before it fills: one truncate per ~1000 records.
				if held+n > kvp.MaxRecords {
					if err := os.Truncate(path, 0); err != nil {
						b.Fatal(err)
					}
					held = 0
				}
				if err := p.WriteAll(bc.records); err != nil {
					b.Fatal(err)
				}
				held += n
			}
		})
	}
}
