package usage

import (
	"context"
	"database/sql"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/stewardhq/steward/internal/store"
)

var intentColumns = []string{"id", "organization_id", "workspace_id", "key_id", "user_id", "model", "occurred_at", "input_tokens", "output_tokens", "cost", "currency", "endpoint", "request_id", "product", "pages", "audio_seconds"}

// intentRow is an intent's columns as written: its usage, then its process.
var intentRow = append(slices.Clone(intentColumns), "process_id")

// An Intent is the usage a request in flight has reserved, queued for the
// Recorder's group commit when the request starts, so that the commit
// overlaps the request's upstream call instead of following its answer.
// Its final usage event, of the same id, replaces it (Settle); an intent
// whose process died before that is recorded at its reservation, marked
// estimated, by SettleOrphans. A stored event id is ignored, so a request
// is recorded once whichever comes first.
type Intent struct {
	r   *Recorder
	id  string
	req *request
	// kind is the intent's model and endpoint; at is when it was queued;
	// answered is set once the time until its answer was observed.
	kind     intentKind
	at       time.Time
	answered atomic.Bool
	// held is set while an intent of a kind that answers within a commit
	// or two is kept out of the queue: its final event will most likely
	// be ready before the intent could be written, and takes its place
	// (Settle); a stream's first byte queues it (Durable).
	held atomic.Bool
}

// intentKind is what the time a request waits for its answer depends on.
type intentKind struct{ model, endpoint string }

// Intend queues e, a request's reservation, as an intent, and returns
// without waiting for its commit. An invalid event is KindInvalid; a
// closed Recorder is KindUnavailable.
func (r *Recorder) Intend(e Event) (*Intent, error) {
	events := []Event{e}
	if err := validateAll(events, r.db.Now(), nil); err != nil {
		return nil, err
	}
	in := &Intent{r: r, id: e.ID, kind: intentKind{e.Model, e.Endpoint}, at: time.Now()}
	wait, fast := r.deferIntent(in.kind)
	in.req = &request{intents: events, due: in.at.Add(wait), done: make(chan struct{})}
	if fast {
		in.held.Store(true)
		return in, nil
	}
	if err := r.enqueue(in.req); err != nil {
		return nil, err
	}
	return in, nil
}

// Durable returns once the intent is committed, with its batch's error;
// if ctx ends first, the context's error (the intent stays queued). A
// batch deferred because nobody waited for it is written at once.
func (in *Intent) Durable(ctx context.Context) error {
	in.answer()
	if in.held.CompareAndSwap(true, false) {
		if err := in.r.enqueue(in.req); err != nil {
			return err
		}
	}
	select {
	case <-in.req.done:
		return in.req.err
	default:
	}
	defer in.r.urge()()
	select {
	case <-in.req.done:
		return in.req.err
	case <-ctx.Done():
		return store.Translate(ctx.Err())
	}
}

// Settle makes final, the request's usage (its ID is set to the intent's),
// as durable as an answer needs, and returns when the answer may be sent:
// at once when the intent is committed, since the intent then stands for
// the request until final replaces it, in a later batch nobody waits for.
// When the intent is still queued, it is withdrawn and final is written in
// its stead, waited for (one row instead of two). When the intent failed,
// final is written with its deletion, waited for. Its error means that
// the request's usage is not known to be durable.
func (in *Intent) Settle(ctx context.Context, final Event) error {
	in.answer()
	final.ID = in.id
	events := []Event{final}
	if err := validateAll(events, in.r.db.Now(), nil); err != nil {
		return err
	}
	if in.req.state.CompareAndSwap(queued, withdrawn) {
		return in.r.submit(ctx, events)
	}
	req := &request{events: events, deletes: []string{in.id}, due: time.Now().Add(in.r.maxDefer), done: make(chan struct{})}
	if in.Durable(ctx) != nil {
		if err := in.r.enqueue(req); err != nil {
			return err
		}
		return in.r.wait(ctx, req)
	}
	if err := in.r.enqueue(req); err != nil {
		in.r.log.Warn("usage recorder closed: the request stays recorded at its reservation", "id", in.id)
	}
	return nil
}

// Cancel withdraws the intent of a request that used nothing (no upstream
// answered, or it answered an error), or deletes it in a later batch. A
// held intent is queued nowhere: withdrawing it is all there is to do.
func (in *Intent) Cancel() {
	if in.req.state.CompareAndSwap(queued, withdrawn) {
		return
	}
	if err := in.r.enqueue(&request{deletes: []string{in.id}, due: time.Now().Add(in.r.maxDefer), done: make(chan struct{})}); err != nil {
		in.r.log.Warn("usage recorder closed: an unused reservation will be recorded at start", "id", in.id)
	}
}

// answer tells the Recorder, the first time it is called, how long the
// intent's request waited for its answer (its upstream's first byte).
func (in *Intent) answer() {
	if in.answered.CompareAndSwap(false, true) {
		in.r.answered(in.kind, time.Since(in.at))
	}
}

// deferIntent is how long an intent of kind may wait in the queue for
// others to share its batch: the time its kind's requests usually wait for
// their answers less twice the usual commit, so that its commit is done
// before its answer comes, and at most MaxDefer. A kind not seen yet is
// written at once. A kind answered within a commit or two is fast: its
// intent is better not written at all, since its final event will be
// ready about when the intent's commit would end, and one row costs less
// than two.
func (r *Recorder) deferIntent(kind intentKind) (wait time.Duration, fast bool) {
	r.latMu.Lock()
	latency, seen := r.latency[kind]
	d := latency - 2*r.commitAvg
	r.latMu.Unlock()
	return min(max(d, 0), r.maxDefer), seen && d <= 0
}

// answered adds the time a request of kind waited for its answer to the
// moving average that deferIntent reads.
func (r *Recorder) answered(kind intentKind, d time.Duration) {
	r.latMu.Lock()
	defer r.latMu.Unlock()
	avg, ok := r.latency[kind]
	r.latency[kind] = movingAverage(avg, d, ok)
}

// committed adds the time a batch took to commit to the moving average
// that deferIntent reads.
func (r *Recorder) committed(d time.Duration) {
	r.latMu.Lock()
	defer r.latMu.Unlock()
	r.commitAvg = movingAverage(r.commitAvg, d, r.commitSeen)
	r.commitSeen = true
}

// movingAverage adds d to avg, an exponentially weighted moving average
// (an eighth for the newest), or starts it when it is not yet.
func movingAverage(avg, d time.Duration, started bool) time.Duration {
	if !started {
		return d
	}
	return avg + (d-avg)/8
}

// writeIntents inserts intents as process's, ignoring ids stored already.
func writeIntents(ctx context.Context, tx *store.Tx, intents []Event, process int64) error {
	if len(intents) == 0 {
		return nil
	}
	rows := make([][]any, len(intents))
	for i, e := range intents {
		rows[i] = []any{e.ID, e.OrganizationID, e.WorkspaceID, e.KeyID, e.UserID, e.Model, store.Micros(e.Time),
			e.InputTokens, e.OutputTokens, e.Cost, e.Currency, e.Endpoint, e.RequestID, e.Product, e.Pages, e.AudioSeconds, process}
	}
	return tx.InsertMany(ctx, "usage_intents", intentRow, rows, "ON CONFLICT (id) DO NOTHING")
}

// readIntents reads the intents that where (a WHERE clause, or empty for
// all) selects, as usage events at their reservation, marked estimated.
func readIntents(ctx context.Context, tx *store.Tx, where string, args ...any) ([]Event, error) {
	var intents []Event
	err := tx.Each(ctx, "SELECT "+strings.Join(intentColumns, ", ")+" FROM usage_intents"+where, args, func(rows *sql.Rows) error {
		e := Event{Estimated: true}
		var at int64
		if err := rows.Scan(&e.ID, &e.OrganizationID, &e.WorkspaceID, &e.KeyID, &e.UserID, &e.Model, &at,
			&e.InputTokens, &e.OutputTokens, &e.Cost, &e.Currency, &e.Endpoint, &e.RequestID, &e.Product, &e.Pages, &e.AudioSeconds); err != nil {
			return err
		}
		e.Time = store.Time(at)
		intents = append(intents, e)
		return nil
	})
	return intents, err
}

// deleteIntents deletes the intents of ids.
func deleteIntents(ctx context.Context, tx *store.Tx, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	_, err := tx.Exec(ctx, "DELETE FROM usage_intents WHERE id IN (?"+strings.Repeat(", ?", len(ids)-1)+")", args...)
	return err
}

// SettleOrphans records every intent left in the database as a usage event
// at its reservation, marked estimated, and deletes it, in one
// transaction; it returns how many it recorded (an intent whose final
// event was stored already is only deleted). It is for a process that
// owns the database, at start, before it serves: an intent there was left
// by a process that died before its request's final event was committed.
func (r *Recorder) SettleOrphans(ctx context.Context) (int, error) {
	var recorded int
	err := r.db.Transact(ctx, func(tx *store.Tx) error {
		orphans, err := readIntents(ctx, tx, "")
		if err != nil || len(orphans) == 0 {
			return err
		}
		inserted, err := r.writeEvents(ctx, tx, orphans)
		if err != nil {
			return err
		}
		recorded = len(inserted)
		_, err = tx.Exec(ctx, "DELETE FROM usage_intents")
		return err
	})
	if err != nil {
		return 0, err
	}
	r.orphans.Add(int64(recorded))
	return recorded, nil
}
