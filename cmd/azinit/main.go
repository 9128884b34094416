// Command azinit inspects what the platform said and what the boot stages
// did: query, status, analyze, clean, version.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/azinit/azinit/cmd/internal/cmdenv"
	"github.com/azinit/azinit/generator"
	"github.com/azinit/azinit/internal/version"
	"github.com/azinit/azinit/query"
	"github.com/azinit/azinit/stages"
)

func main() {
	cmdenv.Run(&cli.App{
		Name:  "azinit",
		Usage: "inspect azinit's instance data and progress",
		Commands: []*cli.Command{
			{
				Name:      "query",
				Usage:     "print instance data, or the value at a dotted KEY (v1.local_hostname)",
				ArgsUsage: "[KEY]",
				// An interactive tool prints its answer, or one error;
				// its logs are there when asked for.
				Flags: append(cmdenv.Flags("off"),
					&cli.BoolFlag{Name: "all", Usage: "print all instance data (the default without KEY)"},
					&cli.StringFlag{Name: "format", Value: "text", Usage: "text (strings bare) or json"},
					&cli.BoolFlag{Name: "fetch", Usage: "read the sources live (media, IMDS, wireserver) instead of the cache; applies nothing"},
				),
				Action: runQuery,
			},
			{
				Name:  "status",
				Usage: "show the boot stages' progress and the provisioning state; exit 0 done, 1 error, 3 not finished",
				Flags: append(cmdenv.Flags("off"),
					&cli.BoolFlag{Name: "wait", Usage: "wait until the boot stages have finished"},
					&cli.StringFlag{Name: "format", Value: "text", Usage: "text or json"},
				),
				Action: runStatus,
			},
			{
				Name:   "analyze",
				Usage:  "show where the boot's time went: each stage, then every module, slowest first",
				Flags:  append(cmdenv.Flags("off"), &cli.StringFlag{Name: "format", Value: "text", Usage: "text or json"}),
				Action: runAnalyze,
			},
			{
				Name:   "clean",
				Usage:  "forget the instance so that the next boot provisions again",
				Flags:  append(cmdenv.Flags("off"), &cli.BoolFlag{Name: "logs", Usage: "also remove " + stages.LogPath}),
				Action: runClean,
			},
			{
				Name:  "version",
				Usage: "print the version",
				Action: func(c *cli.Context) error {
					_, err := fmt.Fprintln(c.App.Writer, version.Version)
					return err
				},
			},
		},
	})
}

func runStatus(c *cli.Context) error {
	env, err := cmdenv.Setup(c)
	if err != nil {
		return err
	}
	defer env.Close()
	var r *stages.Report
	for {
		if r, err = stages.ReadReport(env.Root); err != nil {
			return err
		}
		if r.State == stages.StateNotStarted {
			// Nothing ran: perhaps nothing will, as the generator decided.
			if st, err := generator.ReadState(env.Root); err == nil && !st.Enabled {
				r.State, r.Reason = stages.StateDisabled, st.Reason
			}
		}
		if !c.Bool("wait") || r.Settled() {
			break
		}
		select {
		case <-c.Context.Done():
			return c.Context.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	if err := writeFormatted(c, r, r.WriteText); err != nil {
		return err
	}
	if code := r.ExitCode(); code != 0 {
		return cli.Exit("", code)
	}
	return nil
}

func runAnalyze(c *cli.Context) error {
	env, err := cmdenv.Setup(c)
	if err != nil {
		return err
	}
	defer env.Close()
	a, err := stages.Analyze(env.Root)
	if err != nil {
		return fmt.Errorf("no boot to analyze: %w", err)
	}
	return writeFormatted(c, a, a.WriteText)
}

func runClean(c *cli.Context) error {
	env, err := cmdenv.Setup(c)
	if err != nil {
		return err
	}
	defer env.Close()
	return stages.Clean(env.Root, c.Bool("logs"))
}

// writeFormatted prints v as --format asks: text through text, or JSON.
func writeFormatted(c *cli.Context, v any, text func(io.Writer) error) error {
	switch f := c.String("format"); f {
	case "text":
		return text(c.App.Writer)
	case "json":
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(c.App.Writer, string(b))
		return err
	default:
		return fmt.Errorf("--format %q: want text or json", f)
	}
}

func runQuery(c *cli.Context) error {
	if c.NArg() > 1 && strings.HasPrefix(c.Args().Get(1), "-") {
		return fmt.Errorf("query: flags go before KEY (azinit query [flags] [KEY])")
	}
	if c.NArg() > 1 || (c.Bool("all") && c.NArg() == 1) {
		return fmt.Errorf("query takes one KEY or --all")
	}
	if f := c.String("format"); f != "text" && f != "json" {
		return fmt.Errorf("--format %q: want text or json", f)
	}
	env, err := cmdenv.Setup(c)
	if err != nil {
		return err
	}
	defer env.Close()
	return query.Run(c.Context, query.Options{
		Root:       env.Root,
		Config:     env.Config,
		Key:        c.Args().First(),
		Format:     c.String("format"),
		Fetch:      c.Bool("fetch"),
		Privileged: os.Geteuid() == 0,
		Log:        env.Log,
		Out:        c.App.Writer,
	})
}
