package scim

import (
	"net/http"
	"strings"

	"github.com/stewardhq/steward/internal/scim/filter"
)

// The discovery endpoints (RFC 7644 section 4) describe what Steward
// supports, so that clients adapt to it.

func (s *Service) serviceProviderConfig(w http.ResponseWriter, r *http.Request, c *call) error {
	writeJSON(w, http.StatusOK, map[string]any{
		"schemas":          []string{"urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"},
		"documentationUri": "https://github.com/stewardhq/steward/blob/main/docs/scim.md",
		"patch":            map[string]any{"supported": true},
		"bulk":             map[string]any{"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
		"filter":           map[string]any{"supported": true, "maxResults": maxCount},
		"changePassword":   map[string]any{"supported": false},
		"sort":             map[string]any{"supported": false},
		"etag":             map[string]any{"supported": false},
		"authenticationSchemes": []map[string]any{{
			"type": "oauthbearertoken", "name": "OAuth Bearer Token", "primary": true,
			"description": "A SCIM token of the Organization, created with POST /v1/admin/scim-tokens, sent as Authorization: Bearer.",
		}},
		"meta": map[string]any{"resourceType": "ServiceProviderConfig", "location": strings.TrimSuffix(location(s.base(r), "ServiceProviderConfig", ""), "/")},
	})
	return nil
}

var resourceTypeList = []map[string]any{
	{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:ResourceType"}, "id": "User", "name": "User", "endpoint": "/Users",
		"description": "A member of the Organization", "schema": filter.SchemaUser, "schemaExtensions": []any{},
		"meta": map[string]any{"resourceType": "ResourceType"}},
	{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:ResourceType"}, "id": "Group", "name": "Group", "endpoint": "/Groups",
		"description": "An externally managed user group of the Organization", "schema": filter.SchemaGroup, "schemaExtensions": []any{},
		"meta": map[string]any{"resourceType": "ResourceType"}},
}

func list(items []map[string]any) listResponse {
	out := listResponse{Schemas: []string{schemaListResponse}, TotalResults: len(items), StartIndex: 1, ItemsPerPage: len(items)}
	for _, it := range items {
		out.Resources = append(out.Resources, it)
	}
	return out
}

func (s *Service) resourceTypes(w http.ResponseWriter, r *http.Request, c *call) error {
	writeJSON(w, http.StatusOK, list(resourceTypeList))
	return nil
}

func (s *Service) resourceType(w http.ResponseWriter, r *http.Request, c *call) error {
	return writeByID(w, r, resourceTypeList, "ResourceType")
}

// writeByID writes the item of items whose "id" matches the path's id, ignoring case, or
// returns the SCIM not-found error for kind.
func writeByID(w http.ResponseWriter, r *http.Request, items []map[string]any, kind string) error {
	for _, it := range items {
		if strings.EqualFold(it["id"].(string), r.PathValue("id")) {
			writeJSON(w, http.StatusOK, it)
			return nil
		}
	}
	return notFound(kind, r.PathValue("id"))
}

func attr(name, typ string, required bool, uniqueness, mutability string, sub ...map[string]any) map[string]any {
	a := map[string]any{"name": name, "type": typ, "multiValued": false, "required": required, "caseExact": false,
		"mutability": mutability, "returned": "default", "uniqueness": uniqueness, "description": name}
	if len(sub) > 0 {
		a["subAttributes"] = sub
	}
	return a
}

func multi(a map[string]any) map[string]any {
	a["multiValued"] = true
	return a
}

var schemaList = []map[string]any{
	{
		"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Schema"},
		"id":      filter.SchemaUser, "name": "User", "description": "A member of the Organization",
		"attributes": []map[string]any{
			attr("userName", "string", true, "server", "readWrite"),
			attr("externalId", "string", false, "none", "readWrite"),
			attr("displayName", "string", false, "none", "readWrite"),
			attr("name", "complex", false, "none", "readWrite",
				attr("givenName", "string", false, "none", "readWrite"),
				attr("familyName", "string", false, "none", "readWrite"),
				attr("formatted", "string", false, "none", "readOnly")),
			multi(attr("emails", "complex", false, "none", "readWrite",
				attr("value", "string", false, "none", "readWrite"),
				attr("type", "string", false, "none", "readWrite"),
				attr("primary", "boolean", false, "none", "readWrite"))),
			attr("active", "boolean", false, "none", "readWrite"),
			multi(attr("groups", "complex", false, "none", "readOnly",
				attr("value", "string", false, "none", "readOnly"),
				attr("display", "string", false, "none", "readOnly"))),
		},
		"meta": map[string]any{"resourceType": "Schema"},
	},
	{
		"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Schema"},
		"id":      filter.SchemaGroup, "name": "Group", "description": "An externally managed user group of the Organization",
		"attributes": []map[string]any{
			attr("displayName", "string", true, "server", "readWrite"),
			attr("externalId", "string", false, "none", "readWrite"),
			multi(attr("members", "complex", false, "none", "readWrite",
				attr("value", "string", false, "none", "immutable"),
				attr("display", "string", false, "none", "readOnly"))),
		},
		"meta": map[string]any{"resourceType": "Schema"},
	},
}

func (s *Service) schemas(w http.ResponseWriter, r *http.Request, c *call) error {
	writeJSON(w, http.StatusOK, list(schemaList))
	return nil
}

func (s *Service) schema(w http.ResponseWriter, r *http.Request, c *call) error {
	return writeByID(w, r, schemaList, "Schema")
}
