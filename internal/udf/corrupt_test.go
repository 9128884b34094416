package udf

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// retag recomputes the CRC (over the length the tag declares) and the checksum of the descriptor
// at the start of d, so that a test can change a field without tripping those checks.
func retag(d []byte) {
	n := int(le.Uint16(d[10:]))
	le.PutUint16(d[8:], crcCCITT(d[tagSize:tagSize+n]))
	d[4] = tagChecksum(d)
}

// corruptible is a writer image with its layout, found through the reader.
type corruptible struct {
	img  []byte
	fsys *FS
}

func newCorruptible(t *testing.T, opts WriteOptions) *corruptible {
	files := []File{
		{Name: "a.txt", Data: []byte("alpha\n")},
		{Name: "b.txt", Data: []byte("bravo\n")},
		{Name: "sub/c.txt", Data: bytes.Repeat([]byte("charlie\n"), 625)}, // 5000 bytes
	}
	img := write(t, "CORRUPT", files, opts)
	return &corruptible{img: img, fsys: open(t, img)}
}

func (c *corruptible) node(t *testing.T, name string) *node {
	n, err := c.fsys.lookup("test", name)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// entry returns the bytes of name's file entry block.
func (c *corruptible) entry(t *testing.T, name string) []byte {
	off, err := c.fsys.blockOffset(c.node(t, name).addr, 1)
	if err != nil {
		t.Fatal(err)
	}
	return c.img[off : off+sectorSize]
}

// firstExtent returns the bytes from the first data block of name on.
func (c *corruptible) firstExtent(t *testing.T, name string) []byte {
	e, err := c.fsys.readEntry(c.node(t, name).addr)
	if err != nil {
		t.Fatal(err)
	}
	x, err := c.fsys.extents(e)
	if err != nil {
		t.Fatal(err)
	}
	off, err := c.fsys.blockOffset(x[0].addr, 1)
	if err != nil {
		t.Fatal(err)
	}
	return c.img[off:]
}

// fid returns the bytes of the file identifier descriptor for child in directory dir.
func (c *corruptible) fid(t *testing.T, dir, child string) []byte {
	data := c.firstExtent(t, dir)
	for off := 0; off < sectorSize; {
		size := (38 + int(le.Uint16(data[off+36:])) + int(data[off+19]) + 3) &^ 3
		if name, _ := decodeDChars(data[off+38 : off+size][:data[off+19]]); name == child {
			return data[off : off+size]
		}
		off += size
	}
	t.Fatalf("no FID for %q in %q", child, dir)
	return nil
}

func (c *corruptible) sector(s int) []byte { return c.img[s*sectorSize : (s+1)*sectorSize] }

func (c *corruptible) lastSector() int { return len(c.img)/sectorSize - 1 }

func TestCorruptImages(t *testing.T) {
	aed := WriteOptions{maxExtent: sectorSize, maxInlineADs: 2}
	tests := []struct {
		name    string
		opts    WriteOptions
		mutate  func(t *testing.T, c *corruptible)
		openErr []string // all must appear; none: Open succeeds
		notUDF  bool
		read    string // then ReadFile(read) must fail with readErr
		readErr string
	}{
		{
			name:   "primary anchor checksum, backup used",
			mutate: func(t *testing.T, c *corruptible) { c.sector(anchorSector)[4] ^= 0xFF },
		},
		{
			name: "both anchors bad",
			mutate: func(t *testing.T, c *corruptible) {
				c.sector(anchorSector)[100] ^= 1
				c.sector(c.lastSector())[4] ^= 0xFF
			},
			openErr: []string{"no valid anchor", "sector 256 of 2048 bytes: tag 2: descriptor CRC", "tag checksum"},
			notUDF:  true,
		},
		{
			name:   "main logical volume descriptor CRC, reserve used",
			mutate: func(t *testing.T, c *corruptible) { c.sector(vdsMain + 3)[300] ^= 1 },
		},
		{
			name: "both logical volume descriptors bad",
			mutate: func(t *testing.T, c *corruptible) {
				c.sector(vdsMain + 3)[300] ^= 1
				c.sector(vdsReserve + 3)[300] ^= 1
			},
			openErr: []string{"main volume descriptor sequence: volume descriptor at sector 35: tag 6: descriptor CRC", "reserve sequence: volume descriptor at sector 51"},
		},
		{
			name: "volume descriptor pointer loop",
			mutate: func(t *testing.T, c *corruptible) {
				for _, s := range []int{vdsMain, vdsReserve} {
					d := c.sector(s + 5)[:descriptorSize]
					le.PutUint32(d[20:], vdsSectors*sectorSize)
					le.PutUint32(d[24:], uint32(s))
					putTag(d, tagVDP, 2, uint32(s+5))
				}
			},
			openErr: []string{"more than 256 volume descriptors"},
		},
		{
			name: "no volume descriptors",
			mutate: func(t *testing.T, c *corruptible) {
				clear(c.img[vdsMain*sectorSize : lvidSector*sectorSize])
			},
			openErr: []string{"no logical volume descriptor in the sequence at sector 32"},
		},
		{
			name: "partition map type",
			mutate: func(t *testing.T, c *corruptible) {
				for _, s := range []int{vdsMain, vdsReserve} {
					d := c.sector(s + 3)
					d[440] = 2
					retag(d)
				}
			},
			openErr: []string{"partition map 0: partition map type 2 (6 bytes) unsupported"},
		},
		{
			name: "partition map names a missing partition",
			mutate: func(t *testing.T, c *corruptible) {
				for _, s := range []int{vdsMain, vdsReserve} {
					d := c.sector(s + 3)
					le.PutUint16(d[444:], 7)
					retag(d)
				}
			},
			openErr: []string{"names partition 7, which has no partition descriptor"},
		},
		{
			name: "logical block size",
			mutate: func(t *testing.T, c *corruptible) {
				for _, s := range []int{vdsMain, vdsReserve} {
					d := c.sector(s + 3)
					le.PutUint32(d[212:], 4096)
					retag(d)
				}
			},
			openErr: []string{"logical block size 4096 differs from the 2048-byte sectors"},
		},
		{
			name:    "no recognition sequence",
			mutate:  func(t *testing.T, c *corruptible) { clear(c.img[16*sectorSize : 19*sectorSize]) },
			openErr: []string{"no volume recognition sequence"},
			notUDF:  true,
		},
		{
			name: "file set descriptor tag",
			mutate: func(t *testing.T, c *corruptible) {
				d := c.sector(partStart)
				le.PutUint16(d, tagFID)
				retag(d)
			},
			openErr: []string{"file set descriptor at partition 0 block 0 (sector 257): tag 257, want 256"},
		},
		{
			name: "root is not a directory",
			mutate: func(t *testing.T, c *corruptible) {
				d := c.entry(t, ".")
				d[27] = fileTypeRegular
				retag(d)
			},
			openErr: []string{"root directory: file entry at partition 0 block 2 (sector 259) is not a directory"},
		},
		{
			name:    "file entry CRC",
			mutate:  func(t *testing.T, c *corruptible) { c.entry(t, "a.txt")[40] ^= 1 },
			openErr: []string{`"a.txt": file entry at partition 0 block 4 (sector 261): tag 261: descriptor CRC`},
		},
		{
			name: "file entry location",
			mutate: func(t *testing.T, c *corruptible) {
				d := c.entry(t, "a.txt")
				le.PutUint32(d[12:], 99)
				retag(d)
			},
			openErr: []string{`"a.txt": file entry at partition 0 block 4 (sector 261): tag 261 records location 99`},
		},
		{
			name: "file entry descriptors overflow the block",
			mutate: func(t *testing.T, c *corruptible) {
				d := c.entry(t, "a.txt")
				le.PutUint32(d[172:], 5000)
				retag(d)
			},
			openErr: []string{"allocation descriptors (5000 bytes) overflow the block"},
		},
		{
			name: "embedded data shorter than the file",
			opts: WriteOptions{Alloc: EmbeddedAlloc},
			mutate: func(t *testing.T, c *corruptible) {
				d := c.entry(t, "a.txt")
				le.PutUint64(d[56:], 5000)
				retag(d)
			},
			openErr: []string{"information length 5000 exceeds the 6 bytes embedded"},
		},
		{
			name: "truncated in the partition",
			mutate: func(t *testing.T, c *corruptible) {
				off, _ := c.fsys.blockOffset(c.node(t, "sub/c.txt").addr, 1)
				c.img = c.img[:off]
			},
			openErr: []string{`"sub/c.txt": file entry at partition 0 block 10 (sector 267): 2048 bytes at byte 546816 lie beyond the end of the 546816-byte image`},
		},
		{
			name:    "truncated before the anchor",
			mutate:  func(t *testing.T, c *corruptible) { c.img = c.img[:100*sectorSize] },
			openErr: []string{"no valid anchor"},
			notUDF:  true,
		},
		{
			name: "directory loop",
			mutate: func(t *testing.T, c *corruptible) {
				d := c.fid(t, "sub", "c.txt")
				le.PutUint32(d[24:], c.node(t, ".").addr.lbn)
				retag(d)
			},
			openErr: []string{`"sub/c.txt": directory at partition 0 block 2 (sector 259) is linked twice`},
		},
		{
			name: "directory linked into itself",
			mutate: func(t *testing.T, c *corruptible) {
				d := c.fid(t, "sub", "c.txt")
				le.PutUint32(d[24:], c.node(t, "sub").addr.lbn)
				retag(d)
			},
			openErr: []string{"is linked twice"},
		},
		{
			name: "duplicate name",
			mutate: func(t *testing.T, c *corruptible) {
				d := c.fid(t, ".", "b.txt")
				d[39] = 'a'
				retag(d)
			},
			openErr: []string{`directory ".": name "a.txt" appears twice`},
		},
		{
			name: "name compression",
			mutate: func(t *testing.T, c *corruptible) {
				d := c.fid(t, ".", "a.txt")
				d[38] = 9
				retag(d)
			},
			openErr: []string{"file identifier descriptor at byte 40: unsupported character compression ID 9"},
		},
		{
			name: "slash in a name",
			mutate: func(t *testing.T, c *corruptible) {
				d := c.fid(t, ".", "a.txt")
				d[39] = '/'
				retag(d)
			},
			openErr: []string{`invalid name "/.txt"`},
		},
		{
			name:    "file identifier CRC",
			mutate:  func(t *testing.T, c *corruptible) { c.fid(t, ".", "a.txt")[39] = 'z' },
			openErr: []string{`directory "." at partition 0 block 2 (sector 259): file identifier descriptor at byte 40: tag 257: descriptor CRC`},
		},
		{
			name: "directory shorter than its descriptors",
			mutate: func(t *testing.T, c *corruptible) {
				d := c.entry(t, ".")
				le.PutUint64(d[56:], le.Uint64(d[56:])-4)
				retag(d)
			},
			openErr: []string{"bytes overflow the directory"},
		},
		{
			name: "file of 4 GiB",
			mutate: func(t *testing.T, c *corruptible) {
				d := c.entry(t, "sub/c.txt")
				le.PutUint64(d[56:], 4<<30)
				retag(d)
			},
			read:    "sub/c.txt",
			readErr: "4294967296 bytes exceed the 67108864-byte limit",
		},
		{
			name: "extent outside the partition",
			mutate: func(t *testing.T, c *corruptible) {
				d := c.entry(t, "sub/c.txt")
				le.PutUint32(d[180:], 1<<30)
				retag(d)
			},
			read:    "sub/c.txt",
			readErr: "extent 0: blocks 1073741824 to 1073741826 lie outside partition 0",
		},
		{
			name: "extents shorter than the file",
			mutate: func(t *testing.T, c *corruptible) {
				d := c.entry(t, "sub/c.txt")
				le.PutUint32(d[176:], 100)
				retag(d)
			},
			read:    "sub/c.txt",
			readErr: "allocation descriptors cover 100 of 5000 bytes",
		},
		{
			name: "allocation extent descriptor loop",
			opts: aed,
			mutate: func(t *testing.T, c *corruptible) {
				fe := c.entry(t, "sub/c.txt")
				lbn := le.Uint32(fe[176+12:]) // the continuation after one data descriptor
				off, _ := c.fsys.blockOffset(lbAddr{lbn: lbn}, 1)
				d := c.img[off : off+sectorSize]
				le.PutUint32(d[24+8:], 3<<30|sectorSize)
				le.PutUint32(d[24+12:], lbn)
				retag(d)
			},
			read:    "sub/c.txt",
			readErr: "more than 4096 allocation descriptors",
		},
		{
			name: "allocation extent descriptor tag",
			opts: aed,
			mutate: func(t *testing.T, c *corruptible) {
				d := c.entry(t, "sub/c.txt")
				le.PutUint32(d[176+12:], le.Uint32(d[176+4:])) // point at the first data block
				retag(d)
			},
			read:    "sub/c.txt",
			readErr: "allocation extent descriptor at partition 0 block 12 (sector 269): tag checksum",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCorruptible(t, tt.opts)
			tt.mutate(t, c)
			fsys, err := Open(bytes.NewReader(c.img), int64(len(c.img)))
			if len(tt.openErr) > 0 {
				if err == nil {
					t.Fatal("Open succeeded")
				}
				for _, want := range tt.openErr {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("Open error %q lacks %q", err, want)
					}
				}
				if errors.Is(err, ErrNotUDF) != tt.notUDF {
					t.Errorf("errors.Is(%q, ErrNotUDF) = %v", err, !tt.notUDF)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if tt.read == "" {
				want := tree(t, newCorruptible(t, tt.opts).fsys)
				if diff := cmp.Diff(want, tree(t, fsys)); diff != "" {
					t.Errorf("tree (-want +got):\n%s", diff)
				}
				return
			}
			_, err = fsys.ReadFile(tt.read)
			if err == nil || !strings.Contains(err.Error(), tt.readErr) {
				t.Errorf("ReadFile(%q): %v, want an error containing %q", tt.read, err, tt.readErr)
			}
		})
	}
}
