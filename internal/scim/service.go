// Package scim is Steward's SCIM 2.0 service provider (RFC 7643, RFC 7644):
// identity providers such as Okta and Microsoft Entra ID provision an
// Organization's members and externally managed groups through /scim/v2/,
// authenticated by the Organization's SCIM tokens. It also runs Mistral's
// on-demand SCIM sync runs, which reconcile the Organization with the state
// its identity provider last pushed.
package scim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/stewardhq/steward/internal/apierror"
	"github.com/stewardhq/steward/internal/auth"
	"github.com/stewardhq/steward/internal/forwarded"
	"github.com/stewardhq/steward/internal/scim/filter"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

// Prefix is where the service provider is mounted.
const Prefix = "/scim/v2/"

// Page sizes of list responses.
const (
	defaultCount = 100
	maxCount     = 200
)

// Service is the SCIM service provider and the sync runner of every
// Organization.
type Service struct {
	db   *store.DB
	log  *slog.Logger
	auth *auth.Authenticator
	// proxies are the reverse proxies whose X-Forwarded-Proto is believed
	// in the resources' locations.
	proxies forwarded.Trusted
	mux     *http.ServeMux
	// patterns are the routes of mux, for Patterns.
	patterns []string
	// Lease is how long a running sync run may go without renewing its
	// heartbeat before it counts as abandoned (its process stopped).
	Lease time.Duration

	runs   sync.WaitGroup
	ctx    context.Context
	cancel context.CancelFunc
}

// New returns the service over db, whose requests authn authenticates.
func New(db *store.DB, log *slog.Logger, authn *auth.Authenticator, proxies forwarded.Trusted) *Service {
	ctx, cancel := context.WithCancel(context.Background())
	s := &Service{db: db, log: log, auth: authn, proxies: proxies, mux: http.NewServeMux(), Lease: time.Minute, ctx: ctx, cancel: cancel}
	s.routes()
	return s
}

// Close stops the sync runs in progress (each ends as FAILED) and waits for
// them.
func (s *Service) Close() {
	s.cancel()
	s.runs.Wait()
}

type handler func(w http.ResponseWriter, r *http.Request, c *call) error

// call is one authenticated request: the Organization it acts on and the
// audit actor of its changes.
type call struct {
	org   steward.Organization
	actor steward.Actor
}

func (s *Service) routes() {
	s.handle("GET /scim/v2/ServiceProviderConfig", s.serviceProviderConfig)
	s.handle("GET /scim/v2/ResourceTypes", s.resourceTypes)
	s.handle("GET /scim/v2/ResourceTypes/{id}", s.resourceType)
	s.handle("GET /scim/v2/Schemas", s.schemas)
	s.handle("GET /scim/v2/Schemas/{id}", s.schema)
	s.handle("GET /scim/v2/Users", s.listUsers)
	s.handle("POST /scim/v2/Users", s.createUser)
	s.handle("GET /scim/v2/Users/{id}", s.getUser)
	s.handle("PUT /scim/v2/Users/{id}", s.replaceUser)
	s.handle("PATCH /scim/v2/Users/{id}", s.patchUser)
	s.handle("DELETE /scim/v2/Users/{id}", s.deleteUser)
	s.handle("GET /scim/v2/Groups", s.listGroups)
	s.handle("POST /scim/v2/Groups", s.createGroup)
	s.handle("GET /scim/v2/Groups/{id}", s.getGroup)
	s.handle("PUT /scim/v2/Groups/{id}", s.replaceGroup)
	s.handle("PATCH /scim/v2/Groups/{id}", s.patchGroup)
	s.handle("DELETE /scim/v2/Groups/{id}", s.deleteGroup)
	s.handle("/scim/v2/", func(w http.ResponseWriter, r *http.Request, c *call) error {
		return &Error{Status: http.StatusNotFound, Detail: "no SCIM endpoint " + r.Method + " " + r.URL.Path}
	})
}

func (s *Service) handle(pattern string, h handler) {
	s.patterns = append(s.patterns, pattern)
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		// A path id or query value that is not text (steward.TextRule)
		// is refused before anything reads it.
		err := steward.CheckRequestText(r.URL.Path, func() string { return r.Pattern }, r.URL.Query(), nil)
		var c *call
		if err == nil {
			c, err = s.authenticate(r)
		}
		if err == nil {
			err = h(w, r, c)
		}
		if err != nil {
			s.writeError(w, r, err)
		}
	})
}

// Handler serves /scim/v2/.
func (s *Service) Handler() http.Handler { return s.mux }

// Patterns are the routes Handler serves, as http.ServeMux patterns; every
// one takes a SCIM token.
func (s *Service) Patterns() []string { return s.patterns }

// authenticate accepts only a SCIM token, in Authorization: Bearer.
func (s *Service) authenticate(r *http.Request) (*call, error) {
	p, err := s.auth.BearerKey(r)
	if err != nil {
		return nil, err
	}
	if p.Kind == steward.CredentialNone {
		return nil, &Error{Status: http.StatusUnauthorized, Detail: "send the Organization's SCIM token as Authorization: Bearer <token>"}
	}
	if err := steward.Authorize(p, steward.ActionSCIMProvision); err != nil {
		return nil, err
	}
	// The token's row joins its Organization: its ids are all a SCIM
	// change needs, without another read.
	return &call{actor: p.Actor(), org: steward.Organization{ID: p.OrganizationID, EnterpriseAccountID: p.EnterpriseAccountID}}, nil
}

// Error is a SCIM error (RFC 7644 section 3.12).
type Error struct {
	Status   int
	SCIMType string
	Detail   string
}

func (e *Error) Error() string { return e.Detail }

const (
	schemaError        = "urn:ietf:params:scim:api:messages:2.0:Error"
	schemaListResponse = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
	schemaPatchOp      = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
)

func badRequest(scimType, format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, SCIMType: scimType, Detail: fmt.Sprintf(format, args...)}
}

// scimError turns any error into a SCIM error.
func scimError(err error) *Error {
	var se *Error
	if errors.As(err, &se) {
		return se
	}
	var fe *filter.Error
	if errors.As(err, &fe) {
		return badRequest("invalidFilter", "%s", fe.Msg)
	}
	e := apierror.As(err)
	out := &Error{Detail: e.Message}
	switch e.Kind {
	case steward.KindInvalid:
		out.Status, out.SCIMType = http.StatusBadRequest, "invalidValue"
	case steward.KindUnauthenticated:
		out.Status = http.StatusUnauthorized
	case steward.KindForbidden:
		out.Status = http.StatusForbidden
	case steward.KindNotFound:
		out.Status = http.StatusNotFound
	case steward.KindConflict:
		out.Status, out.SCIMType = http.StatusConflict, "mutability"
		if e.Code == "name_taken" || e.Code == "email_taken" || e.Code == "uniqueness" {
			out.SCIMType = "uniqueness"
		}
	case steward.KindTooLarge:
		out.Status, out.SCIMType = http.StatusRequestEntityTooLarge, "tooMany"
	case steward.KindUnavailable:
		out.Status = http.StatusServiceUnavailable
	default:
		out.Status = http.StatusInternalServerError
	}
	return out
}

func (s *Service) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := scimError(err)
	if e.Status >= 500 {
		s.log.LogAttrs(r.Context(), slog.LevelError, "scim request failed", slog.String("err", err.Error()),
			slog.String("request_id", steward.RequestIDFrom(r.Context())))
	}
	if e.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="SCIM"`)
	}
	body := map[string]any{"schemas": []string{schemaError}, "status": strconv.Itoa(e.Status), "detail": e.Detail}
	if e.SCIMType != "" {
		body["scimType"] = e.SCIMType
	}
	writeJSON(w, e.Status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/scim+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// decodeBody reads a JSON object; what is not JSON is a 400 invalidSyntax,
// a string that is not text (steward.TextRule) a 400 invalidValue.
func decodeBody(r *http.Request, v any) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			return &Error{Status: http.StatusRequestEntityTooLarge, Detail: fmt.Sprintf("the request body is larger than %d bytes", maxErr.Limit)}
		}
		return badRequest("invalidSyntax", "the body could not be read: %v", err)
	}
	if err := steward.CheckJSONText([]string{"body"}, body); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return badRequest("invalidSyntax", "the body is not a valid JSON object: %v", err)
	}
	return nil
}

// listResponse is a SCIM ListResponse.
type listResponse struct {
	Schemas      []string `json:"schemas"`
	TotalResults int      `json:"totalResults"`
	StartIndex   int      `json:"startIndex"`
	ItemsPerPage int      `json:"itemsPerPage"`
	Resources    []any    `json:"Resources"`
}

// page reads startIndex (from 1) and count from the query; out-of-range
// values are clamped as RFC 7644 says, and count is capped.
func page(r *http.Request) (start, count int, err error) {
	start, count = 1, defaultCount
	q := r.URL.Query()
	if v := q.Get("startIndex"); v != "" {
		n, perr := strconv.Atoi(v)
		if perr != nil {
			return 0, 0, badRequest("invalidValue", "startIndex must be an integer, not %q", v)
		}
		start = max(n, 1)
	}
	if v := q.Get("count"); v != "" {
		n, perr := strconv.Atoi(v)
		if perr != nil {
			return 0, 0, badRequest("invalidValue", "count must be an integer, not %q", v)
		}
		count = min(max(n, 0), maxCount)
	}
	return start, count, nil
}

// answerDeleted answers a DELETE: 204 unless the removal failed with err.
func answerDeleted(w http.ResponseWriter, err error) error {
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// excluded reports whether excludedAttributes names attr.
func excluded(r *http.Request, attr string) bool {
	for _, a := range strings.Split(r.URL.Query().Get("excludedAttributes"), ",") {
		if strings.EqualFold(strings.TrimSpace(a), attr) {
			return true
		}
	}
	return false
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// base is the absolute URL of Prefix as the client that sent r reached
// it: https when r came over TLS or a trusted proxy says the client spoke
// HTTPS to it.
func (s *Service) base(r *http.Request) string {
	scheme := "http"
	if s.proxies.HTTPS(r) {
		scheme = "https"
	}
	return scheme + "://" + r.Host + Prefix
}

// location is a resource's absolute URL under base.
func location(base, kind, id string) string { return base + kind + "/" + id }
