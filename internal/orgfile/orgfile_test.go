package orgfile

import (
	"strings"
	"testing"
)

func TestRead(t *testing.T) {
	tests := []struct {
		name, file, wantErr string
	}{
		{"a whole file", "version: 1\nworkspaces:\n  - name: A\ngroups:\n  - name: G\n    members: [a@example.com]\n", ""},
		{"empty", "", "the file is empty"},
		{"another version", "version: 2\n", "version: 2 is not a version of the file format this steward reads (1)"},
		{"no version", "workspaces: []\n", "version: 0 is not a version"},
		{"an unknown field", "version: 1\nsecrets: []\n", "field secrets not found"},
		{"webhooks", "version: 1\nwebhooks:\n  - {url: 'https://a.example/h', events: ['*'], enabled: false}\n", ""},
		{"a webhook twice", "version: 1\nwebhooks:\n  - {url: 'https://a.example/h', events: ['*']}\n  - {url: 'https://a.example/h', events: [x.*]}\n", `webhooks: "https://a.example/h" is listed twice`},
		{"a webhook without a url", "version: 1\nwebhooks:\n  - {events: ['*']}\n", "webhooks: an entry has no url"},
		{"a name twice", "version: 1\nworkspaces:\n  - name: A\n  - name: A\n", `workspaces: "A" is listed twice`},
		{"no name", "version: 1\ngroups:\n  - description: x\n", "groups: an entry has no name"},
		{"an email twice in another case", "version: 1\nmembers:\n  - {email: a@x.com, roles: []}\n  - {email: A@x.com, roles: []}\n", `members: "a@x.com" is listed twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Read(strings.NewReader(tt.file))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Read: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Read: %v, want an error saying %q", err, tt.wantErr)
			}
		})
	}
}

func TestTokensIgnoresZeroLimits(t *testing.T) {
	file := &RateLimit{TokensLimitsByModel: map[string]any{"m": map[string]any{"tokens_per_minute": 5000}}}
	server := &RateLimit{TokensLimitsByModel: map[string]any{"m": map[string]any{"tokens_per_minute": 5000.0, "tokens_per_month": 0.0}}}
	if !sameRate(file, server) {
		t.Errorf("%s and %s differ, want the same limits", tokens(file), tokens(server))
	}
	server.TokensLimitsByModel["m"].(map[string]any)["tokens_per_month"] = 10.0
	if sameRate(file, server) {
		t.Errorf("a monthly limit of 10 compares equal to none")
	}
}

func TestModelAccessInTheFile(t *testing.T) {
	f, err := Read(strings.NewReader(`version: 1
workspaces:
  - name: Every
    model_access: {allowed_models: null}
  - name: None
    model_access: {allowed_models: []}
  - name: Some
    model_access: {allowed_models: [b, a]}
  - name: Unmanaged
api_keys:
  - id: 5e0c3f8a-7c1e-4d3b-9a51-0d1c2b3a4f50
    name: ci
    model_access: {allowed_models: [a]}
`))
	if err != nil {
		t.Fatal(err)
	}
	ws := *f.Workspaces
	every, none, some := ws[0].ModelAccess, ws[1].ModelAccess, ws[2].ModelAccess
	if every == nil || every.AllowedModels != nil || none == nil || none.AllowedModels == nil || len(*none.AllowedModels) != 0 || ws[3].ModelAccess != nil {
		t.Fatalf("read: every %+v, none %+v, unmanaged %+v", every, none, ws[3].ModelAccess)
	}
	if k := (*f.APIKeys)[0]; k.Name != "ci" || k.ModelAccess == nil || len(*k.ModelAccess.AllowedModels) != 1 {
		t.Fatalf("read key %+v", k)
	}
	ab := []string{"a", "b", "a"}
	for _, c := range []struct {
		a, b *ModelAccess
		same bool
	}{
		{every, nil, true},
		{every, none, false},
		{none, &ModelAccess{AllowedModels: &[]string{}}, true},
		{some, &ModelAccess{AllowedModels: &ab}, true},
		{some, none, false},
		{&ModelAccess{AllowedModels: &[]string{"every model"}}, every, false},
	} {
		if got := sameModels(c.a, c.b); got != c.same {
			t.Errorf("sameModels(%s, %s) = %v", models(c.a), models(c.b), got)
		}
	}
	if got := modelsDetail(nil, some); got != "allowed_models: every model -> a, b" {
		t.Errorf("detail %q", got)
	}
	if got := modelsDetail(some, none); got != "allowed_models: a, b -> no model" {
		t.Errorf("detail %q", got)
	}
	for file, want := range map[string]string{
		"version: 1\napi_keys:\n  - name: ci\n":                "api_keys: an entry has no id",
		"version: 1\napi_keys:\n  - id: A1\n  - id: a1\n":      `api_keys: "a1" is listed twice`,
		"version: 1\napi_keys:\n  - id: a1\n    models: [x]\n": "field models not found",
	} {
		if _, err := Read(strings.NewReader(file)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Read(%q): %v, want %q", file, err, want)
		}
	}
}
