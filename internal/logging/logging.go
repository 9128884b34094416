// Package logging builds azinit's slog loggers and logs operations the same
// way everywhere: "started", then "finished" with the duration, or "failed"
// with the error.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"
)

// New returns a logger writing to w at level ("debug", "info", "warn",
// "error", or "off") in format ("text" or "json").
func New(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if strings.EqualFold(level, "off") {
		return Discard(), nil
	}
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn, error or off", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "", "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("log format %q: want text or json", format)
	}
}

// Discard is a logger that writes nothing.
func Discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// Op runs fn as the operation op, logging its start and its outcome with
// the duration, and returns fn's error and the duration.
func Op(ctx context.Context, log *slog.Logger, op string, fn func(context.Context) error, attrs ...any) (time.Duration, error) {
	log = log.With(attrs...)
	log.DebugContext(ctx, op+" started")
	start := time.Now()
	err := fn(ctx)
	d := time.Since(start)
	if err != nil {
		log.ErrorContext(ctx, op+" failed", "duration", d, "error", err)
		return d, err
	}
	log.InfoContext(ctx, op+" finished", "duration", d)
	return d, nil
}
