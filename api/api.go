// Package api holds Steward's OpenAPI document, the contract every HTTP
// route of the Admin API is tested against.
package api

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"go.yaml.in/yaml/v3"
)

// OpenAPIYAML is Steward's OpenAPI 3.1 document, as written in openapi.yaml.
//
//go:embed openapi.yaml
var OpenAPIYAML []byte

// MistralDocumentEnv names the environment variable that may point at
// Mistral's Admin API OpenAPI document.
const MistralDocumentEnv = "STEWARD_MISTRAL_OPENAPI"

// mistralDocumentRelPath is where Mistral's document lives relative to the
// module root when no environment variable overrides it.
const mistralDocumentRelPath = "../shared/mistral/admin-openapi.yaml"

// ErrMistralDocumentNotFound reports that Mistral's document is not at its
// default location. An explicitly configured path that does not exist is
// reported with a different error.
var ErrMistralDocumentNotFound = errors.New("mistral admin OpenAPI document not found")

var openAPIJSON = sync.OnceValues(func() ([]byte, error) {
	var doc any
	if err := yaml.Unmarshal(OpenAPIYAML, &doc); err != nil {
		return nil, fmt.Errorf("api: decode openapi.yaml: %w", err)
	}
	normalized, err := jsonCompatible(doc)
	if err != nil {
		return nil, fmt.Errorf("api: convert openapi.yaml: %w", err)
	}
	out, err := json.Marshal(normalized)
	if err != nil {
		return nil, fmt.Errorf("api: encode openapi.json: %w", err)
	}
	return out, nil
})

// OpenAPIJSON returns Steward's OpenAPI document encoded as JSON. The caller
// owns the returned slice.
func OpenAPIJSON() ([]byte, error) {
	out, err := openAPIJSON()
	if err != nil {
		return nil, err
	}
	return bytes.Clone(out), nil
}

// jsonCompatible rewrites the maps produced by the YAML decoder so that
// encoding/json accepts them: every mapping key becomes a string.
func jsonCompatible(v any) (any, error) {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, val := range t {
			c, err := jsonCompatible(val)
			if err != nil {
				return nil, err
			}
			out[k] = c
		}
		return out, nil
	case map[any]any:
		out := make(map[string]any, len(t))
		for k, val := range t {
			key, err := mapKey(k)
			if err != nil {
				return nil, err
			}
			c, err := jsonCompatible(val)
			if err != nil {
				return nil, err
			}
			out[key] = c
		}
		return out, nil
	case []any:
		out := make([]any, len(t))
		for i, val := range t {
			c, err := jsonCompatible(val)
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	default:
		return v, nil
	}
}

func mapKey(k any) (string, error) {
	switch key := k.(type) {
	case string:
		return key, nil
	case int, int64, uint64, float64, bool:
		return fmt.Sprint(key), nil
	case nil:
		return "null", nil
	default:
		return "", fmt.Errorf("unsupported mapping key of type %T", k)
	}
}

// FindMistralDocument locates Mistral's Admin API OpenAPI document. The
// path in the STEWARD_MISTRAL_OPENAPI environment variable wins when set;
// otherwise the document is looked up at ../shared/mistral/admin-openapi.yaml
// relative to the directory holding go.mod, found by walking up from the
// working directory. When the default location holds no document the error
// wraps ErrMistralDocumentNotFound.
func FindMistralDocument() (string, error) {
	if p := os.Getenv(MistralDocumentEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%q: %w", MistralDocumentEnv, p, err)
		}
		return p, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrMistralDocumentNotFound, err)
	}
	for dir := wd; ; {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Clean(filepath.Join(dir, filepath.FromSlash(mistralDocumentRelPath)))
			if _, err := os.Stat(p); err != nil {
				return "", fmt.Errorf("%w at %s (set %s to its path)", ErrMistralDocumentNotFound, p, MistralDocumentEnv)
			}
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("%w: no go.mod above %s (set %s to its path)", ErrMistralDocumentNotFound, wd, MistralDocumentEnv)
		}
		dir = parent
	}
}
