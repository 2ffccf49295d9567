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

// ErrMistralDocumentNotFound reports that no path names Mistral's document.
// A configured path that does not exist is reported with a different error.
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

// FindMistralDocument returns the path of Mistral's Admin API OpenAPI
// document (admin-openapi.yaml, with model-api-openapi.yaml beside it),
// which the STEWARD_MISTRAL_OPENAPI environment variable names. It is not
// part of the repository: without the variable the error wraps
// ErrMistralDocumentNotFound.
func FindMistralDocument() (string, error) {
	p := os.Getenv(MistralDocumentEnv)
	if p == "" {
		return "", fmt.Errorf("%w: set %s to the path of Mistral's admin-openapi.yaml", ErrMistralDocumentNotFound, MistralDocumentEnv)
	}
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%s=%q: %w", MistralDocumentEnv, p, err)
	}
	return p, nil
}
