package gateway

import (
	"errors"
	"log/slog"
	"strconv"
	"time"

	"github.com/stewardhq/steward/internal/apierror"
	"github.com/stewardhq/steward/internal/inference"
	"github.com/stewardhq/steward/internal/steward"
)

// fail answers err: a *steward.Error by its kind, an *inference.Refusal
// with its headers and Retry-After, anything else as a logged 500 whose
// cause the client does not see.
func (x *exchange) fail(err error) {
	var ref *inference.Refusal
	isRefusal := errors.As(err, &ref)
	var e *steward.Error
	switch {
	case errors.As(err, &e):
	case isRefusal:
		e = &steward.Error{Kind: steward.KindRateLimited, Message: "rate limit exceeded"}
	default:
		e = steward.Internal(err)
	}
	if e.Kind == steward.KindInternal || e.Kind == steward.KindUnavailable {
		x.logAttrs(x.r.Context(), slog.LevelError, "request failed", slog.String("err", err.Error()))
	}
	h := x.w.Header()
	if isRefusal {
		for k, vs := range ref.Header {
			h[k] = append([]string(nil), vs...)
		}
	}
	if e.Kind == steward.KindRateLimited {
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
	apierror.Write(x.w, e)
}

// failStatus answers a Mistral error object for a status no steward kind
// covers (405, 502).
func (x *exchange) failStatus(status int, typ, code, msg string) {
	apierror.WriteJSON(x.w, status, apierror.NewBody(typ, code, msg))
}
