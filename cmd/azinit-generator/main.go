// Command azinit-generator is a systemd generator (man systemd.generator):
// on every boot, and in the initramfs, it decides whether azinit runs and
// links its units into the boot. systemd calls it as
// `azinit-generator NORMAL_DIR EARLY_DIR LATE_DIR`. It exits 0 whatever
// it decides, 1 when an output could not be written, 2 on a bad command
// line.
package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/azinit/azinit/generator"
	"github.com/azinit/azinit/internal/logging"
	"github.com/azinit/azinit/internal/sys"
)

func main() {
	os.Exit(run(os.Args, os.Stderr))
}

// run runs the generator with the command line args, writing its log and
// errors to stderr (systemd puts them in the journal), and returns the
// exit code. Nothing goes to /var/log: the root may be read-only this
// early.
func run(args []string, stderr io.Writer) int {
	var failed error
	app := &cli.App{
		Name:            "azinit-generator",
		Usage:           "decide at boot whether azinit runs, and link its units",
		ArgsUsage:       "NORMAL_DIR [EARLY_DIR LATE_DIR]",
		HideHelpCommand: true,
		Writer:          stderr,
		ErrWriter:       stderr,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "root", Value: "/", Usage: "target root: every path read or written resolves under it (not the generator directories)"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() < 1 {
				cli.ShowAppHelp(c)
				return fmt.Errorf("want the generator directories")
			}
			failed = generate(c.String("root"), c.Args().First(), stderr)
			return nil
		},
		// The exit code is run's to choose: urfave/cli must not exit.
		ExitErrHandler: func(*cli.Context, error) {},
	}
	if err := app.Run(args); err != nil {
		fmt.Fprintln(stderr, "azinit-generator: bad command line:", err)
		return 2
	}
	if failed != nil {
		fmt.Fprintln(stderr, "azinit-generator: error:", failed)
		return 1
	}
	return 0
}

// generate runs the generator on the root dir, with normalDir as systemd's
// normal generator directory.
func generate(dir, normalDir string, stderr io.Writer) error {
	root, err := sys.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	log, err := logging.New(stderr, "info", "text")
	if err != nil {
		return err
	}
	_, err = generator.Run(root, normalDir, log, time.Now())
	return err
}
