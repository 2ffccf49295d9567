package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/stewardhq/steward/internal/billing"
	"github.com/stewardhq/steward/internal/inference"
	"github.com/stewardhq/steward/internal/steward"
)

// Timeouts bound the upstream call of a forwarded operation. Neither
// bounds the whole call, so that a long stream or download is never cut
// while it flows.
type Timeouts struct {
	// Header bounds the wait for the answer's headers, from the moment
	// the request (its body included) has been sent.
	Header time.Duration
	// Idle bounds a gap in the answer's body.
	Idle time.Duration
}

// Groups of forwarded operations, each with its own timeouts.
const (
	GroupFiles           = "files"
	GroupBatchJobs       = "batch_jobs"
	GroupAgents          = "agents"
	GroupConversations   = "conversations"
	GroupLibraries       = "libraries"
	GroupVoices          = "voices"
	GroupFineTunedModels = "fine_tuned_models"
)

// DefaultTimeouts are the timeouts of each group of forwarded operations.
// Reading and changing objects is quick; an upload is answered once the
// upstream has stored it (a library's document, a voice's sample), after
// its body has been sent, which no timeout bounds.
var DefaultTimeouts = map[string]Timeouts{
	GroupFiles:           {Header: 2 * time.Minute, Idle: time.Minute},
	GroupBatchJobs:       {Header: 30 * time.Second, Idle: 30 * time.Second},
	GroupAgents:          {Header: 30 * time.Second, Idle: 30 * time.Second},
	GroupConversations:   {Header: 30 * time.Second, Idle: 30 * time.Second},
	GroupLibraries:       {Header: 2 * time.Minute, Idle: time.Minute},
	GroupVoices:          {Header: 2 * time.Minute, Idle: time.Minute},
	GroupFineTunedModels: {Header: 30 * time.Second, Idle: 30 * time.Second},
}

// defaultUpstream validates the default upstream and the timeouts of cfg
// into g.
func (g *Gateway) defaultUpstream(cfg Config) error {
	g.timeouts = maps.Clone(DefaultTimeouts)
	for _, group := range slices.Sorted(maps.Keys(cfg.Timeouts)) {
		t := cfg.Timeouts[group]
		def, known := g.timeouts[group]
		switch {
		case !known:
			return fmt.Errorf("gateway: timeouts: unknown group %q: want one of %s", group, strings.Join(slices.Sorted(maps.Keys(DefaultTimeouts)), ", "))
		case t.Header < 0 || t.Idle < 0:
			return fmt.Errorf("gateway: timeouts of %s must be positive", group)
		}
		if t.Header > 0 {
			def.Header = t.Header
		}
		if t.Idle > 0 {
			def.Idle = t.Idle
		}
		g.timeouts[group] = def
	}
	g.objects = cfg.Objects
	if cfg.Upstream == nil {
		return nil
	}
	if cfg.Objects == nil {
		return errors.New("gateway: a default upstream needs the records of the Workspaces' objects")
	}
	u := cfg.Upstream
	p, err := url.Parse(u.BaseURL)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" || p.RawQuery != "" || p.Fragment != "" {
		return fmt.Errorf("gateway: the default upstream's base URL %q must be an absolute http or https URL without query or fragment", u.BaseURL)
	}
	g.upstream = &Upstream{BaseURL: strings.TrimRight(u.BaseURL, "/"), APIKey: u.APIKey}
	g.upstreamName = strings.TrimRight(p.Redacted(), "/")
	return nil
}

// Bounds of a forwarded request's body, which is streamed to the upstream
// rather than held: an upload (a file, a library's document) may be as
// large as Mistral takes a file, anything else as large as a prompt.
const (
	maxFileBytes = 512 << 20
	maxJSONBytes = maxBodyBytes
)

// op is how the gateway serves a forwarded operation.
type op struct {
	// group names the operation's timeouts.
	group string
	// upload is set for an upload, whose body may be large.
	upload bool
	// owned are the path's objects, which must be the caller's
	// Workspace's; forgets is set when a successful answer deletes the
	// last of them.
	owned   []ref
	forgets bool
	// creates is the kind of the object a successful answer creates,
	// recorded as the caller's; lists the kind of those a list answer
	// holds, filtered to the caller's.
	creates string
	lists   string
	// check checks the objects the body names (nil for none);
	// batchFiles records the output and error files of the jobs answered.
	check      bodyCheck
	batchFiles bool
}

// forwardedRoutes are the operations that name no model, served when
// there is a default upstream.
func (g *Gateway) forwardedRoutes() []inference.Route {
	if g.upstream == nil {
		return nil
	}
	file := []ref{{"file_id", inference.ObjectFile}}
	job := []ref{{"job_id", inference.ObjectBatchJob}}
	agent := []ref{{"agent_id", inference.ObjectAgent}}
	conv := []ref{{"conversation_id", inference.ObjectConversation}}
	lib := []ref{{"library_id", inference.ObjectLibrary}}
	doc := []ref{{"library_id", inference.ObjectLibrary}, {"document_id", inference.ObjectDocument}}
	voice := []ref{{"voice_id", inference.ObjectVoice}}
	tuned := []ref{{"model_id", inference.ObjectFineTunedModel}}
	const (
		files, batch, agents, convs = GroupFiles, GroupBatchJobs, GroupAgents, GroupConversations
		libs, voices, models        = GroupLibraries, GroupVoices, GroupFineTunedModels
	)
	return []inference.Route{
		g.forwarded("POST /v1/files", op{group: files, upload: true, creates: inference.ObjectFile}),
		g.forwarded("GET /v1/files", op{group: files, lists: inference.ObjectFile}),
		g.forwarded("GET /v1/files/{file_id}", op{group: files, owned: file}),
		g.forwarded("DELETE /v1/files/{file_id}", op{group: files, owned: file, forgets: true}),
		g.forwarded("GET /v1/files/{file_id}/content", op{group: files, owned: file}),
		g.forwarded("GET /v1/files/{file_id}/url", op{group: files, owned: file}),

		g.forwarded("GET /v1/batch/jobs", op{group: batch, lists: inference.ObjectBatchJob, batchFiles: true}),
		g.forwarded("POST /v1/batch/jobs", op{group: batch, creates: inference.ObjectBatchJob, check: batchJobRefs}),
		g.forwarded("GET /v1/batch/jobs/{job_id}", op{group: batch, owned: job, batchFiles: true}),
		g.forwarded("DELETE /v1/batch/jobs/{job_id}", op{group: batch, owned: job, forgets: true}),
		g.forwarded("POST /v1/batch/jobs/{job_id}/cancel", op{group: batch, owned: job, batchFiles: true}),

		g.forwarded("POST /v1/agents", op{group: agents, creates: inference.ObjectAgent, check: agentRefs}),
		g.forwarded("GET /v1/agents", op{group: agents, lists: inference.ObjectAgent}),
		g.forwarded("GET /v1/agents/pages", op{group: agents, lists: inference.ObjectAgent}),
		g.forwarded("GET /v1/agents/{agent_id}", op{group: agents, owned: agent}),
		g.forwarded("PATCH /v1/agents/{agent_id}", op{group: agents, owned: agent, check: agentRefs}),
		g.forwarded("DELETE /v1/agents/{agent_id}", op{group: agents, owned: agent, forgets: true}),
		g.forwarded("PATCH /v1/agents/{agent_id}/version", op{group: agents, owned: agent}),
		g.forwarded("GET /v1/agents/{agent_id}/versions", op{group: agents, owned: agent}),
		g.forwarded("GET /v1/agents/{agent_id}/versions/{version}", op{group: agents, owned: agent}),
		g.forwarded("PUT /v1/agents/{agent_id}/aliases", op{group: agents, owned: agent}),
		g.forwarded("GET /v1/agents/{agent_id}/aliases", op{group: agents, owned: agent}),
		g.forwarded("DELETE /v1/agents/{agent_id}/aliases", op{group: agents, owned: agent}),

		g.forwarded("GET /v1/conversations", op{group: convs, lists: inference.ObjectConversation}),
		g.forwarded("GET /v1/conversations/{conversation_id}", op{group: convs, owned: conv}),
		g.forwarded("DELETE /v1/conversations/{conversation_id}", op{group: convs, owned: conv, forgets: true}),
		g.forwarded("GET /v1/conversations/{conversation_id}/history", op{group: convs, owned: conv}),
		g.forwarded("GET /v1/conversations/{conversation_id}/messages", op{group: convs, owned: conv}),

		g.forwarded("GET /v1/libraries", op{group: libs, lists: inference.ObjectLibrary}),
		g.forwarded("POST /v1/libraries", op{group: libs, creates: inference.ObjectLibrary}),
		g.forwarded("GET /v1/libraries/{library_id}", op{group: libs, owned: lib}),
		g.forwarded("DELETE /v1/libraries/{library_id}", op{group: libs, owned: lib, forgets: true}),
		g.forwarded("PATCH /v1/libraries/{library_id}", op{group: libs, owned: lib}),
		g.forwarded("PUT /v1/libraries/{library_id}", op{group: libs, owned: lib}),
		g.forwarded("GET /v1/libraries/{library_id}/share", op{group: libs, owned: lib}),
		g.forwarded("PUT /v1/libraries/{library_id}/share", op{group: libs, owned: lib}),
		g.forwarded("DELETE /v1/libraries/{library_id}/share", op{group: libs, owned: lib}),
		g.forwarded("GET /v1/libraries/{library_id}/documents", op{group: libs, owned: lib}),
		g.forwarded("POST /v1/libraries/{library_id}/documents", op{group: libs, upload: true, owned: lib, creates: inference.ObjectDocument}),
		g.forwarded("GET /v1/libraries/{library_id}/documents/{document_id}", op{group: libs, owned: doc}),
		g.forwarded("PATCH /v1/libraries/{library_id}/documents/{document_id}", op{group: libs, owned: doc}),
		g.forwarded("PUT /v1/libraries/{library_id}/documents/{document_id}", op{group: libs, owned: doc}),
		g.forwarded("DELETE /v1/libraries/{library_id}/documents/{document_id}", op{group: libs, owned: doc, forgets: true}),
		g.forwarded("GET /v1/libraries/{library_id}/documents/{document_id}/text_content", op{group: libs, owned: doc}),
		g.forwarded("GET /v1/libraries/{library_id}/documents/{document_id}/status", op{group: libs, owned: doc}),
		g.forwarded("GET /v1/libraries/{library_id}/documents/{document_id}/signed-url", op{group: libs, owned: doc}),
		g.forwarded("GET /v1/libraries/{library_id}/documents/{document_id}/extracted-text-signed-url", op{group: libs, owned: doc}),
		g.forwarded("POST /v1/libraries/{library_id}/documents/{document_id}/reprocess", op{group: libs, owned: doc}),

		g.forwarded("GET /v1/audio/voices", op{group: voices, lists: inference.ObjectVoice}),
		g.forwarded("POST /v1/audio/voices", op{group: voices, upload: true, creates: inference.ObjectVoice}),
		g.forwarded("GET /v1/audio/voices/{voice_id}", op{group: voices, owned: voice}),
		g.forwarded("PATCH /v1/audio/voices/{voice_id}", op{group: voices, owned: voice}),
		g.forwarded("DELETE /v1/audio/voices/{voice_id}", op{group: voices, owned: voice, forgets: true}),
		g.forwarded("GET /v1/audio/voices/{voice_id}/sample", op{group: voices, owned: voice}),

		g.forwarded("PATCH /v1/fine_tuning/models/{model_id}", op{group: models, owned: tuned}),
		g.forwarded("POST /v1/fine_tuning/models/{model_id}/archive", op{group: models, owned: tuned}),
		g.forwarded("DELETE /v1/fine_tuning/models/{model_id}/archive", op{group: models, owned: tuned}),
		g.forwarded("DELETE /v1/models/{model_id}", op{group: models, owned: tuned, forgets: true}),
	}
}

// errUpstreamTimeout cancels an upstream call that took longer than its
// timeouts allow.
var errUpstreamTimeout = errors.New("the upstream's timeout passed")

// forwarded is the route of an operation that names no model: a request
// of a Workspace key, forwarded to the default upstream with its key, its
// answer passed back unchanged. Its handler bounds the body itself.
func (g *Gateway) forwarded(pattern string, o op) inference.Route {
	return inference.Route{Pattern: pattern, OwnsBody: true, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		x := g.exchange(w, r)
		if x.admit(g.auth.WorkspaceKey(r)) {
			g.forward(&x, o)
		}
	})}
}

// forward forwards an admitted request of operation o to the default
// upstream. It names no model and costs nothing, but counts in the
// request rates as a model request does.
func (g *Gateway) forward(x *exchange, o op) {
	ticket, err := g.limits.Reserve(x.r.Context(), x.key, "", billing.Quantity{})
	if err != nil {
		x.fail(err)
		return
	}
	defer ticket.Settle(billing.Quantity{})
	g.inflight.enter()
	defer g.inflight.leave()
	f := forwarding{x: x, op: o, t: g.timeouts[o.group], limits: ticket.Headers()}
	f.serve()
}

// forwarding is one forwarded request in flight.
type forwarding struct {
	x  *exchange
	op op
	t  Timeouts
	// dog ends the request when its upstream keeps silent; a check that
	// reads from the upstream resets it (nil where there is none).
	dog *time.Timer
	// limits are the headers of the request's limits, over the
	// upstream's.
	limits http.Header
	// mine are the objects found to be the caller's (see owns).
	mine map[[2]string]bool
}

// serve forwards the request and relays the answer.
func (f *forwarding) serve() {
	x := f.x
	limit := int64(maxJSONBytes)
	if f.op.upload {
		limit = maxFileBytes
	}
	if x.r.ContentLength > limit {
		x.fail(steward.Errorf(steward.KindTooLarge, "the request body exceeds %d bytes", limit))
		return
	}
	// A creation goes on when its client goes away, so that the object
	// the upstream makes is recorded rather than left to no Workspace;
	// the timeouts still bound it.
	base := x.r.Context()
	if f.op.creates != "" {
		base = context.WithoutCancel(base)
	}
	ctx, cancel := context.WithCancelCause(base)
	defer cancel(nil)
	dog := time.AfterFunc(f.t.Header, func() { cancel(errUpstreamTimeout) })
	defer dog.Stop()
	f.dog = dog
	if !f.admitObjects(ctx) {
		return
	}
	var body io.Reader
	var sent *sentBody
	dog.Reset(f.t.Idle)
	if x.r.ContentLength != 0 && x.r.Body != nil && x.r.Body != http.NoBody {
		sent = &sentBody{r: http.MaxBytesReader(x.w, x.r.Body, limit), rc: http.NewResponseController(x.w), dog: dog, t: f.t}
		body = sent
		if f.op.check != nil {
			data := f.checkBody(ctx, sent, f.op.check)
			if data == nil {
				return
			}
			body, sent = bytes.NewReader(data), nil
			dog.Reset(f.t.Header)
		}
	} else {
		dog.Reset(f.t.Header)
	}
	resp, err := f.call(ctx, body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		switch {
		case sent != nil && errors.As(sent.readErr(), &tooLarge):
			x.fail(steward.Errorf(steward.KindTooLarge, "the request body exceeds %d bytes", limit))
		case x.r.Context().Err() != nil:
		case errors.Is(context.Cause(ctx), errUpstreamTimeout):
			x.logAttrs(x.r.Context(), slog.LevelWarn, "the upstream timed out", slog.String("upstream", x.g.upstreamName), slog.String("group", f.op.group))
			x.failStatus(http.StatusGatewayTimeout, "server_error", "upstream_timeout", "the upstream did not answer in time")
		default:
			x.logAttrs(x.r.Context(), slog.LevelWarn, "the upstream failed", slog.String("upstream", x.g.upstreamName), slog.String("err", err.Error()))
			x.failStatus(http.StatusBadGateway, "server_error", "upstream_unavailable", "the upstream could not be reached")
		}
		return
	}
	defer resp.Body.Close()
	dog.Reset(f.t.Idle)
	if f.op.forgets && resp.StatusCode/100 == 2 {
		last := f.op.owned[len(f.op.owned)-1]
		rctx, rcancel := f.recordContext()
		err := x.g.objects.Forget(rctx, last.kind, x.r.PathValue(last.wildcard))
		rcancel()
		if err != nil {
			x.logAttrs(x.r.Context(), slog.LevelError, "forgetting a deleted object failed", slog.String("err", err.Error()))
		}
	}
	if f.op.rewrites() {
		f.relayObjects(resp, dog)
		return
	}
	f.relay(resp, dog)
}

// call sends the request to the default upstream: its method, path below
// /v1 and query, the client's headers but for its credentials and those
// of the connection, the upstream's key and the request's id.
func (f *forwarding) call(ctx context.Context, body io.Reader) (*http.Response, error) {
	x := f.x
	target := x.g.upstream.BaseURL + strings.TrimPrefix(x.r.URL.EscapedPath(), "/v1")
	if x.r.URL.RawQuery != "" {
		target += "?" + x.r.URL.RawQuery
	}
	req, err := http.NewRequestWithContext(ctx, x.r.Method, target, body)
	if err != nil {
		return nil, err
	}
	req.ContentLength = x.r.ContentLength
	if body == nil {
		req.ContentLength = 0
	}
	for k, vs := range x.r.Header {
		if !dropRequestHeader(k) {
			req.Header[k] = vs
		}
	}
	for _, k := range x.r.Header.Values("Connection") {
		for name := range strings.SplitSeq(k, ",") {
			req.Header.Del(strings.TrimSpace(name))
		}
	}
	x.g.upstream.authorize(req, x.id)
	return x.g.transport.RoundTrip(req)
}

// dropRequestHeader reports whether a client's header (canonical) stays
// out of a forwarded request: its credentials, which are Steward's, those
// of its connection (Expect: the server has answered it), and those the
// transport sets.
func dropRequestHeader(k string) bool {
	switch k {
	case "Authorization", "Proxy-Authorization", "X-Api-Key", "Cookie", "Host", "Accept-Encoding", "Content-Length", "Expect",
		"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Real-Ip", steward.RequestIDHeader:
		return true
	}
	return slices.Contains(hopHeaders, k)
}

// answerHeaders sets the answer's headers to the upstream's, but for those
// of its connection, and the request's id, and returns them.
func (f *forwarding) answerHeaders(resp *http.Response) http.Header {
	h := f.x.w.Header()
	for k, vs := range resp.Header {
		h[k] = vs
	}
	for _, k := range resp.Header.Values("Connection") {
		for name := range strings.SplitSeq(k, ",") {
			h.Del(strings.TrimSpace(name))
		}
	}
	for _, k := range hopHeaders {
		delete(h, k)
	}
	for k, vs := range f.limits {
		h[k] = vs
	}
	h[steward.RequestIDHeader] = []string{f.x.id}
	return h
}

// sentBody is a forwarded request's body, read by the upstream call as
// it sends it. Each read gives the client, and the upstream taking it,
// the idle timeout again rather than a bound on the whole body, so that a
// large upload is never cut while it flows; once it has been read to its
// end, the upstream has the header timeout to answer.
type sentBody struct {
	r   io.Reader
	rc  *http.ResponseController
	dog *time.Timer
	t   Timeouts
	// err is the body's read error, io.EOF once it was read whole; the
	// transport may still read after the call has returned.
	mu  sync.Mutex
	err error
}

func (b *sentBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return 0, b.err
	}
	_ = b.rc.SetReadDeadline(time.Now().Add(b.t.Idle))
	b.dog.Reset(b.t.Idle)
	n, err := b.r.Read(p)
	if err != nil {
		b.err = err
		if err == io.EOF {
			b.dog.Reset(b.t.Header)
		}
	}
	return n, err
}

// readErr is the body's read error so far.
func (b *sentBody) readErr() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// relay passes the upstream's answer back: its status, its headers but for
// those of its connection, and its body as it comes, flushed whenever all
// the upstream has sent so far is relayed (each event of an event stream
// as it arrives). A gap longer than the idle timeout ends it;
// when the answer was started, the client's connection is cut, so that a
// partial answer never looks whole.
func (f *forwarding) relay(resp *http.Response, dog *time.Timer) {
	x := f.x
	h := f.answerHeaders(resp)
	if resp.ContentLength >= 0 {
		h.Set("Content-Length", strconv.FormatInt(resp.ContentLength, 10))
	}
	x.w.WriteHeader(resp.StatusCode)
	stream := strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream")
	rc := http.NewResponseController(x.w)
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		dog.Reset(f.t.Idle)
		if n > 0 {
			if _, werr := x.w.Write(buf[:n]); werr != nil {
				return
			}
			if (stream || n < len(buf)) && flushErr(rc.Flush()) != nil {
				return
			}
		}
		if err == io.EOF {
			return
		}
		if err != nil {
			if x.r.Context().Err() != nil {
				return
			}
			x.logAttrs(x.r.Context(), slog.LevelWarn, "the upstream's answer broke off", slog.String("upstream", x.g.upstreamName), slog.String("err", err.Error()))
			panic(http.ErrAbortHandler)
		}
	}
}
