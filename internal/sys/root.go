// Package sys is azinit's only door to the machine: files resolve under a
// target root (traversal-safe through os.Root), writes are atomic, and
// kernel-level effects are allowed only when that root is "/".
package sys

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
)

// Root is the target root every path is resolved under.
type Root struct {
	dir  string
	root *os.Root
}

// OpenRoot opens dir as the target root. It must be an existing directory.
func OpenRoot(dir string) (*Root, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("target root %q: %w", dir, err)
	}
	r, err := os.OpenRoot(abs)
	if err != nil {
		return nil, fmt.Errorf("target root: %w", err)
	}
	return &Root{dir: abs, root: r}, nil
}

// Close releases the root's directory handle.
func (r *Root) Close() error { return r.root.Close() }

// Dir is the root's absolute path on the host.
func (r *Root) Dir() string { return r.dir }

// Live reports whether the root is the running system, the only case in
// which kernel-level effects (sethostname, mount, mkfs, swapon) are allowed.
func (r *Root) Live() bool { return r.dir == "/" }

// HostPath is name as the host sees it, for commands that take a real path
// (useradd --prefix, ssh-keygen -f). name is absolute within the root.
func (r *Root) HostPath(name string) string {
	return filepath.Join(r.dir, rel(name))
}

// rel turns a root-absolute path ("/etc/hostname") into one os.Root accepts.
func rel(name string) string {
	p := strings.TrimLeft(path.Clean("/"+name), "/")
	if p == "" {
		return "."
	}
	return p
}

// ReadFile reads a file under the root.
func (r *Root) ReadFile(name string) ([]byte, error) {
	return r.root.ReadFile(rel(name))
}

// Stat stats a file under the root, following symlinks that stay inside it.
func (r *Root) Stat(name string) (fs.FileInfo, error) {
	return r.root.Stat(rel(name))
}

// ReadDir lists a directory under the root, sorted by name.
func (r *Root) ReadDir(name string) ([]fs.DirEntry, error) {
	return fs.ReadDir(r.root.FS(), rel(name))
}

// Glob returns the root-absolute names matching pattern (path.Match syntax).
func (r *Root) Glob(pattern string) ([]string, error) {
	matches, err := fs.Glob(r.root.FS(), rel(pattern))
	if err != nil {
		return nil, fmt.Errorf("glob %s: %w", pattern, err)
	}
	for i, m := range matches {
		matches[i] = "/" + m
	}
	return matches, nil
}

// MkdirAll creates a directory and its parents under the root with perm.
// Existing directories keep their mode.
func (r *Root) MkdirAll(name string, perm fs.FileMode) error {
	return r.root.MkdirAll(rel(name), perm)
}

// OpenFile opens a file under the root.
func (r *Root) OpenFile(name string, flag int, perm fs.FileMode) (*os.File, error) {
	return r.root.OpenFile(rel(name), flag, perm)
}

// Remove removes a file or empty directory under the root.
func (r *Root) Remove(name string) error {
	return r.root.Remove(rel(name))
}

// Chmod changes the mode of a file under the root.
func (r *Root) Chmod(name string, mode fs.FileMode) error {
	return r.root.Chmod(rel(name), mode)
}

// Chown changes the owner of a file under the root, following symlinks
// that stay inside it.
func (r *Root) Chown(name string, owner Owner) error {
	return r.root.Chown(rel(name), owner.UID, owner.GID)
}

// RemoveAll removes name and everything below it under the root.
func (r *Root) RemoveAll(name string) error {
	return r.root.RemoveAll(rel(name))
}

// Rename renames a file or directory under the root.
func (r *Root) Rename(oldname, newname string) error {
	return r.root.Rename(rel(oldname), rel(newname))
}

// OpenRoot opens the directory name as an *os.Root of its own, for code
// that must not write outside it (unpacking an archive).
func (r *Root) OpenRoot(name string) (*os.Root, error) {
	return r.root.OpenRoot(rel(name))
}

// Owner is a numeric file owner: users are looked up in the target root's
// /etc/passwd, not the host's.
type Owner struct{ UID, GID int }

// WriteFileAtomic replaces name with data so that a reader, or a crash,
// sees either the old content or the new, never a mix: the data goes to a
// temporary file in the same directory with its final mode (so a secret is
// never briefly world-readable), is synced, and is renamed over name; the
// directory is then synced so the rename survives a power loss (files
// under /run, which is volatile, are not synced). The parent directory must
// exist.
func (r *Root) WriteFileAtomic(name string, data []byte, perm fs.FileMode) error {
	return r.writeAtomic(name, data, perm, nil)
}

// WriteFileAtomicAs is WriteFileAtomic for a file owned by owner, which
// the temporary file gets before it takes name.
func (r *Root) WriteFileAtomicAs(name string, data []byte, perm fs.FileMode, owner Owner) error {
	return r.writeAtomic(name, data, perm, &owner)
}

func (r *Root) writeAtomic(name string, data []byte, perm fs.FileMode, owner *Owner) error {
	dst := rel(name)
	// /run is volatile (tmpfs): nothing there has to survive a power loss,
	// so its files are only renamed into place, not synced.
	durable := dst != "run" && !strings.HasPrefix(dst, "run/")
	dir := path.Dir(dst)
	tmp := path.Join(dir, "."+path.Base(dst)+".azinit-"+randomSuffix())
	f, err := r.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			r.root.Remove(tmp)
		}
	}()
	// OpenFile honours the umask; the final mode must be exactly perm.
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	if owner != nil {
		if err := f.Chown(owner.UID, owner.GID); err != nil {
			return fmt.Errorf("writing %s: %w", name, err)
		}
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	if durable {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("writing %s: %w", name, err)
		}
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	if err := r.root.Rename(tmp, dst); err != nil {
		r.root.Remove(tmp)
		ok = true
		return fmt.Errorf("writing %s: %w", name, err)
	}
	ok = true
	if !durable {
		return nil
	}
	return r.syncDir(dir)
}

func (r *Root) syncDir(dir string) error {
	d, err := r.root.Open(dir)
	if err != nil {
		return fmt.Errorf("syncing %s: %w", "/"+dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return fmt.Errorf("syncing %s: %w", "/"+dir, err)
	}
	return nil
}

func randomSuffix() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// UpdateFile makes name hold data with mode perm (and owner, when not
// nil): it writes atomically only when the content differs, and fixes a
// differing mode or owner in place. It reports whether anything changed.
func (r *Root) UpdateFile(name string, data []byte, perm fs.FileMode, owner *Owner) (bool, error) {
	old, err := r.ReadFile(name)
	if err != nil || !bytes.Equal(old, data) {
		if errors.Is(err, fs.ErrNotExist) || err == nil {
			return true, r.writeAtomic(name, data, perm, owner)
		}
		return false, fmt.Errorf("reading %s: %w", name, err)
	}
	fi, err := r.root.Lstat(rel(name))
	if err != nil {
		return false, fmt.Errorf("stat %s: %w", name, err)
	}
	changed := false
	if fi.Mode().Perm() != perm {
		if err := r.Chmod(name, perm); err != nil {
			return false, fmt.Errorf("chmod %s: %w", name, err)
		}
		changed = true
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && owner != nil && (int(st.Uid) != owner.UID || int(st.Gid) != owner.GID) {
		if err := r.Chown(name, *owner); err != nil {
			return false, fmt.Errorf("chown %s: %w", name, err)
		}
		changed = true
	}
	return changed, nil
}
