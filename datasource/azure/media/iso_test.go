package media

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/azinit/azinit/internal/udf/udftest"
)

// TestReadISO reads the ISO9660 side of every image that has one, Rock Ridge names included.
func TestReadISO(t *testing.T) {
	want := &Media{Format: "iso9660", OVF: content(t, "ovf-env.xml"), CustomData: content(t, "CustomData.bin")}
	for _, name := range []string{"iso9660.img.gz", "genisoimage-udf.img.gz", "genisoimage-udf-jr.img.gz"} {
		img := testImage(t, name)
		m, err := readISO(bytes.NewReader(img), int64(len(img)))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if diff := cmp.Diff(want, m); diff != "" {
			t.Errorf("%s (-want +got):\n%s", name, diff)
		}
	}
}

// rootSystemUse returns the offset in img of the System Use area of the root directory's "."
// record, and the offsets of its entries by signature.
func rootSystemUse(t *testing.T, img []byte) map[string]int {
	t.Helper()
	loc := int(binary.LittleEndian.Uint32(img[16*isoSector+158:]))
	start := loc*isoSector + 34 // a one-byte identifier, no padding
	end := loc*isoSector + int(img[loc*isoSector])
	entries := map[string]int{}
	for i := start; i+4 <= end && img[i+2] >= 4; i += int(img[i+2]) {
		entries[string(img[i:i+2])] = i
	}
	return entries
}

// TestISOGuards checks the images kdomanski/iso9660 would never return from are refused first.
func TestISOGuards(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(img []byte, su map[string]int)
		want   string
	}{
		{"zero-length System Use entry", func(img []byte, su map[string]int) { img[su["RR"]+2] = 0 }, `System Use entry "RR" of length 0`},
		{"huge continuation area", func(img []byte, su map[string]int) {
			binary.LittleEndian.PutUint32(img[su["CE"]+20:], 1<<31)
			binary.BigEndian.PutUint32(img[su["CE"]+24:], 1<<31)
		}, "continuation area of 2147483648 bytes"},
		{"huge root directory", func(img []byte, su map[string]int) {
			binary.LittleEndian.PutUint32(img[16*isoSector+166:], 1<<30)
			binary.BigEndian.PutUint32(img[16*isoSector+170:], 1<<30)
		}, "1073741824 bytes, more than the 131072 read"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := testImage(t, "genisoimage-udf-jr.img.gz")
			su := rootSystemUse(t, img)
			if su["SP"] == 0 || su["RR"] == 0 || su["CE"] == 0 {
				t.Fatalf("the root record lacks SP, RR or CE entries: %v", su)
			}
			tt.mutate(img, su)
			_, err := readISO(bytes.NewReader(img), int64(len(img)))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("readISO: %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// FuzzReadISO feeds arbitrary images (udftest.Sparse encoded) to the ISO9660 side: opening them
// and finding ovf-env.xml must return media or an error, and never panic or hang. The inputs in
// testdata/fuzz/FuzzReadISO made kdomanski/iso9660 v0.4.0 panic or loop forever.
func FuzzReadISO(f *testing.F) {
	for _, name := range []string{"iso9660.img.gz", "genisoimage-udf.img.gz", "genisoimage-udf-jr.img.gz"} {
		f.Add(udftest.EncodeSparse(testImage(f, name)))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		img := udftest.DecodeSparse(in)
		m, err := readISO(img, img.Size())
		if (m == nil) == (err == nil) {
			t.Errorf("readISO = %v, %v", m, err)
		}
	})
}
