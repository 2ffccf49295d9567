package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
)

// TestOwnSQLiteOnce: while one owner holds the data directory's SQLite
// database, a second is refused with an error naming the database, the
// lock and the holder's pid; once released, it can be owned again. (The
// lock is per open file, so a second owner in the same process is refused
// as another process is; cmd/steward tests two servers.)
func TestOwnSQLiteOnce(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	release, err := store.OwnSQLite(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = store.OwnSQLite(dir)
	for _, want := range []string{filepath.Join(dir, store.SQLiteFile) + " is in use", filepath.Join(dir, store.LockFile), fmt.Sprintf("(pid %d)", os.Getpid())} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("second owner: %v; want an error naming %q", err, want)
		}
	}
	release()
	again, err := store.OwnSQLite(dir)
	if err != nil {
		t.Fatalf("owner after release: %v", err)
	}
	again()
}

// TestSessionLock takes a session advisory lock: another session cannot
// take it while it is held, Lost fires when its connection is cut, and
// after Release the lock is free again.
func TestSessionLock(t *testing.T) {
	db, _ := storetest.OpenPostgres(t)
	ctx := context.Background()
	free := func(key int64) bool {
		t.Helper()
		var got bool
		err := db.Transact(ctx, func(tx *store.Tx) error {
			return tx.QueryRow(ctx, "SELECT pg_try_advisory_xact_lock(?)", key).Scan(&got)
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	key := time.Now().UnixNano()
	name := fmt.Sprintf("steward-test-lock-%d", key)
	l, err := db.LockSession(ctx, key, name)
	if err != nil {
		t.Fatal(err)
	}
	if free(key) {
		t.Fatal("the lock is free while held")
	}
	if _, err := db.LockSession(ctx, key, name+"-second"); err == nil || !strings.Contains(err.Error(), "held by another session") {
		t.Fatalf("second session lock: %v, want it refused", err)
	}
	l.Release()
	if !free(key) {
		t.Fatal("the lock is held after Release")
	}
	select {
	case <-l.Lost():
		t.Fatal("Lost fired on Release")
	default:
	}

	l, err = db.LockSession(ctx, key, name)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	pg, err := sql.Open("pgx", os.Getenv(storetest.PostgresEnv))
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	if _, err := pg.Exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", name); err != nil {
		t.Fatal(err)
	}
	select {
	case <-l.Lost():
		if l.Err() == nil {
			t.Fatal("Lost fired without an error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Lost did not fire 5s after the connection was cut")
	}
	for deadline := time.Now().Add(5 * time.Second); !free(key); {
		if time.Now().After(deadline) {
			t.Fatal("the lock is still held 5s after its connection was cut")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
