package modules

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"syscall"

	"github.com/azinit/azinit/internal/sys"
)

// SSHD sets how sshd lets the admin user in: password authentication on
// or off as the platform asks, and the keepalive interval configured. With
// an sshd that includes sshd_config.d it writes azinit's drop-in there;
// otherwise it edits sshd_config in place as WALinuxAgent does.
type SSHD struct{}

// Name is "sshd".
func (SSHD) Name() string { return "sshd" }

const (
	sshdConfig = "/etc/ssh/sshd_config"
	// sshdDropIn is azinit's drop-in. sshd keeps the first value it reads
	// for a keyword, and reads the files of an Include in lexical order,
	// so a drop-in wins over those sorting after it. "50-azinit.conf"
	// sorts before cloud-init's 50-cloud-init.conf and azure-init's
	// 50-azure-init.conf, so what the platform asks wins over what an
	// image kept of theirs, while an administrator's lower-numbered
	// drop-in (10-*.conf) still wins over azinit's.
	sshdDropIn = "/etc/ssh/sshd_config.d/50-azinit.conf"
)

// sshdDropInHeader heads the drop-in.
const sshdDropInHeader = `# azinit owns this file and rewrites it when it provisions the VM: what
# the Azure platform asks for password authentication, and azinit's
# sshd.client_alive_interval. Override it in a drop-in that sorts before it.
`

// sshdOption is a keyword of sshd_config and the value azinit wants.
type sshdOption struct{ Keyword, Value string }

// Apply writes the drop-in or edits sshd_config, and reloads sshd when
// something changed on the running system.
func (SSHD) Apply(ctx context.Context, env *Env) (Outcome, error) {
	opts := sshdOptions(env)
	cfg, err := env.Root.ReadFile(sshdConfig)
	if errors.Is(err, fs.ErrNotExist) {
		env.Log.Info("no " + sshdConfig + ": sshd is not installed")
		return Skipped, nil
	}
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", sshdConfig, err)
	}
	file := sshdConfig
	var changed bool
	if includesDropIn(cfg, opts) {
		file = sshdDropIn
		changed, err = writeSSHDDropIn(env.Root, opts)
		warnEarlierDropIns(env, opts)
	} else {
		changed, err = editSSHDConfig(env.Root, cfg, opts)
	}
	if err != nil {
		return "", err
	}
	if !changed {
		return Unchanged, nil
	}
	env.Log.Info("sshd configuration updated", "file", file)
	if !env.Live {
		env.Log.Debug("offline: sshd not reloaded")
		return Changed, nil
	}
	unit := sshUnit(env.Root)
	if unit == "" {
		env.Log.Warn("no ssh.service or sshd.service unit: sshd not reloaded")
		return Changed, nil
	}
	// --no-block: sshd may be waiting to start after this stage, and
	// waiting for its reload job would then wait for ourselves; when it
	// starts it reads the new configuration anyway.
	if _, err := env.Run.Run(ctx, sys.Command{Name: "systemctl", Args: []string{"--no-block", "try-reload-or-restart", unit}}); err != nil {
		return "", fmt.Errorf("reloading sshd: %w", err)
	}
	return Changed, nil
}

// sshdOptions are the settings asked for: password authentication, also
// keyboard-interactive off when passwords are (PAM would take a password
// through it), and the keepalive interval unless it is 0.
func sshdOptions(env *Env) []sshdOption {
	opts := []sshdOption{{"PasswordAuthentication", "yes"}}
	if !env.Data.PasswordAuthentication() {
		opts = []sshdOption{{"PasswordAuthentication", "no"}, {"KbdInteractiveAuthentication", "no"}}
	}
	if n := env.Config.SSHD.ClientAliveInterval; n > 0 {
		opts = append(opts, sshdOption{"ClientAliveInterval", strconv.Itoa(n)})
	}
	return opts
}

// sameSSHDKeyword reports whether the keyword kw of a line sets want.
// sshd's keywords are case-insensitive, and ChallengeResponseAuthentication
// is the old name of KbdInteractiveAuthentication (an alias since OpenSSH
// 8.7; before it, turning keyboard-interactive off turned it off as well).
func sameSSHDKeyword(kw, want string) bool {
	return strings.EqualFold(kw, want) ||
		strings.EqualFold(want, "KbdInteractiveAuthentication") && strings.EqualFold(kw, "ChallengeResponseAuthentication")
}

// sshdLine splits an sshd_config line into its keyword and arguments
// ("Keyword args", "Keyword=args"); the keyword is "" for a blank line or a
// comment.
func sshdLine(line string) (keyword, args string) {
	s := strings.TrimLeft(line, " \t")
	if s == "" || s[0] == '#' || s[0] == '\n' || s[0] == '\r' {
		return "", ""
	}
	i := strings.IndexAny(s, " \t=\r\n")
	if i < 0 {
		return s, ""
	}
	args = strings.TrimLeft(s[i:], " \t")
	args = strings.TrimPrefix(args, "=")
	return s[:i], strings.TrimSpace(args)
}

// includesDropIn reports whether sshd reads azinit's drop-in before any
// other setting of opts: an Include covering it comes before any Match
// block and before any active line setting one of opts.
func includesDropIn(cfg []byte, opts []sshdOption) bool {
	for _, line := range splitLines(cfg) {
		kw, args := sshdLine(line)
		switch {
		case strings.EqualFold(kw, "Match"):
			return false
		case strings.EqualFold(kw, "Include"):
			for _, pattern := range sshdWords(args) {
				if !path.IsAbs(pattern) {
					pattern = path.Join("/etc/ssh", pattern) // sshd's rule for relative names
				}
				if ok, _ := path.Match(path.Clean(pattern), sshdDropIn); ok {
					return true
				}
			}
		}
		for _, o := range opts {
			if sameSSHDKeyword(kw, o.Keyword) {
				return false
			}
		}
	}
	return false
}

// sshdWords splits arguments as sshd does: at blanks, except inside
// double or single quotes, which are removed.
func sshdWords(s string) []string {
	var words []string
	var w strings.Builder
	var quote rune
	inWord := false
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote == 0 && (r == '"' || r == '\''):
			quote, inWord = r, true
		case quote == 0 && (r == ' ' || r == '\t'):
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		default:
			w.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words
}

// sshdDropInContent is the drop-in for opts.
func sshdDropInContent(opts []sshdOption) []byte {
	b := []byte(sshdDropInHeader)
	for _, o := range opts {
		b = append(b, o.Keyword+" "+o.Value+"\n"...)
	}
	return b
}

// writeSSHDDropIn writes azinit's drop-in, 0600, unless it is already so.
func writeSSHDDropIn(root *sys.Root, opts []sshdOption) (bool, error) {
	if err := root.MkdirAll(path.Dir(sshdDropIn), 0o755); err != nil {
		return false, fmt.Errorf("creating %s: %w", path.Dir(sshdDropIn), err)
	}
	return root.UpdateFile(sshdDropIn, sshdDropInContent(opts), 0o600, nil)
}

// warnEarlierDropIns warns of the drop-ins sshd reads before azinit's
// that set one of opts: theirs win.
func warnEarlierDropIns(env *Env, opts []sshdOption) {
	names, _ := env.Root.Glob(path.Join(path.Dir(sshdDropIn), "*.conf"))
	for _, name := range names {
		if name >= sshdDropIn {
			break
		}
		b, err := env.Root.ReadFile(name)
		if err != nil {
			continue
		}
		for _, line := range splitLines(b) {
			kw, _ := sshdLine(line)
			for _, o := range opts {
				if sameSSHDKeyword(kw, o.Keyword) {
					env.Log.Warn("an sshd drop-in read before azinit's overrides it", "file", name, "keyword", kw)
				}
			}
		}
	}
}

// editSSHDConfig sets opts in sshd_config itself, keeping its mode and
// owner.
func editSSHDConfig(root *sys.Root, cfg []byte, opts []sshdOption) (bool, error) {
	want := setSSHDOptions(cfg, opts)
	if bytes.Equal(want, cfg) {
		return false, nil
	}
	fi, err := root.Stat(sshdConfig)
	if err != nil {
		return false, err
	}
	st := fi.Sys().(*syscall.Stat_t)
	return true, root.WriteFileAtomicAs(sshdConfig, want, fi.Mode().Perm(), sys.Owner{UID: int(st.Uid), GID: int(st.Gid)})
}

// setSSHDOptions sets each of opts in the sshd_config cfg as WALinuxAgent
// does (wire-protocol.md §16.5): the first active line for the keyword
// before any Match block is replaced (left alone if it already has the
// value); without one, a line is inserted before the first Match line, or
// appended. Every other byte is kept.
func setSSHDOptions(cfg []byte, opts []sshdOption) []byte {
	lines := splitLines(cfg)
	for _, o := range opts {
		lines = setSSHDOption(lines, o)
	}
	return []byte(strings.Join(lines, ""))
}

func setSSHDOption(lines []string, o sshdOption) []string {
	set := o.Keyword + " " + o.Value
	at := len(lines)
	for i, line := range lines {
		kw, args := sshdLine(line)
		if strings.EqualFold(kw, "Match") {
			at = i
			break
		}
		if sameSSHDKeyword(kw, o.Keyword) {
			if !strings.EqualFold(args, o.Value) {
				lines[i] = set + line[len(strings.TrimRight(line, "\r\n")):]
			}
			return lines
		}
	}
	if at == len(lines) && at > 0 && !strings.HasSuffix(lines[at-1], "\n") {
		lines[at-1] += "\n"
	}
	return append(lines[:at], append([]string{set + "\n"}, lines[at:]...)...)
}

// sshUnit is sshd's systemd unit in the root: Debian's ssh.service, else
// sshd.service; "" when there is neither.
func sshUnit(root *sys.Root) string {
	for _, unit := range []string{"ssh.service", "sshd.service"} {
		for _, dir := range []string{"/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"} {
			if _, err := root.Stat(path.Join(dir, unit)); err == nil {
				return unit
			}
		}
	}
	return ""
}

// splitLines splits b into lines, each keeping its line ending, so that
// joining them gives b back.
func splitLines(b []byte) []string {
	var lines []string
	for s := string(b); s != ""; {
		i := strings.IndexByte(s, '\n') + 1
		if i == 0 {
			i = len(s)
		}
		lines = append(lines, s[:i])
		s = s[i:]
	}
	return lines
}
