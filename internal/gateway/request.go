package gateway

import (
	"bytes"
	"encoding/json"

	"github.com/stewardhq/steward/internal/steward"
)

// maxBodyBytes caps a request body.
const maxBodyBytes = 4 << 20

// Token estimates. Without a tokenizer per model, the gateway counts about
// four bytes of text per token (ceil(bytes/4)), the usual rule of thumb for
// English with BPE tokenizers; a chat message adds messageOverheadTokens for
// its role and separators and a chat prompt replyOverheadTokens for the
// assistant turn's priming. Estimates size the reservation and, when the
// upstream reports no usage, the recorded usage (marked Estimated).
const (
	messageOverheadTokens = 4
	replyOverheadTokens   = 3
)

// estimateTokens is ceil(n/4): the tokens of n bytes of text.
func estimateTokens(n int) int64 { return (int64(n) + 3) / 4 }

// request is what the gateway reads of a request body; every other field
// passes through untouched in the original bytes.
type request struct {
	model     string
	stream    bool
	maxTokens int64 // 0 when the request gives none
	n         int64
	// promptTokens is the estimate of the prompt.
	promptTokens int64
	// lastUser is the text of the last user message, for the demo model.
	lastUser string
	// streamOptions is the raw stream_options, nil when absent or null.
	streamOptions json.RawMessage
}

// wireRequest picks the fields the gateway reads; json.RawMessage lets each
// be checked on its own and named in a validation error.
type wireRequest struct {
	Model               json.RawMessage `json:"model"`
	Stream              json.RawMessage `json:"stream"`
	MaxTokens           json.RawMessage `json:"max_tokens"`
	MaxCompletionTokens json.RawMessage `json:"max_completion_tokens"`
	N                   json.RawMessage `json:"n"`
	StreamOptions       json.RawMessage `json:"stream_options"`
	Messages            json.RawMessage `json:"messages"`
	Prompt              json.RawMessage `json:"prompt"`
	Suffix              json.RawMessage `json:"suffix"`
	Input               json.RawMessage `json:"input"`
}

type wireMessage struct {
	Role      string          `json:"role"`
	Content   json.RawMessage `json:"content"`
	ToolCalls json.RawMessage `json:"tool_calls"`
}

func absent(raw json.RawMessage) bool { return len(raw) == 0 || string(raw) == "null" }

// parseRequest reads body for endpoint ep. Its errors are KindInvalid
// *steward.Error naming the field, answered 422 in the validation shape.
// Fields the gateway does not need are not checked: the upstream does.
func parseRequest(ep string, body []byte) (*request, error) {
	var wr wireRequest
	if err := json.Unmarshal(body, &wr); err != nil {
		return nil, steward.Invalid([]string{"body"}, "the body must be a JSON object")
	}
	req := &request{n: 1}
	if absent(wr.Model) {
		return nil, steward.Invalid([]string{"body", "model"}, "Field required")
	}
	if err := json.Unmarshal(wr.Model, &req.model); err != nil || req.model == "" {
		return nil, steward.Invalid([]string{"body", "model"}, "model must be a non-empty string")
	}
	if ep == EndpointEmbeddings {
		req.promptTokens = inputTokens(wr.Input)
		return req, nil
	}
	if !absent(wr.Stream) {
		if err := json.Unmarshal(wr.Stream, &req.stream); err != nil {
			return nil, steward.Invalid([]string{"body", "stream"}, "stream must be a boolean")
		}
	}
	for _, f := range []struct {
		name string
		raw  json.RawMessage
	}{{"max_tokens", wr.MaxTokens}, {"max_completion_tokens", wr.MaxCompletionTokens}} {
		if absent(f.raw) {
			continue
		}
		if err := json.Unmarshal(f.raw, &req.maxTokens); err != nil || req.maxTokens < 0 {
			return nil, steward.Invalid([]string{"body", f.name}, "%s must be a non-negative integer", f.name)
		}
		break
	}
	if !absent(wr.N) {
		if err := json.Unmarshal(wr.N, &req.n); err != nil || req.n < 1 {
			return nil, steward.Invalid([]string{"body", "n"}, "n must be a positive integer")
		}
	}
	if !absent(wr.StreamOptions) {
		if bytes.TrimSpace(wr.StreamOptions)[0] != '{' {
			return nil, steward.Invalid([]string{"body", "stream_options"}, "stream_options must be an object")
		}
		req.streamOptions = wr.StreamOptions
	}
	if ep == EndpointFIM {
		req.promptTokens = estimateTokens(textLen(wr.Prompt)+textLen(wr.Suffix)) + replyOverheadTokens
		return req, nil
	}
	var msgs []wireMessage
	if !absent(wr.Messages) {
		if err := json.Unmarshal(wr.Messages, &msgs); err != nil {
			return nil, steward.Invalid([]string{"body", "messages"}, "messages must be an array of message objects")
		}
	}
	n := 0
	for _, m := range msgs {
		n += textLen(m.Content)
		if !absent(m.ToolCalls) {
			n += len(m.ToolCalls)
		}
		if m.Role == "user" {
			req.lastUser = text(m.Content)
		}
	}
	req.promptTokens = estimateTokens(n) + int64(len(msgs))*messageOverheadTokens + replyOverheadTokens
	return req, nil
}

// worstOutput is the output the request may produce at most: max_tokens
// (or the model's default) for each of its n choices.
func (r *request) worstOutput(m *model) int64 {
	out := r.maxTokens
	if out == 0 {
		out = m.maxOut
	}
	return out * r.n
}

// contentPart is a part of an array content or of an array prompt.
type contentPart struct {
	Text string `json:"text"`
}

// text returns the text of a content: a string, or the text parts of an
// array; anything else has no text.
func text(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return ""
	}
	switch raw[0] {
	case '"':
		var s string
		_ = json.Unmarshal(raw, &s)
		return s
	case '[':
		var parts []contentPart
		if json.Unmarshal(raw, &parts) != nil {
			return ""
		}
		var b []byte
		for _, p := range parts {
			b = append(b, p.Text...)
		}
		return string(b)
	}
	return ""
}

// textLen is the byte length of a content's text (a string, or an array
// of strings or text parts); anything else, such as an image part, counts
// its JSON bytes, which errs towards reserving more.
func textLen(raw json.RawMessage) int {
	raw = bytes.TrimSpace(raw)
	if absent(raw) {
		return 0
	}
	switch raw[0] {
	case '"':
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return len(s)
		}
	case '[':
		var parts []json.RawMessage
		if json.Unmarshal(raw, &parts) == nil {
			n := 0
			for _, p := range parts {
				var cp contentPart
				switch {
				case len(p) > 0 && p[0] == '"':
					n += textLen(p)
				case json.Unmarshal(p, &cp) == nil && cp.Text != "":
					n += len(cp.Text)
				default:
					n += len(p)
				}
			}
			return n
		}
	}
	return len(raw)
}

// inputTokens estimates an embeddings input: a string, an array of
// strings, or token arrays, which count exactly.
func inputTokens(raw json.RawMessage) int64 {
	raw = bytes.TrimSpace(raw)
	if absent(raw) {
		return 0
	}
	if raw[0] != '[' {
		return estimateTokens(textLen(raw))
	}
	var items []json.RawMessage
	if json.Unmarshal(raw, &items) != nil {
		return estimateTokens(len(raw))
	}
	var n int64
	for _, it := range items {
		it = bytes.TrimSpace(it)
		switch {
		case len(it) > 0 && it[0] == '"':
			n += estimateTokens(textLen(it))
		case len(it) > 0 && it[0] == '[':
			var toks []json.RawMessage
			if json.Unmarshal(it, &toks) == nil {
				n += int64(len(toks))
			}
		default:
			n++
		}
	}
	return n
}

// withIncludeUsage returns body asking the upstream to end a stream with a
// usage chunk, and whether it had to change body to do so. An absent
// stream_options is appended to the original bytes; a present one without
// include_usage true is rewritten, which re-encodes the top-level object
// (its values stay byte for byte as they were, key order is lost).
func withIncludeUsage(body []byte, streamOptions json.RawMessage) ([]byte, bool, error) {
	if streamOptions == nil {
		trimmed := bytes.TrimRight(body, " \t\r\n")
		if len(trimmed) == 0 || trimmed[len(trimmed)-1] != '}' {
			return nil, false, steward.Invalid([]string{"body"}, "the body must be a JSON object")
		}
		inner := bytes.TrimSpace(trimmed[bytes.IndexByte(trimmed, '{')+1 : len(trimmed)-1])
		out := make([]byte, 0, len(trimmed)+40)
		out = append(out, trimmed[:len(trimmed)-1]...)
		if len(inner) > 0 {
			out = append(out, ',')
		}
		out = append(out, `"stream_options":{"include_usage":true}}`...)
		return out, true, nil
	}
	var opts map[string]json.RawMessage
	if err := json.Unmarshal(streamOptions, &opts); err != nil {
		return nil, false, steward.Invalid([]string{"body", "stream_options"}, "stream_options must be an object")
	}
	if string(bytes.TrimSpace(opts["include_usage"])) == "true" {
		return body, false, nil
	}
	opts["include_usage"] = json.RawMessage("true")
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return nil, false, steward.Invalid([]string{"body"}, "the body must be a JSON object")
	}
	so, err := json.Marshal(opts)
	if err != nil {
		return nil, false, steward.Internal(err)
	}
	top["stream_options"] = so
	out, err := json.Marshal(top)
	if err != nil {
		return nil, false, steward.Internal(err)
	}
	return out, true, nil
}
