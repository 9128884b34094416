// Command azinit-fabric is an offline Azure fabric on loopback (wireserver,
// HostGAPlugin, IMDS, blobs) answering from a scenario directory, and the
// builder of its provisioning media (design.md §7).
package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/azinit/azinit/fabric"
	"github.com/azinit/azinit/internal/logging"
)

func main() {
	logFlags := []cli.Flag{
		&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error"},
		&cli.StringFlag{Name: "log-format", Value: "text", Usage: "text or json"},
	}
	scenario := &cli.PathFlag{Name: "scenario", Required: true, Usage: "scenario `DIR`"}
	app := &cli.App{
		Name:                      "azinit-fabric",
		Usage:                     "an offline Azure fabric on loopback, and its provisioning media",
		DisableSliceFlagSeparator: true,
		Commands: []*cli.Command{
			{
				Name:  "serve",
				Usage: "serve the wireserver, HostGAPlugin and IMDS of a scenario until SIGINT/SIGTERM; SIGHUP reloads it",
				Flags: append([]cli.Flag{
					scenario,
					&cli.StringFlag{Name: "listen", Value: fabric.DefaultListen, Usage: "wireserver `ADDR` (loopback only)"},
					&cli.StringFlag{Name: "hostgaplugin-listen", Usage: "HostGAPlugin `ADDR` (default: the --listen host, port 0)"},
					&cli.StringFlag{Name: "imds-listen", Usage: "IMDS `ADDR` (default: the --listen host, port 0)"},
					&cli.PathFlag{Name: "addr-file", Usage: "write the listeners' URLs as JSON to `FILE` once listening"},
					&cli.PathFlag{Name: "record", Usage: "write every request as a JSON line to `FILE`"},
					&cli.StringSliceFlag{Name: "fault", Usage: "`KIND:ACTION[:COUNT]`: the first COUNT requests of KIND get ACTION " +
						"(an HTTP status, timeout, reset, truncate, garbage or slow=DURATION); repeatable"},
				}, logFlags...),
				Action: serve,
			},
			{
				Name:  "media",
				Usage: "write provisioning media holding the scenario's ovf-env.xml",
				Flags: []cli.Flag{
					scenario,
					&cli.PathFlag{Name: "out", Required: true, Usage: "image `FILE` to write"},
					&cli.StringFlag{Name: "format", Value: string(fabric.MediaUDF), Usage: "udf or iso9660"},
				},
				Action: func(c *cli.Context) error {
					return fabric.WriteMediaFile(c.Path("out"), c.Path("scenario"), fabric.MediaFormat(c.String("format")))
				},
			},
			{
				Name:      "relay",
				Usage:     "join stdin and stdout to a loopback fabric address: QEMU's guestfwd=...-cmd: runs one per guest connection",
				ArgsUsage: "ADDR",
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return fmt.Errorf("relay: want one ADDR (host:port), got %d arguments", c.NArg())
					}
					return fabric.Relay(c.Context, c.Args().First(), os.Stdin, os.Stdout)
				},
			},
		},
	}
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "azinit-fabric:", err)
		os.Exit(1)
	}
}

func serve(c *cli.Context) error {
	log, err := logging.New(os.Stderr, c.String("log-level"), c.String("log-format"))
	if err != nil {
		return err
	}
	faults, err := fabric.ParseFaults(c.StringSlice("fault"))
	if err != nil {
		return err
	}
	var record io.Writer
	if path := c.Path("record"); path != "" {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		record = f
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	fab, err := fabric.Start(ctx, fabric.Options{
		Scenario:           c.Path("scenario"),
		Listen:             c.String("listen"),
		HostGAPluginListen: c.String("hostgaplugin-listen"),
		IMDSListen:         c.String("imds-listen"),
		Faults:             faults,
		RecordTo:           record,
		Log:                log,
	})
	if err != nil {
		return err
	}
	if path := c.Path("addr-file"); path != "" {
		if err := fab.URLs().WriteFile(path); err != nil {
			fab.Close()
			return err
		}
	}
	for {
		select {
		case <-ctx.Done():
			return fab.Close()
		case <-hup:
			if err := fab.Reload(); err != nil {
				log.Error("reloading the scenario failed; the goal state stays", "error", err)
			}
		}
	}
}
