package web

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/stewardhq/steward/internal/auth"
	"github.com/stewardhq/steward/internal/limits"
	"github.com/stewardhq/steward/internal/steward"
)

// Sign-in throttling follows OWASP's advice against password guessing: a
// growing delay rather than a lock-out, per account and per client, and a
// device cookie that tells a person's own browser from everyone else's.
// Every limit lives in the gateway's Limiter, so several processes share
// them through Redis.
//
//   - perClient: every attempt of a client, whatever the address, so that
//     one client cannot try many addresses.
//   - pairBackoff: the failures of one address from one client (its device
//     cookie of that address, or else its IP). Someone guessing from one
//     place slows down there only; the person, elsewhere, is unaffected.
//   - addressBackoff: the failures of one address from every client without
//     a device cookie of it, against guessing spread over many IPs. It
//     allows more failures than one client can make before pairBackoff's
//     waits slow it below the rate its failures are forgotten, so that one
//     client alone never delays others; a browser the person has signed in
//     from skips it.
var (
	perClient      = limits.Check{Kind: limits.TokensPerMinute, Limit: 10, Burst: 30, Cost: 1}
	pairBackoff    = backoff{free: 5, base: 2 * time.Second, most: 15 * time.Minute, forget: time.Hour}
	addressBackoff = backoff{free: 20, base: 2 * time.Second, most: 15 * time.Minute, forget: 10 * time.Minute}
	// resetsPerAddress limits the reset emails one address can be sent: a
	// burst of 10, then one a minute.
	resetsPerAddress = limits.Check{Kind: limits.TokensPerMinute, Limit: 1, Burst: 10, Cost: 1}
)

// deviceCookie holds an auth.DeviceToken; it lasts deviceDays from the last
// sign-in.
const (
	deviceCookie = "steward_device"
	deviceDays   = 90
)

// backoff is a growing delay between failures on one key: after free
// failures, each one makes the next attempt wait twice as long as the one
// before, from base up to most. Failures are forgotten one every forget.
//
// It is two GCRA limits. The count of failures is a debt of forget's worth
// of seconds each, which drains in real time; the wait is another, paid in
// milliseconds, since a count that drained as fast as the waits pass would
// be back where it was after each wait, and the waits would not grow.
type backoff struct {
	free               int
	base, most, forget time.Duration
}

const (
	// hold is what an attempt takes of its wait while its password is
	// checked, so that the attempts on a key run one at a time: a batch
	// sent at once would otherwise all be checked before the first
	// failure's wait applies.
	hold = time.Second
	// msPerMinute and sPerMinute are the tokens a minute of a limit
	// counted in milliseconds (the wait) and in seconds (the count).
	msPerMinute, sPerMinute = 60_000, 60
)

// grow is the number of doublings that take the wait from base to most.
func (b backoff) grow() int {
	n := 0
	for d := b.base; d < b.most; d *= 2 {
		n++
	}
	return n
}

// steps is the number of failures after which the wait is at its longest;
// more are not counted, which bounds the count.
func (b backoff) steps() int { return b.free + b.grow() }

// checks returns the wait and the count of key. The count's burst leaves
// room above the most it holds, so that it never refuses.
func (b backoff) checks(key string) (wait, count limits.Check) {
	return limits.Check{Key: key + ":wait", Kind: limits.TokensPerMinute, Limit: msPerMinute, Burst: hold.Milliseconds(), Cost: hold.Milliseconds()},
		limits.Check{Key: key + ":failures", Kind: limits.TokensPerMinute, Limit: sPerMinute, Burst: int64(b.steps()+2) * b.forgetSeconds()}
}

func (b backoff) forgetSeconds() int64 { return int64(b.forget / time.Second) }

// failures is the count a decision found: its debt, in whole failures.
func (b backoff) failures(debt time.Duration) int {
	return int((debt + b.forget - 1) / b.forget)
}

// failed returns what a failure takes of the wait and the count, when n
// failures came before it.
func (b backoff) failed(n int) (wait, count int64) {
	switch {
	case n >= b.steps():
		return b.most.Milliseconds(), 0
	case n >= b.free:
		wait = min(b.base<<(n-b.free), b.most).Milliseconds()
	}
	return wait, b.forgetSeconds()
}

// attempt is a sign-in attempt the throttle let through: end settles it.
type attempt struct {
	h   *Handler
	res limits.Reservation
	// backoffs apply in the reservation's order, after perClient, two
	// checks each; failures are their counts before this attempt.
	backoffs []backoff
	failures []int
}

// beginSignIn lets a password check for email go ahead, or returns a
// KindRateLimited error, having set Retry-After, when it must wait.
func (h *Handler) beginSignIn(w http.ResponseWriter, r *http.Request, email string) (*attempt, error) {
	ctx := r.Context()
	email = throttleKey(email)
	client, known := "ip:"+h.cfg.Proxies.ClientIP(r), false
	if c, err := r.Cookie(deviceCookie); err == nil {
		nonce, err := auth.KnownDevice(ctx, h.cfg.DB, email, c.Value)
		if err != nil {
			return nil, err
		}
		if nonce != "" {
			client, known = "device:"+nonce, true
		}
	}
	a := &attempt{h: h, backoffs: []backoff{pairBackoff}}
	if !known {
		a.backoffs = append(a.backoffs, addressBackoff)
	}
	c := perClient
	c.Key = "signin:client:" + client
	checks := []limits.Check{c}
	for i, b := range a.backoffs {
		key := "signin:" + email
		if i == 0 {
			key += ":" + client
		}
		wait, count := b.checks(key)
		checks = append(checks, wait, count)
	}
	d, res, err := h.cfg.Throttle.Reserve(ctx, checks)
	if err == nil && !d.Allowed && d.RetryAfter > 0 && d.RetryAfter <= hold {
		// Another attempt on the address is being checked (a form sent
		// twice): its outcome is a moment away.
		t := time.NewTimer(d.RetryAfter)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
		d, res, err = h.cfg.Throttle.Reserve(ctx, checks)
	}
	if err != nil {
		return nil, err
	}
	if !d.Allowed {
		return nil, refuse(w, d.RetryAfter)
	}
	a.res = res
	for i, b := range a.backoffs {
		a.failures = append(a.failures, b.failures(d.Reset[2+2*i]))
	}
	return a, nil
}

// end settles the attempt with the password check's outcome: a failure
// takes its waits and counts; a success, or an error of Steward's own,
// gives back what the attempt held.
func (a *attempt) end(ctx context.Context, err error) {
	failed := steward.IsKind(err, steward.KindUnauthenticated) || steward.IsKind(err, steward.KindInvalid)
	actual := make([]int64, 1+2*len(a.backoffs))
	actual[0] = perClient.Cost
	for i, b := range a.backoffs {
		if failed {
			actual[1+2*i], actual[2+2*i] = b.failed(a.failures[i])
		}
	}
	if err := a.h.cfg.Throttle.Settle(context.WithoutCancel(ctx), &a.res, actual); err != nil {
		a.h.cfg.Log.Error("web: settle a sign-in attempt", "err", err)
	}
}

// throttleReset takes one reset request from the address's and the
// client's budgets, or returns a KindRateLimited error, having set
// Retry-After, when either is spent.
func (h *Handler) throttleReset(w http.ResponseWriter, r *http.Request, email string) error {
	a, c := resetsPerAddress, perClient
	a.Key = "reset:email:" + throttleKey(email)
	c.Key = "reset:client:" + h.cfg.Proxies.ClientIP(r)
	d, _, err := h.cfg.Throttle.Reserve(r.Context(), []limits.Check{a, c})
	if err != nil {
		return err
	}
	if !d.Allowed {
		return refuse(w, d.RetryAfter)
	}
	return nil
}

// throttleSSOLookup takes one "Sign in with SSO" lookup from the client's
// budget, or returns a KindRateLimited error, having set Retry-After: a
// lookup tells whether an address has single sign-on and through which
// Organizations, which a client may not ask of address after address.
func (h *Handler) throttleSSOLookup(w http.ResponseWriter, r *http.Request) error {
	c := perClient
	c.Key = "sso:client:" + h.cfg.Proxies.ClientIP(r)
	d, _, err := h.cfg.Throttle.Reserve(r.Context(), []limits.Check{c})
	if err != nil {
		return err
	}
	if !d.Allowed {
		return refuse(w, d.RetryAfter)
	}
	return nil
}

// throttleKey is the address as throttling counts it.
func throttleKey(email string) string {
	email = strings.ToLower(strings.TrimSpace(email))
	if len(email) > 254 {
		// No address is longer; the cut keeps the limiter's keys small.
		email = email[:254]
	}
	return email
}

// refuse sets Retry-After and returns the error a refused attempt shows.
func refuse(w http.ResponseWriter, retryAfter time.Duration) error {
	wait := max(retryAfter.Round(time.Second), time.Second)
	w.Header().Set("Retry-After", strconv.FormatInt(int64(wait/time.Second), 10))
	return steward.Errorf(steward.KindRateLimited, "too many attempts: try again in %s", wait)
}
