package gateway

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/stewardhq/steward/internal/apierror"
	"github.com/stewardhq/steward/internal/billing"
	"github.com/stewardhq/steward/internal/inference"
	"github.com/stewardhq/steward/internal/poll"
	"github.com/stewardhq/steward/internal/steward"
)

// CheckTTL is how long a check waits for its usage report. A check never
// reported is settled and recorded at its worst case, estimated: a gateway
// that does not report pays what it reserved.
const CheckTTL = 10 * time.Minute

// pendingCheck is an admitted check waiting for its report.
type pendingCheck struct {
	ticket         inference.Ticket
	usage          inference.Usage
	prompt, maxOut int64
	expires        time.Time
}

// checks holds the admitted checks of the check API.
type checks struct {
	mu      sync.Mutex
	pending map[string]*pendingCheck
}

// checkOut answers an admitted check.
type checkOut struct {
	CheckID        string `json:"check_id"`
	KeyID          string `json:"key_id"`
	OrganizationID string `json:"organization_id"`
	WorkspaceID    string `json:"workspace_id"`
	UserID         string `json:"user_id"`
}

// serveCheck is the check API for gateways that already stand in front of
// the models (Envoy ext_authz, Kong, nginx auth_request): it checks the
// key and reserves the request's worst case, like the model API does
// before calling an upstream. The request names the model and its sizes in
// the query (model, prompt_tokens, max_tokens), so that a subrequest
// without a body can carry them. 200 admits, with x-steward-* headers;
// 401, 403 and 429 refuse.
func (x *exchange) serveCheck() {
	q := x.r.URL.Query()
	model := q.Get("model")
	m := x.g.models[model]
	var errs []*steward.Error
	if m == nil || !x.key.MayUse(m.name) {
		errs = append(errs, steward.Invalid([]string{"query", "model"}, "model %q is not served", model))
	}
	size := func(name string) int64 {
		v := q.Get(name)
		if v == "" {
			return 0
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 || n > MaxTokens {
			errs = append(errs, steward.Invalid([]string{"query", name}, "%s must be a whole number of tokens", name))
		}
		return n
	}
	prompt, maxOut := size("prompt_tokens"), size("max_tokens")
	if err := steward.Invalids(errs); err != nil {
		x.fail(err)
		return
	}
	if maxOut == 0 {
		maxOut = m.maxOut
	}
	ticket, err := x.g.limits.Reserve(x.r.Context(), x.key, m.name, billing.Tokens(prompt, maxOut))
	if err != nil {
		x.fail(err)
		return
	}
	x.ticket = ticket
	x.ticketHeaders()
	id := steward.RandomID()
	x.g.checks.mu.Lock()
	x.g.checks.pending[id] = &pendingCheck{ticket: ticket, prompt: prompt, maxOut: maxOut, expires: x.g.now().Add(CheckTTL),
		usage: inference.Usage{RequestID: id, Key: x.key, Model: m.name, Endpoint: "check"}}
	x.g.checks.mu.Unlock()
	h := x.w.Header()
	h.Set("x-steward-check-id", id)
	h.Set("x-steward-organization-id", x.key.OrganizationID)
	h.Set("x-steward-workspace-id", x.key.WorkspaceID)
	h.Set("x-steward-user-id", x.key.UserID)
	apierror.WriteJSON(x.w, http.StatusOK, checkOut{CheckID: id, KeyID: x.key.CredentialID, OrganizationID: x.key.OrganizationID,
		WorkspaceID: x.key.WorkspaceID, UserID: x.key.UserID})
}

// serveReport settles a check to the usage reported, and records it. The
// trusted reporter (the holder of the report token, see
// inference.Authenticator.Reporter) may report any check, and what it
// reports is recorded as it is. Otherwise only the key that made the check
// may report it, and never below what the check reserved: a key reporting
// its own usage could otherwise make what it used free.
func (x *exchange) serveReport(id string) {
	var in struct {
		InputTokens  *int64 `json:"input_tokens"`
		OutputTokens *int64 `json:"output_tokens"`
	}
	dec := json.NewDecoder(io.LimitReader(x.r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil || in.InputTokens == nil || in.OutputTokens == nil ||
		*in.InputTokens < 0 || *in.OutputTokens < 0 || *in.InputTokens > MaxTokens || *in.OutputTokens > MaxTokens {
		x.fail(steward.Invalid([]string{"body"}, "the body must be {\"input_tokens\": n, \"output_tokens\": n} with whole numbers from 0 to %d", MaxTokens))
		return
	}
	trusted := x.key.Kind == steward.CredentialReportToken
	x.g.checks.mu.Lock()
	p := x.g.checks.pending[id]
	mine := p != nil && (trusted || p.usage.Key.CredentialID == x.key.CredentialID)
	if mine {
		delete(x.g.checks.pending, id)
	}
	x.g.checks.mu.Unlock()
	if !mine {
		x.fail(steward.Errorf(steward.KindNotFound, "no pending check %s for this key: it was reported already, or expired after %s", id, CheckTTL))
		return
	}
	o := outcome{in: *in.InputTokens, out: *in.OutputTokens}
	if !trusted {
		o.in, o.out = max(o.in, p.prompt), max(o.out, p.maxOut)
	}
	x.g.settleCheck(x.r.Context(), p, o)
	x.w.WriteHeader(http.StatusNoContent)
}

// settleCheck settles and records a check. Usage beyond what the check
// reserved is recorded as it was, marked Overrun, and logged.
func (g *Gateway) settleCheck(ctx context.Context, p *pendingCheck, o outcome) {
	o.beyond(p.prompt, p.maxOut, 0, 0)
	p.ticket.Settle(o.quantity())
	m := g.models[p.usage.Model]
	u := p.usage
	u.Time, u.InputTokens, u.OutputTokens, u.Estimated, u.Overrun, u.Currency = g.now(), o.in, o.out, o.estimated, o.overrun, g.currency
	if m != nil {
		u.Cost = m.cost(o.quantity())
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	if o.overrun {
		g.log.LogAttrs(ctx, slog.LevelWarn, "a check was reported beyond its reservation", slog.String("check_id", u.RequestID),
			slog.String("model", u.Model), slog.String("key_id", u.Key.CredentialID), slog.Int64("input_tokens", o.in), slog.Int64("output_tokens", o.out),
			slog.Int64("reserved_input_tokens", p.prompt), slog.Int64("reserved_output_tokens", p.maxOut))
	}
	if err := g.rec.Record(ctx, u); err != nil {
		g.log.Error("record a check's usage", "err", err)
	}
}

// ExpireChecks settles, at once and then every interval until ctx ends,
// the checks that were not reported within CheckTTL, at their worst case.
func (g *Gateway) ExpireChecks(ctx context.Context, interval time.Duration) {
	poll.New(0).Run(ctx, interval, func() bool {
		g.expireChecks()
		return false
	})
}

// expireChecks settles every check past its time at its worst case.
func (g *Gateway) expireChecks() {
	now := g.now()
	var late []*pendingCheck
	g.checks.mu.Lock()
	for id, p := range g.checks.pending {
		if !now.Before(p.expires) {
			late = append(late, p)
			delete(g.checks.pending, id)
		}
	}
	g.checks.mu.Unlock()
	for _, p := range late {
		g.settleCheck(context.Background(), p, outcome{in: p.prompt, out: p.maxOut, estimated: true})
	}
}
