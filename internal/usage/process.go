package usage

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/stewardhq/steward/internal/store"
)

// On PostgreSQL several processes write intents into one table, and each
// must tell a dead process's intents from a live one's. Each intent
// carries its process's id, random per start, and the process holds the
// session advisory lock of that id on a connection of its own (Process).
// A sweep in every process (Sweep) takes, in its transaction, the lock of
// each id it finds: one it can take is a dead process's, whose intents it
// records at their reservation. A process that lost only its lock's
// connection is taken for dead too: a final event it writes later for a
// swept intent is ignored, and counted (Stats.LateFinals).

// Process holds, on PostgreSQL, the lock of the process id its Recorder's
// intents carry, so that sweeps leave them alone while it lives.
type Process struct {
	r *Recorder

	mu     sync.Mutex
	lock   *store.SessionLock
	closed bool
}

// errProcessClosed is relock's error once Close has been called.
var errProcessClosed = errors.New("the process's lock was released")

// relockEvery is how often a Process tries again to take a new id and
// lock once it has lost its lock's connection.
const relockEvery = time.Second

// Join takes a new process id, and its session advisory lock on a
// connection of its own, for the intents r writes from now on. It is for
// PostgreSQL, before r writes an intent; r's intents carry no id before
// (0, which any sweep may take).
func Join(ctx context.Context, r *Recorder) (*Process, error) {
	p := &Process{r: r}
	if err := p.relock(ctx); err != nil {
		return nil, fmt.Errorf("take this process's lock for its usage intents: %w", err)
	}
	return p, nil
}

// lockName is the name of the lock's connection in pg_stat_activity.
func lockName(id int64) string { return fmt.Sprintf("steward-usage-%016x", uint64(id)) }

// relock takes a new id and its lock, and has the Recorder write its
// intents under it from now on.
func (p *Process) relock(ctx context.Context) error {
	var b [8]byte
	id := int64(0)
	for id == 0 {
		_, _ = rand.Read(b[:])
		id = int64(binary.BigEndian.Uint64(b[:]))
	}
	lock, err := p.r.db.LockSession(ctx, id, lockName(id))
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		lock.Release()
		return errProcessClosed
	}
	p.lock = lock
	p.r.process.Store(id)
	return nil
}

// ID returns the id of the intents written from now on.
func (p *Process) ID() int64 { return p.r.process.Load() }

// held returns the lock held now.
func (p *Process) held() *store.SessionLock {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lock
}

// Run sweeps (Recorder.Sweep) every interval until ctx ends. When the
// lock's connection is lost, this process may be taken for dead: it takes a
// new id and lock for the intents it writes from then on, trying again
// every second until it can; those written under the lost id are recorded
// at their reservation by a sweep, and their final events ignored.
func (p *Process) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	log := p.r.log
	for {
		lock := p.held()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := p.r.Sweep(ctx); err != nil && ctx.Err() == nil {
				log.Warn("usage intents: the sweep for processes that are gone failed; the next one tries again", "err", err)
			} else if n > 0 {
				log.Warn("recorded the requests in flight of processes that are gone at their reservation, marked estimated", "requests", n)
			}
		case <-lock.Lost():
			log.Warn("usage intents: lost the connection that holds this process's lock; its intents may be recorded at their reservation by a sweep, and their final usage ignored",
				"process", fmt.Sprintf("%016x", uint64(lock.Key())), "err", lock.Err())
			for {
				err := p.relock(ctx)
				if err == nil {
					log.Info("usage intents: took a new lock", "process", fmt.Sprintf("%016x", uint64(p.ID())))
					break
				}
				if errors.Is(err, errProcessClosed) {
					return
				}
				log.Warn("usage intents: could not take a new lock; trying again", "err", err)
				select {
				case <-ctx.Done():
					return
				case <-time.After(relockEvery):
				}
			}
		}
	}
}

// Close releases the lock, after which any sweep may record the intents
// left under its id: call it once the Recorder is closed. It is safe to
// call while Run runs, and more than once.
func (p *Process) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		p.closed = true
		p.lock.Release()
	}
}

// Sweep records the intents of every process that is gone, as
// SettleOrphans does at start, while the others go on writing theirs: each
// process holds the lock of its id while it lives (Process), so an id
// whose lock Sweep can take, in its transaction, is a dead process's. Its
// intents are recorded as usage events at their reservation, marked
// estimated, and deleted, in that transaction; an intent whose final event
// is stored already is only deleted. It returns how many it recorded.
// PostgreSQL only.
func (r *Recorder) Sweep(ctx context.Context) (int, error) {
	if r.db.Dialect() != store.Postgres {
		return 0, errors.New("sweeping usage intents is for PostgreSQL: on SQLite, SettleOrphans settles them at start")
	}
	var recorded int
	err := r.db.Transact(ctx, func(tx *store.Tx) error {
		recorded = 0
		// pg_try_advisory_xact_lock is volatile: it is called once for
		// each distinct id, never pushed below the DISTINCT.
		dead, err := store.All(ctx, tx, "SELECT process_id FROM (SELECT DISTINCT process_id FROM usage_intents) AS p WHERE pg_try_advisory_xact_lock(process_id)", nil,
			func(row store.Scanner) (int64, error) {
				var id int64
				return id, row.Scan(&id)
			})
		if err != nil || len(dead) == 0 {
			return err
		}
		orphans, err := readIntents(ctx, tx, " WHERE process_id = ANY(?)", dead)
		if err != nil || len(orphans) == 0 {
			return err
		}
		// Events first, then intents, in the order a batch takes: a final
		// event written meanwhile waits for this one, or this for it,
		// never both. Only the intents read are deleted: one written since
		// (by a process that lost only its lock) is the next sweep's.
		inserted, err := r.writeEvents(ctx, tx, orphans)
		if err != nil {
			return err
		}
		recorded = len(inserted)
		ids := make([]string, len(orphans))
		for i, e := range orphans {
			ids[i] = e.ID
		}
		_, err = tx.Exec(ctx, "DELETE FROM usage_intents WHERE id = ANY(?)", ids)
		return err
	})
	if err != nil {
		return 0, err
	}
	r.orphans.Add(int64(recorded))
	return recorded, nil
}
