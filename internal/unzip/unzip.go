// Package unzip unpacks extension handler packages (zip archives from the platform) into a directory
// without ever writing outside it, whatever the archive contains.
//
// Extraction has two phases. The whole archive is validated first (names, entry types, symlink
// targets, declared sizes, entry count) against a model of the tree it will produce, so a refused
// archive writes nothing. Then everything is written through an *os.Root, which confines every write
// even if validation were wrong, while the bytes actually decompressed are counted against the limit.
package unzip

import (
	"archive/zip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
)

// Limits bound what one archive may unpack to. Both are hard caps: the zero Limits admits only an
// empty archive.
type Limits struct {
	MaxBytes int64 // total uncompressed bytes actually written (not the sizes the archive declares)
	MaxFiles int   // entries (files + dirs + symlinks), counting parent directories the archive omits
}

// Stats says what Extract wrote.
type Stats struct {
	Files int   // entries created: regular files, directories (including implied parents) and symlinks
	Bytes int64 // file data bytes written
}

// ErrUnsafe is wrapped by every refusal: a path that leaves the target directory, an absolute path,
// an escaping symlink, too many bytes or entries, a duplicate entry or a special file.
var ErrUnsafe = errors.New("unsafe archive")

const (
	// maxTarget is the longest symlink target Linux accepts (PATH_MAX less the NUL).
	maxTarget = 4095
	// copyBufSize is the write chunk; the context is checked once per chunk read.
	copyBufSize = 256 << 10
	// Zip "version made by" hosts whose external attributes carry Unix mode bits.
	creatorUnix   = 3
	creatorMacOSX = 19
)

// Extract unpacks the zip archive r (size bytes) into dst, which confines every write (an *os.Root
// opened on an empty directory by the caller). Every regular file gets the owner-execute bit added
// (handlers ship scripts without it and expect the agent to add u+x), setuid/setgid/sticky bits are
// dropped, a file without Unix mode bits gets 0644|u+x, directories 0755. Symlinks are created only
// when their target, followed through the archive's other symlinks, stays inside dst; no entry may
// be written through a symlink. It returns the bytes written.
//
// The archive is validated completely before anything is written, but a failure while writing
// (corrupt data, a size lie, ctx ending, a full disk) leaves partial content in dst: callers
// extract into a temporary directory and rename it into place only on success. Extract removes
// nothing itself.
func Extract(ctx context.Context, r io.ReaderAt, size int64, dst *os.Root, l Limits) (Stats, error) {
	zr, err := zip.NewReader(r, size)
	// ErrInsecurePath (GODEBUG zipinsecurepath=0) comes with a usable reader; names are checked below.
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return Stats{}, fmt.Errorf("reading zip archive: %w", err)
	}
	p, err := newPlan(zr, l)
	if err != nil {
		return Stats{}, err
	}
	return p.write(ctx, dst, max(l.MaxBytes, 0))
}

// node is one path of the tree the archive unpacks to.
type node struct {
	kind     fs.FileMode // 0 (regular file), fs.ModeDir or fs.ModeSymlink
	explicit bool        // named by an entry rather than implied as a parent
	parent   *node       // nil for the root
	children map[string]*node
	target   string // symlink target

	resolving, resolved bool
	dest                location // where the symlink leads, once resolved
}

// location is a place reached while following a symlink: a known node, then extra path elements
// that the archive does not create (they can hold no symlinks, so they are followed lexically).
type location struct {
	n     *node
	extra int
}

// entry is a validated archive member to write.
type entry struct {
	f    *zip.File
	name string // cleaned, relative to dst
	node *node
	perm fs.FileMode
}

// plan is the validated tree: the directories in creation order (parents first) and the files and
// symlinks in archive order.
type plan struct {
	root    node
	count   int
	limit   int
	dirs    []string
	entries []entry
}

func newPlan(zr *zip.Reader, l Limits) (*plan, error) {
	if len(zr.File) > l.MaxFiles {
		return nil, fmt.Errorf("archive has %d entries, over the limit of %d: %w", len(zr.File), l.MaxFiles, ErrUnsafe)
	}
	p := &plan{root: node{kind: fs.ModeDir}, limit: l.MaxFiles}
	budget := uint64(max(l.MaxBytes, 0))
	var declared uint64
	for _, f := range zr.File {
		name, err := cleanName(f.Name)
		if err != nil {
			return nil, refuse(f.Name, "%v", err)
		}
		kind := f.Mode().Type()
		switch kind {
		case 0:
			if f.UncompressedSize64 > budget-declared {
				return nil, refuse(f.Name, "archive declares more than the limit of %d bytes", budget)
			}
			declared += f.UncompressedSize64
		case fs.ModeDir, fs.ModeSymlink:
		default:
			return nil, refuse(f.Name, "special file (mode %v)", f.Mode())
		}
		n, err := p.add(name, kind)
		if err != nil {
			return nil, refuse(f.Name, "%v", err)
		}
		if kind != fs.ModeDir {
			p.entries = append(p.entries, entry{f: f, name: name, node: n, perm: filePerm(&f.FileHeader)})
		}
	}
	// Targets are all read before any is followed: a link may lead through a later one.
	for _, e := range p.entries {
		if e.node.kind != fs.ModeSymlink {
			continue
		}
		t, err := readTarget(e.f)
		if err != nil {
			return nil, err
		}
		e.node.target = t
	}
	for _, e := range p.entries {
		if e.node.kind != fs.ModeSymlink {
			continue
		}
		if _, err := resolve(e.node); err != nil {
			return nil, refuse(e.f.Name, "symlink target %q %v", e.node.target, err)
		}
	}
	return p, nil
}

// cleanName returns the entry name relative to the target directory, or why it is refused.
func cleanName(name string) (string, error) {
	switch {
	case name == "":
		return "", errors.New("empty name")
	case strings.IndexByte(name, 0) >= 0:
		return "", errors.New("name contains NUL")
	case strings.HasPrefix(name, "/"):
		return "", errors.New("absolute path")
	}
	clean := path.Clean(name)
	for elem := range strings.SplitSeq(name, "/") {
		if elem != ".." {
			continue
		}
		if clean == ".." || strings.HasPrefix(clean, "../") {
			return "", errors.New("path leaves the target directory")
		}
		return "", errors.New(`path contains a ".." element`)
	}
	if clean == "." {
		return "", errors.New("name is the target directory itself")
	}
	return clean, nil
}

// add puts name into the tree, creating missing parents, and refuses duplicates, paths through
// files or symlinks, and trees over the entry limit.
func (p *plan) add(name string, kind fs.FileMode) (*node, error) {
	n := &p.root
	for off := 0; ; {
		end := strings.IndexByte(name[off:], '/')
		last := end < 0
		if last {
			end = len(name)
		} else {
			end += off
		}
		elem, prefix := name[off:end], name[:end]
		child := n.children[elem]
		switch {
		case child == nil:
			if p.count++; p.count > p.limit {
				return nil, fmt.Errorf("archive unpacks to more than %d entries", p.limit)
			}
			child = &node{kind: fs.ModeDir, parent: n}
			if last {
				child.kind, child.explicit = kind, true
			}
			if n.children == nil {
				n.children = make(map[string]*node)
			}
			n.children[elem] = child
			if child.kind == fs.ModeDir {
				p.dirs = append(p.dirs, prefix)
			}
		case !last && child.kind == fs.ModeSymlink:
			return nil, fmt.Errorf("path goes through symlink %q", prefix)
		case !last && child.kind != fs.ModeDir:
			return nil, fmt.Errorf("path goes through file %q", prefix)
		case last && child.explicit:
			return nil, errors.New("duplicate entry")
		case last && kind != fs.ModeDir:
			return nil, errors.New("name is also a directory of other entries")
		case last:
			child.explicit = true
		}
		if last {
			return child, nil
		}
		n, off = child, end+1
	}
}

var (
	errEscape = errors.New("leaves the target directory")
	errLoop   = errors.New("leads into a symlink loop")
)

// resolve follows link's target as the kernel would, through the archive's other symlinks, and
// reports where it leads; errEscape if it ever goes above the root. Results are memoized, so the
// whole archive resolves in time linear in its targets' lengths.
func resolve(link *node) (location, error) {
	switch {
	case link.resolved:
		return link.dest, nil
	case link.resolving:
		return location{}, errLoop
	}
	link.resolving = true
	at := location{n: link.parent}
	if strings.HasPrefix(link.target, "/") {
		return location{}, errEscape
	}
	for elem := range strings.SplitSeq(link.target, "/") {
		switch {
		case elem == "" || elem == ".":
		case elem == "..":
			switch {
			case at.extra > 0:
				at.extra--
			case at.n.parent == nil:
				return location{}, errEscape
			default:
				at.n = at.n.parent
			}
		case at.extra > 0:
			at.extra++
		default:
			child := at.n.children[elem]
			switch {
			case child == nil:
				at.extra = 1
			case child.kind == fs.ModeSymlink:
				d, err := resolve(child)
				if err != nil {
					return location{}, err
				}
				at = d
			default:
				at.n = child
			}
		}
	}
	link.resolved, link.dest = true, at
	return at, nil
}

// readTarget reads and checks a symlink entry's content, its target.
func readTarget(f *zip.File) (string, error) {
	if f.UncompressedSize64 > maxTarget {
		return "", refuse(f.Name, "symlink target longer than %d bytes", maxTarget)
	}
	rc, err := f.Open()
	if err != nil {
		return "", fmt.Errorf("entry %q: %w", f.Name, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return "", fmt.Errorf("entry %q: reading symlink target: %w", f.Name, dataErr(f, err))
	}
	t := string(b)
	switch {
	case t == "":
		return "", refuse(f.Name, "empty symlink target")
	case strings.IndexByte(t, 0) >= 0:
		return "", refuse(f.Name, "symlink target contains NUL")
	case strings.HasPrefix(t, "/"):
		return "", refuse(f.Name, "absolute symlink target %q", t)
	}
	return t, nil
}

// filePerm is the mode a regular file gets: its Unix permission bits (without setuid, setgid and
// sticky) or 0644 when the archive has none, always with owner-execute and never writable by
// group or others: handlers run as root, so a package must not leave a script anyone can change.
func filePerm(h *zip.FileHeader) fs.FileMode {
	creator := h.CreatorVersion >> 8
	if (creator == creatorUnix || creator == creatorMacOSX) && h.ExternalAttrs>>16 != 0 {
		return h.Mode().Perm()&^0o022 | 0o100
	}
	return 0o744
}

func (p *plan) write(ctx context.Context, dst *os.Root, maxBytes int64) (Stats, error) {
	var st Stats
	for _, d := range p.dirs {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		if err := dst.Mkdir(d, 0o755); err != nil {
			return st, err
		}
		// Mkdir is subject to the umask; the mode must not depend on the agent's.
		if err := dst.Chmod(d, 0o755); err != nil {
			return st, err
		}
		st.Files++
	}
	buf := make([]byte, copyBufSize)
	for _, e := range p.entries {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		if e.node.kind == fs.ModeSymlink {
			if err := dst.Symlink(e.node.target, e.name); err != nil {
				return st, err
			}
		} else {
			n, err := writeFile(ctx, dst, e, buf, maxBytes-st.Bytes)
			st.Bytes += n
			if err != nil {
				return st, err
			}
		}
		st.Files++
	}
	return st, nil
}

var errTooLarge = errors.New("too large")

// writeFile writes one regular file of at most budget bytes and returns the bytes written.
func writeFile(ctx context.Context, dst *os.Root, e entry, buf []byte, budget int64) (int64, error) {
	rc, err := e.f.Open()
	if err != nil {
		return 0, fmt.Errorf("entry %q: %w", e.f.Name, err)
	}
	defer rc.Close()
	out, err := dst.OpenFile(e.name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, e.perm)
	if err != nil {
		return 0, err
	}
	n, err := copyData(ctx, out, rc, buf, budget)
	switch {
	case errors.Is(err, errTooLarge):
		err = refuse(e.f.Name, "uncompressed data over the limit")
	case err != nil && ctx.Err() == nil:
		err = fmt.Errorf("entry %q: %w", e.f.Name, dataErr(e.f, err))
	}
	if err == nil {
		// OpenFile is subject to the umask; the mode must not depend on the agent's.
		err = out.Chmod(e.perm)
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return n, err
}

// copyData copies r to w and returns errTooLarge once r yields more than budget bytes.
func copyData(ctx context.Context, w io.Writer, r io.Reader, buf []byte, budget int64) (int64, error) {
	var written int64
	for {
		if err := ctx.Err(); err != nil {
			return written, err
		}
		n, rerr := r.Read(buf)
		if int64(n) > budget-written {
			return written, errTooLarge
		}
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return written, err
			}
			written += int64(n)
		}
		if rerr == io.EOF {
			return written, nil
		}
		if rerr != nil {
			return written, rerr
		}
	}
}

// dataErr explains a read error from an entry's data. archive/zip reports data running past the
// declared size (how a zip bomb lies) as ErrFormat; that is a refusal, not mere corruption.
func dataErr(f *zip.File, err error) error {
	if errors.Is(err, zip.ErrFormat) {
		return fmt.Errorf("data longer than the declared %d bytes (%w): %w", f.UncompressedSize64, err, ErrUnsafe)
	}
	return err
}

func refuse(name, format string, args ...any) error {
	return fmt.Errorf("entry %q: %s: %w", name, fmt.Sprintf(format, args...), ErrUnsafe)
}
