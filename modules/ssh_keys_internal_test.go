package modules

import (
	"errors"
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestResolveKeyPath(t *testing.T) {
	for _, tc := range []struct {
		path, home string
		want       string // "" means ErrOutsideHome
	}{
		{"", "/home/bob", ".ssh/authorized_keys"},
		{"$HOME/bob/.ssh/authorized_keys", "/home/bob", ".ssh/authorized_keys"},
		{"/home/bob/.ssh/authorized_keys", "/home/bob", ".ssh/authorized_keys"},
		{"/home/bob/./.ssh//authorized_keys", "/home/bob/", ".ssh/authorized_keys"},
		{"$HOME/bob/.ssh/id_rsa", "/home/bob", ".ssh/id_rsa"},
		{"/home/bob/keys/azure", "/home/bob", "keys/azure"},
		{"/srv/bob/.ssh/authorized_keys", "/srv/bob", ".ssh/authorized_keys"},
		{"$HOME/bob/.ssh/authorized_keys", "/srv/bob", ""}, // $HOME is the configured base, not the user's home
		{"/etc/passwd", "/home/bob", ""},
		{"$HOME/bob/../alice/.ssh/authorized_keys", "/home/bob", ""},
		{"/home/bob/../../etc/shadow", "/home/bob", ""},
		{"/home/alice/.ssh/authorized_keys", "/home/bob", ""},
		{"/home/bobby/.ssh/authorized_keys", "/home/bob", ""},
		{"/home/bob", "/home/bob", ""},
		{"/home/bob/", "/home/bob", ""},
		{"$HOME/bob", "/home/bob", ""},
		{"$HOME", "/home/bob", ""},
		{"$HOMEbob/.ssh/authorized_keys", "/home/bob", ""},
		{".ssh/authorized_keys", "/home/bob", ""},
		{"home/bob/.ssh/authorized_keys", "/home/bob", ""},
		{"/etc/shadow", "/", ""},  // a home of "/" holds nothing of the user's alone
		{"", "/", ""},             // not even the default file
		{"/x/.ssh/keys", "x", ""}, // nor does a relative one
	} {
		got, err := resolveKeyPath(tc.path, "/home", tc.home)
		if tc.want == "" {
			if !errors.Is(err, ErrOutsideHome) || !strings.Contains(err.Error(), path.Clean(tc.home)) {
				t.Errorf("resolveKeyPath(%q, home %q) = %q, %v; want ErrOutsideHome naming the home", tc.path, tc.home, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("resolveKeyPath(%q, home %q) = %q, %v; want %q", tc.path, tc.home, got, err, tc.want)
		}
	}
}

const (
	k1 = "ssh-ed25519 AAAAkey1 one@azure"
	k2 = "ssh-rsa AAAAkey2 two@azure"
	k3 = "ecdsa-sha2-nistp256 AAAAkey3"
)

func block(keys ...string) string {
	return keysBlockBegin + "\n" + strings.Join(append(keys, keysBlockEnd), "\n") + "\n"
}

func TestMergeAuthorizedKeys(t *testing.T) {
	for _, tc := range []struct {
		name      string
		old       string
		keys      []string
		want      string
		unchanged bool
	}{
		{name: "new file", keys: []string{k1, k2}, want: block(k1, k2)},
		{name: "no keys, no file"},
		{name: "user lines kept, block appended",
			old:  "# mine\nssh-ed25519 AAAAmine me@laptop\n",
			keys: []string{k1},
			want: "# mine\nssh-ed25519 AAAAmine me@laptop\n" + block(k1)},
		{name: "missing final newline added before the block",
			old:  "ssh-ed25519 AAAAmine me@laptop",
			keys: []string{k1},
			want: "ssh-ed25519 AAAAmine me@laptop\n" + block(k1)},
		{name: "duplicates outside the block dropped",
			old:  k1 + "\n  " + k2 + " \r\n" + "command=\"true\" " + k1 + "\n",
			keys: []string{k1, k2},
			want: "command=\"true\" " + k1 + "\n" + block(k1, k2)},
		{name: "block replaced in place, lines around kept byte for byte",
			old:  "before\r\n" + block(k1, k2) + "\tafter  \n",
			keys: []string{k2, k3},
			want: "before\r\n" + block(k2, k3) + "\tafter  \n"},
		{name: "same keys: unchanged",
			old: "a\n" + block(k1) + "b", keys: []string{k1}, unchanged: true},
		{name: "no keys: block removed",
			old:  "a\n" + block(k1) + "b\n",
			want: "a\nb\n"},
		{name: "no keys, no block: unchanged",
			old: "a\n" + k1 + "\n# end azinit\n", unchanged: true},
		{name: "second block merged into the first",
			old:  block(k1) + "mid\n" + block(k2),
			keys: []string{k3},
			want: block(k3) + "mid\n"},
		{name: "begin marker without end: only the marker goes",
			old:  "a\n" + keysBlockBegin + "\n" + k1 + "\nmine\n",
			keys: []string{k2},
			want: "a\n" + block(k2) + k1 + "\nmine\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.unchanged {
				tc.want = tc.old
			}
			got := string(mergeAuthorizedKeys([]byte(tc.old), tc.keys))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func FuzzMergeAuthorizedKeys(f *testing.F) {
	f.Add("# mine\nssh-ed25519 AAAAmine me\n", k1+"\n"+k2)
	f.Add("a\r\n"+block(k1, k2)+"b", k2)
	f.Add(block(k1)+block(k2)+keysBlockBegin+"\n", "")
	f.Add(keysBlockEnd+"\n"+keysBlockBegin, k3)
	f.Fuzz(func(t *testing.T, old, keyLines string) {
		var keys []string
		for _, k := range strings.Split(keyLines, "\n") {
			// Keys reach the merge checked: one trimmed line, an OpenSSH key.
			if k = strings.TrimSpace(k); k != "" && !strings.ContainsAny(k, "\r\n") && !strings.HasPrefix(k, "#") && !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
		got := mergeAuthorizedKeys([]byte(old), keys)
		if again := mergeAuthorizedKeys(got, keys); string(again) != string(got) {
			t.Fatalf("not idempotent:\n%q\n%q", got, again)
		}
		var outside []string
		inBlock := 0
		for _, l := range splitLines(got) {
			switch text := strings.TrimSpace(l); {
			case text == keysBlockBegin:
				inBlock++
			case inBlock == 1 && text == keysBlockEnd:
				inBlock = 2
			case inBlock != 1:
				outside = append(outside, text)
			}
		}
		if len(keys) > 0 && inBlock != 2 || len(keys) == 0 && inBlock != 0 {
			t.Fatalf("want one block for %d keys in %q", len(keys), got)
		}
		if !strings.Contains(string(got), block(keys...)) && len(keys) > 0 {
			t.Fatalf("the block does not hold the keys: %q", got)
		}
		for _, k := range keys {
			if slices.Contains(outside, k) {
				t.Fatalf("key %q also outside the block: %q", k, got)
			}
		}
	})
}

func FuzzResolveKeyPath(f *testing.F) {
	f.Add("$HOME/UserName/.ssh/authorized_keys", "/home/UserName") // the fixture's ovf-env.xml
	f.Add("$HOME/bob/../alice/.ssh/authorized_keys", "/home/bob")
	f.Add("/home/bob/./x", "/home/bob/")
	f.Add("", "/")
	f.Add("", "0") // found by fuzzing: the default file of a relative home
	f.Fuzz(func(t *testing.T, p, home string) {
		rel, err := resolveKeyPath(p, "/home", home)
		if err != nil {
			return
		}
		if !path.IsAbs(home) || rel == "" || rel == "." || path.IsAbs(rel) || rel != path.Clean(rel) || rel == ".." || strings.HasPrefix(rel, "../") {
			t.Fatalf("resolveKeyPath(%q, home %q) = %q: not a name strictly inside the home", p, home, rel)
		}
	})
}
