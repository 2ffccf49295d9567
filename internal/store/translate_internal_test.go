package store

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/stewardhq/steward/internal/steward"
)

// An extended result code counts as its primary one: a write that finds
// the database changed under its read snapshot (SQLITE_BUSY_SNAPSHOT, as
// another process on the same file can cause) is unavailable, not internal.
func TestTranslateExtendedBusy(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := Open(ctx, Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Transact(ctx, func(tx *Tx) error { _, err := tx.Exec(ctx, `CREATE TABLE t (x INTEGER)`); return err }); err != nil {
		t.Fatal(err)
	}
	other, err := sql.Open("sqlite", "file:"+filepath.Join(dir, SQLiteFile))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var n int
	if _, err := conn.ExecContext(ctx, `BEGIN`); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRowContext(ctx, `SELECT COUNT(*) FROM t`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if err := db.Transact(ctx, func(tx *Tx) error { _, err := tx.Exec(ctx, `INSERT INTO t (x) VALUES (1)`); return err }); err != nil {
		t.Fatal(err)
	}
	_, err = conn.ExecContext(ctx, `INSERT INTO t (x) VALUES (2)`)
	var se *sqlite.Error
	if !errors.As(err, &se) || se.Code() == sqlite3.SQLITE_BUSY || se.Code()&0xff != sqlite3.SQLITE_BUSY {
		t.Fatalf("a write on a stale snapshot: %v, want an extended SQLITE_BUSY code", err)
	}
	var de *steward.Error
	if got := Translate(err); !errors.As(got, &de) || de.Kind != steward.KindUnavailable {
		t.Fatalf("Translate(%v) = %v, want KindUnavailable", err, got)
	}
	_, _ = conn.ExecContext(ctx, `ROLLBACK`)
}
