package gateway

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

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
	Loc  []string `json:"loc"`
	Msg  string   `json:"msg"`
	Type string   `json:"type"`
}

// statusOf maps each error kind to its status and Mistral error type, as
// the server package does for the management API.
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

// fail answers err: a *steward.Error by its kind, a *Refusal with its
// headers and Retry-After, anything else as a logged 500 whose cause the
// client does not see.
func (x *exchange) fail(err error) {
	var ref *Refusal
	isRefusal := errors.As(err, &ref)
	var e *steward.Error
	switch {
	case errors.As(err, &e):
	case isRefusal:
		e = &steward.Error{Kind: steward.KindRateLimited, Message: "rate limit exceeded"}
	default:
		e = steward.Internal(err)
	}
	m := statusOf[e.Kind]
	if e.Kind == steward.KindInternal || e.Kind == steward.KindUnavailable {
		x.log.LogAttrs(x.r.Context(), slog.LevelError, "request failed", slog.String("err", err.Error()))
	}
	h := x.w.Header()
	if isRefusal {
		for k, vs := range ref.Header {
			h[k] = append([]string(nil), vs...)
		}
	}
	switch {
	case e.Kind == steward.KindInvalid:
		var body validationBody
		for _, f := range append([]*steward.Error{e}, e.Also...) {
			loc := f.Field
			if len(loc) == 0 {
				loc = []string{"body"}
			}
			body.Detail = append(body.Detail, validationDetail{Loc: loc, Msg: f.Message, Type: "value_error"})
		}
		writeJSON(x.w, m.status, body)
		return
	case e.Kind == steward.KindUnauthenticated:
		h.Set("WWW-Authenticate", `Bearer realm="steward"`)
	case e.Kind == steward.KindRateLimited:
		// A refusal with no RetryAfter says waiting cannot help, so it gets
		// no Retry-After; a rate-limit error from elsewhere says nothing,
		// and a second is the polite default.
		switch {
		case isRefusal && ref.RetryAfter > 0:
			h.Set("Retry-After", strconv.FormatInt(int64((ref.RetryAfter+time.Second-1)/time.Second), 10))
		case !isRefusal:
			h.Set("Retry-After", "1")
		}
	}
	body := errorBody{Object: "error", Message: e.Message, Type: m.typ}
	if len(e.Field) > 1 {
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
	writeJSON(x.w, m.status, body)
}

// failStatus answers a Mistral error object for a status no steward kind
// covers (405, 502).
func (x *exchange) failStatus(status int, typ, code, msg string) {
	writeJSON(x.w, status, errorBody{Object: "error", Message: msg, Type: typ, Code: &code})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"object":"error","message":"internal error","type":"server_error","param":null,"code":null}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
