// Package storetest gives tests a fresh, migrated database on each engine:
// an SQLite file in a temporary directory, and a PostgreSQL database of its
// own on the server that STEWARD_TEST_POSTGRES names, dropped afterwards.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
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
// directory: a copy of the template that sqliteTemplate migrated.
func OpenSQLite(t testing.TB) (*store.DB, store.Config) {
	t.Helper()
	src, err := sqliteTemplate()
	if err != nil {
		t.Fatalf("SQLite template: %v", err)
	}
	dir := t.TempDir()
	if err := copyFile(src, filepath.Join(dir, store.SQLiteFile)); err != nil {
		t.Fatalf("copy the SQLite template: %v", err)
	}
	cfg := store.Config{DataDir: dir}
	return open(t, cfg), cfg
}

// OpenPostgres returns a fresh migrated database of its own on the server
// STEWARD_TEST_POSTGRES names, made from the template that
// postgresTemplate migrated; it is dropped afterwards.
func OpenPostgres(t testing.TB) (*store.DB, store.Config) {
	t.Helper()
	base := os.Getenv(PostgresEnv)
	if base == "" {
		Engines(t) // fails the test in CI
		t.Skipf("PostgreSQL not tested: set %s", PostgresEnv)
	}
	template, err := postgresTemplate()
	if err != nil {
		t.Fatalf("PostgreSQL template: %v", err)
	}
	name := "steward_test_" + randomHex()
	if err := adminExec(base, "CREATE DATABASE "+name+" TEMPLATE "+template); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		if err := adminExec(base, "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	dsn, err := withDatabase(base, name)
	if err != nil {
		t.Fatal(err)
	}
	cfg := store.Config{DatabaseURL: dsn}
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

// Migrating costs a test far more than copying (most of a second on SQLite
// under the race detector), so each engine has a template database,
// migrated once per machine and set of migrations and named by their
// digest: a file in the temporary directory, and a database on the
// server that takes no connections. Several test processes may build one
// at once; each builds under a name of its own and renames it into place,
// and the loser throws its copy away.
var (
	sqliteTemplate   = sync.OnceValues(buildSQLiteTemplate)
	postgresTemplate = sync.OnceValues(buildPostgresTemplate)
)

func templateName() string { return "steward_template_" + store.MigrationsDigest()[:16] }

func buildSQLiteTemplate() (string, error) {
	path := filepath.Join(os.TempDir(), templateName()+".db")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	dir, err := os.MkdirTemp("", "steward-template-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	db, err := store.Open(ctx, store.Config{DataDir: dir})
	if err != nil {
		return "", err
	}
	_, err = db.Migrate(ctx)
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", err
	}
	// Closing the last connection checkpoints the write-ahead log into
	// the file and removes it; a log left behind would hold part of the
	// schema that a copy of the file alone would lack.
	if _, err := os.Stat(filepath.Join(dir, store.SQLiteFile+"-wal")); err == nil {
		return "", fmt.Errorf("the template's write-ahead log was left behind")
	}
	return path, os.Rename(filepath.Join(dir, store.SQLiteFile), path)
}

func buildPostgresTemplate() (string, error) {
	base := os.Getenv(PostgresEnv)
	name := templateName()
	admin, err := sql.Open("pgx", base)
	if err != nil {
		return "", err
	}
	defer admin.Close()
	var exists bool
	if err := admin.QueryRow(`SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return "", err
	}
	if exists {
		return name, nil
	}
	building := name + "_" + randomHex()
	if _, err := admin.Exec("CREATE DATABASE " + building); err != nil {
		return "", err
	}
	ctx := context.Background()
	dsn, err := withDatabase(base, building)
	var db *store.DB
	if err == nil {
		db, err = store.Open(ctx, store.Config{DatabaseURL: dsn})
	}
	if err == nil {
		_, err = db.Migrate(ctx)
		if cerr := db.Close(); err == nil {
			err = cerr
		}
	}
	if err == nil {
		_, err = admin.Exec("ALTER DATABASE " + building + " WITH ALLOW_CONNECTIONS false")
	}
	if err == nil {
		_, err = admin.Exec("ALTER DATABASE " + building + " RENAME TO " + name)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42P04" { // duplicate_database: another process won
			err = nil
		}
	}
	if _, derr := admin.Exec("DROP DATABASE IF EXISTS " + building + " WITH (FORCE)"); err == nil {
		err = derr
	}
	return name, err
}

func adminExec(base, statement string) error {
	admin, err := sql.Open("pgx", base)
	if err != nil {
		return err
	}
	defer admin.Close()
	_, err = admin.Exec(statement)
	return err
}

// withDatabase returns the postgres:// URL base with its database changed
// to name.
func withDatabase(base, name string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("parse %s: %w", PostgresEnv, err)
	}
	u.Path = "/" + name
	return u.String(), nil
}

func randomHex() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
