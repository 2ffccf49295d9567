// Package enforce holds the limits of an Organization (package quota) to
// every model API request: its Enforcer is the gateway's
// inference.Limits, which turns the Organization's settings into checks of
// the limiter (package limits), reserves each request's worst case and
// settles it to what the request used.
package enforce

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/stewardhq/steward/internal/billing"
	"github.com/stewardhq/steward/internal/inference"
	"github.com/stewardhq/steward/internal/limits"
	"github.com/stewardhq/steward/internal/quota"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/usage"
)

// Enforcer is the gateway's inference.Limits: for every request it reserves, all or
// nothing, the Organization's and the Workspace's request rate, the model's
// tokens per minute and per month at both levels, and both monthly spend
// caps, with the request's worst case; the answer settles them to what was
// used. Settings are read once per Organization and dropped when a limit
// changes. Monthly counters start from the month's recorded usage, so a
// restart does not forget what was spent.
type Enforcer struct {
	db      *store.DB
	limiter limits.Limiter
	// prices cost tokens as the gateway records them.
	prices *billing.Prices
	now    func() time.Time

	// settings are each Organization's, dropped when a limit changes.
	settings *store.Cache[quota.Settings]

	mu sync.Mutex
	// warmed records the (key, month) monthly counters already started
	// from recorded usage.
	warmed map[warmKey]bool
}

var _ inference.Limits = (*Enforcer)(nil)

// New returns an enforcer over the limiter, subscribed to limit changes,
// that costs requests at prices, the gateway's: a model they do not price
// costs nothing.
func New(db *store.DB, limiter limits.Limiter, prices *billing.Prices, now func() time.Time) *Enforcer {
	return &Enforcer{db: db, limiter: limiter, prices: prices, now: now, warmed: map[warmKey]bool{},
		settings: store.NewCache(db, quota.TopicLimits, func(ctx context.Context, orgID string) (quota.Settings, error) {
			return store.Read(ctx, db, func(tx *store.Tx) (quota.Settings, error) { return quota.Load(ctx, tx, orgID) })
		})}
}

// warmKey is a monthly counter of one month.
type warmKey struct {
	key   string
	kind  limits.Kind
	month time.Time
}

// warm starts the monthly counter of c from the month's recorded usage the
// first time this process sees it: it reserves, without a cap, what was
// already used, in the month and time zone c is checked in.
func (e *Enforcer) warm(ctx context.Context, c check) error {
	key, kind := c.Key, c.Kind
	start, end := usage.Month(e.now(), c.Location)
	id := warmKey{key, kind, start}
	e.mu.Lock()
	done := e.warmed[id]
	e.mu.Unlock()
	if done {
		return nil
	}
	var cost int64
	var tokens map[string]int64
	err := e.db.View(ctx, func(tx *store.Tx) error {
		var err error
		cost, tokens, err = usage.MonthSpend(ctx, tx, c.org, c.ws, start, end)
		return err
	})
	if err != nil {
		return err
	}
	used := cost
	if kind == limits.TokensPerMonth {
		used = tokens[c.mdl]
	}
	if s, ok := e.limiter.(seeder); ok {
		// The counter is shared and the first process to seed it wins,
		// so seeding needs no lock here.
		if _, err := s.Seed(ctx, limits.Check{Key: key, Kind: kind, Location: c.Location}, used); err != nil {
			return err
		}
		e.mu.Lock()
		e.warmed[id] = true
		e.mu.Unlock()
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.warmed[id] {
		return nil
	}
	if used > 0 {
		if _, _, err := e.limiter.Reserve(ctx, []limits.Check{{Key: key, Kind: kind, Limit: math.MaxInt64, Cost: used, Location: c.Location}}); err != nil {
			return err
		}
	}
	e.warmed[id] = true
	return nil
}

// seeder is a limiter whose monthly counters are shared by processes and
// started once for all of them (limits.Redis).
type seeder interface {
	Seed(ctx context.Context, c limits.Check, used int64) (bool, error)
}

// warmAll warms the monthly counters of a request's checks.
func (e *Enforcer) warmAll(ctx context.Context, cs []check) error {
	for _, c := range cs {
		if c.Kind == limits.TokensPerMonth || c.Kind == limits.SpendPerMonth {
			if err := e.warm(ctx, c); err != nil {
				return err
			}
		}
	}
	return nil
}

// check is one limit of a request, with the refusal code it answers with.
type check struct {
	limits.Check
	code, what   string
	org, ws, mdl string
	spend        bool
}

// Reserve admits a request or refuses it with an *inference.Refusal.
func (e *Enforcer) Reserve(ctx context.Context, k steward.Principal, model string, worst billing.Quantity) (inference.Ticket, error) {
	s, err := e.settings.Get(ctx, k.OrganizationID)
	if err != nil {
		return nil, err
	}
	worst = counted(worst)
	worstCost, _ := e.prices.Cost(model, worst)
	cs := checks(s, k, model, limits.AddSat(worst.InputTokens, worst.OutputTokens), worstCost)
	if err := e.warmAll(ctx, cs); err != nil {
		return nil, err
	}
	plain := make([]limits.Check, len(cs))
	for i, c := range cs {
		plain[i] = c.Check
	}
	d, res, err := e.limiter.Reserve(ctx, plain)
	if errors.Is(err, limits.ErrUnseeded) {
		// The shared counters were lost (Redis restarted empty): start
		// them again from the recorded usage, then try once more.
		e.mu.Lock()
		clear(e.warmed)
		e.mu.Unlock()
		if err := e.warmAll(ctx, cs); err != nil {
			return nil, err
		}
		d, res, err = e.limiter.Reserve(ctx, plain)
	}
	if err != nil {
		return nil, err
	}
	h := headers(cs, d)
	if !d.Allowed {
		c := cs[d.Denied]
		what := c.what
		if c.Kind == limits.TokensPerMinute || c.Kind == limits.TokensPerMonth {
			what += " of " + model
		}
		return nil, &inference.Refusal{
			Err:        &steward.Error{Kind: steward.KindRateLimited, Code: c.code, Message: "this request would exceed the " + what + " of its " + scopeName(c.Key)},
			RetryAfter: d.RetryAfter, Header: h,
		}
	}
	return &ticket{e: e, cs: cs, res: res, header: h, model: model}, nil
}

// checks are the limits of settings s a request of a key and model must
// pass, each taking its worst case of tokens or spend; a request naming
// no model (a forwarded operation, which costs nothing) passes the
// request rates alone.
func checks(s quota.Settings, k steward.Principal, model string, worstTokens, worstCost int64) []check {
	var cs []check
	levels := []struct {
		prefix, ws string
		rl         quota.RateLimits
		cap        *int64
	}{{"org:" + k.OrganizationID, "", s.Organization, s.SpendCap}, {"ws:" + k.WorkspaceID, k.WorkspaceID, s.RateLimitsOf(k.WorkspaceID), nil}}
	if v, ok := s.WorkspaceSpends[k.WorkspaceID]; ok {
		levels[1].cap = &v
	}
	// A monthly counter belongs to one time zone: a change of zone starts
	// another, warmed from the usage of the new zone's month.
	month := "@" + s.Location.String()
	for _, l := range levels {
		if l.rl.RequestsPerSecond > 0 {
			cs = append(cs, check{Check: limits.Check{Key: l.prefix, Kind: limits.RequestsPerSecond, Limit: l.rl.RequestsPerSecond, Cost: 1},
				code: "rate_limit_exceeded", what: "requests per second"})
		}
		if model == "" {
			continue
		}
		if t := l.rl.Models[model]; t.PerMinute > 0 {
			cs = append(cs, check{Check: limits.Check{Key: l.prefix + ":" + model, Kind: limits.TokensPerMinute, Limit: t.PerMinute, Cost: worstTokens},
				code: "token_limit_exceeded", what: "tokens per minute"})
		}
		if t := l.rl.Models[model]; t.PerMonth > 0 {
			cs = append(cs, check{Check: limits.Check{Key: l.prefix + ":" + model + month, Kind: limits.TokensPerMonth, Limit: t.PerMonth, Cost: worstTokens, Location: s.Location},
				code: "monthly_token_limit_exceeded", what: "tokens per month", org: k.OrganizationID, ws: l.ws, mdl: model})
		}
		if l.cap != nil {
			cs = append(cs, check{Check: limits.Check{Key: l.prefix + month, Kind: limits.SpendPerMonth, Limit: billing.Micros(*l.cap), Cost: worstCost, Location: s.Location},
				code: "spend_limit_exceeded", what: "monthly spend limit", spend: true, org: k.OrganizationID, ws: l.ws})
		}
	}
	return cs
}

// tokenCount is a number of tokens (or pages, or seconds) as the enforcer
// takes it. A negative one can only be a product that overflowed before it
// got here, so it counts as the most there is rather than reaching the
// limiter, which refuses negative numbers.
func tokenCount(tokens int64) int64 {
	if tokens < 0 {
		return math.MaxInt64
	}
	return tokens
}

// counted is q with every count as tokenCount takes it.
func counted(q billing.Quantity) billing.Quantity {
	return billing.Quantity{InputTokens: tokenCount(q.InputTokens), OutputTokens: tokenCount(q.OutputTokens),
		Pages: tokenCount(q.Pages), AudioSeconds: tokenCount(q.AudioSeconds)}
}

func scopeName(key string) string {
	if len(key) > 3 && key[:3] == "ws:" {
		return "Workspace"
	}
	return "Organization"
}

// headers are the x-ratelimit-* headers of the tightest request-rate and
// token checks.
func headers(cs []check, d limits.Decision) http.Header {
	// tightest is, for requests and for tokens, the check with the fewest
	// remaining, or -1.
	tightest := [2]int{-1, -1}
	for i, c := range cs {
		var of int
		switch c.Kind {
		case limits.RequestsPerSecond:
			of = 0
		case limits.TokensPerMinute:
			of = 1
		default:
			continue
		}
		if t := tightest[of]; t < 0 || d.Remaining[i] < d.Remaining[t] {
			tightest[of] = i
		}
	}
	h := make(http.Header, 6)
	for of, i := range tightest {
		if i < 0 {
			continue
		}
		names := rateLimitHeaders[of]
		h[names[0]] = []string{strconv.FormatInt(cs[i].Limit, 10)}
		h[names[1]] = []string{strconv.FormatInt(d.Remaining[i], 10)}
		h[names[2]] = []string{strconv.FormatFloat(d.Reset[i].Seconds(), 'f', 3, 64) + "s"}
	}
	return h
}

// rateLimitHeaders are the canonical names of the limit, remaining and
// reset headers, for requests and for tokens.
var rateLimitHeaders = [2][3]string{
	{"X-Ratelimit-Limit-Requests", "X-Ratelimit-Remaining-Requests", "X-Ratelimit-Reset-Requests"},
	{"X-Ratelimit-Limit-Tokens", "X-Ratelimit-Remaining-Tokens", "X-Ratelimit-Reset-Tokens"},
}

type ticket struct {
	e      *Enforcer
	cs     []check
	res    limits.Reservation
	header http.Header
	model  string
}

func (t *ticket) Headers() http.Header { return t.header }

// Settle corrects every check to what the request used: the token checks
// to its tokens, the spend caps to its cost.
func (t *ticket) Settle(used billing.Quantity) {
	used = counted(used)
	cost, _ := t.e.prices.Cost(t.model, used)
	_ = t.e.limiter.Settle(context.Background(), &t.res, actuals(t.cs, limits.AddSat(used.InputTokens, used.OutputTokens), cost))
}

// actuals are the costs that settle checks to what a request used.
func actuals(cs []check, tokens, cost int64) []int64 {
	actual := make([]int64, len(cs))
	for i, c := range cs {
		switch {
		case c.Kind == limits.RequestsPerSecond:
			actual[i] = 1
		case c.spend:
			actual[i] = cost
		default:
			actual[i] = tokens
		}
	}
	return actual
}
