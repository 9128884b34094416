package fabric

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestAdvertise: documents name the advertised addresses (where a VM
// reaches the fabric through forwarding), while the fabric still listens
// on loopback. Nothing dials the advertised addresses.
func TestAdvertise(t *testing.T) {
	public := Addrs{Wireserver: "http://168.63.129.16", HostGAPlugin: "http://168.63.129.16:32526", IMDS: "http://169.254.169.254"}
	f := startFabric(t, Options{Scenario: sampleScenario(t), Advertise: public})
	if u := f.URLs().Wireserver; !strings.HasPrefix(u, "http://127.0.0.1:") {
		t.Fatalf("listening at %s", u)
	}
	gs := getGoalState(t, f)
	cfg := gs.Role.Configuration.ExtensionsConfig
	if !strings.HasPrefix(cfg, public.Wireserver+"/") {
		t.Errorf("ExtensionsConfig URL %s is not under the advertised %s", cfg, public.Wireserver)
	}
	// The same document, fetched through the listener.
	local := f.URLs().Wireserver + strings.TrimPrefix(cfg, public.Wireserver)
	_, body := call(t, http.MethodGet, local, nil)
	if bytes.Contains(body, []byte("127.0.0.1")) || !bytes.Contains(body, []byte(public.Wireserver+blobPrefix)) {
		t.Errorf("ExtensionsConfig does not name only the advertised blob host:\n%s", body)
	}
}

// TestRelay: a request written to the relay reaches the fabric and the
// answer comes back, as through QEMU's guestfwd.
func TestRelay(t *testing.T) {
	f := startFabric(t, Options{Scenario: sampleScenario(t)})
	addr := strings.TrimPrefix(f.URLs().Wireserver, "http://")
	req := "GET /?comp=versions HTTP/1.1\r\nHost: 168.63.129.16\r\nConnection: close\r\n\r\n"
	var out bytes.Buffer
	if err := Relay(t.Context(), addr, strings.NewReader(req), &out); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "HTTP/1.1 200 OK") || !strings.Contains(out.String(), "<Versions>") {
		t.Errorf("relayed answer:\n%s", out.String())
	}
	if err := Relay(t.Context(), "192.0.2.1:80", strings.NewReader(""), io.Discard); !errors.Is(err, ErrNotLoopback) {
		t.Errorf("relay to a non-loopback address: %v, want ErrNotLoopback", err)
	}
}
