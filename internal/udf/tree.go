package udf

import (
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"
)

// File characteristics of a file identifier descriptor (ECMA-167 4/14.4.3).
const (
	fidDirectory = 1 << 1
	fidDeleted   = 1 << 2
	fidParent    = 1 << 3
)

// node is a file or directory of the tree read at Open.
type node struct {
	name     string
	addr     lbAddr // the file entry
	size     int64
	mode     fs.FileMode
	mtime    time.Time
	children []*node // directories: sorted by name
}

func newNode(name string, e *entry) *node {
	return &node{name: name, addr: e.addr, size: e.size, mode: e.mode, mtime: e.mtime}
}

// child returns the child called name, or nil.
func (n *node) child(name string) *node {
	i, ok := slices.BinarySearchFunc(n.children, name, func(c *node, name string) int { return strings.Compare(c.name, name) })
	if !ok {
		return nil
	}
	return n.children[i]
}

// loadTree reads the file set descriptor and the whole directory tree below its root directory.
// Directories may be linked only once, so the tree is finite and its walk bounded.
func (f *FS) loadTree() error {
	b, id, err := f.readDescriptor(f.fsd)
	if err == nil && id != tagFSD {
		err = fmt.Errorf("tag %d, want %d", id, tagFSD)
	}
	if err != nil {
		return fmt.Errorf("file set descriptor at %s: %w", f.where(f.fsd), err)
	}
	e, err := f.readEntry(parseLongAD(b[400:]))
	if err != nil {
		return fmt.Errorf("root directory: %w", err)
	}
	if !e.mode.IsDir() {
		return fmt.Errorf("root directory: file entry at %s is not a directory", f.where(e.addr))
	}
	f.root = newNode(".", e)
	type pending struct {
		dir  *node
		path string
	}
	queue := []pending{{f.root, "."}}
	linked := map[lbAddr]bool{e.addr: true}
	var entries int
	var dirBytes int64
	for len(queue) > 0 {
		d := queue[0]
		queue = queue[1:]
		// Reread the entry rather than keep every pending directory's block in memory.
		e, err := f.readEntry(d.dir.addr)
		if err != nil {
			return fmt.Errorf("directory %q: %w", d.path, err)
		}
		data, err := f.readData(e, maxDirSize)
		if err != nil {
			return fmt.Errorf("directory %q at %s: %w", d.path, f.where(e.addr), err)
		}
		if dirBytes += int64(len(data)); dirBytes > maxDirBytes {
			return fmt.Errorf("directory %q: directories hold more than %d bytes", d.path, maxDirBytes)
		}
		fids, err := parseFIDs(data)
		if err != nil {
			return fmt.Errorf("directory %q at %s: %w", d.path, f.where(e.addr), err)
		}
		for _, fid := range fids {
			if entries++; entries > maxEntries {
				return fmt.Errorf("more than %d files and directories", maxEntries)
			}
			p := path.Join(d.path, fid.name)
			ce, err := f.readEntry(fid.icb)
			if err != nil {
				return fmt.Errorf("%q: %w", p, err)
			}
			c := newNode(fid.name, ce)
			if c.mode.IsDir() {
				if linked[fid.icb] {
					return fmt.Errorf("%q: directory at %s is linked twice (a loop?)", p, f.where(fid.icb))
				}
				linked[fid.icb] = true
				queue = append(queue, pending{c, p})
			}
			d.dir.children = append(d.dir.children, c)
		}
		slices.SortFunc(d.dir.children, func(a, b *node) int { return strings.Compare(a.name, b.name) })
		for i := 1; i < len(d.dir.children); i++ {
			if name := d.dir.children[i].name; name == d.dir.children[i-1].name {
				return fmt.Errorf("directory %q: name %q appears twice", d.path, name)
			}
		}
	}
	return nil
}

// fid is a live directory entry.
type fid struct {
	name string
	icb  lbAddr
}

// parseFIDs decodes a directory's file identifier descriptors (ECMA-167 4/14.4), skipping the
// parent entry and deleted entries.
func parseFIDs(data []byte) ([]fid, error) {
	var out []fid
	for off := 0; off < len(data); {
		b := data[off:]
		if len(b) < 38 {
			return nil, fmt.Errorf("file identifier descriptor at byte %d truncated", off)
		}
		chars, nameLen, iuLen := b[18], int(b[19]), int(le.Uint16(b[36:]))
		end := 38 + iuLen + nameLen
		if end > len(b) {
			return nil, fmt.Errorf("file identifier descriptor at byte %d: %d bytes overflow the directory", off, end)
		}
		// The CRC covers at most this descriptor, padded to four bytes.
		t, err := parseTag(b[:min((end+3)&^3, len(b))])
		if err == nil && t.id != tagFID {
			err = fmt.Errorf("tag %d, want %d", t.id, tagFID)
		}
		if err != nil {
			return nil, fmt.Errorf("file identifier descriptor at byte %d: %w", off, err)
		}
		at := off
		off += (end + 3) &^ 3
		if chars&(fidDeleted|fidParent) != 0 {
			continue
		}
		name, err := decodeDChars(b[38+iuLen : end])
		if err == nil && !validName(name) {
			err = fmt.Errorf("invalid name %q", name)
		}
		if err != nil {
			return nil, fmt.Errorf("file identifier descriptor at byte %d: %w", at, err)
		}
		out = append(out, fid{name: name, icb: parseLongAD(b[20:])})
	}
	return out, nil
}

// validName reports whether name can be one element of an fs.FS path.
func validName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, "/\x00")
}
