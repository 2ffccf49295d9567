package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// SessionLock is a PostgreSQL session advisory lock, held on a connection
// of its own for as long as that connection lives. A process that dies
// loses it at once (its socket is closed), as does one whose connection is
// cut; another process sees that by taking the lock itself, with
// pg_try_advisory_xact_lock in a transaction of its own. There is no lease
// to renew and no clock to trust.
type SessionLock struct {
	key  int64
	stop context.CancelFunc
	// lost is closed when the connection ended by itself; done when it is
	// closed, for whatever reason.
	lost, done chan struct{}
	err        error
}

// LockSession takes the session advisory lock key on a new connection,
// named name in pg_stat_activity (its application_name). It fails when
// another session holds the lock, and on SQLite, which has no sessions to
// lock from.
func (db *DB) LockSession(ctx context.Context, key int64, name string) (*SessionLock, error) {
	if db.feed == nil {
		return nil, errors.New("session locks are PostgreSQL's")
	}
	cfg, err := pgx.ParseConfig(db.feed.dsn)
	if err != nil {
		return nil, err
	}
	cfg.RuntimeParams["application_name"] = name
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, cfg)
	if err != nil {
		return nil, Translate(err)
	}
	var got bool
	if err := conn.QueryRow(cctx, "SELECT pg_try_advisory_lock($1)", key).Scan(&got); err != nil || !got {
		_ = conn.Close(context.Background())
		if err != nil {
			return nil, Translate(err)
		}
		return nil, fmt.Errorf("the advisory lock %d is held by another session", key)
	}
	wctx, stop := context.WithCancel(context.Background())
	l := &SessionLock{key: key, stop: stop, lost: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		// Nothing is sent on the connection: waiting for a notification
		// only reads it, and returns as soon as it ends.
		var err error
		for err == nil {
			_, err = conn.WaitForNotification(wctx)
		}
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if wctx.Err() == nil {
			l.err = err
			close(l.lost)
		} else {
			// Released: unlocked now, rather than when the server
			// notices the connection's end.
			_, _ = conn.Exec(cctx, "SELECT pg_advisory_unlock($1)", key)
		}
		_ = conn.Close(cctx)
	}()
	return l, nil
}

// Key returns the lock's key.
func (l *SessionLock) Key() int64 { return l.key }

// Lost is closed when the lock's connection ended by itself: the lock is
// no longer held, and another process may take it.
func (l *SessionLock) Lost() <-chan struct{} { return l.lost }

// Err returns why the connection ended, once Lost is closed.
func (l *SessionLock) Err() error {
	select {
	case <-l.lost:
		return l.err
	default:
		return nil
	}
}

// Release releases the lock and closes its connection, and returns once
// both are done.
func (l *SessionLock) Release() {
	l.stop()
	<-l.done
}
