package fabric

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/azinit/azinit/internal/fixtures"
)

// TestRealReportReadyClients runs the report-ready clients from Azure's
// documentation (../shared/clients) against the fabric, the wireserver
// address replaced by the fabric's, and checks that each got exactly one
// Ready recorded.
func TestRealReportReadyClients(t *testing.T) {
	clients := filepath.Join(fixtures.Dir(t), "..", "..", "clients")
	tests := []struct {
		script string
		run    []string // the interpreter and the tools the script needs
	}{
		{"report-ready.sh", []string{"bash", "curl", "grep", "sed"}},
		{"report-ready.py", []string{"/usr/bin/python3"}},
	}
	for _, tt := range tests {
		t.Run(tt.script, func(t *testing.T) {
			for _, tool := range tt.run {
				if _, err := exec.LookPath(tool); err != nil {
					t.Skipf("%s needs %s: %v", tt.script, tool, err)
				}
			}
			src, err := os.ReadFile(filepath.Join(clients, tt.script))
			if err != nil {
				t.Skipf("client %s: %v", tt.script, err)
			}
			f := startFabric(t, Options{Scenario: demoScenario(t)})
			hostPort := strings.TrimPrefix(f.URLs().Wireserver, "http://")
			script := filepath.Join(t.TempDir(), tt.script)
			if err := os.WriteFile(script, []byte(strings.ReplaceAll(string(src), "168.63.129.16", hostPort)), 0o755); err != nil {
				t.Fatal(err)
			}

			// report-ready.sh's POST loop never counts its attempts: against a
			// fabric that refuses the report it would run forever.
			const limit = time.Minute
			ctx, cancel := context.WithTimeout(t.Context(), limit)
			defer cancel()
			cmd := exec.CommandContext(ctx, tt.run[0], script)
			cmd.Env = withoutProxies(os.Environ())
			cmd.WaitDelay = 5 * time.Second
			out, err := cmd.CombinedOutput()
			if ctx.Err() != nil {
				t.Fatalf("%s did not finish within %v and was killed (a refused report makes it retry forever); output:\n%s", tt.script, limit, out)
			}
			if err != nil {
				t.Fatalf("%s: %v; output:\n%s", tt.script, err, out)
			}
			readies := 0
			for _, e := range f.Record() {
				if h, ok := e.Health(); ok && h.State == StateReady {
					readies++
				}
			}
			if readies != 1 {
				t.Errorf("%s: %d Ready reports recorded, want exactly 1; record %+v; output:\n%s", tt.script, readies, f.Record(), out)
			}
		})
	}
}

// withoutProxies drops proxy settings from env, so that a client sends to
// the loopback fabric and nowhere else.
func withoutProxies(env []string) []string {
	var out []string
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		switch strings.ToLower(name) {
		case "http_proxy", "https_proxy", "all_proxy", "no_proxy":
			continue
		}
		out = append(out, kv)
	}
	return append(out, "no_proxy=*", "NO_PROXY=*")
}
