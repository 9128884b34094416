package wireserver

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/azinit/azinit/internal/sys"
)

// DefaultEndpoint is the WireServer's well-known address, used when no
// DHCP lease names one (option 245).
const DefaultEndpoint = "168.63.129.16"

// leaseFiles are where DHCP clients keep leases, in the order they are
// searched (wire-protocol.md §2): systemd-networkd, then dhclient as laid
// out by Debian/Ubuntu, Red Hat, and NetworkManager, then dhcpcd, which
// keeps the server's reply as it arrived.
var leaseFiles = []struct {
	pattern string
	parse   func(b []byte, now time.Time) (netip.Addr, bool, error)
}{
	{"/run/systemd/netif/leases/*", func(b []byte, _ time.Time) (netip.Addr, bool, error) { return ParseNetworkdLease(b) }},
	{"/var/lib/dhcp/dhclient*.leases", ParseDhclientLeases},
	{"/var/lib/dhclient/dhclient-*.leases", ParseDhclientLeases},
	{"/var/lib/dhclient/dhclient-*.lease", ParseDhclientLeases},
	{"/var/lib/NetworkManager/dhclient-*.lease", ParseDhclientLeases},
	{"/var/lib/dhcpcd/*.lease", func(b []byte, _ time.Time) (netip.Addr, bool, error) { return ParseDHCPMessage(b) }},
}

// DiscoverEndpoint finds the WireServer address in the DHCP leases under
// root: the first lease file (in the order above, then by name) carrying
// option 245 in a lease still valid at now. source is that file's path, or
// "default" with DefaultEndpoint when no lease names one. A lease file that
// cannot be read or parsed is an error naming it; callers may log it and
// fall back to DefaultEndpoint.
func DiscoverEndpoint(root *sys.Root, now time.Time) (addr string, source string, err error) {
	for _, lf := range leaseFiles {
		names, err := root.Glob(lf.pattern)
		if err != nil {
			return "", "", err
		}
		for _, name := range names {
			b, err := root.ReadFile(name)
			if errors.Is(err, fs.ErrNotExist) {
				continue // removed since the glob
			}
			if err != nil {
				return "", "", fmt.Errorf("reading lease %s: %w", name, err)
			}
			a, ok, err := lf.parse(b, now)
			if err != nil {
				return "", "", fmt.Errorf("lease %s: %w", name, err)
			}
			if ok {
				return a.String(), name, nil
			}
		}
	}
	return DefaultEndpoint, "default", nil
}

// ParseNetworkdLease reads the WireServer address from a systemd-networkd
// lease file (/run/systemd/netif/leases/<ifindex>): the line
// OPTION_245=a83f8110 holds it as 8 hex digits. ok is false when the lease
// has no such line; a malformed one is an error naming its line.
func ParseNetworkdLease(b []byte) (addr netip.Addr, ok bool, err error) {
	n := 0
	for line := range bytes.Lines(b) {
		n++
		key, value, found := strings.Cut(strings.TrimSpace(string(line)), "=")
		if !found || key != "OPTION_245" {
			continue
		}
		raw, err := hex.DecodeString(value)
		if err != nil || len(raw) != 4 {
			return netip.Addr{}, false, fmt.Errorf("line %d: OPTION_245=%q: want 8 hex digits (an IPv4 address)", n, value)
		}
		addr, ok = netip.AddrFrom4([4]byte(raw)), true
	}
	return addr, ok, nil
}

// dhclientTime is how dhclient writes lease times (UTC) after the weekday.
const dhclientTime = "2006/01/02 15:04:05"

// ParseDhclientLeases reads the WireServer address from a dhclient lease
// file: "option unknown-245 a8:3f:81:10;" inside a "lease { ... }" block
// whose "expire" is "never" or after now. The last such block wins, since
// dhclient appends newer leases. A block without an expire line is not
// trusted. ok is false when no valid block has the option; a malformed
// option or expire line is an error naming its line.
func ParseDhclientLeases(b []byte, now time.Time) (addr netip.Addr, ok bool, err error) {
	var (
		depth   int
		inLease bool       // inside a top-level "lease {" block
		found   netip.Addr // option 245 of the current block
		valid   bool       // the current block has not expired
	)
	n := 0
	for raw := range bytes.Lines(b) {
		n++
		line := strings.TrimSpace(string(raw))
		f := strings.Fields(line)
		// The keyword may touch the ';' when the statement is malformed.
		keyword := ""
		if len(f) > 0 {
			keyword = strings.TrimSuffix(f[0], ";")
		}
		switch {
		case len(f) == 0:
		case strings.HasSuffix(line, "{"):
			if depth == 0 && f[0] == "lease" {
				inLease, found, valid = true, netip.Addr{}, false
			}
			depth++
		case line == "}":
			if depth == 0 {
				return netip.Addr{}, false, fmt.Errorf("line %d: unbalanced }", n)
			}
			if depth--; depth == 0 && inLease {
				if valid && found.IsValid() {
					addr, ok = found, true
				}
				inLease = false
			}
		case !inLease || depth != 1:
			// Statements outside a lease block, or in a nested one, are not ours.
		case keyword == "option" && len(f) > 1 && strings.TrimSuffix(f[1], ";") == "unknown-245":
			if found, err = parseOption245(f[2:]); err != nil {
				return netip.Addr{}, false, fmt.Errorf("line %d: %q: %w", n, line, err)
			}
		case keyword == "expire":
			if valid, err = parseExpire(f[1:], now); err != nil {
				return netip.Addr{}, false, fmt.Errorf("line %d: %q: %w", n, line, err)
			}
		}
	}
	return addr, ok, nil
}

// parseOption245 parses the value of "option unknown-245 a8:3f:81:10;":
// four colon-separated bytes of one or two hex digits (dhclient drops
// leading zeros: 7f:0:0:1).
func parseOption245(f []string) (netip.Addr, error) {
	if len(f) != 1 || !strings.HasSuffix(f[0], ";") {
		return netip.Addr{}, errors.New("want four hex bytes and ';'")
	}
	parts := strings.Split(strings.TrimSuffix(f[0], ";"), ":")
	if len(parts) != 4 {
		return netip.Addr{}, errors.New("want four hex bytes")
	}
	var ip [4]byte
	for i, p := range parts {
		v, err := strconv.ParseUint(p, 16, 8)
		if err != nil || len(p) > 2 {
			return netip.Addr{}, fmt.Errorf("byte %q: want 1 or 2 hex digits", p)
		}
		ip[i] = byte(v)
	}
	return netip.AddrFrom4(ip), nil
}

// parseExpire reports whether a lease whose expire statement has the
// fields f (after "expire") is still valid at now. dhclient writes
// "expire 0 2152/07/23 23:27:10;" (weekday, UTC date and time),
// "expire never;" (also seen as "expire 0 never;"), or, with
// "db-time-format local", "expire epoch 1436979534; # <local time>".
func parseExpire(f []string, now time.Time) (bool, error) {
	if i := slices.IndexFunc(f, func(s string) bool { return strings.HasPrefix(s, "#") }); i >= 0 {
		f = f[:i]
	}
	if len(f) > 0 {
		last, ok := strings.CutSuffix(f[len(f)-1], ";")
		if !ok {
			return false, errors.New("want ';' at the end")
		}
		f[len(f)-1] = last
	}
	switch {
	case len(f) == 1 && f[0] == "never", len(f) == 2 && f[1] == "never":
		return true, nil
	case len(f) == 2 && f[0] == "epoch":
		secs, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			return false, fmt.Errorf("epoch %q: want seconds since 1970", f[1])
		}
		return time.Unix(secs, 0).After(now), nil
	case len(f) == 3:
		t, err := time.Parse(dhclientTime, f[1]+" "+f[2])
		if err != nil {
			return false, fmt.Errorf("want <weekday> YYYY/MM/DD HH:MM:SS: %w", err)
		}
		return t.After(now), nil
	}
	return false, errors.New("want <weekday> YYYY/MM/DD HH:MM:SS, never, or epoch <seconds>")
}

// DHCP message layout (RFC 2131): a 236-byte fixed header, the magic
// cookie, then options as code, length, value; 0 pads, 255 ends.
const (
	dhcpCookieOffset  = 236
	dhcpOptionsOffset = 240
	dhcpOptionPad     = 0
	dhcpOptionEnd     = 255
	dhcpOptionWire    = 245 // Azure's wireserver address
)

var dhcpCookie = []byte{0x63, 0x82, 0x53, 0x63}

// ParseDHCPMessage reads the WireServer address from a raw DHCP message,
// the form dhcpcd keeps its leases in: option 245, four bytes. ok is false
// when the message has no such option; a message that is not DHCP or whose
// options run past its end is an error naming the offset.
func ParseDHCPMessage(b []byte) (addr netip.Addr, ok bool, err error) {
	if len(b) < dhcpOptionsOffset || !bytes.Equal(b[dhcpCookieOffset:dhcpOptionsOffset], dhcpCookie) {
		return netip.Addr{}, false, fmt.Errorf("not a DHCP message (%d bytes, no magic cookie at offset %d)", len(b), dhcpCookieOffset)
	}
	for i := dhcpOptionsOffset; i < len(b); {
		code := b[i]
		switch code {
		case dhcpOptionEnd:
			return addr, ok, nil
		case dhcpOptionPad:
			i++
			continue
		}
		if i+1 >= len(b) || i+2+int(b[i+1]) > len(b) {
			return netip.Addr{}, false, fmt.Errorf("DHCP option %d at offset %d runs past the end of the message", code, i)
		}
		value := b[i+2 : i+2+int(b[i+1])]
		if code == dhcpOptionWire {
			if len(value) != 4 {
				return netip.Addr{}, false, fmt.Errorf("DHCP option 245 at offset %d is %d bytes, want an IPv4 address", i, len(value))
			}
			addr, ok = netip.AddrFrom4([4]byte(value)), true
		}
		i += 2 + len(value)
	}
	return addr, ok, nil
}
