package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// The change feed across processes. On PostgreSQL every transaction that
// records changes also sends them with pg_notify, which PostgreSQL delivers
// only when, and only if, the transaction commits; each process LISTENs on
// its own connection and publishes what other processes changed to its
// subscribers, as if it had changed it itself. A notification sent while a
// process was not listening is lost, so after every reconnection, and
// periodically as a safety net, the process resyncs: it publishes a change
// of every topic (Topic "") for every Organization, and each cache drops
// and reloads what it holds.
//
// On SQLite there is one process, whose own changes already reach its
// subscribers; there is nothing to carry.

// feed is the state of a DB's change feed.
type feed struct {
	// origin identifies this DB handle in the notifications it sends, so
	// that it skips its own.
	origin string
	// channel is the notification channel: one per schema, so that
	// databases sharing a server do not hear each other.
	channel string
	dsn     string

	// ready is closed once the feed has listened for the first time.
	ready     chan struct{}
	readyOnce sync.Once

	received, resyncs, reconnects atomic.Int64
	// lag is the last notification's delay from its transaction's start
	// to its delivery here, in microseconds.
	lag atomic.Int64
}

// notice is one change as a notification carries it.
type notice struct {
	Origin string `json:"o"`
	Topic  string `json:"t"`
	Org    string `json:"g"`
	ID     string `json:"i,omitempty"`
	// At is when the transaction started, in microseconds.
	At int64 `json:"a"`
}

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
	db.feed = &feed{origin: hex.EncodeToString(b[:]), channel: "steward_changes_" + schema, dsn: dsn, ready: make(chan struct{})}
	return nil
}

// send sends a transaction's changes, to be delivered when it commits.
func (f *feed) send(ctx context.Context, tx *Tx) error {
	for _, c := range tx.changes {
		p, err := json.Marshal(notice{Origin: f.origin, Topic: c.Topic, Org: c.OrganizationID, ID: c.ID, At: Micros(tx.Now)})
		if err != nil {
			return err
		}
		if _, err := tx.tx.ExecContext(ctx, `SELECT pg_notify($1, $2)`, f.channel, string(p)); err != nil {
			return err
		}
	}
	return nil
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

// Follow publishes other processes' changes to this process's subscribers
// until ctx ends. Each time it starts listening, the first time included,
// it resyncs, since changes made while it did not listen are lost; and it
// resyncs every resync. It returns at once on SQLite.
func (db *DB) Follow(ctx context.Context, resync time.Duration, log *slog.Logger) {
	f := db.feed
	if f == nil {
		return
	}
	go func() {
		t := time.NewTicker(resync)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				db.resync(ctx, log)
			}
		}
	}()
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
	// Changes made while nobody listened here are lost: the caches may
	// have been loaded before, or the connection lost.
	db.resync(ctx, log)
	f.readyOnce.Do(func() { close(f.ready) })
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		var c notice
		if err := json.Unmarshal([]byte(n.Payload), &c); err != nil || c.Origin == f.origin || c.Org == "" {
			continue
		}
		f.received.Add(1)
		f.lag.Store(max(time.Now().UnixMicro()-c.At, 0))
		db.publish([]Change{{Topic: c.Topic, OrganizationID: c.Org, ID: c.ID}})
	}
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
