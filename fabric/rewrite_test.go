package fabric

import "testing"

func TestRewrite(t *testing.T) {
	rw, err := newRewriter(Addrs{Wireserver: "http://127.0.0.1:8080", HostGAPlugin: "http://127.0.0.1:32526", IMDS: "http://127.0.0.2:80"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ in, want string }{
		{"http://168.63.129.16:80/machine/x?comp=config&amp;type=sharedConfig", "http://127.0.0.1:8080/machine/x?comp=config&amp;type=sharedConfig"},
		{"http://168.63.129.16/machine/?comp=goalstate", "http://127.0.0.1:8080/machine/?comp=goalstate"},
		{"http://168.63.129.16:32526/vmSettings", "http://127.0.0.1:32526/vmSettings"},
		{"endpoint 168.63.129.16:32526 and 168.63.129.16", "endpoint 127.0.0.1:32526 and 127.0.0.1:8080"},
		{"http://169.254.169.254/metadata/instance", "http://127.0.0.2:80/metadata/instance"},
		{"http://mock-goal-state/manifest_of_ga.xml", "http://127.0.0.1:8080/blob/manifest_of_ga.xml"},
		{"http://mock-goal-state/rdfepirv2hknprdstr03.blob.core.windows.net/b0105/M_manifest.xml",
			"http://127.0.0.1:8080/blob/rdfepirv2hknprdstr03/b0105/M_manifest.xml"},
		{"https://dcrcl3a0xs.blob.core.windows.net/$system/vm.status?sv=2018-03-28&amp;sp=w",
			"http://127.0.0.1:8080/blob/dcrcl3a0xs/$system/vm.status?sv=2018-03-28&amp;sp=w"},
		{"https://umsavwggj2v40kvqhc0w.blob.core.windows.net", "http://127.0.0.1:8080/blob/umsavwggj2v40kvqhc0w/"},
		{"http://www.w3.org/2001/XMLSchema-instance", "http://www.w3.org/2001/XMLSchema-instance"},
	}
	for _, tt := range tests {
		if got := string(rw.rewrite([]byte(tt.in))); got != tt.want {
			t.Errorf("rewrite(%q)\n got %q\nwant %q", tt.in, got, tt.want)
		}
	}
}
