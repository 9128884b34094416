package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"github.com/azinit/azinit/datasource/azure/extconfig"
	"github.com/azinit/azinit/datasource/azure/hostgaplugin"
	"github.com/azinit/azinit/datasource/azure/storage"
)

// downloadDeadline bounds fetching one manifest or package over all its
// locations and both channels (§11.1).
const downloadDeadline = 5 * time.Minute

// fetcher reads artifacts the goal state points at: from storage
// directly, else through the HostGAPlugin, and keeps to the channel that
// last worked as the platform agent does (§11.1).
type fetcher struct {
	store *storage.Client
	hgap  *hostgaplugin.Client
	log   *slog.Logger

	mu       sync.Mutex
	identity hostgaplugin.Identity
	verify   bool // ask the HostGAPlugin to verify against the blob (Fast Track)
	viaHGAP  bool // the HostGAPlugin is tried first
}

// setGoal tells the fetcher which goal state the artifacts belong to.
func (f *fetcher) setGoal(id hostgaplugin.Identity, fastTrack bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.identity, f.verify = id, fastTrack
}

// Get reads a small blob (the InVMArtifactsProfile).
func (f *fetcher) Get(ctx context.Context, url string) ([]byte, error) {
	var b []byte
	err := f.try(ctx,
		func(ctx context.Context) (err error) { b, err = f.store.Get(ctx, url); return err },
		func(ctx context.Context, id hostgaplugin.Identity, verify bool) (err error) {
			b, err = f.hgap.Get(ctx, id, hostgaplugin.Artifact{Location: url})
			return err
		})
	return b, err
}

// Manifest fetches the handler's manifest from the first of its
// locations, in random order, that answers with one.
func (f *fetcher) Manifest(ctx context.Context, h *extconfig.Handler) (*extconfig.Manifest, string, error) {
	ctx, cancel := context.WithTimeout(ctx, downloadDeadline)
	defer cancel()
	uris := shuffled(h.ManifestURIs())
	if len(uris) == 0 {
		return nil, "", fmt.Errorf("%s: the goal state gives no manifest location", h.Name)
	}
	var errs []error
	for _, u := range uris {
		var b []byte
		err := f.try(ctx,
			func(ctx context.Context) (err error) { b, err = f.store.Get(ctx, u); return err },
			func(ctx context.Context, id hostgaplugin.Identity, verify bool) (err error) {
				b, err = f.hgap.Get(ctx, id, hostgaplugin.Artifact{Location: u, VerifyFromBlob: verify})
				return err
			})
		if err == nil {
			m, perr := extconfig.ParseManifest(b)
			if perr == nil {
				return m, u, nil
			}
			err = perr
		}
		errs = append(errs, fmt.Errorf("%s: %w", storage.Redact(u), err))
	}
	return nil, "", fmt.Errorf("manifest of %s: %w", h.Name, errors.Join(errs...))
}

// Package downloads the package into file from the first of its
// locations, in random order, that serves it.
func (f *fetcher) Package(ctx context.Context, pkg extconfig.Package, manifestLocation string, file *os.File) error {
	ctx, cancel := context.WithTimeout(ctx, downloadDeadline)
	defer cancel()
	uris := shuffled(pkg.URIs)
	if len(uris) == 0 {
		return fmt.Errorf("No package uri found for version %s", pkg.Version)
	}
	var errs []error
	for _, u := range uris {
		err := f.try(ctx,
			func(ctx context.Context) error { return f.store.Download(ctx, u, file) },
			func(ctx context.Context, id hostgaplugin.Identity, verify bool) error {
				return f.hgap.Download(ctx, id, hostgaplugin.Artifact{Location: u, ManifestLocation: manifestLocation, VerifyFromBlob: verify}, file)
			})
		if err == nil {
			return nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", storage.Redact(u), err))
	}
	return errors.Join(errs...)
}

// try runs the request on the preferred channel, then on the other; the
// other becomes the preferred one when only it worked.
func (f *fetcher) try(ctx context.Context, direct func(context.Context) error, viaHGAP func(context.Context, hostgaplugin.Identity, bool) error) error {
	f.mu.Lock()
	id, verify, hgapFirst := f.identity, f.verify, f.viaHGAP
	f.mu.Unlock()
	hgap := func(ctx context.Context) error { return viaHGAP(ctx, id, verify) }
	first, second := direct, hgap
	if hgapFirst {
		first, second = hgap, direct
	}
	err := first(ctx)
	if err == nil || ctx.Err() != nil {
		return err
	}
	err2 := second(ctx)
	if err2 != nil {
		return errors.Join(err, err2)
	}
	f.mu.Lock()
	f.viaHGAP = !hgapFirst
	f.mu.Unlock()
	f.log.Info("artifacts now fetched through the other channel", "hostgaplugin", !hgapFirst, "cause", err)
	return nil
}

func shuffled(s []string) []string {
	s = append([]string(nil), s...)
	rand.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
	return s
}
