package server

import (
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/stewardhq/steward/internal/steward"
)

// errorBody is Mistral's error object.
type errorBody struct {
	Object  string  `json:"object"`
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

// validationBody is the FastAPI shape Mistral uses for request validation.
type validationBody struct {
	Detail []validationDetail `json:"detail"`
}

type validationDetail struct {
	Loc   []string `json:"loc"`
	Msg   string   `json:"msg"`
	Type  string   `json:"type"`
	Input any      `json:"input,omitempty"`
}

// statusOf maps each error kind to its HTTP status and Mistral error type;
// it is the only place that does.
var statusOf = map[steward.Kind]struct {
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

// writeError writes err to the client and logs it if it is internal or an
// outage: once, here, with the request id.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	var e *steward.Error
	if !errors.As(err, &e) {
		e = steward.Internal(err)
	}
	m := statusOf[e.Kind]
	if e.Kind == steward.KindInternal || e.Kind == steward.KindUnavailable {
		logFrom(r.Context()).LogAttrs(r.Context(), slog.LevelError, "request failed", slog.String("err", err.Error()))
	}
	if e.Kind == steward.KindInvalid {
		var body validationBody
		for _, f := range append([]*steward.Error{e}, e.Also...) {
			loc := f.Field
			if len(loc) == 0 {
				loc = []string{"body"}
			}
			body.Detail = append(body.Detail, validationDetail{Loc: loc, Msg: f.Message, Type: "value_error"})
		}
		writeJSON(w, m.status, body)
		return
	}
	body := errorBody{Object: "error", Message: e.Message, Type: m.typ}
	if len(e.Field) > 0 {
		p := strings.Join(e.Field[1:], ".")
		body.Param = &p
	}
	code := e.Code
	if code == "" {
		code = m.code
	}
	if code != "" {
		body.Code = &code
	}
	if e.Kind == steward.KindUnauthenticated {
		w.Header().Set("WWW-Authenticate", `Bearer realm="steward"`)
	}
	writeJSON(w, m.status, body)
}
