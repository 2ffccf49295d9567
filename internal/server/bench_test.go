package server_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
)

// seedMembers adds n members to the bootstrap Organization, each in its
// default Workspace, straight through SQL.
func seedMembers(b testing.TB, h *harness, cfg store.Config, n int) {
	ctx := context.Background()
	base := time.Now().Add(-time.Hour)
	var users, members, roles, wsMembers, wsRoles [][]any
	for i := range n {
		id := uuid.NewString()
		email := fmt.Sprintf("user%06d@example.com", i)
		at := store.Micros(base.Add(time.Duration(i) * time.Microsecond))
		users = append(users, []any{id, email, email, "User", fmt.Sprint(i), at})
		members = append(members, []any{h.boot.Organization.ID, id, at, `["CHAT"]`})
		roles = append(roles, []any{h.boot.Organization.ID, id, steward.RoleIDOrganizationMember})
		wsMembers = append(wsMembers, []any{h.boot.DefaultWorkspace.ID, id, at})
		wsRoles = append(wsRoles, []any{h.boot.DefaultWorkspace.ID, id, steward.RoleIDWorkspaceContributor})
	}
	err := h.db.Transact(ctx, func(tx *store.Tx) error {
		for _, t := range []struct {
			table string
			cols  []string
			rows  [][]any
		}{
			{"users", []string{"id", "email", "email_normalized", "first_name", "last_name", "created_at"}, users},
			{"organization_members", []string{"organization_id", "user_id", "created_at", "subscription_types"}, members},
			{"organization_member_roles", []string{"organization_id", "user_id", "role_id"}, roles},
			{"workspace_members", []string{"workspace_id", "user_id", "created_at"}, wsMembers},
			{"workspace_member_roles", []string{"workspace_id", "user_id", "role_id"}, wsRoles},
		} {
			if err := tx.InsertMany(ctx, t.table, t.cols, t.rows, ""); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, `UPDATE organizations SET member_count = member_count + ? WHERE id = ?`, n, h.boot.Organization.ID)
		return err
	})
	if err != nil {
		b.Fatalf("seed: %v", err)
	}
	if cfg.DatabaseURL != "" {
		// What autovacuum would have done by the time anyone pages through
		// 100,000 members: statistics, and a visibility map that lets
		// index-only scans skip the heap.
		raw, err := sql.Open("pgx", cfg.DatabaseURL)
		if err != nil {
			b.Fatal(err)
		}
		defer raw.Close()
		if _, err := raw.ExecContext(ctx, "VACUUM ANALYZE"); err != nil {
			b.Fatal(err)
		}
	}
}

// latencies runs fn n times and reports the p50 and p99 of its duration.
func latencies(b *testing.B, fn func()) {
	var ds []time.Duration
	for b.Loop() {
		start := time.Now()
		fn()
		ds = append(ds, time.Since(start))
	}
	slices.Sort(ds)
	b.ReportMetric(float64(ds[len(ds)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(ds[len(ds)*99/100].Microseconds())/1000, "p99-ms")
}

// benchGet measures GETs of path with the admin key.
func benchGet(b *testing.B, h *harness, path string) {
	req, _ := http.NewRequest("GET", h.http.URL+path, nil)
	req.Header.Set("x-api-key", h.boot.AdminKeySecret)
	client := h.http.Client()
	latencies(b, func() {
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	})
}

// BenchmarkListUsers measures GET /v1/admin/users through the real handler
// with 100,000 members: the first, a middle and the last page of 100, and
// an email lookup.
//
//	go test ./internal/server -run '^$' -bench ListUsers -benchtime 200x
func BenchmarkListUsers(b *testing.B) {
	const members = 100_000
	for _, e := range storetest.Engines(b) {
		b.Run(e.Name, func(b *testing.B) {
			t := &testing.T{}
			db, cfg := e.Open(b)
			h := newHarness(t, db)
			seedMembers(b, h, cfg, members)
			for _, tc := range []struct{ name, query string }{
				{"first-page", "page=1&page_size=100"},
				{"middle-page", fmt.Sprintf("page=%d&page_size=100", members/200)},
				{"last-page", fmt.Sprintf("page=%d&page_size=100", members/100)},
				{"email", "email=user054321@example.com"},
			} {
				b.Run(tc.name, func(b *testing.B) { benchGet(b, h, "/v1/admin/users?"+tc.query) })
			}
		})
	}
}

// BenchmarkCreateUsers measures POST /v1/admin/users with 1,000 new members
// in one request (one transaction, with their audit entries).
//
//	go test ./internal/server -run '^$' -bench CreateUsers -benchtime 10x
func BenchmarkCreateUsers(b *testing.B) {
	for _, e := range storetest.Engines(b) {
		b.Run(e.Name, func(b *testing.B) {
			db, _ := e.Open(b)
			h := newHarness(&testing.T{}, db)
			client := h.http.Client()
			n := 0
			latencies(b, func() {
				var body strings.Builder
				body.WriteString("[")
				for i := range 1000 {
					if i > 0 {
						body.WriteString(",")
					}
					fmt.Fprintf(&body, `{"email":"bulk%08d@example.com","first_name":"Bulk","last_name":"User"}`, n)
					n++
				}
				body.WriteString("]")
				req, _ := http.NewRequest("POST", h.http.URL+"/v1/admin/users", strings.NewReader(body.String()))
				req.Header.Set("x-api-key", h.boot.AdminKeySecret)
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatalf("status %d", resp.StatusCode)
				}
			})
		})
	}
}

// BenchmarkListWorkspaces measures GET /v1/admin/workspaces over 10,000
// Workspaces (seeded past the active limit, to measure the worst case).
//
//	go test ./internal/server -run '^$' -bench ListWorkspaces -benchtime 200x
func BenchmarkListWorkspaces(b *testing.B) {
	const n = 10_000
	for _, e := range storetest.Engines(b) {
		b.Run(e.Name, func(b *testing.B) {
			db, _ := e.Open(b)
			h := newHarness(&testing.T{}, db)
			ctx := context.Background()
			base := time.Now().Add(-time.Hour)
			rows := make([][]any, n)
			for i := range rows {
				rows[i] = []any{uuid.NewString(), h.boot.Organization.ID, fmt.Sprintf("Workspace %05d", i), false, store.Micros(base.Add(time.Duration(i) * time.Microsecond)), i % 50}
			}
			err := h.db.Transact(ctx, func(tx *store.Tx) error {
				return tx.InsertMany(ctx, "workspaces", []string{"id", "organization_id", "name", "is_default", "created_at", "member_count"}, rows, "")
			})
			if err != nil {
				b.Fatal(err)
			}
			for _, tc := range []struct{ name, query string }{
				{"first-page", "page=1&page_size=100"},
				{"last-page", fmt.Sprintf("page=%d&page_size=100", n/100)},
				{"search", "search=workspace%200999&page_size=100"},
			} {
				b.Run(tc.name, func(b *testing.B) { benchGet(b, h, "/v1/admin/workspaces?"+tc.query) })
			}
		})
	}
}
