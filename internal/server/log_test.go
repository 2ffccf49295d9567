package server_test

import (
	"log/slog"
	"regexp"
	"testing"

	"github.com/stewardhq/steward/internal/logbuf"
	"github.com/stewardhq/steward/internal/server"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
)

// Every request is logged once, after its answer, with the id the answer
// carried; below the Info level nothing is.
func TestAccessLogCarriesTheRequestID(t *testing.T) {
	for _, c := range []struct {
		level slog.Level
		lines int
	}{{slog.LevelInfo, 1}, {slog.LevelWarn, 0}} {
		storetest.Run(t, func(t *testing.T, db *store.DB) {
			logs := &logbuf.Buffer{}
			h := newHarnessWith(t, db, func(d *server.Deps) {
				d.Log = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: c.level}))
			})
			r := h.do("GET", "/v1/admin/users", nil, "x-api-key", h.boot.AdminKeySecret, "x-request-id", "trace-42")
			if r.status != 200 || r.header.Get("x-request-id") != "trace-42" {
				t.Fatalf("%d %q %s", r.status, r.header.Get("x-request-id"), r.body)
			}
			line := regexp.MustCompile(`(?m)^.*msg=request request_id=trace-42 method=GET path=/v1/admin/users status=200 duration=\S+ credential_id=` + h.boot.AdminKey.ID + `$`)
			if got := len(line.FindAllString(logs.String(), -1)); got != c.lines {
				t.Errorf("at %s, %d access lines for the request, want %d:\n%s", c.level, got, c.lines, logs.String())
			}
		})
	}
}
