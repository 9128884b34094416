package kvp

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzReadAll checks that ReadAll never panics, reads one record per
// RecordSize bytes, and fails exactly when a record is torn.
func FuzzReadAll(f *testing.F) {
	for _, recs := range [][]Record{
		{{Key: "PROVISIONING_REPORT", Value: "result=success|agent=azinit"}},
		{{Key: "a", Value: ""}, {Key: "ünï", Value: strings.Repeat("é", 600)}},
	} {
		buf, _, err := encode(recs)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(buf)
		f.Add(buf[:len(buf)-1])
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, err := ReadAll(bytes.NewReader(data))
		if len(recs) != len(data)/RecordSize {
			t.Fatalf("%d records from %d bytes", len(recs), len(data))
		}
		if torn := len(data)%RecordSize != 0; torn != (err != nil) {
			t.Fatalf("torn %v, error %v", torn, err)
		}
		for _, r := range recs {
			if len(r.Key) > KeyFieldSize || len(r.Value) > ValueFieldSize || strings.ContainsRune(r.Key+r.Value, 0) {
				t.Fatalf("bad record %q", r)
			}
		}
	})
}

// FuzzEncode checks that a written value reads back whole: in one record
// under its key, or in chunks of valid UTF-8 keyed "<key>|<i>".
func FuzzEncode(f *testing.F) {
	f.Add("key", "value")
	f.Add("k", strings.Repeat("a", 1023))
	f.Add("k", "a"+strings.Repeat("€", 341))
	f.Add(strings.Repeat("k", 253), strings.Repeat("😀", 300))
	f.Fuzz(func(t *testing.T, key, value string) {
		buf, n, err := encode([]Record{{Key: key, Value: value}})
		if err != nil {
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrKeyTooLong) && !errors.Is(err, ErrPoolFull) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		recs, err := ReadAll(bytes.NewReader(buf))
		if err != nil || len(recs) != n {
			t.Fatalf("%d records, error %v; want %d", len(recs), err, n)
		}
		if n == 1 && len(value) <= MaxValueSize {
			if recs[0] != (Record{Key: key, Value: value}) {
				t.Fatalf("record %q, want %q=%q", recs[0], key, value)
			}
			return
		}
		var joined strings.Builder
		for i, r := range recs {
			if r.Key != key+"|"+strconv.Itoa(i) || len(r.Key) > MaxKeySize {
				t.Fatalf("chunk %d has key %q", i, r.Key)
			}
			if len(r.Value) > MaxValueSize || !utf8.ValidString(r.Value) || (i < n-1 && len(r.Value) < MaxValueSize-3) {
				t.Fatalf("chunk %d is %d bytes, valid UTF-8 %v", i, len(r.Value), utf8.ValidString(r.Value))
			}
			joined.WriteString(r.Value)
		}
		if joined.String() != value {
			t.Fatal("chunks do not join to the value")
		}
	})
}

func TestParseBootTime(t *testing.T) {
	tests := []struct {
		stat string
		want int64 // Unix seconds; 0: an error
	}{
		{"cpu  1 2 3\nintr 5\nctxt 9\nbtime 1767225600\nprocesses 7\n", 1767225600},
		{"btime 1767225600", 1767225600},
		{"cpu 1\nbtime  42 \n", 42},
		{"cpu 1\n", 0},
		{"btime\n", 0},
		{"btime x\n", 0},
		{"btime -5\n", 0},
		{"xbtime 5\n", 0},
	}
	for _, tt := range tests {
		got, err := parseBootTime([]byte(tt.stat))
		if tt.want == 0 {
			if err == nil {
				t.Errorf("parseBootTime(%q) = %v, want an error", tt.stat, got)
			}
			continue
		}
		if err != nil || got.Unix() != tt.want {
			t.Errorf("parseBootTime(%q) = %v, %v; want %d", tt.stat, got, err, tt.want)
		}
	}
}
