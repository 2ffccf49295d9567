// Package apitest checks HTTP responses against Steward's OpenAPI document
// and, for Mistral-compatible operations, against Mistral's Admin API
// document; and model API answers against Mistral's model API document:
// a whole answer of one of its operations (CheckModelResponse, with
// ModelOperations listing them), or a value the gateway writes itself
// (CheckModelSchema). It is meant for tests only.
package apitest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/config"
	verrors "github.com/pb33f/libopenapi-validator/errors"
	"github.com/pb33f/libopenapi-validator/router"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"

	"github.com/stewardhq/steward/api"
)

// ExtensionKey marks an operation of Steward's document as a Steward
// extension, exempt from the Mistral compatibility checks.
const ExtensionKey = "x-steward-extension"

const (
	legacyPrefix    = "/api/admin/"
	canonicalPrefix = "/v1/admin/"
	maxBodyInReport = 512
	maxReasonLength = 400
)

// Contract validates responses against the OpenAPI documents. It is safe for
// concurrent use.
type Contract struct {
	steward *spec
	mistral *spec
}

// spec is one parsed OpenAPI document with its router and validator.
type spec struct {
	name      string
	router    router.Router
	validator validator.Validator
}

var (
	loadOnce       sync.Once
	loaded         *Contract
	loadErr        error
	mistralMissing error
	skipLogged     atomic.Bool
)

// Load returns the contract built from Steward's document (package api) and
// Mistral's document (see api.FindMistralDocument). Both are parsed once per
// process. When Mistral's document is not at its default location the test
// fails if the CI environment variable is set; otherwise Mistral checks are
// skipped and the reason is logged once.
func Load(t testing.TB) *Contract {
	t.Helper()
	loadOnce.Do(load)
	if loadErr != nil {
		t.Fatalf("apitest: %v", loadErr)
	}
	if mistralMissing != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("apitest: Mistral's Admin API document is required when CI is set: %v", mistralMissing)
		}
		if skipLogged.CompareAndSwap(false, true) {
			t.Logf("apitest: Mistral-document checks are skipped, only Steward's document is used: %v", mistralMissing)
		}
	}
	return loaded
}

func load() {
	var mistralYAML []byte
	path, err := api.FindMistralDocument()
	switch {
	case errors.Is(err, api.ErrMistralDocumentNotFound):
		mistralMissing = err
	case err != nil:
		loadErr = err
		return
	default:
		mistralYAML, err = os.ReadFile(path)
		if err != nil {
			loadErr = fmt.Errorf("read Mistral's document: %w", err)
			return
		}
	}
	loaded, loadErr = newContract(api.OpenAPIYAML, mistralYAML)
}

// newContract parses Steward's document and, when mistralYAML is not empty,
// Mistral's document.
func newContract(stewardYAML, mistralYAML []byte) (*Contract, error) {
	c := &Contract{}
	var err error
	if c.steward, err = newSpec("Steward", stewardYAML); err != nil {
		return nil, err
	}
	if len(mistralYAML) > 0 {
		if c.mistral, err = newSpec("Mistral", mistralYAML); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func newSpec(name string, doc []byte) (*spec, error) {
	document, err := libopenapi.NewDocument(doc)
	if err != nil {
		return nil, fmt.Errorf("parse %s's OpenAPI document: %w", name, err)
	}
	model, err := document.BuildV3Model()
	if err != nil {
		return nil, fmt.Errorf("build %s's OpenAPI model: %w", name, err)
	}
	m := &model.Model
	return &spec{
		name:      name,
		router:    router.NewRouter(m, router.WithPathOnlyMatching()),
		validator: validator.NewValidatorFromV3Model(m, config.WithFormatAssertions()),
	}, nil
}

// HasMistral reports whether Mistral's document was loaded.
func (c *Contract) HasMistral() bool {
	return c.mistral != nil
}

// Check validates resp, whose body has already been read into body, against
// Steward's document; for operations that are not Steward extensions it
// also validates it against Mistral's document when that document defines
// the response status. A request under /api/admin/ is checked as its
// /v1/admin/ equivalent. Every problem is reported with t.Errorf. On return
// resp.Body reads body from the start.
func (c *Contract) Check(t testing.TB, req *http.Request, resp *http.Response, body []byte) {
	t.Helper()
	defer func() { resp.Body = io.NopCloser(bytes.NewReader(body)) }()

	vreq := canonicalRequest(req)
	var problems []string

	route, err := c.steward.router.FindRoute(vreq)
	if err != nil || route == nil || route.Operation == nil || !sameTrailingSlash(route.Path, vreq.URL.Path) {
		problems = append(problems, fmt.Sprintf("%s %s is not documented in Steward's OpenAPI document", vreq.Method, vreq.URL.Path))
		t.Errorf("%s", report(req, resp, body, problems))
		return
	}
	problems = append(problems, c.steward.validate(vreq, resp, body)...)

	if !IsExtension(route.Operation) && c.mistral != nil {
		mroute, err := c.mistral.router.FindRoute(vreq)
		switch {
		case err != nil || mroute == nil || mroute.Operation == nil:
			problems = append(problems, fmt.Sprintf(
				"%s %s (operationId %q) is not marked %s but Mistral's document has no such operation",
				vreq.Method, route.Path, route.Operation.OperationId, ExtensionKey))
		case definesStatus(mroute.Operation, resp.StatusCode):
			problems = append(problems, c.mistral.validate(vreq, resp, body)...)
		}
	}

	if len(problems) > 0 {
		t.Errorf("%s", report(req, resp, body, problems))
	}
}

// IsExtension reports whether op is marked x-steward-extension: true.
func IsExtension(op *v3.Operation) bool {
	if op == nil || op.Extensions == nil {
		return false
	}
	node := op.Extensions.GetOrZero(ExtensionKey)
	return node != nil && node.Value == "true"
}

// validate runs the response validator of s and returns its messages, each
// prefixed with the document name. An NDJSON body is validated line by
// line, each line against the media type's schema.
func (s *spec) validate(req *http.Request, resp *http.Response, body []byte) []string {
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/x-ndjson") && resp.StatusCode < 300 {
		var out []string
		for i, line := range bytes.Split(bytes.TrimSuffix(body, []byte("\n")), []byte("\n")) {
			if len(line) == 0 && len(body) == 0 {
				break
			}
			for _, p := range s.validateOne(req, resp, line) {
				out = append(out, fmt.Sprintf("line %d: %s", i+1, p))
			}
		}
		return out
	}
	return s.validateOne(req, resp, body)
}

func (s *spec) validateOne(req *http.Request, resp *http.Response, body []byte) []string {
	resp.Body = io.NopCloser(bytes.NewReader(body))
	ok, errs := s.validator.ValidateHttpResponse(req, resp)
	if ok && len(errs) == 0 {
		return nil
	}
	out := make([]string, 0, len(errs))
	for _, e := range errs {
		out = append(out, s.name+": "+formatError(e))
	}
	if len(out) == 0 {
		out = append(out, s.name+": response rejected without details")
	}
	return out
}

func formatError(e *verrors.ValidationError) string {
	var b strings.Builder
	b.WriteString(e.Message)
	if e.Reason != "" && e.Reason != e.Message {
		b.WriteString(": ")
		b.WriteString(e.Reason)
	}
	for _, f := range e.SchemaValidationErrors {
		b.WriteString("\n      - ")
		loc := f.FieldPath
		if loc == "" {
			loc = "/" + strings.Join(f.InstancePath, "/")
		}
		b.WriteString(loc)
		b.WriteString(": ")
		b.WriteString(shorten(f.Reason, maxReasonLength))
		if f.KeywordLocation != "" {
			b.WriteString(" (schema ")
			b.WriteString(f.KeywordLocation)
			b.WriteString(")")
		}
	}
	return b.String()
}

func report(req *http.Request, resp *http.Response, body []byte, problems []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "response does not match the API contract: %s %s -> %d\n", req.Method, req.URL.RequestURI(), resp.StatusCode)
	for _, p := range problems {
		b.WriteString("  - ")
		b.WriteString(p)
		b.WriteString("\n")
	}
	b.WriteString("  body: ")
	b.WriteString(truncate(body))
	return b.String()
}

// shorten cuts s to at most n bytes, marking the cut; enum failures list
// every allowed value and would otherwise flood the report.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// sameTrailingSlash reports whether the request path and the matched path
// template agree on a trailing slash; the router ignores the difference but
// Steward's mux does not.
func sameTrailingSlash(template, path string) bool {
	return strings.HasSuffix(template, "/") == strings.HasSuffix(path, "/")
}

func truncate(body []byte) string {
	if len(body) <= maxBodyInReport {
		return string(body)
	}
	return string(body[:maxBodyInReport]) + "... (" + strconv.Itoa(len(body)) + " bytes)"
}

// definesStatus reports whether op documents the status explicitly or by
// its range (for example 4XX); a default response does not count.
func definesStatus(op *v3.Operation, status int) bool {
	if op.Responses == nil || op.Responses.Codes == nil {
		return false
	}
	return op.Responses.Codes.GetOrZero(strconv.Itoa(status)) != nil ||
		op.Responses.Codes.GetOrZero(fmt.Sprintf("%dXX", status/100)) != nil
}

// canonicalRequest returns a clone of req whose path is moved from
// /api/admin/ to /v1/admin/; other requests are cloned unchanged.
func canonicalRequest(req *http.Request) *http.Request {
	clone := req.Clone(req.Context())
	if rest, ok := strings.CutPrefix(clone.URL.Path, legacyPrefix); ok {
		clone.URL.Path = canonicalPrefix + rest
		if raw, ok := strings.CutPrefix(clone.URL.RawPath, legacyPrefix); ok {
			clone.URL.RawPath = canonicalPrefix + raw
		} else {
			clone.URL.RawPath = ""
		}
		if uri, ok := strings.CutPrefix(clone.RequestURI, legacyPrefix); ok {
			clone.RequestURI = canonicalPrefix + uri
		}
	}
	return clone
}
