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
	"strconv"
	"time"

	"github.com/stewardhq/steward/internal/keys"
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

// paths maps an endpoint to the path appended to an upstream's BaseURL.
var paths = map[string]string{
	EndpointChat:       "/chat/completions",
	EndpointFIM:        "/fim/completions",
	EndpointEmbeddings: "/embeddings",
}

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

	key    keys.CheckedKey
	ep     string
	m      *model
	req    *request
	ticket Ticket
}

// serve handles a POST to a model endpoint once the key is checked.
func (x *exchange) serve() {
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
	req, err := parseRequest(x.ep, body)
	if err != nil {
		x.fail(err)
		return
	}
	x.req = req
	m := x.g.models[req.model]
	switch {
	case m == nil:
		x.fail(&steward.Error{Kind: steward.KindNotFound, Field: []string{"body", "model"}, Code: "model_not_found", Message: fmt.Sprintf("model %q does not exist", req.model)})
		return
	case !m.endpoints[x.ep]:
		x.fail(&steward.Error{Kind: steward.KindNotFound, Field: []string{"body", "model"}, Code: "model_not_found", Message: fmt.Sprintf("model %q does not offer %s", req.model, paths[x.ep])})
		return
	}
	x.m = m
	addedUsage := false
	if req.stream && !m.demo {
		if body, addedUsage, err = withIncludeUsage(body, req.streamOptions); err != nil {
			x.fail(err)
			return
		}
	}
	worst := int64(0)
	if x.ep != EndpointEmbeddings {
		worst = req.worstOutput(m)
	}
	ticket, err := x.g.limits.Reserve(x.r.Context(), x.key, m.name, req.promptTokens, worst)
	if err != nil {
		x.fail(err)
		return
	}
	x.ticket = ticket
	x.ticketHeaders()
	if m.demo {
		x.demo()
		return
	}
	x.forward(body, addedUsage)
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
	h[requestIDHeader] = []string{x.id}
}

// requestIDHeader is x-request-id, canonical.
const requestIDHeader = "X-Request-Id"

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

// finish settles the ticket with what was used and records it, with a
// context of its own: the client's may be cancelled already. An error
// means the usage is not durable, so an answer not yet sent must not be.
func (x *exchange) finish(in, out int64, estimated bool) error {
	x.ticket.Settle(in, out)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(x.r.Context()), recordTimeout)
	defer cancel()
	u := Usage{
		RequestID: x.id, Time: x.start, Key: x.key, Model: x.m.name, Endpoint: x.ep,
		InputTokens: in, OutputTokens: out, Cost: x.m.cost(in, out), Currency: x.g.currency, Estimated: estimated,
	}
	err := x.g.rec.Record(ctx, u)
	if err != nil {
		x.logAttrs(ctx, slog.LevelError, "recording usage failed", slog.String("model", x.m.name), slog.String("err", err.Error()))
	}
	return err
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
		x.ticket.Settle(0, 0)
		if x.r.Context().Err() != nil {
			return
		}
		x.logAttrs(x.r.Context(), slog.LevelWarn, "no upstream answered", slog.String("model", x.m.name), slog.String("err", err.Error()))
		x.failStatus(http.StatusBadGateway, "server_error", "upstream_unavailable", fmt.Sprintf("no model server of %q answered", x.m.name))
		return
	}
	defer resp.Body.Close()
	if x.req.stream && resp.StatusCode == http.StatusOK {
		x.stream(resp, addedUsage)
		return
	}
	x.answer(resp)
}

// call tries the upstreams in turn. It moves on when one cannot be reached
// or answers 502, 503 or 504, which are answered before anything reaches
// the client; the last upstream's answer is returned whatever its status.
// It stops when the client goes away.
func (x *exchange) call(body []byte) (*http.Response, error) {
	var last error
	ups := x.m.upstreams
	for i, u := range ups {
		req, err := http.NewRequestWithContext(x.r.Context(), http.MethodPost, u.BaseURL+paths[x.ep], bytes.NewReader(body))
		if err != nil {
			last = err
			continue
		}
		req.Header.Set("Content-Type", "application/json")
		if a := x.r.Header.Get("Accept"); a != "" {
			req.Header.Set("Accept", a)
		}
		req.Header.Set("x-request-id", x.id)
		if u.APIKey != "" {
			req.Header.Set("Authorization", "Bearer "+u.APIKey)
		}
		resp, err := x.g.client.Do(req)
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
		return resp, nil
	}
	return nil, last
}

// wireUsage is an OpenAI/Mistral usage object.
type wireUsage struct {
	PromptTokens     *int64 `json:"prompt_tokens"`
	CompletionTokens *int64 `json:"completion_tokens"`
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
	Usage   *wireUsage `json:"usage"`
	Choices []struct {
		Message *wireOutput     `json:"message"`
		Delta   *wireOutput     `json:"delta"`
		Text    json.RawMessage `json:"text"`
	} `json:"choices"`
}

type wireOutput struct {
	Content   json.RawMessage `json:"content"`
	ToolCalls json.RawMessage `json:"tool_calls"`
}

// outputBytes is the length of the text an answer or chunk carries.
func (a *wireAnswer) outputBytes() int {
	n := 0
	for _, c := range a.Choices {
		n += textLen(c.Text)
		for _, o := range []*wireOutput{c.Message, c.Delta} {
			if o != nil {
				n += textLen(o.Content)
				if !absent(o.ToolCalls) {
					n += len(o.ToolCalls)
				}
			}
		}
	}
	return n
}

// answer relays a non-streaming answer. A successful one is settled and
// recorded before it is written; an error status is passed through as it
// is and settled at zero, since the model produced nothing to pay for.
func (x *exchange) answer(resp *http.Response) {
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes+1))
	if err == nil && len(data) > maxAnswerBytes {
		err = fmt.Errorf("the answer exceeds %d bytes", maxAnswerBytes)
	}
	if err != nil {
		x.ticket.Settle(0, 0)
		if x.r.Context().Err() != nil {
			return
		}
		x.logAttrs(x.r.Context(), slog.LevelWarn, "reading the upstream answer failed", slog.String("model", x.m.name), slog.String("err", err.Error()))
		x.failStatus(http.StatusBadGateway, "server_error", "upstream_error", fmt.Sprintf("the answer of the model server of %q could not be read", x.m.name))
		return
	}
	if resp.StatusCode/100 == 2 {
		var a wireAnswer
		_ = json.Unmarshal(data, &a)
		in, out, estimated := x.req.promptTokens, int64(0), true
		if a.Usage != nil && a.Usage.PromptTokens != nil {
			in, out = a.Usage.tokens()
			estimated = false
		} else if x.ep != EndpointEmbeddings {
			out = estimateTokens(a.outputBytes())
		}
		if x.ep == EndpointEmbeddings {
			out = 0
		}
		if x.finish(in, out, estimated) != nil {
			x.unrecorded()
			return
		}
	} else {
		x.ticket.Settle(0, 0)
	}
	x.upstreamHeaders(resp.Header)
	x.w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	x.w.WriteHeader(resp.StatusCode)
	_, _ = x.w.Write(data)
}

// streamState is what stream learns from the events it relays.
type streamState struct {
	usage       *wireUsage
	outputBytes int
	// skipBlank drops the blank line ending an event the gateway dropped.
	skipBlank bool
}

// stream relays an SSE answer line by line, flushing whenever it has
// relayed all the upstream has sent so far (so each event is flushed as it
// arrives, and a burst of events costs one flush), and settles
// and records when it ends in any way: with the upstream's final usage, or
// with an estimate of the text relayed so far when there is none (the
// upstream sent none, failed, or the client went away, which cancels the
// upstream call through the request's context). When the gateway added
// include_usage itself, it drops the usage-only chunk the client did not
// ask for.
func (x *exchange) stream(resp *http.Response, addedUsage bool) {
	x.upstreamHeaders(resp.Header)
	x.w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(x.w)
	_ = rc.Flush()
	var st streamState
	br := bufio.NewReaderSize(resp.Body, 32<<10)
	var line []byte
	oversized := false
	var rerr, werr error
	for werr == nil {
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
		if werr == nil && br.Buffered() == 0 {
			werr = flushErr(rc.Flush())
		}
		if rerr != nil {
			break
		}
	}
	ended := "complete"
	switch {
	case werr != nil:
		ended = "client write failed"
	case x.r.Context().Err() != nil:
		ended = "client went away"
	case rerr != io.EOF:
		ended = "upstream failed"
	}
	if st.usage != nil {
		in, out := st.usage.tokens()
		_ = x.finish(in, out, false)
	} else {
		_ = x.finish(x.req.promptTokens, estimateTokens(st.outputBytes), true)
	}
	if ended != "complete" {
		x.logAttrs(context.WithoutCancel(x.r.Context()), slog.LevelInfo, "stream ended early", slog.String("model", x.m.name), slog.String("reason", ended))
	}
}

// flushErr ignores a writer that cannot flush: its bytes still arrive.
func flushErr(err error) error {
	if errors.Is(err, http.ErrNotSupported) {
		return nil
	}
	return err
}

// relayLine writes one complete SSE line, reading usage and text from data
// lines on the way.
func (x *exchange) relayLine(line []byte, st *streamState, addedUsage bool) error {
	content := bytes.TrimRight(line, "\r\n")
	if len(content) == 0 && st.skipBlank {
		st.skipBlank = false
		return nil
	}
	if data, ok := bytes.CutPrefix(content, []byte("data:")); ok {
		data = bytes.TrimLeft(data, " ")
		var c wireAnswer
		if !bytes.Equal(data, []byte("[DONE]")) && json.Unmarshal(data, &c) == nil {
			st.outputBytes += c.outputBytes()
			if c.Usage != nil && c.Usage.PromptTokens != nil {
				st.usage = c.Usage
				if addedUsage && len(c.Choices) == 0 {
					st.skipBlank = true
					return nil
				}
			}
		}
	}
	_, err := x.w.Write(line)
	return err
}
