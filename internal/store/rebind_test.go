package store

import "testing"

func TestRebind(t *testing.T) {
	for _, tc := range []struct{ in, pg string }{
		{"SELECT 1", "SELECT 1"},
		{"SELECT * FROM t WHERE a = ? AND b = ?", "SELECT * FROM t WHERE a = $1 AND b = $2"},
		{"SELECT '?' || ? FROM t", "SELECT '?' || $1 FROM t"},
		{"SELECT 'it''s?' , ?", "SELECT 'it''s?' , $1"},
	} {
		if got := rebind(Postgres, tc.in); got != tc.pg {
			t.Errorf("rebind(Postgres, %q) = %q, want %q", tc.in, got, tc.pg)
		}
		if got := rebind(SQLite, tc.in); got != tc.in {
			t.Errorf("rebind(SQLite, %q) = %q, want it unchanged", tc.in, got)
		}
	}
}
