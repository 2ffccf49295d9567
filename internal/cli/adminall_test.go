package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// pagedServer serves 150 members, Workspaces and API keys, in pages of at
// most 100 as Steward and Mistral do: by page and page_size, or by limit
// and offset for keys.
func pagedServer(t *testing.T) map[string]string {
	t.Helper()
	const total = 150
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		atoi := func(name string, def int) int {
			if v, err := strconv.Atoi(q.Get(name)); err == nil {
				return v
			}
			return def
		}
		size := atoi("page_size", 25)
		from := (atoi("page", 1) - 1) * size
		if r.URL.Path == "/v1/admin/api-keys" {
			size, from = atoi("limit", 25), atoi("offset", 0)
		}
		var items []map[string]any
		for i := from; i < min(from+size, total); i++ {
			id := fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
			items = append(items, map[string]any{"uuid": id, "key_id": id, "name": fmt.Sprintf("n%d", i), "email": fmt.Sprintf("u%d@example.com", i),
				"raw_roles": []string{"M"}, "raw_role": "M", "created_at": "2030-01-02T15:04:05Z"})
		}
		if items == nil {
			items = []map[string]any{}
		}
		var body any
		switch r.URL.Path {
		case "/v1/admin/users":
			body = map[string]any{"members": items, "invites": []any{}, "total": total, "page": atoi("page", 1), "page_size": size}
		case "/v1/admin/workspaces":
			body = map[string]any{"items": items, "total": total, "page": atoi("page", 1), "page_size": size}
		case "/v1/admin/api-keys":
			body = map[string]any{"keys": items}
		default:
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(body)
	}))
	t.Cleanup(srv.Close)
	return map[string]string{"STEWARD_URL": srv.URL, "STEWARD_ADMIN_KEY": "k"}
}

// TestListAll: --all prints every page of a list, as one table or as one
// JSON array, and refuses the flags that choose a page.
func TestListAll(t *testing.T) {
	env := pagedServer(t)
	for _, noun := range []string{"users", "workspaces", "keys"} {
		t.Run(noun, func(t *testing.T) {
			code, out, stderr := run(t, env, noun, "list", "--all", "--json")
			if code != 0 {
				t.Fatalf("%s list --all --json: exit %d\n%s", noun, code, stderr)
			}
			var rows []struct{ Name string }
			if err := json.Unmarshal([]byte(out), &rows); err != nil {
				t.Fatalf("%s list --all --json is not one JSON array: %v\n%.200s", noun, err, out)
			}
			if len(rows) != 150 || rows[0].Name != "n0" || rows[149].Name != "n149" {
				t.Errorf("%s list --all --json: %d rows, want n0 to n149", noun, len(rows))
			}
			code, out, stderr = run(t, env, noun, "list", "--all")
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if code != 0 || len(lines) != 151 || !strings.Contains(lines[150], "n149") {
				t.Errorf("%s list --all: exit %d, %d lines, want a heading and 150 rows\n%s", noun, code, len(lines), stderr)
			}
			code, out, _ = run(t, env, noun, "list")
			if n := strings.Count(out, "@example.com"); code != 0 || n != 25 {
				t.Errorf("%s list without --all: exit %d, %d rows, want one page of 25", noun, code, n)
			}
		})
	}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"users", "list", "--all", "--page", "2"}, "--all reads every page itself: leave out --page"},
		{[]string{"keys", "list", "--all", "--offset", "100"}, "leave out --offset"},
		{[]string{"workspaces", "list", "--all", "--is-archived", "maybe"}, `--is-archived must be true or false, not "maybe"`},
		{[]string{"groups", "members", "not-a-uuid", "--all"}, `GROUP_UUID "not-a-uuid" is not a UUID`},
	}
	for _, tt := range tests {
		code, out, stderr := run(t, env, tt.args...)
		if code != 2 || out != "" || !strings.Contains(stderr, tt.want) {
			t.Errorf("steward %s: exit %d, stdout %q, stderr %q; want 2 saying %q", strings.Join(tt.args, " "), code, out, stderr, tt.want)
		}
	}
}
