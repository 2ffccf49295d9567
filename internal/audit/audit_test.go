package audit_test

import (
	"context"
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

func record(t *testing.T, db *store.DB, org string, n int) []int64 {
	t.Helper()
	ctx := context.Background()
	ids := make([]int64, n)
	for i := range n {
		err := db.Transact(ctx, func(tx *store.Tx) error {
			var err error
			ids[i], err = audit.Record(ctx, tx, audit.Entry{
				OrganizationID: org,
				Actor:          steward.Actor{Type: steward.ActorHuman, UserID: "u1", Metadata: map[string]string{"email": "a@b.c"}},
				EventType:      "user.create",
				EventMetadata:  map[string]string{"n": fmt.Sprint(i)},
				TargetType:     "USER",
				TargetMetadata: map[string]string{"id": fmt.Sprintf("user-%d", i)},
			})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
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
						_, err := audit.Record(ctx, tx, audit.Entry{
							OrganizationID: "org-a", Actor: steward.SystemActor("w"),
							EventType: "user.create", TargetType: "USER",
							EventMetadata: map[string]string{"w": fmt.Sprint(w), "i": fmt.Sprint(i)},
						})
						return err
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

func TestRecordRollsBackWithTheChange(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		_ = db.Transact(ctx, func(tx *store.Tx) error {
			if _, err := audit.Record(ctx, tx, audit.Entry{OrganizationID: "org-a", Actor: steward.SystemActor("x"), EventType: "user.create", TargetType: "USER"}); err != nil {
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
			err := db.Transact(ctx, func(tx *store.Tx) error { _, err := audit.Record(ctx, tx, e); return err })
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
