package webhooks

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/stewardhq/steward/internal/audit"
	"github.com/stewardhq/steward/internal/store"
)

// nudgeGap is the least time between two rounds of a dispatcher woken by
// nudges: under a stream of writes, each round fans out what arrived
// during the gap, rather than one round running after another.
const nudgeGap = 50 * time.Millisecond

// fanOutBatch is how many audit entries of one chain one transaction fans
// out at most, and fanOutRows about how many deliveries it writes: fewer
// entries when many endpoints take them.
const (
	fanOutBatch = 500
	fanOutRows  = 200
)

// Dispatcher turns audit entries into deliveries. Each Organization's chain
// is followed from its cursor in webhook_cursors; one transaction writes the
// deliveries of a batch of entries and moves the cursor past them, so a
// crash between the two is impossible. On PostgreSQL the cursor's row is
// locked (SKIP LOCKED) for the transaction, so that of several processes one
// fans a chain out at a time and the others pass on to other chains.
type Dispatcher struct {
	db  *store.DB
	log *slog.Logger
	// fanned is called after deliveries were written (the sender's nudge).
	fanned func()
	poller
}

// NewDispatcher returns a dispatcher over db; fanned, if set, is called
// whenever it has written deliveries.
func NewDispatcher(db *store.DB, log *slog.Logger, fanned func()) *Dispatcher {
	if log == nil {
		log = slog.Default()
	}
	if fanned == nil {
		fanned = func() {}
	}
	return &Dispatcher{db: db, log: log, fanned: fanned, poller: newPoller(nudgeGap)}
}

// Run fans out new entries every interval, or at once when nudged, until
// ctx ends, and prunes the delivery log every hour. Errors are logged.
func (d *Dispatcher) Run(ctx context.Context, interval time.Duration) {
	var pruned time.Time
	d.run(ctx, interval, func() bool {
		if _, err := d.RunOnce(ctx); err != nil && ctx.Err() == nil {
			d.log.Error("webhooks: fan-out failed", "err", err)
		}
		if time.Since(pruned) >= time.Hour {
			pruned = time.Now()
			if _, err := Prune(ctx, d.db); err != nil && ctx.Err() == nil {
				d.log.Error("webhooks: prune the delivery log", "err", err)
			}
		}
		return false
	})
}

// Retention is how long a finished delivery stays in the delivery log.
const Retention = 30 * 24 * time.Hour

// pruneBatch bounds the deliveries one Prune deletes, so that a large
// backlog is deleted over several runs rather than in one long statement.
const pruneBatch = 10000

// Prune deletes deliveries finished more than Retention ago, at most
// pruneBatch of them, and returns how many.
func Prune(ctx context.Context, db *store.DB) (int64, error) {
	var n int64
	err := db.Transact(ctx, func(tx *store.Tx) error {
		res, err := tx.Exec(ctx, `DELETE FROM webhook_deliveries WHERE id IN (
			SELECT id FROM webhook_deliveries WHERE finished_at IS NOT NULL AND finished_at < ? LIMIT ?)`,
			store.Micros(tx.Now.Add(-Retention)), pruneBatch)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

// behind is a chain with entries past its cursor.
type behind struct {
	scope     string
	head      int64
	hasCursor bool
}

// RunOnce fans out every Organization's entries written since the last run
// and returns how many deliveries it wrote. A chain it sees for the first
// time is followed from its head: endpoints created later start their own
// Organization's cursor when they are created (see Service.Create).
func (d *Dispatcher) RunOnce(ctx context.Context) (int, error) {
	var chains []behind
	err := d.db.View(ctx, func(tx *store.Tx) error {
		chains = chains[:0]
		return tx.Each(ctx, `SELECT c.scope, c.seq, w.seq IS NOT NULL FROM audit_chains c LEFT JOIN webhook_cursors w ON w.scope = c.scope
			WHERE c.scope LIKE 'org:%' AND (w.seq IS NULL OR w.seq < c.seq)`, nil, func(rows *sql.Rows) error {
			var b behind
			if err := rows.Scan(&b.scope, &b.head, &b.hasCursor); err != nil {
				return err
			}
			chains = append(chains, b)
			return nil
		})
	})
	if err != nil {
		return 0, fmt.Errorf("webhooks: read the audit chains: %w", err)
	}
	var fresh [][]any
	for _, b := range chains {
		if !b.hasCursor {
			fresh = append(fresh, []any{b.scope, b.head})
		}
	}
	if len(fresh) > 0 {
		if err := d.db.Transact(ctx, func(tx *store.Tx) error {
			return tx.InsertMany(ctx, "webhook_cursors", []string{"scope", "seq"}, fresh, "ON CONFLICT (scope) DO NOTHING")
		}); err != nil {
			return 0, fmt.Errorf("webhooks: start following audit chains: %w", err)
		}
	}
	total := 0
	for _, b := range chains {
		if !b.hasCursor {
			continue
		}
		for {
			n, more, err := d.fanOut(ctx, b.scope)
			total += n
			if err != nil {
				return total, fmt.Errorf("webhooks: fan out %s: %w", b.scope, err)
			}
			if !more {
				break
			}
		}
	}
	if total > 0 {
		d.fanned()
	}
	return total, nil
}

// target is an endpoint as the fan-out matches entries to it.
type target struct {
	id        string
	events    []string
	createdAt time.Time
}

// fanOut writes the deliveries of up to fanOutBatch entries of scope past
// its cursor (fewer, to write about fanOutRows deliveries) and moves the
// cursor past them, in one transaction. more reports entries left before
// the chain's head as the transaction read it. A chain another process is fanning out is left to
// it.
func (d *Dispatcher) fanOut(ctx context.Context, scope string) (written int, more bool, err error) {
	err = d.db.Transact(ctx, func(tx *store.Tx) error {
		written, more = 0, false
		lock := ""
		if tx.Dialect() == store.Postgres {
			lock = " FOR UPDATE SKIP LOCKED"
		}
		var cursor int64
		err := tx.QueryRow(ctx, `SELECT seq FROM webhook_cursors WHERE scope = ?`+lock, scope).Scan(&cursor)
		if err == sql.ErrNoRows {
			return nil
		}
		if err != nil {
			return err
		}
		// The head is read before the endpoints, and nothing past it is
		// fanned out: an endpoint committed after the endpoints are read
		// (on PostgreSQL each statement sees the commits before it) was
		// committed after every entry up to the head, so none of them is
		// owed to it, and the entries after it are left for the next round.
		var head int64
		if err := tx.QueryRow(ctx, `SELECT seq FROM audit_chains WHERE scope = ?`, scope).Scan(&head); err != nil || head <= cursor {
			return err
		}
		orgID := strings.TrimPrefix(scope, "org:")
		var targets []target
		err = tx.Each(ctx, `SELECT id, events, created_at FROM webhook_endpoints
			WHERE (organization_id = ? OR organization_id IS NULL) AND disabled_at IS NULL AND deleted_at IS NULL`, []any{orgID}, func(rows *sql.Rows) error {
			var t target
			var events string
			var created int64
			if err := rows.Scan(&t.id, &events, &created); err != nil {
				return err
			}
			t.createdAt = store.Time(created)
			if err := json.Unmarshal([]byte(events), &t.events); err != nil {
				return err
			}
			targets = append(targets, t)
			return nil
		})
		if err != nil {
			return err
		}
		if len(targets) == 0 {
			// Nothing to deliver: skip to the head without reading.
			_, err := tx.Exec(ctx, `UPDATE webhook_cursors SET seq = ? WHERE scope = ? AND seq < ?`, head, scope, head)
			return err
		}
		// A transaction writes at most about fanOutRows deliveries, so
		// that it holds the database's writer (SQLite has one) briefly.
		entries, err := audit.After(ctx, tx, scope, cursor, int(min(head-cursor, fanOutBatch, int64(max(1, fanOutRows/len(targets))))))
		if err != nil || len(entries) == 0 {
			return err
		}
		var ds []Delivery
		for _, e := range entries {
			for _, t := range targets {
				if e.CreatedAt.Before(t.createdAt) || !Matches(t.events, e.EventType) {
					continue
				}
				dl, err := newDelivery(t.id, e.EventType, e.CreatedAt, audit.ItemOf(e))
				if err != nil {
					return err
				}
				ds = append(ds, dl)
			}
		}
		if err := insertDeliveries(ctx, tx, ds); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE webhook_cursors SET seq = ? WHERE scope = ?`, entries[len(entries)-1].Seq, scope); err != nil {
			return err
		}
		written, more = len(ds), entries[len(entries)-1].Seq < head
		return nil
	})
	return written, more, err
}
