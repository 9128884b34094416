// Package cmdenv is what every azinit binary shares on its command line:
// the target root, the configuration, and logging.
package cmdenv

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/azinit/azinit/internal/config"
	"github.com/azinit/azinit/internal/logging"
	"github.com/azinit/azinit/internal/sys"
	"github.com/azinit/azinit/stages"
)

// Flags are --root, --config, --log-level (default level) and --log-format.
func Flags(level string) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "root", Value: "/", Usage: "target root: every path read or written resolves under it"},
		&cli.StringFlag{Name: "config", Usage: "configuration file (default <root>" + config.DefaultPath + " and its .d drop-ins)"},
		&cli.StringFlag{Name: "log-level", Value: level, Usage: "debug, info, warn, error or off"},
		&cli.StringFlag{Name: "log-format", Value: "text", Usage: "text or json"},
	}
}

// Env is a binary's view of the machine, built from Flags.
type Env struct {
	Root    *sys.Root
	Config  *config.Config
	Log     *slog.Logger
	logFile *os.File
}

// Setup builds the Env from the flags. Logs go to stderr.
func Setup(c *cli.Context) (*Env, error) {
	return setup(c, false)
}

// setup builds the Env; with logFile the log is also appended to stages.LogPath
// under the root (0640; a root that cannot take it only loses that copy).
func setup(c *cli.Context, logFile bool) (*Env, error) {
	root, err := sys.OpenRoot(c.String("root"))
	if err != nil {
		return nil, err
	}
	env := &Env{Root: root}
	var logTo io.Writer = os.Stderr
	if logFile && root.MkdirAll(path.Dir(stages.LogPath), 0o755) == nil {
		if f, err := root.OpenFile(stages.LogPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640); err == nil {
			env.logFile, logTo = f, io.MultiWriter(os.Stderr, f)
		}
	}
	if env.Log, err = logging.New(logTo, c.String("log-level"), c.String("log-format")); err == nil {
		env.Config, err = config.Load(root, c.String("config"))
	}
	if err != nil {
		env.Close()
		return nil, err
	}
	return env, nil
}

// Close releases the root and the log file.
func (e *Env) Close() error {
	if e.logFile != nil {
		e.logFile.Close()
	}
	return e.Root.Close()
}

// Stage is the main function of a boot stage's binary: it runs s with the
// common flags and exits 0, or 1 when the stage failed (status.json says
// what).
func Stage(name, usage string, s stages.Stage) {
	Run(&cli.App{
		Name:  name,
		Usage: usage,
		Flags: Flags("info"),
		Action: func(c *cli.Context) error {
			env, err := setup(c, true)
			if err != nil {
				return err
			}
			defer env.Close()
			return stages.Run(c.Context, stages.Options{
				Root:   env.Root,
				Config: env.Config,
				Log:    env.Log.With("stage", s.Name),
				Run:    sys.ExecRunner{Log: env.Log},
				Kernel: sys.LiveKernel{},
			}, s)
		},
	})
}

// Run runs app with the command line, until SIGINT or SIGTERM cancels its
// context, and exits with Fail's code.
func Run(app *cli.App) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Fail(app.RunContext(ctx, os.Args))
	stop()
	os.Exit(code)
}

// Fail prints err for the user and returns the exit code for it.
func Fail(err error) int {
	if err == nil {
		return 0
	}
	fmt.Fprintln(os.Stderr, "error:", err)
	return 1
}
