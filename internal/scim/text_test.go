package scim_test

import (
	"testing"
)

// TestTextIsCheckedAtTheEdge: what no name, id or filter may hold (invalid
// UTF-8, NUL and other control characters, bidirectional controls) is 400
// invalidValue naming the attribute and the character, on both engines,
// before it reaches the database (PostgreSQL answered 500 to NUL and
// invalid UTF-8; SQLite stored NUL and bidirectional overrides).
func TestTextIsCheckedAtTheEdge(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		u := h.createUser("kept@example.com")
		var g scimGroup
		h.scim("POST", "/Groups", map[string]any{"displayName": "Kept"}).want(t, 201, &g)
		withName := func(name map[string]any) map[string]any {
			body := oktaUser("ann@example.com", "Ann", "Lee")
			body["name"] = name
			return body
		}
		withAttr := func(attr string, v any) map[string]any {
			body := oktaUser("ann@example.com", "Ann", "Lee")
			body[attr] = v
			return body
		}
		replace := func(path string, v any) map[string]any {
			return map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
				"Operations": []any{map[string]any{"op": "replace", "path": path, "value": v}}}
		}
		for _, tc := range []struct {
			method, path string
			body         any
			detail       string
		}{
			{"POST", "/Users", withName(map[string]any{"givenName": "Ann\x00", "familyName": "Lee"}),
				"name.givenName must not contain control characters (U+0000 at byte 3)"},
			{"POST", "/Users", withAttr("externalId", "00u1\x00"), "externalId must not contain control characters (U+0000 at byte 4)"},
			{"POST", "/Users", withAttr("userName", "admin\u202Emoc.elpmaxe@x.example"),
				"userName must not contain bidirectional text controls (U+202E at byte 5)"},
			{"POST", "/Users", withAttr("displayName", "Ann\u2066 Lee"), "displayName must not contain bidirectional text controls (U+2066 at byte 3)"},
			{"POST", "/Users", `{"userName":"ann@example.com","name":{"givenName":"Ann` + "\xff" + `"}}`, "body must be valid UTF-8 (0xFF at byte 54)"},
			{"PUT", "/Users/" + u.ID, withAttr("emails", []any{map[string]any{"value": "kept@example.com\u0085", "primary": true}}),
				"emails.0.value must not contain control characters (U+0085 at byte 16)"},
			{"PATCH", "/Users/" + u.ID, replace("name.givenName", "\x1b[2J"), "Operations.0.value must not contain control characters (U+001B at byte 0)"},
			{"POST", "/Groups", map[string]any{"displayName": "Admins\u202E"}, "displayName must not contain bidirectional text controls (U+202E at byte 6)"},
			{"PUT", "/Groups/" + g.ID, map[string]any{"displayName": "Kept", "externalId": "\x00"}, "externalId must not contain control characters (U+0000 at byte 0)"},
			{"PATCH", "/Groups/" + g.ID, replace("displayName", "Kept\u200F"), "Operations.0.value must not contain bidirectional text controls (U+200F at byte 4)"},
			{"GET", `/Users?filter=userName+eq+"%00"`, nil, "filter must not contain control characters (U+0000 at byte 13)"},
			{"GET", `/Groups?filter=displayName+eq+"%E2%80%AE"`, nil, "filter must not contain bidirectional text controls (U+202E at byte 16)"},
			{"GET", "/Users?excludedAttributes=%FF", nil, "excludedAttributes must be valid UTF-8 (0xFF at byte 0)"},
			{"GET", "/Users/%00", nil, "id must not contain control characters (U+0000 at byte 0)"},
			{"GET", "/Users/%ff", nil, "id must be valid UTF-8 (0xFF at byte 0)"},
			{"PUT", "/Users/%0a", oktaUser("ann@example.com", "Ann", "Lee"), "id must not contain control characters (U+000A at byte 0)"},
			{"PATCH", "/Users/%e2%80%ae", replace("active", false), "id must not contain bidirectional text controls (U+202E at byte 0)"},
			{"DELETE", "/Users/%c2%9b", nil, "id must not contain control characters (U+009B at byte 0)"},
			{"GET", "/Groups/%00", nil, "id must not contain control characters (U+0000 at byte 0)"},
			{"PUT", "/Groups/%ff", map[string]any{"displayName": "Kept"}, "id must be valid UTF-8 (0xFF at byte 0)"},
			{"PATCH", "/Groups/%e2%81%a7", replace("displayName", "x"), "id must not contain bidirectional text controls (U+2067 at byte 0)"},
			{"DELETE", "/Groups/%1b", nil, "id must not contain control characters (U+001B at byte 0)"},
			{"GET", "/Schemas/%00", nil, "id must not contain control characters (U+0000 at byte 0)"},
			{"GET", "/ResourceTypes/%ff", nil, "id must be valid UTF-8 (0xFF at byte 0)"},
			{"GET", "/Nowhere%00", nil, "path must not contain control characters (U+0000 at byte 16)"},
		} {
			if got := h.scim(tc.method, tc.path, tc.body).scimError(t, 400, "invalidValue"); got != tc.detail {
				t.Errorf("%s %s: detail %q, want %q", tc.method, tc.path, got, tc.detail)
			}
		}
		var users listOf[scimUser]
		h.scim("GET", "/Users", nil).want(t, 200, &users)
		if users.TotalResults != 1 || users.Resources[0].UserName != "kept@example.com" || users.Resources[0].Name.GivenName != "Given" {
			t.Errorf("after the refusals the users are %+v, want kept@example.com unchanged", users.Resources)
		}
		var groups listOf[scimGroup]
		h.scim("GET", "/Groups", nil).want(t, 200, &groups)
		if groups.TotalResults != 1 || groups.Resources[0].DisplayName != "Kept" || groups.Resources[0].ExternalID != "" {
			t.Errorf("after the refusals the groups are %+v, want Kept unchanged", groups.Resources)
		}
		// Steward keeps no password, and checks only that one is UTF-8.
		h.scim("POST", "/Users", withAttr("password", "p\tw\u202Ed\x00")).want(t, 201, nil)
	})
}
