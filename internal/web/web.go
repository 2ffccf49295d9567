// Package web serves the Admin Panel (one Organization) and the Backoffice
// (one Enterprise Account) as server-rendered pages under /web/. People
// sign in with a session (package auth, whose Authenticator finds each
// page's session and its principal); every page scopes that principal to
// its Organization or Enterprise Account, passes it through
// steward.Authorize like the API does, and changes things only through the
// domain services, which audit each change with the signed-in person as
// its human actor.
package web

import (
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/stewardhq/steward/internal/analytics"
	"github.com/stewardhq/steward/internal/apierror"
	"github.com/stewardhq/steward/internal/audit"
	"github.com/stewardhq/steward/internal/auth"
	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/forwarded"
	"github.com/stewardhq/steward/internal/keys"
	"github.com/stewardhq/steward/internal/limits"
	"github.com/stewardhq/steward/internal/quota"
	"github.com/stewardhq/steward/internal/sso"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/usage"
	"github.com/stewardhq/steward/internal/webhooks"
)

// Prefix is where the web pages are served.
const Prefix = "/web"

//go:embed templates/*.html templates/parts/*.html
var templateFiles embed.FS

//go:embed assets
var assetFiles embed.FS

// Config is what the web pages need.
type Config struct {
	DB  *store.DB
	Log *slog.Logger
	// Throttle keeps the limits on sign-in attempts and reset requests;
	// nil keeps them in this process.
	Throttle limits.Limiter
	// Auth authenticates each page's session, and starts sessions; nil
	// gets one over DB with auth.DefaultSessionSettings.
	Auth *auth.Authenticator
	// SecureCookies marks cookies Secure on every request, for a server
	// behind a proxy that terminates TLS; requests that arrive over TLS
	// get Secure cookies anyway.
	SecureCookies bool
	// Proxies are the reverse proxies whose X-Forwarded-Proto marks
	// cookies Secure and whose X-Forwarded-For names the client that
	// throttling counts.
	Proxies     forwarded.Trusted
	Reset       auth.ResetSettings
	Invitations directory.InviteSettings
	// Currency is the billing currency that limits and usage are shown in.
	Currency string
	// Models are the names of the models the model API serves, which the
	// allow lists of Workspaces and keys offer.
	Models []string
	// Webhooks is the Organizations' webhook endpoints, the one service
	// the Admin API uses too; nil gets one over DB that checks URLs with
	// webhooks.Guard's defaults.
	Webhooks *webhooks.Service
	// SSO is single sign-on, the service the Admin API uses too; nil gets
	// one over DB whose links to the providers are relative (tests).
	SSO *sso.Service
}

// Handler serves every page under Prefix.
type Handler struct {
	cfg   Config
	mux   *mux
	pages map[string]*template.Template
	views map[string]viewFunc

	// The domain services the pages call, each method one transaction.
	directory *directory.Service
	keys      *keys.Service
	audit     *audit.Service
	quota     *quota.Service
	analytics *analytics.Service
	usage     *usage.Service
	webhooks  *webhooks.Service
}

// mux is the pages' ServeMux, remembering the patterns it serves.
type mux struct {
	*http.ServeMux
	patterns []string
}

func (m *mux) Handle(pattern string, h http.Handler) {
	m.patterns = append(m.patterns, pattern)
	m.ServeMux.Handle(pattern, h)
}

func (m *mux) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	m.Handle(pattern, http.HandlerFunc(h))
}

// Patterns are the routes of the pages, as http.ServeMux patterns: the
// sign-in and password reset forms and the assets answer without a
// session, every other page asks for one (signedIn).
func (h *Handler) Patterns() []string { return h.mux.patterns }

var _ http.Handler = (*Handler)(nil)

// New returns the web handler.
func New(cfg Config) (*Handler, error) {
	if cfg.Throttle == nil {
		cfg.Throttle = limits.NewLocal(nil)
	}
	if cfg.Auth == nil {
		a, err := auth.New(auth.Config{DB: cfg.DB})
		if err != nil {
			return nil, err
		}
		cfg.Auth = a
	}
	if cfg.Reset.TTL <= 0 {
		cfg.Reset.TTL = auth.DefaultResetTTL
	}
	if cfg.Currency == "" {
		cfg.Currency = "USD"
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Webhooks == nil {
		cfg.Webhooks = webhooks.NewService(cfg.DB, webhooks.Guard{}, nil)
	}
	if cfg.SSO == nil {
		cfg.SSO = sso.New(sso.Config{DB: cfg.DB, Log: cfg.Log})
	}
	h := &Handler{cfg: cfg, mux: &mux{ServeMux: http.NewServeMux()}, pages: map[string]*template.Template{},
		directory: directory.NewService(cfg.DB, cfg.Invitations), keys: keys.NewService(cfg.DB), audit: audit.NewService(cfg.DB),
		quota: quota.NewService(cfg.DB), analytics: analytics.NewService(cfg.DB), usage: usage.NewService(cfg.DB),
		webhooks: cfg.Webhooks}
	if err := h.parseTemplates(); err != nil {
		return nil, err
	}
	h.routes()
	return h, nil
}

var funcs = template.FuncMap{
	"date": func(t any) string {
		switch v := t.(type) {
		case time.Time:
			return v.UTC().Format("2006-01-02 15:04 UTC")
		case *time.Time:
			if v == nil {
				return "never"
			}
			return v.UTC().Format("2006-01-02 15:04 UTC")
		}
		return ""
	},
	"day": func(t *time.Time) string {
		if t == nil {
			return "none"
		}
		return t.UTC().Format("2006-01-02")
	},
	"join": strings.Join,
	"has": func(list []string, v string) bool {
		for _, x := range list {
			if x == v {
				return true
			}
		}
		return false
	},
	"deref": func(s *string) string {
		if s == nil {
			return ""
		}
		return *s
	},
	"money": money,
}

// money formats micro-units of a currency with two decimals.
func money(micros int64) string {
	neg := ""
	if micros < 0 {
		neg, micros = "-", -micros
	}
	cents := (micros + 5_000) / 10_000
	return fmt.Sprintf("%s%d.%02d", neg, cents/100, cents%100)
}

func (h *Handler) parseTemplates() error {
	names, err := fs.Glob(templateFiles, "templates/*.html")
	if err != nil {
		return err
	}
	for _, name := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(name, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFiles, "templates/layout.html", "templates/parts/*.html", name)
		if err != nil {
			return err
		}
		h.pages[base] = t
	}
	return nil
}

// ServeHTTP sets the headers every page shares, then serves the page.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "same-origin")
	if !strings.HasPrefix(r.URL.Path, Prefix+"/assets/") {
		hd.Set("Cache-Control", "no-store")
	}
	// A path id, query value or form value that is not text
	// (steward.TextRule) is refused before any page reads it. The form is
	// parsed as the pages' PostFormValue does, multipart included; one that
	// cannot be parsed is left to the pages, which see no values in it.
	_ = r.ParseMultipartForm(maxFormMemory)
	pattern := func() string {
		_, p := h.mux.Handler(r)
		return p
	}
	if err := steward.CheckRequestText(r.URL.Path, pattern, r.URL.Query(), r.PostForm); err != nil {
		h.fail(w, r, nil, err)
		return
	}
	h.mux.ServeHTTP(w, r)
}

// maxFormMemory is how much of a multipart form is held in memory, as
// http.Request.PostFormValue holds; the body is capped before it anyway.
const maxFormMemory = 32 << 20

// page is what every template receives.
type page struct {
	Title    string
	Active   string
	Base     string
	Session  *auth.Session
	Org      *steward.Organization
	EA       *steward.EnterpriseAccount
	CSRF     string
	Flash    string
	Error    string
	Secret   *shownSecret
	Currency string
	// Backoffice is set when the signed-in person may open the Backoffice
	// of the Organization's Enterprise Account.
	Backoffice string
	// Nav are the Admin Panel's pages that the person may open.
	Nav   []navItem
	perms steward.PermissionSet
	Data  any
}

// Can reports whether the signed-in person holds a permission in the
// Organization, for the parts of a page that need more than the page.
func (p page) Can(perm string) bool { return p.perms.Has(steward.Permission(perm)) }

// shownSecret is a key's secret, shown once right after it is made.
type shownSecret struct {
	What, Name, Value string
}

func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	t, ok := h.pages[name]
	if !ok {
		h.cfg.Log.Error("web: no template", "name", name)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	p.Currency = h.cfg.Currency
	var b strings.Builder
	if err := t.Execute(&b, p); err != nil {
		h.cfg.Log.Error("web: render", "template", name, "err", err, "request_id", steward.RequestIDFrom(r.Context()))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

// clientError returns the message and status of an error the person can
// act on; ok is false for internal and unavailable errors, which are not
// shown.
func clientError(err error) (msg string, status int, ok bool) {
	var e *steward.Error
	if !errors.As(err, &e) || e.Kind == steward.KindInternal || e.Kind == steward.KindUnavailable {
		return "", 0, false
	}
	msg = e.Message
	for _, also := range e.Also {
		msg += "; " + also.Message
	}
	return msg, apierror.Status(e.Kind), true
}

// fail shows an error page: the message of a client error, a generic one
// (logged once with the request id) for anything else.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, c *reqCtx, err error) {
	msg, status, ok := clientError(err)
	if !ok {
		status = http.StatusInternalServerError
		if steward.IsKind(err, steward.KindUnavailable) {
			status = http.StatusServiceUnavailable
		}
		id := steward.RequestIDFrom(r.Context())
		h.cfg.Log.Error("web: request failed", "err", err, "request_id", id, "path", r.URL.Path)
		msg = "Something went wrong on our side. The request id is " + id + "."
	}
	p := page{Title: "Error", Error: msg}
	if c != nil {
		p = c.page("Error", "")
		p.Error = msg
	}
	h.render(w, r, status, "error", p)
}
