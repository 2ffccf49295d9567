package analytics

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
)

// Shape of the benchmark's Organization: 10,000,000 events over 90 days
// from 1,000 users in 10 Workspaces, active ten hours a day.
const (
	benchDays       = 90
	benchEvents     = 10_000_000
	benchUsers      = 1000
	benchAgents     = 50
	benchWorkspaces = 10
)

var benchStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// loadBench fills db with the rollups of benchEvents events, a day at a
// time, through the same code that ingestion runs (addEvent, then each
// table's upsert, which merges stored sketches) but without the raw event
// rows, which no report reads. Four events in five are chat messages; the
// rest are coding sessions, tool calls, next-edit suggestions and tokens.
func loadBench(b *testing.B, db *store.DB) {
	b.Helper()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	perDay := benchEvents / benchDays
	tools := []string{"run_command", "read_file", "write_file", "search", "edit"}
	for d := range benchDays {
		day := benchStart.AddDate(0, 0, d)
		r := rollups{}
		for i := range perDay {
			user := rng.IntN(benchUsers)
			e := Event{ID: fmt.Sprint(d, "-", i), OrganizationID: "org", UserID: fmt.Sprint("user-", user),
				WorkspaceID: fmt.Sprint("ws-", user%benchWorkspaces),
				Time:        day.Add(time.Duration(8+rng.IntN(10))*time.Hour + time.Duration(rng.IntN(3600))*time.Second)}
			switch k := rng.IntN(100); {
			case k < 80:
				e.Type, e.ConversationID = TypeChatMessage, fmt.Sprint("conv-", user, "-", d, "-", rng.IntN(6))
				if rng.IntN(3) == 0 {
					e.AgentID = fmt.Sprint("agent-", rng.IntN(benchAgents))
				}
				e.Files, e.Images = int64(rng.IntN(2)), int64(rng.IntN(2))
			case k < 82:
				e.Type, e.Client, e.Prompts, e.DurationMS = TypeSession, Clients[rng.IntN(3)], int64(rng.IntN(20)), int64(rng.IntN(3_600_000))
			case k < 92:
				e.Type, e.ToolName, e.Status, e.Approval = TypeToolCall, tools[rng.IntN(len(tools))], Statuses[rng.IntN(3)], Approvals[rng.IntN(3)]
			case k < 97:
				e.Type, e.Outcome, e.Surface, e.LinesInserted = TypeNextEdit, Outcomes[rng.IntN(5)], Surfaces[rng.IntN(2)], int64(rng.IntN(20))
			default:
				e.Type, e.Model, e.InputTokens, e.OutputTokens = TypeTokens, "codestral", int64(rng.IntN(4000)), int64(rng.IntN(400))
			}
			r.addEvent(&e)
		}
		err := db.Transact(ctx, func(tx *store.Tx) error {
			for _, t := range tables {
				if err := t.upsert(ctx, tx, r[t]); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// vacuum removes, on PostgreSQL, the dead row versions the load left: each
// day's upsert leaves one of every long bucket's row it updates (up to 64
// per row), which the reports' index scans would otherwise step over.
// Autovacuum does the same in a running server; the reports are measured
// as they run after its pass.
func vacuum(b *testing.B, cfg store.Config) {
	b.Helper()
	if cfg.DatabaseURL == "" {
		return
	}
	conn, err := sql.Open("pgx", cfg.DatabaseURL)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	for _, t := range tables {
		if _, err := conn.Exec("VACUUM ANALYZE " + t.name); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReports90Days answers each of the five reports over a 90-day
// window of 10,000,000 events: aligned to days, and starting and ending
// mid-day, which reads hourly buckets at both edges.
func BenchmarkReports90Days(b *testing.B) {
	for _, e := range storetest.Engines(b) {
		b.Run(e.Name, func(b *testing.B) {
			db, cfg := e.Open(b)
			start := time.Now()
			loadBench(b, db)
			vacuum(b, cfg)
			b.Logf("loaded the rollups of %d events in %v", benchEvents, time.Since(start).Round(time.Second))
			ctx := context.Background()
			windows := []struct {
				name string
				w    Window
			}{
				{"", Window{Start: benchStart, End: benchStart.AddDate(0, 0, benchDays)}},
				{"_mid_day", Window{Start: benchStart.Add(13 * time.Hour), End: benchStart.AddDate(0, 0, benchDays-1).Add(13 * time.Hour)}},
			}
			reports := []struct {
				name string
				fn   func(tx *store.Tx, w Window) (int, error)
			}{
				{"by_user", func(tx *store.Tx, w Window) (int, error) { s, err := WorkByUser(ctx, tx, "org", w); return len(s), err }},
				{"by_agent", func(tx *store.Tx, w Window) (int, error) {
					s, err := WorkByAgent(ctx, tx, "org", w)
					return len(s), err
				}},
				{"by_time_day", func(tx *store.Tx, w Window) (int, error) {
					s, err := WorkByTime(ctx, tx, "org", w, "day")
					return len(s), err
				}},
				{"by_time_hour", func(tx *store.Tx, w Window) (int, error) {
					s, err := WorkByTime(ctx, tx, "org", w, "hour")
					return len(s), err
				}},
				{"by_workspace", func(tx *store.Tx, w Window) (int, error) {
					s, err := CodeByWorkspace(ctx, tx, "org", "", w)
					return len(s.Sessions), err
				}},
				{"by_organization", func(tx *store.Tx, w Window) (int, error) {
					s, err := CodeByOrganization(ctx, tx, "org", w)
					return len(s.NextEditSuggestions), err
				}},
			}
			for _, r := range reports {
				for _, w := range windows {
					b.Run(r.name+w.name, func(b *testing.B) {
						var n int
						for b.Loop() {
							if err := db.View(ctx, func(tx *store.Tx) error {
								var err error
								n, err = r.fn(tx, w.w)
								return err
							}); err != nil {
								b.Fatal(err)
							}
						}
						if n == 0 {
							b.Fatal("the report is empty")
						}
					})
				}
			}
		})
	}
}
