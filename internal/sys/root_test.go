package sys

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func testRoot(t *testing.T) *Root {
	t.Helper()
	r, err := OpenRoot(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestWriteFileAtomic(t *testing.T) {
	r := testRoot(t)
	if err := r.MkdirAll("/var/lib/waagent", 0o700); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		data string
		perm fs.FileMode
	}{{"first", 0o600}, {"second, longer content", 0o644}, {"3", 0o400}} {
		if err := r.WriteFileAtomic("/var/lib/waagent/x.prv", []byte(tc.data), tc.perm); err != nil {
			t.Fatal(err)
		}
		got, err := r.ReadFile("var/lib/waagent/x.prv")
		if err != nil || string(got) != tc.data {
			t.Fatalf("content = %q, %v; want %q", got, err, tc.data)
		}
		fi, err := os.Stat(r.HostPath("/var/lib/waagent/x.prv"))
		if err != nil || fi.Mode().Perm() != tc.perm {
			t.Fatalf("mode = %v, %v; want %v", fi.Mode(), err, tc.perm)
		}
	}
	entries, _ := r.ReadDir("/var/lib/waagent")
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}

func TestWriteFileAtomicMissingParent(t *testing.T) {
	r := testRoot(t)
	err := r.WriteFileAtomic("/nope/file", []byte("x"), 0o644)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "/nope/file") {
		t.Fatalf("err = %v", err)
	}
}

func TestPathsStayUnderRoot(t *testing.T) {
	r := testRoot(t)
	outside := filepath.Join(filepath.Dir(r.Dir()), "outside")
	for _, name := range []string{"../outside", "/../../outside", "a/../../outside"} {
		if err := r.MkdirAll("/a", 0o755); err != nil {
			t.Fatal(err)
		}
		// Cleaning makes every name land inside the root.
		if err := r.WriteFileAtomic(name, []byte("x"), 0o644); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := os.Stat(outside); err == nil {
			t.Fatalf("%s escaped the root", name)
		}
	}
	// A symlink pointing out of the root is refused.
	if err := os.Symlink("/etc", filepath.Join(r.Dir(), "etc")); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadFile("/etc/passwd"); err == nil {
		t.Fatal("read through an escaping symlink")
	}
}

func TestLiveAndHostPath(t *testing.T) {
	r := testRoot(t)
	if r.Live() {
		t.Error("temp root reported live")
	}
	if got, want := r.HostPath("/etc/hostname"), filepath.Join(r.Dir(), "etc/hostname"); got != want {
		t.Errorf("HostPath = %q, want %q", got, want)
	}
}

func TestGlob(t *testing.T) {
	r := testRoot(t)
	r.MkdirAll("/run/systemd/netif/leases", 0o755)
	for _, n := range []string{"2", "3"} {
		r.WriteFileAtomic("/run/systemd/netif/leases/"+n, nil, 0o644)
	}
	got, err := r.Glob("/run/systemd/netif/leases/*")
	if err != nil || strings.Join(got, ",") != "/run/systemd/netif/leases/2,/run/systemd/netif/leases/3" {
		t.Fatalf("Glob = %v, %v", got, err)
	}
}

func TestWriteFileAtomicAs(t *testing.T) {
	r := testRoot(t)
	owner := Owner{UID: os.Getuid(), GID: os.Getgid()}
	if err := r.WriteFileAtomicAs("/k", []byte("x"), 0o600, owner); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(r.HostPath("/k"))
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != owner.UID || int(st.Gid) != owner.GID || fi.Mode().Perm() != 0o600 {
		t.Errorf("owner %d:%d mode %v", st.Uid, st.Gid, fi.Mode())
	}
}

func TestUpdateFile(t *testing.T) {
	r := testRoot(t)
	me := &Owner{UID: os.Getuid(), GID: os.Getgid()}
	for i, tc := range []struct {
		data    string
		perm    fs.FileMode
		changed bool
	}{
		{"a", 0o644, true},  // created
		{"a", 0o644, false}, // same
		{"a", 0o600, true},  // mode fixed in place
		{"b", 0o600, true},  // rewritten
	} {
		changed, err := r.UpdateFile("/f", []byte(tc.data), tc.perm, me)
		if err != nil || changed != tc.changed {
			t.Fatalf("step %d: changed %v, %v; want %v", i, changed, err, tc.changed)
		}
		if got, _ := r.ReadFile("/f"); string(got) != tc.data {
			t.Fatalf("step %d: content %q", i, got)
		}
		if fi, _ := os.Stat(r.HostPath("/f")); fi.Mode().Perm() != tc.perm {
			t.Fatalf("step %d: mode %v", i, fi.Mode())
		}
	}
}
