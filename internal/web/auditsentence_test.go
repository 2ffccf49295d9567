package web

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"strconv"
	"strings"
	"testing"

	"github.com/stewardhq/steward/internal/audit"
	"github.com/stewardhq/steward/internal/steward"
)

// TestEveryEventHasASentence reads the event types that package audit
// declares (its constants named Event...) and fails for any without a
// sentence, so that a new event type cannot reach the log unreadable.
func TestEveryEventHasASentence(t *testing.T) {
	pkgs, err := parser.ParseDir(token.NewFileSet(), "../audit", func(fi fs.FileInfo) bool {
		return !strings.HasSuffix(fi.Name(), "_test.go")
	}, 0)
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, pkg := range pkgs {
		for _, f := range pkg.Files {
			for _, decl := range f.Decls {
				g, ok := decl.(*ast.GenDecl)
				if !ok || g.Tok != token.CONST {
					continue
				}
				for _, spec := range g.Specs {
					vs := spec.(*ast.ValueSpec)
					for i, name := range vs.Names {
						if !strings.HasPrefix(name.Name, "Event") || i >= len(vs.Values) {
							continue
						}
						lit, ok := vs.Values[i].(*ast.BasicLit)
						if !ok || lit.Kind != token.STRING {
							continue
						}
						event, _ := strconv.Unquote(lit.Value)
						found++
						if _, ok := auditSentences[event]; !ok {
							t.Errorf("audit.%s (%q) has no sentence in auditSentences", name.Name, event)
						}
					}
				}
			}
		}
	}
	if found < 40 {
		t.Fatalf("found %d event types in package audit, want them all", found)
	}
}

func text(parts []part) string {
	var b strings.Builder
	for _, p := range parts {
		b.WriteString(p.Text)
	}
	return b.String()
}

func TestSentences(t *testing.T) {
	n := names{base: "/web/o/org", users: map[string]string{"u2": "bob@example.com"}, workspaces: map[string]string{"ws1": "Research"}}
	admin := steward.Actor{Type: steward.ActorHuman, UserID: "u1", Metadata: map[string]string{"email": "admin@example.com"}}
	for _, tc := range []struct {
		name  string
		entry audit.Entry
		want  string
		links []string
		// changes are the changes shown, as "name: before -> after".
		changes []string
	}{
		{"key created", audit.Entry{Actor: admin, EventType: audit.EventAPIKeyCreate, WorkspaceID: "ws1", TargetType: audit.TargetAPIKey,
			TargetMetadata: map[string]string{"id": "k1", "name": "first"}},
			"admin@example.com created API key 'first' in Workspace Research", []string{"/web/o/org/audit?actor=u1", "/web/o/org/keys/k1", "/web/o/org/workspaces/ws1"}, nil},
		{"member added by id only", audit.Entry{Actor: admin, EventType: audit.EventWorkspaceMemberAdd, WorkspaceID: "ws1", TargetType: audit.TargetUser,
			TargetMetadata: map[string]string{"id": "u2"}, EventMetadata: map[string]string{"workspace_name": "Research"}},
			"admin@example.com added bob@example.com to Workspace Research", []string{"/web/o/org/audit?actor=u1", "/web/o/org/audit?actor=u2", "/web/o/org/workspaces/ws1"}, nil},
		{"workspace cap", audit.Entry{Actor: steward.Actor{Type: steward.ActorAPIKey, Metadata: map[string]string{"api_key_name": "ops"}}, EventType: audit.EventWorkspaceMonthlyLimitUpdated,
			TargetType: audit.TargetWorkspaceMonthly, TargetMetadata: map[string]string{"workspace_id": "ws1", "workspace_name": "Research"},
			EventMetadata: map[string]string{"amount_before": "", "amount_after": "50"}},
			"Admin API key 'ops' changed the monthly spend cap of Workspace Research", []string{"/web/o/org/workspaces/ws1"}, []string{"amount: none -> 50"}},
		{"renamed", audit.Entry{Actor: steward.SystemActor("init"), EventType: audit.EventWorkspaceUpdate, TargetType: audit.TargetWorkspace,
			TargetMetadata: map[string]string{"id": "ws1", "name": "Labs"}, EventMetadata: map[string]string{"name_before": "Research", "name_after": "Labs"}},
			"Steward (init) changed Workspace Labs", []string{"/web/o/org/workspaces/ws1"}, []string{"name: Research -> Labs"}},
		{"joined", audit.Entry{Actor: admin, EventType: audit.EventUserJoin, TargetType: audit.TargetUser, TargetMetadata: map[string]string{"id": "u3", "email": "new@example.com"}},
			"new@example.com joined the Organization", []string{"/web/o/org/audit?actor=u3"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			row := n.describe(tc.entry)
			if got := text(row.Sentence); got != tc.want {
				t.Errorf("sentence %q, want %q", got, tc.want)
			}
			var links []string
			for _, p := range row.Sentence {
				if p.Href != "" {
					links = append(links, p.Href)
				}
			}
			if strings.Join(links, " ") != strings.Join(tc.links, " ") {
				t.Errorf("links %q, want %q", links, tc.links)
			}
			var changes []string
			for _, c := range row.Changes {
				changes = append(changes, c.Name+": "+c.Before+" -> "+c.After)
			}
			if strings.Join(changes, "; ") != strings.Join(tc.changes, "; ") {
				t.Errorf("changes %q, want %q", changes, tc.changes)
			}
			if !strings.Contains(row.Raw, `"event_type": "`+tc.entry.EventType+`"`) {
				t.Errorf("the raw record %s lacks the event type", row.Raw)
			}
		})
	}
}
