package conformance

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/azinit/azinit/datasource/azure/certs"
	"github.com/azinit/azinit/datasource/azure/extconfig"
	"github.com/azinit/azinit/datasource/azure/imds"
	"github.com/azinit/azinit/datasource/azure/ovf"
	"github.com/azinit/azinit/datasource/azure/wireserver"
	"github.com/azinit/azinit/internal/config"
	"github.com/azinit/azinit/internal/fixtures"
)

// parsers says which azinit parser reads each WALinuxAgent fixture.
var parsers = map[string]func([]byte) error{
	"ovf-env.xml":       func(b []byte) error { _, err := ovf.Parse(b); return err },
	"imds/valid.json":   func(b []byte) error { _, err := imds.ParseInstance(b); return err },
	"test_waagent.conf": func(b []byte) error { return nonEmpty(len(config.ParseWaagent(b))) },
	"dhcp":              lease(func(b []byte) (bool, error) { _, ok, err := wireserver.ParseDHCPMessage(b); return ok, err }),
	"dhcp.leases": lease(func(b []byte) (bool, error) {
		_, ok, err := wireserver.ParseDhclientLeases(b, time.Now())
		return ok, err
	}),
	"dhcp.leases.multi": lease(func(b []byte) (bool, error) {
		// Its leases are valid until 2152: read it as of a date they cover.
		_, ok, err := wireserver.ParseDhclientLeases(b, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
		return ok, err
	}),
	"networkd-lease-245":    lease(func(b []byte) (bool, error) { _, ok, err := wireserver.ParseNetworkdLease(b); return ok, err }),
	"wire/version_info.xml": func(b []byte) error { _, err := wireserver.ParseVersions(b); return err },
	"wire/goal_state.xml":   func(b []byte) error { _, err := wireserver.ParseGoalState(b); return err },
	"wire/goal_state_no_ext.xml": func(b []byte) error {
		gs, err := wireserver.ParseGoalState(b)
		if err == nil && gs.ExtensionsConfig != "" {
			err = errors.New("has an ExtensionsConfig URI")
		}
		return err
	},
	"wire/hosting_env.xml": func(b []byte) error { _, err := wireserver.ParseHostingEnvironment(b); return err },
	"wire/shared_config.xml": func(b []byte) error {
		// Kept opaque: it only has to be what the fabric serves.
		return nonEmpty(strings.Count(string(b), "<SharedConfig"))
	},
	"wire/certs.xml": func(b []byte) error {
		f, err := certs.ParseCertificatesXML(b)
		if err == nil {
			err = nonEmpty(len(f.Data))
		}
		return err
	},
	"wire/trans_cert":   func(b []byte) error { _, err := parsePEM(b, x509.ParseCertificate); return err },
	"wire/trans_pub":    func(b []byte) error { _, err := parsePEM(b, x509.ParsePKIXPublicKey); return err },
	"wire/trans_prv":    func(b []byte) error { _, err := parsePEM(b, x509.ParsePKCS8PrivateKey); return err },
	"wire/ext_conf.xml": func(b []byte) error { _, err := extconfig.ParseExtensionsConfig(b); return err },
	"hostgaplugin/ext_conf.xml": func(b []byte) error {
		_, err := extconfig.ParseExtensionsConfig(b)
		return err
	},
	"hostgaplugin/vm_settings.json":     func(b []byte) error { _, err := extconfig.ParseVMSettings(b); return err },
	"wire/manifest.xml":                 func(b []byte) error { _, err := extconfig.ParseManifest(b); return err },
	"wire/ga_manifest.xml":              func(b []byte) error { _, err := extconfig.ParseManifest(b); return err },
	"wire/in_vm_artifacts_profile.json": func(b []byte) error { _, err := extconfig.ParseArtifactsProfile(b); return err },
	"ext/handler_manifest/valid_manifest.json": func(b []byte) error {
		_, err := extconfig.ParseHandlerManifest(b)
		return err
	},
	"ext/sample-status.json": func(b []byte) error { _, err := extconfig.ParseStatus(b); return err },
	"ext/event.json":         func(b []byte) error { _, err := extconfig.ParseEvent(b); return err },
	// The sshd module (a later task) edits it; it is configuration text.
	"wire/sshd_config": func(b []byte) error { return nonEmpty(strings.Count(string(b), "PasswordAuthentication")) },
}

// Not platform documents.
var notDocuments = map[string]bool{"README.md": true, "LICENSE.txt": true}

// TestEveryFixtureParses reads every document in the WALinuxAgent fixture
// directory with its parser. A fixture with no parser fails the test, so a
// new one cannot be overlooked.
func TestEveryFixtureParses(t *testing.T) {
	dir := fixtures.Dir(t)
	seen := map[string]bool{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if notDocuments[rel] {
			return nil
		}
		seen[rel] = true
		parse, ok := parsers[rel]
		if !ok {
			t.Errorf("%s: no parser reads this fixture", rel)
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := parse(b); err != nil {
			t.Errorf("%s: %v", rel, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for rel := range parsers {
		if !seen[rel] {
			t.Errorf("%s: in the parser table but not among the fixtures", rel)
		}
	}
}

// lease adapts a lease parser: the fixture must name a wireserver.
func lease(parse func([]byte) (bool, error)) func([]byte) error {
	return func(b []byte) error {
		ok, err := parse(b)
		if err == nil && !ok {
			err = errors.New("no option 245")
		}
		return err
	}
}

func nonEmpty(n int) error {
	if n == 0 {
		return errors.New("nothing read")
	}
	return nil
}

func parsePEM[T any](b []byte, parse func([]byte) (T, error)) (T, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		var zero T
		return zero, errors.New("no PEM block")
	}
	return parse(block.Bytes)
}
