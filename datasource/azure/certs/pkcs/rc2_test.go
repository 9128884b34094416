package pkcs

import (
	"encoding/hex"
	"testing"
)

// TestRC2 checks the test vectors of RFC 2268 section 5, both ways.
func TestRC2(t *testing.T) {
	tests := []struct {
		key, plain, cipher string
		bits               int
	}{
		{"0000000000000000", "0000000000000000", "ebb773f993278eff", 63},
		{"ffffffffffffffff", "ffffffffffffffff", "278b27e42e2f0d49", 64},
		{"3000000000000000", "1000000000000001", "30649edf9be7d2c2", 64},
		{"88", "0000000000000000", "61a8a244adacccf0", 64},
		{"88bca90e90875a", "0000000000000000", "6ccf4308974c267f", 64},
		{"88bca90e90875a7f0f79c384627bafb2", "0000000000000000", "1a807d272bbe5db1", 64},
		{"88bca90e90875a7f0f79c384627bafb2", "0000000000000000", "2269552ab0f85ca6", 128},
		{"88bca90e90875a7f0f79c384627bafb216f80a6f85920584c42fceb0be255daf1e", "0000000000000000", "5b78d3a43dfff1f1", 129},
	}
	for _, tc := range tests {
		key, _ := hex.DecodeString(tc.key)
		plain, _ := hex.DecodeString(tc.plain)
		want, _ := hex.DecodeString(tc.cipher)
		c, err := newRC2(key, tc.bits)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 8)
		c.Encrypt(got, plain)
		if hex.EncodeToString(got) != tc.cipher {
			t.Errorf("key %s/%d: encrypt = %x, want %s", tc.key, tc.bits, got, tc.cipher)
		}
		c.Decrypt(got, want)
		if hex.EncodeToString(got) != tc.plain {
			t.Errorf("key %s/%d: decrypt = %x, want %s", tc.key, tc.bits, got, tc.plain)
		}
	}
}

func TestRC2BadKey(t *testing.T) {
	for _, n := range []int{0, 129} {
		if _, err := newRC2(make([]byte, n), 64); err == nil {
			t.Errorf("key of %d bytes accepted", n)
		}
	}
}
