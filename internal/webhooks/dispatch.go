package webhooks

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/stewardhq/steward/internal/audit"
	"github.com/stewardhq/steward/internal/poll"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

// nudgeGap is the least time between two rounds of a dispatcher woken by
// nudges: under a stream of writes, each round delivers what arrived
// during the gap, rather than one round running after another.
const nudgeGap = 50 * time.Millisecond

const (
	// roundEntries is how many entries past its cursor a round reads for
	// one endpoint at most.
	roundEntries = 200
	// roundCursors is how many cursors one round claims at most.
	roundCursors = 50
	// gatherWait is how long a round waits, after one endpoint's
	// deliveries are done, for other endpoints' to record them all in one
	// transaction; a slow endpoint's are recorded on their own, later.
	gatherWait = 20 * time.Millisecond
)

// Dispatcher delivers the audit log's entries to the endpoints. Each
// endpoint follows its Organization's audit chain from its own cursor
// (webhook_endpoint_cursors; the server-wide endpoint one per chain). A
// round claims the cursors behind their chain's head with a lease, so that
// one process at a time delivers an endpoint's entries and an endpoint's
// rounds follow each other in the chain's order; it reads the entries past
// each cursor, renders the body of those the endpoint subscribes to, makes
// them at once, and then records, in one transaction, a row for the
// delivery log of each, with the body of each failed one, which the
// Sender retries, and the cursors moved past the round. Nothing is written
// before the attempts: a process that dies in between leaves its claim to
// expire, and the next round makes the same deliveries again, with the
// same webhook-ids (see deliveryID).
type Dispatcher struct {
	s *Sender
	poll.Poller
}

// NewDispatcher returns a dispatcher that makes its deliveries, and
// records them, as s does its retries.
func NewDispatcher(s *Sender) *Dispatcher {
	return &Dispatcher{s: s, Poller: poll.New(nudgeGap)}
}

// Run delivers new entries every interval, or at once when nudged, until
// ctx ends, and prunes the delivery log every hour. Several rounds run at
// once, so that an endpoint slow to answer holds back only the round that
// waits for it. Errors are logged.
func (d *Dispatcher) Run(ctx context.Context, interval time.Duration) {
	var wg sync.WaitGroup
	for range rounds {
		wg.Go(func() {
			d.Poller.Run(ctx, interval, func() bool {
				made, more, err := d.round(ctx)
				if err != nil && ctx.Err() == nil {
					d.s.log.Error("webhooks: delivery round failed", "err", err)
				}
				if made > 0 {
					// Entries may have been linked while the round ran,
					// their nudge taken by a round that found the
					// cursors claimed: look again after the gap rather
					// than after the interval.
					d.Poller.Nudge()
				}
				return more && err == nil
			})
		})
	}
	wg.Go(func() {
		poll.New(0).Run(ctx, time.Hour, func() bool {
			if _, err := Prune(ctx, d.s.db); err != nil && ctx.Err() == nil {
				d.s.log.Error("webhooks: prune the delivery log", "err", err)
			}
			return false
		})
	})
	wg.Wait()
}

// RunOnce makes one round and returns how many deliveries it made. Failed
// attempts are recorded for the Sender to retry, not returned: err reports
// a database failure.
func (d *Dispatcher) RunOnce(ctx context.Context) (int, error) {
	made := 0
	for {
		// A round leaves the cursors it could not take whole for the
		// next; RunOnce goes on until every cursor is at its head.
		n, more, err := d.round(ctx)
		made += n
		if err != nil || !more {
			return made, err
		}
	}
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
		// A delivery is finished after it was made, so the index of each
		// endpoint's deliveries by time finds those finished before the
		// cutoff: the delivery log has no index of its own for pruning,
		// which every delivery's row would write.
		cutoff := store.Micros(tx.Now.Add(-Retention))
		res, err := tx.Exec(ctx, `DELETE FROM webhook_deliveries WHERE id IN (
			SELECT d.id FROM webhook_endpoints e JOIN webhook_deliveries d ON d.endpoint_id = e.id
			WHERE d.created_at < ? AND d.finished_at < ? LIMIT ?)`, cutoff, cutoff, pruneBatch)
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil {
			return err
		}
		// Bodies shared by deliveries fanned out before migration 00027
		// are deleted once no pending delivery sends them.
		res, err = tx.Exec(ctx, `DELETE FROM webhook_payloads WHERE id IN (
			SELECT p.id FROM webhook_payloads p WHERE NOT EXISTS (
				SELECT 1 FROM webhook_deliveries d WHERE d.payload_id = p.id AND d.status = ?) LIMIT ?)`,
			StatusPending, pruneBatch)
		if err != nil {
			return err
		}
		bodies, err := res.RowsAffected()
		n += bodies
		return err
	})
	return n, err
}

// idSpace is the namespace of the webhook-ids of the deliveries made from
// the audit log.
var idSpace = uuid.MustParse("4f0d1c52-8d1b-4a53-9a3e-5f0b7f3c2e61")

// deliveryID is the webhook-id of an audit entry's delivery to an
// endpoint: derived from both, so that every attempt has the same one,
// also the attempts a process makes again after another died between
// sending and recording.
func deliveryID(endpointID string, logID int64) string {
	return "msg_" + uuid.NewSHA1(idSpace, []byte(endpointID+"/"+strconv.FormatInt(logID, 10))).String()
}

// cursor is an endpoint's place in a chain, as a round claimed it, and
// the deliveries the round makes past it.
type cursor struct {
	endpointID, scope string
	seq               int64
	// to is where the round moves the cursor: its last entry read.
	to int64
	e  *endpointState
	// full reports a round that read all it may: entries may be left.
	full       bool
	deliveries []claimed
	attempts   []attempt
}

// behindCursors selects the cursors of enabled endpoints that are behind
// their chain's head and not claimed by a live lease.
const behindCursors = `SELECT w.endpoint_id, w.scope FROM webhook_endpoint_cursors w
	JOIN audit_chains c ON c.scope = w.scope JOIN webhook_endpoints e ON e.id = w.endpoint_id
	WHERE w.seq < c.seq AND e.disabled_at IS NULL AND e.deleted_at IS NULL AND (w.claimed_until IS NULL OR w.claimed_until < ?)
	ORDER BY w.seq LIMIT ?`

// unfollowedChains selects the Organizations' chains the live server-wide
// endpoint has no cursor in: chains begun since it was configured.
const unfollowedChains = `SELECT c.scope FROM audit_chains c JOIN webhook_endpoints e ON e.id = '` + ServerEndpointID + `' AND e.deleted_at IS NULL
	WHERE c.scope LIKE 'org:%' AND NOT EXISTS (SELECT 1 FROM webhook_endpoint_cursors w WHERE w.endpoint_id = e.id AND w.scope = c.scope)`

// round claims the cursors behind their heads, makes their deliveries and
// records them, and returns how many deliveries it recorded. more reports
// work left: cursors it did not claim or entries it did not read.
func (d *Dispatcher) round(ctx context.Context) (made int, more bool, err error) {
	cursors, until, err := d.claim(ctx)
	if err != nil || len(cursors) == 0 {
		return 0, false, err
	}
	more = len(cursors) == roundCursors
	if err := d.read(ctx, cursors); err != nil {
		return 0, more, d.release(ctx, cursors, until, err)
	}
	done := make(chan *cursor, len(cursors))
	for _, c := range cursors {
		more = more || c.full
		go func() {
			c.attempts = make([]attempt, len(c.deliveries))
			// As many goroutines as the endpoint's host may have
			// deliveries in flight now, each making one after another:
			// a goroutine a delivery would wait for room all the same,
			// and grow its stack for the request anew.
			var next atomic.Int64
			var wg sync.WaitGroup
			for range d.s.workers(c.e, len(c.deliveries)) {
				wg.Go(func() {
					for i := int(next.Add(1)) - 1; i < len(c.deliveries); i = int(next.Add(1)) - 1 {
						c.attempts[i] = d.s.send(ctx, &c.deliveries[i], c.e)
					}
				})
			}
			wg.Wait()
			done <- c
		}()
	}
	// The cursors whose deliveries end about together are recorded in one
	// transaction; one slow to answer does not hold back the others.
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bookkeepingTimeout)
	defer cancel()
	for left := len(cursors); left > 0; {
		group := []*cursor{<-done}
		wait := time.NewTimer(gatherWait)
	gather:
		for len(group) < left {
			select {
			case c := <-done:
				group = append(group, c)
			case <-wait.C:
				break gather
			}
		}
		wait.Stop()
		left -= len(group)
		n, rerr := d.record(bctx, group, until, ctx.Err() != nil)
		made += n
		if rerr != nil && err == nil {
			err = rerr
		}
	}
	return made, more, err
}

// claim leases up to roundCursors cursors behind their heads until now
// plus the Sender's lease, first giving the server-wide endpoint a cursor
// at the start of each chain begun since it was configured. It writes
// nothing when there is nothing to deliver. On PostgreSQL, SKIP LOCKED
// lets concurrent rounds claim other cursors rather than wait.
func (d *Dispatcher) claim(ctx context.Context) ([]*cursor, int64, error) {
	// An entry reaches its chain's head once linked (audit.Link): the
	// round links those waiting, unless a linker has them already.
	if _, err := audit.LinkPending(ctx, d.s.db); err != nil {
		return nil, 0, err
	}
	var behind, fresh bool
	err := d.s.db.View(ctx, func(tx *store.Tx) error {
		err := tx.QueryRow(ctx, `SELECT EXISTS (`+behindCursors+`)`, store.Micros(tx.Now), 1).Scan(&behind)
		if err != nil || behind {
			return err
		}
		return tx.QueryRow(ctx, `SELECT EXISTS (`+unfollowedChains+`)`).Scan(&fresh)
	})
	if err != nil || !behind && !fresh {
		return nil, 0, err
	}
	var cursors []*cursor
	var until int64
	err = d.s.db.Transact(ctx, func(tx *store.Tx) error {
		cursors = cursors[:0]
		now := store.Micros(tx.Now)
		until = store.Micros(tx.Now.Add(d.s.settings.Lease))
		if fresh {
			if _, err := tx.Exec(ctx, `INSERT INTO webhook_endpoint_cursors (endpoint_id, scope, seq)
				SELECT e.id, c.scope, 0 FROM (`+unfollowedChains+`) AS c, webhook_endpoints e WHERE e.id = ?
				ON CONFLICT (endpoint_id, scope) DO NOTHING`, ServerEndpointID); err != nil {
				return err
			}
		}
		lock := ""
		if tx.Dialect() == store.Postgres {
			lock = " FOR UPDATE OF w SKIP LOCKED"
		}
		return tx.Each(ctx, `UPDATE webhook_endpoint_cursors SET claimed_until = ? WHERE (endpoint_id, scope) IN (`+behindCursors+lock+`)
			RETURNING endpoint_id, scope, seq`, []any{until, now, roundCursors}, func(rows *sql.Rows) error {
			c := &cursor{}
			if err := rows.Scan(&c.endpointID, &c.scope, &c.seq); err != nil {
				return err
			}
			cursors = append(cursors, c)
			return nil
		})
	})
	return cursors, until, err
}

// read reads the claimed cursors' endpoints and the entries past them, and
// makes the deliveries of the entries each endpoint subscribes to. The
// entries of a chain are read once for the cursors at about one place in
// it, and each entry's body rendered once.
func (d *Dispatcher) read(ctx context.Context, cursors []*cursor) error {
	return d.s.db.View(ctx, func(tx *store.Tx) error {
		ids := map[string]*endpointState{}
		for _, c := range cursors {
			ids[c.endpointID] = nil
		}
		if err := readEndpoints(ctx, tx, ids); err != nil {
			return err
		}
		// read holds, per chain, the entries last read: from the seq
		// after start on, without gaps.
		type run struct {
			start   int64
			entries []audit.Entry
		}
		chains := map[string]run{}
		bodies := map[int64][]byte{}
		for _, c := range cursors {
			c.e, c.to = ids[c.endpointID], c.seq
			r, ok := chains[c.scope]
			if !ok || c.seq < r.start || c.seq-r.start >= int64(len(r.entries)) {
				entries, err := audit.After(ctx, tx, c.scope, c.seq, roundEntries)
				if err != nil {
					return err
				}
				r = run{start: c.seq, entries: entries}
				chains[c.scope] = r
			}
			entries := r.entries[c.seq-r.start:]
			// A full read may have left entries past its end.
			c.full = len(r.entries) == roundEntries
			if c.e == nil || c.e.deleted || c.e.disabled {
				// Gone or disabled since the claim: its cursor stays.
				continue
			}
			if len(entries) > 0 {
				c.to = entries[len(entries)-1].Seq
			}
			for _, en := range entries {
				if !Matches(c.e.events, en.EventType) {
					continue
				}
				b, ok := bodies[en.LogID]
				if !ok {
					var err error
					if b, err = body(en.EventType, en.CreatedAt, audit.ItemOf(en)); err != nil {
						return err
					}
					bodies[en.LogID] = b
				}
				c.deliveries = append(c.deliveries, claimed{id: deliveryID(c.endpointID, en.LogID), endpointID: c.endpointID,
					eventType: en.EventType, payload: b, createdAt: en.CreatedAt})
			}
		}
		return nil
	})
}

// release gives up the claims of a round that failed before its
// deliveries, so that the next round need not wait for their lease, and
// returns cause.
func (d *Dispatcher) release(ctx context.Context, cursors []*cursor, until int64, cause error) error {
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bookkeepingTimeout)
	defer cancel()
	err := d.s.db.Transact(bctx, func(tx *store.Tx) error {
		for _, c := range cursors {
			if _, err := tx.Exec(bctx, `UPDATE webhook_endpoint_cursors SET claimed_until = NULL WHERE endpoint_id = ? AND scope = ? AND claimed_until = ?`,
				c.endpointID, c.scope, until); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("webhooks: %w (and releasing the round's cursors: %v)", cause, err)
	}
	return fmt.Errorf("webhooks: read a round's entries: %w", cause)
}

// record writes, in one transaction, the outcomes of the cursors' rounds
// and moves the cursors past them: a row in the delivery log for each
// delivery, finished when it succeeded and pending with its body, due after
// the first backoff, when it failed. A success clears its endpoint's
// failures; a failure starts them, and may disable the endpoint (see
// Sender.record). A cursor whose lease another round has taken over (ours
// expired) is left to it, with its deliveries. An attempt cut short by
// shutdown (stopping) does not count: its delivery is recorded due at once,
// for the Sender. It returns how many deliveries it recorded.
func (d *Dispatcher) record(ctx context.Context, cursors []*cursor, until int64, stopping bool) (int, error) {
	var disabled []string
	made := 0
	err := d.s.db.Transact(ctx, func(tx *store.Tx) error {
		disabled, made = disabled[:0], 0
		var rows [][]any
		succeeded, failed := map[string]bool{}, map[string]string{}
		for _, c := range cursors {
			res, err := tx.Exec(ctx, `UPDATE webhook_endpoint_cursors SET seq = ?, claimed_until = NULL
				WHERE endpoint_id = ? AND scope = ? AND claimed_until = ?`, c.to, c.endpointID, c.scope, until)
			if err != nil {
				return err
			}
			if !affected(res) {
				continue
			}
			made += len(c.deliveries)
			for i, dl := range c.deliveries {
				a := c.attempts[i]
				switch {
				case a.err == nil:
					succeeded[dl.endpointID] = true
				case !stopping:
					failed[dl.endpointID] = c.e.orgID
				}
				rows = append(rows, d.logRow(tx.Now, dl, a, stopping))
			}
		}
		if err := tx.InsertMany(ctx, "webhook_deliveries", logColumns, rows, "ON CONFLICT (id) DO NOTHING"); err != nil {
			return err
		}
		if err := clearFailures(ctx, tx, succeeded); err != nil {
			return err
		}
		for id, orgID := range failed {
			off, err := d.s.failing(ctx, tx, id, orgID)
			if err != nil {
				return err
			}
			if off {
				disabled = append(disabled, id)
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("webhooks: record the deliveries of %d endpoints: %w", len(cursors), err)
	}
	for _, id := range disabled {
		d.s.log.Warn("webhooks: endpoint disabled after a day of failed deliveries", "endpoint_id", id)
	}
	return made, nil
}

// logColumns are the delivery log's columns a round writes, in the order
// of logRow's values.
var logColumns = []string{"id", "endpoint_id", "event_type", "payload", "created_at", "status", "attempts", "next_attempt_at",
	"last_attempt_at", "last_http_status", "last_latency_ms", "last_error", "finished_at"}

// logRow is the delivery log's row of a round's attempt a, made at now:
// delivered; pending with its body, due after the first backoff, when it
// failed (failed for good when that backoff ends past RetryFor); or, when
// shutdown cut it short (stopping), pending and due at once with no
// attempt counted.
func (d *Dispatcher) logRow(now time.Time, dl claimed, a attempt, stopping bool) []any {
	at := store.Micros(now)
	status, attempts, payload := StatusDelivered, 1, ""
	var next, last, finished, httpSt, latency, lastErr any = at, at, at, httpStatus(a.status), a.latency.Milliseconds(), nil
	switch {
	case a.err == nil:
	case stopping:
		status, attempts, payload = StatusPending, 0, string(dl.payload)
		last, finished, httpSt, latency = nil, nil, nil, nil
	default:
		retry, giveUp := d.s.afterFailure(now, dl.createdAt, 1)
		next, lastErr = store.Micros(retry), steward.Truncate(a.err.Error(), maxLastErrorLen)
		status = StatusFailed
		if !giveUp {
			status, payload, finished = StatusPending, string(dl.payload), nil
		}
	}
	return []any{dl.id, dl.endpointID, dl.eventType, payload, store.Micros(dl.createdAt), status, attempts, next, last, httpSt, latency, lastErr, finished}
}

// readEndpoints fills ids (endpoint ids to nil) with the endpoints they
// name, as a delivery needs them; an id of no endpoint stays nil.
func readEndpoints(ctx context.Context, tx *store.Tx, ids map[string]*endpointState) error {
	args := make([]any, 0, len(ids))
	for id := range ids {
		args = append(args, id)
	}
	now := store.Micros(tx.Now)
	return tx.Each(ctx, `SELECT id, COALESCE(organization_id, ''), url, events, secret, COALESCE(previous_secret, ''), COALESCE(previous_secret_until, 0),
		disabled_at IS NOT NULL, deleted_at IS NOT NULL FROM webhook_endpoints
		WHERE id IN (`+store.Placeholders(len(args))+`)`, args, func(rows *sql.Rows) error {
		var id, events, secret, previous string
		var previousUntil int64
		e := &endpointState{}
		if err := rows.Scan(&id, &e.orgID, &e.url, &events, &secret, &previous, &previousUntil, &e.disabled, &e.deleted); err != nil {
			return err
		}
		if err := json.Unmarshal([]byte(events), &e.events); err != nil {
			return err
		}
		e.secrets = []string{secret}
		if previous != "" && previousUntil > now {
			e.secrets = append(e.secrets, previous)
		}
		ids[id] = e
		return nil
	})
}

// clearFailures forgets the failures of the endpoints that succeeded.
func clearFailures(ctx context.Context, tx *store.Tx, succeeded map[string]bool) error {
	if len(succeeded) == 0 {
		return nil
	}
	ids := make([]any, 0, len(succeeded))
	for id := range succeeded {
		ids = append(ids, id)
	}
	_, err := tx.Exec(ctx, `UPDATE webhook_endpoints SET failing_since = NULL
		WHERE id IN (`+store.Placeholders(len(ids))+`) AND failing_since IS NOT NULL`, ids...)
	return err
}

// httpStatus is an answer's status as the delivery log keeps it: none when
// there was no answer.
func httpStatus(status int) *int {
	if status == 0 {
		return nil
	}
	return &status
}
