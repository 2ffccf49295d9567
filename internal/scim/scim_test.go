package scim_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/forwarded"
	"github.com/stewardhq/steward/internal/keys"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
)

func TestSCIMTokens(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		if !strings.HasPrefix(h.token, keys.PrefixSCIM+"_") || len(h.token) != keys.Len {
			t.Fatalf("token %q: want a %s_ key", h.token, keys.PrefixSCIM)
		}
		var list struct {
			Items []map[string]any `json:"items"`
		}
		h.admin("GET", "/v1/admin/scim-tokens", nil).want(t, 200, &list)
		if len(list.Items) != 1 || list.Items[0]["name"] != "Okta" || list.Items[0]["token"] != nil || !strings.HasPrefix(list.Items[0]["hint"].(string), "stws_") {
			t.Fatalf("list = %+v: want the one token, its hint and no secret", list.Items)
		}
		// Stored only as a hash.
		var stored int
		_ = h.db.View(context.Background(), func(tx *store.Tx) error {
			return tx.QueryRow(context.Background(), `SELECT COUNT(*) FROM scim_tokens WHERE token_hash = ?`, steward.HashToken(h.token)).Scan(&stored)
		})
		if stored != 1 {
			t.Fatalf("the token's hash is stored %d times, want 1", stored)
		}
		h.scim("GET", "/Users", nil).want(t, 200, nil)

		// A SCIM token is refused on the Admin API, other keys on SCIM.
		r := h.request("GET", "/v1/admin/users", nil, "Authorization", "Bearer "+h.token)
		if r.status != http.StatusForbidden || !strings.Contains(string(r.body), "SCIM token cannot be used here") {
			t.Fatalf("SCIM token on the Admin API: %d %s", r.status, r.body)
		}
		for _, other := range []string{h.boot.AdminKeySecret, h.boot.BackofficeSecret} {
			d := h.request("GET", "/scim/v2/Users", nil, "Authorization", "Bearer "+other).scimError(t, 403, "")
			if !strings.Contains(d, "requires a SCIM token") {
				t.Fatalf("detail %q", d)
			}
		}
		h.request("GET", "/scim/v2/Users", nil).scimError(t, 401, "")
		if r := h.request("GET", "/scim/v2/Users", nil, "Authorization", "Bearer "+keys.New(keys.PrefixSCIM)); r.status != 401 || r.header.Get("WWW-Authenticate") == "" {
			t.Fatalf("unknown token: %d %v", r.status, r.header)
		}

		// Revoked: refused at once, and audited.
		id := list.Items[0]["id"].(string)
		h.admin("DELETE", "/v1/admin/scim-tokens/"+id, nil).want(t, 204, nil)
		h.admin("DELETE", "/v1/admin/scim-tokens/"+id, nil).want(t, 404, nil)
		if d := h.scim("GET", "/Users", nil).scimError(t, 401, ""); !strings.Contains(d, "revoked") {
			t.Fatalf("revoked token: %q", d)
		}
		if h.auditCount("scim_token.create") != 1 || h.auditCount("scim_token.revoke") != 1 {
			t.Fatalf("audit: %d creations, %d revocations", h.auditCount("scim_token.create"), h.auditCount("scim_token.revoke"))
		}
		// A missing name is a 422 naming it.
		r = h.admin("POST", "/v1/admin/scim-tokens", map[string]any{})
		if r.status != 422 || !strings.Contains(string(r.body), `"name"`) {
			t.Fatalf("token without a name: %d %s", r.status, r.body)
		}
	})
}

// TestOktaSCIMSteps follows the steps of Okta's SCIM test suite.
func TestOktaSCIMSteps(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		// Okta first checks that a random user does not exist.
		var empty listOf[scimUser]
		h.scim("GET", "/Users?filter="+url.QueryEscape(`userName eq "nobody@example.com"`)+"&startIndex=1&count=100", nil).want(t, 200, &empty)
		if empty.TotalResults != 0 || len(empty.Resources) != 0 || empty.Schemas[0] != "urn:ietf:params:scim:api:messages:2.0:ListResponse" {
			t.Fatalf("empty list: %+v", empty)
		}
		// Create.
		var u scimUser
		r := h.scim("POST", "/Users", oktaUser("Ada.Lovelace@example.com", "Ada", "Lovelace")).want(t, 201, &u)
		if u.ID == "" || u.UserName != "Ada.Lovelace@example.com" || !u.Active || u.Name.GivenName != "Ada" || u.Meta.ResourceType != "User" ||
			r.header.Get("Location") != u.Meta.Location || !strings.HasSuffix(u.Meta.Location, "/scim/v2/Users/"+u.ID) {
			t.Fatalf("created %+v (Location %q)", u, r.header.Get("Location"))
		}
		if ct := r.header.Get("Content-Type"); ct != "application/scim+json" {
			t.Fatalf("Content-Type %q", ct)
		}
		// The user is a member of the Organization.
		var member struct {
			Email string `json:"email"`
		}
		h.admin("GET", "/v1/admin/users/"+u.ID, nil).want(t, 200, &member)
		if !strings.EqualFold(member.Email, "ada.lovelace@example.com") {
			t.Fatalf("member %+v", member)
		}
		// Get by id, and by userName in any case.
		var got scimUser
		h.scim("GET", "/Users/"+u.ID, nil).want(t, 200, &got)
		if got.ID != u.ID || got.UserName != u.UserName {
			t.Fatalf("get: %+v", got)
		}
		for _, name := range []string{"Ada.Lovelace@example.com", "ada.lovelace@example.com", "ADA.LOVELACE@EXAMPLE.COM"} {
			var found listOf[scimUser]
			h.scim("GET", "/Users?filter="+url.QueryEscape(`userName eq "`+name+`"`), nil).want(t, 200, &found)
			if found.TotalResults != 1 || found.Resources[0].ID != u.ID {
				t.Fatalf("filter userName eq %q: %+v", name, found)
			}
		}
		// Unknown id.
		h.scim("GET", "/Users/"+"00000000-0000-4000-8000-000000000000", nil).scimError(t, 404, "")
		// Update (PUT).
		body := oktaUser("Ada.Lovelace@example.com", "Augusta", "King")
		var put scimUser
		h.scim("PUT", "/Users/"+u.ID, body).want(t, 200, &put)
		if put.Name.GivenName != "Augusta" || put.Name.FamilyName != "King" {
			t.Fatalf("put: %+v", put)
		}
		var first struct {
			FirstName string `json:"first_name"`
		}
		h.admin("GET", "/v1/admin/users/"+u.ID, nil).want(t, 200, &first)
		if first.FirstName != "Augusta" {
			t.Fatalf("the member's name did not follow: %+v", first)
		}
		// Duplicate userName, in another case: 409 uniqueness.
		h.scim("POST", "/Users", oktaUser("ADA.lovelace@example.com", "Ada", "Again")).scimError(t, 409, "uniqueness")

		// A Workspace key of the user works until the user is deactivated.
		checker := h.checker(t)
		secret := h.workspaceKey(u.ID)
		if _, err := checker.Check(context.Background(), secret); err != nil {
			t.Fatalf("the key does not work before deactivation: %v", err)
		}
		// Deactivate as Okta does.
		var off scimUser
		h.scim("PATCH", "/Users/"+u.ID, map[string]any{
			"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
			"Operations": []any{map[string]any{"op": "replace", "value": map[string]any{"active": false}}},
		}).want(t, 200, &off)
		if off.Active {
			t.Fatalf("deactivated user still active: %+v", off)
		}
		if _, err := checker.Check(context.Background(), secret); !steward.IsKind(err, steward.KindForbidden) {
			t.Fatalf("the key of a deactivated user: %v, want refused", err)
		}
		// Still returned, by id and by filter, and still a member with history.
		h.scim("GET", "/Users/"+u.ID, nil).want(t, 200, &got)
		if got.Active {
			t.Fatalf("get after deactivation: %+v", got)
		}
		var inactive listOf[scimUser]
		h.scim("GET", "/Users?filter="+url.QueryEscape(`active eq false`), nil).want(t, 200, &inactive)
		if inactive.TotalResults != 1 || inactive.Resources[0].ID != u.ID {
			t.Fatalf("active eq false: %+v", inactive)
		}
		h.admin("GET", "/v1/admin/users/"+u.ID, nil).want(t, 200, nil)
		if h.auditCount("user.deactivate") != 1 {
			t.Fatalf("deactivation audited %d times", h.auditCount("user.deactivate"))
		}
		// Reactivate: the key works again.
		h.scim("PATCH", "/Users/"+u.ID, map[string]any{
			"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
			"Operations": []any{map[string]any{"op": "replace", "value": map[string]any{"active": true}}},
		}).want(t, 200, nil)
		if _, err := checker.Check(context.Background(), secret); err != nil {
			t.Fatalf("the key after reactivation: %v", err)
		}
		// Every SCIM change is audited with a SCIM actor.
		var actors int
		_ = h.db.View(context.Background(), func(tx *store.Tx) error {
			return tx.QueryRow(context.Background(), `SELECT COUNT(*) FROM audit_log WHERE organization_id = ? AND actor_metadata LIKE '%"via":"scim"%'`, h.boot.Organization.ID).Scan(&actors)
		})
		if actors != 4 {
			t.Fatalf("%d audit entries with a SCIM actor, want one per change (create, update, deactivate, reactivate)", actors)
		}
		// Delete: gone from SCIM and from the Organization; the user record stays.
		h.scim("DELETE", "/Users/"+u.ID, nil).want(t, 204, nil)
		h.scim("GET", "/Users/"+u.ID, nil).scimError(t, 404, "")
		h.admin("GET", "/v1/admin/users/"+u.ID, nil).want(t, 404, nil)
		h.scim("DELETE", "/Users/"+u.ID, nil).scimError(t, 404, "")
	})
}

// checker returns a model-API key checker over the harness's database.
func (h *harness) checker(t *testing.T) *keys.Checker {
	c, err := keys.NewChecker(context.Background(), h.db, directory.NewAccess(h.db))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// workspaceKey creates a key of the user in the default Workspace.
func (h *harness) workspaceKey(userID string) string {
	h.t.Helper()
	var out struct {
		Key string `json:"key"`
	}
	h.admin("POST", "/v1/admin/api-keys", map[string]any{"workspace_uuid": h.boot.DefaultWorkspace.ID, "user_id": userID, "name": "scim"}).want(h.t, 200, &out)
	return out.Key
}

// TestEntraIDRequestShapes sends the requests Microsoft Entra ID sends.
func TestEntraIDRequestShapes(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		// Entra looks a user up by externalId (its objectId) before creating.
		var none listOf[scimUser]
		h.scim("GET", "/Users?filter="+url.QueryEscape(`externalId eq "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"`), nil).want(t, 200, &none)
		if none.TotalResults != 0 {
			t.Fatalf("%+v", none)
		}
		var u scimUser
		h.scim("POST", "/Users", map[string]any{
			"schemas":    []string{"urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"},
			"externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
			"userName":   "Test_User_ab6490ee@contoso.com",
			"active":     true,
			"emails":     []any{map[string]any{"primary": true, "type": "work", "value": "Test_User_fd0ea19b@contoso.com"}},
			"meta":       map[string]any{"resourceType": "User"},
			"name":       map[string]any{"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
			"roles":      []any{},
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": map[string]any{"employeeNumber": "123", "department": "R&D"},
		}).want(t, 201, &u)
		if u.ExternalID != "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef" || u.Emails[0].Value != "Test_User_fd0ea19b@contoso.com" {
			t.Fatalf("created %+v", u)
		}
		var found listOf[scimUser]
		h.scim("GET", "/Users?filter="+url.QueryEscape(`externalId eq "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"`), nil).want(t, 200, &found)
		if found.TotalResults != 1 || found.Resources[0].ID != u.ID {
			t.Fatalf("by externalId: %+v", found)
		}
		// Entra's PATCH: capitalised ops, string booleans, value-filter paths.
		var patched scimUser
		h.scim("PATCH", "/Users/"+u.ID, map[string]any{
			"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
			"Operations": []any{
				map[string]any{"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "updatedEmail@contoso.com"},
				map[string]any{"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"},
				map[string]any{"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": "boss"},
				map[string]any{"op": "Replace", "path": "active", "value": "False"},
			},
		}).want(t, 200, &patched)
		if patched.Emails[0].Value != "updatedEmail@contoso.com" || patched.Name.FamilyName != "updatedFamilyName" || patched.Active {
			t.Fatalf("patched %+v", patched)
		}
		var member struct {
			Email    string `json:"email"`
			LastName string `json:"last_name"`
		}
		h.admin("GET", "/v1/admin/users/"+u.ID, nil).want(t, 200, &member)
		if member.Email != "updatedEmail@contoso.com" || member.LastName != "updatedFamilyName" {
			t.Fatalf("member after PATCH: %+v", member)
		}
		h.scim("PATCH", "/Users/"+u.ID, map[string]any{
			"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
			"Operations": []any{map[string]any{"op": "Replace", "path": "active", "value": "True"}, map[string]any{"op": "Replace", "path": "userName", "value": "renamed@contoso.com"}},
		}).want(t, 200, &patched)
		if !patched.Active || patched.UserName != "renamed@contoso.com" {
			t.Fatalf("reactivated %+v", patched)
		}
		// Bad PATCH bodies: named errors.
		h.scim("PATCH", "/Users/"+u.ID, map[string]any{"Operations": []any{map[string]any{"op": "Frobnicate", "path": "active", "value": true}}}).scimError(t, 400, "invalidValue")
		h.scim("PATCH", "/Users/"+u.ID, map[string]any{"Operations": []any{map[string]any{"op": "replace", "path": "emails[type eq", "value": "x"}}}).scimError(t, 400, "invalidPath")
		h.scim("PATCH", "/Users/"+u.ID, map[string]any{"Operations": []any{map[string]any{"op": "replace", "path": "active", "value": "maybe"}}}).scimError(t, 400, "invalidValue")
		h.scim("PATCH", "/Users/"+u.ID, "{not json").scimError(t, 400, "invalidSyntax")

		// Groups: create with a member, then Entra's membership PATCHes with many members.
		var others []string
		for i := range 120 {
			others = append(others, h.createUser("member"+strconv.Itoa(i)+"@contoso.com").ID)
		}
		var g scimGroup
		h.scim("POST", "/Groups", map[string]any{
			"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"}, "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
			"displayName": "Engineering", "members": []any{map[string]any{"value": u.ID}}, "meta": map[string]any{"resourceType": "Group"},
		}).want(t, 201, &g)
		if g.DisplayName != "Engineering" || len(g.Members) != 1 || g.Members[0].Value != u.ID {
			t.Fatalf("group %+v", g)
		}
		var add []any
		for _, id := range others {
			add = append(add, map[string]any{"value": id})
		}
		h.scim("PATCH", "/Groups/"+g.ID, map[string]any{
			"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
			"Operations": []any{map[string]any{"op": "Add", "path": "members", "value": add}},
		}).want(t, 200, nil)
		h.scim("PATCH", "/Groups/"+g.ID, map[string]any{
			"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
			"Operations": []any{
				map[string]any{"op": "Remove", "path": `members[value eq "` + others[0] + `"]`},
				map[string]any{"op": "Remove", "path": "members", "value": []any{map[string]any{"value": others[1]}}},
				map[string]any{"op": "Replace", "value": map[string]any{"displayName": "Engineering Team"}},
			},
		}).want(t, 200, nil)
		var after scimGroup
		h.scim("GET", "/Groups/"+g.ID, nil).want(t, 200, &after)
		if after.DisplayName != "Engineering Team" || len(after.Members) != 1+len(others)-2 {
			t.Fatalf("after PATCH: %s with %d members", after.DisplayName, len(after.Members))
		}
		// The directory's group followed, and is externally managed.
		var dg struct {
			Name              string `json:"name"`
			ExternallyManaged bool   `json:"externally_managed"`
		}
		h.admin("GET", "/v1/admin/user-groups/"+g.ID, nil).want(t, 200, &dg)
		var dm struct {
			Total int `json:"total"`
		}
		h.admin("GET", "/v1/admin/user-groups/"+g.ID+"/members?page_size=1", nil).want(t, 200, &dm)
		if dg.Name != "Engineering Team" || dm.Total != len(after.Members) {
			t.Fatalf("directory group %+v with %d members, want %d", dg, dm.Total, len(after.Members))
		}
		// excludedAttributes=members, and filter by displayName.
		var lean listOf[map[string]any]
		h.scim("GET", "/Groups?excludedAttributes=members&filter="+url.QueryEscape(`displayName eq "engineering team"`), nil).want(t, 200, &lean)
		if lean.TotalResults != 1 || lean.Resources[0]["members"] != nil {
			t.Fatalf("lean list: %+v", lean)
		}
		var byMember listOf[scimGroup]
		h.scim("GET", "/Groups?filter="+url.QueryEscape(`members.value eq "`+u.ID+`"`), nil).want(t, 200, &byMember)
		if byMember.TotalResults != 1 {
			t.Fatalf("groups of a member: %+v", byMember.TotalResults)
		}
		// A member that is not provisioned is refused and changes nothing.
		h.scim("PATCH", "/Groups/"+g.ID, map[string]any{
			"Operations": []any{map[string]any{"op": "add", "path": "members", "value": []any{map[string]any{"value": others[5]}, map[string]any{"value": "not-a-user"}}}},
		}).scimError(t, 400, "invalidValue")
		// Duplicate displayName: 409 uniqueness.
		h.scim("POST", "/Groups", map[string]any{"displayName": "ENGINEERING TEAM"}).scimError(t, 409, "uniqueness")
		// Delete.
		h.scim("DELETE", "/Groups/"+g.ID, nil).want(t, 204, nil)
		h.admin("GET", "/v1/admin/user-groups/"+g.ID, nil).want(t, 404, nil)
	})
}

// TestExternallyManagedGroups: name and members only through SCIM; the rest
// through the Admin API.
func TestExternallyManagedGroups(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		u := h.createUser("grace@example.com")
		var g scimGroup
		h.scim("POST", "/Groups", map[string]any{"displayName": "Ops", "members": []any{map[string]any{"value": u.ID}}}).want(t, 201, &g)
		for _, tc := range []struct {
			method, path string
			body         any
		}{
			{"PATCH", "/v1/admin/user-groups/" + g.ID, map[string]any{"name": "Renamed"}},
			{"POST", "/v1/admin/user-groups/" + g.ID + "/members", map[string]any{"user_uuids": []string{h.boot.Admin.ID}}},
			{"DELETE", "/v1/admin/user-groups/" + g.ID, nil},
		} {
			if r := h.admin(tc.method, tc.path, tc.body); r.status != http.StatusConflict || !strings.Contains(string(r.body), "identity provider") {
				t.Fatalf("%s %s: %d %s, want 409", tc.method, tc.path, r.status, r.body)
			}
		}
		// Workspace assignments and the Organization role stay manageable.
		h.admin("POST", "/v1/admin/user-groups/"+g.ID+"/workspaces", map[string]any{"workspace_uuid": h.boot.DefaultWorkspace.ID, "role_names": []string{"workspace_admin"}}).want(t, 201, nil)
		h.admin("PATCH", "/v1/admin/user-groups/"+g.ID+"/organization-role", map[string]any{"organization_role": "billing_manager"}).want(t, 204, nil)
		var ug struct {
			ExternallyManaged bool `json:"externally_managed"`
		}
		h.admin("GET", "/v1/admin/user-groups/"+g.ID, nil).want(t, 200, &ug)
		if !ug.ExternallyManaged {
			t.Fatal("a SCIM group is not externally_managed")
		}
	})
}

func TestFilters(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		a := h.createUser("alice@example.com")
		b := h.createUser("bob@example.org")
		h.createUser("carol@example.com")
		// Without emails, userName is the address that emails shows.
		h.scim("POST", "/Users", map[string]any{"userName": "dan@example.net"}).want(t, 201, nil)
		for _, tc := range []struct {
			filter string
			want   int
		}{
			{`userName eq "ALICE@example.com"`, 1},
			{`userName ne "alice@example.com"`, 3},
			{`userName co "EXAMPLE.COM"`, 2},
			{`userName sw "b"`, 1},
			{`userName ew ".org"`, 1},
			{`externalId pr`, 3},
			{`emails.value eq "DAN@example.net"`, 1},
			{`emails[value ew ".net"]`, 1},
			{`displayName pr and userName sw "c"`, 1},
			{`userName eq "alice@example.com" or userName eq "bob@example.org"`, 2},
			{`emails.value eq "bob@example.org"`, 1},
			{`emails[type eq "work" and value co "alice"]`, 1},
			{`not (userName sw "a")`, 3},
			{`(userName sw "a" or userName sw "b") and active eq true`, 2},
			{`urn:ietf:params:scim:schemas:core:2.0:User:userName eq "carol@example.com"`, 1},
			{`id eq "` + b.ID + `"`, 1},
			{`userName co "%"`, 0},
		} {
			var got listOf[scimUser]
			h.scim("GET", "/Users?filter="+url.QueryEscape(tc.filter), nil).want(t, 200, &got)
			if got.TotalResults != tc.want || len(got.Resources) != tc.want {
				t.Errorf("filter %s: %d results, want %d", tc.filter, got.TotalResults, tc.want)
			}
		}
		for _, bad := range []string{`userName eq`, `userName xx "a"`, `title eq "x"`, `active eq "yes"`, `(userName eq "a"`, `userName eq "a" and`} {
			h.scim("GET", "/Users?filter="+url.QueryEscape(bad), nil).scimError(t, 400, "invalidFilter")
		}
		// Paging: startIndex from 1, count capped, totals.
		var p listOf[scimUser]
		h.scim("GET", "/Users?startIndex=2&count=1", nil).want(t, 200, &p)
		if p.TotalResults != 4 || p.StartIndex != 2 || p.ItemsPerPage != 1 || len(p.Resources) != 1 || p.Resources[0].ID == a.ID {
			t.Fatalf("page: %+v", p)
		}
		h.scim("GET", "/Users?count=0", nil).want(t, 200, &p)
		if p.TotalResults != 4 || len(p.Resources) != 0 {
			t.Fatalf("count=0: %+v", p)
		}
		h.scim("GET", "/Users?count=abc", nil).scimError(t, 400, "invalidValue")
	})
}

func TestDiscovery(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		var spc struct {
			Patch  struct{ Supported bool } `json:"patch"`
			Filter struct {
				Supported  bool `json:"supported"`
				MaxResults int  `json:"maxResults"`
			} `json:"filter"`
			Bulk                  struct{ Supported bool } `json:"bulk"`
			AuthenticationSchemes []struct{ Type string }  `json:"authenticationSchemes"`
		}
		h.scim("GET", "/ServiceProviderConfig", nil).want(t, 200, &spc)
		if !spc.Patch.Supported || !spc.Filter.Supported || spc.Filter.MaxResults != 200 || spc.Bulk.Supported || spc.AuthenticationSchemes[0].Type != "oauthbearertoken" {
			t.Fatalf("ServiceProviderConfig %+v", spc)
		}
		var rts listOf[map[string]any]
		h.scim("GET", "/ResourceTypes", nil).want(t, 200, &rts)
		if rts.TotalResults != 2 || rts.Resources[0]["endpoint"] != "/Users" || rts.Resources[1]["endpoint"] != "/Groups" {
			t.Fatalf("ResourceTypes %+v", rts)
		}
		h.scim("GET", "/ResourceTypes/Group", nil).want(t, 200, nil)
		var schemas listOf[map[string]any]
		h.scim("GET", "/Schemas", nil).want(t, 200, &schemas)
		if schemas.TotalResults != 2 || schemas.Resources[0]["id"] != "urn:ietf:params:scim:schemas:core:2.0:User" {
			t.Fatalf("Schemas %+v", schemas)
		}
		h.scim("GET", "/Schemas/urn:ietf:params:scim:schemas:core:2.0:Group", nil).want(t, 200, nil)
		h.scim("GET", "/Schemas/nope", nil).scimError(t, 404, "")
		h.scim("GET", "/Bulk", nil).scimError(t, 404, "")
		// Discovery needs the token too.
		h.request("GET", "/scim/v2/ServiceProviderConfig", nil).scimError(t, 401, "")
	})
}

// TestLocationScheme: a resource's location is https when a trusted
// reverse proxy says the client spoke HTTPS to it, and X-Forwarded-Proto
// from anyone else is not believed.
func TestLocationScheme(t *testing.T) {
	loopback, err := forwarded.Parse("127.0.0.0/8, ::1")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		proxies forwarded.Trusted
		want    string
	}{{"trusted proxy", loopback, "https://"}, {"untrusted client", forwarded.Trusted{}, "http://"}} {
		t.Run(c.name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T, db *store.DB) {
				h := newHarness(t, db, c.proxies)
				var u scimUser
				r := h.request("POST", "/scim/v2/Users", oktaUser("ada@example.com", "Ada", "Lovelace"),
					"Authorization", "Bearer "+h.token, "Content-Type", "application/scim+json", "X-Forwarded-Proto", "https").want(t, 201, &u)
				if loc := r.header.Get("Location"); !strings.HasPrefix(loc, c.want) || loc != u.Meta.Location {
					t.Fatalf("Location %q, meta.location %q, want them equal and under %s", loc, u.Meta.Location, c.want)
				}
				h.scim("GET", "/Users/"+u.ID, nil).want(t, 200, &u)
				if !strings.HasPrefix(u.Meta.Location, "http://") {
					t.Fatalf("without X-Forwarded-Proto meta.location %q, want http", u.Meta.Location)
				}
			})
		})
	}
}

// TestTenantIsolation: a token of one Organization never reaches another's
// users or groups.
func TestTenantIsolation(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		u := h.createUser("mine@example.com")
		var g scimGroup
		h.scim("POST", "/Groups", map[string]any{"displayName": "Mine"}).want(t, 201, &g)
		ctx := context.Background()
		var other string
		err := h.db.Transact(ctx, func(tx *store.Tx) error {
			actor := steward.SystemActor("test")
			org, ws, err := directory.CreateOrganization(ctx, tx, actor, h.boot.EnterpriseAccount.ID, "Other")
			if err != nil {
				return err
			}
			if _, err := directory.AddOrganizationAdmin(ctx, tx, actor, org, ws, "root@other.example"); err != nil {
				return err
			}
			_, other, err = keys.CreateSCIMToken(ctx, tx, actor, org, "other", nil)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		auth := []string{"Authorization", "Bearer " + other, "Content-Type", "application/scim+json"}
		h.request("GET", "/scim/v2/Users/"+u.ID, nil, auth...).scimError(t, 404, "")
		h.request("GET", "/scim/v2/Groups/"+g.ID, nil, auth...).scimError(t, 404, "")
		h.request("DELETE", "/scim/v2/Users/"+u.ID, nil, auth...).scimError(t, 404, "")
		var l listOf[scimUser]
		h.request("GET", "/scim/v2/Users", nil, auth...).want(t, 200, &l)
		if l.TotalResults != 0 {
			t.Fatalf("another Organization lists %d users", l.TotalResults)
		}
		// Adding this Organization's user to the other's group is refused.
		var og scimGroup
		h.request("POST", "/scim/v2/Groups", map[string]any{"displayName": "Theirs"}, auth...).want(t, 201, &og)
		h.request("PATCH", "/scim/v2/Groups/"+og.ID, map[string]any{"Operations": []any{map[string]any{"op": "add", "path": "members", "value": []any{map[string]any{"value": u.ID}}}}}, auth...).scimError(t, 400, "invalidValue")
		h.scim("GET", "/Users/"+u.ID, nil).want(t, 200, nil)
	})
}

// userNames and group displayNames are unique per Organization, ignoring
// case, through their unique indexes alone: a request that breaks one is
// 409 uniqueness and changes nothing, and filters on them find any case.
func TestUniqueNames(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		grace := h.createUser("grace@example.com")
		// Another address under a taken userName: nothing is created.
		taken := oktaUser("GRACE@example.com", "Grace", "Other")
		taken["emails"] = []any{map[string]any{"primary": true, "value": "grace.other@example.org", "type": "work"}}
		if d := h.scim("POST", "/Users", taken).scimError(t, 409, "uniqueness"); !strings.Contains(d, "userName GRACE@example.com") {
			t.Fatalf("detail %q does not name the userName", d)
		}
		var members struct {
			Total int `json:"total"`
		}
		h.admin("GET", "/v1/admin/users?email=grace.other@example.org", nil).want(t, 200, &members)
		if members.Total != 0 {
			t.Fatalf("a refused user became a member: %+v", members)
		}
		// Renaming a user to a taken userName, by PUT or PATCH, is refused
		// and leaves the user as it was.
		alan := h.createUser("alan@example.com")
		rename := oktaUser("Grace@Example.com", "Alan", "Turing")
		rename["emails"] = []any{map[string]any{"primary": true, "value": "alan@example.com", "type": "work"}}
		h.scim("PUT", "/Users/"+alan.ID, rename).scimError(t, 409, "uniqueness")
		h.scim("PATCH", "/Users/"+alan.ID, map[string]any{
			"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
			"Operations": []any{map[string]any{"op": "Replace", "path": "userName", "value": "grace@EXAMPLE.com"}},
		}).scimError(t, 409, "uniqueness")
		var got scimUser
		h.scim("GET", "/Users/"+alan.ID, nil).want(t, 200, &got)
		if got.UserName != "alan@example.com" || got.Name.GivenName != "Given" {
			t.Fatalf("a refused rename changed the user: %+v", got)
		}
		var found listOf[scimUser]
		h.scim("GET", "/Users?filter="+url.QueryEscape(`userName eq "GRACE@EXAMPLE.COM"`), nil).want(t, 200, &found)
		if found.TotalResults != 1 || found.Resources[0].ID != grace.ID {
			t.Fatalf("filter on userName in another case: %+v", found)
		}
		// Groups: a taken displayName, on creation or rename.
		var ops, dev scimGroup
		h.scim("POST", "/Groups", map[string]any{"displayName": "Ops"}).want(t, 201, &ops)
		h.scim("POST", "/Groups", map[string]any{"displayName": "Dev"}).want(t, 201, &dev)
		h.scim("POST", "/Groups", map[string]any{"displayName": "OPS"}).scimError(t, 409, "uniqueness")
		h.scim("PATCH", "/Groups/"+dev.ID, map[string]any{
			"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
			"Operations": []any{map[string]any{"op": "replace", "path": "displayName", "value": "ops"}},
		}).scimError(t, 409, "uniqueness")
		var groups listOf[scimGroup]
		h.scim("GET", "/Groups?filter="+url.QueryEscape(`displayName eq "dEV"`), nil).want(t, 200, &groups)
		if groups.TotalResults != 1 || groups.Resources[0].ID != dev.ID || groups.Resources[0].DisplayName != "Dev" {
			t.Fatalf("filter on displayName in another case after a refused rename: %+v", groups)
		}
		h.scim("GET", "/Groups?filter="+url.QueryEscape(`displayName sw "o" or displayName pr`), nil).want(t, 200, &groups)
		if groups.TotalResults != 2 {
			t.Fatalf("displayName sw/pr: %+v", groups)
		}
	})
}

// The member counts of the Organization and its default Workspace, which
// are updated at commit, follow what SCIM does, and a refused request
// changes neither.
func TestMemberCountsFollowProvisioning(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		counts := func() (org, orgRows, ws, wsRows int) {
			t.Helper()
			ctx := context.Background()
			err := h.db.View(ctx, func(tx *store.Tx) error {
				return errors.Join(
					tx.QueryRow(ctx, `SELECT member_count FROM organizations WHERE id = ?`, h.boot.Organization.ID).Scan(&org),
					tx.QueryRow(ctx, `SELECT COUNT(*) FROM organization_members WHERE organization_id = ?`, h.boot.Organization.ID).Scan(&orgRows),
					tx.QueryRow(ctx, `SELECT member_count FROM workspaces WHERE id = ?`, h.boot.DefaultWorkspace.ID).Scan(&ws),
					tx.QueryRow(ctx, `SELECT COUNT(*) FROM workspace_members WHERE workspace_id = ?`, h.boot.DefaultWorkspace.ID).Scan(&wsRows))
			})
			if err != nil {
				t.Fatal(err)
			}
			return org, orgRows, ws, wsRows
		}
		a := h.createUser("a@example.com")
		h.createUser("b@example.com")
		h.createUser("c@example.com")
		taken := oktaUser("A@example.com", "A", "Again")
		taken["emails"] = []any{map[string]any{"primary": true, "value": "a.again@example.com"}}
		h.scim("POST", "/Users", taken).scimError(t, 409, "uniqueness")
		h.scim("DELETE", "/Users/"+a.ID, nil).want(t, 204, nil)
		if org, orgRows, ws, wsRows := counts(); org != 3 || orgRows != 3 || ws != 3 || wsRows != 3 {
			t.Fatalf("Organization %d members counted, %d rows; default Workspace %d counted, %d rows; want 3 each", org, orgRows, ws, wsRows)
		}
	})
}
