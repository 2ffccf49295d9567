package cli

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/stewardhq/steward/api"
	"github.com/stewardhq/steward/internal/bootstrap"
	"github.com/stewardhq/steward/internal/server"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
)

// backofficeOperations names the command of steward backoffice that sends
// each Backoffice operation.
var backofficeOperations = map[string]string{
	"backoffice_get_enterprise_account":    "account get",
	"backoffice_rename_enterprise_account": "account rename",
	"backoffice_list_organizations":        "orgs list",
	"backoffice_create_organization":       "orgs create",
	"backoffice_promote_member":            "orgs promote",
	"backoffice_list_members":              "members list",
	"backoffice_add_member":                "members add",
	"backoffice_remove_member":             "members remove",
	"backoffice_list_admin_keys":           "admin-keys list",
	"backoffice_create_admin_key":          "admin-keys create",
	"backoffice_delete_admin_key":          "admin-keys delete",
	"backoffice_get_sso":                   "sso get",
	"backoffice_put_sso":                   "sso set",
	"backoffice_delete_sso":                "sso delete",
}

// TestEveryOperationHasACommand walks api/openapi.yaml and fails on an
// operation that no command sends, and on a command naming an operation
// the document does not have.
func TestEveryOperationHasACommand(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]yaml.Node `yaml:"paths"`
	}
	if err := yaml.Unmarshal(api.OpenAPIYAML, &doc); err != nil {
		t.Fatal(err)
	}
	reached := map[string]string{}
	for _, c := range adminCommands() {
		reached[c.op] = c.noun + " " + c.verb
	}
	backoffice := map[string]bool{}
	for _, c := range backofficeCommands() {
		backoffice[c.group+" "+c.verb] = true
	}
	for op, cmd := range backofficeOperations {
		if !backoffice[cmd] {
			t.Errorf("%s: steward backoffice %s does not exist", op, cmd)
		}
		reached[op] = "backoffice " + cmd
	}
	documented := map[string]bool{}
	for path, item := range doc.Paths {
		for method, n := range item {
			if method == "parameters" {
				continue
			}
			var op struct {
				OperationID string `yaml:"operationId"`
			}
			if err := n.Decode(&op); err != nil {
				t.Fatal(err)
			}
			documented[op.OperationID] = true
			if reached[op.OperationID] == "" {
				t.Errorf("%s %s (%s): no command sends it", strings.ToUpper(method), path, op.OperationID)
			}
		}
	}
	for op, cmd := range reached {
		if !documented[op] {
			t.Errorf("steward %s names %s, which api/openapi.yaml does not have", cmd, op)
		}
	}
	ops, err := apiOperations()
	if err != nil {
		t.Fatal(err)
	}
	if len(ops) != len(documented) {
		t.Errorf("the command line read %d operations, the document has %d", len(ops), len(documented))
	}
}

// adminServer starts Steward's real handler over db and returns the
// environment of a command line pointed at it.
func adminServer(t *testing.T, db *store.DB) (map[string]string, bootstrap.Result) {
	t.Helper()
	boot, err := bootstrap.Run(context.Background(), db, bootstrap.Options{Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Deps{DB: db, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), MaxBodyBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return map[string]string{"STEWARD_URL": hs.URL, "STEWARD_ADMIN_KEY": boot.AdminKeySecret}, boot
}

// TestAdminCommands runs Admin API commands against the real handler: flags
// become the body, tables print for people, --json for scripts.
func TestAdminCommands(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		env, boot := adminServer(t, db)
		must := func(args ...string) string {
			t.Helper()
			code, stdout, stderr := run(t, env, args...)
			if code != 0 {
				t.Fatalf("steward %s: exit %d\n%s", strings.Join(args, " "), code, stderr)
			}
			return stdout
		}
		var ws struct {
			UUID string `json:"uuid"`
			Name string `json:"name"`
		}
		if err := json.Unmarshal([]byte(must("workspaces", "create", "--name", "Research", "--admin-user-id", boot.Admin.ID, "--json")), &ws); err != nil || ws.Name != "Research" {
			t.Fatalf("workspaces create --json: %+v %v", ws, err)
		}
		if out := must("workspaces", "list"); !strings.Contains(out, "UUID") || !strings.Contains(out, ws.UUID+"  Research") {
			t.Errorf("workspaces list:\n%s", out)
		}
		var all []struct{ Name string }
		if err := json.Unmarshal([]byte(must("workspaces", "list", "--all", "--json")), &all); err != nil || len(all) != 2 {
			t.Errorf("workspaces list --all --json: %+v %v, want the default Workspace and Research", all, err)
		}
		must("limits", "set", "--requests-per-second", "5", "--tokens-limits-by-model", `{"mistral-small":{"tokens_per_minute":1000}}`)
		var limits struct {
			RPS    int            `json:"requests_per_second"`
			Models map[string]any `json:"tokens_limits_by_model"`
		}
		if err := json.Unmarshal([]byte(must("limits", "get", "--json")), &limits); err != nil || limits.RPS != 5 || limits.Models["mistral-small"] == nil {
			t.Errorf("limits get --json after limits set: %+v %v", limits, err)
		}
		var key struct {
			KeyID string `json:"key_id"`
		}
		if err := json.Unmarshal([]byte(must("keys", "create", "--workspace-uuid", ws.UUID, "--user-id", boot.Admin.ID, "--name", "ci", "--json")), &key); err != nil || key.KeyID == "" {
			t.Fatalf("keys create: %+v %v", key, err)
		}
		if out := must("keys", "rotate", key.KeyID, "--idempotency-key", "r1"); !strings.Contains(out, "key") {
			t.Errorf("keys rotate:\n%s", out)
		}
		out := must("audit", "tail", "--since", "1h", "--max", "3", "--interval", "100ms")
		if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 3 || !strings.Contains(out, "organization.create") {
			t.Errorf("audit tail --max 3: %d lines, want 3 from the first, organization.create:\n%s", len(lines), out)
		}
		type exportLine struct {
			EventType string `json:"event_type"`
			Seq       int64  `json:"seq"`
			Cursor    string `json:"cursor"`
		}
		var exported []exportLine
		for _, line := range strings.Split(strings.TrimSpace(must("audit", "export", "--limit", "2")), "\n") {
			var l exportLine
			if err := json.Unmarshal([]byte(line), &l); err != nil {
				t.Fatalf("audit export line %q: %v", line, err)
			}
			exported = append(exported, l)
		}
		if len(exported) != 2 || exported[0].EventType != "organization.create" || exported[1].Seq != 2 {
			t.Fatalf("audit export --limit 2: %+v", exported)
		}
		if out := must("audit", "export", "--limit", "1", "--cursor", exported[1].Cursor); !strings.Contains(out, `"seq":3`) || strings.Count(out, "\n") != 1 {
			t.Errorf("audit export from the second entry's cursor:\n%s", out)
		}
		code, _, stderr := run(t, env, "groups", "get", "00000000-0000-4000-8000-000000000001")
		if code != 1 || !strings.Contains(stderr, "no user group") || !strings.Contains(stderr, "HTTP 404") {
			t.Errorf("groups get of an unknown group: exit %d, stderr %q", code, stderr)
		}
		code, _, stderr = run(t, map[string]string{"STEWARD_URL": env["STEWARD_URL"]}, "users", "list")
		if code != 2 || !strings.Contains(stderr, "STEWARD_ADMIN_KEY") {
			t.Errorf("users list without a key: exit %d, stderr %q; want 2 naming STEWARD_ADMIN_KEY", code, stderr)
		}
	})
}

// TestExtensionNotServed: a server that is not Steward, such as Mistral's
// API, answers 404 to an extension; the command says so.
func TestExtensionNotServed(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`{"detail":"Not Found"}`))
	}))
	defer srv.Close()
	code, _, stderr := run(t, map[string]string{"STEWARD_URL": srv.URL, "STEWARD_ADMIN_KEY": "k"}, "organization", "get")
	if code != 1 || !strings.Contains(stderr, "is a Steward extension, which this server does not serve") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

// TestCompletion sources the bash script and completes commands, verbs and
// flags; the zsh script is checked by zsh when it is installed.
func TestCompletion(t *testing.T) {
	code, script, _ := run(t, nil, "completion", "bash")
	if code != 0 {
		t.Fatalf("completion bash: exit %d", code)
	}
	tests := []struct{ line, want string }{
		{"steward wor", "workspaces"},
		{"steward keys ro", "rotate"},
		{"steward limits set --requests-", "--requests-per-second"},
		{"steward backoffice acc", "account"},
		{"steward audit tail --ma", "--max"},
	}
	for _, tt := range tests {
		words := strings.Fields(tt.line)
		cmd := exec.Command("bash", append([]string{"-c", script + `
COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _steward; echo "${COMPREPLY[*]}"`, "bash"}, words...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("bash: %v\n%s", err, out)
		}
		if got := strings.TrimSpace(string(out)); got != tt.want {
			t.Errorf("%q completes to %q, want %q", tt.line, got, tt.want)
		}
	}
	code, script, _ = run(t, nil, "completion", "zsh")
	if code != 0 || !strings.HasPrefix(script, "#compdef steward") {
		t.Fatalf("completion zsh: exit %d\n%s", code, script)
	}
	if zsh, err := exec.LookPath("zsh"); err == nil {
		if out, err := exec.Command(zsh, "-n", "-c", script).CombinedOutput(); err != nil {
			t.Errorf("zsh -n: %v\n%s", err, out)
		}
	}
}

// TestConnectionUsage: the commands that talk to a server refuse, before
// sending anything, a command line without a key or with a base URL that is
// not http(s), and name what to fix.
func TestConnectionUsage(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"admin command, no key", nil, []string{"users", "list"}, "steward users list: a key is required: pass --key or set STEWARD_ADMIN_KEY"},
		{"admin command, bad URL", map[string]string{"STEWARD_ADMIN_KEY": "k"}, []string{"users", "list", "--url", "ftp://example.com"}, `--url must be an http:// or https:// URL such as ` + defaultServerURL + `, not "ftp://example.com"`},
		{"keyless command, bad URL", nil, []string{"server", "health", "--url", "steward.example.com"}, `not "steward.example.com"`},
		{"export, no key", map[string]string{"STEWARD_URL": "http://127.0.0.1:1"}, []string{"export"}, "steward export: a key is required: pass --key or set STEWARD_ADMIN_KEY"},
		{"export, bad URL", map[string]string{"STEWARD_URL": "127.0.0.1:1", "STEWARD_ADMIN_KEY": "k"}, []string{"export"}, `steward export: --url must be an http:// or https:// URL`},
		{"plan, no file", map[string]string{"STEWARD_ADMIN_KEY": "k"}, []string{"plan"}, "missing -f FILE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := run(t, tt.env, tt.args...)
			if code != 2 || stdout != "" || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 2 and %q", code, stdout, stderr, tt.want)
			}
		})
	}
}
