package logging

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

func TestNew(t *testing.T) {
	for _, tc := range []struct {
		level, format string
		want          string // "" = nothing logged at info
		wantErr       string
	}{
		{"info", "text", "level=INFO msg=hello", ""},
		{"debug", "json", `"msg":"hello"`, ""},
		{"warn", "text", "", ""},
		{"off", "text", "", ""},
		{"loud", "text", "", `log level "loud"`},
		{"info", "xml", "", `log format "xml"`},
	} {
		var b bytes.Buffer
		log, err := New(&b, tc.level, tc.format)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("New(%s, %s): err = %v, want %q", tc.level, tc.format, err, tc.wantErr)
			}
			continue
		}
		log.Info("hello")
		if got := b.String(); (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("New(%s, %s) logged %q, want %q", tc.level, tc.format, got, tc.want)
		}
	}
}

func TestOp(t *testing.T) {
	var b bytes.Buffer
	log, _ := New(&b, "debug", "text")
	if _, err := Op(context.Background(), log, "reading media", func(context.Context) error { return nil }, "device", "/dev/sr0"); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	if _, err := Op(context.Background(), log, "fetching", func(context.Context) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("Op returned %v", err)
	}
	for _, want := range []string{
		`msg="reading media started" device=/dev/sr0`,
		`msg="reading media finished" device=/dev/sr0 duration=`,
		`level=ERROR msg="fetching failed" duration=`,
		`error=boom`,
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, b.String())
		}
	}
}
