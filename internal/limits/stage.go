package limits

import (
	"math"
	"time"
)

// stage is the evaluation of one check within a Reserve. Every Limiter
// evaluates checks the same way: prepare works out what each check costs
// and which state it reads, evaluate decides on the stored values, and
// finish turns the outcome into the Decision's headers and a Reservation.
type stage struct {
	k stateKey
	// limit is the check's Limit; cost its Cost (1 for RequestsPerSecond).
	limit, cost int64
	// inc is the cost and tau the burst, as GCRA time.
	inc, tau int64
	// end is when a monthly check's month ends.
	end int64
	// head is the index of the first check with the same state, whose
	// stage carries the state for all of them.
	head int
	// idx is the state's index in a Local's entries, -1 when there is none.
	idx int32
	// old is the stored value before this Reserve and val the value after
	// the checks so far; both are meaningful in a head's stage only.
	old, val int64
	// after is the value this check leaves when the Reserve is allowed.
	after int64
}

// prepare validates checks and works out each one's stage at time t.
func prepare(checks []Check, t time.Time, st *[MaxChecks]stage) error {
	n := len(checks)
	if n > MaxChecks {
		return errTooMany
	}
	var (
		lastLoc   *time.Location
		lastMonth int32
		lastEnd   int64
	)
	for i := range n {
		c, s := &checks[i], &st[i]
		if c.Limit < 0 || c.Burst < 0 || c.Cost < 0 {
			return errNegative
		}
		s.k = stateKey{key: c.Key, kind: c.Kind}
		s.limit, s.cost = c.Limit, c.Cost
		switch c.Kind {
		case RequestsPerSecond, TokensPerMinute:
			burst := c.Burst
			if c.Kind == RequestsPerSecond {
				s.cost = 1
				if burst == 0 {
					burst = max(1, c.Limit)
				}
			} else if burst == 0 {
				burst = c.Limit
			}
			if c.Limit == 0 {
				// Nothing at any cost above zero, and never later.
				if s.cost > 0 {
					s.inc = math.MaxInt64
				}
			} else {
				p := c.Kind.period()
				s.inc = mulDiv(s.cost, p, c.Limit)
				s.tau = mulDiv(burst, p, c.Limit)
			}
		case TokensPerMonth, SpendPerMonth:
			loc := c.Location
			if loc == nil {
				loc = time.UTC
			}
			if loc != lastLoc {
				lastLoc = loc
				lastMonth, lastEnd = monthOf(t, loc)
			}
			s.k.month, s.end = lastMonth, lastEnd
		default:
			return errKind
		}
		s.head = i
		for j := range i {
			if st[j].k == s.k {
				s.head = j
				break
			}
		}
	}
	return nil
}

// evaluate decides the checks at now on the stored values that the heads'
// old and val hold, leaving in val the values an allowed Reserve stores.
// never reports that some refusing check can never pass.
func evaluate(st *[MaxChecks]stage, n int, now int64) (d Decision, never bool) {
	d = Decision{Allowed: true, Denied: -1, N: n}
	for i := range n {
		s := &st[i]
		h := &st[s.head]
		cur := h.val
		next, ok := cur, false
		var wait int64
		if s.k.kind.gcra() {
			level := max(cur-now, 0)
			if s.inc > 0 {
				next = AddSat(max(cur, now), s.inc)
				level = next - now
			}
			switch {
			case level <= s.tau:
				ok = true
			case s.inc > s.tau:
				never = true
			default:
				wait = level - s.tau
			}
		} else {
			next = AddSat(cur, s.cost)
			switch {
			case next <= s.limit:
				ok = true
			case s.cost > s.limit:
				never = true
			default:
				wait = s.end - now
			}
		}
		if ok {
			h.val, s.after = next, next
			continue
		}
		if d.Allowed {
			d.Allowed, d.Denied = false, i
		}
		d.RetryAfter = max(d.RetryAfter, time.Duration(wait))
	}
	return d, never
}

// finish fills d's remaining amounts and resets and returns what an
// allowed d took.
func finish(st *[MaxChecks]stage, n int, now int64, d *Decision, never bool) Reservation {
	if never {
		d.RetryAfter = 0
	}
	var r Reservation
	if d.Allowed {
		r.n = n
	}
	for i := range n {
		s := &st[i]
		v := st[s.head].old
		if d.Allowed {
			v = s.after
			r.taken[i] = taken{key: s.k.key, kind: s.k.kind, month: s.k.month, limit: s.limit, cost: s.cost, end: s.end, idx: st[s.head].idx}
		}
		if s.k.kind.gcra() {
			level := max(v-now, 0)
			d.Reset[i] = time.Duration(level)
			if s.tau > level {
				d.Remaining[i] = mulDiv(s.tau-level, s.limit, s.k.kind.period())
			}
		} else {
			d.Reset[i] = time.Duration(s.end - now)
			d.Remaining[i] = max(s.limit-v, 0)
		}
	}
	return r
}
