// Package azure is the Azure datasource: it gathers what the platform says
// about this VM from the provisioning media, IMDS and the wireserver, each
// source concurrently, and renders it as instance data.
package azure

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/azinit/azinit/datasource/azure/certs"
	"github.com/azinit/azinit/datasource/azure/extconfig"
	"github.com/azinit/azinit/datasource/azure/imds"
	"github.com/azinit/azinit/datasource/azure/media"
	"github.com/azinit/azinit/datasource/azure/ovf"
	"github.com/azinit/azinit/datasource/azure/wireserver"
	"github.com/azinit/azinit/internal/config"
	"github.com/azinit/azinit/internal/crypt"
	"github.com/azinit/azinit/internal/httpx"
	"github.com/azinit/azinit/internal/logging"
	"github.com/azinit/azinit/internal/sys"
)

// LibDir is WALinuxAgent's state directory, whose layout tools and
// extensions rely on: the transport key pair and the certificates live here.
const LibDir = "/var/lib/waagent"

// Sources selects what Fetch reads.
type Sources uint8

// The sources of the Azure datasource.
const (
	Media Sources = 1 << iota
	IMDS
	Wireserver
	All = Media | IMDS | Wireserver
)

// Options configure a fetch.
type Options struct {
	Root   *sys.Root
	Config config.Azure
	HTTP   *httpx.Client // nil: the default client (no proxy, no redirects)
	// Transport is the key pair certificates are requested for; nil fetches
	// no certificates.
	Transport *certs.Pending
	// PasswordSaltLength, when set, has the admin password hashed ($6$)
	// as soon as the provisioning media is read.
	PasswordSaltLength int
	// RouteFile is the kernel's routing table, "" for RouteFile; the
	// network sources wait for a route to the platform in it.
	RouteFile string
	Log       *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.Log == nil {
		o.Log = logging.Discard()
	}
	return o
}

// Data is what the sources said. A source that was not read, or failed,
// leaves its fields nil.
type Data struct {
	Media *media.Media
	OVF   *ovf.Environment
	// InvalidOVF says why the provisioning media held an ovf-env.xml that
	// does not parse: the platform's request is unknown, so provisioning
	// fails whatever else the VM could learn. "" when the media was fine
	// or absent.
	InvalidOVF string
	// PasswordHash is the admin password as $6$ crypt, "" when there is
	// none (or it was not asked for).
	PasswordHash string
	IMDS         *imds.Instance

	WireserverURL      string
	GoalState          *wireserver.GoalState
	HostingEnvironment *wireserver.HostingEnvironment
	SharedConfig       []byte
	// Extensions is the ExtensionsConfig document (ExtensionsConfig) as
	// parsed: the extensions requested and the status blob; nil when the
	// goal state has none.
	Extensions       *extconfig.ExtensionsGoalState
	ExtensionsConfig []byte
	Certificates     []certs.Certificate
}

// Fetch reads the selected sources concurrently into d, replacing what d
// held from them. A source that fails leaves d's earlier data from it (a
// stage's cache) in place; Fetch returns the joined errors of the sources
// that failed, each naming its source.
func (d *Data) Fetch(ctx context.Context, o Options, which Sources) error {
	o = o.withDefaults()
	var wg sync.WaitGroup
	errs := make([]error, 3)
	run := func(i int, s Sources, op string, fn func(context.Context) error) {
		if which&s == 0 {
			return
		}
		wg.Go(func() {
			_, err := logging.Op(ctx, o.Log, op, fn)
			if err != nil {
				errs[i] = fmt.Errorf("%s: %w", op, err)
			}
		})
	}
	if which&(IMDS|Wireserver) != 0 {
		// Not fatal: the fetches retry, and say what failed.
		logging.Op(ctx, o.Log, "waiting for a route to the platform", func(ctx context.Context) error { return waitForRoute(ctx, o) })
	}
	run(0, Media, "reading provisioning media", func(ctx context.Context) error { return d.readMedia(ctx, o) })
	run(1, IMDS, "fetching instance metadata", func(ctx context.Context) error { return d.fetchIMDS(ctx, o) })
	run(2, Wireserver, "fetching goal state", func(ctx context.Context) error { return d.fetchWireserver(ctx, o) })
	wg.Wait()
	return errors.Join(errs...)
}

func (d *Data) readMedia(ctx context.Context, o Options) error {
	m, err := media.Read(ctx, media.Options{
		Source: o.Config.Media,
		Wait:   time.Duration(o.Config.MediaWait),
		Log:    o.Log,
	})
	if err != nil {
		return err
	}
	env, err := ovf.Parse(m.OVF)
	if err != nil {
		d.InvalidOVF = fmt.Sprintf("%s: %v", m.Device, err)
		return fmt.Errorf("%s: %w", m.Device, err)
	}
	hash := ""
	if env.HasPassword() && o.PasswordSaltLength > 0 {
		// Hashed at once: no later step, and no cache, sees the password.
		if hash, err = crypt.SHA512(env.Password(), o.PasswordSaltLength); err != nil {
			return fmt.Errorf("hashing the admin password: %w", err)
		}
	}
	d.Media, d.OVF, d.PasswordHash, d.InvalidOVF = m, env, hash, ""
	return nil
}

func (d *Data) fetchIMDS(ctx context.Context, o Options) error {
	c := &imds.Client{
		BaseURL:  o.Config.IMDS,
		HTTP:     o.HTTP,
		Deadline: time.Duration(o.Config.IMDSDeadline),
		Log:      o.Log,
	}
	inst, err := c.Instance(ctx)
	if err != nil {
		return err
	}
	d.IMDS = inst
	return nil
}

// NewHTTPClient is the client for the platform's endpoints (no proxy, no
// redirects), its per-request timeout and retry waits as cfg says.
func NewHTTPClient(cfg config.Azure, log *slog.Logger) *httpx.Client {
	c := &httpx.Client{Log: log, Timeout: time.Duration(cfg.RequestTimeout)}
	// The protocol's waits are given in seconds; retry_unit rescales them
	// (to milliseconds in tests).
	if unit := time.Duration(cfg.RetryUnit); unit != time.Second {
		c.Sleep = func(ctx context.Context, d time.Duration) error {
			return httpx.Sleep(ctx, time.Duration(float64(d)*float64(unit)/float64(time.Second)))
		}
	}
	return c
}

// WireserverURL is the configured wireserver, else the one DHCP option 245
// names in the leases under root, else the platform's fixed address.
func WireserverURL(root *sys.Root, cfg config.Azure, log *slog.Logger) string {
	if cfg.Wireserver != "" {
		return cfg.Wireserver
	}
	addr, source, err := wireserver.DiscoverEndpoint(root, time.Now())
	if err != nil {
		log.Warn("reading DHCP leases for the wireserver address, using the default", "error", err)
		addr, source = wireserver.DefaultEndpoint, "default"
	}
	log.Debug("wireserver endpoint", "address", addr, "source", source)
	return "http://" + addr
}

// stale reports whether err says the goal state moved on (410 Gone, or
// InvalidContainerConfiguration): the caller should fetch it again, once.
func stale(err error) bool {
	return errors.Is(err, httpx.ErrGone) || errors.Is(err, wireserver.ErrInvalidContainer)
}

func (d *Data) fetchWireserver(ctx context.Context, o Options) error {
	d.WireserverURL = WireserverURL(o.Root, o.Config, o.Log)
	c := &wireserver.Client{Endpoint: d.WireserverURL, HTTP: o.HTTP, Log: o.Log}
	err := d.fetchGoalState(ctx, c, o)
	if stale(err) {
		o.Log.Info("goal state changed while it was read, fetching it again", "cause", err)
		err = d.fetchGoalState(ctx, c, o)
	}
	return err
}

func (d *Data) fetchGoalState(ctx context.Context, c *wireserver.Client, o Options) error {
	// Versions only vets the protocol: ask for it alongside the goal state.
	versions := make(chan error, 1)
	go func() {
		_, err := c.Versions(ctx)
		versions <- err
	}()
	gs, err := c.GoalState(ctx)
	if verr := <-versions; verr != nil {
		return verr
	}
	if err != nil {
		return err
	}
	d.GoalState = gs

	// Each document replaces the one held only once it is read: a failure
	// keeps the last good one (from the cache) in place.
	var (
		wg       sync.WaitGroup
		errs     = make([]error, 4)
		hosting  *wireserver.HostingEnvironment
		shared   []byte
		ext      *extconfig.ExtensionsGoalState
		extRaw   []byte
		certList []certs.Certificate
	)
	wg.Go(func() { hosting, errs[0] = c.HostingEnvironment(ctx, gs) })
	wg.Go(func() { shared, errs[1] = c.SharedConfig(ctx, gs) })
	if gs.ExtensionsConfig != "" {
		wg.Go(func() { ext, extRaw, errs[2] = fetchExtensions(ctx, c, gs) })
	}
	if gs.Certificates != "" && o.Transport != nil {
		wg.Go(func() { certList, errs[3] = fetchCertificates(ctx, c, gs, o.Transport, o.Log) })
	}
	wg.Wait()
	if errs[0] == nil {
		d.HostingEnvironment = hosting
	}
	if errs[1] == nil {
		d.SharedConfig = shared
	}
	if errs[2] == nil {
		d.Extensions, d.ExtensionsConfig = ext, extRaw
	}
	if errs[3] == nil && o.Transport != nil {
		d.Certificates = certList
	}
	return errors.Join(errs...)
}

// ReportHealth sends h to the wireserver d was fetched from, for d's goal
// state: as XML, or to the JSON /provisioning/health endpoint when json is
// set. When d has no goal state yet (a failure found before the wireserver
// was read), it is fetched first; when the wireserver says it is stale, it
// is fetched again and the report sent once more, as the protocol asks.
func (d *Data) ReportHealth(ctx context.Context, o Options, h wireserver.Health, json bool) error {
	o = o.withDefaults()
	if d.WireserverURL == "" {
		d.WireserverURL = WireserverURL(o.Root, o.Config, o.Log)
	}
	c := &wireserver.Client{Endpoint: d.WireserverURL, HTTP: o.HTTP, Log: o.Log}
	if json {
		return c.ReportHealthJSON(ctx, h)
	}
	refresh := func() error {
		gs, err := c.GoalState(ctx)
		if err == nil {
			d.GoalState = gs
		}
		return err
	}
	if d.GoalState == nil {
		if err := refresh(); err != nil {
			return err
		}
	}
	err := c.ReportHealth(ctx, d.GoalState, h)
	if !stale(err) {
		return err
	}
	o.Log.Info("goal state changed before the health report, fetching it again", "cause", err)
	if err := refresh(); err != nil {
		return err
	}
	return c.ReportHealth(ctx, d.GoalState, h)
}

func fetchExtensions(ctx context.Context, c *wireserver.Client, gs *wireserver.GoalState) (*extconfig.ExtensionsGoalState, []byte, error) {
	b, err := c.ExtensionsConfig(ctx, gs)
	if err != nil {
		return nil, nil, err
	}
	egs, err := extconfig.ParseExtensionsConfig(b)
	return egs, b, err
}

// FetchCertificates fetches the certificates of d's goal state with
// o.Transport, which the stages start early and wait for only here, so the
// key generation overlaps the work that does not need certificates. A goal
// state without certificates leaves d with none.
func (d *Data) FetchCertificates(ctx context.Context, o Options) error {
	o = o.withDefaults()
	switch {
	case d.GoalState == nil:
		return errors.New("certificates: the goal state was not fetched")
	case d.GoalState.Certificates == "":
		d.Certificates = nil
		return nil
	case o.Transport == nil:
		return errors.New("certificates: no transport key")
	}
	c := &wireserver.Client{Endpoint: d.WireserverURL, HTTP: o.HTTP, Log: o.Log}
	cs, err := fetchCertificates(ctx, c, d.GoalState, o.Transport, o.Log)
	if err != nil {
		return err
	}
	d.Certificates = cs
	return nil
}

// fetchCertificates asks for the goal state's certificates encrypted with
// AES-128, then, if that cannot be fetched or opened, with 3DES, as
// WALinuxAgent does.
func fetchCertificates(ctx context.Context, c *wireserver.Client, gs *wireserver.GoalState, pending *certs.Pending, log *slog.Logger) ([]certs.Certificate, error) {
	t, err := pending.Wait(ctx)
	if err != nil {
		return nil, fmt.Errorf("transport key: %w", err)
	}
	var errs []error
	for _, cipher := range []string{"AES128_CBC", "DES_EDE3_CBC"} {
		cs, err := fetchCertificatesWith(ctx, c, gs, t, cipher)
		if errors.Is(err, certs.ErrUnsupportedFormat) {
			// A package this agent cannot read, whatever the cipher.
			log.Warn("skipping the goal state's certificates", "error", err)
			return nil, nil
		}
		if err == nil {
			return cs, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", cipher, err))
	}
	return nil, fmt.Errorf("certificates: %w", errors.Join(errs...))
}

func fetchCertificatesWith(ctx context.Context, c *wireserver.Client, gs *wireserver.GoalState, t *certs.Transport, cipher string) ([]certs.Certificate, error) {
	b, err := c.Certificates(ctx, gs, t.HeaderValue(), cipher)
	if err != nil {
		return nil, err
	}
	f, err := certs.ParseCertificatesXML(b)
	if err != nil || !f.HasData() {
		return nil, err
	}
	return certs.Decrypt(f.Data, t)
}
