package modules_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/azinit/azinit/datasource/azure"
	"github.com/azinit/azinit/internal/sys"
	"github.com/azinit/azinit/modules"
	"github.com/azinit/azinit/modules/modulestest"
)

// customDataEnv is an Env whose OVF carries data as custom data, logging
// everything to the returned buffer.
func customDataEnv(t *testing.T, data string) (*modules.Env, *bytes.Buffer) {
	t.Helper()
	d := modulestest.OVF(t, modulestest.OVFDoc("azureuser", "", "<HostName>vm1</HostName>",
		"<CustomData>"+base64.StdEncoding.EncodeToString([]byte(data))+"</CustomData>"))
	env := modulestest.Env(t, modulestest.NewRoot(t), d)
	var log bytes.Buffer
	env.Log = slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return env, &log
}

const secretCustomData = "#!/bin/sh\necho s3cr3t-custom-data\n"

func TestCustomData(t *testing.T) {
	for _, decode := range []bool{false, true} {
		t.Run(fmt.Sprintf("decode=%v", decode), func(t *testing.T) {
			env, log := customDataEnv(t, secretCustomData)
			env.Config.CustomData.Decode = decode
			instanceFile := env.Instance.Dir + "/custom-data"
			var outcomes []modules.Outcome
			for range 2 {
				got, err := (modules.CustomData{}).Apply(t.Context(), env)
				if err != nil {
					t.Fatal(err)
				}
				outcomes = append(outcomes, got)
			}
			if diff := cmp.Diff([]modules.Outcome{modules.Changed, modules.Unchanged}, outcomes); diff != "" {
				t.Errorf("outcomes (-want +got):\n%s", diff)
			}
			want := base64.StdEncoding.EncodeToString([]byte(secretCustomData))
			if decode {
				want = secretCustomData
			}
			for file, content := range map[string]string{instanceFile: secretCustomData, "/var/lib/waagent/CustomData": want} {
				if got := modulestest.ReadFile(t, env.Root, file); got != content {
					t.Errorf("%s = %q, want %q", file, got, content)
				}
				if got := modulestest.Mode(t, env.Root, file); got != 0o600 {
					t.Errorf("%s mode %v, want 0600", file, got)
				}
			}
			if got := modulestest.Mode(t, env.Root, "/var/lib/waagent"); got != 0o700 {
				t.Errorf("/var/lib/waagent mode %v, want 0700", got)
			}
			if strings.Contains(log.String(), "s3cr3t") || strings.Contains(log.String(), want) {
				t.Errorf("the log holds the custom data:\n%s", log)
			}
		})
	}
}

func TestCustomDataRepairs(t *testing.T) {
	env, _ := customDataEnv(t, secretCustomData)
	if _, err := (modules.CustomData{}).Apply(t.Context(), env); err != nil {
		t.Fatal(err)
	}
	waagent := env.Root.HostPath("/var/lib/waagent/CustomData")
	instance := env.Root.HostPath(env.Instance.Dir + "/custom-data")
	// Readable by others: rewritten root-only.
	if err := os.Chmod(waagent, 0o644); err != nil {
		t.Fatal(err)
	}
	// Made executable by run-custom-data: left so.
	if err := os.Chmod(instance, 0o700); err != nil {
		t.Fatal(err)
	}
	if got, err := (modules.CustomData{}).Apply(t.Context(), env); err != nil || got != modules.Changed {
		t.Fatalf("Apply = %v, %v; want changed", got, err)
	}
	if got := modulestest.Mode(t, env.Root, "/var/lib/waagent/CustomData"); got != 0o600 {
		t.Errorf("CustomData mode %v, want 0600", got)
	}
	if got := modulestest.Mode(t, env.Root, env.Instance.Dir+"/custom-data"); got != 0o700 {
		t.Errorf("custom-data mode %v, want 0700 left alone", got)
	}
	// Another instance's data: replaced.
	if err := os.WriteFile(instance, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := (modules.CustomData{}).Apply(t.Context(), env); err != nil || got != modules.Changed {
		t.Fatalf("Apply = %v, %v; want changed", got, err)
	}
	if got := modulestest.ReadFile(t, env.Root, env.Instance.Dir+"/custom-data"); got != secretCustomData {
		t.Errorf("custom-data = %q", got)
	}
}

func TestCustomDataNone(t *testing.T) {
	env := modulestest.Env(t, modulestest.NewRoot(t), hostnameData(t, "vm1"))
	if got, err := (modules.CustomData{}).Apply(t.Context(), env); err != nil || got != modules.Skipped {
		t.Fatalf("Apply = %v, %v; want skipped", got, err)
	}
	if _, err := os.Stat(env.Root.HostPath("/var/lib/waagent/CustomData")); err == nil {
		t.Error("CustomData written without custom data")
	}
}

func TestRunCustomDataSkipped(t *testing.T) {
	tests := []struct {
		name  string
		setup func(*modules.Env)
	}{
		{"turned off", func(env *modules.Env) { env.Config.CustomData.Execute = false }},
		{"offline", func(env *modules.Env) { env.Live = false }},
		{"no custom data", func(env *modules.Env) { env.Data = &azure.Data{} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, log := customDataEnv(t, secretCustomData)
			env.Config.CustomData.Execute = true
			env.Live = true
			tt.setup(env)
			if got, err := (modules.RunCustomData{}).Apply(t.Context(), env); err != nil || got != modules.Skipped {
				t.Fatalf("Apply = %v, %v; want skipped", got, err)
			}
			if got := env.Run.(*modulestest.Runner).Commands(); len(got) != 0 {
				t.Errorf("ran %q", got)
			}
			if tt.name == "offline" && !strings.Contains(log.String(), "would run on this machine") {
				t.Errorf("the log does not say why it was not run:\n%s", log)
			}
		})
	}
}

func TestRunCustomDataCommand(t *testing.T) {
	env, log := customDataEnv(t, secretCustomData)
	env.Config.CustomData.Execute = true
	env.Live = true
	if got, err := (modules.RunCustomData{}).Apply(t.Context(), env); err != nil || got != modules.Changed {
		t.Fatalf("Apply = %v, %v; want changed", got, err)
	}
	program := env.Root.HostPath(env.Instance.Dir + "/custom-data")
	if diff := cmp.Diff([]string{program}, env.Run.(*modulestest.Runner).Commands()); diff != "" {
		t.Errorf("commands (-want +got):\n%s", diff)
	}
	if got := modulestest.Mode(t, env.Root, env.Instance.Dir+"/custom-data"); got != 0o700 {
		t.Errorf("custom-data mode %v, want 0700", got)
	}
	if strings.Contains(log.String(), "s3cr3t") {
		t.Errorf("the log holds the custom data:\n%s", log)
	}
}

func TestRunCustomDataNotExecutable(t *testing.T) {
	env, _ := customDataEnv(t, "echo no shebang\n")
	env.Config.CustomData.Execute = true
	env.Live = true
	runner := env.Run.(*modulestest.Runner)
	program := env.Root.HostPath(env.Instance.Dir + "/custom-data")
	runner.Respond = func(c sys.Command) (sys.Result, error) {
		if c.Name == program {
			// As exec.Cmd reports it, wrapped by sys.ExecRunner.
			return sys.Result{}, fmt.Errorf("%s: %w", c, &os.PathError{Op: "fork/exec", Path: program, Err: syscall.ENOEXEC})
		}
		return sys.Result{}, nil
	}
	if _, err := (modules.RunCustomData{}).Apply(t.Context(), env); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{program, "/bin/sh " + program}, runner.Commands()); diff != "" {
		t.Errorf("commands (-want +got):\n%s", diff)
	}
}

func TestRunCustomDataFails(t *testing.T) {
	env, _ := customDataEnv(t, secretCustomData)
	env.Config.CustomData.Execute = true
	env.Live = true
	stderr := strings.Repeat("noise ", 200) + "the last words"
	env.Run.(*modulestest.Runner).Respond = func(c sys.Command) (sys.Result, error) {
		return sys.Result{Stderr: []byte(stderr)}, &sys.ExitError{Command: c.String(), Code: 3, Stderr: stderr}
	}
	_, err := (modules.RunCustomData{}).Apply(t.Context(), env)
	var ee *sys.ExitError
	if !errors.As(err, &ee) || ee.Code != 3 {
		t.Fatalf("Apply = %v, want an exit error with status 3", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, "exit status 3") || !strings.Contains(msg, "the last words") {
		t.Errorf("error %q lacks the status or the end of stderr", msg)
	}
	if len(msg) > 512 {
		t.Errorf("error carries %d bytes of output, want a short tail: %q", len(msg), msg)
	}
}

// TestRunCustomDataRuns runs the custom data for real, once as a script
// with "#!" and once without.
func TestRunCustomDataRuns(t *testing.T) {
	for _, shebang := range []string{"#!/bin/sh\n", ""} {
		t.Run(fmt.Sprintf("shebang=%q", shebang), func(t *testing.T) {
			marker := filepath.Join(t.TempDir(), "ran")
			env, _ := customDataEnv(t, shebang+"echo ran >> '"+marker+"'\n")
			env.Config.CustomData.Execute = true
			env.Live = true
			env.Run = &modulestest.Runner{Exec: true}
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			_, err := (modules.RunCustomData{}).Apply(ctx, env)
			if errors.Is(err, syscall.EACCES) {
				t.Skipf("the temporary directory does not allow running programs: %v", err)
			}
			if err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(marker)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != "ran\n" {
				t.Errorf("marker %q, want one run", b)
			}
		})
	}
}
