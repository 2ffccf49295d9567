// Package gateway is Steward's model gateway: an http.Handler that speaks
// the OpenAI- and Mistral-compatible inference API (chat, FIM, embeddings,
// the model list) in front of the company's model servers. It checks the
// Workspace key, reserves the request's worst case with the limits before
// any upstream is called, forwards the client's bytes nearly untouched, and
// settles and records what the upstream reports it used. The operations
// that name no model (files, batch jobs, agents, ...) it forwards to a
// default upstream, keeping each object to the Workspace that created it
// (forward.go, objects.go).
//
// The interfaces it depends on (Authenticator, Limits, Recorder) and the
// types that cross them are package inference's, below the gateway and
// what implements them, so that the gateway imports neither the store nor
// the limiter, and nothing imports the gateway but the command that wires
// it.
package gateway

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/stewardhq/steward/internal/apierror"
	"github.com/stewardhq/steward/internal/billing"
	"github.com/stewardhq/steward/internal/inference"
	"github.com/stewardhq/steward/internal/steward"
)

// Endpoint names used in Model.Endpoints and inference.Usage.Endpoint.
const (
	EndpointChat       = "chat"
	EndpointFIM        = "fim"
	EndpointEmbeddings = "embeddings"
	// EndpointModerations and EndpointClassifications are offered by a
	// model together with their chat variants, which usage names apart.
	EndpointModerations         = "moderations"
	EndpointChatModerations     = "chat_moderations"
	EndpointClassifications     = "classifications"
	EndpointChatClassifications = "chat_classifications"
	// EndpointOCR reads documents, metered in pages.
	EndpointOCR = "ocr"
	// EndpointAgents are agents completions; a model listing it also
	// serves conversations (EndpointConversations), which usage names
	// apart.
	EndpointAgents        = "agents"
	EndpointConversations = "conversations"
	// EndpointTranscriptions hears audio, metered in seconds of audio and
	// tokens; EndpointSpeech speaks text, metered in tokens.
	EndpointTranscriptions = "transcriptions"
	EndpointSpeech         = "speech"
)

// operation is a metered operation of the model API: a POST naming a model
// in its JSON body, forwarded to the model's upstreams, reserved before and
// settled after from the usage its answer reports.
type operation struct {
	// endpoint names the operation in usage (inference.Usage.Endpoint).
	endpoint string
	// offeredBy is the endpoint a model lists in Model.Endpoints to offer
	// the operation.
	offeredBy string
	// path is appended to an upstream's BaseURL.
	path string
	// body is how the request body is read: its prompt's size, and for a
	// generation its output's bounds.
	body bodyKind
	// agents is set for an operation whose request may name an agent and
	// no model: it is served by the gateway's agent model (Config.AgentModel).
	agents bool
	// pathOfRequest is set for an operation whose path names an object
	// (a conversation): the upstream's path is the request's, after /v1.
	pathOfRequest bool
	// inputUnbounded is set when the model's input is more than the
	// request's body shows (a conversation's stored entries, a
	// transcription's audio): the input reported may exceed the request's
	// bound without being an overrun.
	inputUnbounded bool
	// audio is set for an operation metered in seconds of audio heard,
	// reserved at the model's MaxAudioSeconds.
	audio bool
}

// bodyKind is the shape of an operation's request body.
type bodyKind uint8

const (
	// bodyChat is a chat completion: messages, tools, and the generation's
	// fields (stream, max_tokens, n, stream_options).
	bodyChat bodyKind = iota
	// bodyFIM is a FIM completion: prompt and suffix, and the generation's
	// fields.
	bodyFIM
	// bodyInput is an input of text: a string, an array of strings, or
	// token arrays (embeddings, moderations, classifications). Nothing is
	// generated.
	bodyInput
	// bodyChatInput is an input of chats (chat moderations and
	// classifications): bounded by its JSON's bytes, which are never fewer
	// than its text's. Nothing is generated.
	bodyChatInput
	// bodyOCR is a document to read: metered in pages, bounded by its
	// pages field, one for an image, else the model's MaxPages.
	bodyOCR
	// bodyConversation is a conversation's start, append or restart:
	// inputs, instructions and tools, bounded by their JSON's bytes;
	// completion_args.max_tokens; stream. It is forwarded unchanged.
	bodyConversation
	// bodyUpload is a multipart form (a transcription's audio), forwarded
	// as it arrives: its model field is read before its file.
	bodyUpload
	// bodySpeech is a text to speak: input, bounded by its bytes; stream.
	// Its output, audio tokens, is bounded by the model's MaxOutputTokens.
	bodySpeech
)

// generates reports whether an operation's answer has output tokens.
func (op *operation) generates() bool {
	return op.body == bodyChat || op.body == bodyFIM || op.body == bodyConversation || op.body == bodyUpload || op.body == bodySpeech
}

// operations are the metered operations, by endpoint.
var operations = map[string]*operation{
	EndpointChat:                {endpoint: EndpointChat, offeredBy: EndpointChat, path: "/chat/completions", body: bodyChat},
	EndpointFIM:                 {endpoint: EndpointFIM, offeredBy: EndpointFIM, path: "/fim/completions", body: bodyFIM},
	EndpointEmbeddings:          {endpoint: EndpointEmbeddings, offeredBy: EndpointEmbeddings, path: "/embeddings", body: bodyInput},
	EndpointModerations:         {endpoint: EndpointModerations, offeredBy: EndpointModerations, path: "/moderations", body: bodyInput},
	EndpointChatModerations:     {endpoint: EndpointChatModerations, offeredBy: EndpointModerations, path: "/chat/moderations", body: bodyChatInput},
	EndpointClassifications:     {endpoint: EndpointClassifications, offeredBy: EndpointClassifications, path: "/classifications", body: bodyInput},
	EndpointChatClassifications: {endpoint: EndpointChatClassifications, offeredBy: EndpointClassifications, path: "/chat/classifications", body: bodyChatInput},
	EndpointOCR:                 {endpoint: EndpointOCR, offeredBy: EndpointOCR, path: "/ocr", body: bodyOCR},
	EndpointAgents:              {endpoint: EndpointAgents, offeredBy: EndpointAgents, path: "/agents/completions", body: bodyChat, agents: true},
	EndpointConversations: {endpoint: EndpointConversations, offeredBy: EndpointAgents, body: bodyConversation, agents: true,
		pathOfRequest: true, inputUnbounded: true},
	EndpointTranscriptions: {endpoint: EndpointTranscriptions, offeredBy: EndpointTranscriptions, path: "/audio/transcriptions", body: bodyUpload,
		inputUnbounded: true, audio: true},
	EndpointSpeech: {endpoint: EndpointSpeech, offeredBy: EndpointSpeech, path: "/audio/speech", body: bodySpeech},
}

// DemoModelName is the built-in model Config.DemoModel adds.
const DemoModelName = "steward-demo"

// DemoPrice is the demo model's price, small but not nothing, so that the
// usage it records shows a cost. The price table the server builds holds
// it when the demo model is served; a table without it leaves the gateway
// pricing the demo model at DemoPrice.
var DemoPrice = billing.ModelPrice{Model: DemoModelName, InputPerMillion: 0.1, OutputPerMillion: 0.3}

// DefaultMaxOutputTokens is the worst case reserved for a request without
// max_tokens when its model sets no MaxOutputTokens.
const DefaultMaxOutputTokens = 4096

// DefaultMaxAudioSeconds is the worst case of audio reserved for a
// transcription when its model sets no MaxAudioSeconds: half an hour.
const DefaultMaxAudioSeconds = 30 * 60

// MaxAudioSeconds is the largest MaxAudioSeconds: a day.
const MaxAudioSeconds = 24 * 60 * 60

// DefaultMaxPages is the worst case of pages reserved for an OCR request
// naming no pages when its model sets no MaxPages: the most pages Mistral's
// OCR reads of a document.
const DefaultMaxPages = 1000

// Model is one model the gateway serves.
type Model struct {
	// Name is what clients put in "model"; it is forwarded as is.
	Name string
	// Upstreams are tried in order when one fails before answering.
	Upstreams []Upstream
	// MaxOutputTokens is the worst case reserved when the request gives no
	// max_tokens; zero means DefaultMaxOutputTokens.
	MaxOutputTokens int64
	// MaxPages is the worst case of pages reserved for an OCR request of a
	// document that names no pages; zero means DefaultMaxPages.
	MaxPages int64
	// MaxAudioSeconds is the audio reserved for a transcription, whose
	// length the gateway does not know before the upstream hears it; zero
	// means DefaultMaxAudioSeconds.
	MaxAudioSeconds int64
	// Endpoints are those of "chat", "fim", "embeddings", "moderations",
	// "classifications", "ocr", "agents" (agents completions and
	// conversations), "transcriptions" and "speech" the model offers;
	// empty means chat only.
	Endpoints []string
	// Aliases are the model's other names: a request naming one is served
	// as the model (its upstreams, prices, limits and allow lists, its
	// usage recorded under Name), its body forwarded as it came. No alias
	// may be another model's name or alias.
	Aliases []string
	// Description is the model card's; empty is null.
	Description string
	// MaxContextLength is the model card's; zero means
	// DefaultMaxContextLength.
	MaxContextLength int64
	// Capabilities set the model card's capabilities by name (those of
	// Mistral's ModelCapabilities: completion_chat, function_calling,
	// vision, ...) over the ones its Endpoints give.
	Capabilities map[string]bool
}

// DefaultMaxContextLength is a model card's max_context_length when its
// model sets none: the default of Mistral's model card.
const DefaultMaxContextLength = 32768

// capabilityNames are the capabilities of Mistral's model card, and
// endpointCapabilities those a model's endpoints give it.
var (
	capabilityNames = []string{"completion_chat", "function_calling", "reasoning", "completion_fim", "fine_tuning", "vision", "ocr",
		"classification", "moderation", "audio", "audio_transcription", "audio_transcription_realtime", "audio_speech", "unified_resources"}
	endpointCapabilities = map[string]string{EndpointChat: "completion_chat", EndpointFIM: "completion_fim", EndpointOCR: "ocr",
		EndpointClassifications: "classification", EndpointModerations: "moderation", EndpointTranscriptions: "audio_transcription",
		EndpointSpeech: "audio_speech"}
)

// Upstream is one model server.
type Upstream struct {
	// BaseURL is the API root the endpoint paths are appended to, e.g.
	// http://127.0.0.1:8000/v1.
	BaseURL string
	// APIKey, when set, is sent as the upstream's bearer token. The
	// client's own Authorization is a Steward key and is never forwarded.
	APIKey string
}

// authorize makes req one of u's: its bearer token u's key, and its
// x-request-id the request's id, requestID.
func (u Upstream) authorize(req *http.Request, requestID string) {
	req.Header[steward.RequestIDHeader] = []string{requestID}
	if u.APIKey != "" {
		req.Header["Authorization"] = []string{"Bearer " + u.APIKey}
	}
}

// Config configures a Gateway.
type Config struct {
	Models []Model
	// AgentModel, when set, names the model (one of Models, offering
	// "agents") that serves agents completions and conversations naming
	// no model: its upstreams are called, its limits and prices apply.
	// Unset, such a request is answered as one for an unknown model.
	AgentModel string
	// Prices is the price table every model must be in (the demo model
	// costs DemoPrice unless the table prices it); nil prices none.
	Prices *billing.Prices
	// Currency of the prices and of Usage.Cost, e.g. "EUR"; required.
	Currency string
	// DemoModel adds DemoModelName, a chat model without upstream that
	// echoes the last user message, for a first try without a model server.
	DemoModel bool
	// Transport calls the upstreams, without timeout (a stream may last
	// long; the client's going away cancels the call) and without
	// following redirects, as a proxy does; nil means UpstreamTransport(0).
	Transport http.RoundTripper
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Upstream is the default upstream, which the operations that name no
	// model (files, batch jobs, agents, conversations, libraries, voices,
	// fine-tuned models) are forwarded to; nil serves none of them.
	Upstream *Upstream
	// Timeouts override DefaultTimeouts for the groups they name.
	Timeouts map[string]Timeouts
	// Objects records the objects created through the gateway, each its
	// Workspace's; required with Upstream. Without it, every object a
	// request names (an agent, a conversation, a file) is unknown.
	Objects inference.Objects
}

// Gateway is the http.Handler of the inference API.
type Gateway struct {
	// models are the models by name and by alias.
	models map[string]*model
	// names are the models in the order the list gives them; list is
	// the list of every model, made at start (created is its time) and
	// again when the upstream's capabilities change; upstreamCaps are
	// those, nil until read.
	names        []string
	list         atomic.Pointer[[]byte]
	created      int64
	upstreamCaps atomic.Pointer[upstreamCards]
	// agentModel serves the agent operations naming no model.
	agentModel string
	currency   string
	transport  http.RoundTripper
	now        func() time.Time
	auth       inference.Authenticator
	limits     inference.Limits
	rec        inference.Recorder
	log        *slog.Logger
	checks     checks
	inflight   inflight
	// upstream is the default upstream, nil for none; upstreamName its
	// URL without its password. timeouts are the groups' timeouts.
	upstream     *Upstream
	upstreamName string
	timeouts     map[string]Timeouts
	objects      inference.Objects
	// routes are the model API's; mux serves them on their own.
	routes []inference.Route
	mux    *http.ServeMux
}

// model is a validated Model.
type model struct {
	name      string
	upstreams []Upstream
	// upstreamNames are the upstreams' URLs without their passwords, for
	// logs and metrics.
	upstreamNames []string
	// rate is the model's in the price table.
	rate     billing.Rate
	maxOut   int64
	maxPages int64
	// maxAudioSeconds is the audio a transcription reserves.
	maxAudioSeconds int64
	endpoints       map[string]bool
	demo            bool
	// card is the model's card but for created; aliases are in it.
	// configured are the capabilities the config file sets, over the
	// upstream's or the endpoints' defaults.
	card       card
	configured map[string]bool
}

// card is a model's card: Mistral's BaseModelCard.
type card struct {
	ID                      string          `json:"id"`
	Object                  string          `json:"object"`
	Created                 int64           `json:"created"`
	OwnedBy                 string          `json:"owned_by"`
	Capabilities            map[string]bool `json:"capabilities"`
	Name                    string          `json:"name"`
	Description             *string         `json:"description"`
	MaxContextLength        int64           `json:"max_context_length"`
	Aliases                 []string        `json:"aliases"`
	Deprecation             *string         `json:"deprecation"`
	DefaultModelTemperature *float64        `json:"default_model_temperature"`
	Type                    string          `json:"type"`
}

var currencyRE = regexp.MustCompile(`^[A-Z]{3}$`)

// New validates cfg and returns a Gateway. Its errors name the offending
// model or upstream. log may be nil.
func New(cfg Config, auth inference.Authenticator, limits inference.Limits, rec inference.Recorder, log *slog.Logger) (*Gateway, error) {
	if auth == nil || limits == nil || rec == nil {
		return nil, errors.New("gateway: the authenticator, limits and recorder are required")
	}
	if !currencyRE.MatchString(cfg.Currency) {
		return nil, fmt.Errorf("gateway: currency %q is not a three-letter ISO 4217 code", cfg.Currency)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	g := &Gateway{
		models: map[string]*model{}, currency: cfg.Currency, transport: cfg.Transport, now: cfg.Now,
		auth: auth, limits: limits, rec: rec, log: log, checks: checks{pending: map[string]*pendingCheck{}},
	}
	if g.transport == nil {
		g.transport = UpstreamTransport(0)
	}
	if g.now == nil {
		g.now = time.Now
	}
	if cfg.Prices == nil {
		cfg.Prices = &billing.Prices{}
	}
	for i, m := range cfg.Models {
		vm, err := validate(m)
		if err != nil {
			return nil, fmt.Errorf("gateway: model %d (%q): %w", i, m.Name, err)
		}
		if vm.name == DemoModelName && cfg.DemoModel {
			return nil, fmt.Errorf("gateway: model %d: the name %q is taken by the demo model", i, m.Name)
		}
		if g.models[vm.name] != nil {
			return nil, fmt.Errorf("gateway: model %d: the name %q is used twice", i, m.Name)
		}
		for _, a := range vm.card.Aliases {
			if g.models[a] != nil || (a == DemoModelName && cfg.DemoModel) || slices.ContainsFunc(cfg.Models, func(o Model) bool { return o.Name == a }) {
				return nil, fmt.Errorf("gateway: model %d (%q): the alias %q is already a model's name or alias", i, m.Name, a)
			}
			g.models[a] = vm
		}
		var priced bool
		if vm.rate, priced = cfg.Prices.Rate(vm.name); !priced {
			return nil, fmt.Errorf("gateway: model %d (%q) is not in the price table", i, m.Name)
		}
		g.models[vm.name] = vm
	}
	names := make([]string, 0, len(cfg.Models)+1)
	for _, m := range cfg.Models {
		names = append(names, m.Name)
	}
	if cfg.DemoModel {
		rate, priced := cfg.Prices.Rate(DemoModelName)
		if !priced {
			demo, err := billing.NewPrices([]billing.ModelPrice{DemoPrice})
			if err != nil {
				return nil, fmt.Errorf("gateway: the demo model's price: %w", err)
			}
			rate, _ = demo.Rate(DemoModelName)
		}
		g.models[DemoModelName] = &model{name: DemoModelName, rate: rate, maxOut: DefaultMaxOutputTokens, endpoints: map[string]bool{EndpointChat: true}, demo: true,
			card: newCard(DemoModelName, map[string]bool{EndpointChat: true}, Model{Description: "Steward's built-in demo model: it echoes the last user message."})}
		names = append(names, DemoModelName)
	}
	if err := g.defaultUpstream(cfg); err != nil {
		return nil, err
	}
	if cfg.AgentModel != "" {
		if m := g.models[cfg.AgentModel]; m == nil || m.demo || !m.endpoints[EndpointAgents] {
			return nil, fmt.Errorf("gateway: the agent model %q is not a configured model offering agents", cfg.AgentModel)
		}
		g.agentModel = cfg.AgentModel
	}
	g.names, g.created = names, g.now().Unix()
	list := g.modelList(names)
	g.list.Store(&list)
	g.routes, g.mux = g.routeTable(), http.NewServeMux()
	for _, rt := range g.routes {
		g.mux.Handle(rt.Pattern, rt.Handler)
	}
	g.mux.Handle("/", apierror.NoRoute(g.mux))
	return g, nil
}

func validate(m Model) (*model, error) {
	if strings.TrimSpace(m.Name) == "" || m.Name != strings.TrimSpace(m.Name) {
		return nil, errors.New("the name must be non-empty and without surrounding spaces")
	}
	if len(m.Upstreams) == 0 {
		return nil, errors.New("at least one upstream is required")
	}
	vm := &model{name: m.Name, maxOut: m.MaxOutputTokens, maxPages: m.MaxPages, maxAudioSeconds: m.MaxAudioSeconds, endpoints: map[string]bool{}}
	if m.MaxContextLength < 0 {
		return nil, fmt.Errorf("max context length %d is negative", m.MaxContextLength)
	}
	for c := range m.Capabilities {
		if !slices.Contains(capabilityNames, c) {
			return nil, fmt.Errorf("unknown capability %q: want one of %s", c, strings.Join(capabilityNames, ", "))
		}
	}
	for j, a := range m.Aliases {
		switch {
		case strings.TrimSpace(a) == "" || a != strings.TrimSpace(a):
			return nil, fmt.Errorf("alias %d (%q) must be non-empty and without surrounding spaces", j, a)
		case a == m.Name || slices.Contains(m.Aliases[:j], a):
			return nil, fmt.Errorf("the alias %q is given twice", a)
		}
	}
	for j, u := range m.Upstreams {
		p, err := url.Parse(u.BaseURL)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" || p.RawQuery != "" || p.Fragment != "" {
			return nil, fmt.Errorf("upstream %d: base URL %q must be an absolute http or https URL without query or fragment", j, u.BaseURL)
		}
		vm.upstreams = append(vm.upstreams, Upstream{BaseURL: strings.TrimRight(u.BaseURL, "/"), APIKey: u.APIKey})
		vm.upstreamNames = append(vm.upstreamNames, strings.TrimRight(p.Redacted(), "/"))
	}
	switch {
	case m.MaxOutputTokens < 0:
		return nil, fmt.Errorf("max output tokens %d is negative", m.MaxOutputTokens)
	case m.MaxOutputTokens == 0:
		vm.maxOut = DefaultMaxOutputTokens
	}
	switch {
	case m.MaxPages < 0 || m.MaxPages > MaxPages:
		return nil, fmt.Errorf("max pages %d is not from 0 to %d", m.MaxPages, MaxPages)
	case m.MaxPages == 0:
		vm.maxPages = DefaultMaxPages
	}
	switch {
	case m.MaxAudioSeconds < 0 || m.MaxAudioSeconds > MaxAudioSeconds:
		return nil, fmt.Errorf("max audio seconds %d is not from 0 to %d", m.MaxAudioSeconds, MaxAudioSeconds)
	case m.MaxAudioSeconds == 0:
		vm.maxAudioSeconds = DefaultMaxAudioSeconds
	}
	eps := m.Endpoints
	if len(eps) == 0 {
		eps = []string{EndpointChat}
	}
	for _, e := range eps {
		switch e {
		case EndpointChat, EndpointFIM, EndpointEmbeddings, EndpointModerations, EndpointClassifications, EndpointOCR, EndpointAgents,
			EndpointTranscriptions, EndpointSpeech:
			vm.endpoints[e] = true
		default:
			return nil, fmt.Errorf("unknown endpoint %q: want chat, fim, embeddings, moderations, classifications, ocr, agents, transcriptions or speech", e)
		}
	}
	vm.card, vm.configured = newCard(m.Name, vm.endpoints, m), maps.Clone(m.Capabilities)
	return vm, nil
}

// newCard is the card of the model name offering endpoints, with m's
// description, context length, aliases and capabilities.
func newCard(name string, endpoints map[string]bool, m Model) card {
	c := card{ID: name, Object: "model", OwnedBy: "steward", Capabilities: map[string]bool{}, Name: name,
		MaxContextLength: m.MaxContextLength, Aliases: slices.Clone(m.Aliases), Type: "base"}
	if c.Aliases == nil {
		c.Aliases = []string{}
	}
	if c.MaxContextLength == 0 {
		c.MaxContextLength = DefaultMaxContextLength
	}
	if m.Description != "" {
		c.Description = &m.Description
	}
	for _, n := range capabilityNames {
		c.Capabilities[n] = false
	}
	for e := range endpoints {
		if n, ok := endpointCapabilities[e]; ok {
			c.Capabilities[n] = true
		}
	}
	maps.Copy(c.Capabilities, m.Capabilities)
	return c
}

// cost is what q of the model costs, in micro-units rounded up.
func (m *model) cost(q billing.Quantity) int64 { return m.rate.Cost(q) }

// Routes returns the model API's routes, for the server to register with
// its own, so that a request is routed once, by the server's mux. Wrapping
// their handlers (metrics) leaves the gateway's own as they are.
func (g *Gateway) Routes() []inference.Route { return slices.Clone(g.routes) }

// routeTable is the model API: every route it serves, one a line, which
// both the server and ServeHTTP route by: the metered endpoints, the model
// list, the check API, and the operations that name no model
// (forwardedRoutes).
func (g *Gateway) routeTable() []inference.Route {
	return append([]inference.Route{
		g.endpoint("POST /v1/chat/completions", EndpointChat),
		g.endpoint("POST /v1/fim/completions", EndpointFIM),
		g.endpoint("POST /v1/embeddings", EndpointEmbeddings),
		g.endpoint("POST /v1/moderations", EndpointModerations),
		g.endpoint("POST /v1/chat/moderations", EndpointChatModerations),
		g.endpoint("POST /v1/classifications", EndpointClassifications),
		g.endpoint("POST /v1/chat/classifications", EndpointChatClassifications),
		g.endpoint("POST /v1/ocr", EndpointOCR),
		g.endpoint("POST /v1/agents/completions", EndpointAgents),
		g.endpoint("POST /v1/conversations", EndpointConversations),
		g.endpoint("POST /v1/conversations/{conversation_id}", EndpointConversations),
		g.endpoint("POST /v1/conversations/{conversation_id}/restart", EndpointConversations),
		g.endpoint("POST /v1/audio/transcriptions", EndpointTranscriptions),
		g.endpoint("POST /v1/audio/speech", EndpointSpeech),
		{Pattern: "GET /v1/models", Handler: http.HandlerFunc(g.handleModels)},
		{Pattern: "GET /v1/models/{model_id}", Handler: http.HandlerFunc(g.handleModel)},
		{Pattern: "POST /v1/check/{check_id}/report", Handler: http.HandlerFunc(g.handleReport)},
		// The check API takes any method: an auth_request or ext_authz
		// subrequest has the method of the request it guards.
		{Pattern: "/v1/check", Handler: http.HandlerFunc(g.handleCheck)},
	}, g.forwardedRoutes()...)
}

// ServeHTTP serves the model API on its own, without the server, whose
// edge it stands for: it gives the request its id, as the server does
// (every response carries x-request-id), and routes it by its routes,
// answering Mistral's error object for a request none of them takes.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := steward.RequestID(r.Header.Get(steward.RequestIDHeader))
	w.Header()[steward.RequestIDHeader] = []string{id}
	g.mux.ServeHTTP(w, r.WithContext(steward.WithRequestID(r.Context(), id)))
}

// exchange starts serving a request, under the id the server's edge gave
// it, which its response already carries. It is returned as a value, so
// that it stays on its handler's stack.
func (g *Gateway) exchange(w http.ResponseWriter, r *http.Request) exchange {
	return exchange{g: g, w: w, r: r, id: steward.RequestIDFrom(r.Context()), start: g.now()}
}

// endpoint is the route of a model endpoint: a POST of a Workspace key,
// forwarded to the model's upstreams. Its handler bounds the body itself.
func (g *Gateway) endpoint(pattern, ep string) inference.Route {
	op := operations[ep]
	return inference.Route{Pattern: pattern, OwnsBody: true, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		x := g.exchange(w, r)
		if !x.admit(g.auth.WorkspaceKey(r)) {
			return
		}
		x.op = op
		if !x.meteredObjects() {
			return
		}
		g.inflight.enter()
		defer g.inflight.leave()
		x.serve()
	})}
}

// handleCheck serves the check API (serveCheck).
func (g *Gateway) handleCheck(w http.ResponseWriter, r *http.Request) {
	if x := g.exchange(w, r); x.admit(g.auth.WorkspaceKey(r)) {
		x.serveCheck()
	}
}

// handleReport serves a check's usage report (serveReport).
func (g *Gateway) handleReport(w http.ResponseWriter, r *http.Request) {
	if x := g.exchange(w, r); x.admit(g.auth.Reporter(r)) {
		x.serveReport(r.PathValue("check_id"))
	}
}

// admit takes the principal the Authenticator found, or answers why there
// is none: no credential, or a refused one.
func (x *exchange) admit(p steward.Principal, err error) bool {
	switch {
	case err != nil:
		x.fail(err)
		return false
	case p.Kind == steward.CredentialNone:
		x.fail(&steward.Error{Kind: steward.KindUnauthenticated, Message: "missing API key: send Authorization: Bearer <key>"})
		return false
	}
	x.key = p
	return true
}

// UpstreamIdleConns is how many idle connections the gateway keeps to each
// upstream. net/http's default of 2 would make most concurrent requests
// dial a new connection, and close it after.
const UpstreamIdleConns = 512

// UpstreamTransport is the transport of the gateway's upstream client:
// net/http's default, keeping UpstreamIdleConns idle connections to each
// upstream for a gateway's concurrency. A positive headerTimeout bounds the
// wait for an upstream's response headers; zero waits as long as the
// request's context lasts.
func UpstreamTransport(headerTimeout time.Duration) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 4 * UpstreamIdleConns
	t.MaxIdleConnsPerHost = UpstreamIdleConns
	t.ResponseHeaderTimeout = headerTimeout
	return t
}
