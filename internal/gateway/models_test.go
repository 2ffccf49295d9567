package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/apitest"
	"github.com/stewardhq/steward/internal/billing"
	"github.com/stewardhq/steward/internal/inference"
	"github.com/stewardhq/steward/internal/mistraltest"
	"github.com/stewardhq/steward/internal/steward"
)

// Keys whose principals carry an allow list of models.
const (
	onlyMKey = "sk-only-m"
	noneKey  = "sk-no-model"
)

// listAuth is fakeAuth, with two more keys: one that may call model m only,
// one that may call no model.
type listAuth struct{ fakeAuth }

func (a listAuth) WorkspaceKey(r *http.Request) (steward.Principal, error) {
	p := testKey
	switch r.Header.Get("Authorization") {
	case "Bearer " + onlyMKey:
		p.Models = steward.NewModelAllowList([]string{"m", "not-served"})
	case "Bearer " + noneKey:
		p.Models = steward.NewModelAllowList(nil)
	default:
		return a.fakeAuth.WorkspaceKey(r)
	}
	return p, nil
}

func (a listAuth) Reporter(r *http.Request) (steward.Principal, error) { return a.WorkspaceKey(r) }

// send sends a request with a fixed request id, so that two answers can be
// compared byte for byte, and returns its status, headers and body.
func (h *harness) send(t *testing.T, method, path, token, body string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, h.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("x-request-id", "req-model-access")
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	resp.Header.Del("Date")
	return resp.StatusCode, resp.Header, readAll(t, resp)
}

// listed returns the ids of a model list, checked against Mistral's schema.
func listed(t *testing.T, raw string) []string {
	t.Helper()
	apitest.CheckModelSchema(t, "ModelList", []byte(raw))
	var list struct {
		Data []struct{ ID string }
	}
	if err := json.Unmarshal([]byte(raw), &list); err != nil {
		t.Fatal(err)
	}
	ids := []string{}
	for _, d := range list.Data {
		ids = append(ids, d.ID)
	}
	return ids
}

// TestModelAccess: a key that may not call a model is answered exactly as
// a gateway that does not serve it answers, and its model list leaves the
// model out; the check API refuses the model as one it does not serve.
func TestModelAccess(t *testing.T) {
	up := newUpstream(t, jsonAnswer(chatAnswer))
	h := newHarnessAuth(t, Config{Models: []Model{chatModel("m", up)}, DemoModel: true}, listAuth{})
	// The same gateway without the demo model: how an unknown model is
	// answered.
	without := newHarnessAuth(t, Config{Models: []Model{chatModel("m", up)}}, listAuth{})

	demo := `{"model":"steward-demo","messages":[{"role":"user","content":"hello"}]}`
	status, header, body := h.send(t, http.MethodPost, "/v1/chat/completions", onlyMKey, demo)
	wantStatus, wantHeader, wantBody := without.send(t, http.MethodPost, "/v1/chat/completions", goodKey, demo)
	if status != http.StatusNotFound || status != wantStatus || body != wantBody {
		t.Fatalf("a model the key may not call: %d %s\nwant as an unknown model: %d %s", status, body, wantStatus, wantBody)
	}
	if !sameHeader(header, wantHeader) {
		t.Errorf("headers %v, want those of an unknown model %v", header, wantHeader)
	}
	var e struct{ Code, Message string }
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Code != "model_not_found" || e.Message != `model "steward-demo" does not exist` {
		t.Errorf("error %+v (%v)", e, err)
	}
	if status, _, body := h.send(t, http.MethodPost, "/v1/chat/completions", onlyMKey, `{"model":"m","messages":[{"role":"user","content":"hi"}]}`); status != http.StatusOK {
		t.Fatalf("an allowed model: %d %s", status, body)
	}
	if n := up.calls.Load(); n != 1 {
		t.Fatalf("the upstream got %d requests, want 1 (the allowed one)", n)
	}
	h.rec.next(t)

	for _, c := range []struct {
		token string
		want  []string
	}{
		{goodKey, []string{"m", DemoModelName}},
		{onlyMKey, []string{"m"}},
		{noneKey, []string{}},
	} {
		status, _, raw := h.send(t, http.MethodGet, "/v1/models", c.token, "")
		if got := listed(t, raw); status != http.StatusOK || !slices.Equal(got, c.want) {
			t.Errorf("%s lists %d %v, want %v", c.token, status, got, c.want)
		}
	}
	if status, _, body := h.send(t, http.MethodPost, "/v1/chat/completions", noneKey, `{"model":"m","messages":[]}`); status != http.StatusNotFound ||
		!strings.Contains(body, `"message":"model \"m\" does not exist","type":"not_found_error","param":"model","code":"model_not_found"`) {
		t.Errorf("a key that may call no model: %d %s", status, body)
	}

	// The check API: refused as a model it does not serve.
	status, _, body = h.send(t, http.MethodGet, "/v1/check?model=steward-demo", onlyMKey, "")
	wantStatus, _, wantBody = without.send(t, http.MethodGet, "/v1/check?model=steward-demo", goodKey, "")
	if status != http.StatusUnprocessableEntity || status != wantStatus || body != wantBody {
		t.Errorf("check of a model the key may not call: %d %s, want %d %s", status, body, wantStatus, wantBody)
	}
	if status, _, body := h.send(t, http.MethodGet, "/v1/check?model=m", onlyMKey, ""); status != http.StatusOK {
		t.Errorf("check of an allowed model: %d %s", status, body)
	}
	if n := len(h.limits.res); n != 2 {
		t.Errorf("%d reservations, want 2: the allowed chat and check", n)
	}
}

// sameHeader reports whether a and b hold the same fields and values.
func sameHeader(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

// cardJSON is the card a test gateway gives a model: its capabilities are
// caps (the others false), created the tests' start.
func cardJSON(id, description string, maxContext int, aliases string, caps ...string) string {
	var c []string
	for _, n := range []string{"audio", "audio_speech", "audio_transcription", "audio_transcription_realtime", "classification", "completion_chat",
		"completion_fim", "fine_tuning", "function_calling", "moderation", "ocr", "reasoning", "unified_resources", "vision"} {
		c = append(c, fmt.Sprintf("%q:%v", n, slices.Contains(caps, n)))
	}
	desc := "null"
	if description != "" {
		desc = strconv.Quote(description)
	}
	return `{"id":"` + id + `","object":"model","created":1767225600,"owned_by":"steward","capabilities":{` + strings.Join(c, ",") + `},"name":"` + id +
		`","description":` + desc + `,"max_context_length":` + strconv.Itoa(maxContext) + `,"aliases":` + aliases +
		`,"deprecation":null,"default_model_temperature":null,"type":"base"}`
}

// TestModelCards: the model list and a model's card are Mistral's, with
// the capabilities the config sets over those of the endpoints; an alias
// names its model, in a card and in a request; a model the key may not
// call, or none, is answered as Mistral answers an unknown model.
func TestModelCards(t *testing.T) {
	up := newUpstream(t, jsonAnswer(chatAnswer))
	m := chatModel("m", up)
	m.Aliases, m.Description, m.MaxContextLength = []string{"m-latest", "m-2612"}, "A model for tests.", 131072
	m.Capabilities = map[string]bool{"vision": true, "function_calling": true}
	e := chatModel("e", up)
	e.Endpoints = []string{EndpointEmbeddings, EndpointModerations, EndpointClassifications, EndpointOCR, EndpointTranscriptions, EndpointSpeech}
	e.Capabilities = map[string]bool{"ocr": false}
	start := time.Unix(1767225600, 0)
	h := newHarnessAuth(t, Config{Models: []Model{m, e}, DemoModel: true, Now: func() time.Time { return start }}, listAuth{})

	mCard := cardJSON("m", "A model for tests.", 131072, `["m-latest","m-2612"]`, "completion_chat", "completion_fim", "function_calling", "vision")
	eCard := cardJSON("e", "", 32768, `[]`, "moderation", "classification", "audio_transcription", "audio_speech")
	demoCard := cardJSON(DemoModelName, "Steward's built-in demo model: it echoes the last user message.", 32768, `[]`, "completion_chat")
	for _, c := range []struct{ token, want string }{
		{goodKey, `{"object":"list","data":[` + mCard + "," + eCard + "," + demoCard + `]}`},
		{onlyMKey, `{"object":"list","data":[` + mCard + `]}`},
		{noneKey, `{"object":"list","data":[]}`},
	} {
		status, header, body := h.send(t, http.MethodGet, "/v1/models", c.token, "")
		if status != http.StatusOK || body != c.want {
			t.Errorf("%s lists %d %s\nwant %s", c.token, status, body, c.want)
		}
		apitest.CheckModelResponse(t, "list_models_v1_models_get", status, header.Get("Content-Type"), []byte(body))
	}
	for _, c := range []struct{ token, id, want string }{
		{goodKey, "m", mCard}, {goodKey, "m-latest", mCard}, {goodKey, "m-2612", mCard}, {goodKey, "e", eCard},
		{goodKey, DemoModelName, demoCard}, {onlyMKey, "m", mCard}, {onlyMKey, "m-latest", mCard},
	} {
		status, header, body := h.send(t, http.MethodGet, "/v1/models/"+c.id, c.token, "")
		if status != http.StatusOK || body != c.want {
			t.Errorf("%s: card of %s: %d %s\nwant %s", c.token, c.id, status, body, c.want)
		}
		apitest.CheckModelResponse(t, "retrieve_model_v1_models__model_id__get", status, header.Get("Content-Type"), []byte(body))
	}
	// Not allowed is unknown: the same status, headers and body.
	for _, c := range []struct{ token, id string }{
		{onlyMKey, "e"}, {onlyMKey, DemoModelName}, {onlyMKey, "not-served"}, {noneKey, "m"}, {noneKey, "m-latest"}, {goodKey, "nope"},
	} {
		status, header, body := h.send(t, http.MethodGet, "/v1/models/"+c.id, c.token, "")
		_, wantHeader, _ := h.send(t, http.MethodGet, "/v1/models/nope", goodKey, "")
		want := `{"object":"error","message":"model \"` + c.id + `\" does not exist","type":"not_found_error","param":"model_id","code":"model_not_found"}`
		if status != http.StatusNotFound || body != want {
			t.Errorf("%s: card of %s: %d %s, want 404 %s", c.token, c.id, status, body, want)
		}
		wantHeader.Set("Content-Length", header.Get("Content-Length"))
		if !sameHeader(header, wantHeader) {
			t.Errorf("%s: card of %s: headers %v, want those of an unknown model %v", c.token, c.id, header, wantHeader)
		}
	}
	if n := up.calls.Load(); n != 0 {
		t.Fatalf("model cards called the upstream %d times", n)
	}

	// A request naming an alias is served as its model, under the key's
	// allow list of model names, and recorded under the model's name; its
	// body goes to the upstream naming the alias.
	chat := `{"model":"m-latest","messages":[{"role":"user","content":"hi"}]}`
	if status, _, body := h.send(t, http.MethodPost, "/v1/chat/completions", onlyMKey, chat); status != http.StatusOK || body != chatAnswer {
		t.Fatalf("a chat naming an alias: %d %s", status, body)
	}
	if got := up.body(t, 0); !strings.HasPrefix(got, `{"model":"m-latest","messages":[{"role":"user","content":"hi"}]`) {
		t.Errorf("the upstream got %s, want the request naming the alias", got)
	}
	if u := h.rec.next(t); u.Model != "m" || u.InputTokens != 11 || u.OutputTokens != 7 {
		t.Errorf("usage of a chat naming an alias: %+v, want model m", u)
	}
	if status, _, body := h.send(t, http.MethodPost, "/v1/chat/completions", noneKey, chat); status != http.StatusNotFound ||
		body != `{"object":"error","message":"model \"m-latest\" does not exist","type":"not_found_error","param":"model","code":"model_not_found"}` {
		t.Errorf("an alias of a model the key may not call: %d %s", status, body)
	}
	if status, _, body := h.send(t, http.MethodGet, "/v1/check?model=m-2612", onlyMKey, ""); status != http.StatusOK {
		t.Errorf("check of an alias: %d %s", status, body)
	}
}

// TestModelCardSettings: New refuses card settings it cannot serve,
// naming the model and the setting.
func TestModelCardSettings(t *testing.T) {
	up := newUpstream(t, jsonAnswer(chatAnswer))
	with := func(name string, set func(*Model)) Model {
		m := chatModel(name, up)
		set(&m)
		return m
	}
	for _, c := range []struct {
		models []Model
		demo   bool
		want   string
	}{
		{[]Model{with("a", func(m *Model) { m.MaxContextLength = -1 })}, false, `gateway: model 0 ("a"): max context length -1 is negative`},
		{[]Model{with("a", func(m *Model) { m.Capabilities = map[string]bool{"telepathy": true} })}, false, `gateway: model 0 ("a"): unknown capability "telepathy"`},
		{[]Model{with("a", func(m *Model) { m.Aliases = []string{"b"} }), chatModel("b", up)}, false, `gateway: model 0 ("a"): the alias "b" is already a model's name or alias`},
		{[]Model{chatModel("b", up), with("a", func(m *Model) { m.Aliases = []string{"b"} })}, false, `gateway: model 1 ("a"): the alias "b" is already a model's name or alias`},
		{[]Model{with("a", func(m *Model) { m.Aliases = []string{"x"} }), with("b", func(m *Model) { m.Aliases = []string{"x"} })}, false, `gateway: model 1 ("b"): the alias "x" is already a model's name or alias`},
		{[]Model{with("a", func(m *Model) { m.Aliases = []string{DemoModelName} })}, true, `gateway: model 0 ("a"): the alias "steward-demo" is already a model's name or alias`},
		{[]Model{with("a", func(m *Model) { m.Aliases = []string{"a"} })}, false, `gateway: model 0 ("a"): the alias "a" is given twice`},
		{[]Model{with("a", func(m *Model) { m.Aliases = []string{" x"} })}, false, `gateway: model 0 ("a"): alias 0 (" x") must be non-empty and without surrounding spaces`},
	} {
		var prices []billing.ModelPrice
		for _, m := range c.models {
			prices = append(prices, billing.ModelPrice{Model: m.Name})
		}
		_, err := New(Config{Currency: "EUR", Models: c.models, DemoModel: c.demo, Prices: newPrices(t, prices...)}, fakeAuth{}, &fakeLimits{}, &fakeRecorder{}, nil)
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("New: %v, want %s", err, c.want)
		}
	}
}

// TestAliasInAForwardedBody: a forwarded operation naming a model by an
// alias (a batch job) is allowed as the model is.
func TestAliasInAForwardedBody(t *testing.T) {
	up := newUpstream(t, jsonAnswer(`{"id":"job-1","object":"batch"}`))
	m, e := chatModel("m", up), chatModel("e", up)
	m.Aliases, e.Aliases = []string{"m-latest"}, []string{"e-latest"}
	h := newHarnessAuth(t, Config{Models: []Model{m, e}, Upstream: &Upstream{BaseURL: up.url()}, Objects: newMemObjects()}, listAuth{})
	job := func(model string) string {
		return `{"input_files":[],"model":"` + model + `","endpoint":"/v1/chat/completions"}`
	}
	if status, _, body := h.send(t, http.MethodPost, "/v1/batch/jobs", onlyMKey, job("m-latest")); status != http.StatusOK || body != `{"id":"job-1","object":"batch"}` {
		t.Errorf("a batch job naming the alias of an allowed model: %d %s", status, body)
	}
	if status, _, body := h.send(t, http.MethodPost, "/v1/batch/jobs", onlyMKey, job("e-latest")); status != http.StatusNotFound ||
		body != `{"object":"error","message":"model \"e-latest\" does not exist","type":"not_found_error","param":"model","code":"model_not_found"}` {
		t.Errorf("a batch job naming the alias of a model the key may not call: %d %s", status, body)
	}
	if n := up.calls.Load(); n != 1 {
		t.Errorf("the upstream got %d requests, want 1 (the allowed job)", n)
	}
}

// capabilitiesOf returns a card's capabilities, checked against Mistral's
// schema.
func capabilitiesOf(t *testing.T, raw string) map[string]bool {
	t.Helper()
	apitest.CheckModelSchema(t, "BaseModelCard", []byte(raw))
	var c struct{ Capabilities map[string]bool }
	if err := json.Unmarshal([]byte(raw), &c); err != nil {
		t.Fatal(err)
	}
	return c.Capabilities
}

// TestCardsTakeTheUpstreamsCapabilities: with a default upstream, a
// model's card takes the capabilities the upstream's own model list gives
// it (by its name or an alias), under the config file's; a model the list
// lacks keeps its endpoints'. A list that cannot be read is logged and
// changes nothing.
func TestCardsTakeTheUpstreamsCapabilities(t *testing.T) {
	up := mistraltest.New(t)
	up.AddBaseModel("vision-latest", "completion_chat", "vision", "function_calling")
	ups := []Upstream{{BaseURL: up.BaseURL(), APIKey: up.Key}}
	h := newHarnessAuth(t, Config{Upstream: &ups[0], Objects: newMemObjects(), Models: []Model{
		{Name: "vision", Aliases: []string{"vision-latest"}, Upstreams: ups, Endpoints: []string{EndpointChat, EndpointFIM}, Capabilities: map[string]bool{"function_calling": false}},
		{Name: "coder", Upstreams: ups, Endpoints: []string{EndpointFIM}},
	}}, workspaceAuth{})
	card := func(id string) map[string]bool {
		t.Helper()
		status, _, body := h.send(t, http.MethodGet, "/v1/models/"+id, goodKey, "")
		if status != http.StatusOK {
			t.Fatalf("the card of %s: %d %s", id, status, body)
		}
		return capabilitiesOf(t, body)
	}
	trues := func(caps map[string]bool) string {
		var out []string
		for _, n := range capabilityNames {
			if caps[n] {
				out = append(out, n)
			}
		}
		return strings.Join(out, ",")
	}
	for id, want := range map[string]string{"vision": "completion_chat,completion_fim", "coder": "completion_fim"} {
		if got := trues(card(id)); got != want {
			t.Errorf("%s before the upstream's list is read: %s, want the endpoints' %s", id, got, want)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.g.RefreshCapabilities(ctx, time.Hour); close(done) }()
	for deadline := time.Now().Add(5 * time.Second); up.Count("list_models_v1_models_get") == 0 || trues(card("vision")) == "completion_chat,completion_fim"; {
		if time.Now().After(deadline) {
			t.Fatal("the upstream's model list was not read")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
	// The upstream's, by the model's alias: no FIM; function calling is
	// the config file's.
	for id, want := range map[string]string{"vision": "completion_chat,vision", "coder": "completion_fim"} {
		if got := trues(card(id)); got != want {
			t.Errorf("%s after the upstream's list is read: %s, want %s", id, got, want)
		}
	}
	_, _, list := h.send(t, http.MethodGet, "/v1/models", goodKey, "")
	if !strings.Contains(list, `"vision":true`) {
		t.Errorf("the model list does not hold the upstream's capabilities: %s", list)
	}
	up.Fail("list_models_v1_models_get", http.StatusInternalServerError)
	if err := h.g.readCapabilities(context.Background()); err == nil || !strings.Contains(err.Error(), "500") {
		t.Fatalf("a failing list read: %v", err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	done = make(chan struct{})
	go func() { h.g.RefreshCapabilities(ctx, time.Hour); close(done) }()
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(h.logs.String(), "reading the capabilities"); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			break
		}
	}
	cancel()
	<-done
	if got := trues(card("vision")); got != "completion_chat,vision" {
		t.Errorf("after a failed read: %s, want what the cards had", got)
	}
	if logs := h.logs.String(); !strings.Contains(logs, "reading the capabilities of the upstream's models failed") || strings.Contains(logs, up.Key) {
		t.Errorf("the failure is not logged, or the upstream's key is: %s", logs)
	}
}

// TestFineTunedModelCards: the fine-tuned models of the caller's Workspace
// are listed with the configured models and their cards read, from the
// upstream; another Workspace's, one not created through Steward, or one
// the key's allow list does not name is answered as an unknown model and
// not listed. An upstream whose list fails leaves the configured models.
func TestFineTunedModelCards(t *testing.T) {
	up := mistraltest.New(t)
	ups := []Upstream{{BaseURL: up.BaseURL(), APIKey: up.Key}}
	h := newHarnessAuth(t, Config{Upstream: &ups[0], Objects: newMemObjects(), Models: []Model{{Name: "m", Upstreams: ups}}}, batchAuth{})
	mine, theirs, stray := up.AddFineTunedModel("m"), up.AddFineTunedModel("m"), up.AddFineTunedModel("m")
	h.own(t, inference.ObjectFineTunedModel, mine)
	_ = h.g.objects.Record(context.Background(), inference.Object{Kind: inference.ObjectFineTunedModel, ID: theirs, OrganizationID: "org1", WorkspaceID: "ws2"})

	status, header, body := h.send(t, http.MethodGet, "/v1/models/"+mine, goodKey, "")
	apitest.CheckModelResponse(t, "retrieve_model_v1_models__model_id__get", status, header.Get("Content-Type"), []byte(body))
	if status != http.StatusOK || !strings.Contains(body, `"id":"`+mine+`"`) || !strings.Contains(body, `"type":"fine-tuned"`) {
		t.Fatalf("the card of the Workspace's fine-tuned model: %d %s", status, body)
	}
	_, _, unknown := h.send(t, http.MethodGet, "/v1/models/ft:unknown", goodKey, "")
	for _, c := range []struct{ key, id string }{{otherWorkspaceKey, mine}, {goodKey, theirs}, {goodKey, stray}, {onlyMKey, mine}} {
		status, _, body := h.send(t, http.MethodGet, "/v1/models/"+c.id, c.key, "")
		if want := strings.ReplaceAll(unknown, "ft:unknown", c.id); status != http.StatusNotFound || body != want {
			t.Errorf("%s's card for %s: %d %s, want %s", c.key, c.id, status, body, want)
		}
	}
	calls := up.Count("retrieve_model_v1_models__model_id__get")
	if calls != 1 {
		t.Errorf("the upstream was asked %d times for a card, want once", calls)
	}
	for key, want := range map[string]string{goodKey: "m," + mine, otherWorkspaceKey: "m," + theirs, otherOrgKey: "m", onlyMKey: "m"} {
		status, _, body := h.send(t, http.MethodGet, "/v1/models", key, "")
		if got := strings.Join(listed(t, body), ","); status != http.StatusOK || got != want {
			t.Errorf("%s's model list: %d %s, want %s", key, status, got, want)
		}
	}
	up.Fail("list_models_v1_models_get", http.StatusServiceUnavailable)
	if status, _, body := h.send(t, http.MethodGet, "/v1/models", goodKey, ""); status != http.StatusOK || strings.Join(listed(t, body), ",") != "m" {
		t.Errorf("the list when the upstream's fails: %d %s, want the configured models", status, body)
	}
	if !strings.Contains(h.logs.String(), "listing the Workspace's fine-tuned models failed") {
		t.Errorf("the failure is not logged: %s", h.logs.String())
	}
}
