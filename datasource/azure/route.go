package azure

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/azinit/azinit/internal/httpx"
)

// RouteFile is the kernel's IPv4 routing table (the main table).
const RouteFile = "/proc/net/route"

// rtfUp is RTF_UP in a route's flags: the route is usable.
const rtfUp = 0x1

// HasRoute reports whether table, the text of /proc/net/route, has a
// usable route to addr. The kernel prints each address and mask as the
// 32-bit word in host byte order: little-endian on the architectures
// azinit is built for.
func HasRoute(table []byte, addr netip.Addr) (bool, error) {
	if !addr.Is4() {
		return false, fmt.Errorf("routes: %s is not an IPv4 address", addr)
	}
	want := binary.LittleEndian.Uint32(addr.AsSlice())
	s := bufio.NewScanner(bytes.NewReader(table))
	for line := 1; s.Scan(); line++ {
		f := strings.Fields(s.Text())
		if line == 1 || len(f) == 0 { // the header
			continue
		}
		if len(f) < 8 {
			return false, fmt.Errorf("routes: line %d: %d fields, want 11", line, len(f))
		}
		dest, err1 := hexWord(f[1])
		flags, err2 := strconv.ParseUint(f[3], 16, 16)
		mask, err3 := hexWord(f[7])
		if err := errors.Join(err1, err2, err3); err != nil {
			return false, fmt.Errorf("routes: line %d: %w", line, err)
		}
		if flags&rtfUp != 0 && want&mask == dest&mask {
			return true, nil
		}
	}
	return false, s.Err()
}

// hexWord parses one 8-digit hex word of the routing table into the
// bytes' little-endian value, as HasRoute compares them.
func hexWord(s string) (uint32, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 4 {
		return 0, fmt.Errorf("%q is not an 8-digit hex word", s)
	}
	// The text is the word's value; its bytes in memory are the address.
	return binary.BigEndian.Uint32(b), nil
}

// waitForRoute waits, up to the configured network_wait, until the kernel
// can route to the platform (the IMDS address; the wireserver is reached
// the same way), so the network stage can start as soon as DHCP gave the
// primary NIC its address rather than when every link is configured. A
// loopback platform (tests, the offline fabric) needs no wait. It returns
// an error when the time ran out, and the fetches then say what failed.
func waitForRoute(ctx context.Context, o Options) error {
	limit := time.Duration(o.Config.NetworkWait)
	u, err := url.Parse(o.Config.IMDS)
	if err != nil || limit == 0 {
		return nil
	}
	addr, err := netip.ParseAddr(u.Hostname())
	if err != nil || addr.IsLoopback() || !addr.Is4() {
		return nil
	}
	routes := o.RouteFile
	if routes == "" {
		routes = RouteFile
	}
	const poll = 20 * time.Millisecond
	for waited := time.Duration(0); ; waited += poll {
		table, err := os.ReadFile(routes)
		if err != nil {
			return fmt.Errorf("waiting for a route to %s: %w", addr, err)
		}
		ok, err := HasRoute(table, addr)
		switch {
		case err != nil:
			return fmt.Errorf("waiting for a route to %s: %s: %w", addr, routes, err)
		case ok:
			return nil
		case waited >= limit:
			return fmt.Errorf("no route to %s within %v", addr, limit)
		}
		if err := httpx.Sleep(ctx, poll); err != nil {
			return err
		}
	}
}
