package apitest

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/pb33f/libopenapi"
	"github.com/pb33f/libopenapi-validator/config"
	"github.com/pb33f/libopenapi-validator/schema_validation"
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
func CheckModelSchema(t testing.TB, schema string, body []byte) {
	t.Helper()
	modelOnce.Do(loadModel)
	if modelErr != nil {
		missing := errors.Is(modelErr, api.ErrMistralDocumentNotFound) || errors.Is(modelErr, fs.ErrNotExist)
		if missing && os.Getenv("CI") == "" {
			t.Logf("apitest: the model API check is skipped: %v", modelErr)
			return
		}
		t.Fatalf("apitest: %v", modelErr)
		return
	}
	proxy := modelDoc.Components.Schemas.GetOrZero(schema)
	if proxy == nil {
		t.Fatalf("apitest: Mistral's model API document has no schema %s", schema)
		return
	}
	ok, errs := schema_validation.NewSchemaValidator(config.WithFormatAssertions()).ValidateSchemaBytes(proxy.Schema(), body)
	if ok && len(errs) == 0 {
		return
	}
	problems := make([]string, 0, len(errs))
	for _, e := range errs {
		problems = append(problems, formatError(e))
	}
	t.Errorf("%s does not match Mistral's %s: %v", truncate(body), schema, problems)
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
	document, err := libopenapi.NewDocument(doc)
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
