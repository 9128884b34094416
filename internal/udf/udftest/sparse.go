// Package udftest helps fuzz disc-image readers. Real images are megabytes of mostly zeros:
// mutated raw, they leave the fuzzer crawling at a few executions a second, so fuzz targets take
// them in a sparse encoding that keeps the mutations on the bytes that matter.
package udftest

import (
	"encoding/binary"
	"io"
)

// ChunkSize is the granularity of the sparse encoding.
const ChunkSize = 512

// Sparse is an image given by its non-zero chunks. Encoded, it is a series of records: a
// little-endian uint32 chunk index, then up to ChunkSize bytes (a short last record is padded with
// zeros); a later record for the same chunk wins. The image ends with its highest chunk.
type Sparse struct {
	chunks map[int64][]byte
	size   int64
}

// EncodeSparse encodes img, keeping its last chunk so that its size survives.
func EncodeSparse(img []byte) []byte {
	var out []byte
	last := (int64(len(img)) - 1) / ChunkSize
	for i := int64(0); i*ChunkSize < int64(len(img)); i++ {
		c := img[i*ChunkSize : min((i+1)*ChunkSize, int64(len(img)))]
		if i != last && isZero(c) {
			continue
		}
		out = binary.LittleEndian.AppendUint32(out, uint32(i))
		out = append(out, c...)
	}
	return out
}

// DecodeSparse decodes any bytes as a sparse image.
func DecodeSparse(in []byte) *Sparse {
	s := &Sparse{chunks: map[int64][]byte{}}
	for len(in) >= 4 {
		i := int64(binary.LittleEndian.Uint32(in))
		c := make([]byte, ChunkSize)
		in = in[4+copy(c, in[4:]):]
		s.chunks[i] = c
		s.size = max(s.size, (i+1)*ChunkSize)
	}
	return s
}

// Size returns the size of the image in bytes.
func (s *Sparse) Size() int64 { return s.size }

// ReadAt reads the image; chunks without a record read as zeros.
func (s *Sparse) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off >= s.size {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && off < s.size {
		i, at := off/ChunkSize, off%ChunkSize
		k := int(min(int64(len(p)-n), ChunkSize-at, s.size-off))
		if c, ok := s.chunks[i]; ok {
			copy(p[n:n+k], c[at:])
		} else {
			clear(p[n : n+k])
		}
		n += k
		off += int64(k)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
