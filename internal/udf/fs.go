package udf

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"time"
)

// FS is an open UDF volume. It implements fs.FS, fs.ReadDirFS, fs.ReadFileFS and fs.StatFS.
type FS struct {
	img   image
	bs    int64
	parts []partition // by partition reference number
	label string
	fsd   lbAddr
	root  *node
}

var (
	_ fs.ReadDirFS  = (*FS)(nil)
	_ fs.ReadFileFS = (*FS)(nil)
	_ fs.StatFS     = (*FS)(nil)
)

var errIsDir = errors.New("is a directory")

// Label returns the logical volume identifier.
func (f *FS) Label() string { return f.label }

// lookup resolves name to its node.
func (f *FS) lookup(op, name string) (*node, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	n := f.root
	if name == "." {
		return n, nil
	}
	for elem := range strings.SplitSeq(name, "/") {
		if n = n.child(elem); n == nil {
			return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
		}
	}
	return n, nil
}

// Open opens the named file or directory.
func (f *FS) Open(name string) (fs.File, error) {
	n, err := f.lookup("open", name)
	if err != nil {
		return nil, err
	}
	if n.mode.IsDir() {
		return &dir{node: n, path: name}, nil
	}
	return &file{fsys: f, node: n, path: name}, nil
}

// Stat describes the named file or directory.
func (f *FS) Stat(name string) (fs.FileInfo, error) {
	n, err := f.lookup("stat", name)
	if err != nil {
		return nil, err
	}
	return fileInfo{n}, nil
}

// ReadDir lists the named directory, sorted by name.
func (f *FS) ReadDir(name string) ([]fs.DirEntry, error) {
	n, err := f.lookup("readdir", name)
	if err != nil {
		return nil, err
	}
	if !n.mode.IsDir() {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errors.New("not a directory")}
	}
	return dirEntries(n.children), nil
}

// ReadFile returns the contents of the named file (at most MaxFileSize bytes).
func (f *FS) ReadFile(name string) ([]byte, error) {
	n, err := f.lookup("read", name)
	if err != nil {
		return nil, err
	}
	return f.read(n, name)
}

func (f *FS) read(n *node, name string) ([]byte, error) {
	if n.mode.IsDir() {
		return nil, &fs.PathError{Op: "read", Path: name, Err: errIsDir}
	}
	e, err := f.readEntry(n.addr)
	if err == nil {
		var data []byte
		if data, err = f.readData(e, MaxFileSize); err == nil {
			return data, nil
		}
		err = fmt.Errorf("data of file entry at %s: %w", f.where(n.addr), err)
	}
	return nil, &fs.PathError{Op: "read", Path: name, Err: fmt.Errorf("udf: %w", err)}
}

func dirEntries(nodes []*node) []fs.DirEntry {
	out := make([]fs.DirEntry, len(nodes))
	for i, n := range nodes {
		out[i] = fs.FileInfoToDirEntry(fileInfo{n})
	}
	return out
}

type fileInfo struct{ n *node }

func (i fileInfo) Name() string       { return i.n.name }
func (i fileInfo) Size() int64        { return i.n.size }
func (i fileInfo) Mode() fs.FileMode  { return i.n.mode }
func (i fileInfo) ModTime() time.Time { return i.n.mtime }
func (i fileInfo) IsDir() bool        { return i.n.mode.IsDir() }
func (i fileInfo) Sys() any           { return nil }

// file is an open file; its contents are read on the first Read.
type file struct {
	fsys   *FS
	node   *node
	path   string
	data   *bytes.Reader
	closed bool
}

func (f *file) Stat() (fs.FileInfo, error) { return fileInfo{f.node}, nil }

func (f *file) Read(p []byte) (int, error) {
	if f.closed {
		return 0, &fs.PathError{Op: "read", Path: f.path, Err: fs.ErrClosed}
	}
	if f.data == nil {
		b, err := f.fsys.read(f.node, f.path)
		if err != nil {
			return 0, err
		}
		f.data = bytes.NewReader(b)
	}
	return f.data.Read(p)
}

func (f *file) Close() error {
	if f.closed {
		return &fs.PathError{Op: "close", Path: f.path, Err: fs.ErrClosed}
	}
	f.closed = true
	return nil
}

// dir is an open directory.
type dir struct {
	node   *node
	path   string
	pos    int
	closed bool
}

func (d *dir) Stat() (fs.FileInfo, error) { return fileInfo{d.node}, nil }

func (d *dir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.path, Err: errIsDir}
}

func (d *dir) ReadDir(count int) ([]fs.DirEntry, error) {
	if d.closed {
		return nil, &fs.PathError{Op: "readdir", Path: d.path, Err: fs.ErrClosed}
	}
	rest := d.node.children[d.pos:]
	if count > 0 {
		if len(rest) == 0 {
			return nil, io.EOF
		}
		rest = rest[:min(count, len(rest))]
	}
	d.pos += len(rest)
	return dirEntries(rest), nil
}

func (d *dir) Close() error {
	if d.closed {
		return &fs.PathError{Op: "close", Path: d.path, Err: fs.ErrClosed}
	}
	d.closed = true
	return nil
}
