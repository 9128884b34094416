package modules

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFindPasswd(t *testing.T) {
	passwd := []byte("root:x:0:0:root:/root:/bin/bash\nbob:x:1001:1001::/home/bob:/bin/sh\nbobby:x:1002:1002::/home/bobby:/bin/sh\nbad:x:1:x::/:/bin/sh\n")
	got, err := findPasswd(passwd, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Account{Name: "bob", UID: 1001, GID: 1001, Home: "/home/bob", Shell: "/bin/sh"}, got); diff != "" {
		t.Errorf("bob (-want +got):\n%s", diff)
	}
	if _, err := findPasswd(passwd, "bo"); !errors.Is(err, ErrNoUser) {
		t.Errorf("a prefix of a name matched: %v", err)
	}
	if _, err := findPasswd(passwd, "bad"); err == nil || err.Error() != "line 4: bad uid or gid" {
		t.Errorf("bad entry: %v", err)
	}
}
