package usage

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
)

// joined returns a Recorder on db, running, and its Process, closed when
// the test ends.
func joined(t *testing.T, db *store.DB) (*Recorder, *Process) {
	t.Helper()
	r := NewRecorder(db, Options{Log: slog.New(slog.DiscardHandler)})
	p, err := Join(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	start(t, r)
	return r, p
}

// intend writes the intents of ids through r, and returns them once they
// are committed.
func intend(t *testing.T, r *Recorder, at time.Time, ids ...string) []*Intent {
	t.Helper()
	out := queue(t, r, at, ids...)
	for _, in := range out {
		if err := in.Durable(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// queue queues the intents of ids through r, without waiting for them.
func queue(t *testing.T, r *Recorder, at time.Time, ids ...string) []*Intent {
	t.Helper()
	var out []*Intent
	for _, id := range ids {
		in, err := r.Intend(reserved(id, at))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, in)
	}
	return out
}

// cut ends the connection that holds p's lock, as PostgreSQL sees a
// process killed with kill -9: its socket closed.
func cut(t *testing.T, db *store.DB, p *Process) {
	t.Helper()
	ctx := context.Background()
	var n int
	err := db.Transact(ctx, func(tx *store.Tx) error {
		return tx.QueryRow(ctx, "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = ?", lockName(p.ID())).Scan(&n)
	})
	if err != nil || n != 1 {
		t.Fatalf("cut the lock's connection: %d cut, %v", n, err)
	}
}

// sweep sweeps through r and checks how many it recorded.
func sweep(t *testing.T, r *Recorder, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, err := r.Sweep(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		// A cut connection's lock is released once its backend has
		// exited, a moment after pg_terminate_backend returns.
		if got == want || got != 0 || time.Now().After(deadline) {
			if got != want {
				t.Fatalf("sweep recorded %d intents, want %d", got, want)
			}
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// processOf returns the process id intent id carries.
func processOf(t *testing.T, db *store.DB, id string) int64 {
	t.Helper()
	p, err := view(t, db, func(ctx context.Context, tx *store.Tx) (int64, error) {
		var p int64
		return p, tx.QueryRow(ctx, "SELECT process_id FROM usage_intents WHERE id = ?", id).Scan(&p)
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSweepSettlesOnlyDeadProcesses runs two processes on one PostgreSQL
// database. While both live, neither's sweep touches the other's intents.
// Once the first one's lock connection is gone (as after kill -9), the
// second's sweep records its intents at their reservation, once; the
// first process's final event for one of them, arriving late, is ignored
// and counted; and the first process takes a new id and lock, whose
// intents the sweep leaves alone again.
func TestSweepSettlesOnlyDeadProcesses(t *testing.T) {
	db, cfg := storetest.OpenPostgres(t)
	other := storetest.OpenAgain(t, cfg)
	ctx := context.Background()
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	a, pa := joined(t, db)
	b, _ := joined(t, other)

	settled := intend(t, a, at, "a1", "a2")
	intend(t, b, at, "b1")
	sweep(t, b, 0)
	sweep(t, a, 0)
	if n := intents(t, db); n != 3 {
		t.Fatalf("intents of live processes after their sweeps: %d, want 3", n)
	}
	if got := processOf(t, db, "a1"); got != pa.ID() || got == 0 {
		t.Fatalf("a1's process: %x, want %x", got, pa.ID())
	}

	dead := pa.ID()
	cut(t, db, pa)
	sweep(t, b, 2)
	sweep(t, b, 0)
	got := checkRollups(t, db)
	if len(got) != 2 || got["a1"] != reserved("a1", at) || got["a2"] != reserved("a2", at) {
		t.Fatalf("stored %+v, want a1 and a2 at their reservation, marked estimated", got)
	}
	if n := intents(t, db); n != 1 || processOf(t, db, "b1") != b.process.Load() {
		t.Fatalf("intents left: %d, want b1's", n)
	}
	if st := b.Stats(); st.Orphans != 2 {
		t.Fatalf("sweeping process's stats %+v, want 2 orphans", st)
	}

	// a's final event for a1, after the sweep: ignored, and counted.
	if err := settled[0].Settle(ctx, event("a1", at)); err != nil {
		t.Fatal(err)
	}
	for wait := time.Now().Add(5 * time.Second); a.Stats().LateFinals == 0; {
		if time.Now().After(wait) {
			t.Fatalf("the late final event is not counted 5s after Settle: %+v", a.Stats())
		}
		time.Sleep(time.Millisecond)
	}
	if got := checkRollups(t, db); len(got) != 2 || got["a1"] != reserved("a1", at) {
		t.Fatalf("stored %+v after the late final event, want a1 at its reservation still", got)
	}

	// a takes a new id once it notices the loss, and its intents are
	// left alone again.
	rctx, stop := context.WithCancel(ctx)
	ran := make(chan struct{})
	go func() { defer close(ran); pa.Run(rctx, time.Hour) }()
	defer func() { stop(); <-ran }()
	deadline := time.Now().Add(5 * time.Second)
	for pa.ID() == dead {
		if time.Now().After(deadline) {
			t.Fatal("no new process id 5s after the lock's connection was cut")
		}
		time.Sleep(time.Millisecond)
	}
	intend(t, a, at, "a3")
	if got := processOf(t, db, "a3"); got != pa.ID() {
		t.Fatalf("a3's process: %x, want the new id %x", got, pa.ID())
	}
	sweep(t, b, 0)
	if n := intents(t, db); n != 2 {
		t.Fatalf("intents after a's new lock: %d, want b1 and a3", n)
	}
	if st := a.Stats(); st.LateFinals != 1 || st.FailedBatches != 0 {
		t.Fatalf("stats of the process that lost its lock: %+v, want one late final event", st)
	}
}

// TestSweepRacingFinalEvents sweeps a process taken for dead while it
// writes the final events of its intents: each request is recorded once,
// by whichever commits first, with no deadlock nor failed batch, and the
// sweeps' count equals the late final events'.
func TestSweepRacingFinalEvents(t *testing.T) {
	db, cfg := storetest.OpenPostgres(t)
	other := storetest.OpenAgain(t, cfg)
	ctx := context.Background()
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	a, pa := joined(t, db)
	b, _ := joined(t, other)
	const n = 400
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("r%03d", i)
	}
	in := intend(t, a, at, ids...)
	cut(t, db, pa)

	finals := make(chan error, 1)
	go func() {
		for i, x := range in {
			if err := x.Settle(ctx, event(ids[i], at)); err != nil {
				finals <- err
				return
			}
		}
		finals <- nil
	}()
	recorded := 0
	for deadline := time.Now().Add(10 * time.Second); intents(t, db) > 0; {
		if time.Now().After(deadline) {
			t.Fatalf("intents left 10s after their process was cut: %d", intents(t, db))
		}
		got, err := b.Sweep(ctx)
		if err != nil {
			t.Fatal(err)
		}
		recorded += got
	}
	if err := <-finals; err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	got := checkRollups(t, db)
	estimated := 0
	for _, id := range ids {
		switch e := got[id]; e {
		case reserved(id, at):
			estimated++
		case event(id, at):
		default:
			t.Fatalf("stored %+v for %s, want its final event or its reservation", e, id)
		}
	}
	sa, sb := a.Stats(), b.Stats()
	if len(got) != n || estimated != recorded || int64(recorded) != sb.Orphans || sa.LateFinals != sb.Orphans || sa.FailedBatches != 0 {
		t.Fatalf("%d stored, %d estimated, %d swept; stats %+v and %+v: want %d stored, as many estimated as swept and late", len(got), estimated, recorded, sa, sb, n)
	}
	t.Logf("%d of %d requests recorded at their reservation by the sweep", recorded, n)
}
