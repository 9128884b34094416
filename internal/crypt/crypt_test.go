package crypt

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/tredoe/osutil/user/crypt/sha512_crypt"
)

func TestSHA512(t *testing.T) {
	h, err := SHA512("P@ssw0rd-not-real", 10)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(h, "$")
	if len(parts) != 4 || parts[1] != "6" || len(parts[2]) != 10 || len(parts[3]) != 86 {
		t.Fatalf("hash %q is not $6$<10-char salt>$<86-char hash>", h)
	}
	if err := sha512_crypt.New().Verify(h, []byte("P@ssw0rd-not-real")); err != nil {
		t.Errorf("the hash does not verify: %v", err)
	}
	if h2, _ := SHA512("P@ssw0rd-not-real", 10); h2 == h {
		t.Error("two hashes of one password share a salt")
	}
}

// TestSHA512MatchesOpenSSL checks the hash against openssl passwd -6 with
// the same salt, an implementation we did not pick.
func TestSHA512MatchesOpenSSL(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl is not installed")
	}
	h, err := SHA512("correct horse", 12)
	if err != nil {
		t.Fatal(err)
	}
	salt := strings.Split(h, "$")[2]
	out, err := exec.Command(openssl, "passwd", "-6", "-salt", salt, "correct horse").Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != h {
		t.Errorf("openssl says %q, we say %q", got, h)
	}
}

func TestSHA512Errors(t *testing.T) {
	if _, err := SHA512("", 10); err != ErrEmptyPassword {
		t.Errorf("empty password: %v", err)
	}
	for _, n := range []int{0, 17} {
		if _, err := SHA512("secret-pw", n); err == nil || strings.Contains(err.Error(), "secret-pw") {
			t.Errorf("salt length %d: %v", n, err)
		}
	}
}
