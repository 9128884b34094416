package extconfig

import (
	"fmt"
	"strings"
)

// Version is an extension or agent version as the platform's agent compares
// them (FlexibleVersion): dot-separated decimal numbers of any count and size,
// optionally followed by a pre-release tag alpha, beta or rc (itself
// optionally numbered and separated by "." or "-"): "1.2", "2.1.6.7",
// "1.0.0-beta2", "1.0rc". Missing trailing components count as zero, so
// "1.2" equals "1.2.0.0"; a pre-release sorts before its release.
// The zero Version compares equal to "0".
type Version struct {
	text string
	nums []string // decimal, leading zeros removed, so compared by length then bytes
	tag  int      // 0 for a release, else 1 + the index in preReleaseTags
	// tagNum is the pre-release number without leading zeros; "" when the
	// tag has none, which sorts before every number.
	tagNum string
}

// preReleaseTags are the pre-release tags in ascending order.
var preReleaseTags = [...]string{"alpha", "beta", "rc"}

// ParseVersion parses s. It must be the whole version, without spaces.
func ParseVersion(s string) (Version, error) {
	v := Version{text: s}
	rest := s
	for {
		n := leadingDigits(rest)
		if n == 0 {
			return Version{}, fmt.Errorf("invalid version %q: want dot-separated numbers", s)
		}
		v.nums = append(v.nums, trimZeros(rest[:n]))
		rest = rest[n:]
		if len(rest) < 2 || rest[0] != '.' || leadingDigits(rest[1:]) == 0 {
			break
		}
		rest = rest[1:]
	}
	if rest == "" {
		return v, nil
	}
	if rest[0] == '.' || rest[0] == '-' {
		rest = rest[1:]
	}
	for i, tag := range preReleaseTags {
		if after, ok := strings.CutPrefix(rest, tag); ok && leadingDigits(after) == len(after) {
			v.tag = i + 1
			if after != "" {
				v.tagNum = trimZeros(after)
			}
			return v, nil
		}
	}
	return Version{}, fmt.Errorf("invalid version %q: want numbers and an optional alpha, beta or rc tag", s)
}

// String is the version as it was written.
func (v Version) String() string { return v.text }

// MarshalText writes the version as it was written.
func (v Version) MarshalText() ([]byte, error) { return []byte(v.text), nil }

// Compare returns -1, 0 or +1 as v sorts before, equal to or after w.
func (v Version) Compare(w Version) int {
	for i := range max(len(v.nums), len(w.nums)) {
		if c := compareDecimal(component(v.nums, i), component(w.nums, i)); c != 0 {
			return c
		}
	}
	switch {
	case v.tag == w.tag && v.tagNum == w.tagNum:
		return 0
	case v.tag == 0: // a release after its pre-releases
		return 1
	case w.tag == 0:
		return -1
	case v.tag != w.tag:
		return sign(v.tag - w.tag)
	case v.tagNum == "":
		return -1
	case w.tagNum == "":
		return 1
	default:
		return compareDecimal(v.tagNum, w.tagNum)
	}
}

// Matches reports whether v, taken as a requested version, selects w: every
// component of v equals w's at the same place, so "1.0" matches 1.0, 1.0.3
// and 1.0.3.7 but not 1 or 1.1. Pre-release tags are not looked at.
func (v Version) Matches(w Version) bool {
	if len(v.nums) > len(w.nums) {
		return false
	}
	for i, n := range v.nums {
		if n != w.nums[i] {
			return false
		}
	}
	return true
}

func component(nums []string, i int) string {
	if i < len(nums) {
		return nums[i]
	}
	return "0"
}

// compareDecimal compares two decimal numbers without leading zeros.
func compareDecimal(a, b string) int {
	if len(a) != len(b) {
		return sign(len(a) - len(b))
	}
	return strings.Compare(a, b)
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}

func leadingDigits(s string) int {
	n := 0
	for n < len(s) && '0' <= s[n] && s[n] <= '9' {
		n++
	}
	return n
}

func trimZeros(digits string) string {
	if t := strings.TrimLeft(digits, "0"); t != "" {
		return t
	}
	return "0"
}

// Equal reports whether v and w are the same version (Compare is 0).
func (v Version) Equal(w Version) bool { return v.Compare(w) == 0 }
