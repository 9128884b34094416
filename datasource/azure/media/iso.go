package media

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/kdomanski/iso9660"
)

// readISO reads the ISO9660 side with github.com/kdomanski/iso9660 (v0.4.0), which is not
// hardened against malformed images. Three guards contain it: checkSUSP refuses the images on which
// it would never return, a read budget bounds its loops over sectors, and its panics (found by
// FuzzReadISO; the inputs are in testdata/fuzz/FuzzReadISO) are recovered here and become errors.
func readISO(r io.ReaderAt, size int64) (m *Media, err error) {
	defer func() {
		if p := recover(); p != nil {
			m, err = nil, fmt.Errorf("iso9660: malformed image (the reader panicked: %v)", p)
		}
	}()
	br := &budgetReader{r: r, size: size, reads: maxISOReads}
	if err := checkSUSP(br); err != nil {
		return nil, fmt.Errorf("iso9660: root directory: %w", err)
	}
	img, err := iso9660.OpenImage(br)
	if err != nil {
		return nil, fmt.Errorf("iso9660: %w", err)
	}
	root, err := img.RootDir()
	if err != nil {
		return nil, fmt.Errorf("iso9660: root directory: %w", err)
	}
	children, err := root.GetChildren()
	if err != nil {
		return nil, fmt.Errorf("iso9660: root directory: %w", err)
	}
	var files []rootFile
	for _, c := range children {
		if !c.IsDir() {
			files = append(files, rootFile{name: c.Name(), size: c.Size(), read: func() ([]byte, error) { return io.ReadAll(c.Reader()) }})
		}
	}
	m, err = collect("iso9660", files)
	if err != nil {
		return nil, fmt.Errorf("iso9660: %w", err)
	}
	return m, nil
}

// maxISOReads bounds the reads of one readISO: reading real media takes a few dozen.
const maxISOReads = 4096

// budgetReader fails reads past the end of the image and once its budget is spent.
type budgetReader struct {
	r     io.ReaderAt
	size  int64
	reads int
}

func (b *budgetReader) ReadAt(p []byte, off int64) (int, error) {
	if b.reads--; b.reads < 0 {
		return 0, errors.New("read budget exhausted")
	}
	if off < 0 || off >= b.size {
		return 0, io.EOF
	}
	if int64(len(p)) > b.size-off {
		n, err := b.r.ReadAt(p[:b.size-off], off)
		if err == nil {
			err = io.EOF
		}
		return n, err
	}
	return b.r.ReadAt(p, off)
}

const (
	isoSector        = 2048
	maxVolumes       = 64      // volume descriptors before the primary one
	maxRootDir       = 1 << 17 // bytes of root directory: a provisioning disc has one sector
	maxContinuations = 8       // nested Rock Ridge continuation areas
)

// checkSUSP walks the root directory's records as kdomanski/iso9660 v0.4.0 does and checks the
// System Use entries it will split: that library loops forever, allocating, on an entry of length
// zero (CD-XA discs carry those; github.com/kdomanski/iso9660/pull/50), and allocates a
// continuation area of any declared size, up to 4 GiB. Whatever else is wrong is left for the
// library to report.
func checkSUSP(r io.ReaderAt) error {
	pvd := make([]byte, isoSector)
	for s := int64(16); ; s++ {
		if s == 16+maxVolumes {
			return nil
		}
		if _, err := r.ReadAt(pvd, s*isoSector); err != nil || string(pvd[1:6]) != "CD001" || pvd[0] == 255 {
			return nil
		}
		if pvd[0] == 1 {
			break
		}
	}
	loc, length := int64(binary.LittleEndian.Uint32(pvd[158:])), int64(binary.LittleEndian.Uint32(pvd[166:]))
	if length > maxRootDir {
		return fmt.Errorf("%d bytes, more than the %d read", length, maxRootDir)
	}
	skip := -1 // the System Use bytes to skip, once the "." record has an SP entry
	sector := make([]byte, isoSector)
	for off := int64(0); off < length; off += isoSector {
		if _, err := r.ReadAt(sector, (loc*isoSector+off)&0xFFFFFFFF); err != nil {
			return nil
		}
		for i := 0; i < isoSector && sector[i] != 0; i += int(sector[i]) {
			rec := sector[i:min(i+int(sector[i]), isoSector)]
			if len(rec) < 34 || 34+int(rec[32]) > len(rec) {
				return nil
			}
			idLen := int(rec[32])
			su := rec[33+idLen+(idLen+1)%2:]
			switch {
			case idLen == 1 && rec[33] == 0: // "."
				if err := checkEntries(r, su, 0); err != nil {
					return err
				}
				if len(su) >= 7 && string(su[:2]) == "SP" {
					skip = int(su[6])
				}
			case skip >= 0 && skip <= len(su):
				if err := checkEntries(r, su[skip:], 0); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// checkEntries checks one System Use area and the continuation areas it points to.
func checkEntries(r io.ReaderAt, su []byte, depth int) error {
	for len(su) >= 4 {
		n := int(su[2])
		if n < 4 {
			return fmt.Errorf("System Use entry %q of length %d", su[:2], n)
		}
		if n > len(su) {
			return nil
		}
		if string(su[:2]) == "CE" && n == 28 {
			if depth == maxContinuations {
				return fmt.Errorf("more than %d nested continuation areas", maxContinuations)
			}
			block, off, l := binary.LittleEndian.Uint32(su[4:]), binary.LittleEndian.Uint32(su[12:]), binary.LittleEndian.Uint32(su[20:])
			if l > isoSector {
				return fmt.Errorf("continuation area of %d bytes", l)
			}
			area := make([]byte, l)
			// The library computes the offset in 32 bits.
			if _, err := r.ReadAt(area, int64(block*isoSector+off)); err != nil {
				return nil
			}
			if err := checkEntries(r, area, depth+1); err != nil {
				return err
			}
		}
		su = su[n:]
	}
	return nil
}
