package cli

import (
	"fmt"
	"sort"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"

	"github.com/stewardhq/steward/api"
)

// The Admin API commands are derived from Steward's OpenAPI document, which
// the binary embeds: each command names an operation, and its positional
// arguments, flags and key come from that operation's path, parameters,
// request body and security. So the command line follows the document, and
// a test fails on an operation no command reaches.

// apiOperation is what the command line needs of one operation.
type apiOperation struct {
	ID        string
	Method    string
	Path      string
	Summary   string
	Extension bool
	// Auth is the key the operation takes: admin, backoffice, workspace or
	// none.
	Auth   string
	Params []apiParam
	// Body is the request body's schema, resolved; nil when it takes none.
	Body *apiSchema
}

type apiParam struct {
	Ref         string    `yaml:"$ref"`
	Name        string    `yaml:"name"`
	In          string    `yaml:"in"`
	Description string    `yaml:"description"`
	Required    bool      `yaml:"required"`
	Schema      apiSchema `yaml:"schema"`
}

type apiSchema struct {
	Ref         string               `yaml:"$ref"`
	Type        any                  `yaml:"type"`
	Description string               `yaml:"description"`
	Properties  map[string]apiSchema `yaml:"properties"`
	Required    []string             `yaml:"required"`
	Items       *apiSchema           `yaml:"items"`
	AnyOf       []apiSchema          `yaml:"anyOf"`
	AllOf       []apiSchema          `yaml:"allOf"`
	Enum        []any                `yaml:"enum"`
	Default     any                  `yaml:"default"`
}

type rawOperation struct {
	OperationID string                 `yaml:"operationId"`
	Summary     string                 `yaml:"summary"`
	Extension   bool                   `yaml:"x-steward-extension"`
	Parameters  []apiParam             `yaml:"parameters"`
	Security    *[]map[string][]string `yaml:"security"`
	RequestBody *struct {
		Content map[string]struct {
			Schema apiSchema `yaml:"schema"`
		} `yaml:"content"`
	} `yaml:"requestBody"`
}

type rawDocument struct {
	Paths      map[string]map[string]yaml.Node `yaml:"paths"`
	Components struct {
		Parameters map[string]apiParam  `yaml:"parameters"`
		Schemas    map[string]apiSchema `yaml:"schemas"`
	} `yaml:"components"`
}

// apiOperations returns the document's operations by operationId.
var apiOperations = sync.OnceValues(func() (map[string]*apiOperation, error) {
	var doc rawDocument
	if err := yaml.Unmarshal(api.OpenAPIYAML, &doc); err != nil {
		return nil, fmt.Errorf("reading the embedded OpenAPI document: %w", err)
	}
	param := func(p apiParam) apiParam {
		if name, ok := strings.CutPrefix(p.Ref, "#/components/parameters/"); ok {
			return doc.Components.Parameters[name]
		}
		return p
	}
	ops := map[string]*apiOperation{}
	for path, item := range doc.Paths {
		var shared []apiParam
		if n, ok := item["parameters"]; ok {
			if err := n.Decode(&shared); err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
		}
		for method, n := range item {
			if method == "parameters" {
				continue
			}
			var raw rawOperation
			if err := n.Decode(&raw); err != nil {
				return nil, fmt.Errorf("%s %s: %w", method, path, err)
			}
			op := &apiOperation{ID: raw.OperationID, Method: strings.ToUpper(method), Path: path,
				Summary: raw.Summary, Extension: raw.Extension, Auth: "admin"}
			for _, p := range append(append([]apiParam{}, shared...), raw.Parameters...) {
				op.Params = append(op.Params, param(p))
			}
			if raw.Security != nil {
				op.Auth = "none"
				for _, req := range *raw.Security {
					for scheme := range req {
						switch {
						case strings.HasPrefix(scheme, "Backoffice"):
							op.Auth = "backoffice"
						case strings.HasPrefix(scheme, "Workspace"):
							op.Auth = "workspace"
						default:
							op.Auth = "admin"
						}
					}
				}
			}
			if raw.RequestBody != nil {
				if c, ok := raw.RequestBody.Content["application/json"]; ok {
					s := doc.resolve(c.Schema)
					op.Body = &s
				}
			}
			ops[op.ID] = op
		}
	}
	return ops, nil
})

// resolve follows a schema's $ref, and an allOf of one schema.
func (d *rawDocument) resolve(s apiSchema) apiSchema {
	for range 8 {
		if name, ok := strings.CutPrefix(s.Ref, "#/components/schemas/"); ok {
			s = d.Components.Schemas[name]
			continue
		}
		if len(s.AllOf) == 1 && s.Properties == nil {
			s = s.AllOf[0]
			continue
		}
		break
	}
	for name, p := range s.Properties {
		if name2, ok := strings.CutPrefix(p.Ref, "#/components/schemas/"); ok {
			r := d.Components.Schemas[name2]
			r.Description = cmpOr(p.Description, r.Description)
			s.Properties[name] = r
		}
	}
	return s
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// isString tells whether a value of schema s is a plain string, which a
// flag takes as typed; any other value is read as JSON.
func (s apiSchema) isString() bool {
	if t, ok := s.Type.(string); ok {
		return t == "string"
	}
	for _, alt := range s.AnyOf {
		if t, ok := alt.Type.(string); ok && t != "null" && t != "string" {
			return false
		}
		if alt.Ref != "" || alt.Items != nil {
			return false
		}
	}
	return len(s.AnyOf) > 0
}

// pathParams returns the operation's path parameters in the order the
// path names them.
func (op *apiOperation) pathParams() []apiParam {
	var out []apiParam
	for _, p := range op.Params {
		if p.In == "path" {
			out = append(out, p)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		return strings.Index(op.Path, "{"+out[i].Name+"}") < strings.Index(op.Path, "{"+out[j].Name+"}")
	})
	return out
}

// flagName turns a parameter or property name into a flag name:
// page_size -> page-size, Idempotency-Key -> idempotency-key.
func flagName(name string) string {
	return strings.ToLower(strings.ReplaceAll(name, "_", "-"))
}

// argName turns a path parameter into the placeholder of a usage line:
// user_id -> USER_ID.
func argName(name string) string {
	return strings.ToUpper(name)
}
