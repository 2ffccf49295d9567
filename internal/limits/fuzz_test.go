package limits

import (
	"context"
	"math"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/redistest"
)

// fuzzMonth is how far into March the fuzzed clock starts, and how far it
// may move on: past the month's end, so that months roll over.
const fuzzMonth = int64(40 * 24 * time.Hour)

// FuzzReserveSettle gives a limiter two checks of any kinds, limits,
// bursts, costs and actual costs that are not negative, sharing a state or
// not, at any time of a month, and holds it to what the enforcer relies
// on: it never fails on them (a failure is a 500 for the request), never
// answers a negative amount or wait, never stores a negative value, and
// lets a check whose cost fits its burst or cap pass on a fresh state.
// Negative fuzzed numbers are folded into the range the Limiter accepts.
// Its seed corpus, in testdata/fuzz, runs with every go test, against
// Local and, when STEWARD_TEST_REDIS is set, against Redis.
func FuzzReserveSettle(f *testing.F) {
	const most = math.MaxInt64
	kind := func(k Kind, bits uint8) uint8 { return uint8(k-1) | bits }
	f.Add(kind(SpendPerMonth, 0), int64(9223372036854000000), int64(0), int64(4096), int64(20), kind(TokensPerMonth, 0), int64(most), int64(0), int64(most), int64(most), int64(0), int64(0))
	f.Add(kind(TokensPerMinute, 0), int64(1), int64(0), int64(most), int64(0), kind(RequestsPerSecond, 0), int64(0), int64(0), int64(0), int64(1), int64(0), int64(0))
	f.Add(kind(TokensPerMinute, 0), int64(most), int64(most), int64(most), int64(most), kind(TokensPerMinute, 0x80), int64(most), int64(most), int64(most), int64(most), fuzzMonth-1, int64(most))
	f.Add(kind(SpendPerMonth, 0x40), int64(1e18), int64(0), int64(1e18), int64(most), kind(SpendPerMonth, 0xc0), int64(most), int64(0), int64(1), int64(0), int64(30*24*time.Hour), int64(2*24*time.Hour))
	f.Add(kind(RequestsPerSecond, 0), int64(1e6), int64(0), int64(0), int64(0), kind(TokensPerMinute, 0), int64(1e15), int64(0), int64(1<<40), int64(1<<50), int64(0), int64(time.Minute))

	type backend struct {
		name string
		new  func(clock func() time.Time) Limiter
	}
	backends := []backend{{"local", func(clock func() time.Time) Limiter { return NewLocal(clock) }}}
	if os.Getenv(redistest.Env) != "" {
		client, prefix := redistest.Open(f)
		var n atomic.Int64
		backends = append(backends, backend{"redis", func(clock func() time.Time) Limiter {
			return NewRedis(client, RedisOptions{Prefix: prefix + strconv.FormatInt(n.Add(1), 10) + ":", Clock: clock})
		}})
	}
	kolkata, err := time.LoadLocation("Asia/Kolkata")
	if err != nil {
		f.Fatal(err)
	}

	f.Fuzz(func(t *testing.T, kindA uint8, limitA, burstA, costA, actualA int64, kindB uint8, limitB, burstB, costB, actualB, at, later int64) {
		// check makes a check of one of the four kinds (the low bits of
		// kind), in Kolkata's months when bit 6 is set, under the key "b"
		// unless bit 7 says to share "a".
		check := func(kind uint8, key string, limit, burst, cost int64) Check {
			c := Check{Key: key, Kind: Kind(kind%4 + 1), Limit: fold(limit), Burst: fold(burst), Cost: fold(cost)}
			if kind&0x80 != 0 {
				c.Key = "a"
			}
			if kind&0x40 != 0 {
				c.Location = kolkata
			}
			return c
		}
		checks := []Check{check(kindA&0x7f, "a", limitA, burstA, costA), check(kindB, "b", limitB, burstB, costB)}
		actual := []int64{fold(actualA), fold(actualB)}
		shared := checks[0].Key == checks[1].Key && checks[0].Kind == checks[1].Kind
		for _, b := range backends {
			c := newClock(t0.Add(time.Duration(fold(at) % fuzzMonth)))
			l := b.new(c.Now)
			d, r := fuzzReserve(t, b.name, l, checks)
			if b.name == "local" && !shared {
				for i, ch := range checks {
					if d.Denied == i && fits(ch) {
						t.Fatalf("%s: check %d %+v refused on a fresh state", b.name, i, ch)
					}
				}
			}
			if d.Allowed {
				if err := l.Settle(context.Background(), &r, actual); err != nil {
					t.Fatalf("%s: Settle(%v) of %+v: %v", b.name, actual, checks, err)
				}
			}
			c.Advance(time.Duration(fold(later) % fuzzMonth))
			fuzzReserve(t, b.name, l, checks)
			for _, ch := range checks {
				k := stateKey{key: ch.Key, kind: ch.Kind}
				if !ch.Kind.gcra() {
					loc := ch.Location
					if loc == nil {
						loc = time.UTC
					}
					k.month, _ = monthOf(c.Now(), loc)
				}
				if v := stored(t, l, k); v < 0 {
					t.Fatalf("%s: state %v stored %d", b.name, k, v)
				}
			}
		}
	})
}

// fold maps any int64 onto the numbers a Limiter accepts: not negative.
func fold(v int64) int64 { return v & math.MaxInt64 }

// fits reports whether a check passes on a fresh state: its cost within
// its burst (GCRA at a rate above zero) or its cap (monthly).
func fits(c Check) bool {
	switch c.Kind {
	case RequestsPerSecond:
		return c.Limit > 0
	case TokensPerMinute:
		burst := c.Burst
		if burst == 0 {
			burst = c.Limit
		}
		return c.Limit > 0 && c.Cost <= burst
	default:
		return c.Cost <= c.Limit
	}
}

// fuzzReserve reserves checks and fails t unless the limiter answers
// without an error a decision whose every number is in range.
func fuzzReserve(t *testing.T, name string, l Limiter, checks []Check) (Decision, Reservation) {
	t.Helper()
	d, r, err := l.Reserve(context.Background(), checks)
	if err != nil {
		t.Fatalf("%s: Reserve(%+v): %v", name, checks, err)
	}
	if d.N != len(checks) || d.Allowed != (d.Denied == -1) || d.Denied >= len(checks) || d.RetryAfter < 0 {
		t.Fatalf("%s: Reserve(%+v) = %+v", name, checks, d)
	}
	if want := 0; d.Allowed {
		want = len(checks)
		if r.Len() != want {
			t.Fatalf("%s: an allowed Reserve of %d checks reserved %d", name, want, r.Len())
		}
	} else if r.Len() != want {
		t.Fatalf("%s: a refused Reserve reserved %d checks", name, r.Len())
	}
	for i := range d.N {
		if d.Remaining[i] < 0 || d.Reset[i] < 0 {
			t.Fatalf("%s: Reserve(%+v): check %d remaining %d, reset %v", name, checks, i, d.Remaining[i], d.Reset[i])
		}
	}
	return d, r
}
