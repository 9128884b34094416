package sys

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestCommandStringRedacts(t *testing.T) {
	c := Command{Name: "usermod", Args: []string{"--prefix", "/r", "-p", "$6$salt$hash", "bob"}, Secret: []int{3}}
	if got, want := c.String(), "usermod --prefix /r -p <redacted> bob"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestExecRunner(t *testing.T) {
	var logs bytes.Buffer
	r := ExecRunner{Log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	res, err := r.Run(t.Context(), Command{Name: "sh", Args: []string{"-c", "cat; echo err >&2", "secret-arg"}, Stdin: []byte("in"), Secret: []int{2}})
	if err != nil || string(res.Stdout) != "in" || string(res.Stderr) != "err\n" {
		t.Fatalf("Run = %q, %q, %v", res.Stdout, res.Stderr, err)
	}
	_, failed := r.Run(t.Context(), Command{Name: "sh", Args: []string{"-c", "echo boom >&2; exit 3", "hunter2"}, Secret: []int{2}})
	var ee *ExitError
	if !errors.As(failed, &ee) || ee.Code != 3 || ee.Stderr != "boom" || strings.Contains(failed.Error(), "hunter2") {
		t.Fatalf("err = %#v", failed)
	}
	if _, err := r.Run(t.Context(), Command{Name: "/nonexistent/azinit-test"}); err == nil || !strings.Contains(err.Error(), "/nonexistent/azinit-test") {
		t.Errorf("missing program: err = %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := r.Run(ctx, Command{Name: "sleep", Args: []string{"10"}}); err == nil {
		t.Error("a cancelled context still ran the command")
	}
	for _, want := range []string{"command started", "command finished", "command failed"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q", want)
		}
	}
	if strings.Contains(logs.String(), "secret-arg") || strings.Contains(logs.String(), "hunter2") {
		t.Errorf("a secret argument was logged:\n%s", logs.String())
	}
}

func TestExecRunnerKillsTheProcessGroup(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	// The background child writes its pid, then both wait far longer than
	// the timeout.
	_, err := ExecRunner{}.Run(ctx, Command{Name: "sh", Args: []string{"-c", "sleep 60 & echo $! > child; wait"}, Dir: dir})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the deadline", err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "child"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	// Killed with the group, the child is gone or a zombie awaiting its
	// reaper.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil || strings.Contains(string(stat), ") Z ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the background child %d outlived its group's timeout", pid)
		}
	}
}

func TestExecRunnerDirEnvAndFiles(t *testing.T) {
	dir := t.TempDir()
	out, err := os.Create(filepath.Join(dir, "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	// The background child keeps stdout open: with a file, not a pipe,
	// Run returns as soon as the shell exits.
	res, err := ExecRunner{}.Run(t.Context(), Command{
		Name: "sh", Args: []string{"-c", `pwd; echo "$AZINIT_TEST"; sleep 30 &`},
		Dir: dir, Env: []string{"AZINIT_TEST=value"}, Stdout: out, Stderr: out,
	})
	if err != nil || len(res.Stdout) != 0 {
		t.Fatalf("Run = %q, %v", res.Stdout, err)
	}
	b, _ := os.ReadFile(out.Name())
	if want := dir + "\nvalue\n"; string(b) != want {
		t.Errorf("output %q, want %q", b, want)
	}
}
