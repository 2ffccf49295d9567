package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
)

func TestMigrateIsIdempotent(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		applied, err := db.Migrate(context.Background())
		if err != nil {
			t.Fatalf("second Migrate: %v", err)
		}
		if len(applied) != 0 {
			t.Fatalf("second Migrate applied %v, want nothing", applied)
		}
	})
}

// A data directory whose name holds characters that mean something in an
// SQLite URI ("#", "?", "%") keeps its database inside it, and only there.
func TestSQLiteDataDirWithURICharacters(t *testing.T) {
	parent := t.TempDir()
	for _, name := range []string{"runs#2", "what?now", "100%41", "a b"} {
		dir := filepath.Join(parent, name, "data")
		db, err := store.Open(context.Background(), store.Config{DataDir: dir})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := db.Migrate(context.Background()); err != nil {
			t.Fatalf("%s: migrate: %v", name, err)
		}
		db.Close()
		if _, err := os.Stat(filepath.Join(dir, store.SQLiteFile)); err != nil {
			t.Errorf("%s: the database is not in its data directory: %v", name, err)
		}
	}
	entries, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.IsDir() {
			t.Errorf("a file %q was written beside the data directories", e.Name())
		}
	}
}

func TestTransactCommitsAndRollsBack(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		insert := func(tx *store.Tx, id string) error {
			_, err := tx.Exec(ctx, `INSERT INTO enterprise_accounts (id, name, created_at) VALUES (?, ?, ?)`, id, "n", store.Micros(tx.Now))
			return err
		}
		if err := db.Transact(ctx, func(tx *store.Tx) error { return insert(tx, "kept") }); err != nil {
			t.Fatalf("commit: %v", err)
		}
		boom := errors.New("boom")
		err := db.Transact(ctx, func(tx *store.Tx) error {
			if err := insert(tx, "dropped"); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("Transact returned %v, want %v", err, boom)
		}
		var ids []string
		err = db.View(ctx, func(tx *store.Tx) error {
			var err error
			ids, err = tx.Strings(ctx, `SELECT id FROM enterprise_accounts ORDER BY id`)
			return err
		})
		if err != nil {
			t.Fatalf("view: %v", err)
		}
		if len(ids) != 1 || ids[0] != "kept" {
			t.Fatalf("rows = %v, want [kept]", ids)
		}
	})
}

func TestTranslateUniqueViolationAndNoRows(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		insert := func(tx *store.Tx) error {
			_, err := tx.Exec(ctx, `INSERT INTO enterprise_accounts (id, name, created_at) VALUES (?, ?, ?)`, "dup", "n", 1)
			return err
		}
		if err := db.Transact(ctx, insert); err != nil {
			t.Fatal(err)
		}
		if err := db.Transact(ctx, insert); steward.ErrorKind(err) != steward.KindConflict {
			t.Fatalf("duplicate insert: got %v (kind %v), want conflict", err, steward.ErrorKind(err))
		}
		err := db.View(ctx, func(tx *store.Tx) error {
			var id string
			return tx.QueryRow(ctx, `SELECT id FROM enterprise_accounts WHERE id = ?`, "missing").Scan(&id)
		})
		if steward.ErrorKind(err) != steward.KindNotFound {
			t.Fatalf("missing row: got %v, want not found", err)
		}
	})
}

func TestViewIsReadOnly(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		err := db.View(ctx, func(tx *store.Tx) error {
			_, err := tx.Exec(ctx, `INSERT INTO enterprise_accounts (id, name, created_at) VALUES ('x', 'x', 1)`)
			return err
		})
		if err == nil {
			t.Fatal("insert inside View succeeded")
		}
	})
}

func TestTransactionTimeIsFixedAndUTC(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		fixed := time.Date(2026, 3, 4, 5, 6, 7, 891011000, time.FixedZone("x", 3600))
		db.Now = func() time.Time { return fixed }
		err := db.Transact(context.Background(), func(tx *store.Tx) error {
			if !tx.Now.Equal(fixed.Truncate(time.Microsecond)) || tx.Now.Location() != time.UTC {
				t.Errorf("tx.Now = %v, want %v in UTC", tx.Now, fixed)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

func TestChangesArePublishedAfterCommitOnly(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		var got []store.Change
		db.Subscribe(func(c store.Change) { got = append(got, c) })
		a := store.Change{Topic: "access", OrganizationID: "a"}
		_ = db.Transact(ctx, func(tx *store.Tx) error {
			tx.Notify(store.Change{Topic: "access", OrganizationID: "rolled-back"})
			return errors.New("fail")
		})
		err := db.Transact(ctx, func(tx *store.Tx) error {
			tx.Notify(a)
			tx.Notify(a)
			if len(got) != 0 {
				t.Error("a change was published before the commit")
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0] != a {
			t.Fatalf("published %v, want one %v", got, a)
		}
	})
}

// A subscriber may subscribe (as a cache made on first use does) and
// change the database, which publishes in turn, while it is called: with
// the subscribers' lock held during the calls, the first waited for the
// calls to end, and a publish behind it for the lock, for ever.
func TestSubscribersMaySubscribeAndPublish(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		var inner atomic.Int32
		db.Subscribe(func(c store.Change) {
			if c.Topic != "outer" {
				return
			}
			db.Subscribe(func(c store.Change) {
				if c.Topic == "inner" {
					inner.Add(1)
				}
			})
			if err := db.Transact(ctx, func(tx *store.Tx) error {
				tx.Notify(store.Change{Topic: "inner", OrganizationID: "a"})
				return nil
			}); err != nil {
				t.Error(err)
			}
		})
		done := make(chan error, 1)
		go func() {
			done <- db.Transact(ctx, func(tx *store.Tx) error {
				tx.Notify(store.Change{Topic: "outer", OrganizationID: "a"})
				return nil
			})
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a subscriber that subscribes and writes never returned")
		}
		if got := inner.Load(); got != 1 {
			t.Errorf("the subscriber added while publishing heard %d inner changes, want 1", got)
		}
	})
}

// BenchmarkDurableCommit measures the floor under every acknowledged write:
// one small transaction at a time, committed durably (SQLite's
// synchronous=FULL syncs the WAL; PostgreSQL waits for its WAL flush).
func BenchmarkDurableCommit(b *testing.B) {
	for _, engine := range storetest.Engines(b) {
		b.Run(engine.Name, func(b *testing.B) {
			db, _ := engine.Open(b)
			ctx := context.Background()
			if err := db.Transact(ctx, func(tx *store.Tx) error {
				_, err := tx.Exec(ctx, "CREATE TABLE bench_commit (n BIGINT NOT NULL)")
				return err
			}); err != nil {
				b.Fatal(err)
			}
			var lat []time.Duration
			for b.Loop() {
				t0 := time.Now()
				if err := db.Transact(ctx, func(tx *store.Tx) error {
					_, err := tx.Exec(ctx, "INSERT INTO bench_commit (n) VALUES (?)", len(lat))
					return err
				}); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}

// InsertCount counts the rows inserted, not those a conflict skipped, over
// every run of a batch longer than one statement holds.
func TestInsertCount(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		row := func(id string) []any { return []any{id, "n", int64(1)} }
		cols := []string{"id", "name", "created_at"}
		var rows [][]any
		for i := range 3000 {
			rows = append(rows, row(fmt.Sprintf("ea-%04d", i)))
		}
		var first, second int64
		err := db.Transact(ctx, func(tx *store.Tx) error {
			var err error
			if first, err = tx.InsertCount(ctx, "enterprise_accounts", cols, rows[:1000], "ON CONFLICT DO NOTHING"); err != nil {
				return err
			}
			second, err = tx.InsertCount(ctx, "enterprise_accounts", cols, rows, "ON CONFLICT DO NOTHING")
			return err
		})
		if err != nil || first != 1000 || second != 2000 {
			t.Fatalf("InsertCount = %d then %d (%v), want 1000 then 2000", first, second, err)
		}
		// A row short of a value fails the insert, naming the table, and
		// the transaction writes nothing.
		err = db.Transact(ctx, func(tx *store.Tx) error {
			_, err := tx.InsertCount(ctx, "enterprise_accounts", cols, [][]any{row("ea-new"), {"ea-short", "n"}}, "")
			return err
		})
		if err == nil || !strings.Contains(err.Error(), "enterprise_accounts") {
			t.Fatalf("a short row: %v, want an error naming the table", err)
		}
		var n int
		if err := db.View(ctx, func(tx *store.Tx) error {
			return tx.QueryRow(ctx, `SELECT COUNT(*) FROM enterprise_accounts WHERE id = 'ea-new'`).Scan(&n)
		}); err != nil || n != 0 {
			t.Fatalf("rows of the failed insert: %d (%v), want 0", n, err)
		}
	})
}

// BeforeCommit's functions run in order after the transaction's function,
// in the transaction: their writes commit with it, and an error of one
// rolls everything back. They never run when the function fails.
func TestBeforeCommitRunsLastInTheTransaction(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		insert := func(tx *store.Tx, id string) error {
			_, err := tx.Exec(ctx, `INSERT INTO enterprise_accounts (id, name, created_at) VALUES (?, ?, ?)`, id, "n", 1)
			return err
		}
		ids := func() []string {
			t.Helper()
			var ids []string
			err := db.View(ctx, func(tx *store.Tx) (err error) {
				ids, err = tx.Strings(ctx, `SELECT id FROM enterprise_accounts ORDER BY id`)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			return ids
		}
		var order []string
		err := db.Transact(ctx, func(tx *store.Tx) error {
			tx.BeforeCommit(func(ctx context.Context) error { order = append(order, "first"); return insert(tx, "a") })
			tx.BeforeCommit(func(ctx context.Context) error { order = append(order, "second"); return insert(tx, "b") })
			order = append(order, "fn")
			return insert(tx, "c")
		})
		if err != nil || !slices.Equal(order, []string{"fn", "first", "second"}) || !slices.Equal(ids(), []string{"a", "b", "c"}) {
			t.Fatalf("err %v, order %v, rows %v: want fn, first, second and a, b, c committed", err, order, ids())
		}
		boom := errors.New("boom")
		err = db.Transact(ctx, func(tx *store.Tx) error {
			tx.BeforeCommit(func(ctx context.Context) error { return insert(tx, "d") })
			tx.BeforeCommit(func(ctx context.Context) error { return boom })
			return insert(tx, "e")
		})
		if !errors.Is(err, boom) || len(ids()) != 3 {
			t.Fatalf("a failing BeforeCommit: err %v, rows %v; want %v and nothing written", err, ids(), boom)
		}
		ran := false
		err = db.Transact(ctx, func(tx *store.Tx) error {
			tx.BeforeCommit(func(ctx context.Context) error { ran = true; return nil })
			return boom
		})
		if !errors.Is(err, boom) || ran {
			t.Fatalf("a failed transaction ran its BeforeCommit (%v, %v)", err, ran)
		}
	})
}

func TestReadRowTranslatesItsErrors(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		if err := db.Transact(ctx, func(tx *store.Tx) error {
			_, err := tx.Exec(ctx, `INSERT INTO enterprise_accounts (id, name, created_at) VALUES (?, ?, ?)`, "ea", "Acme", 1)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		var name string
		if err := db.ReadRow(ctx, `SELECT name FROM enterprise_accounts WHERE id = ?`, []any{"ea"}, &name); err != nil || name != "Acme" {
			t.Fatalf("ReadRow = %q, %v; want Acme", name, err)
		}
		if err := db.ReadRow(ctx, `SELECT name FROM enterprise_accounts WHERE id = ?`, []any{"missing"}, &name); steward.ErrorKind(err) != steward.KindNotFound {
			t.Fatalf("missing row: got %v, want not found", err)
		}
	})
}
