package usage

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

// Options tune a Recorder.
type Options struct {
	// MaxBatch is the most events one transaction holds (default 1000). A
	// single RecordMany larger than this still commits in one transaction.
	MaxBatch int
	// MaxWait is how long the first event of a batch may wait for others to
	// share its transaction. The default, 0, writes a batch as soon as the
	// previous one has committed: the events that queued meanwhile share it,
	// so batches grow with the load and a request waits for at most one
	// commit besides its own.
	MaxWait time.Duration
	// MaxDefer is how long a request that no caller waits for may wait
	// for others to share its transaction: final events after their
	// answers were sent and deletions of unused intents, up to MaxDefer;
	// intents while their upstreams work, up to the time their model
	// usually takes to answer less two commits (learnt from the requests
	// and batches before), at most MaxDefer. A caller that starts waiting (Record, RecordMany, or
	// Intent.Durable and Settle) ends the deferral at once. Zero means
	// DefaultMaxDefer; a negative value writes every batch as soon as the
	// previous one has committed, as MaxWait's default does.
	MaxDefer time.Duration
	// Log receives failed batches (default slog.Default()).
	Log *slog.Logger
	// Derive, when set, is called in each batch's transaction with the
	// events the batch inserted (never one stored before), to write what
	// is derived from usage in the same commit: it is written once, with
	// the usage, or not at all. Its error fails the batch.
	Derive func(ctx context.Context, tx *store.Tx, inserted []Event) error
}

// DefaultMaxDefer is the default of Options.MaxDefer: short beside a
// model's time to answer, long enough for a few hundred requests a second to
// share one commit instead of paying one each.
const DefaultMaxDefer = 10 * time.Millisecond

// batchTimeout bounds the writing of one batch, retries included. Batches
// do not run under Run's context, so that a shutdown commits what is queued
// instead of cancelling it; a caller whose context ends while its batch is
// being written waits at most this long for the outcome.
const batchTimeout = 30 * time.Second

// retryDelays are the pauses before writing again a batch that failed
// because the database could not be reached (KindUnavailable): a lost
// connection or a busy SQLite file should not cost the usage of a thousand
// requests. Writing again is safe even when the failed COMMIT did land,
// since stored ids are ignored.
var retryDelays = []time.Duration{20 * time.Millisecond, 200 * time.Millisecond}

// Stats count what a Recorder has written, for monitoring: Events/Batches
// is the mean batch size.
type Stats struct {
	// Batches and Events count committed transactions and the events they
	// held, repeated ids included.
	Batches int64
	Events  int64
	// FailedBatches count batches whose callers got an error.
	FailedBatches int64
	// Orphans counts the intents recorded at their reservation, marked
	// estimated, by SettleOrphans and Sweep: requests in flight of a
	// process that died.
	Orphans int64
	// LateFinals counts the final events that came after a sweep had
	// recorded their intent at its reservation (their process had lost
	// its lock's connection, and was taken for dead): they are ignored. A
	// batch written again after a failure does not count them, since its
	// own first attempt may have stored them.
	LateFinals int64
}

// Recorder writes usage events with group commit: the events of concurrent
// callers share one transaction, so that the database commits (and syncs)
// once per batch instead of once per request. Committed means durable:
// SQLite is opened with synchronous=FULL, and PostgreSQL commits wait for
// their WAL flush unless the server is configured otherwise.
//
// Record and RecordMany return nil only once their events are committed.
// They return an error only when their events were not written, with one
// exception: when the connection fails during COMMIT, the outcome is not
// known. Writing the same events again is always safe, since a stored id is
// ignored.
type Recorder struct {
	db       *store.DB
	maxBatch int
	maxWait  time.Duration
	maxDefer time.Duration
	log      *slog.Logger
	derive   func(ctx context.Context, tx *store.Tx, inserted []Event) error

	mu      sync.Mutex
	pending []*request
	// queued is how many rows pending's requests write; due is the
	// earliest of their due times.
	queued  int
	due     time.Time
	closed  bool
	running bool
	// wake holds a token when pending may have grown.
	wake chan struct{}
	// quit is closed by Close to stop Run.
	quit chan struct{}
	// stopped is closed when Run has flushed and returned.
	stopped chan struct{}
	// flushErr is the error of the last batch that failed while Run
	// drained the queue on its way out.
	flushErr error

	// process is the id the intents carry when written (Process); 0, an
	// id nobody holds, until a Process is joined.
	process atomic.Int64

	batches, events, failed, orphans, late atomic.Int64
	// waiting counts the callers waiting for a commit; while it is zero,
	// the writer defers batches until they are due.
	waiting atomic.Int64
	// latency is, by model and endpoint, a moving average of the time
	// requests wait for their answers (deferIntent).
	// commitAvg is a moving average of the time a batch takes to commit,
	// once a batch has committed (commitSeen).
	latMu      sync.Mutex
	latency    map[intentKind]time.Duration
	commitAvg  time.Duration
	commitSeen bool
}

// A request is one call of Record or RecordMany: its events commit in one
// transaction, or not at all.
type request struct {
	events []Event
	// intents are written to usage_intents, and the intents of ids in
	// deletes are deleted, in the same transaction as events.
	intents []Event
	deletes []string
	// due is when the writer should start writing req at the latest; the
	// zero time means at once.
	due time.Time
	// state moves from queued to taken (by the writer) or to withdrawn (by
	// a caller that stopped waiting), exactly once.
	state atomic.Int32
	done  chan struct{}
	err   error
}

// size is how many rows req writes, as a batch's size counts them.
func (req *request) size() int {
	return len(req.events) + len(req.intents) + len(req.deletes)
}

const (
	queued int32 = iota
	taken
	withdrawn
)

// NewRecorder returns a Recorder writing to db. Nothing is written until
// Run is started.
func NewRecorder(db *store.DB, opts Options) *Recorder {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 1000
	}
	if opts.MaxWait < 0 {
		opts.MaxWait = 0
	}
	switch {
	case opts.MaxDefer == 0:
		opts.MaxDefer = DefaultMaxDefer
	case opts.MaxDefer < 0:
		opts.MaxDefer = 0
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	return &Recorder{
		db:       db,
		maxBatch: opts.MaxBatch,
		maxWait:  opts.MaxWait,
		maxDefer: opts.MaxDefer,
		latency:  map[intentKind]time.Duration{},
		log:      opts.Log,
		derive:   opts.Derive,
		wake:     make(chan struct{}, 1),
		quit:     make(chan struct{}),
		stopped:  make(chan struct{}),
	}
}

// errClosed is what Record returns once the Recorder no longer writes.
func errClosed() error {
	return steward.Errorf(steward.KindUnavailable, "the usage recorder is closed")
}

// Record writes e and returns once the transaction holding it has
// committed, with that transaction's error: a batch that fails fails every
// caller in it, and leaves nothing of it written. An invalid event is
// KindInvalid; a closed Recorder is KindUnavailable. If ctx ends while e is
// still queued, e is withdrawn and Record returns KindUnavailable; if its
// batch is already being written, Record waits for the outcome. A caller
// that must not lose usage when its client goes away should pass a context
// that outlives the client's request.
func (r *Recorder) Record(ctx context.Context, e Event) error {
	events := []Event{e}
	if err := validateAll(events, r.db.Now(), nil); err != nil {
		return err
	}
	return r.submit(ctx, events)
}

// RecordMany writes events like Record, all in one transaction: either all
// are stored (less those whose id was stored before) or none. An invalid
// event fails the call; its error's Field starts with "events" and the
// event's index.
func (r *Recorder) RecordMany(ctx context.Context, events []Event) error {
	if len(events) == 0 {
		return nil
	}
	events = append([]Event(nil), events...)
	if err := validateAll(events, r.db.Now(), []string{"events"}); err != nil {
		return err
	}
	return r.submit(ctx, events)
}

// submit queues valid events and waits for their batch.
func (r *Recorder) submit(ctx context.Context, events []Event) error {
	if err := ctx.Err(); err != nil {
		return store.Translate(err)
	}
	req := &request{events: events, done: make(chan struct{})}
	if err := r.enqueue(req); err != nil {
		return err
	}
	return r.wait(ctx, req)
}

// enqueue queues req for the writer without waiting for it.
func (r *Recorder) enqueue(req *request) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return errClosed()
	}
	r.pending = append(r.pending, req)
	r.queued += req.size()
	if len(r.pending) == 1 || req.due.Before(r.due) {
		r.due = req.due
	}
	r.mu.Unlock()
	r.poke()
	return nil
}

// poke wakes the writer, if it is not awake already.
func (r *Recorder) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// urge counts a caller that waits for a commit until the returned function
// is called, and wakes the writer so that it ends a deferral.
func (r *Recorder) urge() (done func()) {
	r.waiting.Add(1)
	r.poke()
	return func() { r.waiting.Add(-1) }
}

// wait waits for req's batch, withdrawing req if ctx ends while it is
// still queued.
func (r *Recorder) wait(ctx context.Context, req *request) error {
	select {
	case <-req.done:
		return req.err
	default:
	}
	defer r.urge()()
	select {
	case <-req.done:
		return req.err
	case <-ctx.Done():
		if req.state.CompareAndSwap(queued, withdrawn) {
			return store.Translate(ctx.Err())
		}
		<-req.done
		return req.err
	}
}

// Run writes batches until ctx ends or Close is called, then stops taking
// events (Record returns an error from then on), writes what is queued, and
// returns. Run is meant to be called once; a second call returns at once.
func (r *Recorder) Run(ctx context.Context) {
	r.mu.Lock()
	if r.running || r.closed {
		r.mu.Unlock()
		return
	}
	r.running = true
	r.mu.Unlock()
	defer close(r.stopped)

	timer := time.NewTimer(r.maxWait)
	timer.Stop()
	var batch []*request
	for {
		// A stop is noticed before more work, which a busy wake could
		// otherwise keep winning.
		select {
		case <-ctx.Done():
			r.shutdown()
			return
		case <-r.quit:
			r.shutdown()
			return
		default:
		}
		select {
		case <-r.wake:
		case <-ctx.Done():
			continue
		case <-r.quit:
			continue
		}
		r.deferral(ctx, timer)
		var n int
		batch, n = r.take(batch[:0], 0)
		if n == 0 {
			continue
		}
		// Linger for others to join, if asked to and unless the batch is
		// already full: until MaxWait has passed, or until a lull of a
		// tenth of it, when every caller there is seems to have joined
		// already.
		deadline := time.Now().Add(r.maxWait)
		lull := r.maxWait / 10
	linger:
		for r.maxWait > 0 && n < r.maxBatch {
			timer.Reset(min(time.Until(deadline), lull))
			select {
			case <-r.wake:
				batch, n = r.take(batch, n)
			case <-timer.C:
				break linger
			case <-ctx.Done():
				break linger
			case <-r.quit:
				break linger
			}
		}
		timer.Stop()
		r.commit(batch)
		clear(batch)
	}
}

// deferral waits, while no caller waits for a commit and the queue holds
// less than a batch, until the earliest due time of the queued requests,
// for more requests to share the next batch. It leaves them queued
// meanwhile, so that an intent whose final event comes first is still
// replaced by it there (one row instead of two).
func (r *Recorder) deferral(ctx context.Context, timer *time.Timer) {
	for r.waiting.Load() == 0 {
		r.mu.Lock()
		due, rows := r.due, r.queued
		r.mu.Unlock()
		wait := time.Until(due)
		if rows >= r.maxBatch || wait <= 0 {
			return
		}
		timer.Reset(wait)
		select {
		case <-r.wake:
			timer.Stop()
		case <-timer.C:
			return
		case <-ctx.Done():
			timer.Stop()
			return
		case <-r.quit:
			timer.Stop()
			return
		}
	}
}

// take moves queued requests into batch while it holds fewer than maxBatch
// events (and always at least one request), skipping withdrawn ones. n is
// the number of events batch holds; take returns the new batch and count.
func (r *Recorder) take(batch []*request, n int) ([]*request, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	i := 0
	for ; i < len(r.pending); i++ {
		req := r.pending[i]
		size := req.size()
		if n > 0 && n+size > r.maxBatch {
			break
		}
		r.queued -= size
		if req.state.CompareAndSwap(queued, taken) {
			batch = append(batch, req)
			n += size
		}
	}
	rest := copy(r.pending, r.pending[i:])
	clear(r.pending[rest:])
	r.pending = r.pending[:rest]
	if rest > 0 {
		// What a full batch left is due at once.
		r.due = time.Time{}
		select {
		case r.wake <- struct{}{}:
		default:
		}
	}
	return batch, n
}

// commit writes batch in one transaction and tells each caller the outcome.
func (r *Recorder) commit(batch []*request) error {
	if len(batch) == 0 {
		return nil
	}
	var b batchRows
	if len(batch) == 1 {
		b = batchRows{batch[0].events, batch[0].intents, batch[0].deletes}
	} else {
		for _, req := range batch {
			b.events = append(b.events, req.events...)
			b.intents = append(b.intents, req.intents...)
			b.deletes = append(b.deletes, req.deletes...)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	defer cancel()
	began := time.Now()
	err := r.write(ctx, b)
	r.committed(time.Since(began))
	if err != nil {
		r.failed.Add(1)
		r.log.Error("write usage batch", "events", len(b.events), "intents", len(b.intents), "callers", len(batch), "err", err)
	} else {
		r.batches.Add(1)
		r.events.Add(int64(len(b.events)))
	}
	for _, req := range batch {
		req.err = err
		close(req.done)
	}
	return err
}

// batchRows is what one batch writes.
type batchRows struct {
	events, intents []Event
	deletes         []string
}

// write writes b in one transaction, again after a failure to reach the
// database while ctx allows. Intents are inserted before the events and
// deleted after them, so that an intent and its final event may share a
// batch.
func (r *Recorder) write(ctx context.Context, b batchRows) error {
	for attempt := 0; ; attempt++ {
		var late []string
		err := r.db.Transact(ctx, func(tx *store.Tx) error {
			if err := writeIntents(ctx, tx, b.intents, r.process.Load()); err != nil {
				return err
			}
			inserted, err := r.writeEvents(ctx, tx, b.events)
			if err != nil {
				return err
			}
			if attempt == 0 {
				late = lateFinals(b, inserted)
			}
			return deleteIntents(ctx, tx, b.deletes)
		})
		if err == nil && len(late) > 0 {
			r.late.Add(int64(len(late)))
			r.log.Warn("final usage came after a sweep had recorded the request at its reservation (this process had lost its lock's connection): it stays recorded at its reservation, marked estimated", "events", late)
		}
		if err == nil || attempt == len(retryDelays) || !steward.IsKind(err, steward.KindUnavailable) {
			return err
		}
		r.log.Warn("write usage batch, retrying", "events", len(b.events), "err", err)
		select {
		case <-time.After(retryDelays[attempt]):
		case <-ctx.Done():
			return err
		}
	}
}

// writeEvents stores events and what Derive derives from those inserted,
// and returns those it inserted.
func (r *Recorder) writeEvents(ctx context.Context, tx *store.Tx, events []Event) ([]Event, error) {
	if len(events) == 0 {
		return nil, nil
	}
	inserted, err := write(ctx, tx, events)
	if err != nil || r.derive == nil || len(inserted) == 0 {
		return inserted, err
	}
	return inserted, r.derive(ctx, tx, inserted)
}

// lateFinals returns the ids of b's final events of stored intents (those
// whose intent b deletes) that were not inserted: a sweep had recorded
// their intent at its reservation.
func lateFinals(b batchRows, inserted []Event) []string {
	if len(b.deletes) == 0 || len(inserted) == len(b.events) {
		return nil
	}
	ignored := make(map[string]bool, len(b.events))
	for _, e := range b.events {
		ignored[e.ID] = true
	}
	for _, e := range inserted {
		ignored[e.ID] = false
	}
	var late []string
	for _, id := range b.deletes {
		if ignored[id] {
			late = append(late, id)
		}
	}
	return late
}

// Stats returns what the Recorder has written so far.
func (r *Recorder) Stats() Stats {
	return Stats{Batches: r.batches.Load(), Events: r.events.Load(), FailedBatches: r.failed.Load(),
		Orphans: r.orphans.Load(), LateFinals: r.late.Load()}
}

// shutdown closes the Recorder to new events, then writes everything still
// queued.
func (r *Recorder) shutdown() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	err := r.drain()
	r.mu.Lock()
	r.flushErr = err
	r.mu.Unlock()
}

// drain writes every queued request, in batches, and returns the error of
// the last batch that failed.
func (r *Recorder) drain() error {
	var err error
	for {
		batch, _ := r.take(nil, 0)
		if len(batch) == 0 {
			return err
		}
		if e := r.commit(batch); e != nil {
			err = e
		}
	}
}

// Close stops the Recorder: Record returns an error from now on, and what
// is queued is written before Close returns, by Run if it is running. Close
// returns the error of the last batch of the queue that failed. It is safe
// to call more than once, and after Run has returned.
func (r *Recorder) Close() error {
	r.mu.Lock()
	first := !r.closed
	r.closed = true
	running := r.running
	r.mu.Unlock()
	if !running {
		if first {
			return r.drain()
		}
		return nil
	}
	if first {
		close(r.quit)
	}
	<-r.stopped
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.flushErr
}
