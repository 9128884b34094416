package hostgaplugin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/azinit/azinit/datasource/azure/extconfig"
	"github.com/azinit/azinit/datasource/azure/hostgaplugin"
	"github.com/azinit/azinit/datasource/azure/storage"
	"github.com/azinit/azinit/datasource/azure/wireserver"
	"github.com/azinit/azinit/fabric"
	"github.com/azinit/azinit/internal/httpx"
	"github.com/google/go-cmp/cmp"
)

const demo = "../../../testdata/scenarios/demo"

// demoVM is the demo scenario served by a fabric: a HostGAPlugin client,
// the goal state's identity and its status blob.
type demoVM struct {
	fabric *fabric.Fabric
	client *hostgaplugin.Client
	id     hostgaplugin.Identity
	blob   string // the StatusUploadBlob SAS URL
}

func startDemo(tb testing.TB) *demoVM {
	tb.Helper()
	f, err := fabric.Start(tb.Context(), fabric.Options{Scenario: demo})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.Close() })
	hc := &httpx.Client{Sleep: func(ctx context.Context, _ time.Duration) error { return ctx.Err() }}
	ws := &wireserver.Client{Endpoint: f.URLs().Wireserver, HTTP: hc}
	gs, err := ws.GoalState(tb.Context())
	if err != nil {
		tb.Fatal(err)
	}
	doc, err := ws.ExtensionsConfig(tb.Context(), gs)
	if err != nil {
		tb.Fatal(err)
	}
	egs, err := extconfig.ParseExtensionsConfig(doc)
	if err != nil {
		tb.Fatal(err)
	}
	return &demoVM{
		fabric: f,
		client: &hostgaplugin.Client{Endpoint: f.URLs().HostGAPlugin, HTTP: hc},
		id:     hostgaplugin.Identity{ContainerID: gs.ContainerID, ConfigName: gs.ConfigName},
		blob:   egs.StatusUploadBlob,
	}
}

// statuses are the aggregate statuses the fabric recorded, in order.
func (vm *demoVM) statuses() []string {
	var out []string
	for _, e := range vm.fabric.Record() {
		if e.Kind == fabric.KindStatus && e.Body != nil {
			out = append(out, string(e.Body))
		}
	}
	return out
}

// readStatus is testdata/status.json (§13.2's example) and its compact form.
func readStatus(tb testing.TB) (status []byte, compact string) {
	tb.Helper()
	status, err := os.ReadFile("testdata/status.json")
	if err != nil {
		tb.Fatal(err)
	}
	var b bytes.Buffer
	if err := json.Compact(&b, status); err != nil {
		tb.Fatal(err)
	}
	return status, b.String()
}

func TestFabric(t *testing.T) {
	vm := startDemo(t)
	ctx := t.Context()
	vs, err := vm.client.Versions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{hostgaplugin.APIVersion}, vs); diff != "" {
		t.Errorf("Versions (-want +got):\n%s", diff)
	}
	if err := vm.client.Health(ctx); err != nil {
		t.Errorf("Health: %v", err)
	}
	if _, err := vm.client.VMSettings(ctx, vm.id, ""); !errors.Is(err, hostgaplugin.ErrNotSupported) {
		t.Errorf("VMSettings of the demo (no raw/vmsettings.json): err = %v, want ErrNotSupported", err)
	}

	status, compact := readStatus(t)
	for _, typ := range []extconfig.BlobType{extconfig.BlockBlob, extconfig.PageBlob} {
		before := len(vm.statuses())
		if err := vm.client.PutStatus(ctx, vm.id, storage.Blob{URL: vm.blob, Type: typ}, status, time.Now()); err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		if diff := cmp.Diff([]string{compact}, vm.statuses()[before:]); diff != "" {
			t.Errorf("%s: statuses recorded (-want +got):\n%s", typ, diff)
		}
	}
	for _, e := range vm.fabric.Record() {
		if e.Error != "" || e.Status >= 400 && e.Kind != fabric.KindVMSettings {
			t.Errorf("the fabric refused %s %s: %d %s", e.Method, e.Path, e.Status, e.Error)
		}
	}
}

// statusOfSize is testdata/status.json with handler entries repeated until
// it is at least n bytes.
func statusOfSize(tb testing.TB, n int) []byte {
	status, _ := readStatus(tb)
	var doc map[string]any
	if err := json.Unmarshal(status, &doc); err != nil {
		tb.Fatal(err)
	}
	agg := doc["aggregateStatus"].(map[string]any)
	handlers := agg["handlerAggregateStatus"].([]any)
	for i := 0; len(status) < n; i++ {
		h := map[string]any{}
		for k, v := range handlers[0].(map[string]any) {
			h[k] = v
		}
		h["handlerName"] = fmt.Sprintf("Contoso.Extensions.Handler%d", i)
		handlers = append(handlers, h)
		agg["handlerAggregateStatus"] = handlers
		var err error
		if status, err = json.Marshal(doc); err != nil {
			tb.Fatal(err)
		}
	}
	return status
}

// BenchmarkPutStatus uploads a ~20 KiB status through the fabric's
// HostGAPlugin.
func BenchmarkPutStatus(b *testing.B) {
	vm := startDemo(b)
	status := statusOfSize(b, 20<<10)
	for _, typ := range []extconfig.BlobType{extconfig.BlockBlob, extconfig.PageBlob} {
		b.Run(string(typ), func(b *testing.B) {
			blob := storage.Blob{URL: vm.blob, Type: typ}
			b.SetBytes(int64(len(status)))
			for b.Loop() {
				if err := vm.client.PutStatus(b.Context(), vm.id, blob, status, time.Now()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
