package limits

import (
	"context"
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

// Reserve implements Limiter. ctx is not used: nothing waits.
func (l *Local) Reserve(_ context.Context, checks []Check) (Decision, Reservation, error) {
	n := len(checks)
	t := l.clock()
	now := t.UnixNano()
	var st [MaxChecks]stage
	if err := prepare(checks, t, &st); err != nil {
		return Decision{}, Reservation{}, err
	}

	l.mu.Lock()
	for i := range n {
		s := &st[i]
		if s.head == i {
			s.idx = -1
			if idx, ok := l.index[s.k]; ok {
				s.idx = idx
				s.old = l.entries[idx].val
			}
			s.val = s.old
		}
	}
	d, never := evaluate(&st, n, now)
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
	return d, finish(&st, n, now, &d, never), nil
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
				v := AddSat(max(e.val, now), mulDiv(diff, t.kind.period(), t.limit))
				e.val, e.exp = v, v
			default:
				v := AddSat(now, mulDiv(diff, t.kind.period(), t.limit))
				l.insert(k, v, v)
			}
		default:
			switch {
			case t.end <= now:
				// The month is over and its counter no longer limits
				// anything; billing is the usage ledger's business.
			case found:
				if diff > 0 {
					e.val = AddSat(e.val, diff)
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
