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
workspaces:
  - name: Default Workspace
  - name: Research
    description: models for research
    spend_limit: {amount: 100}
groups:
  - name: Platform team
    description: runs the platform
    members: [admin@example.com]
    nested: [On call]
    workspaces:
      Research: [workspace_admin]
  - name: On call
members:
  - email: admin@example.com
    roles: [organization_admin]
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
			"Plan: 4 to create, 6 to update, 0 to delete.")
		code, out, stderr := steward(t, base, key, "apply", "-f", changed)
		if code != 0 || !strings.Contains(out, "Applied 10 changes.") {
			t.Fatalf("apply: exit %d\n%s%s", code, out, stderr)
		}
		wantPlan(t, base, key, changed, 0, "No changes")
		if status, body := p.get(t, "/v1/admin/organization", key); status != 200 || !strings.Contains(body, `"time_zone":"Europe/Paris"`) {
			t.Errorf("organization after apply: %d %s", status, body)
		}

		// A file without the group On call and the Workspace Research
		// deletes neither without --prune.
		smaller := strings.Replace(changedOrg, "    nested: [On call]\n", "", 1)
		smaller = strings.Replace(smaller, "  - name: On call\n", "", 1)
		smaller = strings.Replace(smaller, "    workspaces:\n      Research: [workspace_admin]\n", "", 1)
		smaller = strings.Replace(smaller, "  - name: Research\n    description: models for research\n    spend_limit: {amount: 100}\n", "", 1)
		pruned := writeFile(t, "pruned.yaml", smaller)
		wantPlan(t, base, key, pruned, 2, "  group \"On call\"\n      not in the file: kept (--prune deletes it)", "  workspace \"Research\"\n")
		if code, out, stderr := steward(t, base, key, "apply", "-f", pruned); code != 0 || strings.Contains(out, "applied: delete") {
			t.Fatalf("apply without --prune: exit %d\n%s%s", code, out, stderr)
		}
		if status, body := p.get(t, "/v1/admin/user-groups", key); status != 200 || !strings.Contains(body, `"On call"`) {
			t.Fatalf("apply without --prune deleted a group: %d %s", status, body)
		}
		code, out, _ = steward(t, base, key, "plan", "--prune", "-f", pruned)
		if code != 2 || !strings.Contains(out, "- group \"On call\"") || !strings.Contains(out, "- workspace \"Research\"") {
			t.Fatalf("plan --prune: exit %d\n%s", code, out)
		}
		if code, out, stderr := steward(t, base, key, "apply", "--prune", "-f", pruned); code != 0 || !strings.Contains(out, "applied: delete group \"On call\"") {
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
			if strings.HasPrefix(r.URL.Path, e) || (r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/rate-limit")) {
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
`)
	wantPlan(t, mistral.URL, m[1], file, 2,
		"! organization \"time zone\"  (not supported by this server: a Steward extension)",
		"! custom role \"auditor\"  (not supported by this server: a Steward extension)",
		"+ workspace \"Research\"",
		"Plan: 1 to create, 0 to update, 0 to delete. 2 not supported by this server.")
	code, out, stderr := steward(t, mistral.URL, m[1], "apply", "-f", file)
	if code != 0 || !strings.Contains(out, "Applied 1 changes.") {
		t.Fatalf("apply: exit %d\n%s%s", code, out, stderr)
	}
	wantPlan(t, mistral.URL, m[1], file, 0, "No changes", "2 not supported by this server.")
}
