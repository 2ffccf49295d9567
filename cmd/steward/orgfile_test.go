package main

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// steward runs the real binary as a client of base with the Admin API key,
// and returns its exit status and output.
func steward(t *testing.T, base, key string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), "STEWARD_URL="+base, "STEWARD_ADMIN_KEY="+key)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatalf("steward %v: %v", args, err)
	}
	return code, stdout.String(), stderr.String()
}

// writeFile writes a file in the test's directory and returns its path.
func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// wantPlan runs steward plan and checks its exit status and that its
// output holds each of lines.
func wantPlan(t *testing.T, base, key, file string, wantCode int, lines ...string) string {
	t.Helper()
	code, out, stderr := steward(t, base, key, "plan", "-f", file)
	if code != wantCode {
		t.Fatalf("plan: exit %d, want %d\n%s%s", code, wantCode, out, stderr)
	}
	for _, l := range lines {
		if !strings.Contains(out, l) {
			t.Errorf("plan does not say %q:\n%s", l, out)
		}
	}
	return out
}

const changedOrg = `version: 1
organization:
  time_zone: Europe/Paris
rate_limit:
  requests_per_second: 10
  tokens_limits_by_model:
    mistral-small: {tokens_per_minute: 5000}
spend_limit: {amount: 500}
key_policy: {max_expiration_days: 90}
custom_roles:
  - name: auditor
    scope: organization
    permissions: [members.read]
  - name: reviewer
    scope: workspace
    permissions: [workspace.usage.read]
workspaces:
  - name: Default Workspace
  - name: Lab
  - name: Research
    description: models for research
    spend_limit: {amount: 100}
groups:
  - name: Platform team
    description: runs the platform
    organization_role: billing_manager
    members: [admin@example.com]
    nested: [On call]
    workspaces:
      Research: [workspace_admin]
  - name: On call
members:
  - email: admin@example.com
    roles: [organization_admin]
  - email: bob@example.com
    roles: [auditor]
    workspaces:
      Default Workspace: [dev]
      Lab: [reviewer]
      Research: [M, reviewer]
`

// TestExportPlanApply runs steward export, plan and apply as CI would,
// against the real binary on each engine.
func TestExportPlanApply(t *testing.T) {
	engines(t, func(t *testing.T, db []string) {
		p := start(t, db...)
		m := adminKey.FindStringSubmatch(p.output)
		if m == nil {
			t.Fatalf("no admin key printed:\n%s", p.output)
		}
		base, key := p.base, m[1]
		if status, body := p.call(t, "POST", "/v1/admin/users", key, `[{"email": "bob@example.com", "first_name": "Bob", "last_name": "Lee", "role_names": ["member"]}]`); status != 200 {
			t.Fatalf("create a member: %d %s", status, body)
		}

		code, exported, stderr := steward(t, base, key, "export")
		if code != 0 || !strings.Contains(exported, "name: Default Workspace") || strings.Contains(exported, "stwa_") {
			t.Fatalf("export: exit %d\n%s%s", code, exported, stderr)
		}
		wantPlan(t, base, key, writeFile(t, "org.yaml", exported), 0, "No changes")

		changed := writeFile(t, "changed.yaml", changedOrg)
		wantPlan(t, base, key, changed, 2,
			"~ organization \"time zone\"\n      time_zone: \"UTC\" -> \"Europe/Paris\"",
			"+ workspace \"Research\"", "+ custom role \"auditor\"", "+ group \"Platform team\"",
			"      + member admin@example.com\n      + workspace Research: workspace_admin",
			"~ group \"Platform team\"\n      nested: (none) -> \"On call\"",
			"      organization_role: (none) -> \"billing_manager\"",
			"~ member \"bob@example.com\"\n      roles: \"member\" -> \"auditor, member\"",
			"~ workspace member \"bob@example.com in Default Workspace\"\n      roles: \"workspace_contributor\" -> \"dev\"",
			"+ workspace member \"bob@example.com in Research\"\n      roles: (none) -> \"reviewer, workspace_contributor\"",
			"Plan: 8 to create, 8 to update, 0 to delete.")
		code, out, stderr := steward(t, base, key, "apply", "-f", changed)
		if code != 0 || !strings.Contains(out, "Applied 16 changes.") {
			t.Fatalf("apply: exit %d\n%s%s", code, out, stderr)
		}
		wantPlan(t, base, key, changed, 0, "No changes")

		// The group's Organization role, bob's custom role and his direct
		// Workspace roles are exported, and a file that spells the same
		// roles with letters and UUIDs plans no change.
		code, exported, stderr = steward(t, base, key, "export")
		for _, want := range []string{"organization_role: billing_manager", "      - auditor\n      - member\n", "      Research:\n        - reviewer\n        - workspace_contributor\n"} {
			if code != 0 || !strings.Contains(exported, want) {
				t.Fatalf("export does not say %q: exit %d\n%s%s", want, code, exported, stderr)
			}
		}
		wantPlan(t, base, key, writeFile(t, "exported.yaml", exported), 0, "No changes")
		spelled := strings.Replace(changedOrg, "organization_role: billing_manager", "organization_role: B", 1)
		spelled = strings.Replace(spelled, "roles: [auditor]", "roles: [auditor, 0d48f530-095c-43fe-8aea-6673bcacabe6]", 1)
		spelled = strings.Replace(spelled, "Research: [M, reviewer]", "Research: [b23cd6e0-91cd-4a8a-9869-b30366bf3966, reviewer]", 1)
		wantPlan(t, base, key, writeFile(t, "spelled.yaml", spelled), 0, "No changes")

		// A change to each plans and applies, then plans no change.
		moved := strings.Replace(changedOrg, "organization_role: billing_manager", "organization_role: member", 1)
		moved = strings.Replace(moved, "roles: [auditor]", "roles: [billing_manager]", 1)
		moved = strings.Replace(moved, "Research: [M, reviewer]", "Research: [reviewer]", 1)
		movedFile := writeFile(t, "moved.yaml", moved)
		wantPlan(t, base, key, movedFile, 2,
			"~ group \"Platform team\"\n      organization_role: \"billing_manager\" -> \"member\"",
			"~ member \"bob@example.com\"\n      roles: \"auditor, member\" -> \"billing_manager\"",
			"~ workspace member \"bob@example.com in Research\"\n      roles: \"reviewer, workspace_contributor\" -> \"reviewer\"",
			"Plan: 0 to create, 3 to update, 0 to delete.")
		if code, out, stderr := steward(t, base, key, "apply", "-f", movedFile); code != 0 || !strings.Contains(out, "Applied 3 changes.") {
			t.Fatalf("apply: exit %d\n%s%s", code, out, stderr)
		}
		wantPlan(t, base, key, movedFile, 0, "No changes")
		wantPlan(t, base, key, changed, 2, "Plan: 0 to create, 3 to update, 0 to delete.")
		if code, out, stderr := steward(t, base, key, "apply", "-f", changed); code != 0 || !strings.Contains(out, "Applied 3 changes.") {
			t.Fatalf("apply: exit %d\n%s%s", code, out, stderr)
		}
		if status, body := p.get(t, "/v1/admin/organization", key); status != 200 || !strings.Contains(body, `"time_zone":"Europe/Paris"`) {
			t.Errorf("organization after apply: %d %s", status, body)
		}

		// A file without the group On call and the Workspace Research
		// deletes neither without --prune.
		smaller := strings.Replace(changedOrg, "    nested: [On call]\n", "", 1)
		smaller = strings.Replace(smaller, "  - name: On call\n", "", 1)
		smaller = strings.Replace(smaller, "    workspaces:\n      Research: [workspace_admin]\n", "", 1)
		smaller = strings.Replace(smaller, "  - name: Research\n    description: models for research\n    spend_limit: {amount: 100}\n", "", 1)
		smaller = strings.Replace(smaller, "      Lab: [reviewer]\n      Research: [M, reviewer]\n", "", 1)
		pruned := writeFile(t, "pruned.yaml", smaller)
		wantPlan(t, base, key, pruned, 2, "  group \"On call\"\n      not in the file: kept (--prune deletes it)", "  workspace \"Research\"\n",
			"  workspace member \"bob@example.com in Lab\"\n      not in the file: kept (--prune deletes it)", "  workspace member \"bob@example.com in Research\"\n")
		if code, out, stderr := steward(t, base, key, "apply", "-f", pruned); code != 0 || strings.Contains(out, "applied: delete") {
			t.Fatalf("apply without --prune: exit %d\n%s%s", code, out, stderr)
		}
		if status, body := p.get(t, "/v1/admin/user-groups", key); status != 200 || !strings.Contains(body, `"On call"`) {
			t.Fatalf("apply without --prune deleted a group: %d %s", status, body)
		}
		code, out, _ = steward(t, base, key, "plan", "--prune", "-f", pruned)
		// Research's members go with it: only Lab's is taken out.
		if code != 2 || !strings.Contains(out, "- group \"On call\"") || !strings.Contains(out, "- workspace \"Research\"") ||
			!strings.Contains(out, "- workspace member \"bob@example.com in Lab\"") || strings.Contains(out, "bob@example.com in Research") {
			t.Fatalf("plan --prune: exit %d\n%s", code, out)
		}
		if code, out, stderr := steward(t, base, key, "apply", "--prune", "-f", pruned); code != 0 || !strings.Contains(out, "applied: delete group \"On call\"") ||
			!strings.Contains(out, "applied: delete workspace member \"bob@example.com in Lab\"") {
			t.Fatalf("apply --prune: exit %d\n%s%s", code, out, stderr)
		}
		if code, out, _ := steward(t, base, key, "plan", "--prune", "-f", pruned); code != 0 {
			t.Fatalf("plan --prune after apply --prune: exit %d\n%s", code, out)
		}
		if status, body := p.get(t, "/v1/admin/user-groups", key); status != 200 || strings.Contains(body, `"On call"`) {
			t.Fatalf("apply --prune kept the group: %d %s", status, body)
		}

		// A refusal midway: the Workspace is created, the group's role is
		// refused, and the member change after it is not made.
		refused := strings.Replace(smaller, "  - name: Default Workspace\n", "  - name: Default Workspace\n  - name: Later\n", 1)
		refused = strings.Replace(refused, "    members: [admin@example.com]\n", "    members: [admin@example.com]\n    workspaces:\n      Later: [no_such_role]\n", 1)
		refused = strings.Replace(refused, "time_zone: Europe/Paris", "time_zone: Europe/Berlin", 1)
		code, out, stderr = steward(t, base, key, "apply", "-f", writeFile(t, "refused.yaml", refused))
		if code != 1 || !strings.Contains(out, "applied: update organization \"time zone\"\napplied: create workspace \"Later\"\nStopped after 2 of 3 changes.") ||
			!strings.Contains(stderr, "update group \"Platform team\"") || !strings.Contains(stderr, "role_names") {
			t.Fatalf("apply with a refusal: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, stderr)
		}
	})
}

// TestPlanAgainstAServerWithoutExtensions plans against a server that, like
// Mistral's Admin API, answers 404 to Steward's extensions: those parts of
// the file are reported as not supported and the rest is planned.
func TestPlanAgainstAServerWithoutExtensions(t *testing.T) {
	p := start(t, "--data-dir", t.TempDir())
	m := adminKey.FindStringSubmatch(p.output)
	if m == nil {
		t.Fatalf("no admin key printed:\n%s", p.output)
	}
	upstream, err := url.Parse(p.base)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(upstream)
	extensions := []string{"/v1/admin/organization", "/v1/admin/custom-roles", "/v1/admin/api-key-policy"}
	mistral := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, e := range extensions {
			if strings.HasPrefix(r.URL.Path, e) || (r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/rate-limit")) || strings.HasSuffix(r.URL.Path, "/allowed-models") {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusNotFound)
				w.Write([]byte(`{"detail":"Not Found"}`))
				return
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	defer mistral.Close()

	code, exported, stderr := steward(t, mistral.URL, m[1], "export")
	if code != 0 || strings.Contains(exported, "time_zone") || strings.Contains(exported, "custom_roles") || !strings.Contains(exported, "does not serve Steward's extensions") {
		t.Fatalf("export: exit %d\n%s%s", code, exported, stderr)
	}
	file := writeFile(t, "org.yaml", `version: 1
organization: {time_zone: Europe/Paris}
custom_roles:
  - {name: auditor, scope: organization, permissions: [members.read]}
workspaces:
  - name: Default Workspace
  - name: Research
    model_access: {allowed_models: [mistral-small]}
api_keys:
  - id: 00000000-0000-4000-8000-000000000000
    model_access: {allowed_models: []}
webhooks:
  - {url: "https://siem.example.com/steward?token=t", events: ["*"]}
`)
	wantPlan(t, mistral.URL, m[1], file, 2,
		"! organization \"time zone\"  (not supported by this server: a Steward extension)",
		"! custom role \"auditor\"  (not supported by this server: a Steward extension)",
		"+ workspace \"Research\"",
		"! allowed models \"workspace Research\"  (not supported by this server: a Steward extension)",
		"! allowed models \"key 00000000-0000-4000-8000-000000000000\"  (not supported by this server: a Steward extension)",
		"! webhook \"https://siem.example.com/steward?...\"  (not supported by this server: a Steward extension)",
		"Plan: 1 to create, 0 to update, 0 to delete. 5 not supported by this server.")
	code, out, stderr := steward(t, mistral.URL, m[1], "apply", "-f", file)
	if code != 0 || !strings.Contains(out, "Applied 1 changes.") {
		t.Fatalf("apply: exit %d\n%s%s", code, out, stderr)
	}
	wantPlan(t, mistral.URL, m[1], file, 0, "No changes", "5 not supported by this server.")
}

// TestExportPlanApplyModelAccess: the allow lists of models of Workspaces
// and keys go through export, plan and apply, against the real binary, and
// the model API holds the key to them.
func TestExportPlanApplyModelAccess(t *testing.T) {
	engines(t, func(t *testing.T, db []string) {
		p := start(t, append(db, "--demo-model")...)
		m := adminKey.FindStringSubmatch(p.output)
		if m == nil {
			t.Fatalf("no admin key printed:\n%s", p.output)
		}
		base, admin := p.base, m[1]
		keyID, secret := p.workspaceKey(t, admin)
		demo := `{"model":"steward-demo","messages":[{"role":"user","content":"hello"}]}`
		chat := func(want int) {
			t.Helper()
			resp, body, err := p.chat(secret, demo)
			if err != nil || resp.StatusCode != want {
				t.Fatalf("chat: %v %v %s, want %d", resp.Status, err, body, want)
			}
		}

		restricted := `version: 1
workspaces:
  - name: Default Workspace
    model_access: {allowed_models: [steward-demo]}
api_keys:
  - id: ` + keyID + `
    model_access: {allowed_models: []}
`
		file := writeFile(t, "models.yaml", restricted)
		wantPlan(t, base, admin, file, 2,
			"~ allowed models \"workspace Default Workspace\"\n      allowed_models: every model -> steward-demo",
			"~ allowed models \"key stwk", "      allowed_models: every model -> no model",
			"Plan: 0 to create, 2 to update, 0 to delete.")
		if code, out, stderr := steward(t, base, admin, "apply", "-f", file); code != 0 || !strings.Contains(out, "Applied 2 changes.") {
			t.Fatalf("apply: exit %d\n%s%s", code, out, stderr)
		}
		wantPlan(t, base, admin, file, 0, "No changes")
		chat(http.StatusNotFound)
		if status, body := p.call(t, "GET", "/v1/admin/api-keys/"+keyID+"/allowed-models", admin, ""); status != 200 ||
			body != `{"allowed_models":[],"workspace_allowed_models":["steward-demo"],"effective_allowed_models":[]}` {
			t.Fatalf("the key's lists after apply: %d %s", status, body)
		}

		code, exported, stderr := steward(t, base, admin, "export")
		for _, want := range []string{"  - name: Default Workspace\n", "    model_access:\n      allowed_models:\n        - steward-demo\n",
			"api_keys:\n  - id: " + keyID + "\n    model_access:\n      allowed_models: []\n"} {
			if code != 0 || !strings.Contains(exported, want) {
				t.Fatalf("export does not say %q: exit %d\n%s%s", want, code, exported, stderr)
			}
		}
		wantPlan(t, base, admin, writeFile(t, "exported.yaml", exported), 0, "No changes")

		// A file that lists no key leaves the key's list without --prune,
		// and removes it with.
		unlisted := writeFile(t, "unlisted.yaml", strings.Replace(restricted, "api_keys:\n  - id: "+keyID+"\n    model_access: {allowed_models: []}\n", "api_keys: []\n", 1))
		wantPlan(t, base, admin, unlisted, 0, "  allowed models \"key stwk", "not in the file: kept (--prune deletes it)")
		if code, out, _ := steward(t, base, admin, "plan", "--prune", "-f", unlisted); code != 2 || !strings.Contains(out, "- allowed models \"key stwk") {
			t.Fatalf("plan --prune: exit %d\n%s", code, out)
		}
		if code, out, stderr := steward(t, base, admin, "apply", "--prune", "-f", unlisted); code != 0 || !strings.Contains(out, "Applied 1 changes.") {
			t.Fatalf("apply --prune: exit %d\n%s%s", code, out, stderr)
		}
		chat(http.StatusOK)

		// Every model again, through the Workspace's entry.
		every := writeFile(t, "every.yaml", strings.Replace(restricted, "[steward-demo]", "null", 1))
		wantPlan(t, base, admin, every, 2, "allowed_models: steward-demo -> every model", "allowed_models: every model -> no model")

		// Refusals: a model the server does not serve, a key it does not have.
		typo := writeFile(t, "typo.yaml", strings.Replace(restricted, "[steward-demo]", "[steward-demo, stewart-demo]", 1))
		if code, out, stderr := steward(t, base, admin, "apply", "-f", typo); code != 1 || !strings.Contains(stderr, `stewart-demo`) ||
			!strings.Contains(stderr, "is not a model this server serves") {
			t.Fatalf("apply with an unknown model: exit %d\n%s%s", code, out, stderr)
		}
		stranger := writeFile(t, "stranger.yaml", strings.Replace(restricted, keyID, "00000000-0000-4000-8000-000000000000", 1))
		if code, out, stderr := steward(t, base, admin, "plan", "-f", stranger); code != 1 ||
			!strings.Contains(stderr, "api_keys: the Organization has no API key 00000000-0000-4000-8000-000000000000") {
			t.Fatalf("plan with an unknown key: exit %d\n%s%s", code, out, stderr)
		}
	})
}

// TestExportPlanApplyWebhooks: webhook endpoints go through export, plan
// and apply, found by URL, without their secrets.
func TestExportPlanApplyWebhooks(t *testing.T) {
	engines(t, func(t *testing.T, db []string) {
		// Deliveries go to a closed port on loopback, and fail there.
		p := start(t, append(db, "--webhooks-allow-private")...)
		m := adminKey.FindStringSubmatch(p.output)
		if m == nil {
			t.Fatalf("no admin key printed:\n%s", p.output)
		}
		base, key := p.base, m[1]
		if code, exported, stderr := steward(t, base, key, "export"); code != 0 || !strings.Contains(exported, "webhooks: []\n") {
			t.Fatalf("export: exit %d\n%s%s", code, exported, stderr)
		}

		hooks := `version: 1
webhooks:
  - url: http://127.0.0.1:9/siem?token=receivers-token
    description: SIEM
    events: [limit.*, api_key.*]
  - url: http://127.0.0.1:9/off
    events: ["*"]
    enabled: false
`
		file := writeFile(t, "hooks.yaml", hooks)
		out := wantPlan(t, base, key, file, 2,
			"+ webhook \"http://127.0.0.1:9/siem?...\"\n      events: (none) -> \"api_key.*, limit.*\"\n      description: (none) -> \"SIEM\"\n      signing secret: not shown; steward webhooks rotate-secret ID gives one",
			"+ webhook \"http://127.0.0.1:9/off\"\n      events: (none) -> \"*\"\n      enabled: false\n",
			"Plan: 2 to create, 0 to update, 0 to delete.")
		if strings.Contains(out, "receivers-token") {
			t.Errorf("the plan prints a URL's query:\n%s", out)
		}
		code, out, stderr := steward(t, base, key, "apply", "-f", file)
		if code != 0 || !strings.Contains(out, "Applied 2 changes.") || strings.Contains(out, "whsec_") || strings.Contains(stderr, "whsec_") {
			t.Fatalf("apply: exit %d\n%s%s", code, out, stderr)
		}
		wantPlan(t, base, key, file, 0, "No changes")
		status, body := p.get(t, "/v1/admin/webhooks", key)
		if status != 200 || !strings.Contains(body, `"url":"http://127.0.0.1:9/siem?token=receivers-token"`) || !strings.Contains(body, `"events":["api_key.*","limit.*"]`) ||
			!strings.Contains(body, `"enabled":false`) || strings.Count(body, `"id":`) != 2 {
			t.Fatalf("endpoints after apply: %d %s", status, body)
		}

		code, exported, stderr := steward(t, base, key, "export")
		if code != 0 || strings.Contains(exported, "whsec_") || !strings.Contains(exported,
			"webhooks:\n  - url: http://127.0.0.1:9/siem?token=receivers-token\n    description: SIEM\n    events:\n      - api_key.*\n      - limit.*\n    enabled: true\n  - url: http://127.0.0.1:9/off\n    events:\n      - '*'\n    enabled: false\n") {
			t.Fatalf("export: exit %d\n%s%s", code, exported, stderr)
		}
		wantPlan(t, base, key, writeFile(t, "exported.yaml", exported), 0, "No changes")

		// A change to each field, and an endpoint left out of the file,
		// kept without --prune and deleted with it.
		changed := writeFile(t, "changed.yaml", `version: 1
webhooks:
  - url: http://127.0.0.1:9/siem?token=receivers-token
    events: ["*"]
    enabled: false
`)
		wantPlan(t, base, key, changed, 2,
			"~ webhook \"http://127.0.0.1:9/siem?...\"\n      events: \"api_key.*, limit.*\" -> \"*\"\n      description: \"SIEM\" -> (none)\n      enabled: true -> false\n",
			"  webhook \"http://127.0.0.1:9/off\"\n      not in the file: kept (--prune deletes it)",
			"Plan: 0 to create, 1 to update, 0 to delete.")
		if code, out, stderr := steward(t, base, key, "apply", "--prune", "-f", changed); code != 0 || !strings.Contains(out, "applied: update webhook \"http://127.0.0.1:9/siem?...\"\napplied: delete webhook \"http://127.0.0.1:9/off\"\nApplied 2 changes.") {
			t.Fatalf("apply --prune: exit %d\n%s%s", code, out, stderr)
		}
		wantPlan(t, base, key, changed, 0, "No changes")
		status, body = p.get(t, "/v1/admin/webhooks", key)
		if status != 200 || strings.Count(body, `"id":`) != 1 || !strings.Contains(body, `"events":["*"]`) || !strings.Contains(body, `"description":""`) || !strings.Contains(body, `"enabled":false`) {
			t.Fatalf("endpoints after apply --prune: %d %s", status, body)
		}
	})
}
