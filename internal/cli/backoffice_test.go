package cli

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
)

const (
	testBackofficeKey = "stwb_fake_backoffice_key_never_printed"
	testAdminSecret   = "stwa_fake_admin_secret_shown_once"
)

// fakeRoute is one request the fake server expects, with its answer.
type fakeRoute struct {
	method, path string // path as sent, escaped
	body         string // expected JSON body; empty for none
	status       int
	answer       string
}

var fakeRoutes = []fakeRoute{
	{"GET", "/v1/backoffice/organizations", "", 200,
		`{"items":[{"id":"org_1","name":"Acme","member_count":12,"created_at":"2025-03-04T05:06:07.123456Z"},{"id":"org_2","name":"Globex","member_count":0,"created_at":"2025-04-01T00:00:00Z"}]}`},
	{"POST", "/v1/backoffice/organizations", `{"name":"Initech"}`, 201,
		`{"id":"org_3","name":"Initech","member_count":0,"created_at":"2025-05-01T00:00:00Z"}`},
	{"POST", "/v1/backoffice/organizations", `{"name":"Acme"}`, 409,
		`{"object":"error","message":"an Organization named Acme already exists","type":"invalid_request_error","param":null,"code":"conflict"}`},
	{"POST", "/v1/backoffice/organizations/org_1/promote", `{"member_id":"user_7"}`, 200,
		`{"organization_id":"org_1","user_id":"user_7","email":"ada@acme.example"}`},
	{"GET", "/v1/backoffice/admin-keys", "", 200,
		`{"items":[{"id":"akey_1","name":"ci","organization_id":"org_1","organization_name":"Acme","hint":"stwa_…x9Qz","created_at":"2025-03-04T05:06:07Z","last_used_at":null,"expires_at":null},` +
			`{"id":"akey_2","name":"terraform","organization_id":"org_2","organization_name":"Globex","hint":"stwa_…k2Lm","created_at":"2025-03-05T00:00:00Z","last_used_at":"2025-06-01T09:30:00.5Z","expires_at":"2030-12-31T00:00:00Z"}]}`},
	{"POST", "/v1/backoffice/admin-keys", `{"name":"deploy","organization_id":"org_1","expires_at":null}`, 201,
		`{"id":"akey_3","name":"deploy","organization_id":"org_1","organization_name":"Acme","hint":"stwa_…once","created_at":"2025-05-01T00:00:00Z","last_used_at":null,"expires_at":null,"key":"` + testAdminSecret + `"}`},
	{"POST", "/v1/backoffice/admin-keys", `{"name":"deploy","organization_id":"org_1","expires_at":"2030-12-31"}`, 201,
		`{"id":"akey_4","name":"deploy","organization_id":"org_1","organization_name":"Acme","hint":"stwa_…once","created_at":"2025-05-01T00:00:00Z","last_used_at":null,"expires_at":"2030-12-31T00:00:00Z","key":"` + testAdminSecret + `"}`},
	{"POST", "/v1/backoffice/admin-keys", `{"name":"old","organization_id":"org_1","expires_at":"2000-01-01"}`, 422,
		`{"detail":[{"loc":["body","expires_at"],"msg":"expiration must be in the future","type":"value_error"}]}`},
	{"DELETE", "/v1/backoffice/admin-keys/akey_1", "", 204, ""},
	{"DELETE", "/v1/backoffice/admin-keys/akey%2F..%2Fx", "", 204, ""},
	{"GET", "/v1/backoffice/members", "", 200,
		`{"items":[{"user_id":"user_7","email":"ada@acme.example","name":"Ada Lovelace","admin_of":["org_1"],"added_at":"2025-03-04T05:06:07Z"},` +
			`{"user_id":"user_8","email":"bob@acme.example","name":null,"admin_of":[],"added_at":"2025-03-04T05:06:07Z"}]}`},
	{"POST", "/v1/backoffice/members", `{"user_id":"user_9"}`, 201,
		`{"user_id":"user_9","email":"cy@acme.example","name":"Cy","admin_of":[],"added_at":"2025-05-01T00:00:00Z"}`},
	{"POST", "/v1/backoffice/members", `{"email":"new@acme.example"}`, 201,
		`{"user_id":"user_10","email":"new@acme.example","name":null,"admin_of":[],"added_at":"2025-05-01T00:00:00Z"}`},
	{"DELETE", "/v1/backoffice/members/user_8", "", 204, ""},
}

// normalJSON re-encodes a JSON text so that equal values compare equal.
func normalJSON(t *testing.T, s string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Errorf("not JSON: %q: %v", s, err)
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// fakeBackoffice stands in for a Steward server's Backoffice API: it
// answers fakeRoutes to requests that carry the test key, match a route's
// method, escaped path and JSON body, and fails the test on any other. It
// returns the server and the number of requests it received.
func fakeBackoffice(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("Authorization") != "Bearer "+testBackofficeKey {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"object":"error","message":"invalid Backoffice key","type":"authentication_error","param":null,"code":null}`)
			return
		}
		raw, _ := io.ReadAll(r.Body)
		body := ""
		if len(raw) > 0 {
			if ct := r.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("%s %s: Content-Type %q", r.Method, r.URL.EscapedPath(), ct)
			}
			body = normalJSON(t, string(raw))
		}
		for _, rt := range fakeRoutes {
			if rt.method != r.Method || rt.path != r.URL.EscapedPath() {
				continue
			}
			if want := rt.body; (want == "" && body != "") || (want != "" && normalJSON(t, want) != body) {
				continue
			}
			if rt.status == http.StatusNoContent {
				w.WriteHeader(rt.status)
				return
			}
			w.WriteHeader(rt.status)
			io.WriteString(w, rt.answer)
			return
		}
		t.Errorf("unexpected request %s %s %s", r.Method, r.URL.EscapedPath(), raw)
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"object":"error","message":"no such route in the fake","type":"not_found_error"}`)
	}))
	t.Cleanup(srv.Close)
	return srv, &requests
}

// runAgainst runs steward backoffice against srv with the test key.
func runAgainst(t *testing.T, srv *httptest.Server, args ...string) (int, string, string) {
	t.Helper()
	return run(t, nil, append(append([]string{"backoffice"}, args...), "--url", srv.URL, "--key", testBackofficeKey)...)
}

var columnGap = regexp.MustCompile(`\s{2,}`)

// tableRows splits an aligned table into its cells.
func tableRows(out string) [][]string {
	var rows [][]string
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		rows = append(rows, columnGap.Split(strings.TrimSpace(line), -1))
	}
	return rows
}

func TestBackofficeTables(t *testing.T) {
	srv, _ := fakeBackoffice(t)
	for _, tc := range []struct {
		args   []string
		header []string
		row    []string
	}{
		{[]string{"orgs", "list"}, []string{"ID", "NAME", "MEMBERS", "CREATED"},
			[]string{"org_1", "Acme", "12", "2025-03-04T05:06:07Z"}},
		{[]string{"admin-keys", "list"}, []string{"ID", "NAME", "ORGANIZATION", "KEY", "CREATED", "LAST USED", "EXPIRES"},
			[]string{"akey_1", "ci", "Acme", "stwa_…x9Qz", "2025-03-04T05:06:07Z", "never", "-"}},
		{[]string{"admin-keys", "list"}, []string{"ID", "NAME", "ORGANIZATION", "KEY", "CREATED", "LAST USED", "EXPIRES"},
			[]string{"akey_2", "terraform", "Globex", "stwa_…k2Lm", "2025-03-05T00:00:00Z", "2025-06-01T09:30:00Z", "2030-12-31T00:00:00Z"}},
		{[]string{"members", "list"}, []string{"USER ID", "EMAIL", "NAME", "ADMIN OF"},
			[]string{"user_7", "ada@acme.example", "Ada Lovelace", "org_1"}},
		{[]string{"members", "list"}, []string{"USER ID", "EMAIL", "NAME", "ADMIN OF"},
			[]string{"user_8", "bob@acme.example", "-", "-"}},
	} {
		code, stdout, stderr := runAgainst(t, srv, tc.args...)
		if code != 0 {
			t.Fatalf("%v: exit %d, stderr %q", tc.args, code, stderr)
		}
		rows := tableRows(stdout)
		if !reflect.DeepEqual(rows[0], tc.header) {
			t.Errorf("%v: header %q, want %q", tc.args, rows[0], tc.header)
		}
		found := false
		for _, r := range rows[1:] {
			found = found || reflect.DeepEqual(r, tc.row)
		}
		if !found {
			t.Errorf("%v: no row %q in\n%s", tc.args, tc.row, stdout)
		}
	}
}

func TestBackofficeConfirmations(t *testing.T) {
	srv, _ := fakeBackoffice(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"orgs", "create", "--name", "Initech"}, "created Organization Initech (org_3)\n"},
		{[]string{"orgs", "promote", "--org", "org_1", "--member", "user_7"}, "ada@acme.example is now an organization_admin of org_1\n"},
		{[]string{"admin-keys", "delete", "akey_1"}, "deleted admin API key akey_1\n"},
		{[]string{"admin-keys", "delete", "akey/../x"}, "deleted admin API key akey/../x\n"},
		{[]string{"members", "add", "--user", "user_9"}, "added cy@acme.example (user_9)\n"},
		{[]string{"members", "add", "--email", "new@acme.example"}, "added new@acme.example (user_10)\n"},
		{[]string{"members", "remove", "user_8"}, "removed member user_8 from the Enterprise Account\n"},
	} {
		code, stdout, stderr := runAgainst(t, srv, tc.args...)
		if code != 0 || stdout != tc.want {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want %q", tc.args, code, stdout, stderr, tc.want)
		}
	}
	// Flags may also come before a positional argument.
	code, stdout, stderr := run(t, nil, "backoffice", "members", "remove", "--url", srv.URL, "--key", testBackofficeKey, "user_8")
	if code != 0 || !strings.Contains(stdout, "user_8") {
		t.Errorf("flags before USER_ID: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

func TestBackofficeAdminKeyCreatePrintsSecretOnce(t *testing.T) {
	srv, _ := fakeBackoffice(t)
	for _, args := range [][]string{
		{"admin-keys", "create", "--org", "org_1", "--name", "deploy"},
		{"admin-keys", "create", "--org", "org_1", "--name", "deploy", "--expires", "2030-12-31"},
	} {
		code, stdout, stderr := runAgainst(t, srv, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d, stderr %q", args, code, stderr)
		}
		if !strings.Contains(stdout, "Admin API key  "+testAdminSecret+"\n") || !strings.Contains(stdout, "shown only once") {
			t.Errorf("%v printed no secret and warning:\n%s", args, stdout)
		}
		if i, j := strings.Index(stdout, testAdminSecret), strings.Index(stdout, "akey_"); j < i {
			t.Errorf("%v: the key id is not after the secret:\n%s", args, stdout)
		}
	}
}

func TestBackofficeJSONPrintsTheServerAnswer(t *testing.T) {
	srv, _ := fakeBackoffice(t)
	for _, tc := range []struct {
		args   []string
		answer int // index in fakeRoutes
	}{
		{[]string{"orgs", "list"}, 0},
		{[]string{"orgs", "create", "--name", "Initech"}, 1},
		{[]string{"orgs", "promote", "--org", "org_1", "--member", "user_7"}, 3},
		{[]string{"admin-keys", "list"}, 4},
		{[]string{"admin-keys", "create", "--org", "org_1", "--name", "deploy"}, 5},
		{[]string{"members", "list"}, 10},
		{[]string{"members", "add", "--user", "user_9"}, 11},
	} {
		code, stdout, stderr := runAgainst(t, srv, append(tc.args, "--json")...)
		if code != 0 {
			t.Fatalf("%v --json: exit %d, stderr %q", tc.args, code, stderr)
		}
		if got, want := normalJSON(t, stdout), normalJSON(t, fakeRoutes[tc.answer].answer); got != want {
			t.Errorf("%v --json printed %s, want the server's %s", tc.args, got, want)
		}
		if !strings.Contains(stdout, "\n  \"") {
			t.Errorf("%v --json is not indented:\n%s", tc.args, stdout)
		}
	}
	if code, stdout, _ := runAgainst(t, srv, "admin-keys", "delete", "akey_1", "--json"); code != 0 || stdout != "" {
		t.Errorf("delete --json: exit %d, stdout %q; want nothing for a 204", code, stdout)
	}
}

func TestBackofficeKey(t *testing.T) {
	srv, requests := fakeBackoffice(t)
	code, stdout, stderr := run(t, nil, "backoffice", "orgs", "list", "--url", srv.URL)
	if code != 2 || stdout != "" || !strings.Contains(stderr, "--key") || !strings.Contains(stderr, "STEWARD_BACKOFFICE_KEY") {
		t.Errorf("no key: exit %d, stdout %q, stderr %q; want exit 2 naming --key and STEWARD_BACKOFFICE_KEY", code, stdout, stderr)
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("a command without a key sent %d requests", n)
	}
	env := map[string]string{"STEWARD_URL": srv.URL, "STEWARD_BACKOFFICE_KEY": testBackofficeKey}
	if code, stdout, stderr := run(t, env, "backoffice", "orgs", "list"); code != 0 || !strings.Contains(stdout, "org_1") {
		t.Errorf("key and URL from the environment: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	// A flag overrides the environment.
	env["STEWARD_URL"] = "http://127.0.0.1:1"
	if code, _, stderr := run(t, env, "backoffice", "orgs", "list", "--url", srv.URL); code != 0 {
		t.Errorf("--url over STEWARD_URL: exit %d, stderr %q", code, stderr)
	}
	code, stdout, stderr = run(t, env, "backoffice", "orgs", "list", "--url", srv.URL, "--key", "stwb_wrong")
	if code != 1 || stderr != "steward backoffice: invalid Backoffice key (HTTP 401)\n" || stdout != "" {
		t.Errorf("wrong --key over the environment: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

func TestBackofficeServerErrors(t *testing.T) {
	srv, _ := fakeBackoffice(t)
	code, stdout, stderr := runAgainst(t, srv, "orgs", "create", "--name", "Acme")
	if want := "steward backoffice: an Organization named Acme already exists (HTTP 409)\n"; code != 1 || stderr != want || stdout != "" {
		t.Errorf("error object: exit %d, stdout %q, stderr %q; want exit 1 and %q", code, stdout, stderr, want)
	}
	code, stdout, stderr = runAgainst(t, srv, "admin-keys", "create", "--org", "org_1", "--name", "old", "--expires", "2000-01-01")
	if want := "steward backoffice: body.expires_at: expiration must be in the future (HTTP 422)\n"; code != 1 || stderr != want || stdout != "" {
		t.Errorf("validation detail: exit %d, stdout %q, stderr %q; want exit 1 and %q", code, stdout, stderr, want)
	}
}

func TestBackofficeErrorMessageShapes(t *testing.T) {
	for _, tc := range []struct {
		body   string
		status int
		want   string
	}{
		{`{"detail":[{"loc":["body","name"],"msg":"name must not be empty"},{"loc":["body","items",0],"msg":"bad"}]}`, 422, "body.name: name must not be empty; body.items.0: bad"},
		{`{"detail":"Not Found"}`, 404, "Not Found"},
		{`<html>Bad Gateway</html>`, 502, "the server answered Bad Gateway"},
		{`{"object":"error","message":"line\u001b[2Jbreak"}`, 400, "line [2Jbreak"},
	} {
		if got := errorMessage([]byte(tc.body), tc.status); got != tc.want {
			t.Errorf("errorMessage(%s) = %q, want %q", tc.body, got, tc.want)
		}
	}
}

func TestBackofficeUsageErrors(t *testing.T) {
	srv, requests := fakeBackoffice(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"admin-keys", "create", "--org", "org_1", "--name", "k", "--expires", "2030-13-01"}, "--expires"},
		{[]string{"admin-keys", "create", "--org", "org_1", "--name", "k", "--expires", "31/12/2030"}, "YYYY-MM-DD"},
		{[]string{"admin-keys", "create", "--org", "org_1"}, "missing --name"},
		{[]string{"members", "add"}, "exactly one of --user"},
		{[]string{"members", "add", "--user", "user_9", "--email", "cy@acme.example"}, "exactly one of --user"},
		{[]string{"orgs", "create"}, "missing --name"},
		{[]string{"orgs", "promote", "--org", "org_1"}, "missing --member"},
		{[]string{"admin-keys", "delete"}, "missing KEY_ID"},
		{[]string{"members", "remove", ".."}, "is not an ID"},
		{[]string{"members", "remove", "user_8", "user_9"}, "unexpected arguments: user_9"},
		{[]string{"orgs", "list", "--frob"}, "flag provided but not defined"},
	} {
		code, stdout, stderr := runAgainst(t, srv, tc.args...)
		if code != 2 || stdout != "" || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2 saying %q", tc.args, code, stdout, stderr, tc.want)
		}
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("wrong command lines sent %d requests", n)
	}
	for _, u := range []string{"127.0.0.1:8080", "localhost:8080", "ftp://example.com", "http://example.com/?q=1"} {
		code, stdout, stderr := run(t, nil, "backoffice", "orgs", "list", "--url", u, "--key", testBackofficeKey)
		if code != 2 || stdout != "" || !strings.Contains(stderr, "--url must be") {
			t.Errorf("--url %s: exit %d, stdout %q, stderr %q; want exit 2", u, code, stdout, stderr)
		}
	}
	for _, args := range [][]string{{"backoffice"}, {"backoffice", "frob"}, {"backoffice", "orgs"}, {"backoffice", "orgs", "frob"}} {
		code, stdout, stderr := run(t, nil, args...)
		if code != 2 || stdout != "" || strings.Count(stderr, "\n  ") != len(backofficeCommands()) ||
			!strings.Contains(stderr, "admin-keys create --org ORG_ID --name NAME [--expires YYYY-MM-DD]") {
			t.Errorf("%v: exit %d, stdout %q, stderr:\n%s\nwant exit 2 and every command", args, code, stdout, stderr)
		}
		if strings.Contains(strings.Join(args, " "), "frob") && !strings.Contains(stderr, "unknown command") {
			t.Errorf("%v: stderr does not say the command is unknown:\n%s", args, stderr)
		}
	}
}

func TestBackofficeSecretsAreNotPrinted(t *testing.T) {
	srv, _ := fakeBackoffice(t)
	env := map[string]string{"STEWARD_URL": srv.URL, "STEWARD_BACKOFFICE_KEY": testBackofficeKey}
	for _, args := range [][]string{
		{"orgs", "list"},
		{"orgs", "create", "--name", "Initech"},
		{"orgs", "create", "--name", "Acme"},
		{"orgs", "promote", "--org", "org_1", "--member", "user_7"},
		{"admin-keys", "list"},
		{"admin-keys", "list", "--json"},
		{"admin-keys", "create", "--org", "org_1", "--name", "deploy"},
		{"admin-keys", "create", "--org", "org_1", "--name", "old", "--expires", "2000-01-01"},
		{"admin-keys", "delete", "akey_1"},
		{"members", "list"},
		{"members", "add", "--email", "new@acme.example"},
		{"members", "remove", "user_8"},
		{"members", "remove", "-h"},
		{"orgs", "list", "--url", "http://127.0.0.1:1"},
	} {
		_, stdout, stderr := run(t, env, append([]string{"backoffice"}, args...)...)
		if strings.Contains(stdout+stderr, testBackofficeKey) {
			t.Errorf("%v printed the Backoffice key:\n%s%s", args, stdout, stderr)
		}
		creates := args[0] == "admin-keys" && args[1] == "create" && args[len(args)-1] == "deploy"
		if printed := strings.Contains(stdout+stderr, testAdminSecret); printed != creates {
			t.Errorf("%v: admin key secret printed %v, want %v:\n%s%s", args, printed, creates, stdout, stderr)
		}
	}
}

func TestBackofficeConnectionRefused(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	code, stdout, stderr := run(t, nil, "backoffice", "members", "list", "--url", url, "--key", testBackofficeKey)
	if code != 1 || stdout != "" || !strings.Contains(stderr, "could not reach") || !strings.Contains(stderr, url) || !strings.Contains(stderr, "--url") {
		t.Errorf("connection refused: exit %d, stdout %q, stderr %q; want exit 1 naming %s and --url", code, stdout, stderr, url)
	}
	if strings.Count(stderr, "steward backoffice:") != 1 {
		t.Errorf("connection refused: prefix not printed exactly once: %q", stderr)
	}
}
