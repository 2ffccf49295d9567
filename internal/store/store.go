// Package store opens Steward's database, on embedded SQLite or on
// PostgreSQL, applies its migrations and runs transactions. The SQL of each
// domain lives beside the Go that runs it (in audit, bootstrap, ...); this
// package holds what every piece of SQL needs: one transaction type, one
// placeholder style, one time format, and the translation of driver errors
// into domain errors.
package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"iter"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/stewardhq/steward/internal/steward"
)

// Dialect is the database engine.
type Dialect int

const (
	SQLite Dialect = iota
	Postgres
)

func (d Dialect) String() string {
	if d == Postgres {
		return "postgres"
	}
	return "sqlite"
}

// Config says which database to open: DatabaseURL (postgres://...) when set,
// otherwise an SQLite file in DataDir.
type Config struct {
	DataDir     string
	DatabaseURL string
}

// SQLiteFile is the name of the SQLite database inside the data directory.
const SQLiteFile = "steward.db"

// DB is an open database. On SQLite, writes go through one connection (SQLite
// has one writer at a time anyway, and this avoids busy errors) and reads
// through a pool; on PostgreSQL both share one pool.
type DB struct {
	write   *sql.DB
	read    *sql.DB
	dialect Dialect
	// Now is the clock used to fix each transaction's time; tests replace it.
	Now func() time.Time

	// writeStmts and readStmts keep prepared statements on SQLite; nil on
	// PostgreSQL.
	writeStmts, readStmts *stmtCache

	subsMu sync.RWMutex
	subs   []func(Change)
	// feed carries changes to other processes; nil on SQLite.
	feed *feed

	sharedMu sync.Mutex
	shared   map[any]any
}

// Shared returns db's one value of key, made by newValue the first time it
// is asked for: a cache of what every caller of db in the process reads
// (such as the Organizations' rows), shared without each caller carrying
// it. key is a value of a type of the caller's package, as context keys
// are.
func Shared[V any](db *DB, key any, newValue func() V) V {
	db.sharedMu.Lock()
	defer db.sharedMu.Unlock()
	v, ok := db.shared[key]
	if !ok {
		if db.shared == nil {
			db.shared = map[any]any{}
		}
		v = newValue()
		db.shared[key] = v
	}
	return v.(V)
}

// Change tells caches that something they hold changed. Topic names what
// (such as "access"), or is empty for everything (see Affects);
// OrganizationID whose. ID, when set, names the one object of the topic
// that changed (such as a key), so that a cache may reload it alone;
// empty, any of the Organization's may have.
type Change struct {
	Topic          string
	OrganizationID string
	ID             string
}

// Subscribe calls fn with every change, after the transaction that made it
// has committed and before that transaction's Transact returns, so that a
// caller that has written can read its own write from any cache.
func (db *DB) Subscribe(fn func(Change)) {
	db.subsMu.Lock()
	defer db.subsMu.Unlock()
	db.subs = append(db.subs, fn)
}

// publish calls the subscribers with changes. It holds no lock while they
// run: a subscriber may read the database, whose transactions publish in
// turn, while a cache made on first use (Shared) subscribes.
func (db *DB) publish(changes []Change) {
	if len(changes) == 0 {
		return
	}
	db.subsMu.RLock()
	subs := db.subs[:len(db.subs):len(db.subs)]
	db.subsMu.RUnlock()
	for _, c := range changes {
		for _, fn := range subs {
			fn(c)
		}
	}
}

// Open opens the database that cfg names, creating the SQLite data directory
// if missing. It does not apply migrations; call Migrate.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	if cfg.DatabaseURL != "" {
		return openPostgres(ctx, cfg.DatabaseURL)
	}
	return openSQLite(ctx, cfg.DataDir)
}

func openPostgres(ctx context.Context, dsn string) (*DB, error) {
	if !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://") {
		return nil, fmt.Errorf("database URL must start with postgres:// or postgresql://")
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("open PostgreSQL: %w", err)
	}
	db.SetMaxOpenConns(20)
	db.SetMaxIdleConns(20)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	d := &DB{write: db, read: db, dialect: Postgres, Now: time.Now}
	if err := newFeed(ctx, d, dsn); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	return d, nil
}

// uriPath escapes a file's path for an SQLite URI filename, where "?"
// starts the query, "#" the fragment, and "%" an escape: a data directory
// named "runs#2" must not open the file "runs".
var uriPath = strings.NewReplacer("%", "%25", "?", "%3F", "#", "%23")

func openSQLite(ctx context.Context, dir string) (*DB, error) {
	if dir == "" {
		return nil, fmt.Errorf("no data directory given")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	path, err := filepath.Abs(filepath.Join(dir, SQLiteFile))
	if err != nil {
		return nil, err
	}
	pragmas := url.Values{}
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(FULL)", "foreign_keys(ON)", "temp_store(MEMORY)"} {
		pragmas.Add("_pragma", p)
	}
	writeDSN := "file:" + uriPath.Replace(path) + "?" + pragmas.Encode() + "&_txlock=immediate"
	pragmas.Add("_pragma", "query_only(ON)")
	readDSN := "file:" + uriPath.Replace(path) + "?" + pragmas.Encode()

	write, err := sql.Open("sqlite", writeDSN)
	if err != nil {
		return nil, fmt.Errorf("open SQLite: %w", err)
	}
	write.SetMaxOpenConns(1)
	write.SetConnMaxIdleTime(0)
	write.SetConnMaxLifetime(0)
	// The writer connection is opened first so that it sets WAL mode before
	// any reader connects.
	if err := write.PingContext(ctx); err != nil {
		write.Close()
		return nil, fmt.Errorf("open SQLite %s: %w", path, err)
	}
	read, err := sql.Open("sqlite", readDSN)
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("open SQLite: %w", err)
	}
	read.SetMaxOpenConns(8)
	read.SetMaxIdleConns(8)
	return &DB{write: write, read: read, dialect: SQLite, Now: time.Now,
		writeStmts: newStmtCache(write), readStmts: newStmtCache(read)}, nil
}

// Dialect returns the engine in use.
func (db *DB) Dialect() Dialect { return db.dialect }

// Close closes every connection.
func (db *DB) Close() error {
	if db.writeStmts != nil {
		db.writeStmts.close()
		db.readStmts.close()
	}
	err := db.write.Close()
	if db.read != db.write {
		err = errors.Join(err, db.read.Close())
	}
	return err
}

// Ping checks that the database answers, for /readyz.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.write.PingContext(ctx); err != nil {
		return err
	}
	var one int
	return db.read.QueryRowContext(ctx, "SELECT 1").Scan(&one)
}

// Tx is one transaction, used by one goroutine. Now is fixed when it
// starts, so that every row a service method writes carries the same time.
type Tx struct {
	tx      *sql.Tx
	dialect Dialect
	Now     time.Time
	changes []Change
	// nudges are the changes published in this process only.
	nudges []Change
	// stmts keeps the pool's prepared statements (SQLite only); unprepared
	// lists the texts to prepare once the transaction has ended.
	stmts      *stmtCache
	unprepared []string
	// open counts, per text, the rows that may still be reading its
	// prepared statement: a statement has one cursor, which a second use
	// would reset, so a text in use runs unprepared. Query's rows are
	// counted until the transaction ends, since their closing is the
	// caller's; Each's until it returns.
	open map[string]int
	last []func(context.Context) error
}

// BeforeCommit runs fn as the transaction's last step: after the function
// given to Transact has returned nil and the transaction's changes have been
// sent to other processes, just before the commit, in the order of the
// calls. An error rolls the transaction back. It is where a write that every
// writer of the same row waits for (the audit chain's head) belongs, so that
// the row stays locked for the commit only. fn must not call Notify.
func (tx *Tx) BeforeCommit(fn func(ctx context.Context) error) {
	tx.last = append(tx.last, fn)
}

// Notify records a change, published to subscribers once the transaction
// commits, and never if it rolls back.
func (tx *Tx) Notify(c Change) {
	if !slices.Contains(tx.changes, c) {
		tx.changes = append(tx.changes, c)
	}
}

// Nudge records a change published once the transaction commits to this
// process's subscribers only: a wake-up for work that the other
// processes' own rounds find anyway, which is not worth a row of the change
// feed. Unlike Notify, it may be called from a BeforeCommit function.
func (tx *Tx) Nudge(c Change) {
	if !slices.Contains(tx.nudges, c) {
		tx.nudges = append(tx.nudges, c)
	}
}

// Transact runs fn in a read-write transaction, committing if fn returns
// nil and rolling back otherwise. Driver errors are translated to domain
// errors (see Translate).
func (db *DB) Transact(ctx context.Context, fn func(*Tx) error) error {
	return db.run(ctx, db.write, db.writeStmts, false, fn)
}

// View runs fn in a read-only transaction that sees one snapshot of the
// database from its first read to its end, on both engines: SQLite's read
// transactions do (WAL mode), and on PostgreSQL it is REPEATABLE READ, so
// that reads of related rows (a list and its total, a chain and its head)
// agree however busy the writers are.
func (db *DB) View(ctx context.Context, fn func(*Tx) error) error {
	return db.run(ctx, db.read, db.readStmts, true, fn)
}

// Read returns what fn returns from one read-only transaction (DB.View):
// a service method's read, in one snapshot.
func Read[T any](ctx context.Context, db *DB, fn func(*Tx) (T, error)) (T, error) {
	return value(ctx, db.View, fn)
}

// Write returns what fn returns from one read-write transaction
// (DB.Transact), once it has committed: a service method's change, its
// audit entry included.
func Write[T any](ctx context.Context, db *DB, fn func(*Tx) (T, error)) (T, error) {
	return value(ctx, db.Transact, fn)
}

func value[T any](ctx context.Context, run func(context.Context, func(*Tx) error) error, fn func(*Tx) (T, error)) (T, error) {
	var out T
	err := run(ctx, func(tx *Tx) error {
		var err error
		out, err = fn(tx)
		return err
	})
	if err != nil {
		var zero T
		return zero, err
	}
	return out, nil
}

func (db *DB) run(ctx context.Context, pool *sql.DB, stmts *stmtCache, readOnly bool, fn func(*Tx) error) error {
	// database/sql's ReadOnly option is refused by the SQLite driver; its
	// read pool is query_only instead.
	opts := &sql.TxOptions{}
	if readOnly && db.dialect == Postgres {
		opts = &sql.TxOptions{ReadOnly: true, Isolation: sql.LevelRepeatableRead}
	}
	sqlTx, err := pool.BeginTx(ctx, opts)
	if err != nil {
		return Translate(err)
	}
	tx := &Tx{tx: sqlTx, dialect: db.dialect, Now: db.Now().UTC().Truncate(time.Microsecond), stmts: stmts}
	defer func() {
		if len(tx.unprepared) > 0 {
			stmts.prepare(ctx, tx.unprepared)
		}
	}()
	err = fn(tx)
	if err == nil && db.feed != nil && len(tx.changes) > 0 {
		err = db.feed.send(ctx, tx)
	}
	for i := 0; err == nil && i < len(tx.last); i++ {
		err = tx.last[i](ctx)
	}
	if err != nil {
		_ = sqlTx.Rollback()
		return Translate(err)
	}
	if err := sqlTx.Commit(); err != nil {
		return Translate(err)
	}
	if db.feed != nil && len(tx.changes) > 0 {
		db.feed.committed()
	}
	db.publish(tx.changes)
	db.publish(tx.nudges)
	return nil
}

// ReadRow runs one read written with ? placeholders that returns one row
// into dest, outside any transaction: one statement sees one snapshot by
// itself, and on PostgreSQL this saves View's BEGIN and COMMIT, two round
// trips. Its error is translated (see Translate).
func (db *DB) ReadRow(ctx context.Context, query string, args []any, dest ...any) error {
	return Translate(db.read.QueryRowContext(ctx, rebind(db.dialect, query), args...).Scan(dest...))
}

// Dialect returns the engine the transaction runs on.
func (tx *Tx) Dialect() Dialect { return tx.dialect }

// ForUpdate ends a read of a row that the transaction writes back whole
// from what it read (a PATCH): on PostgreSQL " FOR UPDATE", which keeps the
// row locked from the read, so that a change committed meanwhile is read
// rather than written over; on SQLite nothing, since it runs one writer at
// a time.
func (tx *Tx) ForUpdate() string {
	if tx.dialect == Postgres {
		return " FOR UPDATE"
	}
	return ""
}

// Exec runs a statement written with ? placeholders.
func (tx *Tx) Exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if s := tx.prepared(ctx, query, false); s != nil {
		return s.ExecContext(ctx, args...)
	}
	return tx.tx.ExecContext(ctx, rebind(tx.dialect, query), args...)
}

// Query runs a query written with ? placeholders. Each, which knows when
// the rows are done with, lets a text repeated in one transaction stay
// prepared.
func (tx *Tx) Query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	rows, _, err := tx.query(ctx, query, args)
	return rows, err
}

// query is Query, also telling whether it counted its rows as open.
func (tx *Tx) query(ctx context.Context, query string, args []any) (*sql.Rows, bool, error) {
	if s := tx.prepared(ctx, query, true); s != nil {
		rows, err := s.QueryContext(ctx, args...)
		return rows, true, err
	}
	rows, err := tx.tx.QueryContext(ctx, rebind(tx.dialect, query), args...)
	return rows, false, err
}

// QueryRow runs a query written with ? placeholders that returns one row,
// to be scanned before the same text runs again in the transaction.
func (tx *Tx) QueryRow(ctx context.Context, query string, args ...any) *sql.Row {
	if s := tx.prepared(ctx, query, false); s != nil {
		return s.QueryRowContext(ctx, args...)
	}
	return tx.tx.QueryRowContext(ctx, rebind(tx.dialect, query), args...)
}

// prepared returns the kept prepared statement for query, bound to tx, or
// nil when there is none (always on PostgreSQL) or when rows of the same
// text may still be reading it. rows counts the use as open until the
// transaction ends.
func (tx *Tx) prepared(ctx context.Context, query string, rows bool) *sql.Stmt {
	if tx.stmts == nil || tx.open[query] > 0 {
		return nil
	}
	s, prepare := tx.stmts.lookup(query)
	if s == nil {
		if prepare {
			tx.unprepared = append(tx.unprepared, query)
		}
		return nil
	}
	if rows {
		tx.markOpen(query, 1)
	}
	return tx.tx.StmtContext(ctx, s)
}

func (tx *Tx) markOpen(query string, n int) {
	if tx.open == nil {
		tx.open = map[string]int{}
	}
	tx.open[query] += n
}

// Scanner reads one row: *sql.Row and *sql.Rows are Scanners, so one scan
// function serves a single-row read and a list.
type Scanner = interface{ Scan(dest ...any) error }

// All runs a query written with ? placeholders through Each and returns its
// rows, each read by scan, in order (nil when there are none).
// Placeholders returns "?, ?, ..." for n values of a statement.
func Placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

func All[T any](ctx context.Context, tx *Tx, query string, args []any, scan func(Scanner) (T, error)) ([]T, error) {
	var out []T
	err := tx.Each(ctx, query, args, func(r *sql.Rows) error {
		v, err := scan(r)
		if err != nil {
			return err
		}
		out = append(out, v)
		return nil
	})
	return out, err
}

// Strings runs a query written with ? placeholders whose rows are one text
// column, and returns them in order.
func (tx *Tx) Strings(ctx context.Context, query string, args ...any) ([]string, error) {
	return All(ctx, tx, query, args, func(r Scanner) (string, error) {
		var s string
		err := r.Scan(&s)
		return s, err
	})
}

// rebind rewrites ? placeholders as $1, $2, ... for PostgreSQL. Question
// marks inside single-quoted literals are left alone.
func rebind(d Dialect, query string) string {
	if d != Postgres || !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 8)
	n, quoted := 0, false
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case c == '\'':
			quoted = !quoted
		case c == '?' && !quoted:
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// Translate turns driver errors into domain errors: a unique violation
// becomes KindConflict, a missing row KindNotFound, a lost connection
// KindUnavailable. Domain errors pass through; anything else is internal.
func Translate(err error) error {
	if err == nil {
		return nil
	}
	var se *steward.Error
	if errors.As(err, &se) {
		return err
	}
	if errors.Is(err, sql.ErrNoRows) {
		return &steward.Error{Kind: steward.KindNotFound, Message: "not found", Err: err}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return &steward.Error{Kind: steward.KindUnavailable, Message: "the request was cancelled before the database answered", Err: err}
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.Code == "23505":
			return &steward.Error{Kind: steward.KindConflict, Message: "already exists", Err: err}
		case strings.HasPrefix(pgErr.Code, "08"), pgErr.Code == "57P01", pgErr.Code == "57P03":
			return &steward.Error{Kind: steward.KindUnavailable, Message: "the database is unavailable", Err: err}
		}
		return steward.Internal(err)
	}
	var sqErr *sqlite.Error
	if errors.As(err, &sqErr) {
		// An extended code refines its primary code in the low byte, as
		// SQLITE_BUSY_SNAPSHOT or SQLITE_IOERR_WRITE do.
		switch code := sqErr.Code(); {
		case code == sqlite3.SQLITE_CONSTRAINT_UNIQUE, code == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return &steward.Error{Kind: steward.KindConflict, Message: "already exists", Err: err}
		case slices.Contains([]int{sqlite3.SQLITE_BUSY, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL, sqlite3.SQLITE_CANTOPEN}, code&0xff):
			return &steward.Error{Kind: steward.KindUnavailable, Message: "the database is unavailable", Err: err}
		}
		return steward.Internal(err)
	}
	var connErr *pgconn.ConnectError
	var netErr net.Error
	// database/sql does not export its "database is closed" error.
	if errors.As(err, &connErr) || errors.As(err, &netErr) || errors.Is(err, sql.ErrConnDone) ||
		errors.Is(err, driver.ErrBadConn) || errors.Is(err, io.ErrUnexpectedEOF) || err.Error() == "sql: database is closed" {
		return &steward.Error{Kind: steward.KindUnavailable, Message: "the database is unavailable", Err: err}
	}
	return steward.Internal(err)
}

// Micros is how times are stored: microseconds since the Unix epoch, UTC,
// the same BIGINT on both engines.
func Micros(t time.Time) int64 { return t.UnixMicro() }

// MicrosPtr stores an optional time; nil becomes NULL.
func MicrosPtr(t *time.Time) sql.NullInt64 {
	if t == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMicro(), Valid: true}
}

// Time reads a stored time.
func Time(us int64) time.Time { return time.UnixMicro(us).UTC() }

// TimePtr reads an optional stored time.
func TimePtr(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := Time(v.Int64)
	return &t
}

// maxParams bounds the placeholders of one statement, well under SQLite's
// 32,766 and PostgreSQL's 65,535.
const maxParams = 8000

// Runs splits n rows of cols values each into runs for multi-row
// statements, yielding each run's start and end. Every run's length is a
// power of two and its values stay under maxParams, so that a few statement
// texts serve batches of any size and stay prepared.
func Runs(n, cols int) iter.Seq2[int, int] {
	largest := 1
	for largest*2*max(cols, 1) <= maxParams {
		largest *= 2
	}
	return func(yield func(int, int) bool) {
		for start := 0; start < n; {
			size := largest
			for size > n-start {
				size /= 2
			}
			if !yield(start, start+size) {
				return
			}
			start += size
		}
	}
}

// InsertMany inserts rows (each one value per column) into table with
// multi-row INSERT statements (see Runs). suffix (such as "ON CONFLICT DO
// NOTHING") is appended to each statement.
func (tx *Tx) InsertMany(ctx context.Context, table string, columns []string, rows [][]any, suffix string) error {
	_, err := tx.insertMany(ctx, table, columns, rows, suffix, nil)
	return err
}

// InsertCount is InsertMany returning how many rows the statements
// inserted or changed.
func (tx *Tx) InsertCount(ctx context.Context, table string, columns []string, rows [][]any, suffix string) (int64, error) {
	return tx.insertMany(ctx, table, columns, rows, suffix, nil)
}

// InsertReturning is InsertMany for a suffix that ends in RETURNING: scan
// is called with each row returned.
func (tx *Tx) InsertReturning(ctx context.Context, table string, columns []string, rows [][]any, suffix string, scan func(*sql.Rows) error) error {
	_, err := tx.insertMany(ctx, table, columns, rows, suffix, scan)
	return err
}

func (tx *Tx) insertMany(ctx context.Context, table string, columns []string, rows [][]any, suffix string, scan func(*sql.Rows) error) (int64, error) {
	one := "(" + Placeholders(len(columns)) + ")"
	head := "INSERT INTO " + table + " (" + strings.Join(columns, ", ") + ") VALUES "
	var affected int64
	for start, end := range Runs(len(rows), len(columns)) {
		part := rows[start:end]
		args := make([]any, 0, len(part)*len(columns))
		for _, r := range part {
			if len(r) != len(columns) {
				return affected, fmt.Errorf("insert into %s: a row has %d values for %d columns", table, len(r), len(columns))
			}
			args = append(args, r...)
		}
		q := head + strings.TrimSuffix(strings.Repeat(one+", ", len(part)), ", ") + " " + suffix
		if scan != nil {
			if err := tx.Each(ctx, q, args, scan); err != nil {
				return affected, err
			}
			continue
		}
		res, err := tx.Exec(ctx, q, args...)
		if err != nil {
			return affected, err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return affected, err
		}
		affected += n
	}
	return affected, nil
}

// Each runs a query written with ? placeholders and calls scan with each
// of its rows.
func (tx *Tx) Each(ctx context.Context, query string, args []any, scan func(*sql.Rows) error) error {
	rows, counted, err := tx.query(ctx, query, args)
	if err != nil {
		return err
	}
	if counted {
		defer tx.markOpen(query, -1)
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return rows.Close()
}
