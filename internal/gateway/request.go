package gateway

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/stewardhq/steward/internal/steward"
)

// maxBodyBytes caps a request body.
const maxBodyBytes = 4 << 20

// Token counts. Without a tokenizer per model, the gateway counts a
// prompt's text in bytes. A token is at least one byte for every BPE
// tokenizer, so a byte a token bounds what a prompt can cost, and that
// bound is what a request reserves; about four bytes a token, the usual
// rule of thumb for English, is the estimate recorded when the upstream
// reports no usage (marked Estimated). A chat message adds
// messageOverheadTokens for its role and separators and a chat prompt
// replyOverheadTokens for the assistant turn's priming, to both.
const (
	messageOverheadTokens = 4
	replyOverheadTokens   = 3
)

// Bounds of what a request may ask for, so that its worst case, its
// prompt's bound plus MaxTokens for each of MaxChoices choices, stays far
// below what usage events count (usage.MaxCount, 2^40) and never
// overflows when priced.
const (
	// MaxTokens is the largest max_tokens (or max_completion_tokens).
	MaxTokens = 1 << 30
	// MaxChoices is the largest n.
	MaxChoices = 128
	// MaxPages is the largest number of pages an OCR request reserves.
	MaxPages = 1 << 20
)

// estimateTokens is ceil(n/4): the tokens of n bytes of text, estimated.
func estimateTokens(n int64) int64 { return (n + 3) / 4 }

// size is a prompt's size: bytes of text, and tokens counted exactly
// (token arrays, the messages' and the reply's overheads).
type size struct{ bytes, tokens int64 }

// estimate is the tokens size is likely to make.
func (s size) estimate() int64 { return estimateTokens(s.bytes) + s.tokens }

// bound is the most tokens size can make.
func (s size) bound() int64 { return s.bytes + s.tokens }

// request is what the gateway reads of a request body; every other field
// passes through untouched in the original bytes.
type request struct {
	model  string
	stream bool
	// maxTokens is 0 when the request gives none; maxTokensField is the
	// field's state in the body (absent, null or given).
	maxTokens      int64
	maxTokensField field
	n              int64
	prompt         size
	// pages bounds the pages of an OCR request's document; 0 when the
	// request does not, and the model's MaxPages bounds it.
	pages int64
	// lastUser is the text of the last user message, for the demo model.
	lastUser string
	// streamOptions is the raw stream_options, nil when absent or null;
	// streamOptionsField its state in the body.
	streamOptions      json.RawMessage
	streamOptionsField field
}

// field is the state of a top-level field in a request body.
type field uint8

const (
	fieldAbsent field = iota
	fieldNull
	fieldGiven
)

func fieldOf(raw json.RawMessage) field {
	switch {
	case len(raw) == 0:
		return fieldAbsent
	case string(raw) == "null":
		return fieldNull
	}
	return fieldGiven
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
	Tools               json.RawMessage `json:"tools"`
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

// parseRequest reads a body of kind k; when agents is set, the body may
// name an agent and no model, and the request's model is then "". Its errors are KindInvalid
// *steward.Error naming the field, answered 422 in the validation shape.
// Fields the gateway does not need are not checked: the upstream does.
func parseRequest(k bodyKind, agents bool, body []byte) (*request, error) {
	var wr wireRequest
	if err := json.Unmarshal(body, &wr); err != nil {
		return nil, steward.Invalid([]string{"body"}, "the body must be a JSON object")
	}
	req := &request{n: 1}
	switch {
	case !absent(wr.Model):
		if err := json.Unmarshal(wr.Model, &req.model); err != nil || req.model == "" {
			return nil, steward.Invalid([]string{"body", "model"}, "model must be a non-empty string")
		}
	case !agents:
		return nil, steward.Invalid([]string{"body", "model"}, "Field required")
	}
	switch k {
	case bodyInput:
		req.prompt = inputSize(wr.Input)
		return req, nil
	case bodyChatInput:
		if !absent(wr.Input) {
			req.prompt = size{bytes: int64(len(wr.Input))}
		}
		return req, nil
	case bodyOCR:
		// Fields of their own are read apart, so that a chat request's
		// wireRequest stays as small as it was.
		var ocr struct {
			Document json.RawMessage `json:"document"`
			Pages    json.RawMessage `json:"pages"`
		}
		_ = json.Unmarshal(body, &ocr)
		req.pages = pageBound(ocr.Document, ocr.Pages)
		return req, nil
	case bodyConversation:
		return req, parseConversation(req, &wr, body)
	case bodySpeech:
		if !absent(wr.Stream) {
			if err := json.Unmarshal(wr.Stream, &req.stream); err != nil {
				return nil, steward.Invalid([]string{"body", "stream"}, "stream must be a boolean")
			}
		}
		req.prompt = size{bytes: textLen(wr.Input)}
		return req, nil
	}
	if !absent(wr.Stream) {
		if err := json.Unmarshal(wr.Stream, &req.stream); err != nil {
			return nil, steward.Invalid([]string{"body", "stream"}, "stream must be a boolean")
		}
	}
	req.maxTokensField = fieldOf(wr.MaxTokens)
	for _, f := range []struct {
		name string
		raw  json.RawMessage
	}{{"max_tokens", wr.MaxTokens}, {"max_completion_tokens", wr.MaxCompletionTokens}} {
		if absent(f.raw) {
			continue
		}
		if err := json.Unmarshal(f.raw, &req.maxTokens); err != nil || req.maxTokens < 0 || req.maxTokens > MaxTokens {
			return nil, steward.Invalid([]string{"body", f.name}, "%s must be a whole number from 0 to %d", f.name, MaxTokens)
		}
		req.maxTokensField = fieldGiven
		break
	}
	if !absent(wr.N) {
		if err := json.Unmarshal(wr.N, &req.n); err != nil || req.n < 1 || req.n > MaxChoices {
			return nil, steward.Invalid([]string{"body", "n"}, "n must be a whole number from 1 to %d", MaxChoices)
		}
	}
	req.streamOptionsField = fieldOf(wr.StreamOptions)
	if !absent(wr.StreamOptions) {
		if bytes.TrimSpace(wr.StreamOptions)[0] != '{' {
			return nil, steward.Invalid([]string{"body", "stream_options"}, "stream_options must be an object")
		}
		req.streamOptions = wr.StreamOptions
	}
	if k == bodyFIM {
		req.prompt = size{bytes: textLen(wr.Prompt) + textLen(wr.Suffix), tokens: replyOverheadTokens}
		return req, nil
	}
	var msgs []wireMessage
	if !absent(wr.Messages) {
		if err := json.Unmarshal(wr.Messages, &msgs); err != nil {
			return nil, steward.Invalid([]string{"body", "messages"}, "messages must be an array of message objects")
		}
	}
	// Tool definitions are written into the prompt, as text.
	var n int64
	if !absent(wr.Tools) {
		n += int64(len(wr.Tools))
	}
	for _, m := range msgs {
		n += textLen(m.Content)
		if !absent(m.ToolCalls) {
			n += int64(len(m.ToolCalls))
		}
		if m.Role == "user" {
			req.lastUser = text(m.Content)
		}
	}
	req.prompt = size{bytes: n, tokens: int64(len(msgs))*messageOverheadTokens + replyOverheadTokens}
	return req, nil
}

// parseConversation reads a conversation's start, append or restart: its
// stream flag, its completion_args.max_tokens, and its prompt bounded by
// the JSON bytes of its inputs, instructions and tools, which are never
// fewer than their text's.
func parseConversation(req *request, wr *wireRequest, body []byte) error {
	var conv struct {
		Inputs         json.RawMessage `json:"inputs"`
		Instructions   json.RawMessage `json:"instructions"`
		CompletionArgs json.RawMessage `json:"completion_args"`
	}
	_ = json.Unmarshal(body, &conv)
	if !absent(wr.Stream) {
		if err := json.Unmarshal(wr.Stream, &req.stream); err != nil {
			return steward.Invalid([]string{"body", "stream"}, "stream must be a boolean")
		}
	}
	if !absent(conv.CompletionArgs) {
		var args struct {
			MaxTokens json.RawMessage `json:"max_tokens"`
		}
		if err := json.Unmarshal(conv.CompletionArgs, &args); err != nil {
			return steward.Invalid([]string{"body", "completion_args"}, "completion_args must be an object")
		}
		if !absent(args.MaxTokens) {
			if err := json.Unmarshal(args.MaxTokens, &req.maxTokens); err != nil || req.maxTokens < 0 || req.maxTokens > MaxTokens {
				return steward.Invalid([]string{"body", "completion_args", "max_tokens"}, "max_tokens must be a whole number from 0 to %d", MaxTokens)
			}
		}
	}
	var n int64
	for _, raw := range []json.RawMessage{conv.Inputs, conv.Instructions, wr.Tools} {
		if !absent(raw) {
			n += int64(len(raw))
		}
	}
	req.prompt = size{bytes: n, tokens: replyOverheadTokens}
	return nil
}

// maxOutput is the output each choice may produce: max_tokens, or the
// model's default when the request gives none.
func (r *request) maxOutput(m *model) int64 {
	if r.maxTokens == 0 {
		return m.maxOut
	}
	return r.maxTokens
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
func textLen(raw json.RawMessage) int64 {
	raw = bytes.TrimSpace(raw)
	if absent(raw) {
		return 0
	}
	switch raw[0] {
	case '"':
		// Most text has no escape: its length is its bytes', but where
		// invalid UTF-8 would be replaced.
		if len(raw) >= 2 && raw[len(raw)-1] == '"' && bytes.IndexByte(raw, '\\') < 0 && utf8.Valid(raw) {
			return int64(len(raw) - 2)
		}
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return int64(len(s))
		}
	case '[':
		var parts []json.RawMessage
		if json.Unmarshal(raw, &parts) == nil {
			var n int64
			for _, p := range parts {
				var cp contentPart
				switch {
				case len(p) > 0 && p[0] == '"':
					n += textLen(p)
				case json.Unmarshal(p, &cp) == nil && cp.Text != "":
					n += int64(len(cp.Text))
				default:
					n += int64(len(p))
				}
			}
			return n
		}
	}
	return int64(len(raw))
}

// inputSize is the size of an embeddings input: a string, an array of
// strings, or token arrays, which count exactly.
func inputSize(raw json.RawMessage) size {
	raw = bytes.TrimSpace(raw)
	if absent(raw) {
		return size{}
	}
	if raw[0] != '[' {
		return size{bytes: textLen(raw)}
	}
	var items []json.RawMessage
	if json.Unmarshal(raw, &items) != nil {
		return size{bytes: int64(len(raw))}
	}
	var s size
	for _, it := range items {
		it = bytes.TrimSpace(it)
		switch {
		case len(it) > 0 && it[0] == '"':
			s.bytes += textLen(it)
		case len(it) > 0 && it[0] == '[':
			var toks []json.RawMessage
			if json.Unmarshal(it, &toks) == nil {
				s.tokens += int64(len(toks))
			}
		default:
			s.tokens++
		}
	}
	return s
}

// edit sets a top-level field of a request body to value.
type edit struct {
	name  string
	value json.RawMessage
	// was is the field's state in the body.
	was field
}

// upstreamEdits are the changes the body of a chat or FIM request (agents
// completions included) needs before it is sent upstream, other bodies
// needing none, and whether they add include_usage to stream_options: a
// stream must end with a usage chunk, and a request without max_tokens
// must be given the output it reserved (maxOut), so that the upstream
// stops where the reservation does instead of at its own default.
func upstreamEdits(op *operation, req *request, maxOut int64) ([]edit, bool, error) {
	if op.body != bodyChat && op.body != bodyFIM {
		return nil, false, nil
	}
	var edits []edit
	if req.maxTokensField != fieldGiven {
		edits = append(edits, edit{name: "max_tokens", value: strconv.AppendInt(nil, maxOut, 10), was: req.maxTokensField})
	}
	if !req.stream {
		return edits, false, nil
	}
	if req.streamOptions == nil {
		return append(edits, edit{name: "stream_options", value: json.RawMessage(`{"include_usage":true}`), was: req.streamOptionsField}), true, nil
	}
	var opts map[string]json.RawMessage
	if err := json.Unmarshal(req.streamOptions, &opts); err != nil {
		return nil, false, steward.Invalid([]string{"body", "stream_options"}, "stream_options must be an object")
	}
	if string(bytes.TrimSpace(opts["include_usage"])) == "true" {
		return edits, false, nil
	}
	opts["include_usage"] = json.RawMessage("true")
	so, err := json.Marshal(opts)
	if err != nil {
		return nil, false, steward.Internal(err)
	}
	return append(edits, edit{name: "stream_options", value: so, was: fieldGiven}), true, nil
}

// applyEdits returns body with edits made. Fields the body does not have
// are appended to the original bytes; when one it has must change, the
// top-level object is re-encoded (its values stay byte for byte as they
// were, key order is lost), so that no field is sent twice.
func applyEdits(body []byte, edits []edit) ([]byte, error) {
	if len(edits) == 0 {
		return body, nil
	}
	if slices.ContainsFunc(edits, func(e edit) bool { return e.was != fieldAbsent }) {
		var top map[string]json.RawMessage
		if err := json.Unmarshal(body, &top); err != nil {
			return nil, steward.Invalid([]string{"body"}, "the body must be a JSON object")
		}
		for _, e := range edits {
			top[e.name] = e.value
		}
		out, err := json.Marshal(top)
		if err != nil {
			return nil, steward.Internal(err)
		}
		return out, nil
	}
	trimmed := bytes.TrimRight(body, " \t\r\n")
	if len(trimmed) == 0 || trimmed[len(trimmed)-1] != '}' {
		return nil, steward.Invalid([]string{"body"}, "the body must be a JSON object")
	}
	inner := bytes.TrimSpace(trimmed[bytes.IndexByte(trimmed, '{')+1 : len(trimmed)-1])
	out := make([]byte, 0, len(trimmed)+64)
	out = append(out, trimmed[:len(trimmed)-1]...)
	for i, e := range edits {
		if i > 0 || len(inner) > 0 {
			out = append(out, ',')
		}
		out = strconv.AppendQuote(out, e.name)
		out = append(out, ':')
		out = append(out, e.value...)
	}
	return append(out, '}'), nil
}

// pageBound is the most pages an OCR request can have read: one for an
// image, else as many as its pages field names (a list of page numbers, or
// a string of numbers and ranges such as "0,2-4"), capped at MaxPages; 0
// when neither bounds it. A field the upstream would refuse bounds
// nothing: the upstream answers it.
func pageBound(document, pages json.RawMessage) int64 {
	var doc struct {
		Type string `json:"type"`
	}
	if json.Unmarshal(document, &doc) == nil && doc.Type == "image_url" {
		return 1
	}
	pages = bytes.TrimSpace(pages)
	if absent(pages) {
		return 0
	}
	var list []int64
	if json.Unmarshal(pages, &list) == nil {
		return min(int64(len(list)), MaxPages)
	}
	var spec string
	if json.Unmarshal(pages, &spec) != nil {
		return 0
	}
	var n int64
	for part := range strings.SplitSeq(spec, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		a, err := strconv.ParseInt(strings.TrimSpace(lo), 10, 64)
		if err != nil || a < 0 {
			return 0
		}
		b := a
		if isRange {
			if b, err = strconv.ParseInt(strings.TrimSpace(hi), 10, 64); err != nil || b < a {
				return 0
			}
		}
		if n += min(b-a+1, MaxPages); n >= MaxPages {
			return MaxPages
		}
	}
	return n
}
