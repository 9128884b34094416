package udf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
	"unicode/utf16"
)

// Descriptor tag identifiers (ECMA-167 3/7.2.1 and 4/7.2.1).
const (
	tagPVD  = 1   // Primary Volume Descriptor
	tagAVDP = 2   // Anchor Volume Descriptor Pointer
	tagVDP  = 3   // Volume Descriptor Pointer
	tagIUVD = 4   // Implementation Use Volume Descriptor
	tagPD   = 5   // Partition Descriptor
	tagLVD  = 6   // Logical Volume Descriptor
	tagUSD  = 7   // Unallocated Space Descriptor
	tagTD   = 8   // Terminating Descriptor
	tagLVID = 9   // Logical Volume Integrity Descriptor
	tagFSD  = 256 // File Set Descriptor
	tagFID  = 257 // File Identifier Descriptor
	tagAED  = 258 // Allocation Extent Descriptor
	tagFE   = 261 // File Entry
	tagEFE  = 266 // Extended File Entry
)

const tagSize = 16

var le = binary.LittleEndian

// tag is a parsed descriptor tag (ECMA-167 3/7.2).
type tag struct {
	id       uint16
	version  uint16
	location uint32
}

// parseTag checks the descriptor tag at the start of b: its checksum, its version and the CRC over
// the CRC length the tag declares, which must lie inside b. The caller checks id and location.
func parseTag(b []byte) (tag, error) {
	if len(b) < tagSize {
		return tag{}, fmt.Errorf("descriptor tag truncated (%d bytes)", len(b))
	}
	if got, want := b[4], tagChecksum(b); got != want {
		return tag{}, fmt.Errorf("tag checksum %#02x, computed %#02x", got, want)
	}
	t := tag{id: le.Uint16(b), version: le.Uint16(b[2:]), location: le.Uint32(b[12:])}
	if t.version != 2 && t.version != 3 {
		return t, fmt.Errorf("tag %d: descriptor version %d, want 2 or 3", t.id, t.version)
	}
	n := int(le.Uint16(b[10:]))
	if n > len(b)-tagSize {
		return t, fmt.Errorf("tag %d: descriptor CRC length %d exceeds the %d bytes available", t.id, n, len(b)-tagSize)
	}
	if got, want := le.Uint16(b[8:]), crcCCITT(b[tagSize:tagSize+n]); got != want {
		return t, fmt.Errorf("tag %d: descriptor CRC %#04x, computed %#04x", t.id, got, want)
	}
	return t, nil
}

// expect checks that the tag has identifier id and records location loc.
func (t tag) expect(id uint16, loc uint32) error {
	if t.id != id {
		return fmt.Errorf("tag %d, want %d", t.id, id)
	}
	if t.location != loc {
		return fmt.Errorf("tag %d records location %d, found at %d", t.id, t.location, loc)
	}
	return nil
}

// putTag fills the tag of the descriptor d (whose length is len(d)): the CRC covers d[16:].
func putTag(d []byte, id, version uint16, loc uint32) {
	le.PutUint16(d, id)
	le.PutUint16(d[2:], version)
	le.PutUint16(d[6:], 1) // tag serial number
	le.PutUint16(d[8:], crcCCITT(d[tagSize:]))
	le.PutUint16(d[10:], uint16(len(d)-tagSize))
	le.PutUint32(d[12:], loc)
	d[4] = tagChecksum(d)
}

// tagChecksum is the sum modulo 256 of tag bytes 0-3 and 5-15 (ECMA-167 3/7.2.3).
func tagChecksum(b []byte) byte {
	var sum byte
	for i, c := range b[:tagSize] {
		if i != 4 {
			sum += c
		}
	}
	return sum
}

// crcTable drives crcCCITT; it is a constant lookup table.
var crcTable = func() (t [256]uint16) {
	for i := range t {
		c := uint16(i) << 8
		for range 8 {
			if c&0x8000 != 0 {
				c = c<<1 ^ 0x1021
			} else {
				c <<= 1
			}
		}
		t[i] = c
	}
	return t
}()

// crcCCITT is the descriptor CRC of ECMA-167 1/7.2.6: polynomial x^16+x^12+x^5+1, initial value 0,
// most significant bit first.
func crcCCITT(b []byte) uint16 {
	var c uint16
	for _, x := range b {
		c = c<<8 ^ crcTable[byte(c>>8)^x]
	}
	return c
}

// decodeDChars decodes OSTA Compressed Unicode (UDF 2.1.1): a compression ID (8: one byte per
// character, 16: UTF-16BE) followed by the characters.
func decodeDChars(b []byte) (string, error) {
	if len(b) == 0 {
		return "", nil
	}
	switch b[0] {
	case 8:
		r := make([]rune, len(b)-1)
		for i, c := range b[1:] {
			r[i] = rune(c)
		}
		return string(r), nil
	case 16:
		if len(b)%2 != 1 {
			return "", fmt.Errorf("UTF-16 name has an odd length (%d bytes)", len(b)-1)
		}
		u := make([]uint16, (len(b)-1)/2)
		for i := range u {
			u[i] = uint16(b[1+2*i])<<8 | uint16(b[2+2*i])
		}
		return string(utf16.Decode(u)), nil
	}
	return "", fmt.Errorf("unsupported character compression ID %d", b[0])
}

// decodeDString decodes a fixed-size dstring field, whose last byte is the length used.
func decodeDString(f []byte) (string, error) {
	n := int(f[len(f)-1])
	if n == 0 {
		return "", nil
	}
	if n > len(f)-1 {
		return "", fmt.Errorf("dstring length %d exceeds its %d-byte field", n, len(f)-1)
	}
	return decodeDChars(f[:n])
}

// encodeDChars encodes s as OSTA Compressed Unicode: compression ID 8 when every character is
// below U+0100, else 16.
func encodeDChars(s string) []byte {
	wide := false
	for _, r := range s {
		wide = wide || r > 0xFF
	}
	if !wide {
		b := []byte{8}
		for _, r := range s {
			b = append(b, byte(r))
		}
		return b
	}
	b := []byte{16}
	for _, u := range utf16.Encode([]rune(s)) {
		b = append(b, byte(u>>8), byte(u))
	}
	return b
}

var errTooLong = errors.New("too long")

// putDString writes s into the fixed-size dstring field f.
func putDString(f []byte, s string) error {
	if s == "" {
		return nil
	}
	b := encodeDChars(s)
	if len(b) > len(f)-1 {
		return fmt.Errorf("%q: %w for a %d-byte field", s, errTooLong, len(f))
	}
	copy(f, b)
	f[len(f)-1] = byte(len(b))
	return nil
}

// putDStringTruncated writes as much of s as fits into f.
func putDStringTruncated(f []byte, s string) {
	r := []rune(s)
	for putDString(f, string(r)) != nil {
		r = r[:len(r)-1]
	}
}

// parseTime decodes an ECMA-167 timestamp (1/7.3); the zero time when it is unrecorded.
func parseTime(b []byte) time.Time {
	month := b[4]
	if month == 0 {
		return time.Time{}
	}
	tt := le.Uint16(b)
	tz := int(tt & 0xFFF) // 12-bit two's complement minutes east of UTC
	if tz >= 0x800 {
		tz -= 0x1000
	}
	loc := time.UTC
	if tt>>12 == 1 && tz != 0 && tz != -2047 { // type 1: local time; -2047: offset not specified
		loc = time.FixedZone("", tz*60)
	}
	ns := (int(b[9])*10000 + int(b[10])*100 + int(b[11])) * 1000
	return time.Date(int(int16(le.Uint16(b[2:]))), time.Month(month), int(b[5]), int(b[6]), int(b[7]), int(b[8]), ns, loc)
}

// putTime encodes t as an ECMA-167 timestamp in t's own time zone.
func putTime(b []byte, t time.Time) {
	_, off := t.Zone()
	le.PutUint16(b, 1<<12|uint16(off/60)&0xFFF)
	le.PutUint16(b[2:], uint16(t.Year()))
	b[4], b[5], b[6], b[7], b[8] = byte(t.Month()), byte(t.Day()), byte(t.Hour()), byte(t.Minute()), byte(t.Second())
	us := t.Nanosecond() / 1000
	b[9], b[10], b[11] = byte(us/10000), byte(us/100%100), byte(us%100)
}

// putRegID writes an entity identifier (ECMA-167 1/7.4): flags 0, the identifier, the suffix.
func putRegID(b []byte, ident string, suffix ...byte) {
	copy(b[1:24], ident)
	copy(b[24:32], suffix)
}

// putCharSpec writes the CS0 character set specification UDF requires (UDF 2.1.2).
func putCharSpec(b []byte) {
	b[0] = 0
	copy(b[1:64], "OSTA Compressed Unicode")
}
