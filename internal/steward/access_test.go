package steward

import (
	"slices"
	"testing"
)

// graph builds a small Organization:
//
//	ann: member, direct contributor in ws1
//	bob: member of group eng (nested in all), which holds dev in ws2
//	cy:  member of group ops, which holds organization_admin
//	dee: member of group all only, which holds billing in ws1
//	eve: not a member of the Organization, though in group eng
func graph() *AccessGraph {
	roles := map[string]Role{}
	for _, r := range append(slices.Clone(OrganizationRoles), WorkspaceRoles...) {
		roles[r.ID] = r
	}
	dev, _ := BuiltinRole(ScopeWorkspace, "dev")
	billing, _ := BuiltinRole(ScopeWorkspace, "billing")
	g := &AccessGraph{
		Members:           map[string]bool{"ann": true, "bob": true, "cy": true, "dee": true},
		OrganizationRoles: map[string][]string{"ann": {RoleIDOrganizationMember}, "bob": {RoleIDOrganizationMember}, "cy": {RoleIDOrganizationMember}, "dee": {RoleIDOrganizationMember}},
		Workspaces:        map[string]Workspace{"ws1": {ID: "ws1", Name: "one", IsDefault: true}, "ws2": {ID: "ws2", Name: "two"}},
		WorkspaceRoles: map[string]map[string][]string{
			"ws1": {"ann": {RoleIDWorkspaceContributor}},
		},
		GroupMembers:          map[string][]string{"eng": {"bob", "eve"}, "ops": {"cy"}, "all": {"dee"}},
		GroupParents:          map[string][]string{"eng": {"all"}},
		GroupOrganizationRole: map[string]string{"ops": RoleIDOrganizationAdmin},
		GroupWorkspaceRoles: map[string]map[string][]string{
			"eng": {"ws2": {dev.ID}},
			"all": {"ws1": {billing.ID}},
		},
		Roles: roles,
	}
	g.Index()
	return g
}

func TestWorkspaceGrants(t *testing.T) {
	g := graph()
	dev, _ := BuiltinRole(ScopeWorkspace, "dev")
	billing, _ := BuiltinRole(ScopeWorkspace, "billing")
	for _, tc := range []struct {
		user, ws string
		want     []Grant
	}{
		{"ann", "ws1", []Grant{{RoleIDWorkspaceContributor, []Source{{Kind: SourceDirect}}}}},
		{"ann", "ws2", nil},
		{"bob", "ws2", []Grant{{dev.ID, []Source{{Kind: SourceGroup, GroupID: "eng"}}}}},
		// bob is in all through eng's nesting.
		{"bob", "ws1", []Grant{{billing.ID, []Source{{Kind: SourceGroup, GroupID: "all"}}}}},
		{"cy", "ws1", []Grant{{RoleIDWorkspaceAdmin, []Source{{Kind: SourceOrganizationAdmin}}}}},
		{"dee", "ws2", nil},
		{"eve", "ws2", nil},
		{"ann", "archived-or-unknown", nil},
	} {
		got := g.WorkspaceGrants(tc.user, tc.ws)
		if !slices.EqualFunc(got, tc.want, func(a, b Grant) bool { return a.RoleID == b.RoleID && slices.Equal(a.Sources, b.Sources) }) {
			t.Errorf("WorkspaceGrants(%s, %s) = %+v, want %+v", tc.user, tc.ws, got, tc.want)
		}
	}
}

func TestOrganizationGrantsAndPermissions(t *testing.T) {
	g := graph()
	if !g.IsOrganizationAdmin("cy") || g.IsOrganizationAdmin("bob") {
		t.Fatal("organization_admin through a group is not recognised, or is given to the wrong member")
	}
	got := g.OrganizationGrants("cy")
	if len(got) != 2 || got[1].RoleID != RoleIDOrganizationAdmin || got[1].Sources[0].GroupID != "ops" {
		t.Fatalf("OrganizationGrants(cy) = %+v", got)
	}
	if p := g.WorkspacePermissions("ann", "ws1"); !p.Has(PermModelsUse) || !p.Has(PermOwnAPIKeysCreate) || p.Has(PermWorkspaceKeysWrite) {
		t.Errorf("ann in ws1: %v", p.List())
	}
	if p := g.WorkspacePermissions("dee", "ws1"); p.Has(PermModelsUse) || !p.Has(PermWorkspaceUsageRead) {
		t.Errorf("dee (billing) in ws1: %v", p.List())
	}
	if p := g.WorkspacePermissions("cy", "ws2"); !p.Has(PermWorkspaceKeysWrite) || !p.Has(PermModelsUse) {
		t.Errorf("cy (admin through ops) in ws2: %v", p.List())
	}
	if p := g.WorkspacePermissions("eve", "ws2"); p != 0 {
		t.Errorf("eve, not a member, has %v", p.List())
	}
}

func TestNestingCyclesTerminate(t *testing.T) {
	g := &AccessGraph{
		Members:      map[string]bool{"u": true},
		GroupMembers: map[string][]string{"a": {"u"}},
		GroupParents: map[string][]string{"a": {"b"}, "b": {"c"}, "c": {"a"}},
	}
	g.Index()
	if got := g.UserGroups("u"); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("UserGroups = %v", got)
	}
}

func TestPermissionSet(t *testing.T) {
	var s PermissionSet
	s = s.With(PermAuditRead).With(PermModelsUse)
	if !s.Has(PermAuditRead) || !s.Has(PermModelsUse) || s.Has(PermMembersWrite) || len(s.List()) != 2 {
		t.Fatalf("set = %v", s.List())
	}
	if len(Permissions) > 64 {
		t.Fatalf("%d permissions do not fit a PermissionSet", len(Permissions))
	}
}

func TestMemberWorkspaces(t *testing.T) {
	g := graph()
	got := g.MemberWorkspaces("bob")
	if len(got) != 2 || got[0].WorkspaceID != "ws1" || got[1].WorkspaceID != "ws2" || len(got[0].RoleIDs) != 1 {
		t.Fatalf("MemberWorkspaces(bob) = %+v", got)
	}
	if got := g.MemberWorkspaces("cy"); len(got) != 0 {
		t.Fatalf("an admin through a group, in no Workspace, is listed in %+v", got)
	}
}
