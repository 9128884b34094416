// Command azinit-extensions runs the platform's extension handlers: a
// daemon under systemd (Type=notify, with a watchdog), or one pass with
// --once.
package main

import (
	"os"
	"strings"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/urfave/cli/v2"

	"github.com/azinit/azinit/cmd/internal/cmdenv"
	"github.com/azinit/azinit/extensions/agent"
	"github.com/azinit/azinit/internal/sys"
)

func main() {
	cmdenv.Run(&cli.App{
		Name:  "azinit-extensions",
		Usage: "run the Azure VM extension handlers the goal state asks for, and report their status",
		Flags: append(cmdenv.Flags("info"),
			&cli.BoolFlag{Name: "once", Usage: "take the current goal state up, upload the status once and exit"},
		),
		Action: func(c *cli.Context) error {
			env, err := cmdenv.Setup(c)
			if err != nil {
				return err
			}
			defer env.Close()
			watchdog, _ := daemon.SdWatchdogEnabled(false)
			return agent.Run(c.Context, agent.Options{
				Root:     env.Root,
				Config:   env.Config,
				Log:      env.Log,
				Run:      sys.ExecRunner{Log: env.Log},
				Notify:   func(state string) { daemon.SdNotify(false, state) },
				Watchdog: watchdog,
				Once:     c.Bool("once"),
				BootID:   bootID(),
			})
		},
	})
}

// bootID is the kernel's id of this boot: read, never written, so it
// comes from the running kernel whatever the target root.
func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
