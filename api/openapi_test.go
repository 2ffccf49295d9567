package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/pb33f/go-yaml"
	"github.com/pb33f/libopenapi"
	"github.com/pb33f/libopenapi-validator/schema_validation"
	"github.com/pb33f/libopenapi/datamodel/high/base"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"
	"github.com/pb33f/libopenapi/orderedmap"
)

const extensionKey = "x-steward-extension"

type parsed struct {
	doc   libopenapi.Document
	model *v3.Document
}

func parse(name string, data []byte) (*parsed, error) {
	doc, err := libopenapi.NewDocument(data)
	if err != nil {
		return nil, fmt.Errorf("parse %s's document: %w", name, err)
	}
	m, err := doc.BuildV3Model()
	if err != nil {
		return nil, fmt.Errorf("build %s's model: %w", name, err)
	}
	return &parsed{doc: doc, model: &m.Model}, nil
}

var (
	stewardDoc = sync.OnceValues(func() (*parsed, error) { return parse("Steward", OpenAPIYAML) })

	// mistralDoc returns Mistral's parsed document, or nil and the reason
	// when no path names it; other failures are errors.
	mistralDoc = sync.OnceValues(func() (*parsed, error) {
		path, err := FindMistralDocument()
		if err != nil {
			return nil, err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		return parse("Mistral", data)
	})
)

func loadSteward(t *testing.T) *parsed {
	t.Helper()
	p, err := stewardDoc()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// loadMistral applies the same rules as apitest.Load: a missing document
// fails under CI and skips the Mistral comparison elsewhere.
func loadMistral(t *testing.T) *parsed {
	t.Helper()
	p, err := mistralDoc()
	switch {
	case errors.Is(err, ErrMistralDocumentNotFound) && os.Getenv("CI") == "":
		t.Skipf("Mistral-document checks are skipped: %v", err)
	case errors.Is(err, ErrMistralDocumentNotFound):
		t.Fatalf("Mistral's Admin API document is required when CI is set: %v", err)
	case err != nil:
		t.Fatal(err)
	}
	return p
}

func TestOpenAPIJSON(t *testing.T) {
	out, err := OpenAPIJSON()
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(out) {
		t.Fatal("OpenAPIJSON returned invalid JSON")
	}
	var doc struct {
		OpenAPI string         `json:"openapi"`
		Info    map[string]any `json:"info"`
		Paths   map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1.") {
		t.Errorf("openapi = %q, want 3.1.x", doc.OpenAPI)
	}
	for _, p := range []string{"/v1/admin/audit-logs", "/v1/admin/openapi.json", "/healthz", "/readyz"} {
		if _, ok := doc.Paths[p]; !ok {
			t.Errorf("path %s missing from the JSON document", p)
		}
	}
	if _, err := libopenapi.NewDocument(out); err != nil {
		t.Errorf("JSON document does not parse as OpenAPI: %v", err)
	}

	out[0] = 'x'
	again, err := OpenAPIJSON()
	if err != nil {
		t.Fatal(err)
	}
	if again[0] != '{' {
		t.Error("OpenAPIJSON returned a shared slice")
	}
}

func TestJSONCompatibleKeys(t *testing.T) {
	got, err := jsonCompatible(map[any]any{200: map[any]any{true: []any{map[any]any{"a": 1}}}, "x": nil})
	if err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"200":{"true":[{"a":1}]},"x":null}`; string(out) != want {
		t.Errorf("got %s, want %s", out, want)
	}
	if _, err := jsonCompatible(map[any]any{[2]int{}: 1}); err == nil {
		t.Error("unsupported key type accepted")
	}
}

func TestDocumentIsValidOpenAPI(t *testing.T) {
	p := loadSteward(t)
	ok, errs := schema_validation.ValidateOpenAPIDocument(p.doc)
	if !ok {
		for _, e := range errs {
			t.Errorf("%s: %s", e.Message, e.Reason)
			for _, f := range e.SchemaValidationErrors {
				t.Errorf("  %s: %s", f.FieldPath, f.Reason)
			}
		}
	}
}

type operation struct {
	path, method string
	item         *v3.PathItem
	op           *v3.Operation
}

func operations(m *v3.Document) []operation {
	var out []operation
	if m.Paths == nil {
		return out
	}
	for path, item := range m.Paths.PathItems.FromOldest() {
		for method, op := range item.GetOperations().FromOldest() {
			out = append(out, operation{path: path, method: strings.ToUpper(method), item: item, op: op})
		}
	}
	return out
}

func findOperation(m *v3.Document, path, method string) *operation {
	for _, o := range operations(m) {
		if o.path == path && o.method == method {
			return &o
		}
	}
	return nil
}

func isExtension(op *v3.Operation) bool {
	if op.Extensions == nil {
		return false
	}
	n := op.Extensions.GetOrZero(extensionKey)
	return n != nil && n.Value == "true"
}

func TestOperationsAreWellFormed(t *testing.T) {
	p := loadSteward(t)
	seen := map[string]string{}
	for _, o := range operations(p.model) {
		name := o.method + " " + o.path
		if o.op.OperationId == "" {
			t.Errorf("%s has no operationId", name)
		} else if prev, ok := seen[o.op.OperationId]; ok {
			t.Errorf("operationId %q used by %s and %s", o.op.OperationId, prev, name)
		}
		seen[o.op.OperationId] = name
		// Every route refuses a path or query value that is not text
		// (steward.TextRule) with a 422.
		if o.op.Responses == nil || o.op.Responses.Codes == nil || o.op.Responses.Codes.GetOrZero("422") == nil {
			t.Errorf("%s does not document 422", name)
		}
		if isExtension(o.op) {
			continue
		}
		if !strings.HasPrefix(o.path, "/v1/admin/") {
			t.Errorf("%s is outside /v1/admin/ but not marked %s", name, extensionKey)
		}
		if o.op.Responses == nil || o.op.Responses.Codes == nil || o.op.Responses.Codes.GetOrZero("401") == nil {
			t.Errorf("%s does not document 401", name)
		}
	}
}

func TestMistralCompatibility(t *testing.T) {
	steward := loadSteward(t)
	mistral := loadMistral(t)
	for _, p := range compatibilityProblems(steward.model, mistral.model) {
		t.Error(p)
	}
	for _, name := range []string{"AuditLogOut", "ActorType", "AuditLogEventType", "TargetType", "HTTPValidationError", "ValidationError"} {
		if steward.model.Components.Schemas.GetOrZero(name) == nil {
			t.Errorf("component schema %s is missing", name)
		}
	}
}

// TestCompatibilityCheckDetectsDrift proves the comparison is not vacuous:
// each edit of Steward's document must be reported.
func TestCompatibilityCheckDetectsDrift(t *testing.T) {
	mistral := loadMistral(t)
	cases := []struct {
		name, old, new, want string
	}{
		{"enum value dropped", "- HUMAN\n      - API_KEY\n      - OTHER\n", "- HUMAN\n      - API_KEY\n", "enum"},
		{"parameter default", "          default: 20\n", "          default: 25\n", "default"},
		{"property type", "        log_id:\n          type: integer\n", "        log_id:\n          type: string\n", "log_id"},
		{"required list", "      - target_metadata\n      - log_id\n", "      - target_metadata\n", "required"},
		{"operationId", "operationId: users_api_admin_audit_logs_get_audit_logs", "operationId: list_audit_logs", "operationId"},
		{"parameter renamed", "- name: sort\n", "- name: order\n", "query:sort"},
		{"nullable dropped", "      - name: actor_user_uuid\n        in: query\n        description: Only entries recorded for actions of this user.\n        required: false\n        schema:\n          anyOf:\n          - type: string\n          - type: 'null'\n",
			"      - name: actor_user_uuid\n        in: query\n        description: Only entries recorded for actions of this user.\n        required: false\n        schema:\n          type: string\n", "query:actor_user_uuid"},
		{"parameter required", "        description: Order of the entries by creation time.\n        required: false\n", "        description: Order of the entries by creation time.\n        required: true\n", "required = true"},
		{"$ref target", "$ref: '#/components/schemas/AuditLogEventType'\n          description: The recorded action.", "$ref: '#/components/schemas/ActorType'\n          description: The recorded action.", "event_type"},
		{"format", "          type: string\n          format: date-time\n          description: When the entry was recorded.\n", "          type: string\n          description: When the entry was recorded.\n", "format"},
		{"additionalProperties", "        actor_metadata:\n          type: object\n          additionalProperties:\n            type: string\n", "        actor_metadata:\n          type: object\n          additionalProperties:\n            type: integer\n", "actor_metadata"},
		{"bare array wrapped", "              schema:\n                type: array\n                items:\n                  $ref: '#/components/schemas/AuditLogOut'\n",
			"              schema:\n                type: object\n                properties:\n                  data:\n                    type: array\n                    items:\n                      $ref: '#/components/schemas/AuditLogOut'\n", "response 200"},
		{"marked as extension", "      operationId: users_api_admin_audit_logs_get_audit_logs\n", "      operationId: users_api_admin_audit_logs_get_audit_logs\n      x-steward-extension: true\n", "is marked"},
		{"undocumented in Mistral", "  /v1/admin/audit-logs:\n", "  /v1/admin/audit-log:\n", "no such operation"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if strings.Count(string(OpenAPIYAML), tc.old) != 1 {
				t.Fatalf("edit target %q does not occur exactly once in openapi.yaml", tc.old)
			}
			p, err := parse("edited Steward", []byte(strings.Replace(string(OpenAPIYAML), tc.old, tc.new, 1)))
			if err != nil {
				t.Fatal(err)
			}
			problems := compatibilityProblems(p.model, mistral.model)
			if !slices.ContainsFunc(problems, func(s string) bool { return strings.Contains(s, tc.want) }) {
				t.Errorf("edit not reported (want a problem mentioning %q); problems:\n%s", tc.want, strings.Join(problems, "\n"))
			}
		})
	}

	t.Run("description-only $ref sibling removed", func(t *testing.T) {
		old := "          $ref: '#/components/schemas/ActorType'\n          description: Kind of actor behind the action.\n"
		p, err := parse("edited Steward", []byte(strings.Replace(string(OpenAPIYAML), old, "          $ref: '#/components/schemas/ActorType'\n", 1)))
		if err != nil {
			t.Fatal(err)
		}
		if problems := compatibilityProblems(p.model, mistral.model); len(problems) > 0 {
			t.Errorf("a description change was reported:\n%s", strings.Join(problems, "\n"))
		}
	})
}

// compatibilityProblems lists every difference between Steward's
// Mistral-compatible operations and shared component schemas and Mistral's.
func compatibilityProblems(steward, mistral *v3.Document) []string {
	var out []string
	for _, o := range operations(steward) {
		name := o.method + " " + o.path
		m := findOperation(mistral, o.path, o.method)
		if isExtension(o.op) {
			if m != nil {
				out = append(out, fmt.Sprintf("%s is marked %s but Mistral defines it (operationId %q)", name, extensionKey, m.op.OperationId))
			}
			continue
		}
		if m == nil {
			out = append(out, fmt.Sprintf("%s is not marked %s but Mistral's document has no such operation", name, extensionKey))
			continue
		}
		var problems []string
		if o.op.OperationId != m.op.OperationId {
			problems = append(problems, fmt.Sprintf("operationId = %q, Mistral's is %q", o.op.OperationId, m.op.OperationId))
		}
		problems = append(problems, diffParameters(o, *m)...)
		problems = append(problems, diffRequestBodies(o.op.RequestBody, m.op.RequestBody)...)
		problems = append(problems, diffResponses(o.op.Responses, m.op.Responses)...)
		for _, p := range problems {
			out = append(out, name+": "+p)
		}
	}
	if steward.Components != nil && mistral.Components != nil && mistral.Components.Schemas != nil {
		for name, s := range steward.Components.Schemas.FromOldest() {
			if ms := mistral.Components.Schemas.GetOrZero(name); ms != nil {
				out = append(out, diffSchemas("#/components/schemas/"+name, s, ms)...)
			}
		}
	}
	return out
}

// diffParameters compares the effective parameters (path-item level
// overridden by operation level) of both operations.
func diffParameters(s, m operation) []string {
	sp, mp := effectiveParameters(s), effectiveParameters(m)
	var out []string
	for _, key := range sortedKeys(mp) {
		mParam := mp[key]
		sParam, ok := sp[key]
		if !ok {
			out = append(out, fmt.Sprintf("parameter %s is missing", key))
			continue
		}
		if isTrue(sParam.Required) != isTrue(mParam.Required) {
			out = append(out, fmt.Sprintf("parameter %s: required = %v, Mistral's is %v", key, isTrue(sParam.Required), isTrue(mParam.Required)))
		}
		out = append(out, diffSchemas("parameter "+key, sParam.Schema, mParam.Schema)...)
	}
	for _, key := range sortedKeys(sp) {
		if _, ok := mp[key]; !ok {
			out = append(out, fmt.Sprintf("parameter %s is not in Mistral's operation", key))
		}
	}
	return out
}

func effectiveParameters(o operation) map[string]*v3.Parameter {
	params := map[string]*v3.Parameter{}
	for _, p := range o.item.Parameters {
		params[p.In+":"+p.Name] = p
	}
	for _, p := range o.op.Parameters {
		params[p.In+":"+p.Name] = p
	}
	return params
}

func diffRequestBodies(s, m *v3.RequestBody) []string {
	switch {
	case s == nil && m == nil:
		return nil
	case m == nil:
		return []string{"request body is not in Mistral's operation"}
	case s == nil:
		return []string{"request body is missing"}
	}
	var out []string
	if isTrue(s.Required) != isTrue(m.Required) {
		out = append(out, fmt.Sprintf("request body: required = %v, Mistral's is %v", isTrue(s.Required), isTrue(m.Required)))
	}
	return append(out, diffContent("request body", s.Content, m.Content)...)
}

// diffResponses checks that every status Mistral documents is documented by
// Steward with the same content; Steward may document more statuses.
func diffResponses(s, m *v3.Responses) []string {
	if m == nil {
		return nil
	}
	var out []string
	if m.Codes != nil {
		for code, mr := range m.Codes.FromOldest() {
			var sr *v3.Response
			if s != nil && s.Codes != nil {
				sr = s.Codes.GetOrZero(code)
			}
			if sr == nil {
				out = append(out, fmt.Sprintf("response %s is missing", code))
				continue
			}
			out = append(out, diffContent("response "+code, sr.Content, mr.Content)...)
		}
	}
	if m.Default != nil {
		if s == nil || s.Default == nil {
			out = append(out, "default response is missing")
		} else {
			out = append(out, diffContent("default response", s.Default.Content, m.Default.Content)...)
		}
	}
	return out
}

func diffContent(where string, s, m *orderedmap.Map[string, *v3.MediaType]) []string {
	var out []string
	for mt, mm := range m.FromOldest() {
		var sm *v3.MediaType
		if s != nil {
			sm = s.GetOrZero(mt)
		}
		if sm == nil {
			out = append(out, fmt.Sprintf("%s: media type %s is missing", where, mt))
			continue
		}
		out = append(out, diffSchemas(where+" "+mt, sm.Schema, mm.Schema)...)
	}
	for mt := range s.KeysFromOldest() {
		if m == nil || m.GetOrZero(mt) == nil {
			out = append(out, fmt.Sprintf("%s: media type %s is not in Mistral's document", where, mt))
		}
	}
	return out
}

// maxDepth bounds the comparison of recursive schemas.
const maxDepth = 32

// diffSchemas compares two schemas structurally after resolving $ref:
// type, format, enum, const, default, required, property names and
// property schemas, items, prefixItems, anyOf, oneOf, allOf and
// additionalProperties. Titles, descriptions and examples are ignored.
func diffSchemas(where string, s, m *base.SchemaProxy) []string {
	return (&schemaDiff{}).proxies(where, s, m, 0)
}

type schemaDiff struct {
	out []string
}

func (d *schemaDiff) addf(where, format string, args ...any) {
	d.out = append(d.out, where+": "+fmt.Sprintf(format, args...))
}

// resolve returns the schema a proxy stands for and, for an OpenAPI 3.1
// $ref with sibling keywords, the siblings separately: libopenapi's
// Schema() returns only the siblings for such a proxy, not the target.
func resolve(sp *base.SchemaProxy) (target, siblings *base.Schema, err error) {
	if sp == nil {
		return nil, nil, nil
	}
	if sp.IsTransformedRefWithSiblings() {
		sem, err := sp.BuildTransformedRefSemanticSchema(nil)
		if err != nil {
			return nil, nil, err
		}
		if sem == nil || len(sem.AllOf) != 2 {
			return nil, nil, fmt.Errorf("unexpected shape for $ref %s with siblings", sp.GetReference())
		}
		t := sem.AllOf[1].Schema()
		if t == nil {
			return nil, nil, fmt.Errorf("cannot resolve %s: %v", sp.GetReference(), sem.AllOf[1].GetBuildError())
		}
		return t, sp.Schema(), nil
	}
	s := sp.Schema()
	if s == nil {
		return nil, nil, fmt.Errorf("cannot build schema: %v", sp.GetBuildError())
	}
	return s, nil, nil
}

func (d *schemaDiff) proxies(where string, s, m *base.SchemaProxy, depth int) []string {
	if depth > maxDepth {
		return d.out
	}
	if (s == nil) != (m == nil) {
		d.addf(where, "schema present = %v, Mistral's = %v", s != nil, m != nil)
		return d.out
	}
	if s == nil {
		return d.out
	}
	st, ss, err := resolve(s)
	if err != nil {
		d.addf(where, "Steward: %v", err)
		return d.out
	}
	mt, ms, err := resolve(m)
	if err != nil {
		d.addf(where, "Mistral: %v", err)
		return d.out
	}
	d.schemas(where, st, mt, depth)
	d.schemas(where+" ($ref siblings)", ss, ms, depth)
	return d.out
}

func (d *schemaDiff) schemas(where string, s, m *base.Schema, depth int) {
	if s == nil {
		s = &base.Schema{}
	}
	if m == nil {
		m = &base.Schema{}
	}
	if a, b := sortedCopy(s.Type), sortedCopy(m.Type); !slices.Equal(a, b) {
		d.addf(where, "type %v, Mistral's %v", a, b)
	}
	if s.Format != m.Format {
		d.addf(where, "format %q, Mistral's %q", s.Format, m.Format)
	}
	if a, b := nodeList(s.Enum), nodeList(m.Enum); !slices.Equal(a, b) {
		d.addf(where, "enum differs: %s", listDiff(a, b))
	}
	if a, b := nodeString(s.Const), nodeString(m.Const); a != b {
		d.addf(where, "const %s, Mistral's %s", a, b)
	}
	if a, b := nodeString(s.Default), nodeString(m.Default); a != b {
		d.addf(where, "default %s, Mistral's %s", a, b)
	}
	if a, b := sortedCopy(s.Required), sortedCopy(m.Required); !slices.Equal(a, b) {
		d.addf(where, "required %v, Mistral's %v", a, b)
	}

	var sNames, mNames []string
	for k := range s.Properties.KeysFromOldest() {
		sNames = append(sNames, k)
	}
	for k := range m.Properties.KeysFromOldest() {
		mNames = append(mNames, k)
	}
	sort.Strings(sNames)
	sort.Strings(mNames)
	if !slices.Equal(sNames, mNames) {
		d.addf(where, "properties %v, Mistral's %v", sNames, mNames)
	}
	for _, k := range sNames {
		if mp := propertyOrNil(m, k); mp != nil {
			d.proxies(where+"."+k, s.Properties.GetOrZero(k), mp, depth+1)
		}
	}

	d.dynamic(where+"[items]", s.Items, m.Items, depth)
	d.dynamic(where+"{additionalProperties}", s.AdditionalProperties, m.AdditionalProperties, depth)
	d.list(where, "prefixItems", s.PrefixItems, m.PrefixItems, depth)
	d.list(where, "anyOf", s.AnyOf, m.AnyOf, depth)
	d.list(where, "oneOf", s.OneOf, m.OneOf, depth)
	d.list(where, "allOf", s.AllOf, m.AllOf, depth)
}

func propertyOrNil(s *base.Schema, name string) *base.SchemaProxy {
	if s.Properties == nil {
		return nil
	}
	return s.Properties.GetOrZero(name)
}

func (d *schemaDiff) dynamic(where string, s, m *base.DynamicValue[*base.SchemaProxy, bool], depth int) {
	switch {
	case s == nil && m == nil:
	case s == nil || m == nil:
		d.addf(where, "present = %v, Mistral's = %v", s != nil, m != nil)
	case s.IsA() != m.IsA():
		d.addf(where, "schema = %v, Mistral's schema = %v", s.IsA(), m.IsA())
	case s.IsA():
		d.proxies(where, s.A, m.A, depth+1)
	case s.B != m.B:
		d.addf(where, "%v, Mistral's %v", s.B, m.B)
	}
}

func (d *schemaDiff) list(where, keyword string, s, m []*base.SchemaProxy, depth int) {
	if len(s) != len(m) {
		d.addf(where, "%s has %d members, Mistral's has %d", keyword, len(s), len(m))
		return
	}
	for i := range s {
		d.proxies(fmt.Sprintf("%s/%s/%d", where, keyword, i), s[i], m[i], depth+1)
	}
}

func nodeList(nodes []*yaml.Node) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = nodeString(n)
	}
	return out
}

// nodeString renders a YAML value with its resolved tags, so that the
// string "1" and the integer 1 differ.
func nodeString(n *yaml.Node) string {
	if n == nil {
		return "<none>"
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 1 {
			return nodeString(n.Content[0])
		}
	case yaml.AliasNode:
		return nodeString(n.Alias)
	case yaml.SequenceNode:
		parts := make([]string, len(n.Content))
		for i, c := range n.Content {
			parts[i] = nodeString(c)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case yaml.MappingNode:
		parts := make([]string, 0, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			parts = append(parts, nodeString(n.Content[i])+": "+nodeString(n.Content[i+1]))
		}
		sort.Strings(parts)
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return n.ShortTag() + " " + n.Value
}

// listDiff describes how list s differs from Mistral's list m.
func listDiff(s, m []string) string {
	var missing, extra []string
	for _, v := range m {
		if !slices.Contains(s, v) {
			missing = append(missing, v)
		}
	}
	for _, v := range s {
		if !slices.Contains(m, v) {
			extra = append(extra, v)
		}
	}
	var parts []string
	if len(missing) > 0 {
		parts = append(parts, fmt.Sprintf("missing %v", missing))
	}
	if len(extra) > 0 {
		parts = append(parts, fmt.Sprintf("not in Mistral's %v", extra))
	}
	if len(parts) == 0 {
		parts = append(parts, fmt.Sprintf("order %v, Mistral's %v", s, m))
	}
	return strings.Join(parts, "; ")
}

func sortedCopy(in []string) []string {
	out := slices.Clone(in)
	sort.Strings(out)
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func isTrue(b *bool) bool {
	return b != nil && *b
}
