// Command azinit inspects what the platform said and what the boot stages
// did: query, version.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/azinit/azinit/cmd/internal/cmdenv"
	"github.com/azinit/azinit/internal/version"
	"github.com/azinit/azinit/query"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	app := &cli.App{
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
				Name:  "version",
				Usage: "print the version",
				Action: func(c *cli.Context) error {
					_, err := fmt.Fprintln(c.App.Writer, version.Version)
					return err
				},
			},
		},
	}
	os.Exit(cmdenv.Fail(app.RunContext(ctx, os.Args)))
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
