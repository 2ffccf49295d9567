package apitest

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/pb33f/libopenapi"
	"github.com/pb33f/libopenapi/datamodel"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"

	"github.com/stewardhq/steward/api"
)

// modelDocumentName is Mistral's model API document, kept beside its Admin
// API document.
const modelDocumentName = "model-api-openapi.yaml"

var (
	modelOnce sync.Once
	modelDoc  *v3.Document
	modelErr  error
)

// CheckModelSchema validates body, a JSON value the gateway writes itself
// (such as a stream chunk, which an SSE answer does not let the response
// validator reach), against the component schema named schema of Mistral's
// model API document, found beside its Admin API document. Every problem
// is reported with t.Errorf. When the document is missing the check is
// skipped, as Load skips Mistral's checks, unless CI is set.
//
// The document has one known error, allowed for here and in
// CheckModelResponse: ChatCompletionResponse (and FIMCompletionResponse,
// built on it) lists "data" among its required properties, with no
// schema, though Mistral's chat, FIM and agents completions never answer
// it and Mistral's SDKs do not read it. Such an answer without "data" is
// checked as if it had "data": null, so that every other rule applies.
func CheckModelSchema(t testing.TB, schema string, body []byte) {
	t.Helper()
	if !modelLoaded(t) {
		return
	}
	proxy := modelDoc.Components.Schemas.GetOrZero(schema)
	if proxy == nil {
		t.Fatalf("apitest: Mistral's model API document has no schema %s", schema)
		return
	}
	check, err := schemaCheck(proxy)
	if err != nil {
		t.Fatalf("apitest: Mistral's schema %s: %v", schema, err)
		return
	}
	modelReport(t, schema, body, check(body))
}

func loadModel() {
	admin, err := api.FindMistralDocument()
	if err != nil {
		modelErr = err
		return
	}
	doc, err := os.ReadFile(filepath.Join(filepath.Dir(admin), modelDocumentName))
	if err != nil {
		modelErr = err
		return
	}
	// The document's unresolved references (the speech stream's $defs)
	// are reported by the schema checks themselves; libopenapi's own log
	// of them would only clutter test output.
	cfg := datamodel.NewDocumentConfiguration()
	cfg.Logger = slog.New(slog.DiscardHandler)
	document, err := libopenapi.NewDocumentWithConfiguration(doc, cfg)
	if err != nil {
		modelErr = fmt.Errorf("parse Mistral's model API document: %w", err)
		return
	}
	// The document's $defs references elsewhere do not resolve; the model
	// is built all the same, and the schemas checked here do not use them.
	model, err := document.BuildV3Model()
	if model == nil {
		modelErr = fmt.Errorf("build Mistral's model API model: %w", err)
		return
	}
	modelDoc = &model.Model
}
