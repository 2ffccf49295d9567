package analytics

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

// Recorder writes the product events that products report (the ingest
// API's) with group commit: the events of concurrent callers share one
// transaction, committed (and synced) once per batch. The events the
// gateway's usage derives are written by Write, in the usage's own
// transaction (see package metering).
// Record returns only once its events are durable, or with the error that
// kept them from being written; writing the same events again is always
// safe, since a stored event key is ignored.
type Recorder struct {
	db       *store.DB
	log      *slog.Logger
	maxBatch int
	maxWait  time.Duration

	mu      sync.RWMutex
	closed  bool
	queue   chan *request
	stopped chan struct{}
}

type request struct {
	events []Event
	fresh  []bool
	err    error
	done   chan struct{}
}

// NewRecorder returns a Recorder writing to db, which writes nothing until
// Run is started. A batch holds up to maxBatch events (a larger Record
// still commits in one transaction) and waits up to maxWait for company.
func NewRecorder(db *store.DB, log *slog.Logger) *Recorder {
	if log == nil {
		log = slog.Default()
	}
	return &Recorder{db: db, log: log, maxBatch: MaxEvents, maxWait: 2 * time.Millisecond,
		queue: make(chan *request, 1024), stopped: make(chan struct{})}
}

// Record writes events in one transaction and returns, for each, whether
// it was new (false for one stored before or repeated in the call). Events
// made by Steward (not parsed from a reporter) are checked first; a zero
// time means now. If ctx
// ends first, Record returns KindUnavailable and the events may or may not
// be written.
func (r *Recorder) Record(ctx context.Context, events []Event) ([]bool, error) {
	for i := range events {
		if events[i].Time.IsZero() {
			events[i].Time = r.db.Now().UTC()
		}
		if err := validate(&events[i]); err != nil {
			return nil, err
		}
	}
	if len(events) == 0 {
		return nil, nil
	}
	req := &request{events: events, done: make(chan struct{})}
	r.mu.RLock()
	if r.closed {
		r.mu.RUnlock()
		return nil, steward.Errorf(steward.KindUnavailable, "the analytics recorder is closed")
	}
	select {
	case r.queue <- req:
	case <-ctx.Done():
		r.mu.RUnlock()
		return nil, store.Translate(ctx.Err())
	}
	r.mu.RUnlock()
	select {
	case <-req.done:
		return req.fresh, req.err
	case <-ctx.Done():
		return nil, store.Translate(ctx.Err())
	}
}

// Run writes batches until Close, then writes what is queued and returns.
func (r *Recorder) Run() {
	defer close(r.stopped)
	timer := time.NewTimer(r.maxWait)
	timer.Stop()
	for req := range r.queue {
		batch, n := []*request{req}, len(req.events)
		timer.Reset(r.maxWait)
	linger:
		for n < r.maxBatch {
			select {
			case more, ok := <-r.queue:
				if !ok {
					break linger
				}
				batch, n = append(batch, more), n+len(more.events)
			case <-timer.C:
				break linger
			}
		}
		timer.Stop()
		r.commit(batch, n)
	}
}

// commit writes batch in one transaction and tells each caller.
func (r *Recorder) commit(batch []*request, n int) {
	events := make([]Event, 0, n)
	for _, req := range batch {
		events = append(events, req.events...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var fresh []bool
	err := r.db.Transact(ctx, func(tx *store.Tx) error {
		var err error
		fresh, err = write(ctx, tx, events)
		return err
	})
	if err != nil {
		r.log.Error("write analytics batch", "events", len(events), "callers", len(batch), "err", err)
	}
	off := 0
	for _, req := range batch {
		if err == nil {
			req.fresh = fresh[off : off+len(req.events)]
		}
		off += len(req.events)
		req.err = err
		close(req.done)
	}
}

// Close stops taking events, waits for Run to write what is queued, and
// returns. Run must have been started.
func (r *Recorder) Close() {
	r.mu.Lock()
	if !r.closed {
		r.closed = true
		close(r.queue)
	}
	r.mu.Unlock()
	<-r.stopped
}
