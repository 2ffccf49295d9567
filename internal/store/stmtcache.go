package store

import (
	"container/list"
	"context"
	"database/sql"
	"sync"
)

// stmtCacheSize bounds the prepared statements kept per SQLite pool. Most
// of Steward's SQL is a fixed text; statements built for a number of rows
// vary, and the least recently used are let go.
const stmtCacheSize = 256

// stmtCache keeps the prepared statements of one SQLite pool by their text.
// modernc.org/sqlite compiles a statement on every Exec and Query; for the
// short statements of a transaction, compiling costs as much as running
// them. PostgreSQL needs none: pgx keeps prepared statements per
// connection itself.
//
// A statement is prepared on the pool only once its text has been run
// twice, so that one-off texts are not compiled twice, and only between
// transactions: the writer pool has one connection, which a transaction
// holds until it ends.
type stmtCache struct {
	pool *sql.DB
	mu   sync.Mutex
	byQ  map[string]*list.Element
	lru  list.List // of *cached, most recently used first
	// seen holds texts run once and not prepared yet.
	seen map[string]bool
}

type cached struct {
	query string
	stmt  *sql.Stmt
}

func newStmtCache(pool *sql.DB) *stmtCache {
	return &stmtCache{pool: pool, byQ: map[string]*list.Element{}, seen: map[string]bool{}}
}

// lookup returns the prepared statement for query, or nil and whether the
// text should be prepared once the transaction has ended.
func (c *stmtCache) lookup(query string) (stmt *sql.Stmt, prepare bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byQ[query]; ok {
		c.lru.MoveToFront(e)
		return e.Value.(*cached).stmt, false
	}
	if c.seen[query] {
		delete(c.seen, query)
		return nil, true
	}
	if len(c.seen) >= 4*stmtCacheSize {
		clear(c.seen)
	}
	c.seen[query] = true
	return nil, false
}

// prepare prepares queries on the pool and keeps them, letting go of the
// least recently used beyond the cache's size. A statement let go while a
// transaction uses it stays valid for that transaction: database/sql
// closes it once the connection is back in the pool. A text that fails to
// prepare is left to run unprepared, and to report its error there.
func (c *stmtCache) prepare(ctx context.Context, queries []string) {
	for _, q := range queries {
		stmt, err := c.pool.PrepareContext(ctx, q)
		if err != nil {
			continue
		}
		c.keep(q, stmt)
	}
}

func (c *stmtCache) keep(query string, stmt *sql.Stmt) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.byQ[query]; ok {
		_ = stmt.Close()
		return
	}
	c.byQ[query] = c.lru.PushFront(&cached{query, stmt})
	for c.lru.Len() > stmtCacheSize {
		old := c.lru.Remove(c.lru.Back()).(*cached)
		delete(c.byQ, old.query)
		_ = old.stmt.Close()
	}
}

// close closes every kept statement.
func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for e := c.lru.Front(); e != nil; e = e.Next() {
		_ = e.Value.(*cached).stmt.Close()
	}
	c.lru.Init()
	clear(c.byQ)
	clear(c.seen)
}
