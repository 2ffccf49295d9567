package usage

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
)

// intents counts the rows of usage_intents.
func intents(t *testing.T, db *store.DB) int {
	t.Helper()
	n, err := view(t, db, func(ctx context.Context, tx *store.Tx) (int, error) {
		var n int
		return n, tx.QueryRow(ctx, "SELECT COUNT(*) FROM usage_intents").Scan(&n)
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// reserved is event id's reservation: more than it will use, in every
// unit, so that an intent settled at its reservation shows each kept.
func reserved(id string, at time.Time) Event {
	e := event(id, at)
	e.InputTokens, e.OutputTokens, e.Cost, e.Estimated = 100, 200, 3000, true
	e.Pages, e.AudioSeconds = 7, 60
	return e
}

// TestIntentSettled follows a request whose upstream is slower than a
// commit: its intent is committed first, then Settle returns without
// waiting and its final event replaces the intent.
func TestIntentSettled(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
		r := NewRecorder(db, Options{})
		start(t, r)
		in, err := r.Intend(reserved("a", at))
		if err != nil {
			t.Fatal(err)
		}
		if err := in.Durable(ctx); err != nil {
			t.Fatal(err)
		}
		if got := intents(t, db); got != 1 {
			t.Fatalf("intents after Durable: %d, want 1", got)
		}
		final := event("ignored: the intent's id is used", at)
		if err := in.Settle(ctx, final); err != nil {
			t.Fatal(err)
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		final.ID = "a"
		got := checkRollups(t, db)
		if len(got) != 1 || got["a"] != final {
			t.Fatalf("stored %+v, want only the final event %+v", got, final)
		}
		if got := intents(t, db); got != 0 {
			t.Fatalf("intents after the final event: %d, want 0", got)
		}
	})
}

// TestIntentReplacedWhileQueued settles a request before the writer has
// taken its intent: the final event is written in its stead, one row.
func TestIntentReplacedWhileQueued(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
		r := NewRecorder(db, Options{})
		in, err := r.Intend(reserved("a", at))
		if err != nil {
			t.Fatal(err)
		}
		settled := make(chan error, 1)
		go func() { settled <- in.Settle(context.Background(), event("a", at)) }()
		for queuedEvents(r) == 0 {
			time.Sleep(time.Millisecond)
		}
		start(t, r)
		if err := <-settled; err != nil {
			t.Fatal(err)
		}
		if got := r.Stats(); got.Batches != 1 {
			t.Fatalf("batches = %d, want 1: the final event alone", got.Batches)
		}
		if got := checkRollups(t, db); len(got) != 1 || got["a"].Estimated || got["a"].OutputTokens != 20 {
			t.Fatalf("stored %+v, want the final event", got)
		}
		if got := intents(t, db); got != 0 {
			t.Fatalf("intents: %d, want 0", got)
		}
	})
}

// TestOrphanedIntentsSettledOnce settles, as a process does at start, the
// intents a killed process left: one whose final event never came is
// recorded at its reservation, marked estimated; one whose final event
// was committed (its intent's deletion was not) stays as it was; a
// cancelled one is gone. A second settlement records nothing.
func TestOrphanedIntentsSettledOnce(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
		r := NewRecorder(db, Options{})
		start(t, r)
		for _, id := range []string{"orphan", "final", "cancelled"} {
			in, err := r.Intend(reserved(id, at))
			if err != nil {
				t.Fatal(err)
			}
			if err := in.Durable(ctx); err != nil {
				t.Fatal(err)
			}
			switch id {
			case "final":
				if err := r.Record(ctx, event(id, at)); err != nil {
					t.Fatal(err)
				}
			case "cancelled":
				in.Cancel()
			}
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}

		next := NewRecorder(db, Options{})
		for i, want := range []int{1, 0} {
			if got, err := next.SettleOrphans(ctx); err != nil || got != want {
				t.Fatalf("settlement %d: recorded %d, %v; want %d", i+1, got, err, want)
			}
		}
		got := checkRollups(t, db)
		want := map[string]Event{"orphan": reserved("orphan", at), "final": event("final", at)}
		if len(got) != len(want) || got["orphan"] != want["orphan"] || got["final"] != want["final"] {
			t.Fatalf("stored %+v\nwant %+v", got, want)
		}
		if n := intents(t, db); n != 0 {
			t.Fatalf("intents left: %d", n)
		}
	})
}

// TestIntentFailedThenSettled: when a request's intent could not be
// stored, Settle writes its final event and returns only once it is.
func TestIntentFailedThenSettled(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
		exec := func(query string) {
			t.Helper()
			if err := db.Transact(ctx, func(tx *store.Tx) error {
				_, err := tx.Exec(ctx, query)
				return err
			}); err != nil {
				t.Fatal(err)
			}
		}
		r := NewRecorder(db, Options{Log: slog.New(slog.DiscardHandler)})
		start(t, r)
		exec("ALTER TABLE usage_intents RENAME TO usage_intents_away")
		in, err := r.Intend(reserved("a", at))
		if err != nil {
			t.Fatal(err)
		}
		if err := in.Durable(ctx); err == nil {
			t.Fatal("Durable without a table for intents: nil, want its batch's error")
		}
		exec("ALTER TABLE usage_intents_away RENAME TO usage_intents")
		final := event("a", at)
		if err := in.Settle(ctx, final); err != nil {
			t.Fatal(err)
		}
		if got := checkRollups(t, db); len(got) != 1 || got["a"] != final {
			t.Fatalf("stored %+v once Settle returned, want the final event %+v", got, final)
		}
		if got := intents(t, db); got != 0 {
			t.Fatalf("intents: %d, want 0", got)
		}
	})
}

// learntRecorder returns a running Recorder that defers up to maxDefer and
// has learnt that requests like reserved's are answered after answeredIn,
// and that a batch commits in a millisecond.
func learntRecorder(t *testing.T, db *store.DB, maxDefer, answeredIn time.Duration) *Recorder {
	t.Helper()
	r := NewRecorder(db, Options{MaxDefer: maxDefer})
	e := reserved("", time.Time{})
	r.committed(time.Millisecond)
	r.answered(intentKind{e.Model, e.Endpoint}, answeredIn)
	start(t, r)
	return r
}

// TestDeferredUntilSomeoneWaits follows batches nobody waits for: intents
// and final events wait (here, up to an hour) to share a commit, and a
// caller that starts waiting ends the wait at once for everything queued.
func TestDeferredUntilSomeoneWaits(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
		// Requests of this kind took two hours to be answered: their
		// intents may wait the hour.
		r := learntRecorder(t, db, time.Hour, 2*time.Hour)
		in := queue(t, r, at, "a", "b")
		a, b := in[0], in[1]
		if err := a.Durable(ctx); err != nil {
			t.Fatalf("Durable did not end the deferral: %v", err)
		}
		if got := intents(t, db); got != 2 {
			t.Fatalf("intents after Durable: %d, want both, committed together", got)
		}
		if err := b.Settle(ctx, event("b", at)); err != nil {
			t.Fatal(err)
		}
		if err := a.Settle(ctx, event("a", at)); err != nil {
			t.Fatal(err)
		}
		if got := len(checkRollups(t, db)); got != 0 {
			t.Fatalf("%d final events committed while nobody waited, want them deferred", got)
		}
		if err := r.Record(ctx, event("c", at)); err != nil {
			t.Fatalf("Record did not end the deferral: %v", err)
		}
		if got := checkRollups(t, db); len(got) != 3 || intents(t, db) != 0 {
			t.Fatalf("after Record: events %v and %d intents, want a, b and c and no intent", got, intents(t, db))
		}
		if s := r.Stats(); s.Batches != 2 || s.Events != 3 {
			t.Fatalf("stats %+v, want 2 batches (the intents, then the rest) of 3 events", s)
		}
	})
}

// TestDeferredIntentReplaced settles a request while its intent waits in a
// deferred batch: the intent is still queued, so the final event takes its
// place and is written at once, one row in one batch.
func TestDeferredIntentReplaced(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
		r := learntRecorder(t, db, time.Hour, 2*time.Hour)
		in := queue(t, r, at, "a")[0]
		final := event("a", at)
		if err := in.Settle(ctx, final); err != nil {
			t.Fatal(err)
		}
		if got := checkRollups(t, db); len(got) != 1 || got["a"] != final {
			t.Fatalf("stored %+v after Settle, want the final event %+v", got, final)
		}
		if s := r.Stats(); s.Batches != 1 || s.Events != 1 {
			t.Fatalf("stats %+v, want one batch of one event: the intent replaced in the queue", s)
		}
	})
}

// TestIntentsDeferredByTheirModelsTime follows what an intent may wait
// for company: nothing for a model not seen yet, then the time its model's
// requests wait for their answers less two commits, at most MaxDefer.
func TestIntentsDeferredByTheirModelsTime(t *testing.T) {
	r := NewRecorder(nil, Options{MaxDefer: 10 * time.Millisecond})
	chat, embed := intentKind{"m", "chat"}, intentKind{"m", "embeddings"}
	if d, fast := r.deferIntent(chat); d != 0 || fast {
		t.Fatalf("a kind not seen yet: wait %v, fast %v; want it written at once", d, fast)
	}
	r.committed(time.Millisecond)
	r.answered(embed, 4*time.Millisecond)
	r.answered(chat, time.Second)
	if d, _ := r.deferIntent(embed); d != 2*time.Millisecond {
		t.Fatalf("answered in 4ms, commits of 1ms: %v, want 2ms", d)
	}
	if d, _ := r.deferIntent(chat); d != 10*time.Millisecond {
		t.Fatalf("answered in 1s: %v, want MaxDefer, 10ms", d)
	}
	r.answered(embed, 12*time.Millisecond)
	if d, _ := r.deferIntent(embed); d != 3*time.Millisecond {
		t.Fatalf("answered in 4ms then 12ms: %v, want their moving average (5ms) less two commits, 3ms", d)
	}
	r.committed(9 * time.Millisecond)
	if d, _ := r.deferIntent(embed); d != time.Millisecond {
		t.Fatalf("commits of 1ms then 9ms: %v, want 5ms less two of their moving average (2ms), 1ms", d)
	}
	r.answered(intentKind{"fast", "chat"}, 300*time.Microsecond)
	if d, fast := r.deferIntent(intentKind{"fast", "chat"}); d != 0 || !fast {
		t.Fatalf("answered within a commit: wait %v, fast %v; want a fast kind", d, fast)
	}
}

// TestFastIntentHeld follows the intents of a model that answers within a
// commit: held out of the queue, each request writes only its final event
// (one batch each, no intent), unless a stream's first byte asks for its
// intent to be durable (Durable), which queues it then.
func TestFastIntentHeld(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
		r := learntRecorder(t, db, -1, time.Microsecond)
		a := queue(t, r, at, "a")[0]
		r.mu.Lock()
		queued := len(r.pending)
		r.mu.Unlock()
		if got := queued; got != 0 {
			t.Fatalf("%d rows queued after Intend, want the fast intent held", got)
		}
		if err := a.Settle(ctx, event("a", at)); err != nil {
			t.Fatal(err)
		}
		if s := r.Stats(); s.Batches != 1 || s.Events != 1 {
			t.Fatalf("stats %+v after Settle, want one batch of the final event", s)
		}
		if err := queue(t, r, at, "b")[0].Durable(ctx); err != nil {
			t.Fatal(err)
		}
		if got := intents(t, db); got != 1 {
			t.Fatalf("intents after Durable: %d, want the held intent written", got)
		}
		queue(t, r, at, "c")[0].Cancel()
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		if got := intents(t, db); got != 1 {
			t.Fatalf("intents after a held one was cancelled: %d, want only b's", got)
		}
	})
}
