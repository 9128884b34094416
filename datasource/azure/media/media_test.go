package media

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/azinit/azinit/internal/udf/udftest"

	"github.com/azinit/azinit/internal/udf"
)

const mediaDir = "../../../testdata/media"

// testImage returns the gunzipped image testdata/media/name.
func testImage(t testing.TB, name string) []byte {
	return udftest.ReadGzip(t, filepath.Join(mediaDir, name))
}

func content(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(mediaDir, "content", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// writeImage makes a UDF image with the given files, as azinit-fabric media does.
func writeImage(t testing.TB, opts udf.WriteOptions, files ...udf.File) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := udf.Write(&buf, "rd_rdfe_test", files, opts); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func saveImage(t testing.TB, img []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "media.img")
	if err := os.WriteFile(p, img, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReadImages(t *testing.T) {
	ovf, customData := content(t, "ovf-env.xml"), content(t, "CustomData.bin")
	mediaFiles := []udf.File{{Name: "ovf-env.xml", Data: ovf}, {Name: "CustomData.bin", Data: customData}}
	// A bridge whose UDF anchors are both broken: the ISO9660 side must still be read.
	brokenUDF := testImage(t, "genisoimage-udf.img.gz")
	brokenUDF[256*2048+4] ^= 0xFF
	brokenUDF[len(brokenUDF)-2048+4] ^= 0xFF
	tests := []struct {
		name       string
		img        []byte
		format     string
		customData []byte
		err        error
		errText    string
	}{
		{name: "genisoimage bridge", img: testImage(t, "genisoimage-udf.img.gz"), format: "udf", customData: customData},
		{name: "genisoimage bridge with Joliet and Rock Ridge", img: testImage(t, "genisoimage-udf-jr.img.gz"), format: "udf", customData: customData},
		{name: "pure UDF", img: testImage(t, "pure-udf.img.gz"), format: "udf", customData: customData},
		{name: "plain ISO9660 with 8.3 names", img: testImage(t, "iso9660.img.gz"), format: "iso9660", customData: customData},
		{name: "bridge with broken UDF", img: brokenUDF, format: "iso9660", customData: customData},
		{name: "writer, file entries", img: writeImage(t, udf.WriteOptions{}, mediaFiles...), format: "udf", customData: customData},
		{name: "writer, extended entries embedded", img: writeImage(t, udf.WriteOptions{ExtendedEntries: true, Alloc: udf.EmbeddedAlloc}, mediaFiles...), format: "udf", customData: customData},
		{name: "writer, long allocation descriptors", img: writeImage(t, udf.WriteOptions{Alloc: udf.LongAlloc}, mediaFiles...), format: "udf", customData: customData},
		{name: "upper-case names", img: writeImage(t, udf.WriteOptions{}, udf.File{Name: "OVF-ENV.XML", Data: ovf}), format: "udf"},
		{name: "no custom data", img: writeImage(t, udf.WriteOptions{}, udf.File{Name: "ovf-env.xml", Data: ovf}), format: "udf"},
		{name: "empty UDF", img: testImage(t, "mkudffs-2.01.img.gz"), err: ErrNoOVF, errText: `udf root holds 0 files: []`},
		{name: "UDF without ovf-env.xml", img: writeImage(t, udf.WriteOptions{}, udf.File{Name: "sub/ovf-env.xml", Data: ovf}, udf.File{Name: "x"}), err: ErrNoOVF, errText: `udf root holds 1 files: ["x"]`},
		{name: "sparable UDF", img: testImage(t, "mkudffs-cdrw.img.gz"), errText: `partition map type 2 ("*UDF Sparable Partition") unsupported; iso9660: `},
		{name: "not a disc image", img: bytes.Repeat([]byte("garbage!"), 40000), errText: "not UDF; iso9660: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := saveImage(t, tt.img)
			m, err := Read(context.Background(), Options{Source: path})
			if tt.errText != "" || tt.err != nil {
				if err == nil || !strings.Contains(err.Error(), tt.errText) || !strings.Contains(err.Error(), path) {
					t.Fatalf("Read: %v; want an error naming %s and containing %q", err, path, tt.errText)
				}
				if tt.err != nil && !errors.Is(err, tt.err) {
					t.Errorf("Read: %v; want errors.Is %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := &Media{Device: path, Format: tt.format, OVF: ovf, CustomData: tt.customData}
			if diff := cmp.Diff(want, m); diff != "" {
				t.Errorf("Read (-want +got):\n%s", diff)
			}
		})
	}
	if _, err := Read(context.Background(), Options{Source: "/nonexistent/sr9"}); err == nil || !strings.Contains(err.Error(), "/nonexistent/sr9") {
		t.Errorf("Read(missing file): %v", err)
	}
}

func TestFind(t *testing.T) {
	tests := []struct {
		names []string
		want  string
	}{
		{[]string{"ovf-env.xml"}, "ovf-env.xml"},
		{[]string{"OVF-ENV.XML"}, "OVF-ENV.XML"},
		{[]string{"OVF_ENV.XML"}, "OVF_ENV.XML"},
		{[]string{"OVF_ENV.XML;1"}, "OVF_ENV.XML;1"},
		{[]string{"Ovf_Env.Xml"}, "Ovf_Env.Xml"},
		{[]string{"OVF_ENV.XML", "ovf-env.xml"}, "ovf-env.xml"},
		{[]string{"ovf-env.xml.bak", "ovf-env", "xovf-env.xml"}, ""},
	}
	for _, tt := range tests {
		var files []rootFile
		for _, n := range tt.names {
			files = append(files, rootFile{name: n})
		}
		got := ""
		if f := find(files, "ovf-env.xml"); f != nil {
			got = f.name
		}
		if got != tt.want {
			t.Errorf("find(%q) = %q, want %q", tt.names, got, tt.want)
		}
	}
	if f := find([]rootFile{{name: "CUSTOMDA.BIN;1"}}, "customdata.bin", "customda.bin"); f == nil {
		t.Error("8.3 CUSTOMDA.BIN;1 not found")
	}
}

func TestMediaHidesSecrets(t *testing.T) {
	m := &Media{Device: "/dev/sr0", Format: "udf", OVF: []byte("<UserPassword>P@ssw0rd-not-real</UserPassword>"), CustomData: []byte("secret-custom-data")}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("x", "media", m)
	for _, out := range []string{fmt.Sprintf("%v %+v %#v %s", m, m, m, m), logged.String()} {
		if strings.Contains(out, "P@ssw0rd") || strings.Contains(out, "secret-custom-data") {
			t.Errorf("secret in %q", out)
		}
		if !strings.Contains(out, "/dev/sr0") {
			t.Errorf("device missing from %q", out)
		}
	}
}

// fakeSystem is a /sys/class/block and /dev under a temporary directory, with drive statuses
// scripted per device and poll, and a sleep that only records.
type fakeSystem struct {
	sys, dev string
	status   map[string][]int // device name: status at each poll; the last repeats
	calls    map[string]int
	slept    []time.Duration
}

// newFakeSystem makes block devices: name → image (nil: a disk, not a CD-ROM). sr* names are
// CD-ROMs by name; others when cdrom is set, by their SCSI type.
func newFakeSystem(t *testing.T, devices map[string][]byte, cdromTypes ...string) *fakeSystem {
	root := t.TempDir()
	s := &fakeSystem{sys: filepath.Join(root, "sys/class/block"), dev: filepath.Join(root, "dev"), status: map[string][]int{}, calls: map[string]int{}}
	for _, d := range []string{s.sys, s.dev} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, img := range devices {
		typ := "0"
		if slices.Contains(cdromTypes, name) {
			typ = "5"
		}
		if err := os.MkdirAll(filepath.Join(s.sys, name, "device"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(s.sys, name, "device", "type"), []byte(typ+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(s.dev, name), img, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func (s *fakeSystem) options(wait, poll time.Duration) Options {
	return Options{
		Wait: wait, Poll: poll, SysBlock: s.sys, DevDir: s.dev,
		DriveStatus: func(device string) (int, error) {
			name := filepath.Base(device)
			script, ok := s.status[name]
			if !ok {
				return 0, fmt.Errorf("open %s: no such device", device)
			}
			n := s.calls[name]
			s.calls[name]++
			return script[min(n, len(script)-1)], nil
		},
		Sleep: func(ctx context.Context, d time.Duration) error {
			s.slept = append(s.slept, d)
			return ctx.Err()
		},
	}
}

func TestAuto(t *testing.T) {
	ovf := content(t, "ovf-env.xml")
	media := writeImage(t, udf.WriteOptions{}, udf.File{Name: "ovf-env.xml", Data: ovf})
	blank := testImage(t, "mkudffs-2.01.img.gz")
	const poll, wait = 2 * time.Second, 5 * time.Second
	tests := []struct {
		name     string
		devices  map[string][]byte
		cdroms   []string // non-sr CD-ROMs (SCSI type 5)
		status   map[string][]int
		wait     time.Duration
		device   string          // found on this device, or:
		err      error           // this error
		errText  string          // and this text
		slept    []time.Duration // sleeps taken
		notAsked []string        // devices whose status must not be asked
	}{
		{
			name:     "disc after three polls",
			devices:  map[string][]byte{"sr0": media, "sda": []byte("a disk")},
			status:   map[string][]int{"sr0": {cdsNoDisc, cdsDriveNotReady, cdsTrayOpen, cdsDiscOK}},
			wait:     time.Minute,
			device:   "sr0",
			slept:    []time.Duration{poll, poll, poll},
			notAsked: []string{"sda"},
		},
		{
			name:    "CD-ROM known by its SCSI type",
			devices: map[string][]byte{"xvdd": media},
			cdroms:  []string{"xvdd"},
			status:  map[string][]int{"xvdd": {cdsDiscOK}},
			device:  "xvdd",
		},
		{
			name:    "second drive holds the media",
			devices: map[string][]byte{"sr0": blank, "sr1": media},
			status:  map[string][]int{"sr0": {cdsDiscOK}, "sr1": {cdsNoDisc, cdsDiscOK}},
			wait:    wait,
			device:  "sr1",
			slept:   []time.Duration{poll},
		},
		{
			name:    "never a disc",
			devices: map[string][]byte{"sr0": media},
			status:  map[string][]int{"sr0": {cdsNoDisc}},
			wait:    wait,
			err:     ErrNoMedia,
			errText: "sr0: no disc",
			slept:   []time.Duration{poll, poll, wait - 2*poll},
		},
		{
			name:    "no CD-ROM drive",
			devices: map[string][]byte{"sda": media},
			wait:    wait,
			err:     ErrNoMedia,
			errText: "no CD-ROM drive in ",
			slept:   []time.Duration{poll, poll, wait - 2*poll},
		},
		{
			name:    "device node missing",
			devices: map[string][]byte{"sr0": media},
			err:     ErrNoMedia,
			errText: "sr0: open ",
		},
		{
			name:    "look once without wait",
			devices: map[string][]byte{"sr0": media},
			status:  map[string][]int{"sr0": {cdsNoDisc, cdsDiscOK}},
			err:     ErrNoMedia,
			errText: "within 0s",
		},
		{
			name:    "only a disc that is not provisioning media",
			devices: map[string][]byte{"sr0": blank},
			status:  map[string][]int{"sr0": {cdsDiscOK}},
			wait:    wait,
			err:     ErrNoOVF,
			errText: "sr0: ",
		},
		{
			name:    "a foreign disc while waiting for another drive",
			devices: map[string][]byte{"sr0": blank, "sr1": media},
			status:  map[string][]int{"sr0": {cdsDiscOK}, "sr1": {cdsNoDisc}},
			wait:    wait,
			err:     ErrNoOVF,
			slept:   []time.Duration{poll, poll, wait - 2*poll},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newFakeSystem(t, tt.devices, tt.cdroms...)
			s.status = tt.status
			m, err := Read(context.Background(), s.options(tt.wait, poll))
			if tt.device != "" {
				if err != nil {
					t.Fatal(err)
				}
				if m.Device != filepath.Join(s.dev, tt.device) || !bytes.Equal(m.OVF, ovf) {
					t.Errorf("Read: %v", m)
				}
			} else if err == nil || !errors.Is(err, tt.err) || !strings.Contains(err.Error(), tt.errText) {
				t.Fatalf("Read: %v, want %v containing %q", err, tt.err, tt.errText)
			}
			if diff := cmp.Diff(tt.slept, s.slept); diff != "" {
				t.Errorf("sleeps (-want +got):\n%s", diff)
			}
			for _, d := range tt.notAsked {
				if s.calls[d] != 0 {
					t.Errorf("drive status of %s asked", d)
				}
			}
		})
	}
}

func TestAutoCancelled(t *testing.T) {
	s := newFakeSystem(t, map[string][]byte{"sr0": nil})
	s.status = map[string][]int{"sr0": {cdsNoDisc}}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Read(ctx, s.options(time.Hour, time.Second))
	if !errors.Is(err, context.Canceled) || len(s.slept) != 1 {
		t.Errorf("Read with a cancelled context: %v after %d sleeps", err, len(s.slept))
	}
}

func BenchmarkRead(b *testing.B) {
	path := saveImage(b, testImage(b, "genisoimage-udf.img.gz"))
	opts := Options{Source: path}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Read(context.Background(), opts); err != nil {
			b.Fatal(err)
		}
	}
}
