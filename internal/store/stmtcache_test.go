package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
)

func openSQLiteForTest(t *testing.T) *DB {
	t.Helper()
	db, err := Open(context.Background(), Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func (c *stmtCache) has(query string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.byQ[query]
	return ok
}

// A statement text run twice is prepared once its transaction has ended,
// later runs use it, and it follows changes of the schema; a text that
// fails is never kept; beyond the cache's size the least recently used are
// let go and run unprepared.
func TestStatementCache(t *testing.T) {
	ctx := context.Background()
	db := openSQLiteForTest(t)
	exec := func(q string, args ...any) {
		t.Helper()
		if err := db.Transact(ctx, func(tx *Tx) error { _, err := tx.Exec(ctx, q, args...); return err }); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec(`CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)`)
	const insert = `INSERT INTO t (v) VALUES (?)`
	exec(insert, "a")
	if db.writeStmts.has(insert) {
		t.Fatal("a text run once was prepared")
	}
	exec(insert, "b")
	if !db.writeStmts.has(insert) {
		t.Fatal("a text run twice was not prepared")
	}
	exec(insert, "c")
	exec(`ALTER TABLE t ADD COLUMN w TEXT NOT NULL DEFAULT 'x'`)
	const all = `SELECT * FROM t ORDER BY id`
	for run := range 3 {
		var got []string
		err := db.View(ctx, func(tx *Tx) error {
			rows, err := tx.Query(ctx, all)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var id int
				var v, w string
				if err := rows.Scan(&id, &v, &w); err != nil {
					return err
				}
				got = append(got, fmt.Sprint(id, v, w))
			}
			return rows.Err()
		})
		if err != nil || strings.Join(got, ",") != "1ax,2bx,3cx" {
			t.Fatalf("run %d of a kept query: %v (%v), want 1ax,2bx,3cx", run, got, err)
		}
	}
	if !db.readStmts.has(all) {
		t.Fatal("a query run three times was not prepared")
	}

	const missing = `SELECT v FROM missing`
	for range 3 {
		err := db.View(ctx, func(tx *Tx) error { _, err := tx.Strings(ctx, missing); return err })
		if err == nil || !strings.Contains(err.Error(), "no such table") {
			t.Fatalf("a query of a missing table: %v, want its error", err)
		}
	}
	if db.readStmts.has(missing) {
		t.Fatal("a text that fails to prepare was kept")
	}

	for i := range stmtCacheSize + 10 {
		q := fmt.Sprintf("SELECT v FROM t WHERE id = %d", i%3+1)
		q += strings.Repeat(" ", i)
		for range 2 {
			err := db.View(ctx, func(tx *Tx) error {
				got, err := tx.Strings(ctx, q)
				if err == nil && (len(got) != 1 || got[0] != string(rune('a'+i%3))) {
					err = fmt.Errorf("got %v", got)
				}
				return err
			})
			if err != nil {
				t.Fatalf("query %d: %v", i, err)
			}
		}
	}
	db.readStmts.mu.Lock()
	kept := db.readStmts.lru.Len()
	db.readStmts.mu.Unlock()
	if kept != stmtCacheSize || db.readStmts.has(all) {
		t.Fatalf("the read cache keeps %d statements (the oldest among them: %v), want %d without the oldest", kept, db.readStmts.has(all), stmtCacheSize)
	}
	var n int
	if err := db.View(ctx, func(tx *Tx) error { return tx.QueryRow(ctx, `SELECT COUNT(*) FROM t`).Scan(&n) }); err != nil || n != 3 {
		t.Fatalf("count after the cache let go of statements: %d, %v", n, err)
	}
}

// Runs covers every row once, in runs whose lengths are powers of two, no
// longer than the last, within the placeholder bound.
func TestRuns(t *testing.T) {
	for _, cols := range []int{1, 2, 9, 16, maxParams + 1} {
		for n := range 1200 {
			next, last := 0, -1
			for start, end := range Runs(n, cols) {
				size := end - start
				if start != next || size <= 0 || size&(size-1) != 0 || (size > 1 && size*cols > maxParams) || (last > 0 && size > last) {
					t.Fatalf("Runs(%d, %d): run [%d, %d) after %d rows, last run %d", n, cols, start, end, next, last)
				}
				next, last = end, size
			}
			if next != n {
				t.Fatalf("Runs(%d, %d) covered %d rows", n, cols, next)
			}
		}
	}
}

// A prepared statement has one cursor: a text whose rows are still being
// read runs unprepared when it is used again, by Query, Each or QueryRow,
// and both readers see their own rows.
func TestStatementInUseRunsUnprepared(t *testing.T) {
	ctx := context.Background()
	db := openSQLiteForTest(t)
	err := db.Transact(ctx, func(tx *Tx) error {
		if _, err := tx.Exec(ctx, `CREATE TABLE t (id INTEGER PRIMARY KEY, grp INTEGER NOT NULL)`); err != nil {
			return err
		}
		for i := range 6 {
			if _, err := tx.Exec(ctx, `INSERT INTO t (id, grp) VALUES (?, ?)`, i, i%2); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	const q = `SELECT id FROM t WHERE grp = ? ORDER BY id`
	for range 2 {
		if err := db.View(ctx, func(tx *Tx) error { _, err := tx.Strings(ctx, q, 0); return err }); err != nil {
			t.Fatal(err)
		}
	}
	if !db.readStmts.has(q) {
		t.Fatal("the query was not prepared")
	}
	var outer, inner, rowInner, again []string
	err = db.View(ctx, func(tx *Tx) error {
		rows, err := tx.Query(ctx, q, 0)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				return err
			}
			outer = append(outer, id)
			got, err := tx.Strings(ctx, q, 1)
			if err != nil {
				return err
			}
			inner = append(inner, got...)
			var first string
			if err := tx.QueryRow(ctx, q, 1).Scan(&first); err != nil {
				return err
			}
			rowInner = append(rowInner, first)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		return tx.Each(ctx, q, []any{1}, func(r *sql.Rows) error {
			var id string
			if err := r.Scan(&id); err != nil {
				return err
			}
			got, err := tx.Strings(ctx, q, 0)
			again = append(again, id+":"+strings.Join(got, ""))
			return err
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(outer, ",") != "0,2,4" || strings.Join(inner, ",") != "1,3,5,1,3,5,1,3,5" || strings.Join(rowInner, ",") != "1,1,1" ||
		strings.Join(again, ",") != "1:024,3:024,5:024" {
		t.Fatalf("outer %v, inner %v, inner rows %v, nested Each %v", outer, inner, rowInner, again)
	}
}
