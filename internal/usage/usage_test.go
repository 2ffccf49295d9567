package usage

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	_ "time/tzdata" // America/New_York and Europe/London on any machine

	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
)

// start runs r until the test ends.
func start(t testing.TB, r *Recorder) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

func event(id string, at time.Time) Event {
	return Event{
		ID: id, Time: at, OrganizationID: "org-1", WorkspaceID: "ws-1", KeyID: "key-1", UserID: "user-1",
		Model: "mistral-small", InputTokens: 10, OutputTokens: 20, Cost: 300, Currency: "EUR", Endpoint: "chat.completions", RequestID: "req-" + id, Product: "API",
	}
}

// stored reads every raw event.
func stored(t *testing.T, db *store.DB) map[string]Event {
	t.Helper()
	ctx := context.Background()
	out := map[string]Event{}
	err := db.View(ctx, func(tx *store.Tx) error {
		rows, err := tx.Query(ctx, "SELECT "+strings.Join(eventColumns, ", ")+" FROM usage_events")
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var e Event
			var at, recorded int64
			if err := rows.Scan(&e.ID, &e.OrganizationID, &e.WorkspaceID, &e.KeyID, &e.UserID, &e.Model, &at,
				&e.InputTokens, &e.OutputTokens, &e.Cost, &e.Currency, &e.Estimated, &e.Endpoint, &recorded, &e.RequestID, &e.Product, &e.Overrun, &e.Pages, &e.AudioSeconds); err != nil {
				return err
			}
			e.Time = store.Time(at)
			if _, dup := out[e.ID]; dup {
				return fmt.Errorf("id %s stored twice", e.ID)
			}
			out[e.ID] = e
		}
		return rows.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// rollup reads a rollup table.
func rollup(t *testing.T, db *store.DB, table string) map[rollupKey]sums {
	t.Helper()
	ctx := context.Background()
	out := map[rollupKey]sums{}
	err := db.View(ctx, func(tx *store.Tx) error {
		rows, err := tx.Query(ctx, "SELECT "+strings.Join(rollupColumns, ", ")+" FROM "+table)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var k rollupKey
			var s sums
			if err := rows.Scan(&k.org, &k.bucket, &k.workspace, &k.key, &k.user, &k.model,
				&s.requests, &s.input, &s.output, &s.cost, &s.estimated, &s.overrun); err != nil {
				return err
			}
			out[k] = s
		}
		return rows.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sumsOf computes what a rollup must hold for events.
func sumsOf(events map[string]Event, size time.Duration) map[rollupKey]sums {
	out := map[rollupKey]sums{}
	for _, e := range events {
		k := rollupKey{e.OrganizationID, e.WorkspaceID, e.KeyID, e.UserID, e.Model, bucketStart(e.Time, size)}
		s := out[k]
		s.add(&e)
		out[k] = s
	}
	return out
}

// checkRollups fails unless both rollups equal the sums of the raw events.
func checkRollups(t *testing.T, db *store.DB) map[string]Event {
	t.Helper()
	raw := stored(t, db)
	for table, size := range map[string]time.Duration{"usage_hourly": hour, "usage_daily": day} {
		got, want := rollup(t, db, table), sumsOf(raw, size)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s does not equal the sums of %d raw events:\n got %v\nwant %v", table, len(raw), got, want)
		}
	}
	return raw
}

func TestConcurrentRecordsLandOnce(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		r := NewRecorder(db, Options{MaxBatch: 100})
		start(t, r)
		ctx := context.Background()
		at := time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)
		const goroutines, each = 40, 50
		var wg sync.WaitGroup
		errs := make(chan error, goroutines*each)
		for g := range goroutines {
			wg.Go(func() {
				for i := range each {
					id := fmt.Sprintf("req-%d-%d", g, i)
					if g%4 == 0 && i%10 == 0 {
						batch := []Event{event(id, at), event(id+"-b", at)}
						errs <- r.RecordMany(ctx, batch)
						continue
					}
					errs <- r.Record(ctx, event(id, at))
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("Record: %v", err)
			}
		}
		raw := checkRollups(t, db)
		want := goroutines*each + goroutines/4*each/10
		if len(raw) != want {
			t.Fatalf("%d events stored, want %d", len(raw), want)
		}
		daily := rollup(t, db, "usage_daily")
		if len(daily) != 1 {
			t.Fatalf("daily rollup has %d rows, want 1", len(daily))
		}
		for _, s := range daily {
			if s.requests != int64(want) || s.input != 10*int64(want) || s.cost != 300*int64(want) {
				t.Fatalf("daily rollup %+v, want %d requests", s, want)
			}
		}
	})
}

func TestRepeatedIDCountsOnce(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		r := NewRecorder(db, Options{})
		start(t, r)
		at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		first := event("dup", at)
		if err := r.Record(ctx, first); err != nil {
			t.Fatal(err)
		}
		// Again, with other numbers: the first event stands.
		again := first
		again.InputTokens, again.Cost = 9999, 9999
		if err := r.Record(ctx, again); err != nil {
			t.Fatalf("repeated Record: %v", err)
		}
		// Twice in one call, and at once from many callers, which share
		// batches.
		if err := r.RecordMany(ctx, []Event{event("twice", at), event("twice", at), again}); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				if err := r.Record(ctx, event("racing", at)); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		// And through another Recorder, as after a restart.
		r2 := NewRecorder(db, Options{})
		start(t, r2)
		if err := r2.RecordMany(ctx, []Event{event("racing", at), event("twice", at)}); err != nil {
			t.Fatal(err)
		}
		raw := checkRollups(t, db)
		if len(raw) != 3 {
			t.Fatalf("%d events stored, want 3", len(raw))
		}
		if raw["dup"].InputTokens != first.InputTokens {
			t.Fatalf("the repeated event replaced the first: %+v", raw["dup"])
		}
		for _, s := range rollup(t, db, "usage_hourly") {
			if s.requests != 3 || s.input != 30 {
				t.Fatalf("hourly rollup %+v, want 3 requests and 30 input tokens", s)
			}
		}
	})
}

func TestFailedBatchWritesNothing(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		exec := func(q string) {
			t.Helper()
			if err := db.Transact(ctx, func(tx *store.Tx) error { _, err := tx.Exec(ctx, q); return err }); err != nil {
				t.Fatal(err)
			}
		}
		r := NewRecorder(db, Options{MaxWait: 20 * time.Millisecond})
		start(t, r)
		at := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)

		// The daily rollup is missing, so every batch fails after its raw
		// rows and hourly rows were written in the transaction.
		exec("ALTER TABLE usage_daily RENAME TO usage_daily_away")
		var wg sync.WaitGroup
		var failed atomic.Int32
		for i := range 10 {
			wg.Go(func() {
				if err := r.Record(ctx, event("e"+strconv.Itoa(i), at)); err != nil {
					failed.Add(1)
				}
			})
		}
		wg.Wait()
		if failed.Load() != 10 {
			t.Fatalf("%d of 10 callers failed, want all", failed.Load())
		}
		exec("ALTER TABLE usage_daily_away RENAME TO usage_daily")
		if raw := checkRollups(t, db); len(raw) != 0 {
			t.Fatalf("a failed batch left %d events", len(raw))
		}

		// Nothing of the failed batch blocks writing the same events again.
		for i := range 10 {
			if err := r.Record(ctx, event("e"+strconv.Itoa(i), at)); err != nil {
				t.Fatal(err)
			}
		}
		if raw := checkRollups(t, db); len(raw) != 10 {
			t.Fatalf("%d events stored after the retry, want 10", len(raw))
		}

		// An event that breaks a constraint of the table (here one that
		// validation would have refused) fails the batch it shares with
		// valid events. They are all queued before Run starts, so that
		// they share one batch.
		r2 := NewRecorder(db, Options{})
		errs := recordAll(r2, "shared-", 10, at)
		bad := event("breaks-check", at)
		bad.Cost = -1
		badErr := make(chan error, 1)
		go func() { badErr <- r2.submit(ctx, []Event{bad}) }()
		for queuedEvents(r2) < 11 {
			time.Sleep(time.Millisecond)
		}
		start(t, r2)
		if err := <-badErr; err == nil {
			t.Fatal("an event breaking a CHECK constraint was written")
		}
		for err := range errs {
			if err == nil {
				t.Fatal("a caller sharing a failed batch got no error")
			}
		}
		if raw := checkRollups(t, db); len(raw) != 10 {
			t.Fatalf("%d events stored after a failed batch, want the 10 from before", len(raw))
		}

		// A cancelled caller writes nothing.
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		err := r.RecordMany(cctx, []Event{event("cancelled-1", at), event("cancelled-2", at)})
		if !steward.IsKind(err, steward.KindUnavailable) {
			t.Fatalf("RecordMany with a cancelled context: %v, want KindUnavailable", err)
		}
		if raw := checkRollups(t, db); len(raw) != 10 {
			t.Fatalf("%d events stored after a cancelled call, want 10", len(raw))
		}
	})
}

func TestCallerGivingUpWithdrawsItsEvent(t *testing.T) {
	db, _ := storetest.OpenSQLite(t)
	r := NewRecorder(db, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	at := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	// Run is not started yet, so the event waits in the queue until the
	// caller gives up.
	if err := r.Record(ctx, event("gave-up", at)); !steward.IsKind(err, steward.KindUnavailable) {
		t.Fatalf("Record: %v, want KindUnavailable", err)
	}
	start(t, r)
	if err := r.Record(context.Background(), event("kept", at)); err != nil {
		t.Fatal(err)
	}
	raw := checkRollups(t, db)
	if _, ok := raw["gave-up"]; ok || len(raw) != 1 {
		t.Fatalf("stored %v, want only the event whose caller waited", raw)
	}
}

func TestRollupsEqualRawSums(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		r := NewRecorder(db, Options{MaxBatch: 64})
		start(t, r)
		rng := rand.New(rand.NewPCG(1, 2))
		base := time.Date(2026, 2, 20, 0, 0, 0, 0, time.UTC)
		pick := func(prefix string, n int) string { return prefix + strconv.Itoa(rng.IntN(n)) }
		var events []Event
		for i := range 3000 {
			e := Event{
				ID:             "r" + strconv.Itoa(i),
				Time:           base.Add(time.Duration(rng.Int64N(int64(40 * day)))),
				OrganizationID: pick("org-", 3),
				WorkspaceID:    pick("ws-", 4),
				KeyID:          pick("key-", 6),
				UserID:         pick("user-", 5),
				Model:          pick("model-", 4),
				InputTokens:    rng.Int64N(5000),
				OutputTokens:   rng.Int64N(5000),
				Cost:           rng.Int64N(1_000_000),
				Currency:       "EUR",
				Estimated:      rng.IntN(5) == 0,
				Overrun:        rng.IntN(7) == 0,
				Endpoint:       "chat.completions",
			}
			switch rng.IntN(20) {
			case 0, 1:
				e.WorkspaceID, e.KeyID, e.UserID = "", "", ""
			case 2:
				// Text that JSON and SQL must carry unchanged.
				e.Model, e.UserID, e.Endpoint = `mistral "large"\2`, "üser\tß 😀", "a'b\n"
			}
			events = append(events, e)
		}
		// Repeat some events, identical, so that every order of arrival
		// stores the same thing.
		for range 500 {
			events = append(events, events[rng.IntN(3000)])
		}
		rng.Shuffle(len(events), func(i, j int) { events[i], events[j] = events[j], events[i] })

		var wg sync.WaitGroup
		const workers = 16
		for w := range workers {
			wg.Go(func() {
				for i := w; i < len(events); i += workers * 3 {
					var err error
					if i%2 == 0 {
						err = r.RecordMany(ctx, events[i:min(i+3, len(events))])
					} else {
						err = r.Record(ctx, events[i])
					}
					if err != nil {
						t.Error(err)
					}
				}
			})
		}
		wg.Wait()
		// What the workers skipped, in one call.
		if err := r.RecordMany(ctx, events); err != nil {
			t.Fatal(err)
		}
		raw := checkRollups(t, db)
		want := map[string]Event{}
		for _, e := range events {
			want[e.ID] = e
		}
		if len(raw) != len(want) {
			t.Fatalf("%d events stored, want %d", len(raw), len(want))
		}
		for id, e := range want {
			got := raw[id]
			if !got.Time.Equal(e.Time.Truncate(time.Microsecond)) {
				t.Fatalf("event %s stored at %v, want %v", id, got.Time, e.Time)
			}
			got.Time = e.Time
			if got != e {
				t.Fatalf("event %s stored as %+v, want %+v", id, got, e)
			}
		}
	})
}

// seed writes events directly, for the read tests.
func seed(t *testing.T, db *store.DB, events ...Event) {
	t.Helper()
	ctx := context.Background()
	if err := validateAll(events, db.Now(), nil); err != nil {
		t.Fatal(err)
	}
	if err := db.Transact(ctx, func(tx *store.Tx) error { _, err := write(ctx, tx, events); return err }); err != nil {
		t.Fatal(err)
	}
}

func ev(id, org, ws, model string, at time.Time, in, out, cost int64) Event {
	return Event{ID: id, Time: at, OrganizationID: org, WorkspaceID: ws, KeyID: "k-" + ws, UserID: "u", Model: model,
		InputTokens: in, OutputTokens: out, Cost: cost, Currency: "EUR"}
}

func view[T any](t *testing.T, db *store.DB, fn func(ctx context.Context, tx *store.Tx) (T, error)) (T, error) {
	t.Helper()
	ctx := context.Background()
	var out T
	err := db.View(ctx, func(tx *store.Tx) error {
		var err error
		out, err = fn(ctx, tx)
		return err
	})
	return out, err
}

func TestMonthByModelDay(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		readSeed(t, db)
		utc := func(d, h, m int) time.Time { return time.Date(2026, 3, d, h, m, 0, 0, time.UTC) }
		month := utc(15, 0, 0)
		dm := func(day time.Time, model string, req, in, out, cost int64) DayModel {
			return DayModel{Day: day, Model: model, Totals: Totals{Requests: req, InputTokens: in, OutputTokens: out, Cost: cost}}
		}
		check := func(name string, got []DayModel, err error, want []DayModel) {
			t.Helper()
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if len(got) != len(want) {
				t.Fatalf("%s: got %+v, want %+v", name, got, want)
			}
			for i := range got {
				if !got[i].Day.Equal(want[i].Day) || got[i].Day.Location() != want[i].Day.Location() ||
					got[i].Model != want[i].Model || got[i].Totals != want[i].Totals {
					t.Fatalf("%s: row %d is %+v, want %+v", name, i, got[i], want[i])
				}
			}
		}

		got, err := view(t, db, func(ctx context.Context, tx *store.Tx) ([]DayModel, error) {
			return MonthByModelDay(ctx, tx, "org", "", month, time.UTC)
		})
		check("UTC", got, err, []DayModel{
			dm(utc(1, 0, 0), "large", 1, 5, 5, 50),
			dm(utc(1, 0, 0), "small", 2, 2, 4, 20),
			dm(utc(31, 0, 0), "small", 1, 7, 7, 70),
		})

		got, err = view(t, db, func(ctx context.Context, tx *store.Tx) ([]DayModel, error) {
			return MonthByModelDay(ctx, tx, "org", "ws1", month, nil)
		})
		check("UTC, one Workspace", got, err, []DayModel{
			dm(utc(1, 0, 0), "large", 1, 5, 5, 50),
			dm(utc(1, 0, 0), "small", 1, 1, 2, 10),
			dm(utc(31, 0, 0), "small", 1, 7, 7, 70),
		})

		// New York is UTC-5 until 8 March 2026 and UTC-4 after: its March
		// runs from 1 March 05:00 UTC to 1 April 04:00 UTC.
		ny, err := time.LoadLocation("America/New_York")
		if err != nil {
			t.Fatal(err)
		}
		nyDay := func(d int) time.Time { return time.Date(2026, 3, d, 0, 0, 0, 0, ny) }
		got, err = view(t, db, func(ctx context.Context, tx *store.Tx) ([]DayModel, error) {
			return MonthByModelDay(ctx, tx, "org", "", time.Date(2026, 3, 10, 0, 0, 0, 0, ny), ny)
		})
		check("New York", got, err, []DayModel{
			dm(nyDay(1), "large", 1, 5, 5, 50),
			dm(nyDay(31), "small", 2, 107, 107, 1070),
		})

		// London is on UTC in March until the 29th, then UTC+1.
		london, err := time.LoadLocation("Europe/London")
		if err != nil {
			t.Fatal(err)
		}
		got, err = view(t, db, func(ctx context.Context, tx *store.Tx) ([]DayModel, error) {
			return MonthByModelDay(ctx, tx, "org", "", month, london)
		})
		check("London, March", got, err, []DayModel{
			dm(time.Date(2026, 3, 1, 0, 0, 0, 0, london), "large", 1, 5, 5, 50),
			dm(time.Date(2026, 3, 1, 0, 0, 0, 0, london), "small", 2, 2, 4, 20),
		})
		// In January London is on UTC: read from the daily rollup.
		got, err = view(t, db, func(ctx context.Context, tx *store.Tx) ([]DayModel, error) {
			return MonthByModelDay(ctx, tx, "org", "", time.Date(2026, 1, 31, 23, 0, 0, 0, london), london)
		})
		check("London, January", got, err, []DayModel{
			dm(time.Date(2026, 1, 10, 0, 0, 0, 0, london), "small", 1, 3, 3, 30),
		})

		// India is UTC+5:30: an hour counts in the local day it starts in.
		india := time.FixedZone("IST", 5*3600+1800)
		got, err = view(t, db, func(ctx context.Context, tx *store.Tx) ([]DayModel, error) {
			return MonthByModelDay(ctx, tx, "org", "", month, india)
		})
		check("India", got, err, []DayModel{
			dm(time.Date(2026, 3, 1, 0, 0, 0, 0, india), "small", 3, 1002, 1004, 10020),
			dm(time.Date(2026, 3, 2, 0, 0, 0, 0, india), "large", 1, 5, 5, 50),
		})
	})
}

// TestOverrunsCounted: requests that used more than they reserved are
// counted apart, in the rollups and in the parts of an hour read from the
// raw events (a day in India starts at 18:30 UTC).
// TestPagesAndAudioSecondsStored: the units an event was priced at besides
// tokens are stored with it, on both engines, in a batch of one and of
// several; a negative count is refused, naming the field.
func TestPagesAndAudioSecondsStored(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
		r := NewRecorder(db, Options{})
		start(t, r)
		ocr, audio, both := event("ocr", at), event("audio", at), event("both", at)
		ocr.Endpoint, ocr.Pages = "ocr", 29
		audio.Endpoint, audio.AudioSeconds = "transcriptions", 203
		both.Pages, both.AudioSeconds = 1, 2
		if err := r.Record(ctx, ocr); err != nil {
			t.Fatal(err)
		}
		if err := r.RecordMany(ctx, []Event{audio, both}); err != nil {
			t.Fatal(err)
		}
		got := checkRollups(t, db)
		for _, want := range []Event{ocr, audio, both} {
			if got[want.ID] != want {
				t.Errorf("stored %+v, want %+v", got[want.ID], want)
			}
		}
		bad := event("bad", at)
		bad.AudioSeconds = -1
		if err := r.Record(ctx, bad); err == nil || !strings.Contains(err.Error(), "audio_seconds must be between 0 and") {
			t.Fatalf("a negative count of seconds: %v", err)
		}
	})
}

func TestOverrunsCounted(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		over := func(e Event) Event { e.Overrun = true; return e }
		seed(t, db,
			over(ev("a", "org", "ws1", "small", time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC), 1, 2, 10)),
			ev("b", "org", "ws1", "small", time.Date(2026, 3, 1, 3, 0, 0, 0, time.UTC), 1, 2, 10),
			over(ev("c", "org", "ws1", "small", time.Date(2026, 3, 1, 18, 45, 0, 0, time.UTC), 1, 2, 10)),
		)
		india := time.FixedZone("IST", 5*3600+1800)
		got, err := view(t, db, func(ctx context.Context, tx *store.Tx) ([]DayModel, error) {
			return MonthByModelDay(ctx, tx, "org", "", time.Date(2026, 3, 1, 0, 0, 0, 0, india), india)
		})
		if err != nil || len(got) != 2 || got[0].Requests != 2 || got[0].OverrunRequests != 1 || got[1].Requests != 1 || got[1].OverrunRequests != 1 {
			t.Fatalf("days in India = %+v, %v; want 2 requests with 1 overrun, then 1 overrun", got, err)
		}
		rows, err := view(t, db, func(ctx context.Context, tx *store.Tx) ([]Row, error) {
			return Report(ctx, tx, "org", time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC), Day, nil)
		})
		if err != nil || len(rows) != 1 || rows[0].Requests != 3 || rows[0].OverrunRequests != 2 {
			t.Fatalf("the day's report = %+v, %v; want 3 requests, 2 overruns", rows, err)
		}
	})
}

// readSeed is the usage the read tests share.
func readSeed(t *testing.T, db *store.DB) {
	t.Helper()
	utc := func(d, h, m int) time.Time { return time.Date(2026, 3, d, h, m, 0, 0, time.UTC) }
	seed(t, db,
		ev("a", "org", "ws1", "small", utc(1, 2, 0), 1, 2, 10),
		ev("b", "org", "ws2", "small", utc(1, 3, 0), 1, 2, 10),
		ev("c", "org", "ws1", "large", utc(1, 23, 30), 5, 5, 50),
		ev("d", "org", "ws1", "small", utc(31, 23, 59), 7, 7, 70),
		ev("e", "org", "ws1", "small", time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC), 100, 100, 1000),
		ev("f", "org", "ws1", "small", time.Date(2026, 2, 28, 23, 0, 0, 0, time.UTC), 1000, 1000, 10000),
		ev("g", "other", "ws1", "small", utc(5, 5, 5), 1, 1, 1),
		ev("h", "org", "ws1", "small", time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC), 3, 3, 30),
	)
}

func TestReport(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		readSeed(t, db)
		utc := func(d, h int) time.Time { return time.Date(2026, 3, d, h, 0, 0, 0, time.UTC) }
		report := func(from, to time.Time, b Bucket, groupBy ...string) ([]Row, error) {
			return view(t, db, func(ctx context.Context, tx *store.Tx) ([]Row, error) {
				return Report(ctx, tx, "org", from, to, b, groupBy)
			})
		}
		row := func(start time.Time, ws, key, user, model string, req, in, out, cost int64) Row {
			return Row{Start: start, WorkspaceID: ws, KeyID: key, UserID: user, Model: model,
				Totals: Totals{Requests: req, InputTokens: in, OutputTokens: out, Cost: cost}}
		}
		check := func(name string, got []Row, err error, want ...Row) {
			t.Helper()
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%s:\n got %+v\nwant %+v", name, got, want)
			}
		}

		got, err := report(utc(1, 0), utc(2, 0), Hour, GroupModel)
		check("hourly by model", got, err,
			row(utc(1, 2), "", "", "", "small", 1, 1, 2, 10),
			row(utc(1, 3), "", "", "", "small", 1, 1, 2, 10),
			row(utc(1, 23), "", "", "", "large", 1, 5, 5, 50))

		// from is rounded down to its day; the day of to counts as it
		// starts before to.
		got, err = report(time.Date(2026, 2, 28, 12, 0, 0, 0, time.UTC), utc(31, 1), Day, GroupWorkspace)
		check("daily by Workspace", got, err,
			row(time.Date(2026, 2, 28, 0, 0, 0, 0, time.UTC), "ws1", "", "", "", 1, 1000, 1000, 10000),
			row(utc(1, 0), "ws1", "", "", "", 2, 6, 7, 60),
			row(utc(1, 0), "ws2", "", "", "", 1, 1, 2, 10),
			row(utc(31, 0), "ws1", "", "", "", 1, 7, 7, 70))

		got, err = report(utc(1, 0), utc(2, 0), Day)
		check("daily total", got, err, row(utc(1, 0), "", "", "", "", 3, 7, 9, 70))

		got, err = report(utc(1, 0), utc(1, 4), Hour, GroupModel, GroupUser, GroupKey, GroupWorkspace)
		check("hourly by everything", got, err,
			row(utc(1, 2), "ws1", "k-ws1", "u", "small", 1, 1, 2, 10),
			row(utc(1, 3), "ws2", "k-ws2", "u", "small", 1, 1, 2, 10))

		for name, call := range map[string]func() ([]Row, error){
			"too many hours":   func() ([]Row, error) { return report(utc(1, 0), utc(1, 0).AddDate(2, 0, 0), Hour) },
			"too many days":    func() ([]Row, error) { return report(utc(1, 0), utc(1, 0).AddDate(30, 0, 0), Day) },
			"empty range":      func() ([]Row, error) { return report(utc(2, 0), utc(1, 0), Day) },
			"all of time":      func() ([]Row, error) { return report(time.Time{}, time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), Day) },
			"unknown bucket":   func() ([]Row, error) { return report(utc(1, 0), utc(2, 0), "week") },
			"unknown grouping": func() ([]Row, error) { return report(utc(1, 0), utc(2, 0), Day, "currency") },
			"repeated group":   func() ([]Row, error) { return report(utc(1, 0), utc(2, 0), Day, GroupKey, GroupKey) },
		} {
			if _, err := call(); !steward.IsKind(err, steward.KindInvalid) {
				t.Errorf("%s: %v, want KindInvalid", name, err)
			}
		}
		// Exactly MaxBuckets buckets is allowed; one more is not.
		if _, err := report(utc(1, 0), utc(1, 0).Add(MaxBuckets*time.Hour), Hour); err != nil {
			t.Errorf("%d hours: %v", MaxBuckets, err)
		}
		if _, err := report(utc(1, 0), utc(1, 0).Add(MaxBuckets*time.Hour+time.Second), Hour); !steward.IsKind(err, steward.KindInvalid) {
			t.Errorf("%d hours and a second: %v, want KindInvalid", MaxBuckets, err)
		}
	})
}

func TestMonthSpend(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		readSeed(t, db)
		spend := func(ws string, start, end time.Time) (int64, map[string]int64, error) {
			type result struct {
				cost   int64
				tokens map[string]int64
			}
			r, err := view(t, db, func(ctx context.Context, tx *store.Tx) (result, error) {
				c, m, err := MonthSpend(ctx, tx, "org", ws, start, end)
				return result{c, m}, err
			})
			return r.cost, r.tokens, err
		}
		check := func(name string, ws string, start, end time.Time, cost int64, tokens map[string]int64) {
			t.Helper()
			c, m, err := spend(ws, start, end)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if c != cost || !reflect.DeepEqual(m, tokens) {
				t.Fatalf("%s: cost %d, tokens %v; want %d, %v", name, c, m, cost, tokens)
			}
		}
		march := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
		check("UTC March", "", march, march.AddDate(0, 1, 0), 140, map[string]int64{"small": 20, "large": 10})
		check("UTC March, ws2", "ws2", march, march.AddDate(0, 1, 0), 10, map[string]int64{"small": 3})
		check("UTC April, nothing", "ws2", march.AddDate(0, 1, 0), march.AddDate(0, 2, 0), 0, map[string]int64{})
		ny, err := time.LoadLocation("America/New_York")
		if err != nil {
			t.Fatal(err)
		}
		nyMarch := time.Date(2026, 3, 1, 0, 0, 0, 0, ny)
		check("New York March", "", nyMarch, nyMarch.AddDate(0, 1, 0), 1120, map[string]int64{"small": 214, "large": 10})
		if _, _, err := spend("", march, march); !steward.IsKind(err, steward.KindInvalid) {
			t.Fatalf("empty range: %v, want KindInvalid", err)
		}
	})
}

func TestRecordAfterClose(t *testing.T) {
	db, _ := storetest.OpenSQLite(t)
	ctx := context.Background()
	at := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)

	r := NewRecorder(db, Options{})
	start(t, r)
	if err := r.Record(ctx, event("before", at)); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Record(ctx, event("after", at)); !steward.IsKind(err, steward.KindUnavailable) {
		t.Fatalf("Record after Close: %v, want KindUnavailable", err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	// Run's end closes the Recorder too.
	r2 := NewRecorder(db, Options{})
	rctx, cancel := context.WithCancel(ctx)
	cancel()
	r2.Run(rctx)
	if err := r2.Record(ctx, event("after-run", at)); !steward.IsKind(err, steward.KindUnavailable) {
		t.Fatalf("Record after Run returned: %v, want KindUnavailable", err)
	}
	if raw := stored(t, db); len(raw) != 1 {
		t.Fatalf("%d events stored, want 1", len(raw))
	}
}

func TestUnreachableDatabaseFailsCallers(t *testing.T) {
	db, _ := storetest.OpenSQLite(t)
	r := NewRecorder(db, Options{})
	start(t, r)
	db.Close()
	err := r.Record(context.Background(), event("lost", time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)))
	if !steward.IsKind(err, steward.KindUnavailable) {
		t.Fatalf("Record on a closed database: %v, want KindUnavailable", err)
	}
	if st := r.Stats(); st.FailedBatches != 1 || st.Batches != 0 {
		t.Fatalf("stats %+v, want one failed batch", st)
	}
}

// queuedEvents is how many events wait to be taken.
func queuedEvents(r *Recorder) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, req := range r.pending {
		n += len(req.events)
	}
	return n
}

// recordAll records n events from n goroutines and returns their errors
// once every call has returned.
func recordAll(r *Recorder, prefix string, n int, at time.Time) <-chan error {
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs <- r.Record(context.Background(), event(prefix+strconv.Itoa(i), at)) })
	}
	go func() {
		wg.Wait()
		close(errs)
	}()
	return errs
}

func TestShutdownFlushes(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		at := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)

		// Queued before Run starts, then taken into a batch that lingers far
		// longer than the test: only the shutdown can write it.
		r := NewRecorder(db, Options{MaxWait: time.Hour})
		errs := recordAll(r, "run-", 25, at)
		for queuedEvents(r) < 25 {
			time.Sleep(time.Millisecond)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			r.Run(ctx)
		}()
		for queuedEvents(r) > 0 {
			time.Sleep(time.Millisecond)
		}
		if raw := stored(t, db); len(raw) != 0 {
			t.Fatalf("%d events stored while the batch lingers", len(raw))
		}
		cancel()
		<-done
		for err := range errs {
			if err != nil {
				t.Fatalf("Record during shutdown: %v", err)
			}
		}
		if raw := checkRollups(t, db); len(raw) != 25 {
			t.Fatalf("%d events stored after Run's shutdown, want 25", len(raw))
		}

		// Never run: Close writes what is queued.
		r2 := NewRecorder(db, Options{})
		errs = recordAll(r2, "close-", 10, at)
		for queuedEvents(r2) < 10 {
			time.Sleep(time.Millisecond)
		}
		if err := r2.Close(); err != nil {
			t.Fatal(err)
		}
		for err := range errs {
			if err != nil {
				t.Fatalf("Record before Close: %v", err)
			}
		}
		if raw := checkRollups(t, db); len(raw) != 35 {
			t.Fatalf("%d events stored after Close, want 35", len(raw))
		}
	})
}

func TestInvalidEvents(t *testing.T) {
	db, _ := storetest.OpenSQLite(t)
	r := NewRecorder(db, Options{})
	start(t, r)
	at := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	for name, change := range map[string]func(*Event){
		"no id":             func(e *Event) { e.ID = "" },
		"long id":           func(e *Event) { e.ID = string(make([]byte, MaxIDLen+1)) },
		"no organization":   func(e *Event) { e.OrganizationID = "" },
		"no model":          func(e *Event) { e.Model = "" },
		"negative input":    func(e *Event) { e.InputTokens = -1 },
		"negative output":   func(e *Event) { e.OutputTokens = -1 },
		"negative cost":     func(e *Event) { e.Cost = -1 },
		"huge count":        func(e *Event) { e.OutputTokens = MaxCount + 1 },
		"NUL byte":          func(e *Event) { e.KeyID = "k\x00" },
		"invalid UTF-8":     func(e *Event) { e.UserID = "\xff" },
		"long currency":     func(e *Event) { e.Currency = "EUREUREUREUREUREUR" },
		"before 1970":       func(e *Event) { e.Time = time.Date(1969, 1, 1, 0, 0, 0, 0, time.UTC) },
		"long endpoint":     func(e *Event) { e.Endpoint = string(make([]byte, MaxEndpointLen+1)) },
		"long workspace id": func(e *Event) { e.WorkspaceID = string(make([]byte, MaxIDLen+1)) },
	} {
		e := event("bad", at)
		change(&e)
		err := r.Record(context.Background(), e)
		var se *steward.Error
		if !errors.As(err, &se) || se.Kind != steward.KindInvalid || len(se.Field) != 1 {
			t.Errorf("%s: %v, want KindInvalid naming a field", name, err)
		}
	}
	// One invalid event fails its whole call.
	good, bad := event("good", at), event("bad", at)
	bad.Cost, bad.Model = -5, ""
	err := r.RecordMany(context.Background(), []Event{good, bad})
	var se *steward.Error
	if !errors.As(err, &se) || se.Kind != steward.KindInvalid || !reflect.DeepEqual(se.Field, []string{"events", "1", "model"}) || len(se.Also) != 1 {
		t.Fatalf("RecordMany with an invalid event: %#v, want KindInvalid at events.1.model and one more", err)
	}
	// A zero time is now.
	db.Now = func() time.Time { return at }
	e := event("now", time.Time{})
	if err := r.Record(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	raw := stored(t, db)
	if len(raw) != 1 || !raw["now"].Time.Equal(at) {
		t.Fatalf("stored %+v, want only the event at %v", raw, at)
	}
}

// BenchmarkWriteBatch measures the writer's own work for one batch of
// 1,000 events, without callers: the CPU time of the thread that writes,
// which a busy machine changes far less than the wall time.
func BenchmarkWriteBatch(b *testing.B) {
	for _, engine := range storetest.Engines(b) {
		b.Run(engine.Name, func(b *testing.B) {
			db, _ := engine.Open(b)
			ctx := context.Background()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			now := time.Now()
			var seq int64
			events := make([]Event, 1000)
			var cpu time.Duration
			for b.Loop() {
				for i := range events {
					seq++
					events[i] = Event{ID: fmt.Sprintf("bench-%012d", seq), Time: now.Add(time.Duration(seq) * time.Millisecond),
						OrganizationID: "org-" + strconv.FormatInt(seq%10, 10), WorkspaceID: "ws-" + strconv.FormatInt(seq%30, 10),
						KeyID: "key-" + strconv.FormatInt(seq%100, 10), UserID: "user-" + strconv.FormatInt(seq%50, 10),
						Model: "model-" + strconv.FormatInt(seq%5, 10), InputTokens: seq % 4000, OutputTokens: seq % 1000,
						Cost: seq % 100000, Currency: "EUR", Endpoint: "chat.completions", RequestID: strconv.FormatInt(seq, 16)}
				}
				before := threadCPU(b)
				if err := db.Transact(ctx, func(tx *store.Tx) error { _, err := write(ctx, tx, events); return err }); err != nil {
					b.Fatal(err)
				}
				cpu += threadCPU(b) - before
			}
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(seq), "writer-cpu-ns/event")
		})
	}
}

// threadCPU is the CPU time of the calling thread.
func threadCPU(b *testing.B) time.Duration {
	const rusageThread = 1 // RUSAGE_THREAD, Linux
	var u syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &u); err != nil {
		b.Fatal(err)
	}
	return time.Duration(u.Utime.Nano() + u.Stime.Nano())
}

// Derive writes in each batch's transaction, sees only the events the
// batch inserted, and fails the batch, leaving nothing, when it fails.
func TestDeriveCommitsWithTheBatch(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		if err := db.Transact(ctx, func(tx *store.Tx) error {
			_, err := tx.Exec(ctx, "CREATE TABLE derived (id TEXT PRIMARY KEY)")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		fail := errors.New("derive failed")
		var failing atomic.Bool
		r := NewRecorder(db, Options{Derive: func(ctx context.Context, tx *store.Tx, inserted []Event) error {
			for _, e := range inserted {
				if _, err := tx.Exec(ctx, "INSERT INTO derived (id) VALUES (?)", e.ID); err != nil {
					return err
				}
			}
			if failing.Load() {
				return fail
			}
			return nil
		}})
		start(t, r)
		at := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
		if err := r.RecordMany(ctx, []Event{event("a", at), event("b", at)}); err != nil {
			t.Fatal(err)
		}
		// A repeated id is not inserted, so not derived again.
		if err := r.RecordMany(ctx, []Event{event("a", at), event("c", at)}); err != nil {
			t.Fatal(err)
		}
		failing.Store(true)
		if err := r.Record(ctx, event("d", at)); err == nil || !strings.Contains(err.Error(), "derive failed") {
			t.Fatalf("a failing Derive: %v", err)
		}
		var derived []string
		if err := db.View(ctx, func(tx *store.Tx) error {
			var err error
			derived, err = tx.Strings(ctx, "SELECT id FROM derived ORDER BY id")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(derived, []string{"a", "b", "c"}) {
			t.Errorf("derived %v, want a, b and c once each", derived)
		}
		if raw := checkRollups(t, db); len(raw) != 3 || raw["d"].ID != "" {
			t.Errorf("stored %d events, want a, b and c without d", len(raw))
		}
	})
}
