package udf

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/azinit/azinit/internal/udf/udftest"
)

const mediaDir = "../../testdata/media"

// testImage returns the gunzipped image testdata/media/name.
func testImage(t testing.TB, name string) []byte {
	return udftest.ReadGzip(t, filepath.Join(mediaDir, name))
}

// mediaContent returns the files the real-tool images were made from, by path.
func mediaContent(t testing.TB) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, name := range []string{"ovf-env.xml", "CustomData.bin", "sub/big.txt"} {
		b, err := os.ReadFile(filepath.Join(mediaDir, "content", name))
		if err != nil {
			t.Fatal(err)
		}
		out[name] = string(b)
	}
	return out
}

func open(t testing.TB, img []byte) *FS {
	t.Helper()
	fsys, err := Open(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	return fsys
}

// isDir stands for a directory in the maps tree returns.
const isDir = "<directory>"

// tree reads every file of fsys into a map by path; directories map to isDir.
func tree(t testing.TB, fsys fs.FS) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == "." {
			return err
		}
		if d.IsDir() {
			out[p] = isDir
			return nil
		}
		b, err := fs.ReadFile(fsys, p)
		out[p] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func withDirs(files map[string]string, dirs ...string) map[string]string {
	out := map[string]string{}
	for k, v := range files {
		out[k] = v
	}
	for _, d := range dirs {
		out[d] = isDir
	}
	return out
}

func TestOpenRealImages(t *testing.T) {
	content := withDirs(mediaContent(t), "sub")
	empty := map[string]string{}
	tests := []struct {
		image string
		label string
		want  map[string]string
	}{
		{"genisoimage-udf.img.gz", "AZINIT_TEST", content},
		{"genisoimage-udf-jr.img.gz", "AZINIT_TEST", content},
		{"pure-udf.img.gz", "AZINIT_TEST", content},
		{"mkudffs-2.01.img.gz", "AZINIT_TEST", empty},
		{"mkudffs-2.01-noefe.img.gz", "AZINIT_TEST", empty},
		{"mkudffs-2.01-512.img.gz", "AZINIT_TEST", empty},
		{"mkudffs-2.01-4096.img.gz", "AZINIT_TEST", empty},
	}
	for _, tt := range tests {
		t.Run(tt.image, func(t *testing.T) {
			fsys := open(t, testImage(t, tt.image))
			if got := fsys.Label(); got != tt.label {
				t.Errorf("Label() = %q, want %q", got, tt.label)
			}
			if diff := cmp.Diff(tt.want, tree(t, fsys)); diff != "" {
				t.Errorf("tree (-want +got):\n%s", diff)
			}
			var expected []string
			for p, c := range tt.want {
				if c != isDir {
					expected = append(expected, p)
				}
			}
			if err := fstest.TestFS(fsys, expected...); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestOpenRejects(t *testing.T) {
	tests := []struct {
		image   string
		notUDF  bool
		message string
	}{
		{"iso9660.img.gz", true, "no volume recognition sequence"},
		{"mkudffs-cdrw.img.gz", false, `partition map type 2 ("*UDF Sparable Partition") unsupported`},
	}
	for _, tt := range tests {
		t.Run(tt.image, func(t *testing.T) {
			img := testImage(t, tt.image)
			_, err := Open(bytes.NewReader(img), int64(len(img)))
			if err == nil || !strings.Contains(err.Error(), tt.message) || errors.Is(err, ErrNotUDF) != tt.notUDF {
				t.Fatalf("Open: %v; want an error containing %q (ErrNotUDF: %v)", err, tt.message, tt.notUDF)
			}
		})
	}
	if _, err := Open(bytes.NewReader(nil), 0); !errors.Is(err, ErrNotUDF) {
		t.Errorf("Open(empty) = %v, want ErrNotUDF", err)
	}
}

// writeOptions are every public option combination plus the test hooks that force several
// extents per file and allocation extent descriptors.
var writeOptions = map[string]WriteOptions{
	"fe-short":          {},
	"fe-long":           {Alloc: LongAlloc},
	"fe-embedded":       {Alloc: EmbeddedAlloc},
	"efe-short":         {ExtendedEntries: true},
	"efe-long":          {ExtendedEntries: true, Alloc: LongAlloc},
	"efe-embedded":      {ExtendedEntries: true, Alloc: EmbeddedAlloc},
	"fe-short-extents":  {maxExtent: sectorSize},
	"efe-long-extents":  {ExtendedEntries: true, Alloc: LongAlloc, maxExtent: 2 * sectorSize},
	"fe-short-aed":      {maxExtent: sectorSize, maxInlineADs: 2},
	"efe-long-aed":      {ExtendedEntries: true, Alloc: LongAlloc, maxExtent: sectorSize, maxInlineADs: 2},
	"fe-embedded-aed":   {Alloc: EmbeddedAlloc, maxExtent: sectorSize, maxInlineADs: 3},
	"efe-embedded-time": {ExtendedEntries: true, Alloc: EmbeddedAlloc, Time: time.Date(2030, 1, 2, 3, 4, 5, 600000, time.FixedZone("", 90*60))},
}

// writeFiles is what the writer tests store: the media content and names and sizes that exercise
// UTF-16 names, empty files, deep paths and directories whose descriptors span several blocks.
func writeFiles(t testing.TB) []File {
	t.Helper()
	var files []File
	for p, c := range mediaContent(t) {
		files = append(files, File{Name: p, Data: []byte(c)})
	}
	files = append(files,
		File{Name: "empty"},
		File{Name: "日本語/ünïcødé.txt", Data: []byte("wide names\n")},
		File{Name: "a/b/c/d/deep.bin", Data: bytes.Repeat([]byte{0, 1, 2, 3}, 3000)},
	)
	for i := range 60 {
		files = append(files, File{Name: fmt.Sprintf("many/file-with-a-longish-name-%03d", i), Data: []byte{byte(i)}})
	}
	return files
}

func wantTree(files []File) map[string]string {
	out := map[string]string{}
	for _, f := range files {
		out[f.Name] = string(f.Data)
		for d := filepath.Dir(f.Name); d != "."; d = filepath.Dir(d) {
			out[d] = isDir
		}
	}
	return out
}

func write(t testing.TB, label string, files []File, opts WriteOptions) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(&buf, label, files, opts); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestWriteRoundTrip(t *testing.T) {
	files := writeFiles(t)
	want := wantTree(files)
	for name, opts := range writeOptions {
		t.Run(name, func(t *testing.T) {
			img := write(t, "AZINIT_W", files, opts)
			if len(img)%sectorSize != 0 {
				t.Errorf("image size %d is not a multiple of %d", len(img), sectorSize)
			}
			fsys := open(t, img)
			if got := fsys.Label(); got != "AZINIT_W" {
				t.Errorf("Label() = %q", got)
			}
			if diff := cmp.Diff(want, tree(t, fsys)); diff != "" {
				t.Errorf("tree (-want +got):\n%s", diff)
			}
			if err := fstest.TestFS(fsys, "ovf-env.xml", "sub/big.txt", "日本語/ünïcødé.txt"); err != nil {
				t.Error(err)
			}
			info, err := fsys.Stat("ovf-env.xml")
			if err != nil {
				t.Fatal(err)
			}
			wantTime := opts.Time
			if wantTime.IsZero() {
				wantTime = time.Unix(0, 0)
			}
			if !info.ModTime().Equal(wantTime) || info.Mode() != 0o444 {
				t.Errorf("ovf-env.xml: mode %v time %v, want -r--r--r-- %v", info.Mode(), info.ModTime(), wantTime)
			}
			if again := write(t, "AZINIT_W", files, opts); !bytes.Equal(img, again) {
				t.Error("Write is not reproducible")
			}
		})
	}
}

// TestWriteKernelRules checks what the Linux udf driver insists on beyond the reader: file
// identifier descriptors whose CRC covers exactly the padded descriptor, and embedded data whose
// length equals the information length.
func TestWriteKernelRules(t *testing.T) {
	files := writeFiles(t)
	for name, opts := range writeOptions {
		t.Run(name, func(t *testing.T) {
			fsys := open(t, write(t, "K", files, opts))
			var check func(n *node)
			check = func(n *node) {
				e, err := fsys.readEntry(n.addr)
				if err != nil {
					t.Fatal(err)
				}
				if e.adKind == adEmbedded && int64(len(e.ads)) != e.size {
					t.Errorf("%s: %d bytes embedded, information length %d", n.name, len(e.ads), e.size)
				}
				if !n.mode.IsDir() {
					return
				}
				data, err := fsys.readData(e, maxDirSize)
				if err != nil {
					t.Fatal(err)
				}
				for off := 0; off < len(data); {
					size := (38 + int(le.Uint16(data[off+36:])) + int(data[off+19]) + 3) &^ 3
					if crcLen := int(le.Uint16(data[off+10:])); crcLen != size-tagSize {
						t.Errorf("%s: FID at %d: CRC length %d, want %d", n.name, off, crcLen, size-tagSize)
					}
					off += size
				}
				for _, c := range n.children {
					check(c)
				}
			}
			check(fsys.root)
		})
	}
}

func TestWriteRejects(t *testing.T) {
	long := strings.Repeat("x", 255)
	tests := []struct {
		name  string
		label string
		files []File
		want  string
	}{
		{"dot-dot", "L", []File{{Name: "../x"}}, `invalid file name "../x"`},
		{"absolute", "L", []File{{Name: "/x"}}, `invalid file name "/x"`},
		{"empty element", "L", []File{{Name: "a//b"}}, `invalid file name "a//b"`},
		{"root", "L", []File{{Name: "."}}, `invalid file name "."`},
		{"nul", "L", []File{{Name: "a\x00"}}, "invalid file name"},
		{"twice", "L", []File{{Name: "a"}, {Name: "a"}}, `"a" conflicts`},
		{"file then dir", "L", []File{{Name: "a"}, {Name: "a/b"}}, `"a/b" conflicts`},
		{"dir then file", "L", []File{{Name: "a/b"}, {Name: "a"}}, `"a" conflicts`},
		{"long name", "L", []File{{Name: long}}, "too long"},
		{"long label", strings.Repeat("L", 127), nil, "label"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Write(io.Discard, tt.label, tt.files, WriteOptions{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Write: %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestCRC(t *testing.T) {
	// The example of ECMA-167 1/7.2.6.
	if got := crcCCITT([]byte{0x70, 0x6A, 0x77}); got != 0x3299 {
		t.Errorf("crcCCITT = %#04x, want 0x3299", got)
	}
}

func TestDChars(t *testing.T) {
	tests := []struct {
		in   []byte
		want string
		err  string
	}{
		{nil, "", ""},
		{[]byte{8, 'o', 'v', 'f', 0xE9}, "ovfé", ""},
		{[]byte{16, 0x65, 0xE5, 0, 'x'}, "日x", ""},
		{[]byte{16, 0xD8, 0x3D, 0xDE, 0x00}, "😀", ""},
		{[]byte{16, 0, 'x', 0}, "", "odd length"},
		{[]byte{254, 'x'}, "", "compression ID 254"},
	}
	for _, tt := range tests {
		got, err := decodeDChars(tt.in)
		if got != tt.want || (err == nil) != (tt.err == "") || err != nil && !strings.Contains(err.Error(), tt.err) {
			t.Errorf("decodeDChars(%v) = %q, %v; want %q, %q", tt.in, got, err, tt.want, tt.err)
		}
	}
	for _, s := range []string{"", "AZINIT", "ünï", "日本語😀"} {
		f := make([]byte, 32)
		if err := putDString(f, s); err != nil {
			t.Fatal(err)
		}
		if got, err := decodeDString(f); got != s || err != nil {
			t.Errorf("dstring round trip of %q: %q, %v", s, got, err)
		}
	}
}

func TestTimestamp(t *testing.T) {
	for _, want := range []time.Time{
		time.Unix(0, 0).UTC(),
		time.Date(2026, 11, 22, 9, 35, 8, 123456000, time.UTC),
		time.Date(1999, 2, 3, 4, 5, 6, 0, time.FixedZone("", -7*3600)),
	} {
		b := make([]byte, 12)
		putTime(b, want)
		if got := parseTime(b); !got.Equal(want) {
			t.Errorf("timestamp round trip of %v: %v", want, got)
		}
	}
	if got := parseTime(make([]byte, 12)); !got.IsZero() {
		t.Errorf("unrecorded timestamp: %v", got)
	}
}

func BenchmarkOpenRead(b *testing.B) {
	img := testImage(b, "genisoimage-udf.img.gz")
	r := bytes.NewReader(img)
	b.ReportAllocs()
	for b.Loop() {
		fsys, err := Open(r, int64(len(img)))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := fsys.ReadFile("ovf-env.xml"); err != nil {
			b.Fatal(err)
		}
	}
}
