package modules

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"syscall"
	"unicode/utf8"

	"github.com/azinit/azinit/datasource/azure"
	"github.com/azinit/azinit/internal/sys"
)

// CustomData keeps the platform's custom data (Data.CustomData), a secret,
// root-only: decoded in the instance directory (custom-data, which
// RunCustomData runs), and at WALinuxAgent's path
// /var/lib/waagent/CustomData, which tools and extensions read.
//
// WALinuxAgent keeps the base64 text there unless
// Provisioning.DecodeCustomData (or ExecuteCustomData, which the
// waagent.conf mapping turns into custom_data.decode) says to decode it;
// custom_data.decode does the same here. The text is the standard
// encoding of the data, which may differ in line breaks from the OVF's.
//
// Only sizes are ever logged.
type CustomData struct{}

// Name is "custom-data".
func (CustomData) Name() string { return "custom-data" }

const (
	// customDataFile, in the instance directory, is the decoded data.
	customDataFile = "custom-data"
	// waagentCustomData is WALinuxAgent's copy.
	waagentCustomData = azure.LibDir + "/CustomData"
)

// Apply saves the custom data where it differs.
func (CustomData) Apply(ctx context.Context, env *Env) (Outcome, error) {
	data := env.Data.CustomData()
	if len(data) == 0 {
		env.Log.Debug("no custom data")
		return Skipped, nil
	}
	waagentData := []byte(base64.StdEncoding.EncodeToString(data))
	if env.Config.CustomData.Decode {
		waagentData = data
	}
	if err := env.Root.MkdirAll(azure.LibDir, 0o700); err != nil {
		return "", err
	}
	if err := env.Root.MkdirAll(env.Instance.Dir, 0o700); err != nil {
		return "", err
	}
	changed := false
	for _, f := range []struct {
		name string
		data []byte
	}{
		{path.Join(env.Instance.Dir, customDataFile), data},
		{waagentCustomData, waagentData},
	} {
		c, err := saveSecret(env.Root, f.name, f.data)
		if err != nil {
			return "", err
		}
		if c {
			env.Log.Debug("custom data saved", "file", f.name, "bytes", len(f.data))
		}
		changed = changed || c
	}
	if !changed {
		return Unchanged, nil
	}
	return Changed, nil
}

// saveSecret makes name hold data readable by its owner only: a file with
// that content and no group or other permission is left as it is (0700
// once RunCustomData made it executable); otherwise data is written
// atomically, 0600. It reports whether it wrote.
func saveSecret(root *sys.Root, name string, data []byte) (bool, error) {
	old, err := root.ReadFile(name)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("reading %s: %w", name, err)
	}
	if err == nil && bytes.Equal(old, data) {
		fi, err := root.Stat(name)
		if err != nil {
			return false, err
		}
		if fi.Mode().Perm()&0o077 == 0 {
			return false, nil
		}
	}
	return true, root.WriteFileAtomic(name, data, 0o600)
}

// RunCustomData runs the custom data as a program when custom_data.execute
// says to (in the final stage, once per instance): the instance
// directory's copy, made 0700, run directly, or by /bin/sh when it is not
// an executable (a script without "#!"), as WALinuxAgent runs it through
// the shell. Offline it is not run: it would run on this machine, not on
// the target. A non-zero exit is an error with the exit status and the
// end of its stderr.
type RunCustomData struct{}

// Name is "run-custom-data".
func (RunCustomData) Name() string { return "run-custom-data" }

// customDataStderr bounds how much of the program's stderr an error carries.
const customDataStderr = 256

// Apply runs the custom data.
func (RunCustomData) Apply(ctx context.Context, env *Env) (Outcome, error) {
	if !env.Config.CustomData.Execute {
		env.Log.Debug("running the custom data is turned off (custom_data.execute)")
		return Skipped, nil
	}
	data := env.Data.CustomData()
	if len(data) == 0 {
		env.Log.Debug("no custom data to run")
		return Skipped, nil
	}
	if !env.Live {
		env.Log.Info("offline: the custom data is not run, it would run on this machine rather than the target")
		return Skipped, nil
	}
	name := path.Join(env.Instance.Dir, customDataFile)
	if err := env.Root.MkdirAll(env.Instance.Dir, 0o700); err != nil {
		return "", err
	}
	if _, err := saveSecret(env.Root, name, data); err != nil {
		return "", err
	}
	if err := env.Root.Chmod(name, 0o700); err != nil {
		return "", fmt.Errorf("making %s executable: %w", name, err)
	}
	program := env.Root.HostPath(name)
	env.Log.Info("running the custom data", "file", name, "bytes", len(data))
	_, err := env.Run.Run(ctx, sys.Command{Name: program})
	if errors.Is(err, syscall.ENOEXEC) {
		env.Log.Debug("the custom data is not an executable, running it with /bin/sh")
		_, err = env.Run.Run(ctx, sys.Command{Name: "/bin/sh", Args: []string{program}})
	}
	var ee *sys.ExitError
	if errors.As(err, &ee) {
		short := *ee
		if i := len(short.Stderr) - customDataStderr; i > 0 {
			for i < len(short.Stderr) && !utf8.RuneStart(short.Stderr[i]) {
				i++
			}
			short.Stderr = "…" + short.Stderr[i:]
		}
		return "", fmt.Errorf("running the custom data: %w", &short)
	}
	if err != nil {
		return "", fmt.Errorf("running the custom data: %w", err)
	}
	return Changed, nil
}
