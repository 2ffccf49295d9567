// Package apierror writes errors the way Mistral's API does: an error
// object ({"object":"error","message","type","param","code"}) for most,
// FastAPI's {"detail":[...]} for request validation. It holds the one
// table from an error's kind to its HTTP status, shared by the Admin API
// and the model API.
package apierror

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/stewardhq/steward/internal/steward"
)

// Body is Mistral's error object.
type Body struct {
	Object  string  `json:"object"`
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

// NewBody is an error object for a status no error kind covers (405, 502).
func NewBody(typ, code, message string) Body {
	b := Body{Object: "error", Message: message, Type: typ}
	if code != "" {
		b.Code = &code
	}
	return b
}

// Validation is the FastAPI shape Mistral uses for request validation.
type Validation struct {
	Detail []Detail `json:"detail"`
}

// Detail is one invalid field.
type Detail struct {
	Loc  []string `json:"loc"`
	Msg  string   `json:"msg"`
	Type string   `json:"type"`
}

var kinds = map[steward.Kind]struct {
	status int
	typ    string
	code   string
}{
	steward.KindInternal:        {http.StatusInternalServerError, "server_error", ""},
	steward.KindInvalid:         {http.StatusUnprocessableEntity, "invalid_request_error", ""},
	steward.KindUnauthenticated: {http.StatusUnauthorized, "authentication_error", ""},
	steward.KindForbidden:       {http.StatusForbidden, "permission_error", ""},
	steward.KindNotFound:        {http.StatusNotFound, "not_found_error", ""},
	steward.KindConflict:        {http.StatusConflict, "invalid_request_error", "conflict"},
	steward.KindRateLimited:     {http.StatusTooManyRequests, "rate_limit_error", ""},
	steward.KindUnavailable:     {http.StatusServiceUnavailable, "server_error", "service_unavailable"},
	steward.KindTooLarge:        {http.StatusRequestEntityTooLarge, "invalid_request_error", "request_too_large"},
}

// Status is the HTTP status of an error kind.
func Status(k steward.Kind) int { return kinds[k].status }

// As returns err as a *steward.Error; anything else becomes an internal
// error whose cause the client never sees.
func As(err error) *steward.Error {
	var e *steward.Error
	if errors.As(err, &e) {
		return e
	}
	return steward.Internal(err)
}

// Encode returns the status and the body that answer e.
func Encode(e *steward.Error) (int, any) {
	m := kinds[e.Kind]
	if e.Kind == steward.KindInvalid {
		var v Validation
		for _, f := range append([]*steward.Error{e}, e.Also...) {
			loc := f.Field
			if len(loc) == 0 {
				loc = []string{"body"}
			}
			v.Detail = append(v.Detail, Detail{Loc: loc, Msg: f.Message, Type: "value_error"})
		}
		return m.status, v
	}
	code := e.Code
	if code == "" {
		code = m.code
	}
	b := NewBody(m.typ, code, e.Message)
	if len(e.Field) > 1 {
		p := strings.Join(e.Field[1:], ".")
		b.Param = &p
	}
	return m.status, b
}

// Write answers e, with WWW-Authenticate when it asks for a credential.
func Write(w http.ResponseWriter, e *steward.Error) {
	if e.Kind == steward.KindUnauthenticated {
		w.Header().Set("WWW-Authenticate", `Bearer realm="steward"`)
	}
	status, body := Encode(e)
	WriteJSON(w, status, body)
}

// WriteJSON writes v as a JSON answer with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"object":"error","message":"internal error","type":"server_error","param":null,"code":null}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// NoRoute is the catch-all ("/") of a mux: it answers a request that no
// other pattern of mux takes with Mistral's error object, 405 with Allow
// when its path takes other methods, 404 otherwise.
func NoRoute(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var allow []string
		for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
			probe := r.Clone(r.Context())
			probe.Method = m
			if _, pattern := mux.Handler(probe); pattern != "/" && pattern != "" {
				allow = append(allow, m)
			}
		}
		if len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			WriteJSON(w, http.StatusMethodNotAllowed, NewBody("invalid_request_error", "method_not_allowed",
				fmt.Sprintf("%s is not allowed on %s; allowed: %s", r.Method, r.URL.Path, strings.Join(allow, ", "))))
			return
		}
		Write(w, steward.Errorf(steward.KindNotFound, "no such route: %s %s", r.Method, r.URL.Path))
	})
}
