package store_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
)

// Three processes starting at once on an empty PostgreSQL database apply
// each migration once between them.
func TestMigrateFromProcessesStartingAtOnce(t *testing.T) {
	base := os.Getenv(storetest.PostgresEnv)
	if base == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not set: CI must test PostgreSQL", storetest.PostgresEnv)
		}
		t.Skipf("PostgreSQL not tested: set %s", storetest.PostgresEnv)
	}
	ctx := context.Background()
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "steward_test_" + hex.EncodeToString(b[:])
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatal(err)
	}
	defer admin.Exec("DROP SCHEMA " + schema + " CASCADE")
	u, _ := url.Parse(base)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()

	var mu sync.Mutex
	applied := 0
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			db, err := store.Open(ctx, store.Config{DatabaseURL: u.String()})
			if err != nil {
				t.Error(err)
				return
			}
			defer db.Close()
			names, err := db.Migrate(ctx)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			applied += len(names)
			mu.Unlock()
		})
	}
	wg.Wait()
	var versions int
	if err := admin.QueryRow("SELECT COUNT(*) FROM " + schema + ".goose_db_version WHERE version_id > 0").Scan(&versions); err != nil {
		t.Fatal(err)
	}
	if applied != versions || versions == 0 {
		t.Fatalf("%d migrations applied by three processes, %d recorded; want each once", applied, versions)
	}
}

// ROLLUP_TABLE gives PostgreSQL's rollup tables room for HOT updates and
// leaves SQLite's tables as they are.
func TestRollupTableMacro(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		q := `SELECT sql FROM sqlite_master WHERE name = 'analytics_chat_users'`
		if db.Dialect() == store.Postgres {
			q = `SELECT array_to_string(reloptions, ',') FROM pg_class WHERE oid = 'analytics_chat_users'::regclass`
		}
		var got string
		if err := db.View(ctx, func(tx *store.Tx) error { return tx.QueryRow(ctx, q).Scan(&got) }); err != nil {
			t.Fatal(err)
		}
		if db.Dialect() == store.Postgres && got != "fillfactor=80" {
			t.Errorf("reloptions = %q, want fillfactor=80", got)
		}
		if db.Dialect() == store.SQLite && !strings.HasSuffix(got, "PRIMARY KEY (organization_id, level, bucket_start, user_id)\n)") {
			t.Errorf("SQLite's table is %q", got)
		}
	})
}
