package extconfig_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/azinit/azinit/datasource/azure/extconfig"
	"github.com/azinit/azinit/internal/fixtures"
)

// renderings are the ways a caller might print, log or encode v.
func renderings(t *testing.T, v any) []string {
	t.Helper()
	type holder struct {
		v any // unexported: fmt cannot call methods below it
		V any
	}
	var out []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%q"} {
		out = append(out, fmt.Sprintf(verb, v), fmt.Sprintf(verb, holder{v, v}))
	}
	var logs strings.Builder
	for _, h := range []slog.Handler{slog.NewJSONHandler(&logs, nil), slog.NewTextHandler(&logs, nil)} {
		slog.New(h).Info("parsed", "value", v, "holder", holder{v, v})
	}
	j, err := json.Marshal(holder{v, v})
	if err != nil {
		t.Fatal(err)
	}
	return append(out, logs.String(), string(j))
}

// TestProtectedSettingsNeverRendered checks every rendering of parsed goal
// states, of their handlers and of their settings for the protected
// settings.
func TestProtectedSettingsNeverRendered(t *testing.T) {
	ec, err := extconfig.ParseExtensionsConfig(fixtures.Read(t, "hostgaplugin/ext_conf.xml"))
	if err != nil {
		t.Fatal(err)
	}
	vms, err := extconfig.ParseVMSettings(fixtures.Read(t, "hostgaplugin/vm_settings.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, gs := range []*extconfig.ExtensionsGoalState{ec, vms} {
		var secrets []string
		values := []any{gs, *gs, gs.Handlers}
		for _, h := range gs.Handlers {
			values = append(values, h, &h)
			for _, s := range h.Settings {
				if s.ProtectedSettings.IsSet() {
					secrets = append(secrets, s.ProtectedSettings.Reveal())
				}
				values = append(values, s, &s, s.ProtectedSettings, &s.ProtectedSettings)
			}
		}
		if len(secrets) != 3 {
			t.Fatalf("%s: found %d protected settings, want 3", gs.Channel, len(secrets))
		}
		for _, v := range values {
			for _, r := range renderings(t, v) {
				for _, secret := range secrets {
					// The base64 tail is distinctive; hex (%x) renders
					// differently, so look for that too.
					for _, form := range []string{secret[:40], fmt.Sprintf("%x", secret[:40])} {
						if strings.Contains(r, form) {
							t.Fatalf("%s: a rendering of %T holds protected settings:\n%.300s", gs.Channel, v, r)
						}
					}
				}
			}
		}
	}
}

func TestSecret(t *testing.T) {
	var unset extconfig.Secret
	set := extconfig.NewSecret("c2VjcmV0")
	for _, tc := range []struct {
		s                   extconfig.Secret
		isSet               bool
		reveal, str, jsonIs string
	}{
		{unset, false, "", "", "null"},
		{extconfig.NewSecret(""), false, "", "", "null"},
		{set, true, "c2VjcmV0", "***REDACTED***", `"***REDACTED***"`},
	} {
		j, err := json.Marshal(tc.s)
		if err != nil {
			t.Fatal(err)
		}
		if tc.s.IsSet() != tc.isSet || tc.s.Reveal() != tc.reveal || tc.s.String() != tc.str || string(j) != tc.jsonIs {
			t.Errorf("Secret: IsSet %v, Reveal %q, String %q, JSON %s; want %v, %q, %q, %s",
				tc.s.IsSet(), tc.s.Reveal(), tc.s.String(), j, tc.isSet, tc.reveal, tc.str, tc.jsonIs)
		}
	}
	if !set.Equal(extconfig.NewSecret("c2VjcmV0")) || set.Equal(unset) {
		t.Error("Equal does not compare the secrets")
	}
}
