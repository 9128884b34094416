package wireserver

import (
	"slices"
	"testing"

	"github.com/azinit/azinit/internal/fixtures"
)

func FuzzParseGoalState(f *testing.F) {
	f.Add(fixtures.Read(f, "wire/goal_state.xml"))
	f.Add(fixtures.Read(f, "wire/goal_state_no_ext.xml"))
	f.Add([]byte("\xef\xbb\xbf<g:GoalState xmlns:g=\"urn:x\"><g:Incarnation>1</g:Incarnation></g:GoalState>"))
	f.Add([]byte("<GoalState><RoleInstance/></GoalState><GoalState/>"))
	f.Fuzz(func(t *testing.T, b []byte) {
		gs, err := ParseGoalState(b)
		if err != nil {
			if gs != nil {
				t.Fatal("a goal state with an error")
			}
			return
		}
		if gs.Incarnation == "" || gs.ContainerID == "" || gs.RoleInstanceID == "" || gs.HostingEnvironmentConfig == "" || gs.SharedConfig == "" {
			t.Fatalf("accepted without a required field: %+v", gs)
		}
		c := &Client{Endpoint: "http://127.0.0.1:1"}
		for _, uri := range []string{gs.HostingEnvironmentConfig, gs.SharedConfig, gs.ExtensionsConfig, gs.FullConfig, gs.Certificates, gs.RemoteAccessInfo} {
			if uri == "" {
				continue
			}
			u, err := c.rebase("fuzz", uri)
			if err != nil {
				t.Fatalf("accepted URI %q cannot be re-based: %v", uri, err)
			}
			if u.Host != "127.0.0.1:1" || u.Scheme != "http" {
				t.Fatalf("re-based %q to %s", uri, u)
			}
		}
		if err := checkXML(healthXML(gs, NotReady(SubStatusProvisioningFailed, string(b))), "Health"); err != nil {
			t.Fatalf("health report for it is not well-formed: %v", err)
		}
	})
}

func FuzzParseVersions(f *testing.F) {
	f.Add(fixtures.Read(f, "wire/version_info.xml"))
	f.Add([]byte("<Versions><Supported><Version>2012-11-30</Version></Supported></Versions>"))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := ParseVersions(b)
		if err != nil {
			return
		}
		if v.Preferred != ProtocolVersion && !slices.Contains(v.Supported, ProtocolVersion) {
			t.Fatalf("accepted %+v", v)
		}
	})
}

func FuzzParseHostingEnvironment(f *testing.F) {
	f.Add(fixtures.Read(f, "wire/hosting_env.xml"))
	f.Add(fixtures.Read(f, "wire/shared_config.xml"))
	f.Fuzz(func(t *testing.T, b []byte) {
		he, err := ParseHostingEnvironment(b)
		if err != nil {
			return
		}
		if he.VMName == "" || he.RoleName == "" || he.DeploymentName == "" {
			t.Fatalf("accepted without a required field: %+v", he)
		}
	})
}

func FuzzParseNetworkdLease(f *testing.F) {
	f.Add(fixtures.Read(f, "networkd-lease-245"))
	f.Add([]byte("OPTION_245=7f000001\r\nOPTION_245=\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		addr, ok, err := ParseNetworkdLease(b)
		checkLeaseResult(t, addr.Is4(), ok, err)
	})
}

func FuzzParseDHCPMessage(f *testing.F) {
	f.Add(fixtures.Read(f, "dhcp"))
	f.Add([]byte(dhcpMessage(0, 245, 4, 1, 2, 3, 4, 255)))
	f.Fuzz(func(t *testing.T, b []byte) {
		addr, ok, err := ParseDHCPMessage(b)
		checkLeaseResult(t, addr.Is4(), ok, err)
	})
}

func FuzzParseDhclientLeases(f *testing.F) {
	f.Add(fixtures.Read(f, "dhcp.leases"))
	f.Add(fixtures.Read(f, "dhcp.leases.multi"))
	f.Add([]byte("lease {\n option unknown-245 7f:0:0:1;\n expire epoch 5000000000; # x\n}\n}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		addr, ok, err := ParseDhclientLeases(b, now)
		checkLeaseResult(t, addr.Is4(), ok, err)
	})
}

// checkLeaseResult fails on an address returned with an error, or one that
// is not IPv4.
func checkLeaseResult(t *testing.T, is4, ok bool, err error) {
	t.Helper()
	if ok && (err != nil || !is4) {
		t.Fatalf("ok with IPv4 %v and error %v", is4, err)
	}
}
