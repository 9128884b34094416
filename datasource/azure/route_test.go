package azure

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/azinit/azinit/internal/config"
)

// routeTable is /proc/net/route of a VM whose DHCP lease on ens4 gave
// 168.0.0.15/7 with gateway 168.0.0.2, as QEMU's user network does.
const routeTable = `Iface	Destination	Gateway 	Flags	RefCnt	Use	Metric	Mask		MTU	Window	IRTT
ens4	00000000	020000A8	0003	0	0	1024	00000000	0	0	0
ens4	000000A8	00000000	0001	0	0	1024	000000FE	0	0	0
ens4	020000A8	00000000	0005	0	0	1024	FFFFFFFF	0	0	0
`

func TestHasRoute(t *testing.T) {
	header, _, _ := strings.Cut(routeTable, "\n")
	link, _, _ := strings.Cut(strings.SplitN(routeTable, "\n", 3)[2], "\n") // 168.0.0.0/7 only
	down := strings.Replace(routeTable, "0003", "0002", 1)                  // the default route not up
	for _, tt := range []struct {
		name, table, addr string
		want              bool
		err               string
	}{
		{"default route", routeTable, "169.254.169.254", true, ""},
		{"the wireserver by the default route", routeTable, "168.63.129.16", true, ""},
		{"no routes yet", header + "\n", "169.254.169.254", false, ""},
		{"empty", "", "169.254.169.254", false, ""},
		{"link route covers it", header + "\n" + link + "\n", "169.254.169.254", true, ""},
		{"link route does not cover it", header + "\n" + link + "\n", "10.0.0.1", false, ""},
		{"a route not up", down, "10.0.0.1", false, ""},
		{"short line", header + "\nens4 00000000 0\n", "10.0.0.1", false, "line 2: 3 fields"},
		{"bad word", header + "\nens4 0000000Z 020000A8 0003 0 0 0 00000000 0 0 0\n", "10.0.0.1", false, `"0000000Z" is not an 8-digit hex word`},
		{"IPv6", routeTable, "::1", false, "not an IPv4 address"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := HasRoute([]byte(tt.table), netip.MustParseAddr(tt.addr))
			if got != tt.want || (err == nil) != (tt.err == "") || (err != nil && !strings.Contains(err.Error(), tt.err)) {
				t.Errorf("HasRoute = %v, %v; want %v, %q", got, err, tt.want, tt.err)
			}
		})
	}
}

func FuzzHasRoute(f *testing.F) {
	f.Add([]byte(routeTable))
	f.Add([]byte("Iface\nens4 00000000 00000000 0001 0 0 0 00000000\n"))
	f.Fuzz(func(t *testing.T, table []byte) {
		HasRoute(table, netip.MustParseAddr("169.254.169.254"))
	})
}

func TestWaitForRoute(t *testing.T) {
	dir := t.TempDir()
	routes := filepath.Join(dir, "route")
	if err := os.WriteFile(routes, []byte(routeTable), 0o644); err != nil {
		t.Fatal(err)
	}
	none := filepath.Join(dir, "none")
	if err := os.WriteFile(none, []byte("Iface\tDestination\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default().Datasource.Azure
	for _, tt := range []struct {
		name, imds, routes string
		wait               time.Duration
		err                string
	}{
		{"routed", cfg.IMDS, routes, time.Minute, ""},
		{"loopback platform: no wait", "http://127.0.0.1:8080", filepath.Join(dir, "missing"), time.Minute, ""},
		{"waiting turned off", cfg.IMDS, filepath.Join(dir, "missing"), 0, ""},
		{"no route in time", cfg.IMDS, none, time.Nanosecond, "no route to 169.254.169.254 within 1ns"},
		{"unreadable table", cfg.IMDS, filepath.Join(dir, "missing"), time.Minute, "no such file"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o := Options{Config: cfg, RouteFile: tt.routes}
			o.Config.IMDS, o.Config.NetworkWait = tt.imds, config.Duration(tt.wait)
			err := waitForRoute(t.Context(), o)
			if (err == nil) != (tt.err == "") || (err != nil && !strings.Contains(err.Error(), tt.err)) {
				t.Errorf("waitForRoute = %v, want %q", err, tt.err)
			}
		})
	}
}
