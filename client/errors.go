package client

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// APIError is an error answer of the Admin API: Mistral's error object
// ({"object":"error","message","type","param","code"}) or, for a request
// that failed validation (422), FastAPI's detail list naming each field.
type APIError struct {
	// StatusCode is the HTTP status of the answer.
	StatusCode int
	// Message, Type, Param and Code are the fields of the error object.
	Message string
	Type    string
	Param   string
	Code    string
	// Detail lists the fields a validation failure names.
	Detail []FieldError
	// RequestID is the server's X-Request-Id, to find the request in its log.
	RequestID string
	// RetryAfter is the wait the server asked for with Retry-After, if any.
	RetryAfter time.Duration
}

// FieldError is one entry of a validation failure: where (such as body,
// amount) and what is wrong there.
type FieldError struct {
	Loc  []string
	Msg  string
	Type string
}

func (e *APIError) Error() string {
	var b strings.Builder
	switch {
	case len(e.Detail) > 0:
		for i, d := range e.Detail {
			if i > 0 {
				b.WriteString("; ")
			}
			if len(d.Loc) > 0 {
				b.WriteString(strings.Join(d.Loc, ".") + ": ")
			}
			b.WriteString(d.Msg)
		}
	case e.Message != "":
		b.WriteString(e.Message)
	default:
		b.WriteString("the server answered " + strings.ToLower(http.StatusText(e.StatusCode)))
	}
	fmt.Fprintf(&b, " (HTTP %d", e.StatusCode)
	if e.Code != "" {
		fmt.Fprintf(&b, ", %s", e.Code)
	}
	b.WriteString(")")
	return b.String()
}

// Is matches the sentinel of the answer's status: errors.Is(err,
// ErrNotFound) is true of a 404.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrUnauthorized:
		return e.StatusCode == http.StatusUnauthorized
	case ErrForbidden:
		return e.StatusCode == http.StatusForbidden
	case ErrNotFound:
		return e.StatusCode == http.StatusNotFound
	case ErrNotServed:
		return e.StatusCode == http.StatusNotFound && e.Type != "not_found_error"
	case ErrConflict:
		return e.StatusCode == http.StatusConflict
	case ErrInvalid:
		return e.StatusCode == http.StatusBadRequest || e.StatusCode == http.StatusUnprocessableEntity
	case ErrRateLimited:
		return e.StatusCode == http.StatusTooManyRequests
	case ErrUnavailable:
		return e.StatusCode == http.StatusServiceUnavailable
	}
	return false
}

// parseError reads the body of an error answer. A body in neither shape,
// such as a proxy's HTML page, leaves only the status.
func parseError(status int, raw []byte) *APIError {
	e := &APIError{StatusCode: status}
	var body struct {
		Message json.RawMessage `json:"message"`
		Type    string          `json:"type"`
		Param   json.RawMessage `json:"param"`
		Code    json.RawMessage `json:"code"`
		Detail  json.RawMessage `json:"detail"`
	}
	if json.Unmarshal(raw, &body) != nil {
		return e
	}
	e.Message, e.Type = scalar(body.Message), body.Type
	e.Param, e.Code = scalar(body.Param), scalar(body.Code)
	var items []struct {
		Loc  []any  `json:"loc"`
		Msg  string `json:"msg"`
		Type string `json:"type"`
	}
	if json.Unmarshal(body.Detail, &items) == nil {
		for _, it := range items {
			loc := make([]string, len(it.Loc))
			for i, l := range it.Loc {
				loc[i] = fmt.Sprint(l)
			}
			e.Detail = append(e.Detail, FieldError{Loc: loc, Msg: it.Msg, Type: it.Type})
		}
	} else if e.Message == "" {
		e.Message = scalar(body.Detail)
	}
	return e
}

// scalar renders a JSON string, number or boolean as text: Mistral's code
// and param are strings or numbers, and null is empty.
func scalar(raw json.RawMessage) string {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return ""
	}
	switch v := v.(type) {
	case string:
		return v
	case float64, bool:
		return fmt.Sprint(v)
	}
	return ""
}
