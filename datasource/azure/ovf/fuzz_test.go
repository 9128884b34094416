package ovf

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/azinit/azinit/internal/fixtures"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// seeds are the fixture and documents that reach the parser's corners.
func seeds(f *testing.F) {
	f.Add(fixtures.Read(f, "ovf-env.xml"))
	for _, s := range []string{
		`<Environment><ProvisioningSection><Version>1.0</Version><LinuxProvisioningConfigurationSet><HostName>h</HostName><UserName>u</UserName>` +
			`<UserPassword>Sec&amp;ret-pw</UserPassword><CustomData>I2Nsb3VkLWNvbmZpZwo=</CustomData></LinuxProvisioningConfigurationSet></ProvisioningSection>` +
			`<PlatformSettingsSection><PlatformSettings><ProvisionGuestAgent>false</ProvisionGuestAgent></PlatformSettings></PlatformSettingsSection></Environment>`,
		`<Environment><ProvisioningSection><Version>1.0</Version><LinuxProvisioningConfigurationSet><HostName>h</HostName><UserName>u</UserName>` +
			`<UserPassword>Sec&ret;word</UserPassword></LinuxProvisioningConfigurationSet></ProvisioningSection></Environment>`,
		`<Environment><ProvisioningSection><Version>1.0</Version><LinuxProvisioningConfigurationSet><HostName>h</HostName><UserName>u</UserName>` +
			`<UserPassword>Sec<ret>word</UserPassword></LinuxProvisioningConfigurationSet></ProvisioningSection></Environment>`,
		"\xef\xbb\xbf<Environment xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"><UserPassword xsi:nil=\"true\"/></Environment>",
		`<?xml version="1.0" encoding="utf-16"?><Environment/>`,
	} {
		f.Add([]byte(s))
	}
}

// FuzzParse checks that Parse never panics, that no error quotes the
// password, and that no rendering of a parsed Environment depends on its
// secrets.
func FuzzParse(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		env, err := Parse(data)
		if err != nil {
			for _, el := range []string{"UserPassword", "CustomData"} {
				s := rawContent(data, el)
				// Short or repeated contents collide with the message's own words.
				if len(s) >= 6 && bytes.Count(data, []byte(s)) == 1 && strings.Contains(err.Error(), s) {
					t.Fatalf("error %q quotes the %s %q", err, el, s)
				}
			}
			return
		}
		// A copy with other secrets, present in the same places.
		other := *env
		orig := env.secrets()
		alt := secrets{customData: bytes.Clone(orig.customData)}
		if orig.password != "" {
			alt.password = orig.password + "-other"
		}
		if len(orig.customData) > 0 {
			alt.customData = append(alt.customData, "-other"...)
		}
		other.secret = func() secrets { return alt }
		if diff := cmp.Diff(renderings(t, env), renderings(t, &other)); diff != "" {
			t.Fatalf("renderings depend on the secrets:\n%s", diff)
		}
	})
}

// rawContent is the text between the first <el> and </el> in data.
func rawContent(data []byte, el string) string {
	_, after, ok := bytes.Cut(data, []byte("<"+el+">"))
	if !ok {
		return ""
	}
	content, _, _ := bytes.Cut(after, []byte("</"+el+">"))
	return string(content)
}

// renderings are the ways a caller might print, log or encode env.
func renderings(t *testing.T, env *Environment) []string {
	var out []string
	type holder struct {
		env Environment
		Env *Environment
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x"} {
		out = append(out, fmt.Sprintf(verb, env), fmt.Sprintf(verb, holder{*env, env}))
	}
	var logs strings.Builder
	slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{ReplaceAttr: dropTime})).Info("parsed", "env", env)
	j, err := json.Marshal(holder{*env, env})
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, logs.String(), string(j))
	// A closure prints as its address, which differs between env and its copy.
	addr := fmt.Sprintf("%p", env.secret)
	for i, s := range out {
		s = strings.ReplaceAll(s, addr, "ADDR")
		out[i] = strings.ReplaceAll(s, strings.TrimPrefix(addr, "0x"), "ADDR")
	}
	return out
}

func dropTime(_ []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

// FuzzRedact checks that Redact never panics, only removes bytes, is
// idempotent, and that the redacted document parses to the same
// Environment without a password.
func FuzzRedact(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := Redact(data)
		if err != nil {
			return
		}
		if len(out) > len(data) {
			t.Fatalf("Redact grew the document from %d to %d bytes", len(data), len(out))
		}
		again, err := Redact(out)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("Redact is not idempotent: %v", err)
		}
		before, err := Parse(data)
		if err != nil {
			return
		}
		after, err := Parse(out)
		if err != nil {
			t.Fatalf("the redacted document does not parse: %v", err)
		}
		if after.HasPassword() {
			t.Fatal("the redacted document has a password")
		}
		if diff := cmp.Diff(before, after, cmpopts.IgnoreUnexported(Environment{})); diff != "" || !bytes.Equal(before.CustomData(), after.CustomData()) {
			t.Fatalf("Redact changed more than the password:\n%s", diff)
		}
	})
}
