package modules

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/azinit/azinit/internal/sys"
)

// Account is a user of the target root, from its /etc/passwd (never the
// host's user database).
type Account struct {
	Name     string
	UID, GID int
	Home     string
	Shell    string
}

// Owner is the account as a file owner.
func (a Account) Owner() sys.Owner { return sys.Owner{UID: a.UID, GID: a.GID} }

// ErrNoUser means the target root has no such user.
var ErrNoUser = errors.New("no such user")

// LookupUser finds name in the target root's /etc/passwd.
func LookupUser(root *sys.Root, name string) (Account, error) {
	b, err := root.ReadFile("/etc/passwd")
	if err != nil {
		return Account{}, fmt.Errorf("looking up user %s: %w", name, err)
	}
	a, err := findPasswd(b, name)
	if err != nil {
		return Account{}, fmt.Errorf("looking up user %s in /etc/passwd: %w", name, err)
	}
	return a, nil
}

// findPasswd returns the passwd(5) entry for name.
func findPasswd(b []byte, name string) (Account, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		f := strings.Split(sc.Text(), ":")
		if len(f) != 7 || f[0] != name {
			continue
		}
		uid, err1 := strconv.Atoi(f[2])
		gid, err2 := strconv.Atoi(f[3])
		if err1 != nil || err2 != nil {
			return Account{}, fmt.Errorf("line %d: bad uid or gid", n)
		}
		return Account{Name: name, UID: uid, GID: gid, Home: f[5], Shell: f[6]}, nil
	}
	if err := sc.Err(); err != nil {
		return Account{}, err
	}
	return Account{}, ErrNoUser
}
