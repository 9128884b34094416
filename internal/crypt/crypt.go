// Package crypt makes the $6$ (SHA-512) password hashes /etc/shadow holds.
package crypt

import (
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/tredoe/osutil/user/crypt/sha512_crypt"
)

// saltAlphabet is what WALinuxAgent draws salts from ([A-Za-z0-9]); all of
// it is valid in crypt(3) salts.
const saltAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// ErrEmptyPassword is returned for an empty password: an account without
// one is locked, not given the hash of "".
var ErrEmptyPassword = errors.New("empty password")

// SHA512 hashes password with a random salt of saltLen characters (1 to
// 16) from crypto/rand, as "$6$<salt>$<hash>". Errors never include the
// password.
func SHA512(password string, saltLen int) (string, error) {
	if password == "" {
		return "", ErrEmptyPassword
	}
	if saltLen < 1 || saltLen > sha512_crypt.SaltLenMax {
		return "", fmt.Errorf("salt length %d: want 1 to %d", saltLen, sha512_crypt.SaltLenMax)
	}
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("salt: %w", err)
	}
	for i, b := range salt {
		// 256 is not a multiple of 62: the first 8 characters are a little
		// likelier, which costs a fraction of a bit of a 10-character salt.
		salt[i] = saltAlphabet[int(b)%len(saltAlphabet)]
	}
	h, err := sha512_crypt.New().Generate([]byte(password), append([]byte("$6$"), salt...))
	if err != nil {
		return "", fmt.Errorf("sha512-crypt: %w", err)
	}
	return h, nil
}
