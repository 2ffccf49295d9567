// Package inference is what crosses the model gateway's boundary: the
// record of a metered model request (Usage), what admits it against the
// limits (Limits, Ticket, Refusal), what records it (Recorder, Intent), who
// sent it (Authenticator), and the routes the gateway serves (Route). The
// gateway asks these interfaces and lists its routes; the enforcer, the
// metering and the metrics implement or wrap them, and the server
// registers the routes; none of them imports another for it. It imports
// nothing of the project but the steward domain and billing's units
// (billing.Quantity).
package inference

import (
	"context"
	"net/http"
	"time"

	"github.com/stewardhq/steward/internal/billing"
	"github.com/stewardhq/steward/internal/steward"
)

// Authenticator tells who sent a model API request; *auth.Authenticator
// satisfies it. Each method returns the anonymous principal when the request
// presents no credential, and an error when it presents one that is
// refused. Its errors should be *steward.Error: their kind decides the
// status (KindUnauthenticated 401, KindForbidden 403, KindRateLimited 429);
// any other error is answered 500 and logged.
type Authenticator interface {
	// WorkspaceKey authenticates the Workspace API key in Authorization:
	// Bearer.
	WorkspaceKey(r *http.Request) (steward.Principal, error)
	// Reporter authenticates a check's report: the check API's report
	// token (a principal of kind steward.CredentialReportToken), or else a
	// Workspace key as WorkspaceKey does.
	Reporter(r *http.Request) (steward.Principal, error)
}

// Limits admits requests against the key's limits.
type Limits interface {
	// Reserve admits a request for its worst case before the upstream is
	// called, or refuses it: its tokens against the token limits, its cost
	// (of every unit) against the spend caps. A refusal should be a
	// *Refusal, whose RetryAfter and Header reach the client; any other
	// error is answered by its steward kind (500 for a plain error, which
	// is logged). A request that names no model (model is empty, worst
	// zero: an operation forwarded to the default upstream) is held to
	// the request rates alone.
	Reserve(ctx context.Context, k steward.Principal, model string, worst billing.Quantity) (Ticket, error)
}

// Ticket is an admitted reservation.
type Ticket interface {
	// Headers are added to every response of the request (rate-limit
	// headers); the gateway does not modify the returned header.
	Headers() http.Header
	// Settle corrects the reservation to what the request used. The
	// gateway calls it exactly once per ticket, whatever happens, with
	// the zero Quantity when nothing was answered.
	Settle(used billing.Quantity)
}

// Recorder stores the usage of answered requests.
type Recorder interface {
	// Record stores u durably (a report of the check API).
	Record(ctx context.Context, u Usage) error
	// Intend starts storing u, the reservation of a model request about to
	// call its upstream, without waiting: the request's Intent.
	Intend(u Usage) (Intent, error)
}

// Intent is the usage a model request reserved, being stored while its
// upstream works, so that the commit overlaps the model's time. No byte
// of an answer is written before Durable or Settle has returned nil: an
// answered request is in the usage, at its reservation marked estimated
// until its final usage replaces it.
type Intent interface {
	// Durable returns once the reservation is stored, before a stream's
	// first byte.
	Durable(ctx context.Context) error
	// Settle replaces the reservation with u, the usage of the answer, and
	// returns when the answer may be written; an error means the usage
	// is not durable, and the answer is withheld.
	Settle(ctx context.Context, u Usage) error
	// Cancel drops the reservation of a request that used nothing.
	Cancel()
}

// Direct is the Intent of a Recorder that stores no reservation: Settle
// records the final usage and waits for it, Durable has nothing to wait
// for.
func Direct(r Recorder) Intent { return direct{r} }

type direct struct{ r Recorder }

func (direct) Durable(context.Context) error { return nil }

func (d direct) Settle(ctx context.Context, u Usage) error { return d.r.Record(ctx, u) }

func (direct) Cancel() {}

// Usage is one answered model request, or one reported check.
type Usage struct {
	RequestID string
	Time      time.Time
	// Key is the principal of the Workspace key that made the request.
	Key steward.Principal
	// Model is the configured model name; Endpoint names the operation
	// ("chat", "fim", "embeddings", "ocr", ... as the gateway lists them),
	// or is "check" for the check API.
	Model, Endpoint           string
	InputTokens, OutputTokens int64
	// Pages are the pages an OCR request had read, AudioSeconds the
	// seconds of audio a transcription had heard.
	Pages, AudioSeconds int64
	// Cost is in millionths of Currency, rounded up.
	Cost     int64
	Currency string
	// Estimated is true when the upstream reported no usage and the tokens
	// come from the gateway's estimate.
	Estimated bool
	// Overrun is true when the request used more than it reserved: its
	// upstream reported more, or went on streaming beyond max_tokens and
	// was cut, or a check was reported beyond its reservation.
	Overrun bool
	// Upstream is the URL of the upstream that answered, without its
	// password; empty for the demo model and the check API.
	Upstream string
}

// Refusal is the error Limits.Reserve returns to refuse a request. Its Err
// is what the client is told (a *steward.Error, usually of
// KindRateLimited; nil means a generic rate-limit message); RetryAfter, when
// positive, becomes a Retry-After header in whole seconds, rounded up; Header
// is added to the refusal as a Ticket's headers are to an answer.
type Refusal struct {
	Err        *steward.Error
	RetryAfter time.Duration
	Header     http.Header
}

func (r *Refusal) Error() string {
	if r.Err == nil {
		return "rate limited"
	}
	return r.Err.Error()
}

// Unwrap lets steward.ErrorKind see the kind of Err.
func (r *Refusal) Unwrap() error {
	if r.Err == nil {
		return nil
	}
	return r.Err
}
