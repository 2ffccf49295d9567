package server_test

import (
	"context"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stewardhq/steward/internal/auth"
	"github.com/stewardhq/steward/internal/keys"
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

// The access line of a request names the credential that authenticated it,
// whichever surface did (its id, never its secret); a refused request's
// names none.
func TestAccessLogNamesTheCredentialOfEverySurface(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		logs := &logbuf.Buffer{}
		more, authn := surfaceDeps(t, db)
		h := newHarnessWith(t, db, func(d *server.Deps) {
			more(d)
			d.Log = slog.New(slog.NewTextHandler(logs, nil))
		})
		sample := h.samples()
		sess, sessionToken := h.session(authn, h.boot.Admin.ID)
		for _, tc := range []struct {
			name, path   string
			headers      []string
			status       int
			credentialID string
			secret       string
		}{
			{"the Admin API", "/v1/admin/users", []string{"x-api-key", h.boot.AdminKeySecret}, 200, h.boot.AdminKey.ID, h.boot.AdminKeySecret},
			{"the Backoffice API", "/v1/backoffice/members", []string{"x-api-key", h.boot.BackofficeSecret}, 200, h.boot.BackofficeKey.ID, h.boot.BackofficeSecret},
			{"SCIM", "/scim/v2/Users", []string{"Authorization", "Bearer " + sample.scimToken}, 200, sample.admin["token_id"], sample.scimToken},
			{"the model API", "/v1/models", []string{"Authorization", "Bearer " + sample.workspaceKey}, 200, sample.admin["key_id"], sample.workspaceKey},
			{"the web pages", "/web/o/" + h.boot.Organization.ID + "/members", []string{"Cookie", auth.SessionCookie + "=" + sessionToken}, 200, sess.ID, sessionToken},
			{"a refused key", "/v1/admin/users", []string{"x-api-key", keys.New(keys.PrefixAdmin)}, 401, "", ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				id := "trace-" + strings.ReplaceAll(tc.name, " ", "-")
				if r := h.raw("GET", tc.path, nil, append(tc.headers, "x-request-id", id)...); r.status != tc.status {
					t.Fatalf("%d %s, want %d", r.status, r.body, tc.status)
				}
				want := ""
				if tc.credentialID != "" {
					want = " credential_id=" + tc.credentialID
				}
				line := regexp.MustCompile(`(?m)^.*msg=request request_id=` + id + ` method=GET path=` + regexp.QuoteMeta(tc.path) +
					` status=` + strconv.Itoa(tc.status) + ` duration=\S+` + want + `$`)
				if !line.MatchString(logs.String()) {
					t.Errorf("no access line of %s ending with its duration%s:\n%s", id, want, logs.String())
				}
				if tc.secret != "" && strings.Contains(logs.String(), tc.secret) {
					t.Errorf("the secret was logged: %s", logs.String())
				}
			})
		}
	})
}

// A model API request gets its id once, at the server's edge: the answer
// carries it once, and the access line and the request's usage event name
// the same id, the client's when it is reasonable and a new one otherwise.
func TestOneRequestIDForAModelRequest(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		logs := &logbuf.Buffer{}
		more := gatewayDeps(t, db)
		h := newHarnessWith(t, db, func(d *server.Deps) {
			more(d)
			d.Log = slog.New(slog.NewTextHandler(logs, nil))
		})
		_, key := h.apiKey(h.boot.DefaultWorkspace.ID)
		for sent, want := range map[string]*regexp.Regexp{"trace-model-1": regexp.MustCompile(`^trace-model-1$`), "not reasonable": regexp.MustCompile(`^[0-9a-f]{32}$`)} {
			r := h.raw("POST", "/v1/chat/completions", []byte(`{"model":"steward-demo","messages":[{"role":"user","content":"hello"}]}`),
				"Authorization", "Bearer "+key, "Content-Type", "application/json", "x-request-id", sent)
			ids := r.header.Values("x-request-id")
			if r.status != 200 || len(ids) != 1 || !want.MatchString(ids[0]) {
				t.Fatalf("sent %q: %d with x-request-id %q, want one matching %s: %s", sent, r.status, ids, want, r.body)
			}
			id := ids[0]
			line := regexp.MustCompile(`(?m)^.*msg=request request_id=` + regexp.QuoteMeta(id) + ` method=POST path=/v1/chat/completions status=200 `)
			if !line.MatchString(logs.String()) {
				t.Errorf("no access line of %s:\n%s", id, logs.String())
			}
			var recorded string
			if err := db.View(context.Background(), func(tx *store.Tx) error {
				return tx.QueryRow(context.Background(), `SELECT request_id FROM usage_events WHERE request_id = ?`, id).Scan(&recorded)
			}); err != nil || recorded != id {
				t.Errorf("the usage event of %s: %q, %v", id, recorded, err)
			}
		}
	})
}
