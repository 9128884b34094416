package modules

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/azinit/azinit/internal/sys"
)

// Users creates the admin user the platform asks for (Data.Username) with
// shadow-utils, gives it the password hash, adds it to the configured
// groups that exist, and lets it use sudo through /etc/sudoers.d/waagent,
// the file WALinuxAgent writes, where VMAccess and admins look for it.
//
// The platform's hash is salted afresh each boot, so it never equals the
// one in /etc/shadow and cannot say whether the password changed. The
// password is therefore set when the user is created, and on an existing
// user once per instance: the first run records it in the instance
// directory (passwordSetFile), and a later run leaves the password alone
// whatever /etc/shadow holds. So an image captured with the user in it
// gets the new instance's password, and a rerun changes nothing.
type Users struct{}

// Name is "users".
func (Users) Name() string { return "users" }

// ErrBadUsername is a user name the module refuses to create or change.
var ErrBadUsername = errors.New("bad user name")

const (
	sudoersMain = "/etc/sudoers"
	sudoersDir  = "/etc/sudoers.d"
	// sudoersFile is WALinuxAgent's drop-in.
	sudoersFile = "/etc/sudoers.d/waagent"
	// sudoersInclude is the include every sudo version reads (the "@"
	// spelling needs sudo 1.9.1).
	sudoersInclude = "#includedir " + sudoersDir
	// passwordSetFile, in the instance directory, names the user whose
	// password this instance has set.
	passwordSetFile = "password-set"
	// maxUsernameLen is shadow-utils' limit (utmp's ut_user).
	maxUsernameLen = 32
)

// Apply reconciles the admin user.
func (Users) Apply(ctx context.Context, env *Env) (Outcome, error) {
	name := env.Data.Username()
	if name == "" {
		env.Log.Debug("no admin user asked for")
		return Skipped, nil
	}
	if err := checkUsername(name); err != nil {
		return "", err
	}
	acct, err := LookupUser(env.Root, name)
	exists := err == nil
	if err != nil && !errors.Is(err, ErrNoUser) {
		return "", err
	}
	if exists && !env.Config.Users.AllowResetSystemUser {
		if err := checkNotSystem(env.Root, acct); err != nil {
			return "", err
		}
	}
	hash, err := passwordHash(env)
	if err != nil {
		return "", fmt.Errorf("user %q: %w", name, err)
	}
	setPassword := hash != ""
	if setPassword && exists {
		if setPassword, err = passwordNotSet(env, name); err != nil {
			return "", fmt.Errorf("user %q: %w", name, err)
		}
	}
	groups, err := groupsToJoin(env, acct, exists)
	if err != nil {
		return "", fmt.Errorf("user %q: %w", name, err)
	}

	changed := false
	if !exists || setPassword || len(groups) > 0 {
		pw := ""
		if setPassword {
			pw = hash
		}
		if _, err := env.Run.Run(ctx, accountCommand(env, name, exists, groups, pw)); err != nil {
			return "", fmt.Errorf("user %q: %w", name, err)
		}
		env.Log.Info("user updated", "user", name, "created", !exists, "groups", groups, "password_set", setPassword)
		changed = true
	}
	if setPassword {
		if err := env.Root.WriteFileAtomic(path.Join(env.Instance.Dir, passwordSetFile), []byte(name+"\n"), 0o600); err != nil {
			return "", fmt.Errorf("user %q: recording the password as set: %w", name, err)
		}
	}
	sudoChanged, err := grantSudo(env, name, hash != "")
	if err != nil {
		return "", fmt.Errorf("user %q: %w", name, err)
	}
	if changed || sudoChanged {
		return Changed, nil
	}
	return Unchanged, nil
}

// checkUsername applies shadow-utils' rules to a non-empty user name:
// [a-z_] then [a-z0-9_-], an optional final $, at most 32 characters; and
// refuses root, even to users.allow_reset_system_user.
func checkUsername(name string) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w %.64q: %s", ErrBadUsername, name, fmt.Sprintf(format, a...))
	}
	switch {
	case len(name) > maxUsernameLen:
		return bad("%d characters, at most %d are allowed", len(name), maxUsernameLen)
	case name == "root":
		return bad("root is reserved")
	}
	for i, c := range name {
		switch {
		case c >= 'a' && c <= 'z', c == '_':
		case i == 0:
			return bad("it must start with a lower-case letter or _")
		case c >= '0' && c <= '9', c == '-':
		case c == '$' && i == len(name)-1:
		default:
			return bad("character %q at position %d: only a-z, 0-9, _, - and a final $ are allowed", c, i+1)
		}
	}
	return nil
}

// checkNotSystem refuses a system account: a uid outside the target root's
// UID_MIN..UID_MAX (system accounts below, nobody and the reserved ranges
// above).
func checkNotSystem(root *sys.Root, acct Account) error {
	b, err := root.ReadFile("/etc/login.defs")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("reading /etc/login.defs: %w", err)
	}
	lo, hi, err := uidRange(b)
	if err != nil {
		return fmt.Errorf("/etc/login.defs: %w", err)
	}
	if acct.UID < lo || acct.UID > hi {
		return fmt.Errorf("%w %q: it is a system account (uid %d, outside UID_MIN %d to UID_MAX %d); users.allow_reset_system_user allows it",
			ErrBadUsername, acct.Name, acct.UID, lo, hi)
	}
	return nil
}

// uidRange is UID_MIN and UID_MAX from a login.defs(5), shadow-utils'
// defaults when unset.
func uidRange(b []byte) (lo, hi int, err error) {
	lo, hi = 1000, 60000
	n := 0
	for l := range strings.Lines(string(b)) {
		n++
		f := strings.Fields(l)
		if len(f) < 2 || (f[0] != "UID_MIN" && f[0] != "UID_MAX") {
			continue
		}
		// shadow-utils reads numbers as strtol(3) with base 0 does.
		v, err := strconv.ParseUint(f[1], 0, 31)
		if err != nil {
			return 0, 0, fmt.Errorf("line %d: %s %q is not a uid", n, f[0], f[1])
		}
		if f[0] == "UID_MIN" {
			lo = int(v)
		} else {
			hi = int(v)
		}
	}
	return lo, hi, nil
}

// passwordHash is the hash to set, "" when the platform gave no password.
// A password without a usable hash is an error: passing "" to useradd -p
// would allow logging in without one. So is having no instance directory
// to record it in.
func passwordHash(env *Env) (string, error) {
	if !env.Data.HasPassword() {
		return "", nil
	}
	h := env.Data.PasswordHash
	if !strings.HasPrefix(h, "$") || strings.ContainsAny(h, ":\n") {
		return "", errors.New("the admin password has no crypt(3) hash")
	}
	if env.Instance.Dir == "" {
		return "", errors.New("no instance directory to record the admin password in")
	}
	return h, nil
}

// passwordNotSet reports whether this instance has not yet set name's
// password.
func passwordNotSet(env *Env, name string) (bool, error) {
	b, err := env.Root.ReadFile(path.Join(env.Instance.Dir, passwordSetFile))
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return strings.TrimSpace(string(b)) != name, nil
}

// groupsToJoin are the configured groups that exist in the target root's
// /etc/group and that acct, when it exists, is not yet in.
func groupsToJoin(env *Env, acct Account, exists bool) ([]string, error) {
	if len(env.Config.Users.Groups) == 0 {
		return nil, nil
	}
	b, err := env.Root.ReadFile("/etc/group")
	if err != nil {
		return nil, fmt.Errorf("reading /etc/group: %w", err)
	}
	have := parseGroups(b)
	var join []string
	for _, name := range env.Config.Users.Groups {
		g, ok := have[name]
		switch {
		case !ok:
			env.Log.Debug("group does not exist; not joined", "group", name)
		case exists && (g.gid == strconv.Itoa(acct.GID) || slices.Contains(g.members, acct.Name)):
		case !slices.Contains(join, name):
			join = append(join, name)
		}
	}
	return join, nil
}

// group is an /etc/group entry.
type group struct {
	gid     string
	members []string
}

// parseGroups reads group(5) entries by name; malformed lines are skipped
// as the C library skips them.
func parseGroups(b []byte) map[string]group {
	groups := map[string]group{}
	for l := range strings.Lines(string(b)) {
		f := strings.Split(strings.TrimSuffix(l, "\n"), ":")
		if len(f) != 4 || f[0] == "" {
			continue
		}
		var members []string
		if f[3] != "" {
			members = strings.Split(f[3], ",")
		}
		groups[f[0]] = group{gid: f[2], members: members}
	}
	return groups
}

// accountCommand is useradd for a new user, usermod for an existing one,
// joining groups and setting the password hash (secret) unless "": one
// process either way, since each costs tens of milliseconds.
func accountCommand(env *Env, name string, exists bool, groups []string, hash string) sys.Command {
	c := sys.Command{Name: "useradd", Args: []string{"--prefix", env.Root.Dir()}}
	if exists {
		c.Name = "usermod"
		if len(groups) > 0 {
			c.Args = append(c.Args, "-a")
		}
	} else {
		cfg := env.Config.Users
		c.Args = append(c.Args, "-m", "-s", cfg.Shell, "-d", path.Join(cfg.HomeDir, name))
	}
	if len(groups) > 0 {
		c.Args = append(c.Args, "-G", strings.Join(groups, ","))
	}
	if hash != "" {
		c.Secret = []int{len(c.Args) + 1}
		c.Args = append(c.Args, "-p", hash)
	}
	c.Args = append(c.Args, name)
	return c
}

// grantSudo writes name's line in the sudoers drop-in, keeping the other
// lines, and makes sure /etc/sudoers reads the drop-in directory.
func grantSudo(env *Env, name string, password bool) (bool, error) {
	created := false
	if _, err := env.Root.Stat(sudoersDir); errors.Is(err, fs.ErrNotExist) {
		// MkdirAll honours the umask; sudo wants the directory 0750.
		if err := env.Root.MkdirAll(sudoersDir, 0o750); err != nil {
			return false, fmt.Errorf("creating %s: %w", sudoersDir, err)
		}
		if err := env.Root.Chmod(sudoersDir, 0o750); err != nil {
			return false, fmt.Errorf("creating %s: %w", sudoersDir, err)
		}
		created = true
	} else if err != nil {
		return false, err
	}
	included, err := includeSudoersDir(env)
	if err != nil {
		return false, err
	}
	have, err := env.Root.ReadFile(sudoersFile)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("reading %s: %w", sudoersFile, err)
	}
	updated, err := env.Root.UpdateFile(sudoersFile, sudoersWith(have, name, password), 0o440, nil)
	if err != nil {
		return false, err
	}
	if updated {
		env.Log.Info("sudo granted", "user", name, "file", sudoersFile, "password", password)
	}
	return created || included || updated, nil
}

// sudoersWith is the drop-in b with name's line as asked: the first line
// for name replaced, later ones dropped, every other line kept in order;
// appended when b has none.
func sudoersWith(b []byte, name string, password bool) []byte {
	line := name + " ALL=(ALL) NOPASSWD: ALL"
	if password {
		line = name + " ALL=(ALL) ALL"
	}
	var out []string
	placed := false
	for l := range strings.Lines(string(b)) {
		l = strings.TrimSuffix(l, "\n")
		if f := strings.Fields(l); len(f) > 0 && f[0] == name {
			if placed {
				continue
			}
			l, placed = line, true
		}
		out = append(out, l)
	}
	if !placed {
		out = append(out, line)
	}
	return []byte(strings.Join(out, "\n") + "\n")
}

// includeSudoersDir appends the include line to /etc/sudoers when it does
// not read /etc/sudoers.d. Without /etc/sudoers (no sudo) it does nothing:
// the sudo package brings one that includes the directory.
func includeSudoersDir(env *Env) (bool, error) {
	b, err := env.Root.ReadFile(sudoersMain)
	if errors.Is(err, fs.ErrNotExist) {
		env.Log.Debug("no /etc/sudoers; include line not added")
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading %s: %w", sudoersMain, err)
	}
	if includesSudoersDir(b) {
		return false, nil
	}
	fi, err := env.Root.Stat(sudoersMain)
	if err != nil {
		return false, err
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		b = append(b, '\n')
	}
	b = append(b, sudoersInclude+"\n"...)
	if err := env.Root.WriteFileAtomic(sudoersMain, b, fi.Mode().Perm()); err != nil {
		return false, err
	}
	env.Log.Info("sudoers includes the drop-in directory", "file", sudoersMain, "line", sudoersInclude)
	return true, nil
}

// includesSudoersDir reports whether a sudoers file has an include line
// for /etc/sudoers.d, in either spelling.
func includesSudoersDir(b []byte) bool {
	for l := range strings.Lines(string(b)) {
		f := strings.Fields(l)
		if len(f) == 2 && (f[0] == "#includedir" || f[0] == "@includedir") && path.Clean(f[1]) == sudoersDir {
			return true
		}
	}
	return false
}
