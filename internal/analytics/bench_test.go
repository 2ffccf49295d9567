package analytics

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/benchcpu"
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

// loadBench fills db with the rollups of the first days of the benchEvents
// events, a day at a time, through the same code that ingestion runs
// (addEvent, then each table's upsert, which merges stored figures) but
// without the raw event rows, which no report reads. Four events in five
// are chat messages; the rest are coding sessions, tool calls, next-edit
// suggestions and tokens.
func loadBench(b *testing.B, db *store.DB, days int) {
	b.Helper()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	perDay := benchEvents / benchDays
	tools := []string{"run_command", "read_file", "write_file", "search", "edit"}
	for d := range days {
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
	var updates, hot int64
	if err := conn.QueryRow(`SELECT coalesce(sum(n_tup_upd), 0), coalesce(sum(n_tup_hot_upd), 0) FROM pg_stat_user_tables
		WHERE schemaname = current_schema() AND relname LIKE 'analytics_%'`).Scan(&updates, &hot); err != nil {
		b.Fatal(err)
	}
	b.Logf("the load updated rollup rows %d times, %d of them without a new index entry (HOT)", updates, hot)
	for _, t := range tables {
		if _, err := conn.Exec("VACUUM ANALYZE " + t.name); err != nil {
			b.Fatal(err)
		}
	}
}

// benchCacheEnv names a directory where the benchmark keeps its loaded
// databases between runs: an SQLite file, and a PostgreSQL schema of the
// server STEWARD_TEST_POSTGRES names, both named after a hash of the rollup
// layout (levels, tables, SQLite's schema), so that a change of layout
// loads afresh; a change of PostgreSQL's table options alone does not, and
// needs the schema dropped. Unset, every run loads a fresh database.
const benchCacheEnv = "STEWARD_BENCH_CACHE"

// fixtureKey hashes what the loaded rollups depend on.
func fixtureKey(b *testing.B) string {
	b.Helper()
	db, _ := storetest.OpenSQLite(b)
	var schema []string
	err := db.View(context.Background(), func(tx *store.Tx) error {
		var err error
		schema, err = tx.Strings(context.Background(), "SELECT sql FROM sqlite_master WHERE name LIKE 'analytics_%' ORDER BY name")
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	h := sha256.New()
	fmt.Fprint(h, benchEvents, Levels, schema)
	for _, t := range tables {
		fmt.Fprint(h, t.name, t.columns(), t.maxLevel)
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// openBench returns the engine's loaded database: a fresh one, or with
// STEWARD_BENCH_CACHE set, the cached one, loaded first if missing.
func openBench(b *testing.B, e storetest.Engine) *store.DB {
	b.Helper()
	dir := os.Getenv(benchCacheEnv)
	if dir == "" {
		db, cfg := e.Open(b)
		start := time.Now()
		loadBench(b, db, benchDays)
		vacuum(b, cfg)
		b.Logf("loaded the rollups of %d events in %v", benchEvents, time.Since(start).Round(time.Second))
		return db
	}
	key := fixtureKey(b)
	ctx := context.Background()
	var cfg store.Config
	var done func() (bool, error)
	var mark func() error
	switch e.Name {
	case "postgres":
		base := os.Getenv(storetest.PostgresEnv)
		schema := "steward_bench_" + key
		admin, err := sql.Open("pgx", base)
		if err != nil {
			b.Fatal(err)
		}
		defer admin.Close()
		if _, err := admin.Exec("CREATE SCHEMA IF NOT EXISTS " + schema); err != nil {
			b.Fatal(err)
		}
		u, err := url.Parse(base)
		if err != nil {
			b.Fatal(err)
		}
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		cfg.DatabaseURL = u.String()
		done = func() (bool, error) {
			var n int
			err := admin.QueryRow("SELECT count(*) FROM information_schema.tables WHERE table_schema = $1 AND table_name = 'bench_loaded'", schema).Scan(&n)
			return n == 1, err
		}
		mark = func() error {
			_, err := admin.Exec("CREATE TABLE " + schema + ".bench_loaded (at TIMESTAMP)")
			return err
		}
	default:
		cfg.DataDir = filepath.Join(dir, "sqlite-"+key)
		if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
			b.Fatal(err)
		}
		marker := filepath.Join(cfg.DataDir, "loaded")
		done = func() (bool, error) {
			_, err := os.Stat(marker)
			if errors.Is(err, os.ErrNotExist) {
				return false, nil
			}
			return err == nil, err
		}
		mark = func() error { return os.WriteFile(marker, nil, 0o644) }
	}
	loaded, err := done()
	if err != nil {
		b.Fatal(err)
	}
	if !loaded && e.Name == "sqlite" {
		if err := os.RemoveAll(filepath.Join(cfg.DataDir, store.SQLiteFile)); err != nil {
			b.Fatal(err)
		}
	}
	db, err := store.Open(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	if loaded {
		b.Logf("using the rollups loaded in %s (%s)", dir, key)
		return db
	}
	start := time.Now()
	loadBench(b, db, benchDays)
	vacuum(b, cfg)
	if err := mark(); err != nil {
		b.Fatal(err)
	}
	b.Logf("loaded the rollups of %d events in %v, kept in %s (%s)", benchEvents, time.Since(start).Round(time.Second), dir, key)
	return db
}

// backendCPU returns the CPU time the PostgreSQL backend of tx has used,
// from /proc, when the server runs on this machine; 0 on SQLite.
func backendCPU(ctx context.Context, tx *store.Tx) (time.Duration, error) {
	if tx.Dialect() != store.Postgres {
		return 0, nil
	}
	var pid int
	if err := tx.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		return 0, err
	}
	return benchcpu.Process(pid)
}

// BenchmarkReports90Days answers each of the five reports over a 90-day
// window of 10,000,000 events: aligned to days, and starting and ending
// mid-day, which reads hourly buckets at both edges. Besides the wall time
// it reports the CPU time per report of this process (cpu-ms/op) and, on
// PostgreSQL, of the server's backend (server-cpu-ms/op), which the load
// of a shared machine inflates less.
func BenchmarkReports90Days(b *testing.B) {
	for _, e := range storetest.Engines(b) {
		b.Run(e.Name, func(b *testing.B) {
			db := openBench(b, e)
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
						var server time.Duration
						cpu := benchcpu.Self(b)
						for b.Loop() {
							if err := db.View(ctx, func(tx *store.Tx) error {
								before, err := backendCPU(ctx, tx)
								if err != nil {
									return err
								}
								if n, err = r.fn(tx, w.w); err != nil {
									return err
								}
								after, err := backendCPU(ctx, tx)
								server += after - before
								return err
							}); err != nil {
								b.Fatal(err)
							}
						}
						b.ReportMetric(float64(benchcpu.Self(b)-cpu)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
						if db.Dialect() == store.Postgres {
							b.ReportMetric(float64(server)/float64(time.Millisecond)/float64(b.N), "server-cpu-ms/op")
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

// BenchmarkRollupWrites measures what the rollups cost ingestion: the
// first 3 days of the 90-day load (333,333 events) written into a fresh
// database, a day a transaction, which updates the rows of the long buckets
// that the earlier days wrote. It reports events per second and this
// process's CPU time per 1,000 events.
func BenchmarkRollupWrites(b *testing.B) {
	const days = 3
	events := float64(benchEvents / benchDays * days)
	for _, e := range storetest.Engines(b) {
		b.Run(e.Name, func(b *testing.B) {
			var elapsed, cpu time.Duration
			for b.Loop() {
				b.StopTimer()
				db, _ := e.Open(b)
				b.StartTimer()
				start, startCPU := time.Now(), benchcpu.Self(b)
				loadBench(b, db, days)
				elapsed += time.Since(start)
				cpu += benchcpu.Self(b) - startCPU
			}
			b.ReportMetric(events*float64(b.N)/elapsed.Seconds(), "events/s")
			b.ReportMetric(float64(cpu)/float64(time.Millisecond)/(events*float64(b.N)/1000), "cpu-ms/1k-events")
		})
	}
}
