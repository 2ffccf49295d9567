package limits

import (
	"context"
	"math"
	"strings"
	"sync"
	"time"
)

// Local is a Limiter in process memory, for a single gateway. It is safe
// for concurrent use; one mutex makes each Reserve and Settle atomic, and
// what can be worked out without it (validation, conversions, calendar
// months, the headers' numbers) is worked out before or after holding it.
// Reserve and Settle do not allocate unless a limit is seen for the first
// time or the state is compacted.
//
// GCRA keeps, per limit, a theoretical arrival time (TAT) in nanoseconds.
// A cost of c at rate r over period p moves it by c*p/r rounded down to the
// nanosecond, so a limit may run faster than its rate by under a
// nanosecond per request, a drift of about one request in a billion at
// 1 rps; a burst is never exceeded.
//
// State does not outlive its use: a GCRA state whose TAT has passed is the
// same as none, and a monthly counter is not needed once its month has
// ended. Every Reserve and Settle looks at a few stored states in turn and
// drops those, so the work is spread thinly rather than done in one long
// pause, and the storage is rebuilt smaller once three quarters of it is
// unused.
type Local struct {
	clock func() time.Time

	mu sync.Mutex
	// index finds a limit's state in entries.
	index map[stateKey]int32
	// entries holds the states densely, so that the sweep can walk them
	// with a cursor and drop one by moving the last into its place.
	entries []entry
	cursor  int
}

// stateKey identifies one state: a GCRA limit, or a monthly counter of one
// month.
type stateKey struct {
	key   string
	month int32
	kind  Kind
}

// entry is one state. For GCRA val is the TAT; for a monthly kind it is the
// counter. exp is when the state can be dropped: the TAT, or the month's
// end.
type entry struct {
	k        stateKey
	val, exp int64
}

const (
	// sweepStep is how many states each call looks at for dropping. Any
	// value above one keeps the stored states within a constant factor of
	// the live ones, since each call adds at most MaxChecks.
	sweepStep = 4
	// minEntries is the capacity below which the storage is not rebuilt.
	minEntries = 64
)

var _ Limiter = (*Local)(nil)

// NewLocal returns an empty Local reading time from clock, or from
// time.Now when clock is nil.
func NewLocal(clock func() time.Time) *Local {
	if clock == nil {
		clock = time.Now
	}
	return &Local{clock: clock, index: map[stateKey]int32{}}
}

// stage is the evaluation of one check within a Reserve.
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
	// idx is the state's index in entries, -1 when there is none.
	idx int32
	// old is the stored value before this Reserve and val the value after
	// the checks so far; both are meaningful in a head's stage only.
	old, val int64
	// after is the value this check leaves when the Reserve is allowed.
	after int64
}

// Reserve implements Limiter. ctx is not used: nothing waits.
func (l *Local) Reserve(_ context.Context, checks []Check) (Decision, Reservation, error) {
	n := len(checks)
	if n > MaxChecks {
		return Decision{}, Reservation{}, errTooMany
	}
	t := l.clock()
	now := t.UnixNano()
	var st [MaxChecks]stage
	var (
		lastLoc   *time.Location
		lastMonth int32
		lastEnd   int64
	)
	for i := range n {
		c, s := &checks[i], &st[i]
		if c.Limit < 0 || c.Burst < 0 || c.Cost < 0 {
			return Decision{}, Reservation{}, errNegative
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
			return Decision{}, Reservation{}, errKind
		}
		s.head = i
		for j := range i {
			if st[j].k == s.k {
				s.head = j
				break
			}
		}
	}

	d := Decision{Allowed: true, Denied: -1, N: n}
	var never bool
	l.mu.Lock()
	for i := range n {
		s := &st[i]
		h := &st[s.head]
		if s.head == i {
			s.idx = -1
			if idx, ok := l.index[s.k]; ok {
				s.idx = idx
				s.old = l.entries[idx].val
			}
			s.val = s.old
		}
		cur := h.val
		next, ok := cur, false
		var wait int64
		if s.k.kind.gcra() {
			level := max(cur-now, 0)
			if s.inc > 0 {
				next = addSat(max(cur, now), s.inc)
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
			next = addSat(cur, s.cost)
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
	if d.Allowed {
		for i := range n {
			s := &st[i]
			if s.head != i || s.val == s.old {
				continue
			}
			exp := s.val
			if !s.k.kind.gcra() {
				exp = s.end
			}
			if s.idx >= 0 {
				e := &l.entries[s.idx]
				e.val, e.exp = s.val, exp
			} else {
				s.idx = l.insert(s.k, s.val, exp)
			}
		}
	}
	l.sweep(now)
	l.mu.Unlock()

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
	return d, r, nil
}

// Settle implements Limiter. ctx is not used: nothing waits.
func (l *Local) Settle(_ context.Context, r *Reservation, actual []int64) error {
	if r.settled {
		return ErrSettled
	}
	if actual == nil {
		r.settled = true
		return nil
	}
	if len(actual) != r.n {
		return errActual
	}
	changed := false
	for i, a := range actual {
		if a < 0 {
			return errNegative
		}
		if a != r.taken[i].cost && r.taken[i].kind != RequestsPerSecond {
			changed = true
		}
	}
	r.settled = true
	if !changed {
		return nil
	}
	now := l.clock().UnixNano()
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, a := range actual {
		t := &r.taken[i]
		diff := a - t.cost
		if diff == 0 || t.kind == RequestsPerSecond {
			continue
		}
		k := stateKey{key: t.key, kind: t.kind, month: t.month}
		idx, found := l.find(k, t.idx)
		var e *entry
		if found {
			e = &l.entries[idx]
		}
		switch t.kind {
		case TokensPerMinute:
			switch {
			case t.limit == 0:
				// Nothing was taken at a zero rate, so there is nothing
				// to correct.
			case diff < 0:
				if found && e.val > now {
					v := max(e.val-mulDiv(-diff, t.kind.period(), t.limit), now)
					e.val, e.exp = v, v
				}
			case found:
				v := addSat(max(e.val, now), mulDiv(diff, t.kind.period(), t.limit))
				e.val, e.exp = v, v
			default:
				v := addSat(now, mulDiv(diff, t.kind.period(), t.limit))
				l.insert(k, v, v)
			}
		default:
			switch {
			case t.end <= now:
				// The month is over and its counter no longer limits
				// anything; billing is the usage ledger's business.
			case found:
				if diff > 0 {
					e.val = addSat(e.val, diff)
				} else {
					e.val = max(e.val+diff, 0)
				}
			case diff > 0:
				l.insert(k, diff, t.end)
			}
		}
	}
	l.sweep(now)
	return nil
}

// find returns the index of a state in entries, trying hint first: where
// Reserve left the state, which is still right unless a sweep moved it.
// Checking the hint costs a comparison of keys, less than a look-up.
func (l *Local) find(k stateKey, hint int32) (int32, bool) {
	if hint >= 0 && int(hint) < len(l.entries) && l.entries[hint].k == k {
		return hint, true
	}
	idx, ok := l.index[k]
	return idx, ok
}

// insert adds a state that is not stored yet and returns its index. The
// key is copied, so that a key cut out of a larger string does not keep
// that string alive for as long as the state lives.
func (l *Local) insert(k stateKey, val, exp int64) int32 {
	k.key = strings.Clone(k.key)
	idx := int32(len(l.entries))
	l.index[k] = idx
	l.entries = append(l.entries, entry{k: k, val: val, exp: exp})
	return idx
}

// sweep looks at the next few states and drops those that have expired,
// then rebuilds the storage if most of it is unused. Indices into entries
// taken before a sweep are invalid after it.
func (l *Local) sweep(now int64) {
	for range sweepStep {
		if len(l.entries) == 0 {
			l.cursor = 0
			break
		}
		if l.cursor >= len(l.entries) {
			l.cursor = 0
		}
		if l.entries[l.cursor].exp > now {
			l.cursor++
			continue
		}
		last := len(l.entries) - 1
		delete(l.index, l.entries[l.cursor].k)
		if l.cursor != last {
			l.entries[l.cursor] = l.entries[last]
			l.index[l.entries[l.cursor].k] = int32(l.cursor)
		}
		l.entries[last] = entry{}
		l.entries = l.entries[:last]
	}
	if c := cap(l.entries); c > minEntries && len(l.entries) < c/4 {
		l.compact()
	}
}

// compact moves the states to storage sized for them: Go maps and slices
// keep their largest size, so without this a burst of distinct keys would
// hold its memory after the keys went idle. It costs time in proportion to
// the states left, a quarter at most of those dropped since the last time.
func (l *Local) compact() {
	entries := make([]entry, len(l.entries), max(2*len(l.entries), minEntries))
	copy(entries, l.entries)
	index := make(map[stateKey]int32, len(entries))
	for i := range entries {
		index[entries[i].k] = int32(i)
	}
	l.entries, l.index, l.cursor = entries, index, 0
}
