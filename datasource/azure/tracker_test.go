package azure_test

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/azinit/azinit/datasource/azure"
	"github.com/azinit/azinit/datasource/azure/certs"
	"github.com/azinit/azinit/datasource/azure/extconfig"
	"github.com/azinit/azinit/datasource/azure/hostgaplugin"
	"github.com/azinit/azinit/datasource/azure/wireserver"
	"github.com/azinit/azinit/fabric"
	"github.com/azinit/azinit/internal/httpx"
	"github.com/azinit/azinit/internal/logging"
	"github.com/azinit/azinit/internal/sys"
)

// trackerOn is a Tracker following a fabric serving a copy of the
// extensions scenario with extensionsYAML, and the scenario's directory.
func trackerOn(t *testing.T, extensionsYAML string) (*azure.Tracker, *fabric.Fabric, string, *time.Time) {
	t.Helper()
	tmp := t.TempDir()
	scenario := filepath.Join(tmp, "scenario")
	if err := os.CopyFS(scenario, os.DirFS("../../testdata/scenarios/extensions")); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(filepath.Join(tmp, "handlers"), os.DirFS("../../testdata/handlers")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(scenario, fabric.ExtensionsFile), []byte(extensionsYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := fabric.Start(context.Background(), fabric.Options{Scenario: scenario})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	root, err := sys.OpenRoot(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	http := &httpx.Client{Sleep: func(ctx context.Context, d time.Duration) error { return ctx.Err() }}
	now := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	tr := &azure.Tracker{
		Root:              root,
		Wireserver:        &wireserver.Client{Endpoint: f.URLs().Wireserver, HTTP: http},
		HostGAPlugin:      &hostgaplugin.Client{Endpoint: f.URLs().HostGAPlugin, HTTP: http},
		Transport:         certs.PrepareTransport(root, azure.LibDir, rand.Reader, nil),
		RecheckWireserver: 5 * time.Minute,
		Log:               logging.Discard(),
		Now:               func() time.Time { return now },
	}
	return tr, f, scenario, &now
}

const trackedPlugin = `packages: ../handlers
plugins:
  - {name: Azinit.Test.Handler, version: "1.0.0", seq_no: SEQ, protected_settings: {secret: s3cret}}
`

func poll(t *testing.T, tr *azure.Tracker) (azure.Extensions, bool) {
	t.Helper()
	e, changed, err := tr.Poll(context.Background())
	if err != nil {
		t.Fatalf("Poll: %v", err)
	}
	return e, changed
}

func reload(t *testing.T, f *fabric.Fabric, scenario, doc string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(scenario, fabric.ExtensionsFile), []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := f.Reload(); err != nil {
		t.Fatal(err)
	}
}

func TestTrackerFollowsFastTrackAndFallsBack(t *testing.T) {
	fastTrack := "fast_track: true\n" + strings.Replace(trackedPlugin, "SEQ", "0", 1)
	tr, f, scenario, now := trackerOn(t, fastTrack)

	e, changed := poll(t, tr)
	if !changed || e.ID != "incarnation_1" || !tr.FastTrack() {
		t.Fatalf("first poll: %s changed=%t fastTrack=%t", e.ID, changed, tr.FastTrack())
	}
	// The goal state's certificates are where handlers look for them.
	tp := e.Goal.Handlers[0].Settings[0].ProtectedSettingsCertThumbprint
	if _, err := tr.Root.Stat(azure.LibDir + "/" + tp + ".prv"); err != nil {
		t.Errorf("certificate %s not written: %v", tp, err)
	}
	requests := len(f.Record())
	if _, changed := poll(t, tr); changed {
		t.Error("an unchanged goal state came back as new")
	}
	if rec := f.Record()[requests:]; len(rec) != 1 || rec[0].Kind != fabric.KindVMSettings || rec[0].Status != 304 {
		t.Errorf("an idle poll made %d requests (%+v), want one vmSettings answered 304", len(rec), rec)
	}

	// A change shows in vmSettings: taken from there, the wireserver not read.
	*now = now.Add(time.Second)
	reload(t, f, scenario, "fast_track: true\n"+strings.Replace(trackedPlugin, "SEQ", "1", 1))
	e, changed = poll(t, tr)
	if !changed || !strings.HasPrefix(e.ID, "etag_") || e.Goal.Source != extconfig.SourceFastTrack || e.Goal.Handlers[0].Settings[0].SeqNo != 1 {
		t.Errorf("after a Fast Track change: %s %s changed=%t", e.ID, e.Goal.Source, changed)
	}
	if _, err := tr.Root.Stat(azure.FastTrackFile); err != nil {
		t.Errorf("the Fast Track timestamp was not kept: %v", err)
	}

	// A certificate file gone missing is fetched again.
	tr.Root.Remove(azure.LibDir + "/" + tp + ".crt")
	poll(t, tr)
	if _, err := tr.Root.Stat(azure.LibDir + "/" + tp + ".crt"); err != nil {
		t.Errorf("a missing certificate was not fetched again: %v", err)
	}

	// The HostGAPlugin stops serving vmSettings: back to the wireserver.
	reload(t, f, scenario, strings.Replace(trackedPlugin, "SEQ", "2", 1))
	e, changed = poll(t, tr)
	if !changed || e.ID != "incarnation_3" || tr.FastTrack() || e.Goal.Handlers[0].Settings[0].SeqNo != 2 {
		t.Errorf("after vmSettings went away: %s changed=%t fastTrack=%t", e.ID, changed, tr.FastTrack())
	}
	// For six hours vmSettings are not asked for again.
	requests = len(f.Record())
	poll(t, tr)
	for _, r := range f.Record()[requests:] {
		if r.Kind == fabric.KindVMSettings {
			t.Error("vmSettings asked for again right after a 404")
		}
	}
}
