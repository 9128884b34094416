package udftest

import (
	"bytes"
	"io"
	"testing"
)

func TestSparseRoundTrip(t *testing.T) {
	for _, img := range [][]byte{
		nil,
		{1},
		make([]byte, 3*ChunkSize+7),
		append(append(make([]byte, 2*ChunkSize), bytes.Repeat([]byte{0xAB}, 700)...), make([]byte, 5000)...),
	} {
		s := DecodeSparse(EncodeSparse(img))
		want := int64(len(img)+ChunkSize-1) / ChunkSize * ChunkSize
		if s.Size() != want {
			t.Errorf("size %d, want %d", s.Size(), want)
		}
		got := make([]byte, s.Size())
		if n, err := s.ReadAt(got, 0); n != len(got) || (err != nil && err != io.EOF) {
			t.Errorf("ReadAt: %d, %v", n, err)
		}
		if !bytes.Equal(got[:len(img)], img) || !isZero(got[len(img):]) {
			t.Errorf("round trip of %d bytes differs", len(img))
		}
	}
}

func TestSparseReadAtEnd(t *testing.T) {
	s := DecodeSparse(EncodeSparse([]byte("hello")))
	b := make([]byte, 10)
	if n, err := s.ReadAt(b, ChunkSize-4); n != 4 || err != io.EOF {
		t.Errorf("ReadAt across the end: %d, %v", n, err)
	}
	if n, err := s.ReadAt(b, -1); n != 0 || err != io.EOF {
		t.Errorf("ReadAt(-1): %d, %v", n, err)
	}
}
