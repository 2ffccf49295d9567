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
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/apierror"
	"github.com/stewardhq/steward/internal/apitest"
	"github.com/stewardhq/steward/internal/auth"
	"github.com/stewardhq/steward/internal/billing"
	"github.com/stewardhq/steward/internal/inference"
	"github.com/stewardhq/steward/internal/logbuf"
	"github.com/stewardhq/steward/internal/steward"
)

// auth.Authenticator is the Authenticator the gateway is wired to.
var _ inference.Authenticator = (*auth.Authenticator)(nil)

const (
	goodKey  = "sk-good-secret"
	otherKey = "sk-other-secret"
)

var testKey = steward.Principal{Kind: steward.CredentialWorkspaceAPIKey, CredentialID: "key1", OrganizationID: "org1", WorkspaceID: "ws1", UserID: "user1"}

// fakeAuth reads Authorization: Bearer as package auth does: it accepts
// goodKey and otherKey, answers the errors of a few others, and takes
// report, when set, as the check API's report token.
type fakeAuth struct{ report string }

func (fakeAuth) WorkspaceKey(r *http.Request) (steward.Principal, error) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if token = strings.TrimSpace(token); !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return steward.Principal{}, nil
	}
	switch token {
	case goodKey:
		return testKey, nil
	case otherKey:
		return steward.Principal{Kind: steward.CredentialWorkspaceAPIKey, CredentialID: "key2", OrganizationID: "org1", WorkspaceID: "ws1", UserID: "user2"}, nil
	case "sk-forbidden":
		return steward.Principal{}, &steward.Error{Kind: steward.KindForbidden, Message: "no access"}
	case "sk-limited":
		return steward.Principal{}, &steward.Error{Kind: steward.KindRateLimited, Message: "too many attempts"}
	}
	return steward.Principal{}, &steward.Error{Kind: steward.KindUnauthenticated, Message: "invalid API key"}
}

func (a fakeAuth) Reporter(r *http.Request) (steward.Principal, error) {
	if a.report != "" && r.Header.Get("Authorization") == "Bearer "+a.report {
		return steward.Principal{Kind: steward.CredentialReportToken}, nil
	}
	return a.WorkspaceKey(r)
}

type reservation struct {
	key                  steward.Principal
	model                string
	prompt, maxOut       int64
	pages                int64
	settledIn, settleOut int64
	settledPages         int64
	settles              int
}

// fakeLimits records reservations and settlements, and refuses all when
// refuse is set.
type fakeLimits struct {
	mu     sync.Mutex
	refuse error
	res    []*reservation
}

type fakeTicket struct {
	l *fakeLimits
	r *reservation
}

func (t fakeTicket) Headers() http.Header {
	return http.Header{"X-Ratelimit-Remaining-Tokens": {"1000"}}
}

func (t fakeTicket) Settle(q billing.Quantity) {
	t.l.mu.Lock()
	defer t.l.mu.Unlock()
	t.r.settledIn, t.r.settleOut, t.r.settledPages = q.InputTokens, q.OutputTokens, q.Pages
	t.r.settles++
}

func (l *fakeLimits) Reserve(_ context.Context, k steward.Principal, model string, q billing.Quantity) (inference.Ticket, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.refuse != nil {
		return nil, l.refuse
	}
	r := &reservation{key: k, model: model, prompt: q.InputTokens, maxOut: q.OutputTokens, pages: q.Pages}
	l.res = append(l.res, r)
	return fakeTicket{l, r}, nil
}

func (l *fakeLimits) only(t *testing.T) reservation {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.res) != 1 {
		t.Fatalf("reservations = %d, want 1", len(l.res))
	}
	return *l.res[0]
}

// fakeRecorder hands every usage to a channel, or fails with err when set.
type fakeRecorder struct {
	got chan inference.Usage
	err error
}

func (r *fakeRecorder) Record(ctx context.Context, u inference.Usage) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if r.err != nil {
		return r.err
	}
	r.got <- u
	return nil
}

func (r *fakeRecorder) Intend(inference.Usage) (inference.Intent, error) {
	return inference.Direct(r), nil
}

func (r *fakeRecorder) next(t *testing.T) inference.Usage {
	t.Helper()
	select {
	case u := <-r.got:
		return u
	case <-time.After(5 * time.Second):
		t.Fatal("no usage recorded")
		return inference.Usage{}
	}
}

func (r *fakeRecorder) none(t *testing.T) {
	t.Helper()
	select {
	case u := <-r.got:
		t.Fatalf("unexpected usage %+v", u)
	default:
	}
}

type harness struct {
	g      *Gateway
	srv    *httptest.Server
	limits *fakeLimits
	rec    *fakeRecorder
	logs   *logbuf.Buffer
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	return newHarnessAuth(t, cfg, fakeAuth{})
}

// newHarnessAuth is newHarness with a as the Authenticator. Without
// cfg.Prices, every model costs 2 per million input tokens and 6 per
// million output tokens.
func newHarnessAuth(t *testing.T, cfg Config, a inference.Authenticator) *harness {
	t.Helper()
	if cfg.Currency == "" {
		cfg.Currency = "EUR"
	}
	if cfg.Prices == nil {
		var ps []billing.ModelPrice
		for _, m := range cfg.Models {
			ps = append(ps, billing.ModelPrice{Model: m.Name, InputPerMillion: 2, OutputPerMillion: 6})
		}
		cfg.Prices = newPrices(t, ps...)
	}
	h := &harness{limits: &fakeLimits{}, rec: &fakeRecorder{got: make(chan inference.Usage, 16)}, logs: &logbuf.Buffer{}}
	log := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	g, err := New(cfg, a, h.limits, h.rec, log)
	if err != nil {
		t.Fatal(err)
	}
	h.g, h.srv = g, httptest.NewServer(g)
	t.Cleanup(h.srv.Close)
	t.Cleanup(func() {
		if strings.Contains(h.logs.String(), goodKey) {
			t.Error("the client's key was logged")
		}
	})
	return h
}

// newPrices is the price table of ps.
func newPrices(tb testing.TB, ps ...billing.ModelPrice) *billing.Prices {
	tb.Helper()
	p, err := billing.NewPrices(ps)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

func (h *harness) post(t *testing.T, ctx context.Context, path, token, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// upstream is a fake model server recording what it received.
type upstream struct {
	srv    *httptest.Server
	calls  atomic.Int32
	mu     sync.Mutex
	bodies []string
	auths  []string
	paths  []string
}

func newUpstream(t *testing.T, handle func(w http.ResponseWriter, r *http.Request)) *upstream {
	t.Helper()
	u := &upstream{}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.bodies = append(u.bodies, string(b))
		u.auths = append(u.auths, r.Header.Get("Authorization"))
		u.paths = append(u.paths, r.URL.Path)
		u.mu.Unlock()
		u.calls.Add(1)
		handle(w, r)
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstream) body(t *testing.T, i int) string {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	if i >= len(u.bodies) {
		t.Fatalf("upstream got %d requests, want more than %d", len(u.bodies), i)
	}
	return u.bodies[i]
}

func (u *upstream) url() string { return u.srv.URL + "/v1" }

const chatAnswer = `{"id":"cmpl-1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Hi there"},"finish_reason":"stop"}],"usage":{"prompt_tokens":11,"completion_tokens":7,"total_tokens":18}}`

func jsonAnswer(body string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, body)
	}
}

func chatModel(name string, ups ...*upstream) Model {
	m := Model{Name: name, MaxOutputTokens: 1000, Endpoints: []string{EndpointChat, EndpointFIM}}
	for _, u := range ups {
		m.Upstreams = append(m.Upstreams, Upstream{BaseURL: u.url(), APIKey: "up-key"})
	}
	return m
}

func TestChatNonStreaming(t *testing.T) {
	up := newUpstream(t, jsonAnswer(chatAnswer))
	h := newHarness(t, Config{Models: []Model{chatModel("m", up)}})
	body := `{"model":"m","messages":[{"role":"user","content":"Hello, world!"}],"max_tokens":50,"custom":{"kept":[1,2]}}`
	req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+goodKey)
	req.Header.Set("x-request-id", "client-id-1")
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if got := readAll(t, resp); resp.StatusCode != 200 || got != chatAnswer {
		t.Fatalf("status %d body %s", resp.StatusCode, got)
	}
	if resp.Header.Get("x-request-id") != "client-id-1" || resp.Header.Get("X-Ratelimit-Remaining-Tokens") != "1000" {
		t.Fatalf("headers %v", resp.Header)
	}
	if got := up.body(t, 0); got != body {
		t.Fatalf("upstream got %s, want the client's bytes", got)
	}
	if up.auths[0] != "Bearer up-key" || up.paths[0] != "/v1/chat/completions" {
		t.Fatalf("upstream auth %q path %q", up.auths[0], up.paths[0])
	}
	r := h.limits.only(t)
	// 13 bytes are at most 13 tokens, + 4 for the message, + 3 for the
	// reply.
	if r.model != "m" || r.key != testKey || r.prompt != 20 || r.maxOut != 50 {
		t.Fatalf("reservation %+v", r)
	}
	if r.settles != 1 || r.settledIn != 11 || r.settleOut != 7 {
		t.Fatalf("settled %+v", r)
	}
	u := h.rec.next(t)
	want := inference.Usage{RequestID: "client-id-1", Key: testKey, Model: "m", Endpoint: "chat", InputTokens: 11, OutputTokens: 7, Cost: 11*2 + 7*6, Currency: "EUR", Upstream: up.url()}
	u.Time = time.Time{}
	if u != want {
		t.Fatalf("usage %+v, want %+v", u, want)
	}
}

func TestNonStreamingEstimatedAndErrorStatus(t *testing.T) {
	noUsage := newUpstream(t, jsonAnswer(`{"choices":[{"message":{"role":"assistant","content":"12345678"}}]}`))
	failing := newUpstream(t, func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"error":"bad"}`)
	})
	h := newHarness(t, Config{Models: []Model{chatModel("plain", noUsage), chatModel("failing", failing)}})
	resp := h.post(t, context.Background(), "/v1/chat/completions", goodKey, `{"model":"plain","messages":[{"role":"user","content":"abcd"}]}`)
	readAll(t, resp)
	u := h.rec.next(t)
	if !u.Estimated || u.InputTokens != 1+4+3 || u.OutputTokens != 2 {
		t.Fatalf("usage %+v", u)
	}
	if r := h.limits.only(t); r.maxOut != 1000 {
		t.Fatalf("worst case %d, want the model's default", r.maxOut)
	}
	resp = h.post(t, context.Background(), "/v1/chat/completions", goodKey, `{"model":"failing","messages":[]}`)
	if got := readAll(t, resp); resp.StatusCode != 400 || got != `{"error":"bad"}` {
		t.Fatalf("status %d body %s", resp.StatusCode, got)
	}
	h.rec.none(t)
	h.limits.mu.Lock()
	r := *h.limits.res[1]
	h.limits.mu.Unlock()
	if r.settles != 1 || r.settledIn != 0 || r.settleOut != 0 {
		t.Fatalf("error answer settled %+v", r)
	}
}

func TestEmbeddingsAndFIM(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/embeddings" {
			_, _ = io.WriteString(w, `{"object":"list","data":[],"usage":{"prompt_tokens":5,"total_tokens":5}}`)
			return
		}
		_, _ = io.WriteString(w, `{"choices":[{"message":{"content":"x"}}],"usage":{"prompt_tokens":3,"completion_tokens":2}}`)
	})
	emb := Model{Name: "emb", Upstreams: []Upstream{{BaseURL: up.url()}}, Endpoints: []string{EndpointEmbeddings}}
	h := newHarness(t, Config{Models: []Model{emb, chatModel("code", up)},
		Prices: newPrices(t, billing.ModelPrice{Model: "emb", InputPerMillion: 0.1}, billing.ModelPrice{Model: "code", InputPerMillion: 2, OutputPerMillion: 6})})
	resp := h.post(t, context.Background(), "/v1/embeddings", goodKey, `{"model":"emb","input":["abcdefgh",[1,2,3]]}`)
	readAll(t, resp)
	u := h.rec.next(t)
	if u.Endpoint != "embeddings" || u.InputTokens != 5 || u.OutputTokens != 0 || u.Cost != 1 || u.Estimated {
		t.Fatalf("usage %+v", u)
	}
	if r := h.limits.only(t); r.prompt != 8+3 || r.maxOut != 0 {
		t.Fatalf("reservation %+v", r)
	}
	if up.auths[0] != "" {
		t.Fatalf("the client's key reached the upstream: %q", up.auths[0])
	}
	resp = h.post(t, context.Background(), "/v1/fim/completions", goodKey, `{"model":"code","prompt":"def f(","suffix":"return 1"}`)
	readAll(t, resp)
	if u := h.rec.next(t); u.Endpoint != "fim" || u.InputTokens != 3 || u.OutputTokens != 2 {
		t.Fatalf("usage %+v", u)
	}
	if up.paths[1] != "/v1/fim/completions" {
		t.Fatalf("path %s", up.paths[1])
	}
}

// sse writes one event and flushes it.
func sse(w http.ResponseWriter, data string) {
	_, _ = fmt.Fprintf(w, "data: %s\n\n", data)
	w.(http.Flusher).Flush()
}

// readEvent reads one SSE event's data line.
func readEvent(t *testing.T, br *bufio.Reader) string {
	t.Helper()
	var data string
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading event: %v (got %q)", err, line)
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			return data
		}
		data = strings.TrimPrefix(line, "data: ")
	}
}

func TestStreamingPassesChunksThrough(t *testing.T) {
	release := make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		sse(w, `{"choices":[{"index":0,"delta":{"content":"Hel"}}]}`)
		<-release
		sse(w, `{"choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":"stop"}]}`)
		sse(w, `{"choices":[],"usage":{"prompt_tokens":20,"completion_tokens":9}}`)
		sse(w, `[DONE]`)
	})
	h := newHarness(t, Config{Models: []Model{chatModel("m", up)}})
	resp := h.post(t, context.Background(), "/v1/chat/completions", goodKey, `{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" || resp.Header.Get("X-Ratelimit-Remaining-Tokens") != "1000" {
		t.Fatalf("status %d headers %v", resp.StatusCode, resp.Header)
	}
	br := bufio.NewReader(resp.Body)
	// The upstream is still blocked: this chunk was relayed as it came.
	if got := readEvent(t, br); !strings.Contains(got, `"Hel"`) {
		t.Fatalf("first event %s", got)
	}
	close(release)
	if got := readEvent(t, br); !strings.Contains(got, `"lo"`) {
		t.Fatalf("second event %s", got)
	}
	// The usage-only chunk the gateway asked for is not the client's.
	if got := readEvent(t, br); got != "[DONE]" {
		t.Fatalf("third event %s, want [DONE]", got)
	}
	var sent map[string]json.RawMessage
	if err := json.Unmarshal([]byte(up.body(t, 0)), &sent); err != nil {
		t.Fatal(err)
	}
	if string(sent["stream_options"]) != `{"include_usage":true}` {
		t.Fatalf("stream_options %s", sent["stream_options"])
	}
	u := h.rec.next(t)
	if u.Estimated || u.InputTokens != 20 || u.OutputTokens != 9 {
		t.Fatalf("usage %+v", u)
	}
	if r := h.limits.only(t); r.settles != 1 || r.settledIn != 20 || r.settleOut != 9 {
		t.Fatalf("settled %+v", r)
	}
}

func TestStreamingClientAskedForUsage(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, _ *http.Request) {
		sse(w, `{"choices":[{"delta":{"content":"a"}}]}`)
		sse(w, `{"choices":[],"usage":{"prompt_tokens":4,"completion_tokens":1}}`)
		sse(w, `[DONE]`)
	})
	h := newHarness(t, Config{Models: []Model{chatModel("m", up)}})
	body := `{"model":"m","stream":true,"stream_options":{"include_usage":true},"max_tokens":9,"messages":[]}`
	resp := h.post(t, context.Background(), "/v1/chat/completions", goodKey, body)
	if got := readAll(t, resp); !strings.Contains(got, `"usage"`) {
		t.Fatalf("the usage chunk the client asked for is missing: %s", got)
	}
	if up.body(t, 0) != body {
		t.Fatalf("the body was changed: %s", up.body(t, 0))
	}
	if u := h.rec.next(t); u.Estimated || u.InputTokens != 4 {
		t.Fatalf("usage %+v", u)
	}
}

func TestStreamingWithoutUsageIsEstimated(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, _ *http.Request) {
		sse(w, `{"choices":[{"delta":{"content":"abcd"}}]}`)
		sse(w, `{"choices":[{"delta":{"content":"efgh"}}]}`)
		sse(w, `[DONE]`)
	})
	h := newHarness(t, Config{Models: []Model{chatModel("m", up)}})
	resp := h.post(t, context.Background(), "/v1/chat/completions", goodKey, `{"model":"m","stream":true,"stream_options":{"x":1},"messages":[{"role":"user","content":"abcd"}]}`)
	readAll(t, resp)
	var sent struct {
		StreamOptions map[string]any `json:"stream_options"`
	}
	_ = json.Unmarshal([]byte(up.body(t, 0)), &sent)
	if sent.StreamOptions["include_usage"] != true || sent.StreamOptions["x"] != float64(1) {
		t.Fatalf("stream_options %v", sent.StreamOptions)
	}
	u := h.rec.next(t)
	if !u.Estimated || u.InputTokens != 8 || u.OutputTokens != 2 {
		t.Fatalf("usage %+v", u)
	}
}

func TestStreamingClientGoesAway(t *testing.T) {
	upstreamDone := make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		defer close(upstreamDone)
		sse(w, `{"choices":[{"delta":{"content":"12345678"}}]}`)
		<-r.Context().Done()
	})
	h := newHarness(t, Config{Models: []Model{chatModel("m", up)}})
	ctx, cancel := context.WithCancel(context.Background())
	resp := h.post(t, ctx, "/v1/chat/completions", goodKey, `{"model":"m","stream":true,"messages":[]}`)
	br := bufio.NewReader(resp.Body)
	readEvent(t, br)
	cancel()
	u := h.rec.next(t)
	if !u.Estimated || u.OutputTokens != 2 || u.InputTokens != 3 {
		t.Fatalf("usage %+v", u)
	}
	if r := h.limits.only(t); r.settles != 1 || r.settleOut != 2 {
		t.Fatalf("settled %+v", r)
	}
	select {
	case <-upstreamDone:
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream call was not cancelled")
	}
}

func TestFailover(t *testing.T) {
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL + "/v1"
	down.Close()
	unavailable := newUpstream(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	good := newUpstream(t, jsonAnswer(chatAnswer))
	m := chatModel("m", unavailable, good)
	m.Upstreams = append([]Upstream{{BaseURL: downURL}}, m.Upstreams...)
	h := newHarness(t, Config{Models: []Model{m}})
	resp := h.post(t, context.Background(), "/v1/chat/completions", goodKey, `{"model":"m","messages":[]}`)
	if got := readAll(t, resp); resp.StatusCode != 200 || got != chatAnswer {
		t.Fatalf("status %d body %s", resp.StatusCode, got)
	}
	if unavailable.calls.Load() != 1 || good.calls.Load() != 1 {
		t.Fatalf("calls: 503 upstream %d, good upstream %d", unavailable.calls.Load(), good.calls.Load())
	}
	if u := h.rec.next(t); u.InputTokens != 11 {
		t.Fatalf("usage %+v", u)
	}
}

func TestLastUpstreamErrorPassesThrough(t *testing.T) {
	unavailable := newUpstream(t, func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, "busy")
	})
	h := newHarness(t, Config{Models: []Model{chatModel("m", unavailable)}})
	resp := h.post(t, context.Background(), "/v1/chat/completions", goodKey, `{"model":"m","messages":[]}`)
	if got := readAll(t, resp); resp.StatusCode != 503 || got != "busy" {
		t.Fatalf("status %d body %s", resp.StatusCode, got)
	}
}

func TestAllUpstreamsDown(t *testing.T) {
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	h := newHarness(t, Config{Models: []Model{{Name: "m", Upstreams: []Upstream{{BaseURL: down.URL}}}}})
	resp := h.post(t, context.Background(), "/v1/chat/completions", goodKey, `{"model":"m","messages":[]}`)
	if got := readAll(t, resp); resp.StatusCode != 502 || !strings.Contains(got, `"object":"error"`) {
		t.Fatalf("status %d body %s", resp.StatusCode, got)
	}
	if r := h.limits.only(t); r.settles != 1 || r.settledIn != 0 {
		t.Fatalf("settled %+v", r)
	}
	h.rec.none(t)
}

func TestNoRetryAfterBytesWereSent(t *testing.T) {
	breaking := newUpstream(t, func(w http.ResponseWriter, _ *http.Request) {
		sse(w, `{"choices":[{"delta":{"content":"abcd"}}]}`)
		panic(http.ErrAbortHandler)
	})
	second := newUpstream(t, jsonAnswer(chatAnswer))
	h := newHarness(t, Config{Models: []Model{chatModel("m", breaking, second)}})
	resp := h.post(t, context.Background(), "/v1/chat/completions", goodKey, `{"model":"m","stream":true,"messages":[]}`)
	got := readAll(t, resp)
	if !strings.Contains(got, `"abcd"`) || strings.Contains(got, "Hi there") {
		t.Fatalf("client got %s", got)
	}
	if second.calls.Load() != 0 {
		t.Fatal("the second upstream was called after bytes were sent")
	}
	if u := h.rec.next(t); !u.Estimated || u.OutputTokens != 1 {
		t.Fatalf("usage %+v", u)
	}
}

func TestLimitsRefusal(t *testing.T) {
	up := newUpstream(t, jsonAnswer(chatAnswer))
	h := newHarness(t, Config{Models: []Model{chatModel("m", up)}})
	h.limits.refuse = &inference.Refusal{
		Err:        &steward.Error{Kind: steward.KindRateLimited, Code: "tokens_per_minute", Message: "token rate limit exceeded"},
		RetryAfter: 1500 * time.Millisecond,
		Header:     http.Header{"X-Ratelimit-Remaining-Tokens": {"0"}},
	}
	resp := h.post(t, context.Background(), "/v1/chat/completions", goodKey, `{"model":"m","messages":[]}`)
	var e apierror.Body
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "2" || resp.Header.Get("X-Ratelimit-Remaining-Tokens") != "0" {
		t.Fatalf("status %d headers %v", resp.StatusCode, resp.Header)
	}
	if e.Object != "error" || e.Type != "rate_limit_error" || e.Code == nil || *e.Code != "tokens_per_minute" {
		t.Fatalf("body %+v", e)
	}
	if up.calls.Load() != 0 {
		t.Fatal("a refused request reached the upstream")
	}
	h.rec.none(t)
}

func TestAuthErrors(t *testing.T) {
	h := newHarness(t, Config{DemoModel: true})
	body := `{"model":"steward-demo","messages":[]}`
	for _, c := range []struct {
		name, header string
		status       int
		typ          string
	}{
		{"missing", "", 401, "authentication_error"},
		{"not bearer", "Basic " + goodKey, 401, "authentication_error"},
		{"unknown key", "Bearer sk-unknown", 401, "authentication_error"},
		{"forbidden", "Bearer sk-forbidden", 403, "permission_error"},
		{"rate limited", "Bearer sk-limited", 429, "rate_limit_error"},
	} {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/v1/chat/completions", strings.NewReader(body))
			if c.header != "" {
				req.Header.Set("Authorization", c.header)
			}
			resp, err := h.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var e apierror.Body
			if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != c.status || e.Object != "error" || e.Type != c.typ || resp.Header.Get("x-request-id") == "" {
				t.Fatalf("status %d body %+v", resp.StatusCode, e)
			}
			if c.status == 429 && resp.Header.Get("Retry-After") == "" {
				t.Fatal("no Retry-After")
			}
		})
	}
	h.limits.mu.Lock()
	defer h.limits.mu.Unlock()
	if len(h.limits.res) != 0 {
		t.Fatal("an unauthenticated request reserved")
	}
}

func TestModelErrors(t *testing.T) {
	up := newUpstream(t, jsonAnswer(chatAnswer))
	h := newHarness(t, Config{Models: []Model{chatModel("m", up)}})
	for _, c := range []struct {
		name, path, body string
		status           int
		want             string
	}{
		{"unknown model", "/v1/chat/completions", `{"model":"nope","messages":[]}`, 404, `model \"nope\" does not exist`},
		{"endpoint not offered", "/v1/embeddings", `{"model":"m","input":"x"}`, 404, `model \"m\" does not offer /embeddings`},
		{"missing model", "/v1/chat/completions", `{"messages":[]}`, 422, `{"detail":[{"loc":["body","model"],"msg":"Field required","type":"value_error"}]}`},
		{"model not a string", "/v1/chat/completions", `{"model":3}`, 422, `"loc":["body","model"]`},
		{"not an object", "/v1/chat/completions", `[1]`, 422, `"loc":["body"]`},
		{"bad max_tokens", "/v1/chat/completions", `{"model":"m","max_tokens":-1}`, 422, `"loc":["body","max_tokens"]`},
		// Beyond 2^63 when priced at the most a million tokens may cost.
		{"max_tokens too large", "/v1/chat/completions", `{"model":"m","max_tokens":9223372036854775807}`, 422,
			`{"detail":[{"loc":["body","max_tokens"],"msg":"max_tokens must be a whole number from 0 to 1073741824","type":"value_error"}]}`},
		{"max_tokens over the bound", "/v1/chat/completions", `{"model":"m","max_tokens":1073741825}`, 422,
			`"msg":"max_tokens must be a whole number from 0 to 1073741824"`},
		{"max_completion_tokens too large", "/v1/fim/completions", `{"model":"m","prompt":"x","max_completion_tokens":1e12}`, 422,
			`{"detail":[{"loc":["body","max_completion_tokens"],"msg":"max_completion_tokens must be a whole number from 0 to 1073741824","type":"value_error"}]}`},
		{"n too large", "/v1/chat/completions", `{"model":"m","n":129}`, 422,
			`{"detail":[{"loc":["body","n"],"msg":"n must be a whole number from 1 to 128","type":"value_error"}]}`},
		{"too large", "/v1/chat/completions", `{"model":"m","x":"` + strings.Repeat("a", maxBodyBytes) + `"}`, 413, `request_too_large`},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp := h.post(t, context.Background(), c.path, goodKey, c.body)
			if got := readAll(t, resp); resp.StatusCode != c.status || !strings.Contains(got, c.want) {
				t.Fatalf("status %d body %s", resp.StatusCode, got)
			}
		})
	}
	if up.calls.Load() != 0 {
		t.Fatal("the upstream was called")
	}
}

func TestRoutes(t *testing.T) {
	h := newHarness(t, Config{DemoModel: true})
	resp, err := h.srv.Client().Get(h.srv.URL + "/v1/chat/completions")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" {
		t.Fatalf("status %d", resp.StatusCode)
	}
	resp = h.post(t, context.Background(), "/v1/other", goodKey, "{}")
	if resp.StatusCode != 404 {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

// The gateway lists its routes for the server; a copy, which the server
// may wrap without changing what the gateway serves on its own.
func TestRouteTable(t *testing.T) {
	h := newHarness(t, Config{DemoModel: true})
	routes := h.g.Routes()
	var got []string
	for _, rt := range routes {
		got = append(got, fmt.Sprintf("%s %v", rt.Pattern, rt.OwnsBody))
	}
	want := []string{"POST /v1/chat/completions true", "POST /v1/fim/completions true", "POST /v1/embeddings true",
		"POST /v1/moderations true", "POST /v1/chat/moderations true", "POST /v1/classifications true", "POST /v1/chat/classifications true",
		"POST /v1/ocr true", "POST /v1/agents/completions true", "POST /v1/conversations true",
		"POST /v1/conversations/{conversation_id} true", "POST /v1/conversations/{conversation_id}/restart true",
		"POST /v1/audio/transcriptions true", "POST /v1/audio/speech true", "GET /v1/models false", "GET /v1/models/{model_id} false", "POST /v1/check/{check_id}/report false", "/v1/check false"}
	if !slices.Equal(got, want) {
		t.Fatalf("routes %q, want %q", got, want)
	}
	models := slices.Index(want, "GET /v1/models false")
	routes[models].Handler = http.NotFoundHandler()
	req := httptest.NewRequest(http.MethodGet, "/v1/models", nil)
	req.Header.Set("Authorization", "Bearer "+goodKey)
	rec := httptest.NewRecorder()
	h.g.Routes()[models].Handler.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), DemoModelName) {
		t.Fatalf("the model list after a copy of its route changed: %d %s", rec.Code, rec.Body)
	}
}

func TestDemoModel(t *testing.T) {
	h := newHarness(t, Config{DemoModel: true})
	body := `{"model":"steward-demo","messages":[{"role":"system","content":"be brief"},{"role":"user","content":[{"type":"text","text":"echo "},{"type":"text","text":"me please"}]}]}`
	resp := h.post(t, context.Background(), "/v1/chat/completions", goodKey, body)
	var a struct {
		Choices []struct {
			Message struct{ Content string }
		}
		Usage struct {
			PromptTokens     int64 `json:"prompt_tokens"`
			CompletionTokens int64 `json:"completion_tokens"`
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		t.Fatal(err)
	}
	if len(a.Choices) != 1 || a.Choices[0].Message.Content != "echo me please" || a.Usage.CompletionTokens != 4 {
		t.Fatalf("answer %+v", a)
	}
	u := h.rec.next(t)
	if !u.Estimated || u.Model != DemoModelName || u.InputTokens != a.Usage.PromptTokens || u.OutputTokens != 4 {
		t.Fatalf("usage %+v", u)
	}
	// The demo model costs DemoPrice: 0.1 and 0.3 per million tokens, in
	// micro-units rounded up.
	if want := (u.InputTokens+9)/10 + (4*3+9)/10; u.Cost != want || want == 0 {
		t.Fatalf("the demo model's usage costs %d, want %d at DemoPrice", u.Cost, want)
	}

	resp = h.post(t, context.Background(), "/v1/chat/completions", goodKey, `{"model":"steward-demo","stream":true,"max_tokens":2,"messages":[{"role":"user","content":"one two three"}]}`)
	br := bufio.NewReader(resp.Body)
	var text strings.Builder
	for {
		data := readEvent(t, br)
		if data == "[DONE]" {
			break
		}
		apitest.CheckModelSchema(t, "CompletionChunk", []byte(data))
		var c struct {
			Choices []struct {
				Delta struct{ Content string }
			}
		}
		if err := json.Unmarshal([]byte(data), &c); err != nil {
			t.Fatal(err)
		}
		text.WriteString(c.Choices[0].Delta.Content)
	}
	if text.String() != "one two " {
		t.Fatalf("streamed %q, want the echo cut to 2 tokens", text.String())
	}
	if u := h.rec.next(t); !u.Estimated || u.OutputTokens != 2 {
		t.Fatalf("usage %+v", u)
	}
}

func TestModelsList(t *testing.T) {
	up := newUpstream(t, jsonAnswer(chatAnswer))
	h := newHarness(t, Config{Models: []Model{chatModel("m", up)}, DemoModel: true})
	req, _ := http.NewRequest(http.MethodGet, h.srv.URL+"/v1/models", nil)
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("unauthenticated status %d", resp.StatusCode)
	}
	req.Header.Set("Authorization", "Bearer "+goodKey)
	resp, err = h.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw := []byte(readAll(t, resp))
	resp.Body.Close()
	apitest.CheckModelSchema(t, "ModelList", raw)
	type capabilities struct {
		Chat bool `json:"completion_chat"`
		FIM  bool `json:"completion_fim"`
	}
	var list struct {
		Object string
		Data   []struct {
			ID, Object   string
			OwnedBy      string `json:"owned_by"`
			Created      int64
			Capabilities capabilities
		}
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		t.Fatal(err)
	}
	if list.Object != "list" || len(list.Data) != 2 || list.Data[0].ID != "m" || list.Data[1].ID != DemoModelName ||
		list.Data[0].Object != "model" || list.Data[0].OwnedBy != "steward" || list.Data[0].Created == 0 {
		t.Fatalf("list %+v", list)
	}
	if got, want := list.Data[0].Capabilities, (capabilities{Chat: true, FIM: true}); got != want {
		t.Errorf("capabilities of m: %+v, want %+v", got, want)
	}
	if got, want := list.Data[1].Capabilities, (capabilities{Chat: true}); got != want {
		t.Errorf("capabilities of the demo model: %+v, want %+v", got, want)
	}
}

func TestNewValidates(t *testing.T) {
	ok := Upstream{BaseURL: "http://127.0.0.1:8000/v1"}
	for _, c := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"currency", Config{Currency: "euro"}, "currency"},
		{"duplicate", Config{Currency: "EUR", Models: []Model{{Name: "a", Upstreams: []Upstream{ok}}, {Name: "a", Upstreams: []Upstream{ok}}}}, "used twice"},
		{"demo name", Config{Currency: "EUR", DemoModel: true, Models: []Model{{Name: DemoModelName, Upstreams: []Upstream{ok}}}}, "demo"},
		{"no name", Config{Currency: "EUR", Models: []Model{{Upstreams: []Upstream{ok}}}}, "name"},
		{"no upstream", Config{Currency: "EUR", Models: []Model{{Name: "a"}}}, "upstream"},
		{"bad url", Config{Currency: "EUR", Models: []Model{{Name: "a", Upstreams: []Upstream{{BaseURL: "127.0.0.1:8000"}}}}}, "base URL"},
		{"unpriced", Config{Currency: "EUR", Models: []Model{{Name: "b", Upstreams: []Upstream{ok}}}}, `model 0 ("b") is not in the price table`},
		{"negative max", Config{Currency: "EUR", Models: []Model{{Name: "a", Upstreams: []Upstream{ok}, MaxOutputTokens: -1}}}, "negative"},
		{"endpoint", Config{Currency: "EUR", Models: []Model{{Name: "a", Upstreams: []Upstream{ok}, Endpoints: []string{"audio"}}}}, "endpoint"},
		{"default upstream url", Config{Currency: "EUR", Upstream: &Upstream{BaseURL: "ftp://x/v1"}, Objects: newMemObjects()}, `the default upstream's base URL "ftp://x/v1"`},
		{"no records", Config{Currency: "EUR", Upstream: &ok}, "a default upstream needs the records of the Workspaces' objects"},
		{"timeouts group", Config{Currency: "EUR", Timeouts: map[string]Timeouts{"uploads": {Header: time.Second}}}, `unknown group "uploads": want one of agents, batch_jobs,`},
		{"negative timeout", Config{Currency: "EUR", Timeouts: map[string]Timeouts{GroupFiles: {Idle: -time.Second}}}, "timeouts of files must be positive"},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.cfg.Prices = newPrices(t, billing.ModelPrice{Model: "a"})
			_, err := New(c.cfg, fakeAuth{}, &fakeLimits{}, &fakeRecorder{}, nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v, want one mentioning %q", err, c.want)
			}
		})
	}
}

// BenchmarkGatewayOverhead compares a non-streaming chat request through
// the gateway (no-op fakes) with one through a bare httputil.ReverseProxy,
// both to the same fake upstream over loopback.
func BenchmarkGatewayOverhead(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, chatAnswer)
	}))
	defer up.Close()
	g, err := New(Config{Currency: "EUR", Models: []Model{{Name: "m", Upstreams: []Upstream{{BaseURL: up.URL + "/v1"}}}},
		Prices: newPrices(b, billing.ModelPrice{Model: "m"})}, fakeAuth{}, noopLimits{}, noopRecorder{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	gw := httptest.NewServer(g)
	defer gw.Close()
	target, _ := url.Parse(up.URL)
	rp := httptest.NewServer(httputil.NewSingleHostReverseProxy(target))
	defer rp.Close()
	body := []byte(`{"model":"m","messages":[{"role":"user","content":"Hello, how are you today?"}],"max_tokens":64}`)
	for _, c := range []struct{ name, url string }{{"gateway", gw.URL}, {"reverseproxy", rp.URL}} {
		b.Run(c.name, func(b *testing.B) {
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
			defer client.CloseIdleConnections()
			for b.Loop() {
				req, _ := http.NewRequest(http.MethodPost, c.url+"/v1/chat/completions", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+goodKey)
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
		})
	}
}

type noopLimits struct{}

type noopTicket struct{}

func (noopTicket) Headers() http.Header    { return nil }
func (noopTicket) Settle(billing.Quantity) {}

func (noopLimits) Reserve(context.Context, steward.Principal, string, billing.Quantity) (inference.Ticket, error) {
	return noopTicket{}, nil
}

type noopRecorder struct{}

func (noopRecorder) Record(context.Context, inference.Usage) error { return nil }

func (r noopRecorder) Intend(inference.Usage) (inference.Intent, error) {
	return inference.Direct(r), nil
}

// TestUpstreamConnectionsAreReused sends waves of concurrent requests and
// checks that the gateway keeps its upstream connections for the next.
func TestUpstreamConnectionsAreReused(t *testing.T) {
	var dialed atomic.Int64
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		jsonAnswer(chatAnswer)(w, r)
	}))
	up.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			dialed.Add(1)
		}
	}
	up.Start()
	t.Cleanup(up.Close)
	m := Model{Name: "m", Upstreams: []Upstream{{BaseURL: up.URL}}, Endpoints: []string{EndpointChat}}
	h := newHarness(t, Config{Models: []Model{m}})
	const concurrent = 32
	go func() {
		for range h.rec.got {
		}
	}()
	wave := func() {
		var wg sync.WaitGroup
		for range concurrent {
			wg.Go(func() {
				resp := h.post(t, context.Background(), "/v1/chat/completions", goodKey, `{"model":"m","messages":[]}`)
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Errorf("status %d", resp.StatusCode)
				}
			})
		}
		wg.Wait()
	}
	for range 6 {
		wave()
	}
	// A connection still on its way back to the pool when the next wave
	// starts may be dialed again; without reuse every wave dials most.
	if got := dialed.Load(); got > concurrent*3/2 {
		t.Fatalf("six waves of %d concurrent requests dialed %d connections to the upstream", concurrent, got)
	}
}

// TestAnswerWithheldWhenUsageIsNotRecorded: a non-streamed answer is
// delivered only once its usage is durable.
func TestAnswerWithheldWhenUsageIsNotRecorded(t *testing.T) {
	up := newUpstream(t, jsonAnswer(chatAnswer))
	h := newHarness(t, Config{Models: []Model{chatModel("m", up)}, DemoModel: true})
	h.rec.err = errors.New("disk full")
	var ids []string
	for _, model := range []string{"m", DemoModelName} {
		resp := h.post(t, context.Background(), "/v1/chat/completions", goodKey, `{"model":"`+model+`","messages":[{"role":"user","content":"hello"}]}`)
		ids = append(ids, resp.Header.Get("x-request-id"))
		var e apierror.Body
		if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || e.Type != "server_error" || e.Code == nil || *e.Code != "usage_not_recorded" {
			t.Fatalf("%s: %d %+v", model, resp.StatusCode, e)
		}
	}
	if !strings.Contains(h.logs.String(), "recording usage failed") || !strings.Contains(h.logs.String(), "disk full") {
		t.Fatalf("the failure is not logged:\n%s", h.logs.String())
	}
	// Each failure's line names the request it failed, by the id its
	// answer carried.
	for _, id := range ids {
		if id == "" || !regexp.MustCompile(`(?m)^.*msg="recording usage failed" request_id=`+regexp.QuoteMeta(id)+` .*disk full`).MatchString(h.logs.String()) {
			t.Errorf("no failure logged with request_id=%s:\n%s", id, h.logs.String())
		}
	}
}

func TestUpstreamTransportHeaderTimeout(t *testing.T) {
	stop := make(chan struct{})
	upstream := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-stop }))
	defer upstream.Close()
	defer close(stop)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", upstream.URL, nil)
	resp, err := (&http.Client{Transport: UpstreamTransport(50 * time.Millisecond)}).Do(req)
	if err == nil {
		resp.Body.Close()
	}
	if err == nil || ctx.Err() != nil || !strings.Contains(err.Error(), "timeout awaiting response headers") {
		t.Fatalf("a model server that never answers: %v (context: %v), want the header timeout", err, ctx.Err())
	}
}
