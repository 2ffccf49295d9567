package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// The change feed across processes. On PostgreSQL every transaction that
// records changes also inserts them into change_log, an ordinary insert
// that commits, or rolls back, with the rest; after its commit the process
// wakes the others with pg_notify from a statement of its own. Each process
// LISTENs on its own connection and, when woken and every pollEvery in
// case a process died between its commit and its wake-up, reads the rows
// committed since its last read and publishes other processes' changes to
// its subscribers, as if it had changed them itself.
//
// The changes are not sent with pg_notify in the changing transaction,
// which PostgreSQL would deliver with the commit: to keep notifications in
// commit order, every transaction that notifies holds one lock of the whole
// server from its commit's start until its end, its WAL flush included, so
// every write of every process committed one after another, each waiting
// for its own flush (docs/benchmarks.md, "The change feed's commits").
//
// A read finds the rows committed since the previous one from that read's
// snapshot: rows of transactions that were running then (its xip list) or
// had not started (at or after its xmax). Each row is read once, whatever
// order the transactions committed in, and a transaction that runs for
// long is waited for without reading again what came before it. Rows are
// deleted once every process has had a resync's interval to read them.
// After every reconnection, and periodically as a safety net, the process
// resyncs: it publishes a change of every topic (Topic "") for every
// Organization, and each cache drops and reloads what it holds.
//
// On SQLite there is one process, whose own changes already reach its
// subscribers; there is nothing to carry.

// pollEvery is how often a process reads the change log unwoken: the
// longest a change of a process that died before waking the others takes
// to reach them.
const pollEvery = time.Second

// feed is the state of a DB's change feed.
type feed struct {
	// origin identifies this DB handle in the changes it logs and the
	// wake-ups it sends, so that it skips its own.
	origin string
	// channel is the wake-ups' channel: one per schema, so that databases
	// sharing a server do not wake each other.
	channel string
	dsn     string
	// wake asks the waker to wake the other processes; it holds one
	// request, so that the wake-ups of commits made during one are sent
	// as one.
	wake chan struct{}

	// ready is closed once the feed has listened for the first time.
	ready     chan struct{}
	readyOnce sync.Once

	received, resyncs, reconnects atomic.Int64
	// lag is the last change's delay from its transaction's start to its
	// delivery here, in microseconds.
	lag atomic.Int64
	// horizon is the xmin of the listener's last read: every transaction
	// below it had ended when the read began.
	horizon atomic.Uint64
}

// changeColumns are the change log's columns a transaction writes.
var changeColumns = []string{"origin", "topic", "organization_id", "object_id", "created_at"}

// Affects reports whether a subscriber of topic must act on c: c is of
// that topic, or of every topic (a resync). An empty OrganizationID is
// never sent: a resync names each Organization in turn.
func (c Change) Affects(topic string) bool { return c.Topic == topic || c.Topic == "" }

func newFeed(ctx context.Context, db *DB, dsn string) error {
	var b [8]byte
	_, _ = rand.Read(b[:])
	var schema string
	if err := db.write.QueryRowContext(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return err
	}
	db.feed = &feed{origin: hex.EncodeToString(b[:]), channel: "steward_changes_" + schema, dsn: dsn,
		wake: make(chan struct{}, 1), ready: make(chan struct{})}
	return nil
}

// send logs a transaction's changes, in one statement, to be read by the
// other processes once it commits.
func (f *feed) send(ctx context.Context, tx *Tx) error {
	rows := make([][]any, len(tx.changes))
	for i, c := range tx.changes {
		rows[i] = []any{f.origin, c.Topic, c.OrganizationID, c.ID, Micros(tx.Now)}
	}
	return tx.InsertMany(ctx, "change_log", changeColumns, rows, "")
}

// committed asks the waker to wake the other processes for changes just
// committed, unless a request waits already.
func (f *feed) committed() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// wakeOthers sends a wake-up for each request until ctx ends. A wake-up
// is a notification of its own, which no change waits for: its commit is
// not flushed (synchronous_commit off), so that it holds the server's
// notification lock for the least time.
func (db *DB) wakeOthers(ctx context.Context, log *slog.Logger) {
	f := db.feed
	for {
		select {
		case <-ctx.Done():
			return
		case <-f.wake:
		}
		if _, err := db.write.ExecContext(ctx, `SELECT set_config('synchronous_commit', 'off', true), pg_notify($1, $2)`,
			f.channel, f.origin); err != nil && ctx.Err() == nil {
			log.Warn("change feed: could not wake the other processes; they read the change log within a second", "err", err)
		}
	}
}

// FeedStats describe the change feed across processes.
type FeedStats struct {
	// Origin names this process's listening connection: its
	// application_name is "steward-feed-" and the origin.
	Origin string
	// Received counts other processes' changes published here.
	Received int64
	// Resyncs counts full resyncs; Reconnects the listening connection's
	// reconnections.
	Resyncs, Reconnects int64
	// Lag is the last change's delay from the start of the transaction
	// that made it to its arrival here.
	Lag time.Duration
}

// FeedStats returns the feed's counts; zero on SQLite.
func (db *DB) FeedStats() FeedStats {
	f := db.feed
	if f == nil {
		return FeedStats{}
	}
	return FeedStats{Origin: f.origin, Received: f.received.Load(), Resyncs: f.resyncs.Load(),
		Reconnects: f.reconnects.Load(), Lag: time.Duration(f.lag.Load()) * time.Microsecond}
}

// closed is a channel that is closed already.
var closed = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// FeedReady is closed once Follow listens, so that a process can wait for
// it before serving: a change made before then reaches this process only
// through the resync that follows. It is closed already on SQLite.
func (db *DB) FeedReady() <-chan struct{} {
	if db.feed == nil {
		return closed
	}
	return db.feed.ready
}

// Follow publishes other processes' changes to this process's subscribers,
// and wakes the others after this one's commits, until ctx ends. Each time
// it starts listening, the first time included, it resyncs, since changes
// made while it did not listen may be missed; and it resyncs every resync,
// when it also deletes the change log's rows every process has read. It
// returns at once on SQLite.
func (db *DB) Follow(ctx context.Context, resync time.Duration, log *slog.Logger) {
	f := db.feed
	if f == nil {
		return
	}
	var background sync.WaitGroup
	defer background.Wait()
	background.Go(func() { db.wakeOthers(ctx, log) })
	background.Go(func() {
		t := time.NewTicker(resync)
		defer t.Stop()
		// read is the horizon of a read made at least one resync ago.
		var read uint64
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				db.resync(ctx, log)
				if err := db.pruneChanges(ctx, read); err != nil && ctx.Err() == nil {
					log.Warn("change feed: could not delete the change log's read rows; the next resync tries again", "err", err)
				}
				read = f.horizon.Load()
			}
		}
	})
	for ctx.Err() == nil {
		err := db.listen(ctx, log)
		if ctx.Err() != nil {
			return
		}
		f.reconnects.Add(1)
		log.Warn("change feed: lost the listening connection; reconnecting", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// pruneChanges deletes the change log's rows of the transactions that had
// ended before a read of this process's listener (horizon, its xmin) at
// least one resync ago: every process that listens has read them since,
// and one that did not resyncs when it listens again.
func (db *DB) pruneChanges(ctx context.Context, horizon uint64) error {
	if horizon == 0 {
		return nil
	}
	_, err := db.write.ExecContext(ctx, `DELETE FROM change_log WHERE xid < $1::text::xid8`, strconv.FormatUint(horizon, 10))
	return err
}

// listen listens until the connection fails, resyncing once listening.
func (db *DB) listen(ctx context.Context, log *slog.Logger) error {
	f := db.feed
	cfg, err := pgx.ParseConfig(f.dsn)
	if err != nil {
		return err
	}
	cfg.RuntimeParams["application_name"] = "steward-feed-" + f.origin
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	conn, err := pgx.ConnectConfig(cctx, cfg)
	cancel()
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{f.channel}.Sanitize()); err != nil {
		return err
	}
	// Changes committed while nobody listened here are not read: the
	// caches may have been loaded before, or the connection lost. The
	// reads go on from this snapshot, and the resync covers what came
	// before it.
	var last snapshot
	if err := db.readChanges(ctx, conn, &last, true); err != nil {
		return err
	}
	db.resync(ctx, log)
	f.readyOnce.Do(func() { close(f.ready) })
	for {
		wctx, cancel := context.WithTimeout(ctx, pollEvery)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil && n.Payload == f.origin:
			// This process's own wake-up: its changes reached its
			// subscribers at its commit.
			continue
		case err != nil && (ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded)):
			return err
		}
		if err := db.readChanges(ctx, conn, &last, false); err != nil {
			return err
		}
	}
}

// snapshot is what a read of the change log needs of the previous read's
// snapshot: the transactions it did not see, those running (xip) and
// those not begun (from xmax on).
type snapshot struct {
	xmax uint64
	xip  []string
}

// readChanges reads the change log's rows committed since the snapshot of
// the previous read (last), publishes those of other processes unless
// first (the listener's first read, which only takes its snapshot), and
// moves last to this read's snapshot. One statement reads the rows and its
// own snapshot, which are one.
func (db *DB) readChanges(ctx context.Context, conn *pgx.Conn, last *snapshot, first bool) error {
	f := db.feed
	rows, err := conn.Query(ctx, `SELECT pg_current_snapshot()::text, c.topic, c.organization_id, c.object_id, c.created_at
		FROM (SELECT 1) AS one LEFT JOIN change_log c ON NOT $1 AND c.origin <> $2
			AND (c.xid >= $3::text::xid8 OR c.xid = ANY($4::text[]::xid8[]))
		ORDER BY c.id`, first, f.origin, strconv.FormatUint(last.xmax, 10), last.xip)
	if err != nil {
		return err
	}
	var snap string
	var changes []Change
	var newest int64
	for rows.Next() {
		var topic, org, id *string
		var at *int64
		if err := rows.Scan(&snap, &topic, &org, &id, &at); err != nil {
			rows.Close()
			return err
		}
		if topic != nil {
			changes = append(changes, Change{Topic: *topic, OrganizationID: *org, ID: *id})
			newest = max(newest, *at)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	xmin, next, err := parseSnapshot(snap)
	if err != nil {
		return err
	}
	*last = next
	f.horizon.Store(xmin)
	if len(changes) > 0 {
		f.received.Add(int64(len(changes)))
		f.lag.Store(max(time.Now().UnixMicro()-newest, 0))
		db.publish(changes)
	}
	return nil
}

// parseSnapshot reads a pg_snapshot's text, xmin:xmax:xip,xip,...
func parseSnapshot(s string) (xmin uint64, snap snapshot, err error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return 0, snapshot{}, fmt.Errorf("change feed: snapshot %q", s)
	}
	if xmin, err = strconv.ParseUint(parts[0], 10, 64); err != nil {
		return 0, snapshot{}, fmt.Errorf("change feed: snapshot %q: %w", s, err)
	}
	if snap.xmax, err = strconv.ParseUint(parts[1], 10, 64); err != nil {
		return 0, snapshot{}, fmt.Errorf("change feed: snapshot %q: %w", s, err)
	}
	snap.xip = []string{}
	if parts[2] != "" {
		snap.xip = strings.Split(parts[2], ",")
	}
	return xmin, snap, nil
}

// resync publishes a change of every topic for every Organization.
func (db *DB) resync(ctx context.Context, log *slog.Logger) {
	var orgs []string
	err := db.View(ctx, func(tx *Tx) error {
		var err error
		orgs, err = tx.Strings(ctx, `SELECT id FROM organizations`)
		return err
	})
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			log.Warn("change feed: resync failed; the next one tries again", "err", err)
		}
		return
	}
	changes := make([]Change, len(orgs))
	for i, id := range orgs {
		changes[i] = Change{OrganizationID: id}
	}
	db.publish(changes)
	db.feed.resyncs.Add(1)
}
