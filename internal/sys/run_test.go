package sys

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
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
