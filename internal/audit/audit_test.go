package audit_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/audit"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
)

// record writes n entries of org's chain, one transaction each, links them
// as the server's linker would (on PostgreSQL; see audit.Link), and returns
// their log ids.
func record(t *testing.T, db *store.DB, org string, n int) []int64 {
	t.Helper()
	ctx := context.Background()
	ids := make([]int64, n)
	for i := range n {
		err := db.Transact(ctx, func(tx *store.Tx) error {
			return audit.Record(ctx, tx, audit.Entry{
				OrganizationID: org,
				Actor:          steward.Actor{Type: steward.ActorHuman, UserID: "u1", Metadata: map[string]string{"email": "a@b.c"}},
				EventType:      "user.create",
				EventMetadata:  map[string]string{"n": fmt.Sprint(i)},
				TargetType:     "USER",
				TargetMetadata: map[string]string{"id": fmt.Sprintf("user-%d", i)},
			})
		})
		if err == nil {
			err = db.View(ctx, func(tx *store.Tx) error {
				return tx.QueryRow(ctx, `SELECT MAX(log_id) FROM audit_log WHERE scope = ?`, "org:"+org).Scan(&ids[i])
			})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := audit.Link(ctx, db, "org:"+org); err != nil {
		t.Fatal(err)
	}
	return ids
}

func verify(t *testing.T, db *store.DB) audit.Report {
	t.Helper()
	rep, err := audit.Verify(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func exec(t *testing.T, db *store.DB, q string, args ...any) {
	t.Helper()
	ctx := context.Background()
	if err := db.Transact(ctx, func(tx *store.Tx) error { _, err := tx.Exec(ctx, q, args...); return err }); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyAcceptsAnIntactLog(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		record(t, db, "org-a", 7)
		record(t, db, "org-b", 3)
		rep := verify(t, db)
		if rep.Chains != 2 || rep.Entries != 10 || len(rep.Breaks) != 0 {
			t.Fatalf("report = %+v, want 2 intact chains of 10 entries", rep)
		}
	})
}

func TestVerifyNamesTheTamperedEntry(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tamper func(t *testing.T, db *store.DB, ids []int64)
		// at is the index of the entry the break must name; -1 for the tail.
		at     int
		reason string
	}{
		{"edited metadata", func(t *testing.T, db *store.DB, ids []int64) {
			exec(t, db, `UPDATE audit_log SET event_metadata = '{"n":"99"}' WHERE log_id = ?`, ids[2])
		}, 2, "modified"},
		{"edited time", func(t *testing.T, db *store.DB, ids []int64) {
			exec(t, db, `UPDATE audit_log SET created_at = created_at + 1 WHERE log_id = ?`, ids[1])
		}, 1, "modified"},
		{"edited actor", func(t *testing.T, db *store.DB, ids []int64) {
			exec(t, db, `UPDATE audit_log SET actor_user_id = 'someone-else' WHERE log_id = ?`, ids[3])
		}, 3, "modified"},
		{"deleted in the middle", func(t *testing.T, db *store.DB, ids []int64) {
			exec(t, db, `DELETE FROM audit_log WHERE log_id = ?`, ids[2])
		}, 3, "deleted"},
		{"deleted tail", func(t *testing.T, db *store.DB, ids []int64) {
			exec(t, db, `DELETE FROM audit_log WHERE log_id = ?`, ids[4])
		}, -1, "deleted"},
		{"relinked", func(t *testing.T, db *store.DB, ids []int64) {
			exec(t, db, `UPDATE audit_log SET prev_hash = 'elsewhere' WHERE log_id = ?`, ids[2])
		}, 2, "does not link"},
		{"hash recomputed after an edit", func(t *testing.T, db *store.DB, ids []int64) {
			exec(t, db, `UPDATE audit_log SET hash = 'forged', event_metadata = '{}' WHERE log_id = ?`, ids[1])
		}, 1, "modified"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T, db *store.DB) {
				ids := record(t, db, "org-a", 5)
				record(t, db, "org-b", 2)
				tc.tamper(t, db, ids)
				rep := verify(t, db)
				if len(rep.Breaks) != 1 {
					t.Fatalf("breaks = %v, want exactly one (org-a's)", rep.Breaks)
				}
				b := rep.Breaks[0]
				if b.Scope != "org:org-a" || !strings.Contains(b.Reason, tc.reason) {
					t.Fatalf("break = %+v, want org-a %s", b, tc.reason)
				}
				if tc.at >= 0 && b.LogID != ids[tc.at] {
					t.Fatalf("break names log_id %d, want %d", b.LogID, ids[tc.at])
				}
				if tc.at >= 0 && !strings.Contains(b.String(), fmt.Sprintf("log_id=%d", ids[tc.at])) {
					t.Fatalf("break text %q does not name the entry", b.String())
				}
			})
		})
	}
}

func TestConcurrentWritersKeepTheChain(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		var wg sync.WaitGroup
		errs := make(chan error, 40)
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx := context.Background()
				for i := range 5 {
					errs <- db.Transact(ctx, func(tx *store.Tx) error {
						return audit.Record(ctx, tx, audit.Entry{
							OrganizationID: "org-a", Actor: steward.SystemActor("w"),
							EventType: "user.create", TargetType: "USER",
							EventMetadata: map[string]string{"w": fmt.Sprint(w), "i": fmt.Sprint(i)},
						})
					})
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		rep := verify(t, db)
		if rep.Entries != 40 || len(rep.Breaks) != 0 {
			t.Fatalf("report = %+v, want 40 entries in an intact chain", rep)
		}
	})
}

// TestVerifyWhileWritersRun verifies again and again while writers append
// to two chains: every report must find the chains intact, as
// `steward audit verify` run on a schedule beside a busy server must.
func TestVerifyWhileWritersRun(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		const writers, each = 4, 100
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					err := db.Transact(ctx, func(tx *store.Tx) error {
						return audit.Record(ctx, tx, audit.Entry{
							OrganizationID: fmt.Sprintf("org-%d", w%2), Actor: steward.SystemActor("w"),
							EventType: "user.create", TargetType: "USER",
							EventMetadata: map[string]string{"w": fmt.Sprint(w), "i": fmt.Sprint(i)},
						})
					})
					if err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		for running := true; running; {
			select {
			case <-done:
				running = false
			default:
			}
			if rep := verify(t, db); len(rep.Breaks) != 0 {
				<-done
				t.Fatalf("verification while writers run: %v, want no break", rep.Breaks)
			}
		}
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if rep := verify(t, db); rep.Entries != writers*each || len(rep.Breaks) != 0 {
			t.Fatalf("report = %+v, want %d entries in intact chains", rep, writers*each)
		}
	})
}

func TestRecordRollsBackWithTheChange(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		_ = db.Transact(ctx, func(tx *store.Tx) error {
			if err := audit.Record(ctx, tx, audit.Entry{OrganizationID: "org-a", Actor: steward.SystemActor("x"), EventType: "user.create", TargetType: "USER"}); err != nil {
				t.Fatal(err)
			}
			return fmt.Errorf("the change failed")
		})
		var n int
		err := db.View(ctx, func(tx *store.Tx) error {
			return tx.QueryRow(ctx, `SELECT COUNT(*) FROM audit_log`).Scan(&n)
		})
		if err != nil || n != 0 {
			t.Fatalf("entries after rollback = %d (%v), want 0", n, err)
		}
		record(t, db, "org-a", 2)
		if rep := verify(t, db); len(rep.Breaks) != 0 || rep.Entries != 2 {
			t.Fatalf("report after rollback and two writes = %+v", rep)
		}
	})
}

func TestRecordRejectsIncompleteEntries(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		for name, e := range map[string]audit.Entry{
			"no scope":      {Actor: steward.SystemActor("x"), EventType: "user.create", TargetType: "USER"},
			"no event type": {OrganizationID: "o", Actor: steward.SystemActor("x"), TargetType: "USER"},
			"no actor":      {OrganizationID: "o", EventType: "user.create", TargetType: "USER"},
		} {
			err := db.Transact(ctx, func(tx *store.Tx) error { return audit.Record(ctx, tx, e) })
			if err == nil {
				t.Errorf("%s: Record accepted %+v", name, e)
			}
		}
	})
}

func TestListOrdersEqualTimesByLogID(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		fixed := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
		db.Now = func() time.Time { return fixed }
		ids := record(t, db, "org-a", 3)
		ctx := context.Background()
		var got []audit.Entry
		err := db.View(ctx, func(tx *store.Tx) error {
			var err error
			got, err = audit.List(ctx, tx, audit.Filter{OrganizationID: "org-a", Limit: 10})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 3 || got[0].LogID != ids[2] || got[2].LogID != ids[0] || !got[0].CreatedAt.Equal(fixed) {
			t.Fatalf("List = %+v, want ids %v newest first at %v", got, ids, fixed)
		}
		if got[0].Actor.UserID != "u1" || got[0].TargetMetadata["id"] != "user-2" {
			t.Fatalf("List lost fields: %+v", got[0])
		}
	})
}

func TestRecordBatchChainsInOrder(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		record(t, db, "org-a", 2)
		batch := make([]audit.Entry, 1200)
		for i := range batch {
			batch[i] = audit.Entry{OrganizationID: "org-a", Actor: steward.SystemActor("bulk"), EventType: "user.create", TargetType: "USER",
				TargetMetadata: map[string]string{"n": fmt.Sprint(i)}}
		}
		if err := db.Transact(ctx, func(tx *store.Tx) error { return audit.RecordBatch(ctx, tx, batch) }); err != nil {
			t.Fatal(err)
		}
		record(t, db, "org-a", 1)
		if rep := verify(t, db); rep.Entries != 1203 || len(rep.Breaks) != 0 {
			t.Fatalf("report = %+v, want 1203 entries in an intact chain", rep)
		}
		var first string
		err := db.View(ctx, func(tx *store.Tx) error {
			return tx.QueryRow(ctx, `SELECT target_metadata FROM audit_log WHERE scope = 'org:org-a' AND seq = 3`).Scan(&first)
		})
		if err != nil || first != `{"n":"0"}` {
			t.Fatalf("third entry of the chain = %s (%v), want the batch's first", first, err)
		}
		mixed := []audit.Entry{
			{OrganizationID: "org-a", Actor: steward.SystemActor("x"), EventType: "user.create", TargetType: "USER"},
			{OrganizationID: "org-b", Actor: steward.SystemActor("x"), EventType: "user.create", TargetType: "USER"},
		}
		if err := db.Transact(ctx, func(tx *store.Tx) error { return audit.RecordBatch(ctx, tx, mixed) }); err == nil {
			t.Fatal("a batch spanning two chains was accepted")
		}
	})
}

// Entries are linked in the order they were recorded, across Record and
// RecordBatch calls of one transaction, and a batch larger than one
// statement's worth keeps the chain intact.
func TestEntriesOfOneTransactionKeepTheirOrder(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		entry := func(n int) audit.Entry {
			return audit.Entry{OrganizationID: "org-a", Actor: steward.SystemActor("x"), EventType: "user.create", TargetType: "USER",
				EventMetadata: map[string]string{"n": fmt.Sprint(n)}}
		}
		err := db.Transact(ctx, func(tx *store.Tx) error {
			var big []audit.Entry
			for n := 2; n < 700; n++ {
				big = append(big, entry(n))
			}
			return errors.Join(audit.Record(ctx, tx, entry(0)), audit.RecordBatch(ctx, tx, []audit.Entry{entry(1)}),
				audit.RecordBatch(ctx, tx, big), audit.Record(ctx, tx, entry(700)))
		})
		if err != nil {
			t.Fatal(err)
		}
		record(t, db, "org-a", 1)
		var got []string
		err = db.View(ctx, func(tx *store.Tx) (err error) {
			got, err = tx.Strings(ctx, `SELECT event_metadata FROM audit_log WHERE scope = 'org:org-a' ORDER BY seq`)
			return err
		})
		if err != nil || len(got) != 702 {
			t.Fatalf("%d entries (%v), want 702", len(got), err)
		}
		for n := range 701 {
			if want := fmt.Sprintf(`{"n":"%d"}`, n); got[n] != want {
				t.Fatalf("entry %d is %s, want %s", n, got[n], want)
			}
		}
		if rep := verify(t, db); rep.Entries != 702 || len(rep.Breaks) != 0 {
			t.Fatalf("report = %+v, want 702 entries in an intact chain", rep)
		}
	})
}

// holdOpen runs a transaction that calls fn and then stays open until
// release is called, which returns the transaction's error.
func holdOpen(t *testing.T, db *store.DB, fn func(ctx context.Context, tx *store.Tx) error) (release func() error) {
	t.Helper()
	ctx := context.Background()
	ready, done, result := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		result <- db.Transact(ctx, func(tx *store.Tx) error {
			err := fn(ctx, tx)
			close(ready)
			if err != nil {
				return err
			}
			<-done
			return nil
		})
	}()
	<-ready
	return func() error {
		close(done)
		return <-result
	}
}

// A transaction that has recorded an entry does not hold its chain: the
// entry is inserted at its commit (and on PostgreSQL linked after it), so
// another writer of the chain commits meanwhile and comes first. (SQLite
// has one writer at a time whatever a transaction holds, so this is
// PostgreSQL's.)
func TestAnOpenTransactionDoesNotHoldTheChain(t *testing.T) {
	db, _ := storetest.OpenPostgres(t)
	ctx := context.Background()
	entry := func(who string) audit.Entry {
		return audit.Entry{OrganizationID: "org-a", Actor: steward.SystemActor(who), EventType: "user.create", TargetType: "USER"}
	}
	release := holdOpen(t, db, func(ctx context.Context, tx *store.Tx) error { return audit.Record(ctx, tx, entry("slow")) })
	quick, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err := db.Transact(quick, func(tx *store.Tx) error { return audit.Record(quick, tx, entry("quick")) })
	if rerr := release(); rerr != nil {
		t.Fatal(rerr)
	}
	if err != nil {
		t.Fatalf("a writer waited for an open transaction of its chain: %v", err)
	}
	if err := audit.Link(ctx, db, "org:org-a"); err != nil {
		t.Fatal(err)
	}
	var actors []string
	err = db.View(ctx, func(tx *store.Tx) (err error) {
		actors, err = tx.Strings(ctx, `SELECT actor_metadata FROM audit_log WHERE scope = 'org:org-a' ORDER BY seq`)
		return err
	})
	if err != nil || len(actors) != 2 || !strings.Contains(actors[0], "quick") || !strings.Contains(actors[1], "slow") {
		t.Fatalf("chain %v (%v), want quick then slow", actors, err)
	}
	if rep := verify(t, db); rep.Entries != 2 || len(rep.Breaks) != 0 {
		t.Fatalf("report = %+v", rep)
	}
}

// ListUpTo pages through the log in one snapshot: newest first, across
// pages of equal times, never an entry twice, and no more than asked for.
func TestListUpToPagesAndStopsAtItsBound(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		fixed := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
		db.Now = func() time.Time { return fixed }
		ids := record(t, db, "org-a", 2*audit.MaxLimit+5)
		svc := audit.NewService(db)
		for _, max := range []int{audit.MaxLimit + 30, 2 * audit.MaxLimit, 3 * audit.MaxLimit} {
			got, err := svc.ListUpTo(context.Background(), audit.Filter{OrganizationID: "org-a"}, max)
			if err != nil {
				t.Fatal(err)
			}
			if want := min(max, len(ids)); len(got) != want {
				t.Fatalf("ListUpTo(%d) = %d entries, want %d", max, len(got), want)
			}
			for i, e := range got {
				if want := ids[len(ids)-1-i]; e.LogID != want {
					t.Fatalf("ListUpTo(%d)[%d] = log id %d, want %d", max, i, e.LogID, want)
				}
			}
		}
	})
}
