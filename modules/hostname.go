package modules

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"slices"
	"strings"
)

// Hostname gives the VM the host name the platform asks for
// (Data.Hostname: the OVF's, else IMDS computerName). It runs in the local
// stage, before networking, so that the first DHCP request already carries
// the name Azure's DNS registers.
//
// A dotted name is an FQDN whose first label is the host name.
// /etc/hostname gets the host name; /etc/hosts gets Debian's
// "127.0.1.1 <fqdn> <name>" line unless a loopback line already names the
// host; the running kernel gets the host name when live.
type Hostname struct{}

// Name is "hostname".
func (Hostname) Name() string { return "hostname" }

// ErrBadHostname is a host name that is not an RFC 1123 name.
var ErrBadHostname = errors.New("bad host name")

const (
	hostnameFile = "/etc/hostname"
	hostsFile    = "/etc/hosts"
)

// hostsAddr is the address Debian maps the host's own names to.
var hostsAddr = netip.MustParseAddr("127.0.1.1")

// Apply reconciles the host name.
func (Hostname) Apply(ctx context.Context, env *Env) (Outcome, error) {
	name := env.Data.Hostname()
	if name == "" {
		env.Log.Debug("no host name asked for")
		return Skipped, nil
	}
	short, fqdn, err := parseHostname(name)
	if err != nil {
		return "", err
	}
	changed, err := env.Root.UpdateFile(hostnameFile, []byte(short+"\n"), 0o644, nil)
	if err != nil {
		return "", err
	}
	names := []string{short}
	if fqdn != "" {
		names = []string{fqdn, short}
	}
	hostsChanged, err := updateHosts(env, names)
	if err != nil {
		return "", err
	}
	changed = changed || hostsChanged
	if !env.Live {
		env.Log.Debug("offline: the running kernel's host name is left alone", "hostname", short)
	} else {
		current, err := os.Hostname()
		if err != nil {
			return "", fmt.Errorf("reading the kernel's host name: %w", err)
		}
		if current != short {
			if err := env.Kernel.SetHostname(short); err != nil {
				return "", err
			}
			changed = true
		}
	}
	if !changed {
		return Unchanged, nil
	}
	env.Log.Info("host name set", "hostname", short, "fqdn", fqdn)
	return Changed, nil
}

// parseHostname checks that name is an RFC 1123 host name (labels of 1 to
// 63 letters, digits and inner hyphens; 253 characters in all; one
// trailing dot allowed) and splits it into the host name, its first label,
// and the FQDN, "" when name is a single label.
func parseHostname(name string) (short, fqdn string, err error) {
	n := strings.TrimSuffix(name, ".")
	if n == "" || len(n) > 253 {
		return "", "", fmt.Errorf("%w %q: want 1 to 253 characters", ErrBadHostname, name)
	}
	labels := strings.Split(n, ".")
	for _, l := range labels {
		if err := checkLabel(l); err != nil {
			return "", "", fmt.Errorf("%w %q: %v", ErrBadHostname, name, err)
		}
	}
	if len(labels) == 1 {
		return n, "", nil
	}
	return labels[0], n, nil
}

func checkLabel(l string) error {
	if l == "" || len(l) > 63 {
		return fmt.Errorf("label %q: want 1 to 63 characters", l)
	}
	if l[0] == '-' || l[len(l)-1] == '-' {
		return fmt.Errorf("label %q starts or ends with a hyphen", l)
	}
	for _, c := range []byte(l) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return fmt.Errorf("label %q: %q is not a letter, digit or hyphen", l, c)
		}
	}
	return nil
}

// updateHosts makes /etc/hosts map names to 127.0.1.1, keeping its mode.
func updateHosts(env *Env, names []string) (bool, error) {
	mode := fs.FileMode(0o644)
	old, err := env.Root.ReadFile(hostsFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return false, fmt.Errorf("reading %s: %w", hostsFile, err)
	default:
		fi, err := env.Root.Stat(hostsFile)
		if err != nil {
			return false, err
		}
		mode = fi.Mode().Perm()
	}
	updated, changed := hostsWithNames(old, names)
	if !changed {
		return false, nil
	}
	return true, env.Root.WriteFileAtomic(hostsFile, updated, mode)
}

// hostsWithNames returns the hosts(5) file b with a line mapping names to
// 127.0.1.1, and whether that changed b. A line already listing every
// name, on 127.0.1.1 or another loopback address, leaves b as it is.
// Otherwise the first 127.0.1.1 line, which names another host (the
// image's), becomes the new line, later ones are dropped, and without one
// the line is appended. Every other line is kept byte for byte.
func hostsWithNames(b []byte, names []string) ([]byte, bool) {
	lines := strings.SplitAfter(string(b), "\n")
	var stale []int // 127.0.1.1 lines that do not name the host
	for i, line := range lines {
		addr, hosts := hostsEntry(line)
		if !addr.IsValid() {
			continue
		}
		covered := !slices.ContainsFunc(names, func(n string) bool {
			return !slices.ContainsFunc(hosts, func(h string) bool { return strings.EqualFold(h, n) })
		})
		switch {
		case covered && addr.IsLoopback():
			return b, false
		case addr == hostsAddr:
			stale = append(stale, i)
		}
	}
	entry := hostsAddr.String() + "\t" + strings.Join(names, " ") + "\n"
	if len(stale) == 0 {
		s := string(b)
		if s != "" && !strings.HasSuffix(s, "\n") {
			s += "\n"
		}
		return []byte(s + entry), true
	}
	var out strings.Builder
	for i, line := range lines {
		switch {
		case i == stale[0]:
			out.WriteString(entry)
		case !slices.Contains(stale, i):
			out.WriteString(line)
		}
	}
	return []byte(out.String()), true
}

// hostsEntry parses one hosts(5) line: an address and its names. A
// comment, a blank line or a line without a valid address has none.
func hostsEntry(line string) (netip.Addr, []string) {
	if i := strings.IndexByte(line, '#'); i >= 0 {
		line = line[:i]
	}
	f := strings.Fields(line)
	if len(f) < 2 {
		return netip.Addr{}, nil
	}
	addr, err := netip.ParseAddr(f[0])
	if err != nil {
		return netip.Addr{}, nil
	}
	return addr.Unmap(), f[1:]
}
