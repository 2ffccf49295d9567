// Package storetest gives tests a fresh, migrated database on each engine:
// an SQLite file in a temporary directory, and a PostgreSQL schema of its
// own on the server that STEWARD_TEST_POSTGRES names, dropped afterwards.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	"github.com/stewardhq/steward/internal/store"
)

// PostgresEnv names the PostgreSQL server tests use, as a postgres:// URL.
const PostgresEnv = "STEWARD_TEST_POSTGRES"

// Engine is one database engine under test.
type Engine struct {
	Name string
	// Open returns a fresh migrated database and its configuration, closed
	// and removed when the test ends.
	Open func(t testing.TB) (*store.DB, store.Config)
}

// Engines returns SQLite, and PostgreSQL when STEWARD_TEST_POSTGRES is set.
// In CI (CI set) a missing PostgreSQL fails the test instead of skipping it.
func Engines(t testing.TB) []Engine {
	t.Helper()
	engines := []Engine{{Name: "sqlite", Open: OpenSQLite}}
	if os.Getenv(PostgresEnv) != "" {
		engines = append(engines, Engine{Name: "postgres", Open: OpenPostgres})
	} else if os.Getenv("CI") != "" {
		t.Fatalf("%s is not set: CI must test PostgreSQL", PostgresEnv)
	}
	return engines
}

// Run runs fn as a subtest on every engine, each with a fresh database. On a
// machine without PostgreSQL the postgres subtest is reported as skipped.
func Run(t *testing.T, fn func(t *testing.T, db *store.DB)) {
	t.Helper()
	for _, e := range Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			db, _ := e.Open(t)
			fn(t, db)
		})
	}
	if os.Getenv(PostgresEnv) == "" {
		t.Run("postgres", func(t *testing.T) {
			t.Skipf("PostgreSQL not tested: set %s=postgres://... to run it", PostgresEnv)
		})
	}
}

// OpenAgain opens the database cfg names once more, as another Steward
// process would (its own connections, caches and change feed); it is
// closed when the test ends.
func OpenAgain(t testing.TB, cfg store.Config) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("open the database again: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// OpenSQLite returns a fresh migrated SQLite database in a temporary
// directory.
func OpenSQLite(t testing.TB) (*store.DB, store.Config) {
	t.Helper()
	cfg := store.Config{DataDir: t.TempDir()}
	return open(t, cfg), cfg
}

// OpenPostgres returns a fresh migrated database in a new schema of the
// server STEWARD_TEST_POSTGRES names; the schema is dropped afterwards.
func OpenPostgres(t testing.TB) (*store.DB, store.Config) {
	t.Helper()
	base := os.Getenv(PostgresEnv)
	if base == "" {
		t.Skipf("PostgreSQL not tested: set %s", PostgresEnv)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "steward_test_" + hex.EncodeToString(b[:])

	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("open %s: %v", PostgresEnv, err)
	}
	defer admin.Close()
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		admin, err := sql.Open("pgx", base)
		if err != nil {
			t.Errorf("drop schema: %v", err)
			return
		}
		defer admin.Close()
		if _, err := admin.Exec("DROP SCHEMA " + schema + " CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse %s: %v", PostgresEnv, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	cfg := store.Config{DatabaseURL: u.String()}
	return open(t, cfg), cfg
}

func open(t testing.TB, cfg store.Config) *store.DB {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return db
}
