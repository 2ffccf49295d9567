package apitest

import "testing"

// TestCheckModelSchema: CheckModelSchema passes a valid value, reports
// each way one breaks its schema, and fails on a schema the document
// does not have.
func TestCheckModelSchema(t *testing.T) {
	modelOnce.Do(loadModel)
	if modelErr != nil {
		t.Skipf("Mistral's model API document: %v", modelErr)
	}
	for _, c := range []struct {
		name, body string
		wants      []string
	}{
		{"valid", `{"id":"c1","model":"m","choices":[{"index":0,"delta":{},"finish_reason":"length"}],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}`, nil},
		{"unknown finish_reason", `{"id":"c1","model":"m","choices":[{"index":0,"delta":{},"finish_reason":"cut"}]}`, []string{"finish_reason"}},
		{"no model", `{"id":"c1","choices":[]}`, []string{"model"}},
		{"usage without its total", `{"id":"c1","model":"m","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2}}`, []string{"total_tokens"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			rec := &recorder{TB: t}
			CheckModelSchema(rec, "CompletionChunk", []byte(c.body))
			if c.wants == nil {
				expectPass(t, rec)
				return
			}
			expectFailure(t, rec, c.wants...)
		})
	}
	rec := &recorder{TB: t}
	CheckModelSchema(rec, "NoSuchSchema", []byte(`{}`))
	if len(rec.fatals) != 1 {
		t.Fatalf("an unknown schema: %q, want one fatal error", rec.failures())
	}
}
