package unzip

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// member is one entry of a test archive.
type member struct {
	Name string
	Mode fs.FileMode // given to SetMode; zero leaves the header without Unix mode bits
	Body string
	// Declared, when > 0, is the uncompressed size the header claims whatever Body holds (the entry
	// is written raw), so the archive can lie about sizes.
	Declared uint64
	Edit     func(*zip.FileHeader) // last changes to the header
}

func makeZip(tb testing.TB, members ...member) []byte {
	tb.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, m := range members {
		h := &zip.FileHeader{Name: m.Name, Method: zip.Deflate}
		if m.Mode != 0 {
			h.SetMode(m.Mode)
		}
		if m.Edit != nil {
			m.Edit(h)
		}
		if m.Declared == 0 {
			w, err := zw.CreateHeader(h)
			if err != nil {
				tb.Fatal(err)
			}
			if _, err := w.Write([]byte(m.Body)); err != nil {
				tb.Fatal(err)
			}
			continue
		}
		var deflated bytes.Buffer
		fw, err := flate.NewWriter(&deflated, flate.BestCompression)
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := fw.Write([]byte(m.Body)); err != nil {
			tb.Fatal(err)
		}
		if err := fw.Close(); err != nil {
			tb.Fatal(err)
		}
		h.CRC32 = crc32.ChecksumIEEE([]byte(m.Body))
		h.CompressedSize64, h.UncompressedSize64 = uint64(deflated.Len()), m.Declared
		w, err := zw.CreateRaw(h)
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := w.Write(deflated.Bytes()); err != nil {
			tb.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func link(name, target string) member {
	return member{Name: name, Mode: fs.ModeSymlink | 0o777, Body: target}
}

var testLimits = Limits{MaxBytes: 1 << 20, MaxFiles: 100}

// extract unpacks data into <tmp>/dst and checks that nothing appeared beside dst.
func extract(t testing.TB, data []byte, l Limits) (string, Stats, error) {
	t.Helper()
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "dst")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := Extract(context.Background(), bytes.NewReader(data), int64(len(data)), root, l)
	if cerr := root.Close(); cerr != nil {
		t.Fatal(cerr)
	}
	des, rerr := os.ReadDir(tmp)
	if rerr != nil {
		t.Fatal(rerr)
	}
	if len(des) != 1 || des[0].Name() != "dst" {
		t.Errorf("%s holds %v, want only dst", tmp, des)
	}
	return dir, st, err
}

// snapshot describes every path under dir: "dir 0755", "file 0744 <content>" or "link -> <target>".
func snapshot(t testing.TB, dir string) map[string]string {
	t.Helper()
	got := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			got[rel] = "link -> " + target
			return err
		case fi.IsDir():
			got[rel] = fmt.Sprintf("dir %#o", fi.Mode().Perm())
		default:
			b, err := os.ReadFile(p)
			got[rel] = fmt.Sprintf("file %#o %s", fi.Mode()&^fs.ModeType, b)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// packageMembers is a plausible handler package with every kind of entry Extract accepts.
var packageMembers = []member{
	{Name: "bin/", Mode: fs.ModeDir | 0o700},
	{Name: "bin/install.sh", Mode: 0o644, Body: "#!/bin/sh\necho install\n"},
	{Name: "bin/enable.sh", Mode: 0o755, Body: "#!/bin/sh\n"},
	link("bin/run", "install.sh"),
	{Name: "HandlerManifest.json", Body: `[{"version": 1.0}]`}, // no Unix mode bits (FAT creator)
	{Name: "unix-without-mode", Body: "x", Edit: func(h *zip.FileHeader) { // Unix creator, zero mode
		h.CreatorVersion = creatorUnix << 8
	}},
	{Name: "lib/python/vmaccess/util.py", Mode: 0o600, Body: "pass\n"}, // implied parents
	{Name: "setuid", Mode: fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky | 0o755, Body: "s"},
	{Name: "empty", Mode: 0o644},
	{Name: "world-writable", Mode: 0o666, Body: "w"},
	{Name: "./dot//slashes/x", Mode: 0o640, Body: "clean me"},
	{Name: "late/y", Mode: 0o644, Body: "y"},
	{Name: "late/", Mode: fs.ModeDir | 0o777}, // a directory after its content
	link("lib/up", "../bin/install.sh"),
	link("b", "lib"),
	link("a", "b/.."), // a chain that stays inside: b/.. is lib/.., the root
	link("self", "."),
	link("dangling", "nowhere/../bin"),
	{Name: "stored", Mode: 0o644, Body: "not compressed", Edit: func(h *zip.FileHeader) { h.Method = zip.Store }},
}

func TestExtractPackage(t *testing.T) {
	dir, st, err := extract(t, makeZip(t, packageMembers...), testLimits)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"bin":                         "dir 0755",
		"bin/install.sh":              "file 0744 #!/bin/sh\necho install\n",
		"bin/enable.sh":               "file 0755 #!/bin/sh\n",
		"bin/run":                     "link -> install.sh",
		"HandlerManifest.json":        `file 0744 [{"version": 1.0}]`,
		"unix-without-mode":           "file 0744 x",
		"lib":                         "dir 0755",
		"lib/python":                  "dir 0755",
		"lib/python/vmaccess":         "dir 0755",
		"lib/python/vmaccess/util.py": "file 0700 pass\n",
		"setuid":                      "file 0755 s",
		"empty":                       "file 0744 ",
		"world-writable":              "file 0744 w",
		"dot":                         "dir 0755",
		"dot/slashes":                 "dir 0755",
		"dot/slashes/x":               "file 0740 clean me",
		"late":                        "dir 0755",
		"late/y":                      "file 0744 y",
		"lib/up":                      "link -> ../bin/install.sh",
		"b":                           "link -> lib",
		"a":                           "link -> b/..",
		"self":                        "link -> .",
		"dangling":                    "link -> nowhere/../bin",
		"stored":                      "file 0744 not compressed",
	}
	if diff := cmp.Diff(want, snapshot(t, dir)); diff != "" {
		t.Errorf("tree (-want +got):\n%s", diff)
	}
	var bytes int64
	for _, m := range packageMembers {
		if m.Mode&fs.ModeType == 0 {
			bytes += int64(len(m.Body))
		}
	}
	if diff := cmp.Diff(Stats{Files: len(want), Bytes: bytes}, st); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
}

// The modes must not depend on the agent's umask.
func TestExtractIgnoresUmask(t *testing.T) {
	defer syscall.Umask(syscall.Umask(0o077))
	dir, _, err := extract(t, makeZip(t,
		member{Name: "d/script.sh", Mode: 0o644, Body: "x"},
	), testLimits)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"d": "dir 0755", "d/script.sh": "file 0744 x"}
	if diff := cmp.Diff(want, snapshot(t, dir)); diff != "" {
		t.Errorf("tree (-want +got):\n%s", diff)
	}
}

func TestExtractEmptyArchive(t *testing.T) {
	dir, st, err := extract(t, makeZip(t), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Stats{}, st); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
	if got := snapshot(t, dir); len(got) != 0 {
		t.Errorf("dst holds %v, want nothing", got)
	}
}

// bomb is 4 MiB of zeros: it deflates to a few KiB.
var bomb = strings.Repeat("\x00", 4<<20)

type refusal struct {
	name    string
	zip     func(testing.TB) []byte
	limits  Limits // testLimits when zero
	want    error  // errors.Is target
	msg     string // substring of the error message
	partial bool   // refused while writing: dst may hold what came before
}

func members(ms ...member) func(testing.TB) []byte {
	return func(tb testing.TB) []byte { return makeZip(tb, ms...) }
}

func bytesOf(b []byte) func(testing.TB) []byte {
	return func(testing.TB) []byte { return b }
}

var refusals = []refusal{
	{name: "zip slip", zip: members(member{Name: "../evil", Body: "x"}),
		want: ErrUnsafe, msg: `entry "../evil": path leaves the target directory: unsafe archive`},
	{name: "zip slip nested", zip: members(member{Name: "a/../../evil", Body: "x"}),
		want: ErrUnsafe, msg: `entry "a/../../evil": path leaves the target directory`},
	{name: "dot dot inside", zip: members(member{Name: "a/../b", Body: "x"}),
		want: ErrUnsafe, msg: `entry "a/../b": path contains a ".." element`},
	{name: "dot dot dir", zip: members(member{Name: "../", Mode: fs.ModeDir | 0o755}),
		want: ErrUnsafe, msg: `entry "../": path leaves the target directory`},
	{name: "absolute path", zip: members(member{Name: "/etc/evil", Body: "x"}),
		want: ErrUnsafe, msg: `entry "/etc/evil": absolute path`},
	{name: "empty name", zip: members(member{Name: "", Body: "x"}),
		want: ErrUnsafe, msg: `entry "": empty name`},
	{name: "NUL in name", zip: members(member{Name: "a\x00b", Body: "x"}),
		want: ErrUnsafe, msg: `entry "a\x00b": name contains NUL`},
	{name: "target dir itself", zip: members(member{Name: "./", Mode: fs.ModeDir | 0o755}),
		want: ErrUnsafe, msg: `entry "./": name is the target directory itself`},
	{name: "escaping symlink", zip: members(link("link", "../../etc")),
		want: ErrUnsafe, msg: `entry "link": symlink target "../../etc" leaves the target directory`},
	{name: "escaping symlink from subdir", zip: members(link("a/b/link", "../../../x")),
		want: ErrUnsafe, msg: `entry "a/b/link": symlink target "../../../x" leaves the target directory`},
	{name: "absolute symlink", zip: members(link("link", "/etc")),
		want: ErrUnsafe, msg: `entry "link": absolute symlink target "/etc"`},
	{name: "empty symlink", zip: members(link("link", "")),
		want: ErrUnsafe, msg: `entry "link": empty symlink target`},
	{name: "symlink target with NUL", zip: members(link("link", "a\x00b")),
		want: ErrUnsafe, msg: `entry "link": symlink target contains NUL`},
	{name: "long symlink target", zip: members(link("link", strings.Repeat("a/", 2048))),
		want: ErrUnsafe, msg: `entry "link": symlink target longer than 4095 bytes`},
	{name: "symlink chain", zip: members(link("a", "b/.."), link("b", "..")),
		want: ErrUnsafe, msg: `symlink target "b/.." leaves the target directory`},
	// Lexically d/.. is ".", but d is the root itself, so l is the root's parent.
	{name: "symlink through symlink to root", zip: members(link("d", "."), link("l", "d/..")),
		want: ErrUnsafe, msg: `entry "l": symlink target "d/.." leaves the target directory`},
	{name: "symlink through deep symlink", zip: members(link("p/q/d", "../.."), link("p/q/l", "d/../x")),
		want: ErrUnsafe, msg: `entry "p/q/l": symlink target "d/../x" leaves the target directory`},
	{name: "symlink loop", zip: members(link("a", "b"), link("b", "a/c")),
		want: ErrUnsafe, msg: `symlink target "b" leads into a symlink loop`},
	{name: "file through in-tree symlink", zip: members(member{Name: "sub/", Mode: fs.ModeDir | 0o755}, link("link", "sub"), member{Name: "link/file", Body: "x"}),
		want: ErrUnsafe, msg: `entry "link/file": path goes through symlink "link"`},
	// Written through d (the root), l would be a link to the root's parent.
	{name: "symlink through symlink", zip: members(link("d", "."), link("d/l", "..")),
		want: ErrUnsafe, msg: `entry "d/l": path goes through symlink "d"`},
	{name: "file through file", zip: members(member{Name: "f", Body: "x"}, member{Name: "f/g", Body: "y"}),
		want: ErrUnsafe, msg: `entry "f/g": path goes through file "f"`},
	{name: "zip bomb declared", zip: members(member{Name: "bomb", Body: bomb}),
		want: ErrUnsafe, msg: `entry "bomb": archive declares more than the limit of 1048576 bytes`},
	{name: "zip bomb declared in total", zip: members(member{Name: "a", Body: bomb[:600<<10]}, member{Name: "b", Body: bomb[:600<<10]}),
		want: ErrUnsafe, msg: `entry "b": archive declares more than the limit of 1048576 bytes`},
	{name: "zip bomb lying", zip: members(member{Name: "bomb", Body: bomb, Declared: 1 << 10}),
		want: ErrUnsafe, msg: `entry "bomb": data longer than the declared 1024 bytes`, partial: true},
	{name: "symlink lying", zip: members(member{Name: "link", Mode: fs.ModeSymlink | 0o777, Body: bomb, Declared: 10}),
		want: ErrUnsafe, msg: `entry "link": reading symlink target: data longer than the declared 10 bytes`},
	{name: "too many entries", zip: members(member{Name: "a"}, member{Name: "b"}, member{Name: "c"}),
		limits: Limits{MaxBytes: 1, MaxFiles: 2},
		want:   ErrUnsafe, msg: `archive has 3 entries, over the limit of 2: unsafe archive`},
	{name: "too many implied directories", zip: members(member{Name: "a/b/c/d"}),
		limits: Limits{MaxBytes: 1, MaxFiles: 3},
		want:   ErrUnsafe, msg: `entry "a/b/c/d": archive unpacks to more than 3 entries`},
	{name: "duplicate", zip: members(member{Name: "a", Body: "1"}, member{Name: "a", Body: "2"}),
		want: ErrUnsafe, msg: `entry "a": duplicate entry`},
	{name: "duplicate after cleaning", zip: members(member{Name: "d/a", Body: "1"}, member{Name: "d/./a", Body: "2"}),
		want: ErrUnsafe, msg: `entry "d/./a": duplicate entry`},
	{name: "duplicate directory", zip: members(member{Name: "d/", Mode: fs.ModeDir | 0o755}, member{Name: "d/", Mode: fs.ModeDir | 0o755}),
		want: ErrUnsafe, msg: `entry "d/": duplicate entry`},
	{name: "file over directory", zip: members(member{Name: "d/x", Body: "1"}, member{Name: "d", Body: "2"}),
		want: ErrUnsafe, msg: `entry "d": name is also a directory of other entries`},
	{name: "fifo", zip: members(member{Name: "fifo", Mode: fs.ModeNamedPipe | 0o644}),
		want: ErrUnsafe, msg: `entry "fifo": special file (mode prw-r--r--)`},
	{name: "block device", zip: members(member{Name: "sda", Mode: fs.ModeDevice | 0o600}),
		want: ErrUnsafe, msg: `entry "sda": special file`},
	{name: "char device", zip: members(member{Name: "null", Mode: fs.ModeDevice | fs.ModeCharDevice | 0o666}),
		want: ErrUnsafe, msg: `entry "null": special file`},
	{name: "socket", zip: members(member{Name: "sock", Mode: fs.ModeSocket | 0o666}),
		want: ErrUnsafe, msg: `entry "sock": special file`},
	{name: "symlink directory", zip: members(member{Name: "link/", Mode: fs.ModeSymlink | 0o777}),
		want: ErrUnsafe, msg: `entry "link/": special file`},
	{name: "truncated", zip: func(tb testing.TB) []byte { z := makeZip(tb, packageMembers...); return z[:len(z)/2] },
		want: zip.ErrFormat, msg: "reading zip archive: zip: not a valid zip file"},
	{name: "truncated central directory", zip: func(tb testing.TB) []byte { z := makeZip(tb, packageMembers...); return z[:len(z)-30] },
		want: zip.ErrFormat, msg: "reading zip archive: zip: not a valid zip file"},
	{name: "random bytes", zip: func(testing.TB) []byte {
		b := make([]byte, 4096)
		_, _ = rand.NewChaCha8([32]byte{1}).Read(b)
		return b
	}, want: zip.ErrFormat, msg: "reading zip archive: zip: not a valid zip file"},
	{name: "corrupt data", zip: func(tb testing.TB) []byte {
		z := makeZip(tb, member{Name: "a", Body: "first"}, member{Name: "b", Body: "hello world", Edit: func(h *zip.FileHeader) { h.Method = zip.Store }})
		return bytes.Replace(z, []byte("hello world"), []byte("hello_world"), 1)
	}, want: zip.ErrChecksum, msg: `entry "b": zip: checksum error`, partial: true},
	{name: "unknown compression", zip: members(member{Name: "a", Body: "x", Declared: 1, Edit: func(h *zip.FileHeader) { h.Method = 99 }}),
		want: zip.ErrAlgorithm, msg: `entry "a": zip: unsupported compression algorithm`},
}

func TestExtractRefuses(t *testing.T) {
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			l := tc.limits
			if l == (Limits{}) {
				l = testLimits
			}
			dir, _, err := extract(t, tc.zip(t), l)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Extract error = %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("Extract error = %q, want it to contain %q", err, tc.msg)
			}
			if got := snapshot(t, dir); !tc.partial && len(got) != 0 {
				t.Errorf("refused archive wrote %v", got)
			}
		})
	}
}

func TestExtractCanceled(t *testing.T) {
	dir := t.TempDir()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	z := makeZip(t, packageMembers...)
	if _, err := Extract(ctx, bytes.NewReader(z), int64(len(z)), root, testLimits); !errors.Is(err, context.Canceled) {
		t.Fatalf("Extract error = %v, want context.Canceled", err)
	}
	if got := snapshot(t, dir); len(got) != 0 {
		t.Errorf("canceled Extract wrote %v", got)
	}
}

// BenchmarkExtract unpacks a 10 MiB package of 200 files in 10 directories.
func BenchmarkExtract(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	const alphabet = "abcdefghijklmnopqrstuvwxyz  \n{}();=_"
	var ms []member
	var total int64
	for i := range 200 {
		body := make([]byte, 50<<10+i)
		for j := range body {
			body[j] = alphabet[rng.IntN(len(alphabet))]
		}
		ms = append(ms, member{Name: path.Join(fmt.Sprintf("dir%d", i%10), fmt.Sprintf("file%03d.sh", i)), Mode: 0o644, Body: string(body)})
		total += int64(len(body))
	}
	z := makeZip(b, ms...)
	l := Limits{MaxBytes: 1 << 30, MaxFiles: 1000}
	parent := b.TempDir()
	b.SetBytes(total)
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		dir := filepath.Join(parent, fmt.Sprint(i))
		if err := os.Mkdir(dir, 0o700); err != nil {
			b.Fatal(err)
		}
		root, err := os.OpenRoot(dir)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := Extract(context.Background(), bytes.NewReader(z), int64(len(z)), root, l); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		root.Close()
		if err := os.RemoveAll(dir); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// archive/zip already stops data running past the declared size; copyData's own budget is the
// second line of defense, tested here directly.
func TestCopyDataBudget(t *testing.T) {
	buf := make([]byte, 4)
	for _, tc := range []struct {
		budget int64
		want   error
	}{{budget: 10}, {budget: 9, want: errTooLarge}, {budget: 0, want: errTooLarge}} {
		var out bytes.Buffer
		n, err := copyData(context.Background(), &out, strings.NewReader("0123456789"), buf, tc.budget)
		if !errors.Is(err, tc.want) {
			t.Errorf("budget %d: error = %v, want %v", tc.budget, err, tc.want)
		}
		if n != int64(out.Len()) || n > tc.budget {
			t.Errorf("budget %d: returned %d, wrote %d", tc.budget, n, out.Len())
		}
	}
}
