package storage

import (
	"bytes"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/azinit/azinit/datasource/azure/extconfig"
	"github.com/azinit/azinit/internal/fixtures"
)

// FuzzStatusRequests lays out uploads to status blob URLs as the platform
// hands them out: it must never panic, never quote a signature in an
// error, and the pages must carry the status, padded, in order.
func FuzzStatusRequests(f *testing.F) {
	for _, fixture := range []string{"wire/ext_conf.xml", "hostgaplugin/ext_conf.xml"} {
		egs, err := extconfig.ParseExtensionsConfig(fixtures.Read(f, fixture))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(egs.StatusUploadBlob, string(egs.StatusBlobType), []byte(`{"version":"1.1"}`), byte(0))
		f.Add(egs.StatusUploadBlob, string(extconfig.PageBlob), bytes.Repeat([]byte("x"), 513), byte(' '))
	}
	f.Add("http://127.0.0.1/b", "PageBlob", []byte{}, byte(0))
	f.Add("http://[::1/b?sig=x", "PageBlob", []byte("{}"), byte(0))
	f.Add("/relative?sig=x", "BlockBlob", []byte("{}"), byte(0))
	f.Fuzz(func(t *testing.T, rawURL, typ string, status []byte, pad byte) {
		reqs, err := StatusRequests(Blob{URL: rawURL, Type: extconfig.BlobType(typ)}, status, now, pad)
		if err != nil {
			if u, perr := url.Parse(rawURL); perr == nil {
				for _, kv := range strings.Split(u.RawQuery, "&") {
					k, v, _ := strings.Cut(kv, "=")
					if strings.EqualFold(k, "sig") && v != "" && v != "REDACTED" && strings.Contains(err.Error(), kv) {
						t.Errorf("error quotes the signature: %v", err)
					}
				}
			}
			return
		}
		if typ == string(extconfig.BlockBlob) {
			if len(reqs) != 1 || !bytes.Equal(reqs[0].Body, status) {
				t.Fatalf("block blob: %d requests", len(reqs))
			}
			return
		}
		rounded := roundUp(len(status))
		if got := reqs[0].Header.Get("x-ms-blob-content-length"); got != fmt.Sprint(rounded) || reqs[0].Body != nil {
			t.Errorf("create PUT: content length %s, body %d bytes; want %d and none", got, len(reqs[0].Body), rounded)
		}
		var content []byte
		for _, r := range reqs[1:] {
			if want := fmt.Sprintf("bytes=%d-%d", len(content), len(content)+len(r.Body)-1); r.Header.Get("x-ms-range") != want {
				t.Errorf("range %s, want %s", r.Header.Get("x-ms-range"), want)
			}
			if len(r.Body) == 0 || len(r.Body)%PageSize != 0 || len(r.Body) > MaxPageWrite {
				t.Errorf("page of %d bytes", len(r.Body))
			}
			content = append(content, r.Body...)
		}
		if len(content) != rounded || !bytes.Equal(content[:len(status)], status) ||
			bytes.Count(content[len(status):], []byte{pad}) != rounded-len(status) {
			t.Errorf("pages carry %d bytes, want the %d of the status padded to %d", len(content), len(status), rounded)
		}
	})
}
