package audit_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/audit"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
)

func entry(org string, i int) audit.Entry {
	return audit.Entry{
		OrganizationID: org,
		Actor:          steward.Actor{Type: steward.ActorHuman, UserID: "u1"},
		EventType:      "user.create",
		EventMetadata:  map[string]string{"n": fmt.Sprint(i)},
		TargetType:     "USER",
	}
}

// seedBatches writes n entries of org's chain, batch at a time.
func seedBatches(t *testing.T, db *store.DB, org string, n, batch int) {
	t.Helper()
	ctx := context.Background()
	for done := 0; done < n; done += batch {
		entries := make([]audit.Entry, min(batch, n-done))
		for i := range entries {
			entries[i] = entry(org, done+i)
		}
		if err := db.Transact(ctx, func(tx *store.Tx) error { return audit.RecordBatch(ctx, tx, entries) }); err != nil {
			t.Fatal(err)
		}
	}
}

// exportPage reads one answer of the export.
func exportPage(ctx context.Context, svc *audit.Service, org, cursor string, limit int) ([]audit.Exported, string, error) {
	page, err := svc.StartExport(ctx, org, cursor, limit)
	if err != nil {
		return nil, "", err
	}
	var got []audit.Exported
	err = svc.Export(ctx, page, func(e audit.Exported) error {
		got = append(got, e)
		return nil
	})
	return got, page.Next, err
}

// TestExportResumesWithWritesRunning exports 100,000 entries page by page
// while other transactions keep writing to the same chain (and to another
// Organization's): every entry of the Organization comes exactly once, in
// order, each line's cursor resumes after it, and the next cursor of an
// answer resumes after its last line.
func TestExportResumesWithWritesRunning(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		const seeded = 100_000
		seedBatches(t, db, "org-a", seeded, 5000)
		svc := audit.NewService(db)

		stop := make(chan struct{})
		var written atomic.Int64
		var wg sync.WaitGroup
		var writeErr error
		var once sync.Once
		for w := range 4 {
			org := "org-a"
			if w == 3 {
				org = "org-b"
			}
			wg.Go(func() {
				// Paced, so that the export meets writes on every page
				// without the writers outrunning it (unpaced, they
				// wrote 40,000 entries more for it to read).
				pace := time.NewTicker(20 * time.Millisecond)
				defer pace.Stop()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					case <-pace.C:
					}
					batch := []audit.Entry{entry(org, i)}
					if i%5 == 0 {
						batch = append(batch, entry(org, i), entry(org, i))
					}
					if err := db.Transact(ctx, func(tx *store.Tx) error { return audit.RecordBatch(ctx, tx, batch) }); err != nil {
						once.Do(func() { writeErr = err })
						return
					}
					if org == "org-a" {
						written.Add(int64(len(batch)))
					}
				}
			})
		}

		var seq int64
		cursor := ""
		pages := 0
		limits := []int{10000, 1, 7777, 1000, 3}
		for stopped := false; ; {
			got, next, err := exportPage(ctx, svc, "org-a", cursor, limits[pages%len(limits)])
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, e := range got {
				if seq++; e.Seq != seq {
					t.Fatalf("page %d: entry seq %d, want %d (nothing skipped or repeated)", pages, e.Seq, seq)
				}
				if e.OrganizationID != "org-a" {
					t.Fatalf("seq %d belongs to %q", e.Seq, e.OrganizationID)
				}
			}
			if len(got) > 0 && got[len(got)-1].Cursor != next {
				t.Fatalf("page %d: next cursor %q, want the last line's %q", pages, next, got[len(got)-1].Cursor)
			}
			if len(got) == 0 && next != cursor {
				t.Fatalf("page %d: an empty page moved the cursor from %q to %q", pages, cursor, next)
			}
			// A line's cursor resumes after its entry.
			if len(got) > 1 {
				mid := got[len(got)/2]
				again, _, err := exportPage(ctx, svc, "org-a", mid.Cursor, 1)
				if err != nil || len(again) != 1 || again[0].Seq != mid.Seq+1 {
					t.Fatalf("resuming after seq %d: %d entries, err %v", mid.Seq, len(again), err)
				}
			}
			cursor = next
			if seq >= seeded && !stopped {
				close(stop)
				wg.Wait()
				stopped = true
				continue
			}
			if stopped && len(got) == 0 {
				break
			}
		}
		if writeErr != nil {
			t.Fatal(writeErr)
		}
		if want := seeded + written.Load(); seq != want {
			t.Fatalf("exported %d entries, want %d (%d seeded, %d written meanwhile)", seq, want, seeded, written.Load())
		}
		if written.Load() == 0 {
			t.Fatal("no entry was written while the export ran")
		}
		t.Logf("%d pages, %d entries written during the export", pages, written.Load())
	})
}

// TestExportCursorBelongsToItsOrganization: a cursor resumes only in the
// Organization that gave it, and one edited or made up is refused, naming
// the cursor.
func TestExportCursorBelongsToItsOrganization(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		seedBatches(t, db, "org-a", 5, 5)
		seedBatches(t, db, "org-b", 5, 5)
		svc := audit.NewService(db)
		a, _, err := exportPage(ctx, svc, "org-a", "", 10)
		if err != nil || len(a) != 5 {
			t.Fatalf("org-a: %d entries, %v", len(a), err)
		}
		b, _, err := exportPage(ctx, svc, "org-b", "", 2)
		if err != nil || len(b) != 2 {
			t.Fatalf("org-b: %d entries, %v", len(b), err)
		}
		if got, _, err := exportPage(ctx, svc, "org-b", b[1].Cursor, 10); err != nil || len(got) != 3 || got[0].Seq != 3 {
			t.Fatalf("org-b resumed: %d entries, %v", len(got), err)
		}
		edited := []byte(a[1].Cursor)
		edited[0]++ // the sequence number
		for name, cursor := range map[string]string{
			"another Organization's": b[1].Cursor,
			"edited":                 string(edited),
			"made up":                "MTIz",
			"not base64":             "a cursor",
			"too long":               a[1].Cursor + a[1].Cursor,
		} {
			_, _, err := exportPage(ctx, svc, "org-a", cursor, 10)
			var se *steward.Error
			if !errors.As(err, &se) || se.Kind != steward.KindInvalid || !slices.Equal(se.Field, []string{"query", "cursor"}) {
				t.Errorf("%s cursor: err %v, want KindInvalid naming query.cursor", name, err)
			}
		}
		if a[0].Cursor == b[0].Cursor {
			t.Errorf("the first entries of two Organizations have one cursor %q", a[0].Cursor)
		}
	})
}
