package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stewardhq/steward/internal/apitest"
	"github.com/stewardhq/steward/internal/billing"
	"github.com/stewardhq/steward/internal/inference"
	"github.com/stewardhq/steward/internal/mistraltest"
)

// TestModerationsAndClassifications: the four operations reserve their
// input's bound and no output, forward the body to their own path, and
// record the usage the answer reports, or an estimate of the input when it
// reports none; a model that does not offer them, or that the key may not
// call, is answered as an unknown model, without an upstream call.
func TestModerationsAndClassifications(t *testing.T) {
	const answer = `{"id":"mod-1","model":"mod","results":[{"categories":{"pii":false},"category_scores":{"pii":0.01}}],"usage":{"prompt_tokens":9,"total_tokens":9,"completion_tokens":0}}`
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if strings.Contains(r.URL.Path, "classifications") {
			_, _ = w.Write([]byte(`{"id":"cls-1","model":"mod","results":[{"topic":{"scores":{"a":0.9}}}]}`))
			return
		}
		_, _ = w.Write([]byte(answer))
	})
	mod := Model{Name: "mod", Upstreams: []Upstream{{BaseURL: up.url()}}, Endpoints: []string{EndpointModerations, EndpointClassifications}}
	h := newHarnessAuth(t, Config{Models: []Model{mod, chatModel("m", up)},
		Prices: newPrices(t, billing.ModelPrice{Model: "mod", InputPerMillion: 100}, billing.ModelPrice{Model: "m", InputPerMillion: 2, OutputPerMillion: 6})}, listAuth{})

	chats := `[{"role":"user","content":"caf\u00e9"},{"role":"assistant","content":"ok"}]`
	for i, c := range []struct {
		path, body, endpoint string
		bound                int64
		in                   int64
		estimated            bool
	}{
		{"/v1/moderations", `{"model":"mod","input":["hello","world!"]}`, "moderations", 11, 9, false},
		{"/v1/chat/moderations", `{"model":"mod","input":` + chats + `}`, "chat_moderations", int64(len(chats)), 9, false},
		// The classifier reports no usage: the input is estimated.
		{"/v1/classifications", `{"model":"mod","input":"abcdefgh"}`, "classifications", 8, 2, true},
		{"/v1/chat/classifications", `{"model":"mod","input":` + chats + `}`, "chat_classifications", int64(len(chats)), (int64(len(chats)) + 3) / 4, true},
	} {
		t.Run(c.endpoint, func(t *testing.T) {
			status, _, body := h.send(t, http.MethodPost, c.path, goodKey, c.body)
			if status != http.StatusOK || !strings.Contains(body, `"results":[`) {
				t.Fatalf("status %d body %s", status, body)
			}
			if got := up.body(t, i); got != c.body {
				t.Fatalf("the upstream got %s, want the body unchanged", got)
			}
			if up.paths[i] != c.path {
				t.Fatalf("the upstream was called at %s, want %s", up.paths[i], c.path)
			}
			u := h.rec.next(t)
			if u.Endpoint != c.endpoint || u.Model != "mod" || u.InputTokens != c.in || u.OutputTokens != 0 || u.Estimated != c.estimated ||
				u.Cost != c.in*100 || u.Overrun {
				t.Fatalf("usage %+v", u)
			}
			h.limits.mu.Lock()
			r := *h.limits.res[len(h.limits.res)-1]
			h.limits.mu.Unlock()
			if r.prompt != c.bound || r.maxOut != 0 || r.settledIn != c.in || r.settleOut != 0 || r.settles != 1 {
				t.Fatalf("reservation %+v, want %d input tokens reserved", r, c.bound)
			}
		})
	}
	calls := up.calls.Load()
	for _, c := range []struct{ name, path, token, body, want string }{
		{"not offered", "/v1/moderations", goodKey, `{"model":"m","input":"x"}`, `model \"m\" does not offer /moderations`},
		{"chat variant not offered", "/v1/chat/classifications", goodKey, `{"model":"m","input":[]}`, `model \"m\" does not offer /chat/classifications`},
		{"unknown", "/v1/classifications", goodKey, `{"model":"nope","input":"x"}`, `model \"nope\" does not exist`},
		{"not allowed", "/v1/moderations", onlyMKey, `{"model":"mod","input":"x"}`, `model \"mod\" does not exist`},
		{"no model", "/v1/chat/moderations", goodKey, `{"input":[]}`, `{"detail":[{"loc":["body","model"],"msg":"Field required","type":"value_error"}]}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp := h.post(t, context.Background(), c.path, c.token, c.body)
			if got := readAll(t, resp); (resp.StatusCode != 404 && resp.StatusCode != 422) || !strings.Contains(got, c.want) {
				t.Fatalf("status %d body %s", resp.StatusCode, got)
			}
		})
	}
	if n := up.calls.Load(); n != calls {
		t.Fatalf("refused requests reached the upstream: %d calls, want %d", n, calls)
	}
	h.rec.none(t)
}

// TestOCR: an OCR request reserves its pages (those it names, one for an
// image, else the model's max_pages), is recorded at the pages its answer
// says it processed, priced per thousand pages, and marked an overrun when
// they are more than it reserved; an answer without usage_info is recorded
// at the pages it carries, estimated.
func TestOCR(t *testing.T) {
	var answer atomic.Value
	up := newUpstream(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(answer.Load().(string)))
	})
	ocr := Model{Name: "ocr", Upstreams: []Upstream{{BaseURL: up.url()}}, MaxPages: 40, Endpoints: []string{EndpointOCR}}
	h := newHarness(t, Config{Models: []Model{ocr},
		Prices: newPrices(t, billing.ModelPrice{Model: "ocr", PerThousandPages: 2, InputPerMillion: 1})})
	const pdf = `"document":{"type":"document_url","document_url":"https://example.com/a.pdf"}`
	page := `{"index":0,"markdown":"x","images":[],"dimensions":null}`
	for _, c := range []struct {
		name, body, answer string
		reserved, pages    int64
		estimated, overrun bool
	}{
		{"the model's max pages", `{"model":"ocr",` + pdf + `}`, `{"pages":[` + page + `],"model":"ocr","usage_info":{"pages_processed":29,"doc_size_bytes":1000}}`, 40, 29, false, false},
		{"a list of pages", `{"model":"ocr",` + pdf + `,"pages":[0,3,7]}`, `{"pages":[],"model":"ocr","usage_info":{"pages_processed":3}}`, 3, 3, false, false},
		{"ranges", `{"model":"ocr",` + pdf + `,"pages":"0,2-4, 9"}`, `{"pages":[],"model":"ocr","usage_info":{"pages_processed":5}}`, 5, 5, false, false},
		{"an image", `{"model":"ocr","document":{"type":"image_url","image_url":"https://example.com/a.png"}}`, `{"pages":[],"model":"ocr","usage_info":{"pages_processed":1}}`, 1, 1, false, false},
		{"a bad range bounds nothing", `{"model":"ocr",` + pdf + `,"pages":"4-2"}`, `{"pages":[],"model":"ocr","usage_info":{"pages_processed":0}}`, 40, 0, false, false},
		{"no usage_info", `{"model":"ocr",` + pdf + `}`, `{"pages":[` + page + `,` + page + `],"model":"ocr"}`, 40, 2, true, false},
		{"more than reserved", `{"model":"ocr",` + pdf + `,"pages":[1]}`, `{"pages":[],"model":"ocr","usage_info":{"pages_processed":2}}`, 1, 2, false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			answer.Store(c.answer)
			status, _, body := h.send(t, http.MethodPost, "/v1/ocr", goodKey, c.body)
			if status != http.StatusOK || body != c.answer {
				t.Fatalf("status %d body %s, want the answer unchanged", status, body)
			}
			u := h.rec.next(t)
			if u.Endpoint != "ocr" || u.Pages != c.pages || u.InputTokens != 0 || u.OutputTokens != 0 || u.Cost != c.pages*2_000 ||
				u.Estimated != c.estimated || u.Overrun != c.overrun {
				t.Fatalf("usage %+v, want %d pages at 2,000 micro-units each", u, c.pages)
			}
			h.limits.mu.Lock()
			r := *h.limits.res[len(h.limits.res)-1]
			h.limits.mu.Unlock()
			if r.pages != c.reserved || r.prompt != 0 || r.maxOut != 0 || r.settledPages != c.pages || r.settles != 1 {
				t.Fatalf("reservation %+v, want %d pages reserved and %d settled", r, c.reserved, c.pages)
			}
		})
	}
	if !strings.Contains(h.logs.String(), "reserved_pages=1") {
		t.Errorf("the overrun was not logged with its pages: %s", h.logs)
	}
	status, _, body := h.send(t, http.MethodPost, "/v1/ocr", goodKey, `{"document":{}}`)
	if status != http.StatusUnprocessableEntity || !strings.Contains(body, `"loc":["body","model"]`) {
		t.Fatalf("an OCR request naming no model: %d %s", status, body)
	}
}

func TestNewRefusesMaxPages(t *testing.T) {
	for _, n := range []int64{-1, MaxPages + 1} {
		_, err := New(Config{Currency: "EUR", Models: []Model{{Name: "ocr", Upstreams: []Upstream{{BaseURL: "http://127.0.0.1:1/v1"}}, MaxPages: n}},
			Prices: newPrices(t, billing.ModelPrice{Model: "ocr"})}, fakeAuth{}, &fakeLimits{}, &fakeRecorder{}, nil)
		if err == nil || !strings.Contains(err.Error(), `model 0 ("ocr"): max pages`) {
			t.Errorf("max pages %d: %v", n, err)
		}
	}
}

// TestMeteredOperationsInFrontOfMistral drives moderations,
// classifications (of texts and of chats) and OCR through the gateway in
// front of the fake Mistral upstream: each answer is Mistral's, valid
// against its operation in the model API document, and is recorded at the
// usage it reports, priced per token or per page.
func TestMeteredOperationsInFrontOfMistral(t *testing.T) {
	up := mistraltest.New(t)
	up.SetUsage(mistraltest.Usage{PromptTokens: 13, CompletionTokens: 5, PagesProcessed: 4})
	h := newHarness(t, Config{Models: []Model{
		{Name: "mistral-moderation-latest", Upstreams: []Upstream{{BaseURL: up.BaseURL(), APIKey: up.Key}}, Endpoints: []string{EndpointModerations, EndpointClassifications}},
		{Name: "mistral-ocr-latest", Upstreams: []Upstream{{BaseURL: up.BaseURL(), APIKey: up.Key}}, Endpoints: []string{EndpointOCR}},
	}, Prices: newPrices(t, billing.ModelPrice{Model: "mistral-moderation-latest", InputPerMillion: 100},
		billing.ModelPrice{Model: "mistral-ocr-latest", PerThousandPages: 3})})
	chat := `[{"role":"user","content":"is this fine?"}]`
	for _, c := range []struct {
		op, path, body, endpoint string
		in, pages, cost          int64
	}{
		{"moderations_v1_moderations_post", "/v1/moderations", `{"model":"mistral-moderation-latest","input":["hello there","general kenobi"]}`, "moderations", 13, 0, 1300},
		{"chat_moderations_v1_chat_moderations_post", "/v1/chat/moderations", `{"model":"mistral-moderation-latest","input":` + chat + `}`, "chat_moderations", 13, 0, 1300},
		{"classifications_v1_classifications_post", "/v1/classifications", `{"model":"mistral-moderation-latest","input":"some text to classify"}`, "classifications", 13, 0, 1300},
		{"chat_classifications_v1_chat_classifications_post", "/v1/chat/classifications", `{"model":"mistral-moderation-latest","input":{"messages":` + chat + `}}`, "chat_classifications", 13, 0, 1300},
		{"ocr_v1_ocr_post", "/v1/ocr", `{"model":"mistral-ocr-latest","document":{"type":"document_url","document_url":"https://example.com/a.pdf"}}`, "ocr", 0, 4, 12_000},
	} {
		t.Run(c.endpoint, func(t *testing.T) {
			resp := h.post(t, context.Background(), c.path, goodKey, c.body)
			body := readAll(t, resp)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d body %s", resp.StatusCode, body)
			}
			apitest.CheckModelResponse(t, c.op, resp.StatusCode, resp.Header.Get("Content-Type"), []byte(body))
			if last, ok := up.Last(c.op); !ok || string(last.Body) != c.body || last.Header.Get("Authorization") != "Bearer "+up.Key {
				t.Fatalf("the upstream got %+v, want the body unchanged with its own key", last)
			}
			u := h.rec.next(t)
			if u.Endpoint != c.endpoint || u.InputTokens != c.in || u.OutputTokens != 0 || u.Pages != c.pages || u.Cost != c.cost || u.Estimated || u.Overrun {
				t.Fatalf("usage %+v", u)
			}
		})
	}
}

// agentGateway is a gateway in front of the fake Mistral upstream whose
// agent model is "agents-model", priced 1 a million input tokens and 2 a
// million output tokens, with an agent created on the upstream.
func agentGateway(t *testing.T) (*harness, *mistraltest.Server, string) {
	t.Helper()
	up := mistraltest.New(t)
	ups := []Upstream{{BaseURL: up.BaseURL(), APIKey: up.Key}}
	h := newHarness(t, Config{AgentModel: "agents-model", Objects: newMemObjects(), Models: []Model{
		{Name: "agents-model", Upstreams: ups, MaxOutputTokens: 500, Endpoints: []string{EndpointAgents}},
		{Name: "mistral-medium-latest", Upstreams: ups, MaxOutputTokens: 300, Endpoints: []string{EndpointChat, EndpointAgents}},
		{Name: "chat-only", Upstreams: ups},
	}, Prices: newPrices(t, billing.ModelPrice{Model: "agents-model", InputPerMillion: 1, OutputPerMillion: 2},
		billing.ModelPrice{Model: "mistral-medium-latest", InputPerMillion: 3, OutputPerMillion: 4}, billing.ModelPrice{Model: "chat-only"})})
	req, err := http.NewRequest(http.MethodPost, up.BaseURL()+"/agents", strings.NewReader(`{"model":"mistral-medium-latest","name":"pirate"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+up.Key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var agent struct{ ID string }
	if err := json.NewDecoder(resp.Body).Decode(&agent); err != nil || agent.ID == "" {
		t.Fatalf("creating an agent upstream: %d %v", resp.StatusCode, err)
	}
	h.own(t, inference.ObjectAgent, agent.ID)
	return h, up, agent.ID
}

// lastReservation is the newest reservation h's limits took.
func (h *harness) lastReservation(t *testing.T) reservation {
	t.Helper()
	h.limits.mu.Lock()
	defer h.limits.mu.Unlock()
	if len(h.limits.res) == 0 {
		t.Fatal("nothing was reserved")
	}
	return *h.limits.res[len(h.limits.res)-1]
}

// TestAgentsCompletions: an agents completion names an agent and no model:
// the agent model serves it, reserved and priced as a chat completion of
// that model, plain and streamed, its answer Mistral's.
func TestAgentsCompletions(t *testing.T) {
	h, up, agent := agentGateway(t)
	up.SetUsage(mistraltest.Usage{PromptTokens: 12, CompletionTokens: 40})
	up.SetStream(mistraltest.Stream{Chunks: 3})
	body := `{"agent_id":"` + agent + `","messages":[{"role":"user","content":"who is the finest painter?"}]}`
	resp := h.post(t, context.Background(), "/v1/agents/completions", goodKey, body)
	got := readAll(t, resp)
	if resp.StatusCode != http.StatusOK || !strings.Contains(got, `"object":"chat.completion"`) {
		t.Fatalf("status %d body %s", resp.StatusCode, got)
	}
	apitest.CheckModelResponse(t, "agents_completion_v1_agents_completions_post", resp.StatusCode, resp.Header.Get("Content-Type"), []byte(got))
	u := h.rec.next(t)
	if u.Endpoint != "agents" || u.Model != "agents-model" || u.InputTokens != 12 || u.OutputTokens != 40 || u.Cost != 12+80 || u.Estimated || u.Overrun {
		t.Fatalf("usage %+v", u)
	}
	if r := h.lastReservation(t); r.model != "agents-model" || r.prompt != int64(len("who is the finest painter?"))+4+3 || r.maxOut != 500 {
		t.Fatalf("reservation %+v, want the agent model's max output tokens", r)
	}
	// The upstream is told the output reserved, as for a chat completion.
	if last, _ := up.Last("agents_completion_v1_agents_completions_post"); !strings.Contains(string(last.Body), `"max_tokens":500`) {
		t.Fatalf("the upstream got %s", last.Body)
	}

	resp = h.post(t, context.Background(), "/v1/agents/completions", goodKey, strings.TrimSuffix(body, "}")+`,"stream":true,"max_tokens":30}`)
	got = readAll(t, resp)
	if resp.StatusCode != http.StatusOK || !strings.HasSuffix(got, "data: [DONE]\n\n") || strings.Count(got, `"delta"`) < 3 {
		t.Fatalf("stream: status %d body %s", resp.StatusCode, got)
	}
	u = h.rec.next(t)
	if u.Endpoint != "agents" || u.Model != "agents-model" || u.InputTokens != 12 || u.OutputTokens != 30 || u.Estimated || u.Overrun {
		t.Fatalf("streamed usage %+v, want the upstream's, its output cut to max_tokens", u)
	}
}

// TestConversations: a conversation's start, append and restart, plain
// and streamed, are served by the model the start names, else by the
// agent model, and recorded at the usage of the answer or of the stream's
// final event; the upstream gets the body unchanged, at the request's
// path. The prompt of an append includes the conversation's entries,
// which the request does not carry: input beyond the reservation is not
// an overrun there.
func TestConversations(t *testing.T) {
	h, up, agent := agentGateway(t)
	up.SetUsage(mistraltest.Usage{PromptTokens: 200, CompletionTokens: 7})
	up.SetStream(mistraltest.Stream{Chunks: 2})
	send := func(path, body string) (string, inference.Usage) {
		t.Helper()
		resp := h.post(t, context.Background(), path, goodKey, body)
		got := readAll(t, resp)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d body %s", path, resp.StatusCode, got)
		}
		return got, h.rec.next(t)
	}
	start, u := send("/v1/conversations", `{"model":"mistral-medium-latest","inputs":"ahoy"}`)
	apitest.CheckModelResponse(t, "agents_api_v1_conversations_start", 200, "application/json", []byte(start))
	if u.Endpoint != "conversations" || u.Model != "mistral-medium-latest" || u.InputTokens != 200 || u.OutputTokens != 7 || u.Cost != 600+28 || u.Overrun || u.Estimated {
		t.Fatalf("usage %+v", u)
	}
	if r := h.lastReservation(t); r.model != "mistral-medium-latest" || r.prompt != int64(len(`"ahoy"`))+3 || r.maxOut != 300 {
		t.Fatalf("reservation %+v", r)
	}
	var conv struct {
		ConversationID string `json:"conversation_id"`
		Outputs        []struct{ ID string }
	}
	if err := json.Unmarshal([]byte(start), &conv); err != nil || conv.ConversationID == "" || len(conv.Outputs) == 0 {
		t.Fatalf("%s: %v", start, err)
	}

	_, u = send("/v1/conversations/"+conv.ConversationID, `{"inputs":"and then?","completion_args":{"max_tokens":50}}`)
	if u.Model != "agents-model" || u.InputTokens != 200 || u.Overrun {
		t.Fatalf("append: usage %+v, want the agent model's, not an overrun", u)
	}
	if r := h.lastReservation(t); r.maxOut != 50 {
		t.Fatalf("append: reservation %+v, want completion_args.max_tokens", r)
	}
	if last, _ := up.Last("agents_api_v1_conversations_append"); last.URL.Path != "/v1/conversations/"+conv.ConversationID ||
		string(last.Body) != `{"inputs":"and then?","completion_args":{"max_tokens":50}}` {
		t.Fatalf("append reached the upstream as %s %s", last.URL, last.Body)
	}

	stream, u := send("/v1/conversations/"+conv.ConversationID+"/restart", `{"inputs":"again","from_entry_id":"`+conv.Outputs[0].ID+`","stream":true}`)
	if !strings.Contains(stream, "event: conversation.response.done") || strings.Count(stream, "message.output.delta") < 2 {
		t.Fatalf("restart stream %s", stream)
	}
	apitest.CheckModelResponse(t, "agents_api_v1_conversations_restart_stream", 200, "text/event-stream", []byte(stream))
	if u.Model != "agents-model" || u.InputTokens != 200 || u.OutputTokens != 7 || u.Estimated {
		t.Fatalf("restart stream: usage %+v, want the final event's", u)
	}

	_, u = send("/v1/conversations", `{"agent_id":"`+agent+`","inputs":"hello","stream":true}`)
	if u.Model != "agents-model" || u.OutputTokens != 7 || u.Estimated {
		t.Fatalf("a start with an agent: usage %+v", u)
	}
	// The client's completion_args.max_tokens reaches the upstream as it
	// was, which stops there.
	_, u = send("/v1/conversations", `{"model":"mistral-medium-latest","inputs":"hi","completion_args":{"max_tokens":5}}`)
	if u.Overrun || u.OutputTokens != 5 {
		t.Fatalf("completion_args.max_tokens 5: usage %+v", u)
	}

	calls := up.Count("agents_api_v1_conversations_start")
	for _, c := range []struct{ name, body, want string }{
		{"a model without agents", `{"model":"chat-only","inputs":"x"}`, `model \"chat-only\" does not offer /conversations`},
		{"an unknown model", `{"model":"nope","inputs":"x"}`, `model \"nope\" does not exist`},
		{"bad max_tokens", `{"model":"mistral-medium-latest","inputs":"x","completion_args":{"max_tokens":-1}}`, `"loc":["body","completion_args","max_tokens"]`},
	} {
		resp := h.post(t, context.Background(), "/v1/conversations", goodKey, c.body)
		if got := readAll(t, resp); (resp.StatusCode != 404 && resp.StatusCode != 422) || !strings.Contains(got, c.want) {
			t.Errorf("%s: %d %s", c.name, resp.StatusCode, got)
		}
	}
	if n := up.Count("agents_api_v1_conversations_start"); n != calls {
		t.Fatalf("refused starts reached the upstream: %d, want %d", n, calls)
	}
}

// TestAgentModel: without an agent model, a request naming no model is
// answered as one for an unknown model, and nothing is reserved; the agent
// model must be a configured model offering agents.
func TestAgentModel(t *testing.T) {
	up := newUpstream(t, jsonAnswer(chatAnswer))
	h := newHarness(t, Config{Models: []Model{chatModel("m", up)}, Objects: newMemObjects()})
	h.own(t, inference.ObjectAgent, "ag_1")
	resp := h.post(t, context.Background(), "/v1/agents/completions", goodKey, `{"agent_id":"ag_1","messages":[]}`)
	if got := readAll(t, resp); resp.StatusCode != http.StatusNotFound ||
		!strings.Contains(got, `"message":"the request names no model, and no agent model is configured to serve agents","type":"not_found_error","param":"model","code":"model_not_found"`) {
		t.Fatalf("status %d body %s", resp.StatusCode, got)
	}
	if up.calls.Load() != 0 || len(h.limits.res) != 0 {
		t.Fatal("a request without a model was forwarded or reserved")
	}
	for _, name := range []string{"m", "missing", DemoModelName} {
		_, err := New(Config{Currency: "EUR", DemoModel: true, AgentModel: name, Models: []Model{chatModel("m", up)}, Prices: newPrices(t, billing.ModelPrice{Model: "m"})},
			fakeAuth{}, &fakeLimits{}, &fakeRecorder{}, nil)
		if err == nil || !strings.Contains(err.Error(), "is not a configured model offering agents") {
			t.Errorf("agent model %q: %v", name, err)
		}
	}
}

// audioForm is a transcription's multipart form: fields in the order
// given (name, value pairs, "file" sent as a file of size bytes).
func audioForm(t *testing.T, size int, fields ...string) (string, []byte) {
	t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	for i := 0; i < len(fields); i += 2 {
		if fields[i] == "file" {
			f, err := w.CreateFormFile("file", "speech.mp3")
			if err != nil {
				t.Fatal(err)
			}
			_, _ = f.Write(bytes.Repeat([]byte{0xff}, size))
			continue
		}
		if err := w.WriteField(fields[i], fields[i+1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return w.FormDataContentType(), b.Bytes()
}

// TestAudio: a transcription's form is forwarded as it arrives, its model
// read before its file; it reserves the model's max_audio_seconds and is
// recorded at the seconds and tokens its answer (or its stream's
// transcription.done event) reports, priced per minute of audio and per
// token. Speech is metered in tokens: its stream's usage, or an estimate
// of its input for an answer without usage.
func TestAudio(t *testing.T) {
	up := mistraltest.New(t)
	up.SetUsage(mistraltest.Usage{PromptTokens: 4, CompletionTokens: 635, AudioSeconds: 203})
	up.SetStream(mistraltest.Stream{Chunks: 3})
	ups := []Upstream{{BaseURL: up.BaseURL(), APIKey: up.Key}}
	h := newHarness(t, Config{Models: []Model{
		{Name: "voxtral", Upstreams: ups, MaxAudioSeconds: 600, MaxOutputTokens: 2000, Endpoints: []string{EndpointTranscriptions}},
		{Name: "voice", Upstreams: ups, MaxOutputTokens: 900, Endpoints: []string{EndpointSpeech}},
	}, Prices: newPrices(t, billing.ModelPrice{Model: "voxtral", PerMinuteOfAudio: 0.006, InputPerMillion: 1, OutputPerMillion: 2},
		billing.ModelPrice{Model: "voice", InputPerMillion: 10, OutputPerMillion: 10})})
	postForm := func(contentType string, body []byte) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, h.srv.URL+"/v1/audio/transcriptions", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+goodKey)
		req.Header.Set("Content-Type", contentType)
		resp, err := h.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		return resp, readAll(t, resp)
	}

	// A file larger than what is held before the model field.
	ct, form := audioForm(t, 3*maxFormHeadBytes, "model", "voxtral", "file", "", "language", "en")
	resp, got := postForm(ct, form)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d body %s", resp.StatusCode, got)
	}
	apitest.CheckModelResponse(t, "audio_api_v1_transcriptions_post", resp.StatusCode, resp.Header.Get("Content-Type"), []byte(got))
	if last, _ := up.Last("audio_api_v1_transcriptions_post"); last.BodySize != int64(len(form)) || last.Header.Get("Content-Type") != ct {
		t.Fatalf("the upstream got %d bytes of %s, want the %d of the form as sent", last.BodySize, last.Header.Get("Content-Type"), len(form))
	}
	u := h.rec.next(t)
	// 203 s at 0.006 a minute is 20,300 micro-units; 4 and 635 tokens at 1
	// and 2 a million, 4 and 1,270.
	if u.Endpoint != "transcriptions" || u.AudioSeconds != 203 || u.InputTokens != 4 || u.OutputTokens != 635 || u.Cost != 20_300+4+1_270 || u.Estimated || u.Overrun {
		t.Fatalf("usage %+v", u)
	}
	if r := h.lastReservation(t); r.prompt != 0 || r.maxOut != 2000 {
		t.Fatalf("reservation %+v", r)
	}

	ct, form = audioForm(t, 1000, "model", "voxtral", "file", "", "stream", "true")
	resp, got = postForm(ct, form)
	if resp.StatusCode != http.StatusOK || !strings.Contains(got, "event: transcription.done") || strings.Count(got, "transcription.text.delta") < 3 {
		t.Fatalf("stream: status %d body %s", resp.StatusCode, got)
	}
	apitest.CheckModelResponse(t, "audio_api_v1_transcriptions_post_stream", resp.StatusCode, resp.Header.Get("Content-Type"), []byte(got))
	if u := h.rec.next(t); u.AudioSeconds != 203 || u.OutputTokens != 635 || u.Estimated {
		t.Fatalf("stream: usage %+v, want the transcription.done event's", u)
	}

	// More audio than reserved is an overrun.
	up.SetUsage(mistraltest.Usage{PromptTokens: 4, CompletionTokens: 5, AudioSeconds: 601})
	ct, form = audioForm(t, 10, "model", "voxtral", "file", "")
	if resp, got := postForm(ct, form); resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d body %s", resp.StatusCode, got)
	}
	if u := h.rec.next(t); u.AudioSeconds != 601 || !u.Overrun {
		t.Fatalf("601 s of 600 reserved: usage %+v, want an overrun", u)
	}

	calls := up.Count("audio_api_v1_transcriptions_post")
	for _, c := range []struct {
		name, contentType string
		body              []byte
		status            int
		want              string
	}{
		{"file before model", "", nil, 422, `Field required: the form's model field must come before its file`},
		{"no model", "", nil, 422, `"loc":["body","model"]`},
		{"not a form", "application/json", []byte(`{"model":"voxtral"}`), 422, `the body must be a multipart/form-data form`},
		{"not offered", "", nil, 404, `model \"voice\" does not offer /audio/transcriptions`},
	} {
		t.Run(c.name, func(t *testing.T) {
			ct, body := c.contentType, c.body
			switch c.name {
			case "file before model":
				ct, body = audioForm(t, 10, "file", "", "model", "voxtral")
			case "no model":
				ct, body = audioForm(t, 10, "language", "en")
			case "not offered":
				ct, body = audioForm(t, 10, "model", "voice", "file", "")
			}
			resp, got := postForm(ct, body)
			if resp.StatusCode != c.status || !strings.Contains(got, c.want) {
				t.Fatalf("status %d body %s", resp.StatusCode, got)
			}
		})
	}
	if n := up.Count("audio_api_v1_transcriptions_post"); n != calls {
		t.Fatalf("refused forms reached the upstream: %d, want %d", n, calls)
	}

	up.SetUsage(mistraltest.Usage{PromptTokens: 9})
	speech := `{"model":"voice","input":"Ahoy there, matey!"}`
	resp = h.post(t, context.Background(), "/v1/audio/speech", goodKey, speech)
	got = readAll(t, resp)
	if resp.StatusCode != http.StatusOK || !strings.Contains(got, `"audio_data":`) {
		t.Fatalf("speech: status %d body %s", resp.StatusCode, got)
	}
	apitest.CheckModelResponse(t, "speech_v1_audio_speech_post", resp.StatusCode, resp.Header.Get("Content-Type"), []byte(got))
	if last, _ := up.Last("speech_v1_audio_speech_post"); string(last.Body) != speech {
		t.Fatalf("the upstream got %s, want the body unchanged", last.Body)
	}
	// The answer reports no usage: its input is estimated, ceil(18 / 4).
	if u := h.rec.next(t); u.Endpoint != "speech" || u.InputTokens != 5 || u.OutputTokens != 0 || !u.Estimated || u.Cost != 50 {
		t.Fatalf("speech: usage %+v", u)
	}
	if r := h.lastReservation(t); r.prompt != 18 || r.maxOut != 900 {
		t.Fatalf("speech: reservation %+v", r)
	}
	resp = h.post(t, context.Background(), "/v1/audio/speech", goodKey, `{"model":"voice","input":"Ahoy there, matey!","stream":true}`)
	got = readAll(t, resp)
	if resp.StatusCode != http.StatusOK || !strings.Contains(got, "event: speech.audio.done") {
		t.Fatalf("speech stream: status %d body %s", resp.StatusCode, got)
	}
	apitest.CheckModelResponse(t, "speech_v1_audio_speech_post", resp.StatusCode, resp.Header.Get("Content-Type"), []byte(got))
	if u := h.rec.next(t); u.InputTokens != 9 || u.OutputTokens != 0 || u.Estimated {
		t.Fatalf("speech stream: usage %+v, want the speech.audio.done event's", u)
	}
}

// TestUploadBounds: a form whose model field comes after more than
// maxFormHeadBytes is refused naming the field, and nothing is reserved; a
// form whose upstream is down is answered 502, settled at nothing, and
// goes to the first upstream only, as it cannot be sent twice.
func TestUploadBounds(t *testing.T) {
	down := newUpstream(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	second := newUpstream(t, jsonAnswer(`{"model":"v","text":"","language":"en","usage":{"prompt_audio_seconds":1}}`))
	h := newHarness(t, Config{Models: []Model{{Name: "v", Upstreams: []Upstream{{BaseURL: down.url()}, {BaseURL: second.url()}},
		Endpoints: []string{EndpointTranscriptions}}}})
	send := func(ct string, body []byte) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, h.srv.URL+"/v1/audio/transcriptions", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+goodKey)
		req.Header.Set("Content-Type", ct)
		resp, err := h.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		return resp.StatusCode, readAll(t, resp)
	}
	ct, body := audioForm(t, 0, "prompt", strings.Repeat("x", maxFormHeadBytes+1), "model", "v", "file", "")
	if status, got := send(ct, body); status != http.StatusUnprocessableEntity ||
		!strings.Contains(got, `"loc":["body","model"],"msg":"Field required: the form's model field must come before its file, within its first 1048576 bytes"`) {
		t.Fatalf("a model field beyond the form's head: %d %s", status, got)
	}
	if len(h.limits.res) != 0 {
		t.Fatal("a refused form was reserved")
	}
	ct, body = audioForm(t, 100, "model", "v", "file", "")
	if status, got := send(ct, body); status != http.StatusServiceUnavailable {
		t.Fatalf("the first upstream down: %d %s, want its answer passed through", status, got)
	}
	if second.calls.Load() != 0 {
		t.Fatal("the form was sent to a second upstream")
	}
	if r := h.lastReservation(t); r.settles != 1 || r.settledIn != 0 || r.settleOut != 0 {
		t.Fatalf("reservation %+v, want settled at nothing", r)
	}
	h.rec.none(t)
}

// TestTranscriptionFiles: a transcription of a file (file_id) is served
// only for a file of the caller's Workspace, before or after the model
// field; another Workspace's file, or an unknown one, is answered as
// Mistral answers an unknown file, before anything is forwarded or
// reserved. A form naming its model or a file again after its file part,
// which the gateway does not read before forwarding, is cut before its end
// and refused 422, whatever the file's size.
func TestTranscriptionFiles(t *testing.T) {
	up := mistraltest.New(t)
	up.SetUsage(mistraltest.Usage{PromptTokens: 2, CompletionTokens: 3, AudioSeconds: 4})
	ups := []Upstream{{BaseURL: up.BaseURL(), APIKey: up.Key}}
	h := newHarnessAuth(t, Config{Objects: newMemObjects(), Upstream: &ups[0], Models: []Model{
		{Name: "voxtral", Upstreams: ups, Endpoints: []string{EndpointTranscriptions}},
		{Name: "pricier", Upstreams: ups, Endpoints: []string{EndpointTranscriptions}},
	}}, workspaceAuth{})
	upload := func(key string) string {
		ct, form := audioForm(t, 10, "purpose", "ocr", "file", "")
		resp := h.do(t, "POST", "/v1/files", key, bytes.NewReader(form), http.Header{"Content-Type": {ct}})
		var f struct{ ID string }
		if err := json.NewDecoder(resp.Body).Decode(&f); err != nil || resp.StatusCode != 200 || f.ID == "" {
			t.Fatalf("an upload: %d %v", resp.StatusCode, err)
		}
		return f.ID
	}
	mine, theirs := upload(goodKey), upload(otherWorkspaceKey)
	send := func(ct string, form []byte) (int, string) {
		t.Helper()
		resp := h.do(t, "POST", "/v1/audio/transcriptions", goodKey, bytes.NewReader(form), http.Header{"Content-Type": {ct}})
		return resp.StatusCode, readAll(t, resp)
	}
	for _, fields := range [][]string{{"model", "voxtral", "file_id", mine}, {"file_id", mine, "model", "voxtral", "language", "fr"}} {
		ct, form := audioForm(t, 0, fields...)
		if status, body := send(ct, form); status != 200 || !strings.Contains(body, `"prompt_audio_seconds":4`) {
			t.Fatalf("a transcription of the Workspace's file %v: %d %s", fields, status, body)
		}
		if last, _ := up.Last("audio_api_v1_transcriptions_post"); !bytes.Equal(last.Body, form) {
			t.Fatalf("the upstream got %q, want the form as sent", last.Body)
		}
		if u := h.rec.next(t); u.Endpoint != "transcriptions" || u.AudioSeconds != 4 {
			t.Fatalf("usage %+v", u)
		}
	}
	calls, reserved := up.Count("audio_api_v1_transcriptions_post"), len(h.limits.res)
	for _, id := range []string{theirs, "file-unknown"} {
		ct, form := audioForm(t, 0, "model", "voxtral", "file_id", mine, "file_id", id)
		want := `{"object":"error","message":"File ` + id + ` not found","type":"not_found_error","param":null,"code":null}`
		if status, body := send(ct, form); status != 404 || body != want {
			t.Errorf("a transcription of %s: %d %s, want 404 %s", id, status, body, want)
		}
	}
	if up.Count("audio_api_v1_transcriptions_post") != calls || len(h.limits.res) != reserved {
		t.Fatal("a transcription of another Workspace's file was forwarded or reserved")
	}
	for _, c := range []struct {
		name   string
		size   int
		fields []string
		want   string
	}{
		{"a file named after a small file", 10, []string{"model", "voxtral", "file", "", "file_id", theirs}, `the form names its model and files (file_id) more than once`},
		{"a file named after a large file", 3 * maxFormHeadBytes, []string{"model", "voxtral", "file", "", "file_id", theirs}, `the form names its model and files (file_id) more than once`},
		{"a model named after the file", 100 << 10, []string{"model", "voxtral", "file", "", "model", "pricier"}, `the form names its model and files (file_id) more than once`},
		{"a model named twice before the file", 10, []string{"model", "voxtral", "model", "pricier", "file", ""}, `"loc":["body","model"],"msg":"model is given twice"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			ct, form := audioForm(t, c.size, c.fields...)
			if status, body := send(ct, form); status != 422 || !strings.Contains(body, c.want) {
				t.Fatalf("%d %s, want 422 %s", status, body, c.want)
			}
			// The fake may record a cut form after its client's answer;
			// no form of this size reaches it whole.
			if last, _ := up.Last("audio_api_v1_transcriptions_post"); last.BodySize == int64(len(form)) {
				t.Fatalf("the upstream got the whole form (%d bytes)", last.BodySize)
			}
		})
	}
	// A form the guard's parser cannot read to its end is refused too,
	// since it cannot say what the rest names.
	ct, form := audioForm(t, 100, "model", "voxtral", "file", "")
	if status, body := send(ct, form[:len(form)-10]); status != 422 || !strings.Contains(body, "the body must be a multipart/form-data form") {
		t.Fatalf("a form without its end: %d %s", status, body)
	}
	h.rec.none(t)
}

// TestFormGuardHoldsItsTail: the guard passes a form on as it arrives but
// for its last bytes, which it never passes once it has found the form
// names its model again after its file, even when read again; a form that
// names it once passes whole.
func TestFormGuardHoldsItsTail(t *testing.T) {
	for _, c := range []struct {
		name   string
		fields []string
		whole  bool
	}{
		{"once", []string{"model", "voxtral", "file", "", "language", "en"}, true},
		{"again after the file", []string{"model", "voxtral", "file", "", "model", "pricier", "prompt", strings.Repeat("x", 64<<10)}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			ct, form := audioForm(t, 100<<10, c.fields...)
			_, params, _ := mime.ParseMediaType(ct)
			g := newFormGuard(bytes.NewReader(form), params["boundary"], formFields{model: "voxtral"})
			defer g.Close()
			got, err := io.ReadAll(g)
			if c.whole {
				if err != nil || !bytes.Equal(got, form) {
					t.Fatalf("read %d of %d bytes: %v", len(got), len(form), err)
				}
				return
			}
			if err == nil || len(got) > len(form)-guardTail || !bytes.HasPrefix(form, got) {
				t.Fatalf("read %d of %d bytes: %v, want the form cut before its last %d bytes", len(got), len(form), err, guardTail)
			}
			if n, again := g.Read(make([]byte, 64<<10)); n != 0 || again == nil {
				t.Fatalf("a read after the refusal: %d bytes, %v", n, again)
			}
		})
	}
}
