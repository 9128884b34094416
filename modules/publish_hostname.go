package modules

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/azinit/azinit/datasource/azure"
	"github.com/azinit/azinit/internal/sys"
)

// PublishHostname makes Azure's DNS learn the VM's host name. The platform
// DHCP server registers the host-name option (12) of the requests it
// receives, so after the host name changed the DHCP client managing the
// primary interface must send a new request; it is asked to without taking
// the link down (WALinuxAgent restarts the interface, which drops every
// connection).
//
// The name published is recorded in /var/lib/waagent/published_hostname,
// the file WALinuxAgent's MonitorHostName compares the host name with;
// a name already recorded is not published again.
//
// The client is found, in this order, by:
//   - systemd-networkd: a lease in /run/systemd/netif/leases/<ifindex>.
//     `networkctl reconfigure <if>` restarts its DHCP client, which then
//     sends the current host name. `networkctl renew` would keep the
//     address but sends the name networkd cached when the client started
//     (systemd issues #23244, #36440, #36792); reconfigure is what Flatcar
//     uses for WALinuxAgent, at the cost of networkd re-adding the DHCP
//     address.
//   - NetworkManager: a lease file <plugin>-<uuid>-<if>.lease in
//     /run/NetworkManager or /var/lib/NetworkManager for a device it
//     manages this boot (/run/NetworkManager/devices/<ifindex>).
//     NetworkManager sends the static host name its DHCP client read when
//     it started, and restarts the client on a reapply only when the ipv4
//     settings changed; `nmcli device modify <if> ipv4.dhcp-hostname
//     <name>` changes them on the active connection only (not the
//     profile), and the client restarts keeping its lease and address.
//   - dhclient: a running `dhclient` naming the interface. ISC dhclient
//     cannot be asked to renew: a second instance runs beside the first,
//     and -x or -r run its script, which removes the address. So its
//     configuration is made to send `host-name = gethostname()` (as
//     WALinuxAgent does), it is started again with its own arguments in
//     the foreground of a transient systemd unit (so it outlives this
//     stage), where it asks for its current lease again, and the old one
//     is stopped with SIGTERM, which ends it without its script.
//
// The primary interface is the one of these with the lowest ifindex:
// Azure attaches the primary NIC first. Interface indexes come from the
// host's sysfs (datasource.azure.sysfs). Offline there is nothing to do.
type PublishHostname struct{}

// Name is "publish-hostname".
func (PublishHostname) Name() string { return "publish-hostname" }

// ErrNoDHCPClient means no DHCP client was found managing an interface.
var ErrNoDHCPClient = errors.New("no DHCP client was found (no systemd-networkd lease, no NetworkManager DHCP device, no running dhclient)")

// publishedHostnameFile is WALinuxAgent's record of the name it published.
const publishedHostnameFile = azure.LibDir + "/published_hostname"

// Apply publishes the host name when it was not published yet.
func (PublishHostname) Apply(ctx context.Context, env *Env) (Outcome, error) {
	if !env.Config.Hostname.Publish {
		env.Log.Debug("publishing the host name is turned off (hostname.publish)")
		return Skipped, nil
	}
	name := env.Data.Hostname()
	if name == "" {
		env.Log.Debug("no host name asked for")
		return Skipped, nil
	}
	if !env.Live {
		env.Log.Debug("offline: no DHCP request to send")
		return Skipped, nil
	}
	short, _, err := parseHostname(name)
	if err != nil {
		return "", err
	}
	published, err := env.Root.ReadFile(publishedHostnameFile)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("reading %s: %w", publishedHostnameFile, err)
	}
	if string(bytes.TrimSpace(published)) == short {
		return Unchanged, nil
	}
	links, err := readLinks(env.Config.Datasource.Azure.Sysfs)
	if err != nil {
		return "", err
	}
	client, ifname, err := publishHostname(ctx, env, links, short)
	if err != nil {
		return "", err
	}
	if err := env.Root.MkdirAll(azure.LibDir, 0o700); err != nil {
		return "", err
	}
	// WALinuxAgent writes the bare name.
	if err := env.Root.WriteFileAtomic(publishedHostnameFile, []byte(short), 0o644); err != nil {
		return "", err
	}
	env.Log.Info("host name published", "hostname", short, "client", client, "interface", ifname)
	return Changed, nil
}

// publishHostname has the DHCP client of the primary interface send name,
// and says which client and interface that was.
func publishHostname(ctx context.Context, env *Env, links links, name string) (client, ifname string, err error) {
	run := func(c sys.Command) error {
		if _, err := env.Run.Run(ctx, c); err != nil {
			return fmt.Errorf("publishing host name %s through %s on %s: %w", name, client, ifname, err)
		}
		return nil
	}
	client = "systemd-networkd"
	if ifname, err = networkdInterface(env, links); err != nil {
		return client, "", err
	}
	if ifname != "" {
		return client, ifname, run(sys.Command{Name: "networkctl", Args: []string{"reconfigure", ifname}})
	}
	client = "NetworkManager"
	if ifname, err = networkManagerInterface(env, links); err != nil {
		return client, "", err
	}
	if ifname != "" {
		return client, ifname, run(sys.Command{Name: "nmcli", Args: []string{"device", "modify", ifname, "ipv4.dhcp-hostname", name}})
	}
	client = "dhclient"
	p, err := dhclientProcess(env, links)
	if err != nil {
		return client, "", err
	}
	if p == nil {
		return "", "", ErrNoDHCPClient
	}
	ifname = p.ifname
	if err := configureDhclient(env, p.configFile()); err != nil {
		return client, ifname, err
	}
	// The new client starts before the old one stops, so a failure leaves
	// the interface with its client.
	restart := append([]string{"--collect", "--quiet", "--", p.argv[0], "-d"}, p.restartArgs(name)...)
	if err := run(sys.Command{Name: "systemd-run", Args: restart}); err != nil {
		return client, ifname, err
	}
	return client, ifname, run(sys.Command{Name: "kill", Args: []string{"-TERM", strconv.Itoa(p.pid)}})
}

// links maps the host's network interfaces to their indexes.
type links map[string]int

// readLinks reads the interfaces from the host's sysfs.
func readLinks(sysfs string) (links, error) {
	dir := filepath.Join(sysfs, "class", "net")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("listing network interfaces: %w", err)
	}
	l := links{}
	for _, e := range entries {
		file := filepath.Join(dir, e.Name(), "ifindex")
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", file, err)
		}
		index, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			return nil, fmt.Errorf("reading %s: %q is not an interface index", file, bytes.TrimSpace(b))
		}
		l[e.Name()] = index
	}
	return l, nil
}

// name is the interface with index i, "" when there is none.
func (l links) name(i int) string {
	for n, index := range l {
		if index == i {
			return n
		}
	}
	return ""
}

// primary is the interface among names with the lowest index, "" when
// none is a known interface.
func (l links) primary(names []string) string {
	best := ""
	for _, n := range names {
		if i, ok := l[n]; ok && (best == "" || i < l[best]) {
			best = n
		}
	}
	return best
}

// networkdLeases holds systemd-networkd's current leases, one file per
// interface index.
const networkdLeases = "/run/systemd/netif/leases"

// networkdInterface is the primary interface systemd-networkd holds a
// DHCP lease for, "" when none.
func networkdInterface(env *Env, links links) (string, error) {
	entries, err := env.Root.ReadDir(networkdLeases)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("listing %s: %w", networkdLeases, err)
	}
	var names []string
	for _, e := range entries {
		if i, err := strconv.Atoi(e.Name()); err == nil {
			names = append(names, links.name(i))
		}
	}
	return links.primary(names), nil
}

// NetworkManager's lease files and the devices it manages this boot.
const (
	nmRunDir     = "/run/NetworkManager"
	nmStateDir   = "/var/lib/NetworkManager"
	nmDevicesDir = nmRunDir + "/devices"
)

// networkManagerInterface is the primary interface NetworkManager manages
// and holds a DHCPv4 lease file for, "" when none.
func networkManagerInterface(env *Env, links links) (string, error) {
	var names []string
	for _, dir := range []string{nmRunDir, nmStateDir} {
		leases, err := env.Root.Glob(dir + "/*.lease")
		if err != nil {
			return "", err
		}
		for _, lease := range leases {
			ifname, ok := nmLeaseInterface(path.Base(lease))
			index, known := links[ifname]
			if !ok || !known {
				continue
			}
			if _, err := env.Root.Stat(path.Join(nmDevicesDir, strconv.Itoa(index))); err == nil {
				names = append(names, ifname)
			}
		}
	}
	return links.primary(names), nil
}

// nmLeaseUUID is the connection UUID in a NetworkManager lease file name.
var nmLeaseUUID = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}-`)

// nmLeaseInterface is the interface of a NetworkManager DHCPv4 lease file
// named <plugin>-<connection uuid>-<interface>.lease (DHCPv6 ones are
// <plugin>6-...).
func nmLeaseInterface(file string) (string, bool) {
	plugin, rest, ok := strings.Cut(strings.TrimSuffix(file, ".lease"), "-")
	if !ok || !strings.HasSuffix(file, ".lease") || strings.HasSuffix(plugin, "6") {
		return "", false
	}
	uuid := nmLeaseUUID.FindString(rest)
	if uuid == "" || len(rest) == len(uuid) {
		return "", false
	}
	return rest[len(uuid):], true
}

// dhclient is a running ISC dhclient.
type dhclient struct {
	pid    int
	argv   []string
	ifname string // the primary interface among those it names
}

// dhclientProcess is the running DHCPv4 dhclient of the primary interface
// among those that name one, nil when none runs.
func dhclientProcess(env *Env, links links) (*dhclient, error) {
	entries, err := env.Root.ReadDir("/proc")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing processes: %w", err)
	}
	var best *dhclient
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		// A process that ended meanwhile has no command line.
		cmdline, err := env.Root.ReadFile(path.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		argv, ifnames := parseDhclientCmdline(cmdline, links)
		ifname := links.primary(ifnames)
		if ifname != "" && (best == nil || links[ifname] < links[best.ifname]) {
			best = &dhclient{pid: pid, argv: argv, ifname: ifname}
		}
	}
	return best, nil
}

// parseDhclientCmdline reads a /proc/<pid>/cmdline: when it runs dhclient
// as a DHCPv4 client (not -6, and not -r or -x, which only stop one), it
// returns the arguments and those that name an interface of links.
func parseDhclientCmdline(b []byte, links links) (argv, ifnames []string) {
	argv = strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
	if path.Base(argv[0]) != "dhclient" {
		return nil, nil
	}
	for _, a := range argv[1:] {
		switch {
		case a == "-6" || a == "-r" || a == "-x":
			return nil, nil
		case links[a] > 0:
			ifnames = append(ifnames, a)
		}
	}
	return argv, ifnames
}

// configFile is the configuration the client reads: its -cf, else
// dhclient's default.
func (d *dhclient) configFile() string {
	if i := slices.Index(d.argv, "-cf"); i > 0 && i+1 < len(d.argv) {
		return d.argv[i+1]
	}
	return ""
}

// restartArgs are the client's arguments, with a host name given by -H
// (RHEL's ifup passes DHCP_HOSTNAME so) replaced by name.
func (d *dhclient) restartArgs(name string) []string {
	args := slices.Clone(d.argv[1:])
	if i := slices.Index(args, "-H"); i >= 0 && i+1 < len(args) {
		args[i+1] = name
	}
	return args
}

// dhclientConfigs are the files WALinuxAgent looks for, in its order, when
// dhclient was not given -cf; the first is dhclient's default.
var dhclientConfigs = []string{"/etc/dhcp/dhclient.conf", "/etc/dhcp3/dhclient.conf", "/etc/dhclient.conf"}

// configureDhclient makes the dhclient configuration file (given, or the
// first of dhclientConfigs that exists, else the first created) send the
// host name.
func configureDhclient(env *Env, file string) error {
	if file == "" {
		file = dhclientConfigs[0]
		for _, f := range dhclientConfigs {
			if _, err := env.Root.Stat(f); err == nil {
				file = f
				break
			}
		}
	}
	mode := fs.FileMode(0o644)
	old, err := env.Root.ReadFile(file)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := env.Root.MkdirAll(path.Dir(file), 0o755); err != nil {
			return err
		}
	case err != nil:
		return fmt.Errorf("reading %s: %w", file, err)
	default:
		fi, err := env.Root.Stat(file)
		if err != nil {
			return err
		}
		mode = fi.Mode().Perm()
	}
	updated, changed := dhclientSendsHostname(old)
	if !changed {
		return nil
	}
	return env.Root.WriteFileAtomic(file, updated, mode)
}

// sendHostname has dhclient send the kernel's host name when it starts.
const sendHostname = "send host-name = gethostname();"

// sendHostnameLine matches an active host-name statement.
var sendHostnameLine = regexp.MustCompile(`^\s*send\s+host-name\b`)

// dhclientSendsHostname returns the dhclient.conf(5) b sending the
// kernel's host name, and whether that changed b: every active send
// host-name statement naming another (a fixed name, the image's) becomes
// sendHostname, keeping its indentation, and without one sendHostname is
// appended. Other lines are kept byte for byte.
func dhclientSendsHostname(b []byte) ([]byte, bool) {
	lines := strings.SplitAfter(string(b), "\n")
	found, changed := false, false
	for i, line := range lines {
		if !sendHostnameLine.MatchString(line) {
			continue
		}
		found = true
		if strings.Join(strings.Fields(line), " ") == sendHostname {
			continue
		}
		indent := line[:len(line)-len(strings.TrimLeft(line, " \t"))]
		lines[i] = indent + sendHostname + "\n"
		changed = true
	}
	s := strings.Join(lines, "")
	if !found {
		if s != "" && !strings.HasSuffix(s, "\n") {
			s += "\n"
		}
		s += sendHostname + "\n"
		changed = true
	}
	return []byte(s), changed
}
