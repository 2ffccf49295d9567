package audit_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/audit"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
)

// benchEntriesEnv sets how many entries BenchmarkQuery loads (default
// 10,000,000): loading takes minutes, fewer are enough to try it.
const benchEntriesEnv = "STEWARD_BENCH_AUDIT_ENTRIES"

// BenchmarkQuery lists one Organization's audit log, as GET
// /v1/admin/audit-logs does (Mistral's event types only, at most 100
// entries), over 10,000,000 entries spread over a year: event types
// weighted as a busy Organization's log is (a few very common, most rare),
// 1,000 actors and a handful of target types. It reports each filter's p50
// and p99.
//
//	STEWARD_TEST_POSTGRES=... go test ./internal/audit -run '^$' -bench Query -benchtime 1x
func BenchmarkQuery(b *testing.B) {
	n := 10_000_000
	if v := os.Getenv(benchEntriesEnv); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1000 {
			b.Fatalf("%s=%q: want a whole number of at least 1000", benchEntriesEnv, v)
		}
	}
	for _, e := range storetest.Engines(b) {
		b.Run(e.Name, func(b *testing.B) {
			db, cfg := e.Open(b)
			end := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
			start := end.AddDate(-1, 0, 0)
			began := time.Now()
			seedLog(b, db, n, start, end)
			if cfg.DatabaseURL != "" {
				// What autovacuum does to a table that grew this much.
				if err := db.Transact(context.Background(), func(tx *store.Tx) error {
					_, err := tx.Exec(context.Background(), "ANALYZE audit_log")
					return err
				}); err != nil {
					b.Fatal(err)
				}
			}
			b.Logf("loaded %d entries in %v", n, time.Since(began).Round(time.Second))
			mid := start.Add(end.Sub(start) / 2)
			day := mid.Add(-24 * time.Hour)
			user := "user-0007"
			cases := []struct {
				name string
				f    audit.Filter
			}{
				{"newest", audit.Filter{}},
				{"oldest", audit.Filter{Ascending: true}},
				{"common-event", audit.Filter{EventTypes: []string{benchEvents[0]}}},
				{"rare-event", audit.Filter{EventTypes: []string{benchEvents[len(benchEvents)-1]}}},
				{"two-events", audit.Filter{EventTypes: []string{benchEvents[1], benchEvents[len(benchEvents)-2]}}},
				{"rare-and-absent-events", audit.Filter{EventTypes: []string{benchEvents[len(benchEvents)-1], "user.delete"}}},
				{"actor", audit.Filter{ActorUserID: &user}},
				{"actor-type", audit.Filter{ActorTypes: []string{"api_key"}}},
				{"rare-target", audit.Filter{TargetTypes: []string{benchTargets[len(benchTargets)-1]}}},
				{"one-day", audit.Filter{After: &day, Before: &mid}},
				{"rare-event-one-day", audit.Filter{EventTypes: []string{benchEvents[len(benchEvents)-1]}, After: &day, Before: &mid}},
			}
			for range b.N {
				for _, c := range cases {
					f := c.f
					f.OrganizationID, f.Limit, f.MistralOnly = "org-bench", audit.MaxLimit, true
					// The first query reads its pages from disk; the rest
					// find them in memory, as a busy log's would be.
					var lat []time.Duration
					for i := range 21 {
						t0 := time.Now()
						if err := db.View(context.Background(), func(tx *store.Tx) error {
							_, err := audit.List(context.Background(), tx, f)
							return err
						}); err != nil {
							b.Fatal(err)
						}
						if i > 0 {
							lat = append(lat, time.Since(t0))
						}
					}
					slices.Sort(lat)
					b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, c.name+"-p50-ms")
					b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, c.name+"-p99-ms")
				}
			}
		})
	}
}

// benchEvents are the event types of the benchmark's log, most common
// first: the i-th is about 1/(i+1) as common as the first, but for the
// last, one entry in 2,000.
var benchEvents = []string{
	audit.EventAPIKeyCreate, "user.organization.join", "workspace.member.add", "api_key.rotate", "api_key.delete",
	"user.create", "workspace.member.role.update", "user_group.member.add", "organization.invite.send", "workspace.create",
	"user_group.create", "rate_limit.rule.update", "billing.monthly_limit.updated", "organization.update", "organization.scim_sync.trigger",
}

// benchTargets are the target types: the last, one entry in 1,000.
var benchTargets = []string{"api_key", "user", "workspace", "user_group", "invite", "organization"}

// seedLog adds n entries of the Organization org-bench, evenly spread
// from start to end, straight into audit_log: their chain's hashes are
// not real, which a query never reads.
func seedLog(b *testing.B, db *store.DB, n int, start, end time.Time) {
	b.Helper()
	var weights []int
	total := 0
	for i := range benchEvents[:len(benchEvents)-1] {
		w := 1_000_000 / (i + 1)
		weights = append(weights, w)
		total += w
	}
	weights = append(weights, total/1999)
	total += total / 1999
	pick := func(x int) int {
		x %= total
		for i, w := range weights {
			if x < w {
				return i
			}
			x -= w
		}
		return len(weights) - 1
	}
	columns := []string{"scope", "seq", "organization_id", "created_at", "actor_type", "actor_user_id", "actor_metadata",
		"event_type", "event_metadata", "target_type", "target_metadata", "prev_hash", "hash"}
	step := end.Sub(start) / time.Duration(n)
	const perTx = 50_000
	for first := 0; first < n; first += perTx {
		rows := make([][]any, 0, perTx)
		for i := first; i < min(first+perTx, n); i++ {
			event := pick(i * 7919)
			actorType, actor := "user", fmt.Sprintf("user-%04d", i%1000)
			if i%10 == 0 {
				actorType = "api_key"
			}
			target := benchTargets[event%(len(benchTargets)-1)]
			if i%1000 == 999 {
				target = benchTargets[len(benchTargets)-1]
			}
			rows = append(rows, []any{"org:org-bench", int64(i + 1), "org-bench", store.Micros(start.Add(time.Duration(i) * step)), actorType, actor,
				`{"email":"` + actor + `@example.com"}`, benchEvents[event], `{}`, target, `{"id":"` + strconv.Itoa(i) + `"}`, "x", "x"})
		}
		if err := db.Transact(context.Background(), func(tx *store.Tx) error {
			return tx.InsertMany(context.Background(), "audit_log", columns, rows, "")
		}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWritesOfOneOrganization commits b.N writes of one
// Organization's audit chain from 32 goroutines at once, each a
// transaction of its own with one entry, on each engine, and reports the
// writes a second and their p50 and p99.
func BenchmarkWritesOfOneOrganization(b *testing.B) {
	for _, e := range storetest.Engines(b) {
		b.Run(e.Name, func(b *testing.B) {
			db, _ := e.Open(b)
			ctx := context.Background()
			const clients = 32
			lat := make([]time.Duration, b.N)
			next := make(chan int, b.N)
			for i := range b.N {
				next <- i
			}
			close(next)
			errs := make(chan error, clients)
			start := time.Now()
			b.ResetTimer()
			var wg sync.WaitGroup
			for range clients {
				wg.Go(func() {
					for i := range next {
						t0 := time.Now()
						if err := writeOne(ctx, db, "org-a", i); err != nil {
							errs <- err
							return
						}
						lat[i] = time.Since(t0)
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			close(errs)
			for err := range errs {
				b.Fatal(err)
			}
			if err := audit.Link(ctx, db, "org:org-a"); err != nil {
				b.Fatal(err)
			}
			slices.Sort(lat)
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "writes/s")
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}
