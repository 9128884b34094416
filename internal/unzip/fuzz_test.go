package unzip

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzExtract unpacks arbitrary bytes: Extract must not panic, must write nothing beside dst, and
// every symlink it leaves must resolve, on disk, without leaving dst. Seeds are every test archive.
func FuzzExtract(f *testing.F) {
	f.Add(makeZip(f, packageMembers...))
	for _, tc := range refusals {
		f.Add(tc.zip(f))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkExtract(t, data)
	})
}

// FuzzExtractTree builds well-formed archives from a list of names, one a line: "name -> target"
// is a symlink, a name ending in "/" a directory, anything else a file. Random bytes rarely get
// past the zip checksums, so this is what exercises the symlink and path rules.
func FuzzExtractTree(f *testing.F) {
	for _, seed := range []string{
		"a -> b/..\nb -> ..",
		"d -> .\nl -> d/..",
		"p/q/d -> ../..\np/q/l -> d/../x",
		"d -> .\nd/l -> ..",
		"sub/\nlink -> sub\nlink/file",
		"a -> b\nb -> a/c",
		"bin/\nbin/x\nbin/run -> x\nlib/up -> ../bin/x\nb -> lib\na -> b/..\nself -> .\nz -> nowhere/../bin",
		"x/y/z -> ../../a\na -> x/y\nx/y/w -> z/../..",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		if len(spec) > 1<<12 {
			t.Skip("spec too long") // keeps names within what zip.Writer accepts
		}
		var ms []member
		for line := range strings.Lines(spec) {
			name, target, isLink := strings.Cut(strings.TrimSuffix(line, "\n"), " -> ")
			switch {
			case strings.HasSuffix(name, "/"): // zip.Writer allows no data for these
				ms = append(ms, member{Name: name, Mode: fs.ModeDir | 0o755})
			case isLink:
				ms = append(ms, link(name, target))
			default:
				ms = append(ms, member{Name: name, Mode: 0o644, Body: name})
			}
		}
		checkExtract(t, makeZip(t, ms...))
	})
}

// checkExtract extracts data and fails if anything appeared beside dst or a symlink leads out of it.
func checkExtract(t *testing.T, data []byte) {
	dir, _, _ := extract(t, data, Limits{MaxBytes: 1 << 20, MaxFiles: 64})
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeSymlink == 0 {
			return err
		}
		if leavesDir(t, dir, p) {
			target, _ := os.Readlink(p)
			t.Errorf("symlink %s -> %s leaves %s", p, target, dir)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// leavesDir reports whether following the symlink at link ever goes above dir, resolving it on disk
// the way the kernel does (a missing path element is followed lexically; a loop stays inside).
func leavesDir(t *testing.T, dir, link string) bool {
	rel, err := filepath.Rel(dir, filepath.Dir(link))
	if err != nil {
		t.Fatal(err)
	}
	var at []string // resolved elements below dir
	if rel != "." {
		at = strings.Split(rel, "/")
	}
	pending := []string{filepath.Base(link)}
	for hops := 0; len(pending) > 0; {
		elem := pending[0]
		pending = pending[1:]
		switch elem {
		case "", ".":
			continue
		case "..":
			if len(at) == 0 {
				return true
			}
			at = at[:len(at)-1]
			continue
		}
		p := filepath.Join(append([]string{dir}, append(at, elem)...)...)
		target, err := os.Readlink(p)
		if err != nil { // not a symlink, or missing
			at = append(at, elem)
			continue
		}
		if hops++; hops > 40 {
			return false // ELOOP: the link cannot be followed at all
		}
		if filepath.IsAbs(target) {
			return true
		}
		pending = append(strings.Split(target, "/"), pending...)
	}
	return false
}

// The oracle itself must see an escape where there is one.
func TestLeavesDir(t *testing.T) {
	dir := t.TempDir()
	for name, target := range map[string]string{"root": ".", "up": "root/..", "in": "root/x/.."} {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	for name, want := range map[string]bool{"root": false, "up": true, "in": false} {
		if got := leavesDir(t, dir, filepath.Join(dir, name)); got != want {
			t.Errorf("leavesDir(%s) = %v, want %v", name, got, want)
		}
	}
}
