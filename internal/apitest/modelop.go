package apitest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"mime"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/pb33f/jsonschema/v6"
	"github.com/pb33f/libopenapi-validator/config"
	"github.com/pb33f/libopenapi-validator/schema_validation"
	"github.com/pb33f/libopenapi/datamodel/high/base"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"

	"github.com/stewardhq/steward/api"
)

// ModelOperation is one operation of Mistral's model API document.
type ModelOperation struct {
	// ID is the operation's operationId.
	ID string
	// Method is the HTTP method, upper case.
	Method string
	// Path is the path as the document writes it: a streamed variant
	// keeps its "#stream" suffix (the same URL, asked with stream true).
	Path string
}

// ModelOperations lists every operation of Mistral's model API document,
// in the document's order. When the document is missing the test is
// skipped, unless CI is set.
func ModelOperations(t testing.TB) []ModelOperation {
	t.Helper()
	if !modelLoaded(t) {
		t.SkipNow()
	}
	var ops []ModelOperation
	for path, item := range modelDoc.Paths.PathItems.FromOldest() {
		for method, op := range item.GetOperations().FromOldest() {
			ops = append(ops, ModelOperation{ID: op.OperationId, Method: strings.ToUpper(method), Path: path})
		}
	}
	return ops
}

// CheckModelResponse validates an answer of the operation operationID of
// Mistral's model API document against the schema the document gives for
// its status and media type. A text/event-stream body is checked event by
// event: each event, {"event": its name when it has one, "data": its JSON},
// against the stream's schema ("data: [DONE]" ends a stream and is not
// checked). A binary body (a file, audio) is not checked beyond its media
// type; an answer the document gives no content must be empty. Every
// problem is reported with t.Errorf. When the document is missing the
// check is skipped, as CheckModelSchema's is.
func CheckModelResponse(t testing.TB, operationID string, status int, contentType string, body []byte) {
	t.Helper()
	if !modelLoaded(t) {
		return
	}
	op := modelOperation(operationID)
	if op == nil {
		t.Fatalf("apitest: Mistral's model API document has no operation %s", operationID)
		return
	}
	var resp *v3.Response
	if op.Responses != nil && op.Responses.Codes != nil {
		resp = op.Responses.Codes.GetOrZero(strconv.Itoa(status))
	}
	if resp == nil {
		t.Errorf("%s answered %d, which Mistral's model API document does not give it: %s", operationID, status, truncate(body))
		return
	}
	if resp.Content == nil || resp.Content.Len() == 0 {
		if len(body) > 0 {
			t.Errorf("%s answered %d with a body, which Mistral's model API document does not give it: %s", operationID, status, truncate(body))
		}
		return
	}
	mediaType, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		t.Errorf("%s answered %d with the content type %q: %v", operationID, status, contentType, err)
		return
	}
	media := resp.Content.GetOrZero(mediaType)
	if media == nil {
		t.Errorf("%s answered %d as %s; Mistral's model API document gives it %v", operationID, status, mediaType, mediaTypes(resp))
		return
	}
	if media.Schema == nil {
		return
	}
	check, err := cachedCheck(operationID+" "+strconv.Itoa(status)+" "+mediaType, media.Schema)
	if err != nil {
		t.Fatalf("apitest: the schema of %s's %d answer as %s: %v", operationID, status, mediaType, err)
		return
	}
	switch {
	case mediaType == "text/event-stream":
		events, err := sseEvents(body)
		if err != nil {
			t.Errorf("%s's event stream: %v: %s", operationID, err, truncate(body))
			return
		}
		if len(events) == 0 {
			t.Errorf("%s's event stream has no event: %s", operationID, truncate(body))
		}
		for _, e := range events {
			modelReport(t, operationID+"'s event", e, check(e))
		}
	case mediaType == "application/json" || strings.HasSuffix(mediaType, "+json"):
		modelReport(t, operationID+"'s answer", body, check(body))
	}
}

// modelLoaded loads Mistral's model API document once and reports whether
// it is there; a missing document fails the test when CI is set.
func modelLoaded(t testing.TB) bool {
	t.Helper()
	modelOnce.Do(loadModel)
	if modelErr == nil {
		return true
	}
	missing := errors.Is(modelErr, api.ErrMistralDocumentNotFound) || errors.Is(modelErr, fs.ErrNotExist)
	if missing && os.Getenv("CI") == "" {
		t.Logf("apitest: the model API check is skipped: %v", modelErr)
		return false
	}
	t.Fatalf("apitest: %v", modelErr)
	return false
}

func modelOperation(id string) *v3.Operation {
	for _, item := range modelDoc.Paths.PathItems.FromOldest() {
		for _, op := range item.GetOperations().FromOldest() {
			if op.OperationId == id {
				return op
			}
		}
	}
	return nil
}

func mediaTypes(resp *v3.Response) []string {
	var out []string
	for name := range resp.Content.KeysFromOldest() {
		out = append(out, name)
	}
	return out
}

// componentName is the name of the component schema proxy refers to, or ""
// for a schema written in place.
func componentName(proxy *base.SchemaProxy) string {
	ref := proxy.GetReference()
	return ref[strings.LastIndex(ref, "/")+1:]
}

// dataQuirk holds the component schemas that require a "data" member
// Mistral's answers never have (see CheckModelSchema).
var dataQuirk = map[string]bool{"ChatCompletionResponse": true, "FIMCompletionResponse": true}

// checks holds the schema checks of answers already checked, by operation,
// status and media type.
var checks sync.Map

type checkFunc = func([]byte) []string

// cachedCheck returns the check of proxy's schema that key names, built
// once.
func cachedCheck(key string, proxy *base.SchemaProxy) (checkFunc, error) {
	if c, ok := checks.Load(key); ok {
		return c.(checkFunc), nil
	}
	c, err := schemaCheck(proxy)
	if err != nil {
		return nil, err
	}
	checks.Store(key, c)
	return c, nil
}

// schemaCheck returns a function that validates a JSON value against the
// schema of proxy and returns its problems. A schema libopenapi cannot
// build (the speech stream's refers to a $defs of its own, which libopenapi
// looks for at the document's root) is compiled from its text alone, as
// the standalone JSON Schema it is.
func schemaCheck(proxy *base.SchemaProxy) (checkFunc, error) {
	name := componentName(proxy)
	if schema := proxy.Schema(); schema != nil {
		return func(body []byte) []string {
			if dataQuirk[name] {
				body = withData(body)
			}
			ok, errs := schema_validation.NewSchemaValidator(config.WithFormatAssertions()).ValidateSchemaBytes(schema, body)
			if ok && len(errs) == 0 {
				return nil
			}
			problems := make([]string, 0, len(errs))
			for _, e := range errs {
				problems = append(problems, formatError(e))
			}
			return problems
		}, nil
	}
	node := proxy.GetValueNode()
	if node == nil {
		return nil, fmt.Errorf("it does not build: %w", proxy.GetBuildError())
	}
	var doc any
	if err := node.Decode(&doc); err != nil {
		return nil, err
	}
	raw, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	if doc, err = jsonschema.UnmarshalJSON(bytes.NewReader(raw)); err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	const url = "https://api.mistral.ai/schema.json"
	if err := c.AddResource(url, doc); err != nil {
		return nil, err
	}
	compiled, err := c.Compile(url)
	if err != nil {
		return nil, fmt.Errorf("neither libopenapi nor a JSON Schema compiler builds it: %v; %w", proxy.GetBuildError(), err)
	}
	return func(body []byte) []string {
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
		if err != nil {
			return []string{err.Error()}
		}
		if err := compiled.Validate(v); err != nil {
			return []string{shorten(err.Error(), 4*maxReasonLength)}
		}
		return nil
	}, nil
}

// withData returns body, a JSON object, with "data": null added when it
// has no "data" (see CheckModelSchema).
func withData(body []byte) []byte {
	var members map[string]json.RawMessage
	if json.Unmarshal(body, &members) != nil {
		return body
	}
	if _, ok := members["data"]; ok {
		return body
	}
	members["data"] = json.RawMessage("null")
	out, err := json.Marshal(members)
	if err != nil {
		return body
	}
	return out
}

// modelReport reports problems of body, a JSON value, with t.Errorf.
func modelReport(t testing.TB, what string, body []byte, problems []string) {
	t.Helper()
	if len(problems) > 0 {
		t.Errorf("%s %s does not match Mistral's model API document: %v", what, truncate(body), problems)
	}
}

// sseEvents splits an event stream into its events, each as the JSON
// object {"event": name, "data": value}; "event" is left out when the
// event has no name, and an event whose data is [DONE] is dropped.
func sseEvents(body []byte) ([][]byte, error) {
	var out [][]byte
	var name string
	var data []string
	flush := func() error {
		defer func() { name, data = "", nil }()
		if len(data) == 0 {
			return nil
		}
		joined := strings.Join(data, "\n")
		if joined == "[DONE]" {
			return nil
		}
		if !json.Valid([]byte(joined)) {
			return fmt.Errorf("an event's data is not JSON: %q", joined)
		}
		event := map[string]json.RawMessage{"data": json.RawMessage(joined)}
		if name != "" {
			event["event"], _ = json.Marshal(name)
		}
		b, err := json.Marshal(event)
		if err != nil {
			return err
		}
		out = append(out, b)
		return nil
	}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 0, 64*1024), 16<<20)
	for sc.Scan() {
		line := strings.TrimSuffix(sc.Text(), "\r")
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch {
		case line == "":
			if err := flush(); err != nil {
				return nil, err
			}
		case field == "event":
			name = value
		case field == "data":
			data = append(data, value)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, flush()
}
