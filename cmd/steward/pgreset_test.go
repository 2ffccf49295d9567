package main

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/store/storetest"
)

// TestPostgresConnectionReset cuts every database connection of a running
// steward: what fails meanwhile fails with a 503 in Mistral's format, never
// a 500 or a half-written change, and the process recovers by itself.
func TestPostgresConnectionReset(t *testing.T) {
	db, dbCfg := storetest.OpenPostgres(t)
	db.Close()
	var b [6]byte
	_, _ = rand.Read(b[:])
	app := "steward-reset-" + hex.EncodeToString(b[:])
	p := start(t, "--database-url", dbCfg.DatabaseURL+"&application_name="+app, "--demo-model")
	admin := adminKey.FindStringSubmatch(p.output)[1]
	_, key := p.workspaceKey(t, admin)
	chat := func() (int, string) {
		resp, body, err := p.chat(key, `{"model":"steward-demo","max_tokens":4,"messages":[{"role":"user","content":"hi"}]}`)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, body
	}
	if status, body := chat(); status != 200 {
		t.Fatalf("before the reset: %d %s", status, body)
	}

	pg, err := sql.Open("pgx", dbCfg.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	var cut int
	if err := pg.QueryRow(`SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`, app).Scan(&cut); err != nil || cut == 0 {
		t.Fatalf("cut %d connections: %v", cut, err)
	}

	// Each call either works or answers 503 with Mistral's error object;
	// within a few tries all work again.
	retry := func(what string, call func() (int, string)) {
		t.Helper()
		for i := 0; ; i++ {
			status, body := call()
			if status == 200 {
				return
			}
			var e struct{ Object, Type string }
			if status != 503 || json.Unmarshal([]byte(body), &e) != nil || e.Object != "error" || e.Type != "server_error" {
				t.Fatalf("%s after the reset: %d %s; want 200 or a 503 error object", what, status, body)
			}
			if i == 20 {
				t.Fatalf("%s still fails 2s after the reset: %d %s", what, status, body)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	retry("setting a rate limit", func() (int, string) {
		return p.call(t, "PUT", "/v1/admin/rate-limit", admin, `{"requests_per_second":50}`)
	})
	retry("a model request", chat)
	retry("readiness", func() (int, string) { return p.get(t, "/readyz", "") })
	status, body := p.get(t, "/v1/admin/rate-limit", admin)
	if status != 200 || !strings.Contains(body, `"requests_per_second":50`) {
		t.Fatalf("the rate limit written after the reset: %d %s", status, body)
	}
	status, body = p.get(t, "/v1/admin/audit-logs?event_type=rate_limit.rule.update", admin)
	if status != 200 || strings.Count(body, `"rate_limit.rule.update"`) != 1 {
		t.Fatalf("audit of the rate limit: %d %s; want one entry", status, body)
	}
}
