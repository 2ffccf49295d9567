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
		{"an unknown field", "version: 1\nwebhooks: []\n", "field webhooks not found"},
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
