// Package testenv holds checks that decide whether a test can run here.
package testenv

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// RequireIsolatedNetwork skips the test unless it runs in a network
// namespace whose only link is loopback and which has no IPv4 route: tests
// that bind the platform's fixed ports or run real platform clients (which
// dial their built-in addresses when misdirected) run only there.
// hack/netns, which `make test` uses, provides one.
func RequireIsolatedNetwork(t testing.TB) {
	t.Helper()
	const how = "needs a loopback-only network namespace: run it through `make test` or hack/netns"
	dev, err := os.ReadFile("/proc/net/dev")
	if err != nil {
		t.Skipf("%s (reading /proc/net/dev: %v)", how, err)
	}
	// Two header lines, then one line per link.
	for _, line := range strings.Split(strings.TrimSpace(string(dev)), "\n")[2:] {
		if name, _, _ := strings.Cut(strings.TrimSpace(line), ":"); name != "lo" {
			t.Skipf("%s (this namespace has link %s)", how, name)
		}
	}
	route, err := os.ReadFile("/proc/net/route")
	if err != nil {
		t.Skipf("%s (reading /proc/net/route: %v)", how, err)
	}
	if n := len(strings.Split(strings.TrimSpace(string(route)), "\n")); n > 1 {
		t.Skipf("%s (this namespace has %d IPv4 routes)", how, n-1)
	}
}

// Require skips the test unless every path exists.
func Require(t testing.TB, why string, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("%s is not installed (%s): %v", p, why, err)
		}
	}
}

// OpenSSL runs the openssl binary in dir and returns what it wrote to
// stdout and stderr, skipping the test when openssl is not installed and
// failing it, with openssl's complaint, when the command fails.
func OpenSSL(t testing.TB, dir string, args ...string) (stdout, stderr []byte) {
	t.Helper()
	bin, err := exec.LookPath("openssl")
	if err != nil {
		t.Skipf("openssl is not installed; this interoperability test needs it: %v", err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	var errb bytes.Buffer
	cmd.Stderr = &errb
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, errb.Bytes())
	}
	return out, errb.Bytes()
}

// VerifyUnits runs `systemd-analyze verify` on units (file name →
// content) in a throwaway root that holds this system's /usr/lib/systemd,
// the units in /etc/systemd/system and an empty executable at each of
// stubs (the programs the units run), so nothing on this machine is read
// as configuration or touched. The test fails with what systemd-analyze
// said; it skips where systemd-analyze is not installed.
func VerifyUnits(t testing.TB, units map[string][]byte, stubs ...string) {
	t.Helper()
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed (apt-get install systemd)")
	}
	root := t.TempDir()
	if err := os.CopyFS(filepath.Join(root, "usr/lib/systemd"), os.DirFS("/usr/lib/systemd")); err != nil {
		t.Skipf("copying the system's units: %v", err)
	}
	system := filepath.Join(root, "etc/systemd/system")
	if err := os.MkdirAll(system, 0o755); err != nil {
		t.Fatal(err)
	}
	var names []string
	for name, data := range units {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(system, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(system, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(name, "/") { // drop-ins are checked with their unit
			names = append(names, name)
		}
	}
	for _, stub := range stubs {
		p := filepath.Join(root, stub)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(names)
	out, err := exec.Command(analyze, append([]string{"verify", "--root=" + root}, names...)...).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify %s: %v\n%s", strings.Join(names, " "), err, out)
	}
}

// Build builds the commands pkgs into dir as they ship: static
// (CGO_ENABLED=0), with the environment's GOFLAGS (make's build tags).
func Build(dir string, pkgs ...string) error {
	cmd := exec.Command("go", append([]string{"build", "-o", dir + string(filepath.Separator)}, pkgs...)...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", strings.Join(pkgs, " "), err, out)
	}
	return nil
}

// Binaries is the directory holding the commands pkgs for a test binary's
// TestMain: AZINIT_BIN when set (a directory that already holds them),
// else a temporary one they are built into, which cleanup removes.
func Binaries(pkgs ...string) (dir string, cleanup func(), err error) {
	if dir := os.Getenv("AZINIT_BIN"); dir != "" {
		return dir, func() {}, nil
	}
	if dir, err = os.MkdirTemp("", "azinit-bin-"); err != nil {
		return "", nil, err
	}
	cleanup = func() { os.RemoveAll(dir) }
	if err := Build(dir, pkgs...); err != nil {
		cleanup()
		return "", nil, err
	}
	return dir, cleanup, nil
}
