package wireserver

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/azinit/azinit/internal/fixtures"
	"github.com/azinit/azinit/internal/sys"
)

// now is a fixed clock between the fixtures' expired (2015, 2012) and
// valid (2152) leases.
var now = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)

func TestParseNetworkdLease(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    string // "" = not found
		wantErr string
	}{
		{"fixture", string(fixtures.Read(t, "networkd-lease-245")), "168.63.129.16", ""},
		{"no option", "ADDRESS=10.0.0.69\nNETMASK=255.255.255.0\n", "", ""},
		{"empty", "", "", ""},
		{"crlf", "ADDRESS=10.0.0.69\r\nOPTION_245=7f000001\r\n", "127.0.0.1", ""},
		{"upper-case hex", "OPTION_245=A83F8110", "168.63.129.16", ""},
		{"last wins", "OPTION_245=7f000001\nOPTION_245=a83f8110\n", "168.63.129.16", ""},
		{"similar key ignored", "OPTION_2450=zz\nXOPTION_245=zz\n", "", ""},
		{"short", "# c\nOPTION_245=a83f81\n", "", `line 2: OPTION_245="a83f81": want 8 hex digits`},
		{"not hex", "OPTION_245=zzzzzzzz", "", "line 1: "},
		{"long", "OPTION_245=a83f811000", "", "line 1: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, ok, err := ParseNetworkdLease([]byte(tt.in))
			checkLease(t, addr, ok, err, tt.want, tt.wantErr)
		})
	}
}

// dhcpMessage is a DHCP reply whose options are opts.
func dhcpMessage(opts ...byte) string {
	b := make([]byte, dhcpOptionsOffset)
	copy(b[dhcpCookieOffset:], dhcpCookie)
	return string(append(b, opts...))
}

func TestParseDHCPMessage(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    string // "" = not found
		wantErr string
	}{
		{"fixture: an Azure reply", string(fixtures.Read(t, "dhcp")), "10.62.144.140", ""},
		{"padding, then the option", dhcpMessage(0, 0, 245, 4, 127, 0, 0, 1, 255), "127.0.0.1", ""},
		{"no option", dhcpMessage(53, 1, 2, 255), "", ""},
		{"no end option", dhcpMessage(245, 4, 10, 0, 0, 1), "10.0.0.1", ""},
		{"after the end option is ignored", dhcpMessage(255, 245, 4, 10, 0, 0, 1), "", ""},
		{"too short", "\x63\x82", "", "not a DHCP message (2 bytes"},
		{"no cookie", string(make([]byte, 300)), "", "no magic cookie at offset 236"},
		{"option past the end", dhcpMessage(53, 1, 2, 15, 40, 'x'), "", "DHCP option 15 at offset 243 runs past the end"},
		{"length byte missing", dhcpMessage(53), "", "DHCP option 53 at offset 240 runs past the end"},
		{"option 245 not IPv4", dhcpMessage(245, 3, 1, 2, 3), "", "DHCP option 245 at offset 240 is 3 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, ok, err := ParseDHCPMessage([]byte(tt.in))
			checkLease(t, addr, ok, err, tt.want, tt.wantErr)
		})
	}
}

func TestParseDhclientLeases(t *testing.T) {
	lease := func(body string) string { return "lease {\n  interface \"eth0\";\n" + body + "}\n" }
	single := string(fixtures.Read(t, "dhcp.leases"))
	multi := string(fixtures.Read(t, "dhcp.leases.multi"))
	tests := []struct {
		name    string
		in      string
		now     time.Time
		want    string // "" = not found
		wantErr string
	}{
		{"fixture, expire never", single, now, "168.63.129.16", ""},
		{"multi: last valid wins", multi, now, "168.63.129.2", ""},
		{"multi: before 2012 the last block is valid", multi, time.Date(2010, 1, 1, 0, 0, 0, 0, time.UTC), "168.63.129.3", ""},
		{"multi: after 2152 all have expired", multi, time.Date(2153, 1, 1, 0, 0, 0, 0, time.UTC), "", ""},
		{"fixture: after 2152 only expire never remains", single, time.Date(2153, 1, 1, 0, 0, 0, 0, time.UTC), "168.63.129.16", ""},
		{"one-digit bytes", lease("  option unknown-245 7f:0:0:1;\n  expire 0 2152/07/23 23:27:10;\n"), now, "127.0.0.1", ""},
		{"expire never without weekday", lease("  option unknown-245 a8:3f:81:10;\n  expire never;\n"), now, "168.63.129.16", ""},
		{"expire epoch (db-time-format local)", lease("  option unknown-245 a8:3f:81:10;\n  expire epoch 5000000000; # Sat Jun 11 08:53:20 2128\n"), now, "168.63.129.16", ""},
		{"expired epoch", lease("  option unknown-245 a8:3f:81:10;\n  expire epoch 1436979534;\n"), now, "", ""},
		{"expires exactly now", lease("  option unknown-245 a8:3f:81:10;\n  expire 0 2025/06/01 00:00:00;\n"), now, "", ""},
		{"no expire line is not trusted", lease("  option unknown-245 a8:3f:81:10;\n"), now, "", ""},
		{"no option 245", lease("  expire never;\n"), now, "", ""},
		{"unterminated block", "lease {\n  option unknown-245 a8:3f:81:10;\n  expire never;\n", now, "", ""},
		{"option outside a lease", "option unknown-245 a8:3f:81:10;\nexpire never;\n", now, "", ""},
		{"option in a nested block", "lease {\n  x {\n    option unknown-245 a8:3f:81:10;\n  }\n  expire never;\n}\n", now, "", ""},
		{"dhclient6 lease", "default-duid \"\\000\\001\";\nlease6 {\n  ia-na 1 {\n    iaaddr ::1 {\n      max-life 1;\n    }\n  }\n}\n", now, "", ""},
		{"empty", "", now, "", ""},
		{"three bytes", lease("  option unknown-245 a8:3f:81;\n  expire never;\n"), now, "", `line 3: "option unknown-245 a8:3f:81;": want four hex bytes`},
		{"three-digit byte", lease("  option unknown-245 a8:3f:81:100;\n"), now, "", `line 3: "option unknown-245 a8:3f:81:100;": byte "100"`},
		{"empty byte", lease("  option unknown-245 a8::81:10;\n"), now, "", `byte ""`},
		{"not hex", lease("  option unknown-245 a8:3g:81:10;\n"), now, "", `byte "3g"`},
		{"no semicolon", lease("  option unknown-245 a8:3f:81:10\n"), now, "", "line 3: "},
		{"no value", lease("  option unknown-245;\n"), now, "", "line 3: "},
		{"bad expire date", lease("  expire 0 2152-07-23 23:27:10;\n"), now, "", `line 3: "expire 0 2152-07-23 23:27:10;": want <weekday> YYYY/MM/DD HH:MM:SS`},
		{"bad expire epoch", lease("  expire epoch soon;\n"), now, "", `epoch "soon"`},
		{"bad expire shape", lease("  expire;\n"), now, "", "line 3: "},
		{"unbalanced brace", "}\n", now, "", "line 1: unbalanced }"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, ok, err := ParseDhclientLeases([]byte(tt.in), tt.now)
			checkLease(t, addr, ok, err, tt.want, tt.wantErr)
		})
	}
}

func checkLease(t *testing.T, addr netip.Addr, ok bool, err error, want, wantErr string) {
	t.Helper()
	if wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("err = %v, want one containing %q", err, wantErr)
		}
		return
	}
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
	if want == "" {
		if ok {
			t.Fatalf("found %s, want nothing", addr)
		}
		return
	}
	if !ok || addr.String() != want {
		t.Fatalf("got %s (ok %v), want %s", addr, ok, want)
	}
}

func TestDiscoverEndpoint(t *testing.T) {
	networkd := string(fixtures.Read(t, "networkd-lease-245"))
	dhclient := func(ip string) string {
		return "lease {\n  option unknown-245 " + ip + ";\n  expire 0 2152/07/23 23:27:10;\n}\n"
	}
	tests := []struct {
		name       string
		files      map[string]string
		want       string
		wantSource string
		wantErr    string
	}{
		{"no leases", nil, DefaultEndpoint, "default", ""},
		{"networkd", map[string]string{"/run/systemd/netif/leases/2": networkd}, "168.63.129.16", "/run/systemd/netif/leases/2", ""},
		{"networkd before dhclient", map[string]string{
			"/run/systemd/netif/leases/2":        networkd,
			"/var/lib/dhcp/dhclient.eth0.leases": dhclient("7f:0:0:1"),
		}, "168.63.129.16", "/run/systemd/netif/leases/2", ""},
		{"networkd lease without the option", map[string]string{
			"/run/systemd/netif/leases/2":        "ADDRESS=10.0.0.4\n",
			"/var/lib/dhcp/dhclient.eth0.leases": dhclient("7f:0:0:1"),
		}, "127.0.0.1", "/var/lib/dhcp/dhclient.eth0.leases", ""},
		{"networkd by name", map[string]string{
			"/run/systemd/netif/leases/3": "OPTION_245=7f000003\n",
			"/run/systemd/netif/leases/2": "OPTION_245=7f000002\n",
		}, "127.0.0.2", "/run/systemd/netif/leases/2", ""},
		{"debian dhclient", map[string]string{"/var/lib/dhcp/dhclient.leases": dhclient("a:0:0:1")}, "10.0.0.1", "/var/lib/dhcp/dhclient.leases", ""},
		{"red hat .leases", map[string]string{"/var/lib/dhclient/dhclient-eth0.leases": dhclient("a:0:0:2")}, "10.0.0.2", "/var/lib/dhclient/dhclient-eth0.leases", ""},
		{"red hat .lease", map[string]string{"/var/lib/dhclient/dhclient-eth0.lease": dhclient("a:0:0:3")}, "10.0.0.3", "/var/lib/dhclient/dhclient-eth0.lease", ""},
		{"networkmanager", map[string]string{"/var/lib/NetworkManager/dhclient-x-eth0.lease": dhclient("a:0:0:4")}, "10.0.0.4", "/var/lib/NetworkManager/dhclient-x-eth0.lease", ""},
		{"dhcpcd", map[string]string{"/var/lib/dhcpcd/eth0.lease": dhcpMessage(245, 4, 10, 0, 0, 7, 255)}, "10.0.0.7", "/var/lib/dhcpcd/eth0.lease", ""},
		{"dhclient before dhcpcd", map[string]string{
			"/var/lib/dhcpcd/eth0.lease":    dhcpMessage(245, 4, 10, 0, 0, 7, 255),
			"/var/lib/dhcp/dhclient.leases": dhclient("a:0:0:1"),
		}, "10.0.0.1", "/var/lib/dhcp/dhclient.leases", ""},
		{"other names ignored", map[string]string{
			"/var/lib/dhcp/dhcpd.leases":             dhclient("a:0:0:5"),
			"/var/lib/NetworkManager/internal.lease": dhclient("a:0:0:6"),
		}, DefaultEndpoint, "default", ""},
		{"expired only", map[string]string{"/var/lib/dhcp/dhclient.leases": strings.Replace(dhclient("a:0:0:1"), "2152", "2015", 1)}, DefaultEndpoint, "default", ""},
		{"malformed lease names the file", map[string]string{"/var/lib/dhclient/dhclient-eth0.leases": dhclient("a:0:1")}, "", "", "lease /var/lib/dhclient/dhclient-eth0.leases: line 2: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range tt.files {
				p := filepath.Join(dir, name)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			root, err := sys.OpenRoot(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer root.Close()
			addr, source, err := DiscoverEndpoint(root, now)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if addr != tt.want || source != tt.wantSource {
				t.Errorf("DiscoverEndpoint = %s from %s, want %s from %s", addr, source, tt.want, tt.wantSource)
			}
		})
	}
}
