package webhooks_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/audit"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
	"github.com/stewardhq/steward/internal/webhooks"
)

// BenchmarkDeliveries delivers 2,000 audit entries to 10 endpoints on
// loopback, one round after another, and reports the deliveries a second
// and the CPU time a delivery takes this process (the dispatcher, the
// receiver, and on SQLite the database), and, on PostgreSQL, the WAL
// written a delivery: the work the webhooks add to the Admin API's (the
// WAL is the server's, so other databases' writes count in it).
//
//	go test ./internal/webhooks -run '^$' -bench Deliveries -benchtime 1x
func BenchmarkDeliveries(b *testing.B) {
	const entries, endpoints = 2000, 10
	for _, engine := range storetest.Engines(b) {
		b.Run(engine.Name, func(b *testing.B) {
			ctx := context.Background()
			db, _ := engine.Open(b)
			f := newFixture(b, db, webhooks.Settings{})
			db.Now = time.Now
			hook := newReceiver(b, nil)
			for range endpoints {
				f.create(b, hook.URL, "*")
			}
			for range b.N {
				f.round(b)
				before := hook.count.Load()
				for range entries / 100 {
					if err := db.Transact(ctx, func(tx *store.Tx) error {
						es := make([]audit.Entry, 100)
						for i := range es {
							es[i] = audit.Entry{EnterpriseAccountID: f.boot.EnterpriseAccount.ID, OrganizationID: f.boot.Organization.ID, Actor: actor,
								EventType: audit.EventUserCreate, TargetType: audit.TargetOrganization, TargetMetadata: map[string]string{"n": "x"}}
						}
						return audit.RecordBatch(ctx, tx, es)
					}); err != nil {
						b.Fatal(err)
					}
				}
				wal0, cpu0 := wal(b, db), cpu(b)
				began := time.Now()
				for hook.count.Load()-before < entries*endpoints {
					if time.Since(began) > time.Minute {
						b.Fatalf("%d of %d deliveries made in a minute", hook.count.Load()-before, entries*endpoints)
					}
					f.round(b)
				}
				b.ReportMetric(entries*endpoints/time.Since(began).Seconds(), "deliveries/s")
				b.ReportMetric(float64((cpu(b)-cpu0).Microseconds())/(entries*endpoints), "cpu-µs/delivery")
				if db.Dialect() == store.Postgres {
					b.ReportMetric(float64(wal(b, db)-wal0)/(entries*endpoints), "WAL-B/delivery")
				}
			}
		})
	}
}

// cpu is the CPU time this process has used.
func cpu(b *testing.B) time.Duration {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		b.Fatal(err)
	}
	return time.Duration(u.Utime.Nano() + u.Stime.Nano())
}

// wal is PostgreSQL's WAL position in bytes (0 on SQLite).
func wal(b *testing.B, db *store.DB) int64 {
	var lsn int64
	if db.Dialect() != store.Postgres {
		return 0
	}
	if err := db.View(context.Background(), func(tx *store.Tx) error {
		return tx.QueryRow(context.Background(), `SELECT pg_current_wal_lsn() - '0/0'::pg_lsn`).Scan(&lsn)
	}); err != nil {
		b.Fatal(err)
	}
	return lsn
}
