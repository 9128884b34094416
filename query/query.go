// Package query answers `azinit query`: the instance data the boot stages
// cached, or, with Fetch, what the platform says right now.
package query

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"

	"github.com/azinit/azinit/datasource"
	"github.com/azinit/azinit/datasource/azure"
	"github.com/azinit/azinit/datasource/azure/certs"
	"github.com/azinit/azinit/datasource/azure/media"
	"github.com/azinit/azinit/internal/config"
	"github.com/azinit/azinit/internal/httpx"
	"github.com/azinit/azinit/internal/sys"
)

// Options are a query.
type Options struct {
	Root   *sys.Root
	Config *config.Config
	// Key is a dotted path into the instance data; "" is all of it.
	Key string
	// Format is "text" (strings bare, the rest as JSON) or "json".
	Format string
	// Fetch reads the sources live instead of the cache, applying nothing.
	Fetch bool
	// Privileged callers see the sensitive view and may contact the
	// wireserver; others see the redacted view, and only IMDS and the
	// media are read live (the wireserver may be firewalled to root).
	Privileged bool
	HTTP       *httpx.Client
	Log        *slog.Logger
	Out        io.Writer
}

// Run prints the instance data, or the value at o.Key. A live fetch prints
// whatever the sources gave and returns the errors of those that failed;
// absent provisioning media is normal after the first boot and only noted.
func Run(ctx context.Context, o Options) error {
	var doc []byte
	var fetchErr error
	if o.Fetch {
		doc, fetchErr = fetch(ctx, o)
	} else {
		var err error
		if doc, err = readCache(o); err != nil {
			return err
		}
	}
	v, err := datasource.Lookup(doc, o.Key)
	if err != nil {
		return errors.Join(err, fetchErr)
	}
	out := datasource.Format(v)
	if o.Format == "json" {
		b, _ := json.MarshalIndent(v, "", "  ")
		out = string(b)
	}
	if _, err := fmt.Fprintln(o.Out, out); err != nil {
		return err
	}
	return fetchErr
}

func readCache(o Options) ([]byte, error) {
	if o.Privileged {
		b, err := o.Root.ReadFile(datasource.SensitivePath)
		if err == nil {
			return b, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	b, err := o.Root.ReadFile(datasource.InstanceDataPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no instance data in %s yet: the boot stages have not run (use --fetch to ask the platform)", datasource.InstanceDataPath)
	}
	return b, err
}

func fetch(ctx context.Context, o Options) ([]byte, error) {
	cfg := o.Config.Datasource.Azure
	cfg.MediaWait = 0 // a query looks once; it does not wait for a disc
	fo := azure.Options{Root: o.Root, Config: cfg, HTTP: o.HTTP, Log: o.Log}
	which := azure.Media | azure.IMDS
	if o.Privileged {
		which = azure.All
		// Reuse the agent's transport key pair; without one, a throwaway
		// pair is generated while the other sources are read. Nothing is
		// saved: a query applies nothing.
		fo.Transport = certs.PrepareTransport(o.Root, azure.LibDir, rand.Reader, o.Log)
	}
	data := &azure.Data{}
	err := data.Fetch(ctx, fo, which)
	if errors.Is(err, media.ErrNoMedia) {
		o.Log.Info("no provisioning media", "detail", err)
		err = withoutNoMedia(err)
	}
	if _, kerr := data.PublicSSHKeys(); kerr != nil && which&azure.Wireserver != 0 {
		o.Log.Warn("some public keys could not be resolved", "error", kerr)
	}
	doc, jerr := json.Marshal(data.InstanceData(o.Privileged))
	return doc, errors.Join(err, jerr)
}

// withoutNoMedia drops the media source's ErrNoMedia from Fetch's joined
// errors, keeping the others.
func withoutNoMedia(err error) error {
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return nil // the only error was the missing media
	}
	var rest []error
	for _, e := range j.Unwrap() {
		if !errors.Is(e, media.ErrNoMedia) {
			rest = append(rest, e)
		}
	}
	return errors.Join(rest...)
}
