package modules

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/azinit/azinit/internal/fixtures"
)

var noPasswords = []sshdOption{{"PasswordAuthentication", "no"}, {"KbdInteractiveAuthentication", "no"}, {"ClientAliveInterval", "180"}}

func TestIncludesDropIn(t *testing.T) {
	for _, tc := range []struct {
		name, cfg string
		want      bool
	}{
		{"debian", "# comment\nInclude /etc/ssh/sshd_config.d/*.conf\nKbdInteractiveAuthentication no\n", true},
		{"relative", "Include sshd_config.d/*.conf\n", true},
		{"any file", "Include /etc/ssh/sshd_config.d/*\n", true},
		{"equals and quotes", "  include=\"/etc/ssh/sshd_config.d/*.conf\"\n", true},
		{"one of several", "Include /etc/ssh/other/*.conf '/etc/ssh/sshd_config.d/[0-9]*.conf'\n", true},
		{"unclean", "Include /etc/ssh//sshd_config.d/./*.conf\n", true},
		{"no include", "PasswordAuthentication yes\n", false},
		{"commented out", "#Include /etc/ssh/sshd_config.d/*.conf\n", false},
		{"other directory", "Include /etc/ssh/conf.d/*.conf\n", false},
		{"a pattern that leaves our name out", "Include /etc/ssh/sshd_config.d/9*.conf\n", false},
		{"only after Match", "Match User bob\nInclude /etc/ssh/sshd_config.d/*.conf\n", false},
		{"after a setting of ours", "PasswordAuthentication yes\nInclude /etc/ssh/sshd_config.d/*.conf\n", false},
		{"after the old name of one of ours", "ChallengeResponseAuthentication yes\nInclude /etc/ssh/sshd_config.d/*.conf\n", false},
		{"after other settings", "Port 22\nUsePAM yes\nInclude /etc/ssh/sshd_config.d/*.conf\n", true},
	} {
		if got := includesDropIn([]byte(tc.cfg), noPasswords); got != tc.want {
			t.Errorf("%s: includesDropIn(%q) = %v", tc.name, tc.cfg, got)
		}
	}
}

func TestSSHDWords(t *testing.T) {
	got := sshdWords(` a  "b c" 'd"e' f"g h"i	j`)
	if diff := cmp.Diff([]string{"a", "b c", `d"e`, "fg hi", "j"}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestSetSSHDOptions(t *testing.T) {
	for _, tc := range []struct {
		name, cfg, want string
	}{
		{"empty", "", "PasswordAuthentication no\nKbdInteractiveAuthentication no\nClientAliveInterval 180\n"},
		{"appended after a last line without newline",
			"Port 22",
			"Port 22\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nClientAliveInterval 180\n"},
		{"first active line replaced, comments and later lines kept",
			"#PasswordAuthentication yes\nPasswordAuthentication yes\r\nPasswordAuthentication maybe\nClientAliveInterval=60\n",
			"#PasswordAuthentication yes\nPasswordAuthentication no\r\nPasswordAuthentication maybe\nClientAliveInterval 180\nKbdInteractiveAuthentication no\n"},
		{"already so: kept as written",
			"  passwordauthentication NO\nChallengeResponseAuthentication no\nClientAliveInterval 180\n",
			"  passwordauthentication NO\nChallengeResponseAuthentication no\nClientAliveInterval 180\n"},
		{"the old name is set to the new",
			"ChallengeResponseAuthentication yes\n",
			"KbdInteractiveAuthentication no\nPasswordAuthentication no\nClientAliveInterval 180\n"},
		{"inserted before the first Match",
			"Port 22\nMatch User bob\n  PasswordAuthentication yes\nMatch all\nX11Forwarding no\n",
			"Port 22\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nClientAliveInterval 180\nMatch User bob\n  PasswordAuthentication yes\nMatch all\nX11Forwarding no\n"},
		{"a setting inside a Match block is not the global one",
			"Match Address 10.0.0.0/8\nPasswordAuthentication yes\n",
			"PasswordAuthentication no\nKbdInteractiveAuthentication no\nClientAliveInterval 180\nMatch Address 10.0.0.0/8\nPasswordAuthentication yes\n"},
		{"a longer keyword is another one",
			"PasswordAuthenticationX yes\n",
			"PasswordAuthenticationX yes\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nClientAliveInterval 180\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := string(setSSHDOptions([]byte(tc.cfg), noPasswords))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// firstSetting is the value sshd takes for keyword from cfg: the first
// active one before any Match block.
func firstSetting(cfg []byte, keyword string) (string, bool) {
	for _, line := range splitLines(cfg) {
		kw, args := sshdLine(line)
		if strings.EqualFold(kw, "Match") {
			break
		}
		if sameSSHDKeyword(kw, keyword) {
			return args, true
		}
	}
	return "", false
}

func FuzzSetSSHDOptions(f *testing.F) {
	f.Add(fixtures.Read(f, "wire/sshd_config"), false)
	f.Add([]byte("Include /etc/ssh/sshd_config.d/*.conf\nKbdInteractiveAuthentication no\nUsePAM yes\n"), true)
	f.Add([]byte("Port 22\nMatch User bob\n  PasswordAuthentication yes\n"), true)
	f.Add([]byte("ChallengeResponseAuthentication=yes\r\nClientAliveInterval 5"), false)
	f.Fuzz(func(t *testing.T, cfg []byte, passwords bool) {
		opts := noPasswords
		if passwords {
			opts = []sshdOption{{"PasswordAuthentication", "yes"}, {"ClientAliveInterval", "180"}}
		}
		includesDropIn(cfg, opts)
		got := setSSHDOptions(cfg, opts)
		for _, o := range opts {
			if v, ok := firstSetting(got, o.Keyword); !ok || !strings.EqualFold(v, o.Value) {
				t.Fatalf("%s is %q (%v) in %q", o.Keyword, v, ok, got)
			}
		}
		if again := setSSHDOptions(got, opts); string(again) != string(got) {
			t.Fatalf("not idempotent:\n%q\n%q", got, again)
		}
	})
}
