package limits

import (
	"context"
	"errors"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stewardhq/steward/internal/steward"
)

// Redis is a Limiter whose state lives in Redis (or Valkey), shared by
// every gateway process that uses the same server and prefix. Each Reserve
// is one Lua script that reads every state the checks name, evaluates them
// in order exactly as Local does, and writes only if all pass, so a
// reservation is all or nothing across processes too; each Settle that
// changes anything is a second script. The Decision's numbers are worked
// out in Go from the values the script read, by the same code as Local's.
//
// Time is the Redis server's (its TIME command) unless a clock is given,
// so that processes whose clocks differ share one timeline. States expire
// in Redis when they stop mattering: a GCRA state at its theoretical
// arrival time, a monthly counter when its month ends.
//
// Numbers: GCRA times are exact to the nanosecond up to about 104 days
// ahead of now; monthly counters are compared exactly up to 2^53 (9e15
// micro-units of spend, 9 billion units of currency) and beyond that only
// approximately.
type Redis struct {
	client redis.UniversalClient
	prefix string
	clock  func() time.Time
	seeded bool
	open   [SpendPerMonth + 1]bool

	reserve, settle *redis.Script
	trips, errs     atomic.Int64
}

// RedisOptions configure a Redis limiter.
type RedisOptions struct {
	// Prefix starts the name of every key the limiter writes; "steward:"
	// when empty.
	Prefix string
	// Clock, when set, replaces the Redis server's time (for tests).
	Clock func() time.Time
	// Seeded says that every monthly counter is started with Seed before
	// it is reserved against: a Reserve that finds a monthly counter
	// missing (Redis restarted and lost it) fails with ErrUnseeded instead
	// of counting from zero, and a Settle leaves a missing counter alone.
	Seeded bool
	// FailOpen lists the kinds of limit that let requests through while
	// Redis cannot be reached. A Reserve whose checks are all of these
	// kinds is then allowed without taking anything; any other fails with
	// a KindUnavailable error.
	FailOpen []Kind
}

var _ Limiter = (*Redis)(nil)

// ErrUnseeded is returned by a seeded Redis limiter's Reserve when a
// monthly counter it needs is missing: Seed it and reserve again.
var ErrUnseeded = &steward.Error{Kind: steward.KindUnavailable, Code: "limits_unavailable", Message: "a monthly counter of the limits is missing and must be started again"}

// NewRedis returns a limiter over client.
func NewRedis(client redis.UniversalClient, o RedisOptions) *Redis {
	l := &Redis{client: client, prefix: o.Prefix, clock: o.Clock, seeded: o.Seeded,
		reserve: redis.NewScript(luaReserve), settle: redis.NewScript(luaSettle)}
	if l.prefix == "" {
		l.prefix = "steward:"
	}
	for _, k := range o.FailOpen {
		if k >= RequestsPerSecond && k <= SpendPerMonth {
			l.open[k] = true
		}
	}
	return l
}

// RedisStats are a Redis limiter's counts since it started.
type RedisStats struct {
	// RoundTrips counts the scripts and commands sent to Redis.
	RoundTrips int64
	// Errors counts those that failed.
	Errors int64
}

// Stats returns the round trips and errors so far.
func (l *Redis) Stats() RedisStats {
	return RedisStats{RoundTrips: l.trips.Load(), Errors: l.errs.Load()}
}

// unavailable wraps a Redis error as the error the gateway answers with.
func unavailable(err error) error {
	return &steward.Error{Kind: steward.KindUnavailable, Code: "limits_unavailable",
		Message: "the rate and spend limits cannot be checked right now (their store, Redis, is unavailable); retry shortly", Err: err}
}

// now returns the time the client side works with: the clock's, or this
// process's as an estimate of the server's.
func (l *Redis) now() time.Time {
	if l.clock != nil {
		return l.clock()
	}
	return time.Now()
}

// nowArg is the script's now argument: "" to use the server's time.
func (l *Redis) nowArg(t time.Time) string {
	if l.clock == nil {
		return ""
	}
	return strconv.FormatInt(t.UnixNano(), 10)
}

// key is the Redis key of a state.
func (l *Redis) key(k stateKey) string {
	var kind string
	switch k.kind {
	case RequestsPerSecond:
		kind = "rps:"
	case TokensPerMinute:
		kind = "tpm:"
	case TokensPerMonth:
		kind = "tmo:"
	default:
		kind = "spm:"
	}
	s := l.prefix + kind + k.key
	if !k.kind.gcra() {
		s += ":" + strconv.Itoa(int(k.month))
	}
	return s
}

func flag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// run runs a script, counting the round trip.
func (l *Redis) run(ctx context.Context, s *redis.Script, keys []string, args []any) (any, error) {
	l.trips.Add(1)
	v, err := s.Run(ctx, l.client, keys, args...).Result()
	if err != nil {
		l.errs.Add(1)
	}
	return v, err
}

// Reserve implements Limiter.
func (l *Redis) Reserve(ctx context.Context, checks []Check) (Decision, Reservation, error) {
	n := len(checks)
	t := l.now()
	var st [MaxChecks]stage
	if err := prepare(checks, t, &st); err != nil {
		return Decision{}, Reservation{}, err
	}
	if n == 0 {
		d, never := evaluate(&st, 0, t.UnixNano())
		return d, finish(&st, 0, t.UnixNano(), &d, never), nil
	}
	var heads [MaxChecks]int
	keys := make([]string, 0, n)
	args := make([]any, 0, 3+5*n)
	args = append(args, l.nowArg(t), flag(l.seeded), n)
	for i := range n {
		s := &st[i]
		s.idx = -1
		if s.head == i {
			heads[i] = len(keys)
			keys = append(keys, l.key(s.k))
		}
		a, b, end := s.cost, s.limit, "0"
		if s.k.kind.gcra() {
			a, b = s.inc, s.tau
		} else {
			end = strconv.FormatInt(s.end, 10)
		}
		args = append(args, heads[s.head]+1, flag(s.k.kind.gcra()), a, b, end)
	}
	v, err := l.run(ctx, l.reserve, keys, args)
	if err != nil {
		return l.failed(&st, n, t, err)
	}
	out, ok := v.([]any)
	if !ok || len(out) != 3+len(keys) && len(out) != 3 {
		return Decision{}, Reservation{}, unavailable(errors.New("limits: unexpected answer from the reserve script"))
	}
	status, _ := out[0].(int64)
	sec, _ := out[1].(int64)
	nsec, _ := out[2].(int64)
	now := sec*int64(time.Second) + nsec
	if status < 0 {
		return Decision{}, Reservation{}, ErrUnseeded
	}
	for i := range n {
		s := &st[i]
		if s.head != i {
			continue
		}
		if str, _ := out[3+heads[i]].(string); str != "" {
			if s.old, err = strconv.ParseInt(str, 10, 64); err != nil {
				return Decision{}, Reservation{}, unavailable(err)
			}
		}
		s.val = s.old
	}
	d, never := evaluate(&st, n, now)
	// The script decided; the evaluation in Go agrees with it except where
	// Lua's doubles round (beyond 2^53), and what was taken is what the
	// script says.
	if allowed := status == 0; allowed != d.Allowed {
		d.Allowed, d.Denied, d.RetryAfter = allowed, int(status)-1, 0
		if allowed {
			d.Denied = -1
		}
	}
	return d, finish(&st, n, now, &d, never), nil
}

// failed answers a Reserve that could not reach Redis: allowed, taking
// nothing, when every check fails open; otherwise an error.
func (l *Redis) failed(st *[MaxChecks]stage, n int, t time.Time, err error) (Decision, Reservation, error) {
	for i := range n {
		if !l.open[st[i].k.kind] {
			return Decision{}, Reservation{}, unavailable(err)
		}
	}
	d := Decision{Allowed: true, Denied: -1, N: n}
	r := finish(st, n, t.UnixNano(), &d, false)
	r.open = true
	return d, r, nil
}

// Seed starts the monthly counter of c's Key and Kind, in the month c's
// Location has now, at used, unless the counter exists already: every
// process may seed, and the first one wins. It reports whether it set the
// counter. While Redis is unavailable it fails for a kind that fails
// closed, and reports nothing set, without an error, for one that fails
// open.
func (l *Redis) Seed(ctx context.Context, c Check, used int64) (bool, error) {
	if c.Kind != TokensPerMonth && c.Kind != SpendPerMonth {
		return false, errKind
	}
	if used < 0 {
		return false, errNegative
	}
	loc := c.Location
	if loc == nil {
		loc = time.UTC
	}
	t := l.now()
	month, end := monthOf(t, loc)
	ttl := time.Duration(end-t.UnixNano()) + time.Millisecond
	l.trips.Add(1)
	set, err := l.client.SetNX(ctx, l.key(stateKey{key: c.Key, kind: c.Kind, month: month}), used, ttl).Result()
	if err != nil {
		l.errs.Add(1)
		if l.open[c.Kind] {
			// Reserve lets this kind through while Redis is away and asks
			// for the counter again (ErrUnseeded) once it is back.
			return false, nil
		}
		return false, unavailable(err)
	}
	return set, nil
}

// Settle implements Limiter.
func (l *Redis) Settle(ctx context.Context, r *Reservation, actual []int64) error {
	if r.settled {
		return ErrSettled
	}
	if actual == nil || r.open {
		r.settled = true
		return nil
	}
	if len(actual) != r.n {
		return errActual
	}
	var keys []string
	var args []any
	for i, a := range actual {
		if a < 0 {
			return errNegative
		}
		tk := &r.taken[i]
		diff := a - tk.cost
		if diff == 0 || tk.kind == RequestsPerSecond || (tk.kind == TokensPerMinute && tk.limit == 0) {
			continue
		}
		op, amt := "m+", diff
		if diff < 0 {
			op, amt = "m-", -diff
		}
		if tk.kind == TokensPerMinute {
			op = "g" + op[1:]
			amt = mulDiv(amt, tk.kind.period(), tk.limit)
		}
		if args == nil {
			t := l.now()
			args = append(args, l.nowArg(t), flag(l.seeded))
		}
		keys = append(keys, l.key(stateKey{key: tk.key, kind: tk.kind, month: tk.month}))
		args = append(args, op, amt, tk.end)
	}
	if len(keys) == 0 {
		r.settled = true
		return nil
	}
	if _, err := l.run(ctx, l.settle, keys, args); err != nil {
		return unavailable(err)
	}
	r.settled = true
	return nil
}
