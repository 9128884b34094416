package extconfig_test

import (
	"testing"

	"github.com/azinit/azinit/datasource/azure/extconfig"
	"github.com/azinit/azinit/internal/fixtures"
)

func BenchmarkParseExtensionsConfig(b *testing.B) {
	doc := fixtures.Read(b, "hostgaplugin/ext_conf.xml")
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := extconfig.ParseExtensionsConfig(doc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseVMSettings(b *testing.B) {
	doc := fixtures.Read(b, "hostgaplugin/vm_settings.json")
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := extconfig.ParseVMSettings(doc); err != nil {
			b.Fatal(err)
		}
	}
}
