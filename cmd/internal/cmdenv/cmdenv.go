// Package cmdenv is what every azinit binary shares on its command line:
// the target root, the configuration, and logging.
package cmdenv

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/azinit/azinit/internal/config"
	"github.com/azinit/azinit/internal/logging"
	"github.com/azinit/azinit/internal/sys"
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
	Root   *sys.Root
	Config *config.Config
	Log    *slog.Logger
}

// Setup builds the Env from the flags. Logs go to stderr.
func Setup(c *cli.Context) (*Env, error) {
	log, err := logging.New(os.Stderr, c.String("log-level"), c.String("log-format"))
	if err != nil {
		return nil, err
	}
	root, err := sys.OpenRoot(c.String("root"))
	if err != nil {
		return nil, err
	}
	cfg, err := config.Load(root, c.String("config"))
	if err != nil {
		root.Close()
		return nil, err
	}
	return &Env{Root: root, Config: cfg, Log: log}, nil
}

// Close releases the root.
func (e *Env) Close() error { return e.Root.Close() }

// Fail prints err for the user and returns the exit code for it.
func Fail(err error) int {
	if err == nil {
		return 0
	}
	fmt.Fprintln(os.Stderr, "error:", err)
	return 1
}
