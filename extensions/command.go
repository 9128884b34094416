package extensions

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/azinit/azinit/datasource/azure/extconfig"
	"github.com/azinit/azinit/internal/sys"
)

// Timeouts bound each operation's command (wall clock).
type Timeouts struct {
	Install, Enable, Disable, Update, Uninstall time.Duration
}

func (t Timeouts) of(op extconfig.Operation) time.Duration {
	switch op {
	case extconfig.OpInstall:
		return t.Install
	case extconfig.OpEnable:
		return t.Enable
	case extconfig.OpDisable:
		return t.Disable
	case extconfig.OpUpdate:
		return t.Update
	}
	return t.Uninstall
}

// Error is a handler failure as the platform is told of it.
type Error struct {
	Code    int
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("%s (code %d)", e.Message, e.Code) }

// Error codes the platform knows (wire-protocol.md §17.9).
const (
	CodeUnknown             = -1
	CodeProcessing          = 1000
	CodeManifestDownload    = 1001
	CodeManifestNotFound    = 1002
	CodeManifestInvalid     = 1003
	CodePackageDownload     = 1004
	CodePackageExtraction   = 1005
	CodeInstall             = 1007
	CodeUpdate              = 1008
	CodeEnable              = 1009
	CodeDisable             = 1010
	CodeTimeout             = 1011
	CodeStatusInvalid       = 1012
	CodeUnsupportedFeatures = 2001
)

// opCode is the code of an operation's non-zero exit.
func opCode(op extconfig.Operation) int {
	switch op {
	case extconfig.OpInstall:
		return CodeInstall
	case extconfig.OpEnable:
		return CodeEnable
	case extconfig.OpDisable:
		return CodeDisable
	case extconfig.OpUpdate:
		return CodeUpdate
	}
	return CodeProcessing
}

// codeOf is err's platform code: its own when it is an *Error.
func codeOf(err error) int {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Code
	}
	return CodeUnknown
}

// notRun stands for the exit code of a command that did not run.
const notRun = "NOT_RUN"

// invocation is one handler command to run.
type invocation struct {
	name, version string
	dir           string // root-relative handler directory
	manifest      *extconfig.HandlerManifest
	op            extconfig.Operation
	seq           int
	ext           string   // the extension, for multi-config handlers
	env           []string // operation-specific variables
}

// supportedFeatures tells handlers they may use the extension telemetry
// pipeline (their eventsFolder).
const supportedFeatures = `[{"Key": "ExtensionTelemetryPipeline", "Value": "1.0"}]`

// launch runs one handler command and returns its exit code. A command
// that fails, exits non-zero or outlives its timeout is an *Error with
// the platform's code and the end of what it printed.
//
// A running command is never killed because ctx ends (azinit stopping):
// like the platform's agent, azinit lets it finish, within its timeout,
// so an install is not left half done.
func (m *Manager) launch(ctx context.Context, inv invocation) (int, error) {
	rel, err := inv.manifest.Command(inv.op)
	if err != nil {
		return -1, &Error{Code: CodeUnknown, Message: err.Error()}
	}
	host := m.Root.HostPath(inv.dir)
	line := host + "/" + rel
	stdout, stderr, err := m.outputFiles(inv.dir)
	if err != nil {
		return -1, &Error{Code: CodeUnknown, Message: fmt.Sprintf("%s: %v", line, err)}
	}
	defer stdout.Close()
	defer stderr.Close()
	env := []string{
		"AZURE_GUEST_AGENT_EXTENSION_PATH=" + host,
		"AZURE_GUEST_AGENT_EXTENSION_VERSION=" + inv.version,
		"AZURE_GUEST_AGENT_WIRE_PROTOCOL_ADDRESS=" + m.WireserverAddress,
		"AZURE_GUEST_AGENT_EXTENSION_SUPPORTED_FEATURES=" + supportedFeatures,
		"ConfigSequenceNumber=" + strconv.Itoa(inv.seq),
	}
	if inv.ext != "" {
		env = append(env, "ConfigExtensionName="+inv.ext)
	}
	c := sys.Command{
		// The manifest's command line is the handler's own, with its
		// arguments: handlers are written for a shell running it.
		Name: "/bin/sh", Args: []string{"-c", line},
		Dir: host, Env: append(env, inv.env...), Stdout: stdout, Stderr: stderr,
	}
	if m.ResourceLimits {
		c = scoped(c, inv)
	}
	timeout := m.Timeouts.of(inv.op)
	runCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	start := time.Now()
	_, runErr := m.Run.Run(runCtx, c)
	output := commandOutput(stdout, stderr)
	code := 0
	var fail *Error
	var exit *sys.ExitError
	switch {
	case runErr == nil:
	case runCtx.Err() != nil:
		code = -1
		fail = &Error{Code: CodeTimeout, Message: fmt.Sprintf("Timeout(%d): %s\n%s", int(timeout.Seconds()), line, output)}
	case errors.As(runErr, &exit):
		code = exit.Code
		fail = &Error{Code: opCode(inv.op), Message: fmt.Sprintf("Non-zero exit code: %d, %s\n%s", code, line, output)}
	default:
		code = -1
		fail = &Error{Code: CodeUnknown, Message: runErr.Error()}
	}
	m.logCommand(inv, line, code, time.Since(start), output)
	if fail != nil {
		return code, fail
	}
	return 0, nil
}

// outputFiles creates two anonymous files in the handler directory for a
// command's stdout and stderr. Files, not pipes: handlers that leave a
// process behind (enable often does) would hold a pipe open and keep the
// agent waiting.
func (m *Manager) outputFiles(dir string) (stdout, stderr *os.File, err error) {
	open := func() (*os.File, error) {
		name := path.Join(dir, ".azinit-output-"+randomHex(8))
		f, err := m.Root.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, err
		}
		if err := m.Root.Remove(name); err != nil {
			f.Close()
			return nil, err
		}
		return f, nil
	}
	if stdout, err = open(); err != nil {
		return nil, nil, err
	}
	if stderr, err = open(); err != nil {
		stdout.Close()
		return nil, nil, err
	}
	return stdout, stderr, nil
}

// maxOutput bounds the output kept of one command, in characters
// (WALinuxAgent's telemetry message limit).
const maxOutput = 3200

// commandOutput is "[stdout]\n…\n\n[stderr]\n…", keeping the first
// maxOutput characters of each stream and then, if the two are still too
// long together, their ends, a stream's unused share going to the other.
func commandOutput(stdout, stderr *os.File) string {
	out, errOut := readChars(stdout, maxOutput), readChars(stderr, maxOutput)
	const frame = len("[stdout]\n\n\n[stderr]\n")
	budget := maxOutput - frame
	no, ne := utf8.RuneCountInString(out), utf8.RuneCountInString(errOut)
	if no+ne > budget {
		half := budget / 2
		switch {
		case no < half:
			errOut = lastChars(errOut, budget-no)
		case ne < half:
			out = lastChars(out, budget-ne)
		default:
			out, errOut = lastChars(out, half), lastChars(errOut, budget-half)
		}
	}
	return "[stdout]\n" + out + "\n\n[stderr]\n" + errOut
}

// readChars reads the first n characters of f, invalid UTF-8 replaced.
func readChars(f *os.File, n int) string {
	b, _ := io.ReadAll(io.NewSectionReader(f, 0, int64(n)*utf8.UTFMax))
	s := strings.ToValidUTF8(string(b), "\uFFFD")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	i := 0
	for range n {
		_, w := utf8.DecodeRuneInString(s[i:])
		i += w
	}
	return s[:i]
}

// lastChars is the last n characters of s.
func lastChars(s string, n int) string {
	if n <= 0 {
		return ""
	}
	i := len(s)
	for ; n > 0 && i > 0; n-- {
		_, w := utf8.DecodeLastRuneInString(s[:i])
		i -= w
	}
	return s[i:]
}

// maxCommandLog bounds a handler's CommandExecution.log; past it, the
// older half is dropped.
const maxCommandLog = 10 << 20

// logCommand appends a command's outcome to the handler's
// CommandExecution.log, where support engineers look first.
func (m *Manager) logCommand(inv invocation, line string, code int, d time.Duration, output string) {
	name := "CommandExecution.log"
	if inv.ext != "" {
		name = "CommandExecution_" + inv.ext + ".log"
	}
	file := path.Join(m.Layout.LogFolder(inv.name), name)
	entry := fmt.Sprintf("%s %s: %s\nexit code %d after %s\n%s\n",
		m.Now().UTC().Format(time.RFC3339), inv.op, line, code, d.Round(time.Millisecond), output)
	if err := m.appendLog(file, entry); err != nil {
		m.Log.Warn("writing the command log", "file", file, "error", err)
	}
}

func (m *Manager) appendLog(file, entry string) error {
	if st, err := m.Root.Stat(file); err == nil && st.Size()+int64(len(entry)) > maxCommandLog {
		old, err := m.Root.ReadFile(file)
		if err != nil {
			return err
		}
		keep := old[len(old)-min(len(old), maxCommandLog/2):]
		if err := m.Root.WriteFileAtomic(file, keep, 0o600); err != nil {
			return err
		}
	}
	f, err := m.Root.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	_, err = f.WriteString(entry)
	return errors.Join(err, f.Close())
}

// scoped runs c in a transient systemd scope under the handler's slice,
// with the CPU and memory limits its manifest asks for; the processes it
// leaves behind stay in the scope, limits and all.
func scoped(c sys.Command, inv invocation) sys.Command {
	slice := "azure-vmextensions-" + strings.ReplaceAll(inv.name, "-", "_") + ".slice"
	args := []string{"--scope", "--quiet", "--collect",
		"--unit=" + inv.name + "_" + string(inv.op) + "_" + randomHex(8),
		"--slice=" + slice,
		"--property=CPUAccounting=yes", "--property=MemoryAccounting=yes"}
	if rl := inv.manifest.ResourceLimits; rl != nil {
		if rl.CPUQuotaPercentage != nil && *rl.CPUQuotaPercentage > 0 {
			args = append(args, fmt.Sprintf("--property=CPUQuota=%d%%", *rl.CPUQuotaPercentage))
		}
		if rl.MemoryQuotaInMB != nil && *rl.MemoryQuotaInMB > 0 {
			args = append(args, fmt.Sprintf("--property=MemoryMax=%dM", *rl.MemoryQuotaInMB))
		}
	}
	args = append(append(args, "--", c.Name), c.Args...)
	c.Name, c.Args = "systemd-run", args
	return c
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
