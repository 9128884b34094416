package udf

import (
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"slices"
	"strings"
	"time"
)

// File is a file to write. Name is a slash-separated path below the root, such as "ovf-env.xml"
// or "dir/x"; the directories on the way are created.
type File struct {
	Name string
	Data []byte
}

// AllocKind selects how file entries locate their data.
type AllocKind int

const (
	// ShortAlloc describes data extents with short allocation descriptors.
	ShortAlloc AllocKind = iota
	// LongAlloc describes data extents with long allocation descriptors, which name the partition.
	LongAlloc
	// EmbeddedAlloc stores the data inside the file entry (in-ICB) when it fits, else uses ShortAlloc.
	EmbeddedAlloc
)

// WriteOptions tune Write. The zero value writes UDF 1.02 with File Entries and short allocation
// descriptors.
type WriteOptions struct {
	// ExtendedEntries writes Extended File Entries, and so UDF 2.01 instead of 1.02.
	ExtendedEntries bool
	Alloc           AllocKind
	// Time stamps the volume and every file; the zero value stands for the Unix epoch, which keeps
	// the output reproducible.
	Time time.Time

	// Test hooks, so that small files exercise the multi-extent paths: split data into extents of
	// at most maxExtent bytes (a multiple of the sector size) and keep at most maxInlineADs (≥ 2)
	// allocation descriptors in a file entry or allocation extent descriptor.
	maxExtent    int64
	maxInlineADs int
}

// The layout Write uses, in 2048-byte sectors: the volume recognition sequence at 16, the main and
// reserve volume descriptor sequences at 32 and 48, the integrity sequence at 64, anchors at 256
// and at the last sector, the partition in between.
const (
	sectorSize   = 2048
	vdsMain      = 32
	vdsReserve   = 48
	vdsSectors   = 16
	lvidSector   = 64
	partStart    = anchorSector + 1
	implID       = "*azinit"
	osClassUnix  = 4
	osIDLinux    = 5
	firstUnique  = 16 // unique IDs 1 to 15 are reserved (UDF 3.2.1.1)
	fileSetLevel = 3
)

// implSuffix is the implementation identifier suffix: OS class and identifier (UDF 2.1.5.3).
var implSuffix = []byte{osClassUnix, osIDLinux}

// Write writes a read-only UDF volume labelled label holding files: 2048-byte sectors, UDF 1.02
// (2.01 with ExtendedEntries), one type-1 partition, a logical volume integrity descriptor, main
// and reserve volume descriptor sequences and two anchors. It builds the image in memory, which
// suits provisioning media (kilobytes to megabytes).
func Write(w io.Writer, label string, files []File, opts WriteOptions) error {
	if err := putDString(make([]byte, 128), label); err != nil {
		return fmt.Errorf("udf: label: %w", err)
	}
	root, err := buildTree(files)
	if err != nil {
		return fmt.Errorf("udf: %w", err)
	}
	wr := newWriter(opts)
	img := wr.layout(root)
	wr.img = img
	wr.putVolume(label, root)
	for _, n := range wr.order {
		wr.putEntry(n)
	}
	if _, err := w.Write(img); err != nil {
		return fmt.Errorf("udf: writing the image: %w", err)
	}
	return nil
}

// wnode is a file or directory to write.
type wnode struct {
	name     string
	ident    []byte // the name as d-characters
	dir      bool
	data     []byte // file contents, or the directory's file identifier descriptors
	parent   *wnode
	children []*wnode
	uniqueID uint64
	entry    uint32   // block of the file entry
	aeds     []uint32 // blocks of allocation extent descriptors
	at       uint32   // first data block
	embedded bool
}

func buildTree(files []File) (*wnode, error) {
	root := &wnode{dir: true}
	for _, f := range files {
		if !fs.ValidPath(f.Name) || f.Name == "." || strings.ContainsRune(f.Name, 0) {
			return nil, fmt.Errorf("invalid file name %q", f.Name)
		}
		elems := strings.Split(f.Name, "/")
		d := root
		for i, elem := range elems {
			last := i == len(elems)-1
			var c *wnode
			if j := slices.IndexFunc(d.children, func(c *wnode) bool { return c.name == elem }); j >= 0 {
				c = d.children[j]
			}
			switch {
			case c == nil:
				ident := encodeDChars(elem)
				if len(ident) > 255 {
					return nil, fmt.Errorf("file name %q: %q is too long", f.Name, elem)
				}
				c = &wnode{name: elem, ident: ident, dir: !last, parent: d}
				if last {
					c.data = f.Data
				}
				d.children = append(d.children, c)
			case last || !c.dir:
				return nil, fmt.Errorf("file name %q conflicts with another file", f.Name)
			}
			d = c
		}
	}
	return root, nil
}

type writer struct {
	opts      WriteOptions
	rev       uint16 // UDF revision
	version   uint16 // descriptor tag version
	entryTag  uint16 // file entry or extended file entry
	header    int    // size of a file entry before its allocation descriptors
	adSize    int
	maxExtent int64
	maxADs    int
	when      time.Time
	order     []*wnode // every node, root first, depth first, by name
	partLen   uint32
	nextID    uint64
	img       []byte
}

func newWriter(opts WriteOptions) *writer {
	w := &writer{opts: opts, rev: 0x0102, version: 2, entryTag: tagFE, header: 176, adSize: 8,
		maxExtent: opts.maxExtent, maxADs: opts.maxInlineADs, when: opts.Time}
	if opts.ExtendedEntries {
		w.rev, w.version, w.entryTag, w.header = 0x0201, 3, tagEFE, 216
	}
	if opts.Alloc == LongAlloc {
		w.adSize = 16
	}
	if w.maxExtent == 0 {
		w.maxExtent = 1<<30 - sectorSize
	}
	if w.maxADs == 0 {
		w.maxADs = sectorSize
	}
	if w.when.IsZero() {
		w.when = time.Unix(0, 0).UTC()
	}
	return w
}

// layout orders the nodes, assigns unique IDs and blocks, builds the directories, and returns a
// zeroed image of the final size. Partition blocks 0 and 1 hold the file set descriptor and its
// terminator; each node then gets its file entry, allocation extent descriptors and data.
func (w *writer) layout(root *wnode) []byte {
	var visit func(n *wnode)
	visit = func(n *wnode) {
		slices.SortFunc(n.children, func(a, b *wnode) int { return strings.Compare(a.name, b.name) })
		w.order = append(w.order, n)
		for _, c := range n.children {
			visit(c)
		}
	}
	visit(root)
	next := uint32(2)
	w.nextID = firstUnique
	for _, n := range w.order {
		if n != root {
			n.uniqueID = w.nextID
			w.nextID++
		}
		size := len(n.data)
		if n.dir {
			size = fidsSize(n)
		}
		n.entry = next
		next++
		if w.opts.Alloc == EmbeddedAlloc && size <= sectorSize-w.header {
			n.embedded = true
			continue
		}
		counts := w.splitADs(w.extentCount(size))
		for range counts[1:] {
			n.aeds = append(n.aeds, next)
			next++
		}
		n.at = next
		next += uint32(blocks(int64(size)))
	}
	for _, n := range w.order {
		if n.dir {
			n.data = w.fids(n)
		}
	}
	w.partLen = next
	return make([]byte, (partStart+int64(next)+1)*sectorSize)
}

func blocks(n int64) int64 { return (n + sectorSize - 1) / sectorSize }

func (w *writer) extentCount(size int) int {
	return int((int64(size) + w.maxExtent - 1) / w.maxExtent)
}

// splitADs spreads n allocation descriptors over the file entry and as many allocation extent
// descriptors as needed, each full one keeping its last slot for the continuation; it returns the
// number of data descriptors in each.
func (w *writer) splitADs(n int) []int {
	room := min((sectorSize-w.header)/w.adSize, w.maxADs)
	var counts []int
	for n > room {
		counts = append(counts, room-1)
		n -= room - 1
		room = min((sectorSize-24)/w.adSize, w.maxADs)
	}
	return append(counts, n)
}

func fidSize(ident []byte) int { return (38 + len(ident) + 3) &^ 3 }

func fidsSize(n *wnode) int {
	size := fidSize(nil)
	for _, c := range n.children {
		size += fidSize(c.ident)
	}
	return size
}

// fids builds the file identifier descriptors of directory n: its parent, then its children.
func (w *writer) fids(n *wnode) []byte {
	buf := make([]byte, fidsSize(n))
	base := n.at
	if n.embedded {
		base = n.entry
	}
	off := 0
	add := func(chars byte, ident []byte, target *wnode) {
		d := buf[off : off+fidSize(ident)]
		le.PutUint16(d[16:], 1) // file version number
		d[18], d[19] = chars, byte(len(ident))
		w.putLongAD(d[20:], sectorSize, target.entry)
		if w.rev >= 0x0200 { // UDF unique ID in the implementation use (UDF 2.3.4.3)
			le.PutUint32(d[32:], uint32(target.uniqueID))
		}
		copy(d[38:], ident)
		putTag(d, tagFID, w.version, base+uint32(off/sectorSize))
		off += len(d)
	}
	parent := n.parent
	if parent == nil {
		parent = n
	}
	add(fidDirectory|fidParent, nil, parent)
	for _, c := range n.children {
		var chars byte
		if c.dir {
			chars = fidDirectory
		}
		add(chars, c.ident, c)
	}
	return buf
}

func (w *writer) sector(s int64) []byte { return w.img[s*sectorSize : (s+1)*sectorSize] }

func (w *writer) block(lbn uint32) []byte { return w.sector(partStart + int64(lbn)) }

func (w *writer) putLongAD(b []byte, length, lbn uint32) {
	le.PutUint32(b, length)
	le.PutUint32(b[4:], lbn) // partition reference 0
}

// putAD writes an allocation descriptor of the configured size; kind 3 points to the next
// allocation extent descriptor.
func (w *writer) putAD(b []byte, length int64, kind, lbn uint32) {
	le.PutUint32(b, kind<<30|uint32(length))
	le.PutUint32(b[4:], lbn)
}

func (w *writer) domainID(b []byte) {
	// Suffix: UDF revision, domain flags hard and soft write-protect (UDF 2.1.5.3).
	putRegID(b, "*OSTA UDF Compliant", byte(w.rev), byte(w.rev>>8), 3)
}

func (w *writer) udfID(b []byte, ident string) {
	putRegID(b, ident, byte(w.rev), byte(w.rev>>8), osClassUnix, osIDLinux)
}

// putEntry writes n's file entry, allocation extent descriptors and data.
func (w *writer) putEntry(n *wnode) {
	b := w.block(n.entry)
	fileType, perm, links := byte(fileTypeRegular), fs.FileMode(0o444), uint16(1)
	if n.dir {
		fileType, perm = fileTypeDir, 0o555
		for _, c := range n.children {
			if c.dir {
				links++
			}
		}
	}
	// ICB tag (ECMA-167 4/14.6): strategy 4, one entry.
	le.PutUint16(b[20:], 4)
	le.PutUint16(b[24:], 1)
	b[27] = fileType
	p := uint32(perm)
	le.PutUint32(b[44:], p&7|p>>3&7<<5|p>>6&7<<10)
	le.PutUint16(b[48:], links)
	size := int64(len(n.data))
	le.PutUint64(b[56:], uint64(size))
	var recorded int64
	if !n.embedded {
		recorded = blocks(size)
	}
	lenEA := 168
	if w.opts.ExtendedEntries {
		le.PutUint64(b[64:], uint64(size)) // object size
		le.PutUint64(b[72:], uint64(recorded))
		for _, off := range []int{80, 92, 104, 116} { // access, modification, creation, attribute
			putTime(b[off:], w.when)
		}
		le.PutUint32(b[128:], 1) // checkpoint
		putRegID(b[168:], implID, implSuffix...)
		le.PutUint64(b[200:], n.uniqueID)
		lenEA = 208
	} else {
		le.PutUint64(b[64:], uint64(recorded))
		for _, off := range []int{72, 84, 96} { // access, modification, attribute
			putTime(b[off:], w.when)
		}
		le.PutUint32(b[108:], 1) // checkpoint
		putRegID(b[128:], implID, implSuffix...)
		le.PutUint64(b[160:], n.uniqueID)
	}
	if n.embedded {
		le.PutUint16(b[34:], adEmbedded)
		copy(b[w.header:], n.data)
		le.PutUint32(b[lenEA+4:], uint32(size))
		putTag(b[:w.header+int(size)], w.entryTag, w.version, n.entry)
		return
	}
	kind := uint16(adShort)
	if w.adSize == 16 {
		kind = adLong
	}
	le.PutUint16(b[34:], kind)
	copy(w.img[(partStart+int64(n.at))*sectorSize:], n.data)
	// The data extents, spread over the entry and its allocation extent descriptors.
	var exts [][2]int64 // length, first block
	for off := int64(0); off < size; off += w.maxExtent {
		exts = append(exts, [2]int64{min(w.maxExtent, size-off), int64(n.at) + off/sectorSize})
	}
	desc, ads, loc, id := b, b[w.header:], n.entry, w.entryTag
	for i, count := range w.splitADs(len(exts)) {
		for j, x := range exts[:count] {
			w.putAD(ads[j*w.adSize:], x[0], 0, uint32(x[1]))
		}
		exts = exts[count:]
		used := count * w.adSize
		if i < len(n.aeds) {
			w.putAD(ads[used:], sectorSize, 3, n.aeds[i])
			used += w.adSize
		}
		if id == tagAED {
			le.PutUint32(desc[20:], uint32(used))
		} else {
			le.PutUint32(desc[lenEA+4:], uint32(used))
		}
		end := len(desc) - len(ads) + used
		if id == tagAED && w.rev < 0x0201 {
			end = 24 // before UDF 2.01 the CRC of an allocation extent descriptor skips the descriptors
		}
		putTag(desc[:end], id, w.version, loc)
		if i < len(n.aeds) {
			loc = n.aeds[i]
			desc = w.block(loc)
			le.PutUint32(desc[16:], 0) // previous allocation extent location
			ads, id = desc[24:], tagAED
		}
	}
}

// putVolume writes everything but the file entries: the recognition sequence, both volume
// descriptor sequences, the integrity sequence, both anchors and the file set descriptor.
func (w *writer) putVolume(label string, root *wnode) {
	nsr := "NSR02"
	if w.rev >= 0x0200 {
		nsr = "NSR03"
	}
	for i, id := range []string{"BEA01", nsr, "TEA01"} {
		s := w.sector(int64(vrsStart/sectorSize + i))
		copy(s[1:], id)
		s[6] = 1
	}
	h := fnv.New64a()
	h.Write([]byte(label))
	for _, n := range w.order {
		h.Write([]byte(n.name))
		h.Write(n.data)
	}
	volSet := fmt.Sprintf("%016X", h.Sum64())
	w.putVDS(vdsMain, label, volSet)
	w.putVDS(vdsReserve, label, volSet)
	w.putLVID()
	last := int64(len(w.img)/sectorSize - 1)
	for _, s := range []int64{anchorSector, last} {
		d := w.sector(s)[:descriptorSize]
		le.PutUint32(d[16:], vdsSectors*sectorSize)
		le.PutUint32(d[20:], vdsMain)
		le.PutUint32(d[24:], vdsSectors*sectorSize)
		le.PutUint32(d[28:], vdsReserve)
		putTag(d, tagAVDP, w.version, uint32(s))
	}
	d := w.block(0)[:descriptorSize]
	putTime(d[16:], w.when)
	le.PutUint16(d[28:], fileSetLevel)
	le.PutUint16(d[30:], fileSetLevel)
	le.PutUint32(d[32:], 1) // character set list: CS0
	le.PutUint32(d[36:], 1)
	putCharSpec(d[48:])
	putDString(d[112:240], label) // checked by Write
	putCharSpec(d[240:])
	putDStringTruncated(d[304:336], label) // file set identifier
	w.putLongAD(d[400:], sectorSize, root.entry)
	w.domainID(d[416:])
	putTag(d, tagFSD, w.version, 0)
	putTag(w.block(1)[:descriptorSize], tagTD, w.version, 1)
}

// putVDS writes a volume descriptor sequence at sector s: primary, implementation use, partition,
// logical volume and unallocated space descriptors, and a terminator.
func (w *writer) putVDS(s int64, label, volSet string) {
	d := w.sector(s)[:descriptorSize] // primary volume descriptor
	putDStringTruncated(d[24:56], label)
	le.PutUint16(d[56:], 1) // volume sequence number
	le.PutUint16(d[58:], 1) // maximum volume sequence number
	le.PutUint16(d[60:], 2) // interchange level
	le.PutUint16(d[62:], 2)
	le.PutUint32(d[64:], 1) // character set list: CS0
	le.PutUint32(d[68:], 1)
	putDStringTruncated(d[72:200], volSet+label)
	putCharSpec(d[200:])
	putCharSpec(d[264:])
	putRegID(d[344:], implID, implSuffix...) // application
	putTime(d[376:], w.when)
	putRegID(d[388:], implID, implSuffix...)
	putTag(d, tagPVD, w.version, uint32(s))

	d = w.sector(s + 1)[:descriptorSize] // implementation use volume descriptor
	le.PutUint32(d[16:], 1)
	w.udfID(d[20:], "*UDF LV Info")
	putCharSpec(d[52:])
	putDString(d[116:244], label)
	putRegID(d[352:], implID, implSuffix...)
	putTag(d, tagIUVD, w.version, uint32(s+1))

	d = w.sector(s + 2)[:descriptorSize] // partition descriptor
	le.PutUint32(d[16:], 2)
	le.PutUint16(d[20:], 1) // allocated
	nsr := "+NSR02"
	if w.rev >= 0x0200 {
		nsr = "+NSR03"
	}
	putRegID(d[24:], nsr)
	le.PutUint32(d[184:], 1) // access type: read-only
	le.PutUint32(d[188:], partStart)
	le.PutUint32(d[192:], w.partLen)
	putRegID(d[196:], implID, implSuffix...)
	putTag(d, tagPD, w.version, uint32(s+2))

	d = w.sector(s + 3)[:440+6] // logical volume descriptor with one type-1 partition map
	le.PutUint32(d[16:], 3)
	putCharSpec(d[20:])
	putDString(d[84:212], label)
	le.PutUint32(d[212:], sectorSize)
	w.domainID(d[216:])
	w.putLongAD(d[248:], sectorSize, 0) // file set descriptor
	le.PutUint32(d[264:], 6)
	le.PutUint32(d[268:], 1)
	putRegID(d[272:], implID, implSuffix...)
	le.PutUint32(d[432:], 2*sectorSize) // integrity sequence
	le.PutUint32(d[436:], lvidSector)
	d[440], d[441] = partMapType1, 6
	le.PutUint16(d[442:], 1) // volume sequence number; partition number 0
	putTag(d, tagLVD, w.version, uint32(s+3))

	d = w.sector(s + 4)[:24] // unallocated space descriptor: none
	le.PutUint32(d[16:], 4)
	putTag(d, tagUSD, w.version, uint32(s+4))

	putTag(w.sector(s + 5)[:descriptorSize], tagTD, w.version, uint32(s+5))
}

// putLVID writes a closed logical volume integrity descriptor and its terminator.
func (w *writer) putLVID() {
	d := w.sector(lvidSector)[:80+8+46]
	putTime(d[16:], w.when)
	le.PutUint32(d[28:], 1)         // integrity type: close
	le.PutUint64(d[40:], w.nextID)  // logical volume header: next unique ID
	le.PutUint32(d[72:], 1)         // partitions
	le.PutUint32(d[76:], 46)        // length of implementation use
	le.PutUint32(d[84:], w.partLen) // size table (the free space table says 0)
	putRegID(d[88:], implID, implSuffix...)
	var files, dirs uint32
	for _, n := range w.order {
		if n.dir {
			dirs++
		} else {
			files++
		}
	}
	le.PutUint32(d[120:], files)
	le.PutUint32(d[124:], dirs)
	le.PutUint16(d[128:], w.rev) // minimum read, minimum write and maximum write revisions
	le.PutUint16(d[130:], w.rev)
	le.PutUint16(d[132:], w.rev)
	putTag(d, tagLVID, w.version, lvidSector)
	putTag(w.sector(lvidSector + 1)[:descriptorSize], tagTD, w.version, lvidSector+1)
}
