package storage_test

import (
	"context"
	"testing"
	"time"

	"github.com/azinit/azinit/datasource/azure/extconfig"
	"github.com/azinit/azinit/datasource/azure/storage"
	"github.com/azinit/azinit/datasource/azure/wireserver"
	"github.com/azinit/azinit/fabric"
	"github.com/azinit/azinit/internal/httpx"
	"github.com/google/go-cmp/cmp"
)

// TestFabricDirectUpload puts the status straight to the status blob URL
// of the fabric's ExtensionsConfig, as a block and as a page blob, and
// reads it back.
func TestFabricDirectUpload(t *testing.T) {
	ctx := t.Context()
	f, err := fabric.Start(ctx, fabric.Options{Scenario: "../../../testdata/scenarios/demo"})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	hc := &httpx.Client{Sleep: func(ctx context.Context, _ time.Duration) error { return ctx.Err() }}
	ws := &wireserver.Client{Endpoint: f.URLs().Wireserver, HTTP: hc}
	gs, err := ws.GoalState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := ws.ExtensionsConfig(ctx, gs)
	if err != nil {
		t.Fatal(err)
	}
	egs, err := extconfig.ParseExtensionsConfig(doc)
	if err != nil {
		t.Fatal(err)
	}
	// The production transport: the environment's proxy, which loopback
	// bypasses.
	c := &storage.Client{HTTP: &httpx.Client{HTTP: storage.NewHTTPClient(""), Sleep: hc.Sleep}}
	for _, typ := range []extconfig.BlobType{extconfig.BlockBlob, extconfig.PageBlob} {
		status := `{"version":"1.1","timestampUTC":"2025-11-20T08:38:28Z","aggregateStatus":{"handlerAggregateStatus":[],"type":"` + string(typ) + `"}}`
		before := len(f.Record())
		if err := c.PutStatus(ctx, storage.Blob{URL: egs.StatusUploadBlob, Type: typ}, []byte(status), time.Now()); err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		var recorded []string
		for _, e := range f.Record()[before:] {
			if e.Kind != fabric.KindStatus || e.Status != 201 || e.Error != "" {
				t.Errorf("%s: the fabric answered %s %s with %d %s", typ, e.Method, e.Path, e.Status, e.Error)
			}
			if e.Body != nil {
				recorded = append(recorded, string(e.Body))
			}
		}
		if diff := cmp.Diff([]string{status}, recorded); diff != "" {
			t.Errorf("%s: statuses recorded (-want +got):\n%s", typ, diff)
		}
		got, err := c.Get(ctx, egs.StatusUploadBlob)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != status {
			t.Errorf("%s: the blob reads back %q, want %q", typ, got, status)
		}
	}
}
