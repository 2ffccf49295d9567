package gateway

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stewardhq/steward/internal/billing"
	"github.com/stewardhq/steward/internal/inference"
	"github.com/stewardhq/steward/internal/steward"
)

const (
	// maxAnswerBytes caps a non-streaming upstream answer, which the
	// gateway holds in memory to read its usage before answering.
	maxAnswerBytes = 64 << 20
	// maxLineBytes caps an SSE line the gateway parses; a longer line is
	// passed through unparsed.
	maxLineBytes = 1 << 20
	// recordTimeout bounds settling and recording once the client's
	// context may be gone.
	recordTimeout = 10 * time.Second
)

// hopHeaders, canonical, are not copied from an upstream answer: they
// describe the upstream connection, and Content-Length is the gateway's to
// set.
var hopHeaders = []string{
	"Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Connection",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade", "Content-Length",
}

// exchange is one request in flight.
type exchange struct {
	g     *Gateway
	w     http.ResponseWriter
	r     *http.Request
	id    string
	start time.Time

	key    steward.Principal
	op     *operation
	m      *model
	req    *request
	ticket inference.Ticket
	// intent is the reservation being stored while the upstream works.
	intent inference.Intent
	// bound and worst are the prompt and output tokens reserved, pages the
	// pages, seconds the seconds of audio.
	bound, worst, pages, seconds int64
	// upload, when set, is the body to send upstream as it arrives (a
	// multipart form), of the client's Content-Type.
	upload io.Reader
	// upstream is the index of the upstream that answered, -1 for none.
	upstream int
}

// serve handles a POST to a model endpoint once the key is checked.
func (x *exchange) serve() {
	if x.op.body == bodyUpload {
		x.serveUpload()
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(x.w, x.r.Body, maxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			x.fail(steward.Errorf(steward.KindTooLarge, "the request body exceeds %d bytes", maxBodyBytes))
			return
		}
		x.fail(steward.Invalid([]string{"body"}, "the request body could not be read"))
		return
	}
	req, err := parseRequest(x.op.body, x.op.agents, body)
	if err != nil {
		x.fail(err)
		return
	}
	x.req = req
	if !x.ownsFileChunks(body) {
		return
	}
	m := x.model()
	if m == nil {
		return
	}
	addedUsage := false
	if !m.demo {
		var edits []edit
		if edits, addedUsage, err = upstreamEdits(x.op, req, m.maxOut); err == nil {
			body, err = applyEdits(body, edits)
		}
		if err != nil {
			x.fail(err)
			return
		}
	}
	if !x.reserve() {
		return
	}
	if m.demo {
		x.demo()
		return
	}
	x.forward(body, addedUsage)
}

// model finds the model of x.req, the agent model when it names none and
// may, and sets x.m; or answers that the key may not call it, or that it
// does not offer the operation, as for a model that does not exist.
func (x *exchange) model() *model {
	req := x.req
	if req.model == "" {
		if x.g.agentModel == "" {
			x.fail(&steward.Error{Kind: steward.KindNotFound, Field: []string{"body", "model"}, Code: "model_not_found",
				Message: "the request names no model, and no agent model is configured to serve agents"})
			return nil
		}
		req.model = x.g.agentModel
	}
	m := x.g.models[req.model]
	switch {
	case m == nil || !x.key.MayUse(m.name):
		x.fail(&steward.Error{Kind: steward.KindNotFound, Field: []string{"body", "model"}, Code: "model_not_found", Message: fmt.Sprintf("model %q does not exist", req.model)})
		return nil
	case !m.endpoints[x.op.offeredBy]:
		x.fail(&steward.Error{Kind: steward.KindNotFound, Field: []string{"body", "model"}, Code: "model_not_found", Message: fmt.Sprintf("model %q does not offer %s", req.model, x.upstreamPath())})
		return nil
	}
	x.m = m
	return m
}

// reserve reserves the request's worst case with the limits, in each unit
// its operation is metered in, and starts recording its intent; or
// answers why it cannot.
func (x *exchange) reserve() bool {
	m, req := x.m, x.req
	x.bound, x.upstream = req.prompt.bound(), -1
	switch {
	case x.op.generates():
		x.worst = req.maxOutput(m) * req.n
	case x.op.body == bodyOCR:
		x.pages = req.pages
		if x.pages == 0 {
			x.pages = m.maxPages
		}
	}
	if x.op.audio {
		x.seconds = m.maxAudioSeconds
	}
	worst := x.reserved()
	ticket, err := x.g.limits.Reserve(x.r.Context(), x.key, m.name, worst.quantity())
	if err != nil {
		x.fail(err)
		return false
	}
	x.ticket = ticket
	x.ticketHeaders()
	x.intent, err = x.g.rec.Intend(x.usage(worst))
	if err != nil {
		x.ticket.Settle(billing.Quantity{})
		x.logAttrs(x.r.Context(), slog.LevelError, "recording usage failed", slog.String("model", m.name), slog.String("err", err.Error()))
		x.unrecorded()
		return false
	}
	return true
}

// reserved is the outcome the request reserved, estimated.
func (x *exchange) reserved() outcome {
	return outcome{in: x.bound, out: x.worst, pages: x.pages, seconds: x.seconds, estimated: true}
}

// logAttrs logs with the gateway's logger, adding the request's id. The
// id is added here rather than carried by a logger of the request's own,
// which would cost every request its making.
func (x *exchange) logAttrs(ctx context.Context, level slog.Level, msg string, attrs ...slog.Attr) {
	if !x.g.log.Enabled(ctx, level) {
		return
	}
	x.g.log.LogAttrs(ctx, level, msg, append([]slog.Attr{slog.String("request_id", x.id)}, attrs...)...)
}

// ticketHeaders sets the ticket's headers and the request id, over any
// the upstream sent.
func (x *exchange) ticketHeaders() {
	h := x.w.Header()
	for k, vs := range x.ticket.Headers() {
		h[k] = vs
	}
	h[steward.RequestIDHeader] = []string{x.id}
}

// upstreamHeaders copies an upstream answer's end-to-end headers.
func (x *exchange) upstreamHeaders(up http.Header) {
	h := x.w.Header()
	for k, vs := range up {
		h[k] = vs
	}
	for _, k := range hopHeaders {
		delete(h, k)
	}
	x.ticketHeaders()
}

// outcome is what a request used, as it is settled and recorded.
type outcome struct {
	in, out        int64
	pages, seconds int64
	// estimated is set when the tokens are the gateway's estimate, the
	// upstream having reported none.
	estimated bool
	// overrun is set when the upstream went beyond the reservation: it
	// reported more than was reserved, or the gateway cut its stream.
	overrun bool
}

// beyond marks o overrun when it used more than prompt and out tokens, or
// than pages or seconds of audio.
func (o *outcome) beyond(prompt, out, pages, seconds int64) {
	o.overrun = o.overrun || o.in > prompt || o.out > out || o.pages > pages || o.seconds > seconds
}

// quantity is what o used, as it is priced.
func (o *outcome) quantity() billing.Quantity {
	return billing.Quantity{InputTokens: o.in, OutputTokens: o.out, Pages: o.pages, AudioSeconds: o.seconds}
}

// estimatedOutput estimates the tokens of n bytes of output. An upstream
// given max_tokens stops there, so an estimate never goes beyond the
// reservation: only what an upstream reports, or what the gateway counts
// in a stream, can.
func (x *exchange) estimatedOutput(n int64) int64 {
	return min(estimateTokens(n), x.worst)
}

// upstreamPath is the path of the request's operation under an upstream's
// BaseURL.
func (x *exchange) upstreamPath() string {
	if x.op.pathOfRequest {
		return strings.TrimPrefix(x.r.URL.EscapedPath(), "/v1")
	}
	return x.op.path
}

// upstreamName is the URL of the upstream that answered, without its
// password, or "" for none.
func (x *exchange) upstreamName() string {
	if x.upstream < 0 {
		return ""
	}
	return x.m.upstreamNames[x.upstream]
}

// finish settles the ticket with what was used and records it, with a
// context of its own: the client's may be cancelled already. An error
// means the usage is not durable, so an answer not yet sent must not be.
// Usage beyond the reservation is recorded as it was, marked Overrun and
// logged with the upstream that answered, so that the admin sees which
// model server does not stop where it is asked to.
func (x *exchange) finish(o outcome) error {
	bound := x.bound
	if x.op.inputUnbounded {
		bound = max(bound, o.in)
	}
	o.beyond(bound, x.worst, x.pages, x.seconds)
	x.ticket.Settle(o.quantity())
	ctx, cancel := context.WithTimeout(context.WithoutCancel(x.r.Context()), recordTimeout)
	defer cancel()
	u := x.usage(o)
	if o.overrun {
		x.logAttrs(ctx, slog.LevelWarn, "the upstream used more than the request reserved", slog.String("model", x.m.name),
			slog.String("upstream", u.Upstream), slog.Int64("input_tokens", o.in), slog.Int64("output_tokens", o.out),
			slog.Int64("reserved_input_tokens", x.bound), slog.Int64("reserved_output_tokens", x.worst),
			slog.Int64("pages", o.pages), slog.Int64("reserved_pages", x.pages),
			slog.Int64("audio_seconds", o.seconds), slog.Int64("reserved_audio_seconds", x.seconds))
	}
	err := x.intent.Settle(ctx, u)
	if err != nil {
		x.logAttrs(ctx, slog.LevelError, "recording usage failed", slog.String("model", x.m.name), slog.String("err", err.Error()))
	}
	return err
}

// usage is the Usage of the request for o.
func (x *exchange) usage(o outcome) inference.Usage {
	return inference.Usage{
		RequestID: x.id, Time: x.start, Key: x.key, Model: x.m.name, Endpoint: x.op.endpoint,
		InputTokens: o.in, OutputTokens: o.out, Pages: o.pages, AudioSeconds: o.seconds, Cost: x.m.cost(o.quantity()), Currency: x.g.currency, Estimated: o.estimated,
		Overrun: o.overrun, Upstream: x.upstreamName(),
	}
}

// unused settles a request that used nothing: its ticket at zero, its
// intent dropped.
func (x *exchange) unused() {
	x.ticket.Settle(billing.Quantity{})
	x.intent.Cancel()
}

// durable waits, before the first byte of a stream, for the request's
// reservation to be stored; when it cannot be, the request is settled at
// zero and answered that it can be retried.
func (x *exchange) durable() bool {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(x.r.Context()), recordTimeout)
	defer cancel()
	if err := x.intent.Durable(ctx); err != nil {
		x.unused()
		x.logAttrs(ctx, slog.LevelError, "recording usage failed", slog.String("model", x.m.name), slog.String("err", err.Error()))
		x.unrecorded()
		return false
	}
	return true
}

// unrecorded answers, in place of an answer whose usage could not be
// recorded, that the request can be retried.
func (x *exchange) unrecorded() {
	x.failStatus(http.StatusServiceUnavailable, "server_error", "usage_not_recorded",
		"the answer was withheld because its usage could not be recorded; retry the request")
}

// forward sends body to the model's upstreams and relays the answer.
func (x *exchange) forward(body []byte, addedUsage bool) {
	resp, err := x.call(body)
	if err != nil {
		x.unused()
		if refused := x.uploadRefused(); refused != nil {
			x.fail(refused)
			return
		}
		if x.r.Context().Err() != nil {
			return
		}
		x.logAttrs(x.r.Context(), slog.LevelWarn, "no upstream answered", slog.String("model", x.m.name), slog.String("err", err.Error()))
		x.failStatus(http.StatusBadGateway, "server_error", "upstream_unavailable", fmt.Sprintf("no model server of %q answered", x.m.name))
		return
	}
	defer resp.Body.Close()
	if (x.req.stream || x.upload != nil && eventStream(resp.Header)) && resp.StatusCode == http.StatusOK {
		x.stream(resp, addedUsage)
		return
	}
	x.answer(resp)
}

// call tries the upstreams in turn. It moves on when one cannot be reached
// or answers 502, 503 or 504, which are answered before anything reaches
// the client; the last upstream's answer is returned whatever its status.
// It stops when the client goes away. x.upstream is set to the index of
// the upstream whose answer it returns.
func (x *exchange) call(body []byte) (*http.Response, error) {
	var last error
	ups := x.m.upstreams
	if x.upload != nil {
		// An upload is read as it is sent: it can be sent once.
		ups = ups[:1]
	}
	for i, u := range ups {
		var rd io.Reader = bytes.NewReader(body)
		if x.upload != nil {
			rd = x.upload
		}
		req, err := http.NewRequestWithContext(x.r.Context(), http.MethodPost, u.BaseURL+x.upstreamPath(), rd)
		if err != nil {
			last = err
			continue
		}
		if x.upload != nil {
			req.ContentLength = x.r.ContentLength
			req.Header.Set("Content-Type", x.r.Header.Get("Content-Type"))
		} else {
			req.Header.Set("Content-Type", "application/json")
		}
		if a := x.r.Header.Get("Accept"); a != "" {
			req.Header.Set("Accept", a)
		}
		u.authorize(req, x.id)
		resp, err := x.g.transport.RoundTrip(req)
		if err != nil {
			if x.r.Context().Err() != nil {
				return nil, err
			}
			last = err
			x.logAttrs(x.r.Context(), slog.LevelWarn, "upstream failed", slog.String("model", x.m.name), slog.Int("upstream", i), slog.String("err", err.Error()))
			continue
		}
		switch resp.StatusCode {
		case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			if i < len(ups)-1 {
				_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
				resp.Body.Close()
				last = fmt.Errorf("upstream %d answered %d", i, resp.StatusCode)
				x.logAttrs(x.r.Context(), slog.LevelWarn, "upstream failed", slog.String("model", x.m.name), slog.Int("upstream", i), slog.Int("status", resp.StatusCode))
				continue
			}
		}
		x.upstream = i
		return resp, nil
	}
	return nil, last
}

// wireUsage is an OpenAI/Mistral usage object; a transcription's also
// counts the seconds of audio it heard.
type wireUsage struct {
	PromptTokens       *int64 `json:"prompt_tokens"`
	CompletionTokens   *int64 `json:"completion_tokens"`
	PromptAudioSeconds *int64 `json:"prompt_audio_seconds"`
}

// reported is whether u is a usage the upstream reported: it counts prompt
// tokens or seconds of audio.
func (u *wireUsage) reported() bool {
	return u != nil && (u.PromptTokens != nil || u.PromptAudioSeconds != nil)
}

// outcome is what u reports, never negative.
func (u *wireUsage) outcome() outcome {
	var o outcome
	o.in, o.out = u.tokens()
	if u.PromptAudioSeconds != nil {
		o.seconds = max(*u.PromptAudioSeconds, 0)
	}
	return o
}

// tokens returns the usage's counts, never negative.
func (u *wireUsage) tokens() (in, out int64) {
	if u.PromptTokens != nil {
		in = max(*u.PromptTokens, 0)
	}
	if u.CompletionTokens != nil {
		out = max(*u.CompletionTokens, 0)
	}
	return in, out
}

// wireAnswer is what the gateway reads of an answer or of a stream chunk.
type wireAnswer struct {
	Usage   *wireUsage   `json:"usage"`
	Choices []wireChoice `json:"choices"`
}

type wireChoice struct {
	Index        int64           `json:"index"`
	FinishReason *string         `json:"finish_reason"`
	Message      *wireOutput     `json:"message"`
	Delta        *wireOutput     `json:"delta"`
	Text         json.RawMessage `json:"text"`
}

type wireOutput struct {
	Content   json.RawMessage `json:"content"`
	ToolCalls json.RawMessage `json:"tool_calls"`
}

// outputBytes is the length of the text an answer or chunk carries.
func (a *wireAnswer) outputBytes() int64 {
	var n int64
	for i := range a.Choices {
		n += a.Choices[i].outputBytes()
	}
	return n
}

// outputBytes is the length of the text a choice carries.
func (c *wireChoice) outputBytes() int64 {
	n := textLen(c.Text)
	for _, o := range []*wireOutput{c.Message, c.Delta} {
		if o != nil {
			n += textLen(o.Content)
			if !absent(o.ToolCalls) {
				n += int64(len(o.ToolCalls))
			}
		}
	}
	return n
}

// answer relays a non-streaming answer. A successful one is settled, and
// its usage made durable (Intent.Settle), before it is written; an error status is passed through as it
// is and settled at zero, since the model produced nothing to pay for.
func (x *exchange) answer(resp *http.Response) {
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes+1))
	if err == nil && len(data) > maxAnswerBytes {
		err = fmt.Errorf("the answer exceeds %d bytes", maxAnswerBytes)
	}
	if err != nil {
		x.unused()
		if x.r.Context().Err() != nil {
			return
		}
		x.logAttrs(x.r.Context(), slog.LevelWarn, "reading the upstream answer failed", slog.String("model", x.m.name), slog.String("err", err.Error()))
		x.failStatus(http.StatusBadGateway, "server_error", "upstream_error", fmt.Sprintf("the answer of the model server of %q could not be read", x.m.name))
		return
	}
	if resp.StatusCode/100 == 2 {
		if x.finish(x.answered(data)) != nil {
			x.unrecorded()
			return
		}
	} else {
		x.unused()
	}
	x.upstreamHeaders(resp.Header)
	x.w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	x.w.WriteHeader(resp.StatusCode)
	_, _ = x.w.Write(data)
}

// answered is what a successful answer says its request used: its usage,
// or an estimate when it has none.
func (x *exchange) answered(data []byte) outcome {
	if x.op.body == bodyOCR {
		return ocrUsed(data)
	}
	var a wireAnswer
	_ = json.Unmarshal(data, &a)
	o := outcome{in: x.req.prompt.estimate(), out: x.estimatedOutput(a.outputBytes()), estimated: true}
	if a.Usage.reported() {
		o = a.Usage.outcome()
	} else if x.op.audio {
		o.seconds = x.seconds
	}
	if !x.op.generates() {
		o.out = 0
	}
	return o
}

// ocrUsed is what an OCR answer says it read: usage_info.pages_processed,
// or else the pages it carries, estimated.
func ocrUsed(data []byte) outcome {
	var a struct {
		Pages     []json.RawMessage `json:"pages"`
		UsageInfo *struct {
			PagesProcessed *int64 `json:"pages_processed"`
		} `json:"usage_info"`
	}
	_ = json.Unmarshal(data, &a)
	if a.UsageInfo != nil && a.UsageInfo.PagesProcessed != nil {
		return outcome{pages: max(*a.UsageInfo.PagesProcessed, 0)}
	}
	return outcome{pages: int64(len(a.Pages)), estimated: true}
}

// streamState is what stream learns from the events it relays.
type streamState struct {
	usage       *wireUsage
	outputBytes int64
	// tokens counts the choices' deltas that carried output: each came
	// from at least one token, so tokens is a floor of those streamed.
	tokens int64
	// open are the choices seen and not finished.
	open []int64
	// cut is set when the stream outran its reservation: the chunk that
	// did, cutAt, was not relayed, and stream ends the stream in its stead.
	cut   bool
	cutAt []byte
	// skipBlank drops the blank line ending an event the gateway dropped.
	skipBlank bool
	// chunk is the event being read; its choices' array is reused.
	chunk wireAnswer
}

// stream relays an SSE answer line by line, flushing whenever it has
// relayed all the upstream has sent so far (so each event is flushed as it
// arrives, and a burst of events costs one flush), and settles
// and records when it ends in any way: with the upstream's final usage, or
// with an estimate of the text relayed so far when there is none (the
// upstream sent none, failed, or the client went away, which cancels the
// upstream call through the request's context). When the gateway added
// include_usage itself, it drops the usage-only chunk the client did not
// ask for. A stream that outruns its reservation is cut: the upstream call
// is closed, and the client gets the end of a stream that stopped at
// max_tokens (see endCut). Nothing is relayed before the request's intent
// is durable.
func (x *exchange) stream(resp *http.Response, addedUsage bool) {
	if !x.durable() {
		return
	}
	x.upstreamHeaders(resp.Header)
	x.w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(x.w)
	_ = rc.Flush()
	var st streamState
	br := bufio.NewReaderSize(resp.Body, 32<<10)
	var line []byte
	oversized := false
	var rerr, werr error
	for werr == nil && !st.cut {
		var frag []byte
		frag, rerr = br.ReadSlice('\n')
		switch {
		case oversized:
			_, werr = x.w.Write(frag)
		case len(line)+len(frag) > maxLineBytes:
			oversized = true
			if _, werr = x.w.Write(line); werr == nil {
				_, werr = x.w.Write(frag)
			}
			line = line[:0]
		default:
			line = append(line, frag...)
		}
		if rerr == bufio.ErrBufferFull {
			continue
		}
		if !oversized && len(line) > 0 && werr == nil {
			werr = x.relayLine(line, &st, addedUsage)
		}
		oversized = false
		line = line[:0]
		if werr == nil && !st.cut && br.Buffered() == 0 {
			werr = flushErr(rc.Flush())
		}
		if rerr != nil {
			break
		}
	}
	o := outcome{in: x.req.prompt.estimate(), out: x.estimatedOutput(st.outputBytes), estimated: true}
	switch {
	case st.usage != nil:
		o = st.usage.outcome()
	case x.op.audio:
		o.seconds = x.seconds
	}
	if st.cut {
		// What the upstream wrote after the reservation is not known, and
		// was not relayed: the request is charged its reservation, or what
		// the upstream reported when that is more.
		resp.Body.Close()
		if st.usage == nil {
			o.in = x.bound
		}
		o.out, o.overrun = max(o.out, x.worst), true
		werr = x.endCut(rc, &st, o)
	}
	ended := "complete"
	switch {
	case werr != nil:
		ended = "client write failed"
	case st.cut:
	case x.r.Context().Err() != nil:
		ended = "client went away"
	case rerr != io.EOF:
		ended = "upstream failed"
	}
	_ = x.finish(o)
	if ended != "complete" {
		x.logAttrs(context.WithoutCancel(x.r.Context()), slog.LevelInfo, "stream ended early", slog.String("model", x.m.name), slog.String("reason", ended))
	}
}

// endCut ends a stream cut at its reservation as an upstream that stopped
// at max_tokens would have: a chunk of the cut chunk's id, object, created
// and model, finishing every open choice with "length" and carrying the
// usage recorded (where Mistral puts it), then [DONE].
func (x *exchange) endCut(rc *http.ResponseController, st *streamState, o outcome) error {
	var head struct {
		ID      json.RawMessage `json:"id"`
		Object  json.RawMessage `json:"object"`
		Created json.RawMessage `json:"created"`
		Model   json.RawMessage `json:"model"`
	}
	_ = json.Unmarshal(st.cutAt, &head)
	type choice struct {
		Index        int64    `json:"index"`
		Delta        struct{} `json:"delta"`
		FinishReason string   `json:"finish_reason"`
	}
	type usage struct {
		PromptTokens     int64 `json:"prompt_tokens"`
		CompletionTokens int64 `json:"completion_tokens"`
		TotalTokens      int64 `json:"total_tokens"`
	}
	end := struct {
		ID      json.RawMessage `json:"id,omitempty"`
		Object  json.RawMessage `json:"object"`
		Created json.RawMessage `json:"created,omitempty"`
		Model   json.RawMessage `json:"model,omitempty"`
		Choices []choice        `json:"choices"`
		Usage   usage           `json:"usage"`
	}{ID: head.ID, Object: head.Object, Created: head.Created, Model: head.Model,
		Usage: usage{PromptTokens: o.in, CompletionTokens: o.out, TotalTokens: o.in + o.out}}
	if len(end.Object) == 0 {
		end.Object = json.RawMessage(`"chat.completion.chunk"`)
	}
	for _, i := range st.open {
		end.Choices = append(end.Choices, choice{Index: i, FinishReason: "length"})
	}
	b, err := json.Marshal(end)
	if err != nil {
		return err
	}
	out := make([]byte, 0, len(b)+32)
	out = append(out, "data: "...)
	out = append(out, b...)
	out = append(out, "\n\ndata: [DONE]\n\n"...)
	if _, err := x.w.Write(out); err != nil {
		return err
	}
	return flushErr(rc.Flush())
}

// flushErr ignores a writer that cannot flush: its bytes still arrive.
func flushErr(err error) error {
	if errors.Is(err, http.ErrNotSupported) {
		return nil
	}
	return err
}

// relayLine writes one complete SSE line, reading usage and text from data
// lines on the way. A chunk that takes the stream beyond its reservation
// is not written: it sets st.cut instead.
func (x *exchange) relayLine(line []byte, st *streamState, addedUsage bool) error {
	content := bytes.TrimRight(line, "\r\n")
	if len(content) == 0 && st.skipBlank {
		st.skipBlank = false
		return nil
	}
	if data, ok := bytes.CutPrefix(content, []byte("data:")); ok {
		data = bytes.TrimLeft(data, " ")
		c := &st.chunk
		if !bytes.Equal(data, []byte("[DONE]")) && readChunk(data, c) {
			hasUsage := c.Usage.reported()
			if hasUsage {
				st.usage = c.Usage
			}
			if x.outruns(c, st) {
				st.cut, st.cutAt = true, bytes.Clone(data)
				return nil
			}
			if hasUsage && addedUsage && len(c.Choices) == 0 {
				st.skipBlank = true
				return nil
			}
		}
	}
	_, err := x.w.Write(line)
	return err
}

// outruns counts chunk c into st and reports whether it takes the stream
// beyond its reserved output: by the usage it carries, or by the choices
// it carries output for, each at least a token. A usage-only chunk ends
// the stream; it is not cut, and its usage is recorded as it is.
func (x *exchange) outruns(c *wireAnswer, st *streamState) bool {
	if len(c.Choices) == 0 {
		return false
	}
	for i := range c.Choices {
		ch := &c.Choices[i]
		if n := ch.outputBytes(); n > 0 {
			st.outputBytes += n
			st.tokens++
		}
		if !slices.Contains(st.open, ch.Index) {
			st.open = append(st.open, ch.Index)
		}
	}
	if c.Usage != nil && c.Usage.PromptTokens != nil {
		if _, out := c.Usage.tokens(); out > x.worst {
			return true
		}
	}
	if st.tokens > x.worst {
		return true
	}
	for i := range c.Choices {
		if c.Choices[i].FinishReason != nil {
			st.open = slices.DeleteFunc(st.open, func(j int64) bool { return j == c.Choices[i].Index })
		}
	}
	return false
}
