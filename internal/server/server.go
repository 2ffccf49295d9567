// Package server is Steward's HTTP layer: it authenticates each request
// (through package auth), authorizes it through steward.Authorize, decodes
// and validates input, calls the domain and encodes the answer or the
// error. routes.go lists every route.
package server

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/stewardhq/steward/internal/analytics"
	"github.com/stewardhq/steward/internal/audit"
	"github.com/stewardhq/steward/internal/auth"
	"github.com/stewardhq/steward/internal/billing"
	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/forwarded"
	"github.com/stewardhq/steward/internal/httpstatus"
	"github.com/stewardhq/steward/internal/inference"
	"github.com/stewardhq/steward/internal/keys"
	"github.com/stewardhq/steward/internal/quota"
	"github.com/stewardhq/steward/internal/scim"
	"github.com/stewardhq/steward/internal/sso"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/usage"
	"github.com/stewardhq/steward/internal/webhooks"
)

// Deps are what the server needs.
type Deps struct {
	DB  *store.DB
	Log *slog.Logger
	// Auth authenticates the credentials of the Admin API, the Backoffice
	// API and POST /v1/analytics/events; nil gets one over DB, which
	// records no key's last use and checks no Workspace key.
	Auth         *auth.Authenticator
	MaxBodyBytes int64
	Version      string
	// Invitations says how long invitations last and where they are
	// accepted.
	Invitations directory.InviteSettings
	// Currency is the billing currency that limits and usage are shown in.
	Currency string
	// Prices is the price table of the served models, listed in usage
	// reports; nil lists none.
	Prices *billing.Prices
	// Models are the names of the models the model API serves: an allow
	// list of models may name only these (and those it already holds).
	Models []string
	// Web serves the Admin Panel and the Backoffice under /web/; it signs
	// people in with sessions of its own. Nil serves no web pages.
	Web Pages
	// Gateway is the model API's routes (/v1/chat/completions, ..., the
	// check API's), as gateway.Gateway.Routes lists them; each handler
	// authenticates Workspace keys itself. None serves no model API.
	Gateway []inference.Route
	// Analytics records the product events that POST /v1/analytics/events
	// takes, authenticated by the Workspace keys Auth checks. Nil serves no
	// such endpoint; the analytics reports are served either way.
	Analytics *analytics.Recorder
	// SCIM is the SCIM service provider and sync runner; nil gets one over
	// DB and Auth.
	SCIM *scim.Service
	// Webhooks keeps the Organizations' webhook endpoints; nil gets one
	// over DB that allows public https URLs only.
	Webhooks *webhooks.Service
	// SSO is single sign-on's connections; nil gets one over DB whose
	// links to the providers are relative (tests).
	SSO *sso.Service
	// BodyTimeout and ModelBodyTimeout bound the time a client may take to
	// send a request's body, the model API's and every other one's; zero
	// means DefaultBodyTimeout and DefaultModelBodyTimeout.
	BodyTimeout, ModelBodyTimeout time.Duration
}

// Server serves every HTTP surface of Steward.
type Server struct {
	deps Deps
	// The domain services the handlers call, each method one transaction.
	directory *directory.Service
	keys      *keys.Service
	audit     *audit.Service
	quota     *quota.Service
	usage     *usage.Service
	analytics *analytics.Service
	webhooks  *webhooks.Service
	sso       *sso.Service
	mux       *http.ServeMux
	// ownBodyCap are the paths whose handler caps request bodies itself
	// (the model API takes larger prompts than the Admin API, and
	// uploads); ownBodyPatterns matches those routes' patterns with
	// wildcards, nil when there are none.
	ownBodyCap      map[string]bool
	ownBodyPatterns *http.ServeMux
	routes          []Route
	openapi         []byte
	enums           map[string]map[string]bool
}

// Pages is a handler of pages mounted under a prefix, which lists the
// patterns it serves (web.Handler).
type Pages interface {
	http.Handler
	Patterns() []string
}

// Route describes one registered route, for tests that walk them all.
type Route struct {
	// Method is "ANY" for a route that takes every method.
	Method string
	Path   string
	// Action is what the route does, authorized by steward.Authorize;
	// empty for public routes, and for the model API's, product events'
	// and web pages', which check their credentials by rules of their own.
	Action steward.Action
	// Surface is the part of Steward that answers the route, each with its
	// own credentials and errors.
	Surface Surface
}

// Surface is a part of Steward that answers in its own way.
type Surface string

// Surfaces of routes.
const (
	// SurfaceAPI is the Admin API, the Backoffice API and the public
	// routes: Route.Action names the credential a route takes, none for a
	// public one.
	SurfaceAPI Surface = ""
	// SurfaceSCIM is the SCIM service provider: SCIM tokens, SCIM's errors.
	SurfaceSCIM Surface = "SCIM"
	// SurfaceModels is the model API, the check API included: Workspace
	// keys.
	SurfaceModels Surface = "model API"
	// SurfaceEvents is POST /v1/analytics/events: Workspace keys.
	SurfaceEvents Surface = "product events"
	// SurfaceWeb is the web pages: sessions, HTML pages and redirects.
	SurfaceWeb Surface = "web pages"
)

// handlerFunc is a handler that returns its error instead of writing it.
type handlerFunc func(w http.ResponseWriter, r *http.Request, p steward.Principal) error

// New returns a server; its routes are registered here.
func New(deps Deps) (*Server, error) {
	if deps.MaxBodyBytes <= 0 {
		deps.MaxBodyBytes = 1 << 20
	}
	if deps.BodyTimeout <= 0 {
		deps.BodyTimeout = DefaultBodyTimeout
	}
	if deps.ModelBodyTimeout <= 0 {
		deps.ModelBodyTimeout = DefaultModelBodyTimeout
	}
	if deps.Currency == "" {
		deps.Currency = "USD"
	}
	if deps.Prices == nil {
		deps.Prices = &billing.Prices{}
	}
	if deps.Auth == nil {
		a, err := auth.New(auth.Config{DB: deps.DB})
		if err != nil {
			return nil, err
		}
		deps.Auth = a
	}
	if deps.SCIM == nil {
		deps.SCIM = scim.New(deps.DB, deps.Log, deps.Auth, forwarded.Trusted{})
	}
	if deps.Webhooks == nil {
		deps.Webhooks = webhooks.NewService(deps.DB, webhooks.Guard{}, nil)
	}
	if deps.SSO == nil {
		deps.SSO = sso.New(sso.Config{DB: deps.DB, Log: deps.Log})
	}
	s := &Server{deps: deps, webhooks: deps.Webhooks, sso: deps.SSO, mux: http.NewServeMux(), ownBodyCap: map[string]bool{},
		directory: directory.NewService(deps.DB, deps.Invitations), keys: keys.NewService(deps.DB), audit: audit.NewService(deps.DB),
		quota: quota.NewService(deps.DB), usage: usage.NewService(deps.DB), analytics: analytics.NewService(deps.DB)}
	if err := s.loadDocument(); err != nil {
		return nil, err
	}
	s.registerRoutes()
	return s, nil
}

// ownsBody reports whether r's handler caps its body itself: its path is
// one of those routes' (ownBodyCap), or matches one of their patterns with
// wildcards (ownBodyPatterns), which no lookup by path can find.
func (s *Server) ownsBody(r *http.Request) bool {
	if s.ownBodyCap[r.URL.Path] {
		return true
	}
	if s.ownBodyPatterns == nil {
		return false
	}
	_, pattern := s.ownBodyPatterns.Handler(r)
	return pattern != ""
}

// Routes returns every registered route.
func (s *Server) Routes() []Route { return s.routes }

// Handler returns the root handler with its middleware.
func (s *Server) Handler() http.Handler {
	return s.withBodyDeadline(s.withRequestContext(s.withTextChecked(s.mux)))
}

// public registers an unauthenticated route.
func (s *Server) public(method, path string, h http.HandlerFunc) {
	s.routes = append(s.routes, Route{Method: method, Path: path})
	s.mux.HandleFunc(method+" "+path, h)
}

// adminPrefixes are where every Admin API route is served: Mistral's current
// base path and the one of its earlier guides.
var adminPrefixes = []string{"/v1/admin", "/api/admin"}

// admin registers an Admin API route under both prefixes. Every request is
// authenticated, then authorized for action, before h runs.
func (s *Server) admin(method, path string, action steward.Action, h handlerFunc) {
	for _, prefix := range adminPrefixes {
		s.routes = append(s.routes, Route{Method: method, Path: prefix + path, Action: action})
		s.mux.Handle(method+" "+prefix+path, s.authorized(action, h))
	}
}

// adminPublic registers, under both Admin API prefixes, a route whose
// request carries its own credential (such as an invitation token) instead
// of a key.
func (s *Server) adminPublic(method, path string, h handlerFunc) {
	for _, prefix := range adminPrefixes {
		s.routes = append(s.routes, Route{Method: method, Path: prefix + path})
		s.mux.HandleFunc(method+" "+prefix+path, func(w http.ResponseWriter, r *http.Request) {
			if err := h(w, r, steward.Principal{}); err != nil {
				writeError(w, r, err)
			}
		})
	}
}

// authorized authenticates the request (auth.Authenticator.Key: no
// credential is the anonymous principal) and runs steward.Authorize;
// nothing reaches h without passing both.
func (s *Server) authorized(action steward.Action, h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := s.deps.Auth.Key(r)
		if err == nil {
			err = steward.Authorize(p, action)
		}
		if err != nil {
			writeError(w, r, err)
			return
		}
		r = r.WithContext(steward.WithPrincipal(r.Context(), p))
		w.Header().Set("Cache-Control", "no-store")
		if err := h(w, r, p); err != nil {
			writeError(w, r, err)
		}
	})
}

type ctxKey int

const logStateKey ctxKey = iota

// logState carries the request's id, and which credential authenticated
// it. Its logger, which carries the id, is made only when a handler asks
// for it: most requests log one line or none, and a logger with attributes
// costs allocations to make.
type logState struct {
	base *slog.Logger
	id   slog.Attr
	once sync.Once
	log  *slog.Logger
	seen auth.Seen
}

// logger is the request's logger, carrying its id.
func (st *logState) logger() *slog.Logger {
	st.once.Do(func() { st.log = st.base.With(st.id) })
	return st.log
}

func logFrom(ctx context.Context) *slog.Logger {
	if st, ok := ctx.Value(logStateKey).(*logState); ok {
		return st.logger()
	}
	return slog.Default()
}

// withRequestContext gives every request an id (the client's x-request-id
// when it is reasonable), made here once and put in its context, where
// every surface's handlers find it (steward.RequestIDFrom); a logger
// carrying it, a capped body, recovery from panics, and one access-log
// line, which names the id of the credential that authenticated the
// request, whatever surface authenticated it. Credentials are never
// logged.
func (s *Server) withRequestContext(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := steward.RequestID(r.Header.Get(steward.RequestIDHeader))
		w.Header()[steward.RequestIDHeader] = []string{id}
		st := &logState{base: s.deps.Log, id: slog.String("request_id", id)}
		ctx := steward.WithRequestID(context.WithValue(r.Context(), logStateKey, st), id)
		r = r.WithContext(auth.Watch(ctx, &st.seen))
		if r.Body != nil && !s.ownsBody(r) {
			r.Body = http.MaxBytesReader(w, r.Body, s.deps.MaxBodyBytes)
		}
		sw := &httpstatus.Writer{ResponseWriter: w}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				st.logger().Error("panic", "panic", v)
				if sw.Status == 0 {
					writeError(sw, r, steward.Internal(nil))
				}
			}
			if !st.base.Enabled(r.Context(), slog.LevelInfo) {
				return
			}
			attrs := make([]slog.Attr, 0, 6)
			attrs = append(attrs,
				st.id,
				slog.String("method", r.Method),
				slog.String("path", r.URL.Path),
				slog.Int("status", sw.Status),
				slog.Duration("duration", time.Since(start)),
			)
			if cred := st.seen.CredentialID(); cred != "" {
				attrs = append(attrs, slog.String("credential_id", cred))
			}
			st.base.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs...)
		}()
		next.ServeHTTP(sw, r)
	})
}
