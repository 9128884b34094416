package azure_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/azinit/azinit/datasource/azure"
	"github.com/azinit/azinit/datasource/azure/certs"
	"github.com/azinit/azinit/internal/udf"
)

func TestCacheRoundTrip(t *testing.T) {
	_, o, _ := setup(t)
	o.PasswordSaltLength = 10
	d := &azure.Data{}
	if err := d.Fetch(t.Context(), o, azure.All); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(d.PasswordHash, "$6$") {
		t.Fatalf("password hash %q", d.PasswordHash)
	}
	// The network stage writes the certificates where the cache reads them.
	if err := certs.WriteFiles(o.Root, azure.LibDir, d.Certificates); err != nil {
		t.Fatal(err)
	}
	if err := d.SaveCache(o.Root); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(o.Root.HostPath(azure.CachePath))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), "Demo-Only-Passw0rd!") {
		t.Fatal("the cache holds the plaintext password")
	}
	if fi, _ := os.Stat(o.Root.HostPath(azure.CachePath)); fi.Mode().Perm() != 0o600 {
		t.Errorf("cache mode %v, want 0600", fi.Mode())
	}

	back, err := azure.LoadCache(o.Root)
	if err != nil {
		t.Fatal(err)
	}
	if back.PasswordHash != d.PasswordHash || back.Hostname() != d.Hostname() || back.Username() != d.Username() ||
		back.PasswordAuthentication() != d.PasswordAuthentication() || string(back.CustomData()) != string(d.CustomData()) {
		t.Errorf("the request changed through the cache")
	}
	want, _ := d.AuthorizedKeys()
	got, err := back.AuthorizedKeys()
	if err != nil || !cmp.Equal(want, got) {
		t.Errorf("authorized keys through the cache: %v\n%s", err, cmp.Diff(want, got))
	}
	for _, sensitive := range []bool{false, true} {
		a, _ := json.Marshal(d.InstanceData(sensitive))
		b, _ := json.Marshal(back.InstanceData(sensitive))
		if diff := cmp.Diff(string(a), string(b)); diff != "" {
			t.Errorf("instance data (sensitive %v) through the cache (-fetched +cached):\n%s", sensitive, diff)
		}
	}
}

func TestLoadCacheMissing(t *testing.T) {
	_, o, _ := setup(t)
	if _, err := azure.LoadCache(o.Root); !errors.Is(err, azure.ErrNoCache) {
		t.Errorf("err = %v, want ErrNoCache", err)
	}
}

// TestInvalidOVF: media whose ovf-env.xml does not parse is remembered,
// through the cache, so that report-ready can fail provisioning.
func TestInvalidOVF(t *testing.T) {
	_, o, _ := setup(t)
	img := filepath.Join(t.TempDir(), "broken.udf")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := udf.Write(f, "CDROM", []udf.File{{Name: "ovf-env.xml", Data: []byte("<Environment><wa:Provision")}}, udf.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	o.Config.Media = img
	d := &azure.Data{}
	if err := d.Fetch(t.Context(), o, azure.Media); err == nil {
		t.Fatal("an invalid ovf-env.xml fetched without error")
	}
	if !strings.HasPrefix(d.InvalidOVF, img+": ") {
		t.Fatalf("InvalidOVF = %q", d.InvalidOVF)
	}
	if err := d.SaveCache(o.Root); err != nil {
		t.Fatal(err)
	}
	back, err := azure.LoadCache(o.Root)
	if err != nil || back.InvalidOVF != d.InvalidOVF {
		t.Errorf("through the cache: %q, %v", back.InvalidOVF, err)
	}
}
