package sys

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Command is a program to run with its arguments: never a shell string,
// and never shell-quoted.
type Command struct {
	Name  string // a program name looked up in PATH, or a path
	Args  []string
	Stdin []byte
	// Secret lists the indexes in Args that must not be logged or put in
	// an error (a password hash).
	Secret []int
	// Dir is the working directory (a host path); "" keeps azinit's.
	Dir string
	// Env is added to azinit's environment, overriding what it repeats.
	Env []string
	// Stdout and Stderr, when set, receive the output instead of Result.
	// An *os.File is handed to the command as it is, so a child the
	// command leaves running cannot hold azinit waiting on a pipe.
	Stdout, Stderr io.Writer
}

// String is the command line for logs and errors, secrets replaced.
func (c Command) String() string {
	parts := []string{c.Name}
	for i, a := range c.Args {
		if slices.Contains(c.Secret, i) {
			a = "<redacted>"
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}

// Result is what a finished command printed.
type Result struct {
	Stdout, Stderr []byte
}

// Runner runs commands. Every command azinit runs goes through one, so
// tests can record them and nothing can build a shell string.
type Runner interface {
	Run(ctx context.Context, c Command) (Result, error)
}

// ExitError is a command that ran and failed.
type ExitError struct {
	Command string // redacted
	Code    int    // -1 when killed by a signal
	Stderr  string // the end of what it printed on stderr
}

func (e *ExitError) Error() string {
	msg := fmt.Sprintf("%s: exit status %d", e.Command, e.Code)
	if e.Stderr != "" {
		msg += ": " + e.Stderr
	}
	return msg
}

// maxStderr bounds how much of a failed command's stderr an error carries.
const maxStderr = 1024

// ExecRunner runs commands on the machine, logging each the same way:
// started, then finished with the duration or failed with the cause.
type ExecRunner struct {
	Log *slog.Logger
}

// Run runs c and waits for it. A command that cannot start, or exits
// non-zero, is an error naming it (secrets redacted). The command leads a
// session of its own; when ctx ends, the whole process group is killed.
func (r ExecRunner) Run(ctx context.Context, c Command) (Result, error) {
	log := r.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	line := c.String()
	cmd := exec.CommandContext(ctx, c.Name, c.Args...)
	cmd.Dir = c.Dir
	if c.Env != nil {
		cmd.Env = append(os.Environ(), c.Env...)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Cancel = func() error { return unix.Kill(-cmd.Process.Pid, unix.SIGKILL) }
	// A child left running in the background may hold the output pipes:
	// stop reading them soon after the command itself is gone.
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if c.Stdout != nil {
		cmd.Stdout = c.Stdout
	}
	if c.Stderr != nil {
		cmd.Stderr = c.Stderr
	}
	if c.Stdin != nil {
		cmd.Stdin = bytes.NewReader(c.Stdin)
	}
	log.Debug("command started", "command", line)
	start := time.Now()
	err := cmd.Run()
	if errors.Is(err, exec.ErrWaitDelay) {
		// It succeeded; a child it left behind still holds a pipe.
		err = nil
	}
	res := Result{Stdout: stdout.Bytes(), Stderr: stderr.Bytes()}
	d := time.Since(start)
	if err == nil {
		log.Debug("command finished", "command", line, "duration", d)
		return res, nil
	}
	var ee *exec.ExitError
	if ctx.Err() != nil {
		err = fmt.Errorf("%s: killed: %w", line, context.Cause(ctx))
	} else if errors.As(err, &ee) {
		tail := strings.TrimSpace(stderr.String())
		if len(tail) > maxStderr {
			tail = "…" + tail[len(tail)-maxStderr:]
		}
		err = &ExitError{Command: line, Code: ee.ExitCode(), Stderr: tail}
	} else {
		err = fmt.Errorf("%s: %w", line, err)
	}
	log.Warn("command failed", "command", line, "duration", d, "error", err)
	return res, err
}

// Kernel holds the effects on the running kernel. They are made only when
// the target root is "/" (Root.Live); offline, modules record them as
// skipped.
type Kernel interface {
	SetHostname(name string) error
}

// LiveKernel is the running kernel.
type LiveKernel struct{}

// SetHostname sets the kernel's host name.
func (LiveKernel) SetHostname(name string) error {
	if err := unix.Sethostname([]byte(name)); err != nil {
		return fmt.Errorf("sethostname %q: %w", name, err)
	}
	return nil
}
