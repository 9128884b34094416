// Package udf reads and writes the subset of UDF (ECMA-167 with the OSTA UDF profile, revisions 1.02
// to 2.01) that provisioning media use, in user space: no mount, no kernel udf module.
//
// The reader takes any io.ReaderAt (an image file, /dev/sr0) and presents the volume as an fs.FS. It
// supports one or more type-1 partitions, File Entries and Extended File Entries, short, long and
// embedded allocation descriptors with allocation extent chains, and checks every descriptor's tag
// checksum and CRC. It never trusts a size or an offset from the image: every read is bounds-checked
// and every loop and allocation is capped, so a hostile image yields an error, not a panic or a hang.
//
// The writer builds small read-only volumes (see Write).
package udf

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// ErrNotUDF means the image has no UDF volume recognition sequence or no anchor volume descriptor
// pointer; the caller may try another format (ISO9660).
var ErrNotUDF = errors.New("not a UDF volume")

// MaxFileSize bounds the size of a file the reader returns; larger files fail to read.
const MaxFileSize = 64 << 20

// Bounds on the work an image can ask of the reader.
const (
	maxVRS      = 64       // volume structure descriptors examined
	maxVDS      = 256      // sectors walked in a volume descriptor sequence, across pointers
	maxPartMaps = 64       // partition maps in the logical volume descriptor
	maxADs      = 4096     // allocation descriptors per file, continuations included
	maxDirSize  = 4 << 20  // bytes in one directory
	maxDirBytes = 64 << 20 // bytes in all directories
	maxEntries  = 1 << 16  // files and directories in the volume
)

// Where things are (ECMA-167 3/8.4.2, 2/8.3) and what they look like.
const (
	vrsStart       = 32768 // byte offset of the volume recognition sequence
	anchorSector   = 256
	partMapType1   = 1
	partMapType2   = 2
	descriptorSize = 512 // the volume descriptors all fit in 512 bytes
)

// image is the raw volume: every read is checked against its size.
type image struct {
	r    io.ReaderAt
	size int64
}

func (m image) readAt(b []byte, off int64) error {
	if off < 0 || off > m.size || int64(len(b)) > m.size-off {
		return fmt.Errorf("%d bytes at byte %d lie beyond the end of the %d-byte image", len(b), off, m.size)
	}
	n, err := m.r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("reading %d bytes at byte %d: %w", len(b), off, err)
}

// Open reads the UDF volume in r (size bytes): the volume structures and the whole directory tree.
// File contents are read on demand. The FS is safe for concurrent use when r is.
func Open(r io.ReaderAt, size int64) (*FS, error) {
	m := image{r: r, size: size}
	bs, avdp, err := m.anchor()
	if err != nil {
		return nil, fmt.Errorf("udf: %w", err)
	}
	f := &FS{img: m, bs: bs}
	mainErr := f.loadVolume(le.Uint32(avdp[20:]), le.Uint32(avdp[16:]))
	if mainErr != nil {
		if err := f.loadVolume(le.Uint32(avdp[28:]), le.Uint32(avdp[24:])); err != nil {
			return nil, fmt.Errorf("udf: main volume descriptor sequence: %w; reserve sequence: %w", mainErr, err)
		}
	}
	if err := f.loadTree(); err != nil {
		return nil, fmt.Errorf("udf: %w", err)
	}
	return f, nil
}

// recognize reports whether a UDF volume recognition sequence (BEA01, then NSR02 or NSR03) starts at
// byte 32768 with a volume structure descriptor every step bytes (ECMA-167 2/8.3).
func (m image) recognize(step int64) (bool, error) {
	var b [7]byte
	extended := false
	for i := range int64(maxVRS) {
		off := vrsStart + i*step
		if off+int64(len(b)) > m.size {
			return false, nil
		}
		if err := m.readAt(b[:], off); err != nil {
			return false, fmt.Errorf("volume recognition sequence: %w", err)
		}
		switch string(b[1:6]) {
		case "BEA01":
			extended = true
		case "TEA01":
			extended = false
		case "NSR02", "NSR03":
			if extended {
				return true, nil
			}
		case "CD001", "CDW02", "BOOT2":
		default:
			return false, nil
		}
	}
	return false, nil
}

// anchor finds the sector size and the first valid anchor volume descriptor pointer, at sector 256,
// N-256 or N-1, for sector sizes 2048, 512 and 4096.
func (m image) anchor() (int64, []byte, error) {
	var recognized bool
	var problems []string
	for _, bs := range []int64{2048, 512, 4096} {
		ok, err := m.recognize(max(bs, 2048))
		if err != nil {
			return 0, nil, err
		}
		if !ok {
			continue
		}
		recognized = true
		n := m.size / bs
		for i, s := range []int64{anchorSector, n - 256, n - 1} {
			if i > 0 && s <= anchorSector {
				continue
			}
			b := make([]byte, descriptorSize)
			err := m.readAt(b, s*bs)
			if err == nil {
				var t tag
				if t, err = parseTag(b); err == nil {
					err = t.expect(tagAVDP, uint32(s))
				}
			}
			if err == nil {
				return bs, b, nil
			}
			problems = append(problems, fmt.Sprintf("sector %d of %d bytes: %v", s, bs, err))
		}
	}
	if !recognized {
		return 0, nil, fmt.Errorf("%w: no volume recognition sequence (BEA01, NSR02/NSR03) at byte %d", ErrNotUDF, vrsStart)
	}
	return 0, nil, fmt.Errorf("%w: no valid anchor volume descriptor pointer (%s)", ErrNotUDF, strings.Join(problems, "; "))
}

// loadVolume reads the volume descriptor sequence in the extent at sector loc (length bytes): the
// prevailing logical volume descriptor, its partitions and its file set descriptor.
func (f *FS) loadVolume(loc, length uint32) error {
	var lvd []byte
	var lvdSeq uint32
	type pd struct{ seq, start, length uint32 }
	pds := map[uint16]pd{}
	sector, left := int64(loc), int64(length)/f.bs
	b := make([]byte, f.bs)
	for walked := 0; left > 0; walked++ {
		if walked == maxVDS {
			return fmt.Errorf("more than %d volume descriptors", maxVDS)
		}
		if err := f.img.readAt(b, sector*f.bs); err != nil {
			return fmt.Errorf("volume descriptor at sector %d: %w", sector, err)
		}
		if isZero(b[:tagSize]) { // an unrecorded sector ends the sequence
			break
		}
		t, err := parseTag(b)
		if err == nil && t.location != uint32(sector) {
			err = fmt.Errorf("tag %d records location %d", t.id, t.location)
		}
		if err != nil {
			return fmt.Errorf("volume descriptor at sector %d: %w", sector, err)
		}
		switch t.id {
		case tagTD:
			left = 0
			continue
		case tagVDP: // the sequence continues in another extent
			sector, left = int64(le.Uint32(b[24:])), int64(le.Uint32(b[20:]))/f.bs
			continue
		case tagPD:
			num, seq := le.Uint16(b[22:]), le.Uint32(b[16:])
			if old, ok := pds[num]; !ok || seq >= old.seq {
				pds[num] = pd{seq: seq, start: le.Uint32(b[188:]), length: le.Uint32(b[192:])}
			}
		case tagLVD:
			if seq := le.Uint32(b[16:]); lvd == nil || seq >= lvdSeq {
				lvd, lvdSeq = slices.Clone(b), seq
			}
		}
		sector++
		left--
	}
	if lvd == nil {
		return fmt.Errorf("no logical volume descriptor in the sequence at sector %d", loc)
	}
	where := fmt.Sprintf("logical volume descriptor at sector %d", le.Uint32(lvd[12:]))
	if bs := le.Uint32(lvd[212:]); int64(bs) != f.bs {
		return fmt.Errorf("%s: logical block size %d differs from the %d-byte sectors", where, bs, f.bs)
	}
	label, err := decodeDString(lvd[84:212])
	if err != nil {
		return fmt.Errorf("%s: logical volume identifier: %w", where, err)
	}
	mapLen, nMaps := le.Uint32(lvd[264:]), le.Uint32(lvd[268:])
	if int64(mapLen) > f.bs-440 {
		return fmt.Errorf("%s: partition map table length %d exceeds the block", where, mapLen)
	}
	if nMaps == 0 || nMaps > maxPartMaps {
		return fmt.Errorf("%s: %d partition maps", where, nMaps)
	}
	maps := lvd[440 : 440+mapLen]
	parts := make([]partition, 0, nMaps)
	for i := range nMaps {
		if len(maps) < 2 || maps[1] < 2 || int(maps[1]) > len(maps) {
			return fmt.Errorf("%s: partition map %d truncated", where, i)
		}
		typ, m := maps[0], maps[:maps[1]]
		maps = maps[len(m):]
		switch {
		case typ == partMapType1 && len(m) == 6:
		case typ == partMapType2 && len(m) >= 36:
			ident := strings.TrimRight(string(m[5:28]), "\x00")
			return fmt.Errorf("%s: partition map %d: partition map type 2 (%q) unsupported", where, i, ident)
		default:
			return fmt.Errorf("%s: partition map %d: partition map type %d (%d bytes) unsupported", where, i, typ, len(m))
		}
		num := le.Uint16(m[4:])
		p, ok := pds[num]
		if !ok {
			return fmt.Errorf("%s: partition map %d names partition %d, which has no partition descriptor", where, i, num)
		}
		parts = append(parts, partition{number: num, start: p.start, length: p.length})
	}
	f.label, f.parts = label, parts
	f.fsd = parseLongAD(lvd[248:])
	return nil
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// partition is a type-1 partition: logical block n is sector start+n.
type partition struct {
	number        uint16
	start, length uint32
}

// lbAddr is a logical block address: a block within the partition of reference number part.
type lbAddr struct {
	part uint16
	lbn  uint32
}

// parseLongAD decodes the location of a long allocation descriptor (ECMA-167 4/14.14.2).
func parseLongAD(b []byte) lbAddr {
	return lbAddr{lbn: le.Uint32(b[4:]), part: le.Uint16(b[8:])}
}

// blockOffset returns the byte offset of block a after checking that it and the n-1 blocks after it
// lie inside their partition.
func (f *FS) blockOffset(a lbAddr, n int64) (int64, error) {
	if int(a.part) >= len(f.parts) {
		return 0, fmt.Errorf("partition reference %d out of range (the volume has %d)", a.part, len(f.parts))
	}
	p := f.parts[a.part]
	if int64(a.lbn)+n > int64(p.length) {
		return 0, fmt.Errorf("blocks %d to %d lie outside partition %d (%d blocks)", a.lbn, int64(a.lbn)+n-1, p.number, p.length)
	}
	return (int64(p.start) + int64(a.lbn)) * f.bs, nil
}

// where names block a for error messages.
func (f *FS) where(a lbAddr) string {
	if int(a.part) < len(f.parts) {
		return fmt.Sprintf("partition %d block %d (sector %d)", a.part, a.lbn, int64(f.parts[a.part].start)+int64(a.lbn))
	}
	return fmt.Sprintf("partition %d block %d", a.part, a.lbn)
}

// readDescriptor reads block a and checks the descriptor tag there, which must record location a.
func (f *FS) readDescriptor(a lbAddr) ([]byte, uint16, error) {
	off, err := f.blockOffset(a, 1)
	if err != nil {
		return nil, 0, err
	}
	b := make([]byte, f.bs)
	if err := f.img.readAt(b, off); err != nil {
		return nil, 0, err
	}
	t, err := parseTag(b)
	if err != nil {
		return nil, 0, err
	}
	if t.location != a.lbn {
		return nil, 0, fmt.Errorf("tag %d records location %d", t.id, t.location)
	}
	return b, t.id, nil
}
