// Package limits decides whether a request may go ahead under every rate
// and budget limit that applies to it, all at once: requests per second and
// tokens per minute, kept by GCRA (the generic cell rate algorithm), and
// tokens and spend per calendar month, kept by counters.
//
// The gateway reserves a request's worst case before it calls a model
// server, because the real cost is known only after the answer, and then
// settles the actual cost, which gives back what was not used or takes what
// was used beyond the reservation. A reservation is all or nothing: either
// every check takes its cost or none takes anything.
//
// The Limiter interface is shaped so that a shared implementation can run
// each call as one atomic Redis script: a Reserve sends every key, limit and
// cost at once, and a Reservation carries everything Settle needs (keys,
// kinds, limits, costs, the month and when it ends) so that settling needs
// no second look-up and no time zone database on the server.
package limits

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strings"
	"time"

	"github.com/stewardhq/steward/internal/steward"
)

// MaxChecks bounds the checks of one Reserve. A request is checked against
// a handful of limits (its Organization, Workspace and model); a fixed bound
// lets a Decision and a Reservation be plain values that need no allocation.
const MaxChecks = 8

// Kind is a kind of limit. The zero Kind is not a kind, so that a Check
// whose Kind was left unset is an error rather than a silent default.
type Kind uint8

const (
	// RequestsPerSecond is a GCRA limit of Limit requests a second with a
	// burst of Burst requests, max(1, Limit) by default. Each request costs
	// one; Check.Cost and the actual cost given to Settle are ignored.
	RequestsPerSecond Kind = iota + 1
	// TokensPerMinute is a GCRA limit of Limit tokens a minute with a burst
	// of Burst tokens, Limit by default. A request costs its tokens.
	TokensPerMinute
	// TokensPerMonth caps the tokens of a calendar month at Limit.
	TokensPerMonth
	// SpendPerMonth caps the spend of a calendar month at Limit, in integer
	// micro-units of the billing currency (500 units are 500_000_000), so
	// that sums are exact.
	SpendPerMonth
)

func (k Kind) String() string {
	switch k {
	case RequestsPerSecond:
		return "requests per second"
	case TokensPerMinute:
		return "tokens per minute"
	case TokensPerMonth:
		return "tokens per month"
	case SpendPerMonth:
		return "spend per month"
	default:
		return fmt.Sprintf("limits.Kind(%d)", uint8(k))
	}
}

// ParseKinds returns the kinds of limit a comma-separated list names by
// their names in settings (requests_per_second, tokens_per_minute,
// tokens_per_month, spend_per_month), such as the kinds a Redis limiter
// lets through while Redis is unavailable; "none" names none.
func ParseKinds(list string) ([]Kind, error) {
	if list == "none" {
		return nil, nil
	}
	var kinds []Kind
	for name := range strings.SplitSeq(list, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		k, ok := kindNamed(name)
		if !ok {
			return nil, fmt.Errorf("%q is not a kind of limit: want requests_per_second, tokens_per_minute, tokens_per_month, spend_per_month or none", name)
		}
		kinds = append(kinds, k)
	}
	return kinds, nil
}

// kindNamed returns the kind of limit named requests_per_second,
// tokens_per_minute, tokens_per_month or spend_per_month.
func kindNamed(name string) (Kind, bool) {
	for k := RequestsPerSecond; k <= SpendPerMonth; k++ {
		if strings.ReplaceAll(k.String(), " ", "_") == name {
			return k, true
		}
	}
	return 0, false
}

// gcra reports whether k is kept by GCRA rather than by a monthly counter.
func (k Kind) gcra() bool { return k == RequestsPerSecond || k == TokensPerMinute }

// period is the time over which a GCRA kind's Limit is counted, in
// nanoseconds.
func (k Kind) period() int64 {
	if k == RequestsPerSecond {
		return int64(time.Second)
	}
	return int64(time.Minute)
}

// Check is one limit a request must pass.
//
// The state of a limit is identified by Kind and Key together, so one key
// such as "org:<id>" may carry a limit of each kind. A monthly key should
// always be checked in the same Location: the month is part of its state,
// and another zone starts another month at another instant.
type Check struct {
	// Key is chosen by the caller, e.g. "org:<id>" or "org:<id>:model:<name>".
	// A limiter keeps it for as long as it keeps the limit's state.
	Key  string
	Kind Kind
	// Limit is the rate for a GCRA kind (requests per second, tokens per
	// minute) and the cap for a monthly kind. A zero Limit lets nothing
	// through at any cost above zero.
	Limit int64
	// Burst is how much a GCRA kind lets through at once; zero means the
	// default of the kind. Monthly kinds ignore it.
	Burst int64
	// Cost is what the request reserves: its worst case of tokens or spend.
	Cost int64
	// Location is the time zone whose calendar months a monthly kind counts;
	// nil means UTC.
	Location *time.Location
}

// Decision is a limiter's answer to a Reserve.
type Decision struct {
	Allowed bool
	// Denied is the index of the first check that refused, -1 when allowed.
	Denied int
	// RetryAfter is, for a refused reservation, the shortest wait after
	// which every check that refused would let the same reservation
	// through, if nothing else were taken meanwhile: for GCRA until enough
	// of the burst is back, for a monthly cap until the month rolls over in
	// the check's Location. Settlements of requests in flight may free room
	// sooner; the limiter cannot promise that. It is zero when the
	// reservation is allowed and when waiting cannot help, because some
	// check's cost exceeds its burst or its monthly cap.
	RetryAfter time.Duration
	// N is the number of checks; Remaining[:N] and Reset[:N] are valid.
	N int
	// Remaining is, per check and after this decision, how much more could
	// be taken now: requests or tokens within the burst, tokens or spend
	// within the monthly cap; never negative. It feeds
	// x-ratelimit-remaining-* headers.
	Remaining [MaxChecks]int64
	// Reset is, per check and after this decision, when the limit is whole
	// again: for GCRA the time until the burst is fully back, for a monthly
	// kind the time until the month rolls over. It feeds
	// x-ratelimit-reset-* headers.
	Reset [MaxChecks]time.Duration
}

// Reservation records what an allowed Reserve took, so that Settle can
// correct it to the actual cost. A refused Reserve returns an empty
// Reservation, which settles to nothing.
//
// A Reservation is settled once, through a pointer to it: Settle marks it
// settled and refuses it again with ErrSettled. A copy made before settling
// is a second claim on the same reservation; do not settle copies.
type Reservation struct {
	n       int
	settled bool
	// open marks a reservation let through without taking anything,
	// because a shared limiter was unavailable and every check fails open;
	// settling it changes nothing.
	open  bool
	taken [MaxChecks]taken
}

// taken is what one check of a Reservation took.
type taken struct {
	key  string
	kind Kind
	// month identifies the calendar month of a monthly kind; zero for GCRA.
	month int32
	// limit is the check's Limit: Settle converts a GCRA cost to time at the
	// rate the reservation was taken at.
	limit int64
	cost  int64
	// end is when the month of a monthly kind ends, in Unix nanoseconds;
	// settling a month that has ended changes nothing.
	end int64
	// idx is where an implementation last stored the state, a hint that
	// saves Settle a look-up; -1 for none.
	idx int32
}

// Len returns the number of checks a Reservation took from: the length
// Settle wants of its actual costs. It is zero for a refused Reserve.
func (r *Reservation) Len() int { return r.n }

// Settled reports whether Settle has accepted r.
func (r *Reservation) Settled() bool { return r.settled }

// Limiter is asked before a model server is called whether a request may go
// ahead, and told afterwards what the request cost.
type Limiter interface {
	// Reserve evaluates every check and, only if all of them pass, takes
	// every cost, atomically. A refused Reserve takes nothing. An error
	// means the checks could not be evaluated (too many, an unknown kind, a
	// negative number); it comes with a zero Decision, and nothing is taken.
	Reserve(ctx context.Context, checks []Check) (Decision, Reservation, error)
	// Settle replaces the costs r reserved by the actual ones, given per
	// check in the order of the Reserve: it gives back what was reserved
	// and not used and takes, without ever refusing, what was used beyond
	// the reservation, since the work is done. A nil actual settles every
	// check at its reserved cost. A GCRA refund moves the theoretical
	// arrival time back, but never before now: time that has passed cannot
	// be given back twice. A month that has ended is not changed.
	//
	// Settle returns ErrSettled for a Reservation it has already settled
	// and changes nothing; it returns another KindInternal error, changing
	// nothing and leaving r unsettled, when actual is not nil and not of
	// r.Len() costs, or holds a negative cost.
	Settle(ctx context.Context, r *Reservation, actual []int64) error
}

// Errors of a Limiter. Each is a *steward.Error of KindInternal, since each
// is a mistake of the caller rather than of the client, allocated once.
var (
	// ErrSettled is returned by Settle for a Reservation already settled.
	ErrSettled  = steward.Internal(errors.New("limits: reservation already settled"))
	errTooMany  = steward.Internal(fmt.Errorf("limits: more than %d checks in one reservation", MaxChecks))
	errKind     = steward.Internal(errors.New("limits: unknown kind of limit"))
	errNegative = steward.Internal(errors.New("limits: negative limit, burst or cost"))
	errActual   = steward.Internal(errors.New("limits: actual costs do not match the reservation"))
)

// mulDiv returns a*b/c rounded down, for a, b >= 0 and c > 0, saturating at
// math.MaxInt64 instead of overflowing: a cost of tokens times a period in
// nanoseconds can exceed 64 bits.
func mulDiv(a, b, c int64) int64 {
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	if hi >= uint64(c) {
		return math.MaxInt64
	}
	q, _ := bits.Div64(hi, lo, uint64(c))
	if q > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(q)
}

// AddSat returns a+b, saturating at math.MaxInt64 rather than wrapping
// round to a negative number, which the limiter refuses; for b >= 0.
func AddSat(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// monthOf returns the calendar month of t in loc, numbered so that months
// compare in order, and when that month ends, in Unix nanoseconds.
func monthOf(t time.Time, loc *time.Location) (month int32, end int64) {
	y, m, _ := t.In(loc).Date()
	return int32(y*12 + int(m) - 1), time.Date(y, m+1, 1, 0, 0, 0, 0, loc).UnixNano()
}
