package udf

import (
	"fmt"
	"io/fs"
	"math"
	"time"
)

// ICB file types (ECMA-167 4/14.6.6, UDF 2.3.5.2).
const (
	fileTypeDir      = 4
	fileTypeRegular  = 5
	fileTypeSymlink  = 12
	fileTypeRealTime = 249
)

// Allocation descriptor kinds: the low three bits of the ICB tag flags (ECMA-167 4/14.6.8).
const (
	adShort    = 0
	adLong     = 1
	adEmbedded = 3 // 2 is the extended allocation descriptor, which UDF forbids
)

// entry is a parsed File Entry (ECMA-167 4/14.9) or Extended File Entry (4/14.17).
type entry struct {
	addr   lbAddr
	adKind uint16
	size   int64
	mode   fs.FileMode
	mtime  time.Time
	ads    []byte // the allocation descriptors, or the data itself when embedded
}

// readEntry reads the file entry at a.
func (f *FS) readEntry(a lbAddr) (*entry, error) {
	b, id, err := f.readDescriptor(a)
	if err != nil {
		return nil, fmt.Errorf("file entry at %s: %w", f.where(a), err)
	}
	e, err := parseEntry(b, id)
	if err != nil {
		return nil, fmt.Errorf("file entry at %s: %w", f.where(a), err)
	}
	e.addr = a
	return e, nil
}

// parseEntry decodes the file entry b (one block) whose tag identifier is id.
func parseEntry(b []byte, id uint16) (*entry, error) {
	// Offsets of the fields that differ between the two layouts.
	var header, lenEA, mtime int
	switch id {
	case tagFE:
		header, lenEA, mtime = 176, 168, 84
	case tagEFE:
		header, lenEA, mtime = 216, 208, 92
	default:
		return nil, fmt.Errorf("tag %d is not a file entry", id)
	}
	if len(b) < header {
		return nil, fmt.Errorf("%d-byte block too short", len(b))
	}
	ea, ad := uint64(le.Uint32(b[lenEA:])), uint64(le.Uint32(b[lenEA+4:]))
	if uint64(header)+ea+ad > uint64(len(b)) {
		return nil, fmt.Errorf("extended attributes (%d bytes) and allocation descriptors (%d bytes) overflow the block", ea, ad)
	}
	size := le.Uint64(b[56:])
	if size > math.MaxInt64 {
		return nil, fmt.Errorf("information length %d too large", size)
	}
	e := &entry{
		adKind: le.Uint16(b[34:]) & 7,
		size:   int64(size),
		mode:   fileMode(b[27], le.Uint32(b[44:])),
		mtime:  parseTime(b[mtime:]),
		ads:    b[uint64(header)+ea : uint64(header)+ea+ad],
	}
	if e.adKind == adEmbedded && e.size > int64(len(e.ads)) {
		return nil, fmt.Errorf("information length %d exceeds the %d bytes embedded", e.size, len(e.ads))
	}
	return e, nil
}

// fileMode maps an ICB file type and UDF permissions (other, group, owner: five bits each, of
// which execute, write, read are the low three) to an fs.FileMode.
func fileMode(fileType byte, perm uint32) fs.FileMode {
	m := fs.FileMode(perm&7 | perm>>5&7<<3 | perm>>10&7<<6)
	switch fileType {
	case fileTypeDir:
		return m | fs.ModeDir
	case fileTypeRegular, fileTypeRealTime:
		return m
	case fileTypeSymlink:
		return m | fs.ModeSymlink
	}
	return m | fs.ModeIrregular
}

// extent is a run of bytes of a file: recorded at addr, or unrecorded (reads as zeros).
type extent struct {
	addr     lbAddr
	length   int64
	recorded bool
}

// extents decodes the allocation descriptors of e, following allocation extent descriptors.
func (f *FS) extents(e *entry) ([]extent, error) {
	var size int
	switch e.adKind {
	case adShort:
		size = 8
	case adLong:
		size = 16
	default:
		return nil, fmt.Errorf("allocation descriptor type %d unsupported", e.adKind)
	}
	var out []extent
	ads := e.ads
	for n := 0; len(ads) > 0; n++ {
		if n == maxADs {
			return nil, fmt.Errorf("more than %d allocation descriptors", maxADs)
		}
		if len(ads) < size {
			return nil, fmt.Errorf("%d trailing bytes after the allocation descriptors", len(ads))
		}
		raw := le.Uint32(ads)
		a := lbAddr{part: e.addr.part, lbn: le.Uint32(ads[4:])}
		if size == 16 {
			a.part = le.Uint16(ads[8:])
		}
		ads = ads[size:]
		length, kind := int64(raw&0x3FFFFFFF), raw>>30
		switch {
		case length == 0: // a zero length ends the descriptors
			ads = nil
		case kind == 3: // the descriptors continue in an allocation extent descriptor
			b, id, err := f.readDescriptor(a)
			if err == nil && id != tagAED {
				err = fmt.Errorf("tag %d, want %d", id, tagAED)
			}
			if err != nil {
				return nil, fmt.Errorf("allocation extent descriptor at %s: %w", f.where(a), err)
			}
			l := int64(le.Uint32(b[20:]))
			if l > f.bs-24 {
				return nil, fmt.Errorf("allocation extent descriptor at %s: %d bytes of descriptors overflow the block", f.where(a), l)
			}
			ads = b[24 : 24+l]
		default:
			out = append(out, extent{addr: a, length: length, recorded: kind == 0})
		}
	}
	return out, nil
}

// readData returns the first e.size bytes of e's data, refusing more than limit bytes. It checks
// that the extents cover the data and lie inside their partitions before allocating.
func (f *FS) readData(e *entry, limit int64) ([]byte, error) {
	if e.size > limit {
		return nil, fmt.Errorf("%d bytes exceed the %d-byte limit", e.size, limit)
	}
	if e.adKind == adEmbedded {
		return append([]byte(nil), e.ads[:e.size]...), nil
	}
	exts, err := f.extents(e)
	if err != nil {
		return nil, err
	}
	offs := make([]int64, len(exts))
	var covered int64
	for i, x := range exts {
		n := min(x.length, e.size-covered)
		if n <= 0 {
			exts = exts[:i]
			break
		}
		if x.recorded {
			if offs[i], err = f.blockOffset(x.addr, (n+f.bs-1)/f.bs); err != nil {
				return nil, fmt.Errorf("extent %d: %w", i, err)
			}
		}
		covered += n
	}
	if covered < e.size {
		return nil, fmt.Errorf("allocation descriptors cover %d of %d bytes", covered, e.size)
	}
	buf := make([]byte, e.size)
	var pos int64
	for i, x := range exts {
		n := min(x.length, e.size-pos)
		if x.recorded {
			if err := f.img.readAt(buf[pos:pos+n], offs[i]); err != nil {
				return nil, fmt.Errorf("extent %d: %w", i, err)
			}
		}
		pos += n
	}
	return buf, nil
}
