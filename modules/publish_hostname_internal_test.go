package modules

import (
	"path"
	"slices"
	"strings"
	"testing"
)

// FuzzDhclientSendsHostname checks the dhclient.conf edit: a second edit
// changes nothing, every active host-name statement sends the kernel's
// host name, and other lines are kept.
func FuzzDhclientSendsHostname(f *testing.F) {
	f.Add([]byte("option rfc3442-classless-static-routes code 121 = array of unsigned integer 8;\n\nsend host-name = gethostname();\nrequest subnet-mask, broadcast-address;\n"))
	f.Add([]byte("#send host-name \"andare.fugue.com\";\nsend host-name \"image\";\ninterface \"eth0\" {\n\tsend host-name \"image\";\n}\n"))
	f.Add([]byte("timeout 30;"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, conf []byte) {
		out, changed := dhclientSendsHostname(conf)
		if !changed && string(out) != string(conf) {
			t.Fatalf("unchanged, yet %q became %q", conf, out)
		}
		again, changedAgain := dhclientSendsHostname(out)
		if changedAgain || string(again) != string(out) {
			t.Fatalf("second edit of %q changed it to %q", out, again)
		}
		var kept []string
		for _, line := range strings.SplitAfter(string(out), "\n") {
			if sendHostnameLine.MatchString(line) {
				if strings.TrimSpace(line) != sendHostname {
					t.Fatalf("active statement %q left in %q", line, out)
				}
				continue
			}
			kept = append(kept, line)
		}
		var want []string
		for _, line := range strings.SplitAfter(string(conf), "\n") {
			if !sendHostnameLine.MatchString(line) {
				want = append(want, line)
			}
		}
		if strings.TrimSuffix(strings.Join(kept, ""), "\n") != strings.TrimSuffix(strings.Join(want, ""), "\n") {
			t.Fatalf("other lines changed: %q became %q", conf, out)
		}
	})
}

// FuzzDHCPClientNames checks the readers of NetworkManager's lease file
// names and of dhclient's command line.
func FuzzDHCPClientNames(f *testing.F) {
	f.Add("internal-5fb06bd0-0bb0-7ffb-45f1-d6edd65f3e03-eth0.lease")
	f.Add("dhclient6-5fb06bd0-0bb0-7ffb-45f1-d6edd65f3e03-eth0.lease")
	f.Add("/sbin/dhclient\x00-4\x00-v\x00-i\x00-pf\x00/run/dhclient.eth0.pid\x00-lf\x00/var/lib/dhcp/dhclient.eth0.leases\x00-I\x00-df\x00/var/lib/dhcp/dhclient6.eth0.leases\x00eth0\x00")
	f.Add("dhclient\x00-H\x00")
	f.Add("")
	l := links{"lo": 1, "eth0": 2, "eth1": 3}
	f.Fuzz(func(t *testing.T, s string) {
		if ifname, ok := nmLeaseInterface(s); ok && (ifname == "" || !strings.HasSuffix(s, "-"+ifname+".lease")) {
			t.Fatalf("nmLeaseInterface(%q) = %q", s, ifname)
		}
		argv, ifnames := parseDhclientCmdline([]byte(s), l)
		if argv == nil {
			if ifnames != nil {
				t.Fatalf("interfaces %q without a dhclient in %q", ifnames, s)
			}
			return
		}
		if path.Base(argv[0]) != "dhclient" {
			t.Fatalf("%q is not dhclient", argv[0])
		}
		for _, n := range ifnames {
			if _, ok := l[n]; !ok || !slices.Contains(argv, n) {
				t.Fatalf("interface %q not in %q", n, argv)
			}
		}
		d := &dhclient{argv: argv}
		if len(d.restartArgs("vm1")) != len(argv)-1 {
			t.Fatalf("restart arguments of %q", argv)
		}
		d.configFile()
	})
}
