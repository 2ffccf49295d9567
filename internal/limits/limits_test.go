package limits

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	_ "time/tzdata"

	"github.com/redis/go-redis/v9"

	"github.com/stewardhq/steward/internal/redistest"
	"github.com/stewardhq/steward/internal/steward"
)

// fakeClock is a clock the test moves; it never sleeps.
type fakeClock struct{ ns atomic.Int64 }

func newClock(t time.Time) *fakeClock {
	c := &fakeClock{}
	c.ns.Store(t.UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time                  { return time.Unix(0, c.ns.Load()).UTC() }
func (c *fakeClock) Advance(d time.Duration)         { c.ns.Add(int64(d)) }
func (c *fakeClock) Set(t time.Time)                 { c.ns.Store(t.UnixNano()) }
func (c *fakeClock) Until(t time.Time) time.Duration { return t.Sub(c.Now()) }

var t0 = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

// newLimiter returns an empty limiter reading time from clock.
type newLimiter func(clock func() time.Time) Limiter

// backends runs fn against each Limiter: Local, and Redis when a test
// server is available, each limiter it makes under a key prefix of its own.
func backends(t *testing.T, fn func(t *testing.T, newL newLimiter)) {
	t.Run("local", func(t *testing.T) {
		fn(t, func(clock func() time.Time) Limiter { return NewLocal(clock) })
	})
	t.Run("redis", func(t *testing.T) {
		client, prefix := redistest.Open(t)
		n := 0
		fn(t, func(clock func() time.Time) Limiter {
			n++
			return NewRedis(client, RedisOptions{Prefix: prefix + strconv.Itoa(n) + ":", Clock: clock})
		})
	})
}

// snapshot lists a limiter's stored states, sorted.
func snapshot(t *testing.T, l Limiter) []string {
	t.Helper()
	var out []string
	switch l := l.(type) {
	case *Local:
		l.mu.Lock()
		for _, e := range l.entries {
			out = append(out, fmt.Sprintf("%v", e))
		}
		l.mu.Unlock()
	case *Redis:
		ctx := context.Background()
		keys, err := l.client.Keys(ctx, l.prefix+"*").Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			v, err := l.client.Get(ctx, k).Result()
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, k+"="+v)
		}
	}
	slices.Sort(out)
	return out
}

// stored returns the value of one state, 0 for none.
func stored(t *testing.T, l Limiter, k stateKey) int64 {
	t.Helper()
	switch l := l.(type) {
	case *Local:
		l.mu.Lock()
		defer l.mu.Unlock()
		if i, ok := l.index[k]; ok {
			return l.entries[i].val
		}
	case *Redis:
		v, err := l.client.Get(context.Background(), l.key(k)).Int64()
		if err != nil && !errors.Is(err, redis.Nil) {
			t.Fatal(err)
		}
		return v
	}
	return 0
}

func reserve(t *testing.T, l Limiter, checks ...Check) (Decision, Reservation) {
	t.Helper()
	d, r, err := l.Reserve(context.Background(), checks)
	if err != nil {
		t.Fatalf("Reserve: %v", err)
	}
	if d.Allowed != (d.Denied == -1) {
		t.Fatalf("Allowed %v with Denied %d", d.Allowed, d.Denied)
	}
	if !d.Allowed && r.Len() != 0 {
		t.Fatalf("a refused Reserve returned a reservation of %d checks", r.Len())
	}
	return d, r
}

func mustAllow(t *testing.T, l Limiter, checks ...Check) (Decision, Reservation) {
	t.Helper()
	d, r := reserve(t, l, checks...)
	if !d.Allowed {
		t.Fatalf("refused by check %d, retry after %v; want allowed", d.Denied, d.RetryAfter)
	}
	return d, r
}

func mustDeny(t *testing.T, l Limiter, denied int, retry time.Duration, checks ...Check) Decision {
	t.Helper()
	d, _ := reserve(t, l, checks...)
	if d.Allowed || d.Denied != denied || d.RetryAfter != retry {
		t.Fatalf("got allowed %v, denied %d, retry after %v; want denied %d, retry after %v", d.Allowed, d.Denied, d.RetryAfter, denied, retry)
	}
	return d
}

func settle(t *testing.T, l Limiter, r *Reservation, actual ...int64) {
	t.Helper()
	if err := l.Settle(context.Background(), r, actual); err != nil {
		t.Fatalf("Settle: %v", err)
	}
}

func rps(key string, limit int64) Check {
	return Check{Key: key, Kind: RequestsPerSecond, Limit: limit}
}

func tpm(key string, limit, cost int64) Check {
	return Check{Key: key, Kind: TokensPerMinute, Limit: limit, Cost: cost}
}

func monthly(kind Kind, key string, limit, cost int64, loc *time.Location) Check {
	return Check{Key: key, Kind: kind, Limit: limit, Cost: cost, Location: loc}
}

func TestRequestsPerSecondBurst(t *testing.T) {
	backends(t, func(t *testing.T, newL newLimiter) {
		c := newClock(t0)
		l := newL(c.Now)
		org := rps("org:1", 10)
		for i := range 10 {
			d, _ := mustAllow(t, l, org)
			if d.N != 1 || d.Remaining[0] != int64(9-i) || d.Reset[0] != time.Duration(i+1)*100*time.Millisecond {
				t.Fatalf("request %d: remaining %d, reset %v", i, d.Remaining[0], d.Reset[0])
			}
		}
		d := mustDeny(t, l, 0, 100*time.Millisecond, org)
		if d.Remaining[0] != 0 || d.Reset[0] != time.Second {
			t.Fatalf("refused: remaining %d, reset %v; want 0, 1s", d.Remaining[0], d.Reset[0])
		}
		c.Advance(99 * time.Millisecond)
		mustDeny(t, l, 0, time.Millisecond, org)
		c.Advance(time.Millisecond)
		mustAllow(t, l, org)
		mustDeny(t, l, 0, 100*time.Millisecond, org)

		// The limit is per key: another Organization has its own burst.
		for range 10 {
			mustAllow(t, l, rps("org:2", 10))
		}
	})
}

func TestRequestsPerSecondSteadyStream(t *testing.T) {
	backends(t, func(t *testing.T, newL newLimiter) {
		t.Run("saturated", func(t *testing.T) {
			// Three tries every 10ms for 10s: the burst, then one per 100ms.
			c := newClock(t0)
			l := newL(c.Now)
			allowed := 0
			for tick := 0; tick <= 1000; tick++ {
				c.Set(t0.Add(time.Duration(tick) * 10 * time.Millisecond))
				for range 3 {
					if d, _ := reserve(t, l, rps("org:1", 10)); d.Allowed {
						allowed++
					}
				}
			}
			if allowed != 10+100 {
				t.Fatalf("allowed %d over 10s; want 110 (burst 10 + 10 rps × 10s)", allowed)
			}
		})
		t.Run("at the rate", func(t *testing.T) {
			c := newClock(t0)
			l := newL(c.Now)
			for i := range 100 {
				c.Set(t0.Add(time.Duration(i) * 100 * time.Millisecond))
				if d, _ := reserve(t, l, rps("org:1", 10)); !d.Allowed {
					t.Fatalf("request %d at exactly 10 rps was refused", i)
				}
			}
		})
		t.Run("explicit burst and fractional interval", func(t *testing.T) {
			// 3 rps: 333333333.3ns per request; a burst of 3 must still pass.
			c := newClock(t0)
			l := newL(c.Now)
			ch := rps("org:1", 3)
			for range 3 {
				mustAllow(t, l, ch)
			}
			// Each interval is rounded down to 333333333ns, so the three took
			// 999999999ns of a 1s burst and the fourth waits a nanosecond less
			// than an exact interval.
			mustDeny(t, l, 0, 333333332, ch)
			c.Advance(333333331)
			mustDeny(t, l, 0, 1, ch)
			c.Advance(1)
			mustAllow(t, l, ch)
			ch.Burst = 1
			ch.Key = "org:2"
			mustAllow(t, l, ch)
			mustDeny(t, l, 0, 333333333, ch)
		})
	})
}

func TestTokensPerMinute(t *testing.T) {
	backends(t, func(t *testing.T, newL newLimiter) {
		c := newClock(t0)
		l := newL(c.Now)
		// 6000 a minute is one token every 10ms.
		d, _ := mustAllow(t, l, tpm("model:a", 6000, 4000))
		if d.Remaining[0] != 2000 || d.Reset[0] != 40*time.Second {
			t.Fatalf("remaining %d, reset %v; want 2000, 40s", d.Remaining[0], d.Reset[0])
		}
		mustAllow(t, l, tpm("model:a", 6000, 2000))
		mustDeny(t, l, 0, 10*time.Millisecond, tpm("model:a", 6000, 1))
		// More than the burst can never pass.
		mustDeny(t, l, 0, 0, tpm("model:a", 6000, 6001))
		c.Advance(30 * time.Second)
		mustAllow(t, l, tpm("model:a", 6000, 3000))
		mustDeny(t, l, 0, 10*time.Millisecond, tpm("model:a", 6000, 1))

		// A smaller burst than the minute's limit.
		ch := tpm("model:b", 6000, 1000)
		ch.Burst = 1000
		mustAllow(t, l, ch)
		ch.Cost = 1
		mustDeny(t, l, 0, 10*time.Millisecond, ch)

		// A zero limit refuses every token, for good, but not a request of none.
		mustDeny(t, l, 0, 0, tpm("model:c", 0, 1))
		mustAllow(t, l, tpm("model:c", 0, 0))
	})
}

func TestMonthlyCaps(t *testing.T) {
	backends(t, func(t *testing.T, newL newLimiter) {
		c := newClock(t0)
		l := newL(c.Now)
		april := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)

		tok := func(cost int64) Check { return monthly(TokensPerMonth, "org:1", 1000, cost, nil) }
		d, _ := mustAllow(t, l, tok(400))
		if d.Remaining[0] != 600 || d.Reset[0] != c.Until(april) {
			t.Fatalf("remaining %d, reset %v; want 600, %v", d.Remaining[0], d.Reset[0], c.Until(april))
		}
		mustAllow(t, l, tok(600))
		mustDeny(t, l, 0, c.Until(april), tok(1))
		mustDeny(t, l, 0, 0, tok(1001))

		// Spend on the same key is a separate limit, in micro-units.
		const cap500 = 500_000_000
		spend := func(cost int64) Check { return monthly(SpendPerMonth, "org:1", cap500, cost, nil) }
		mustAllow(t, l, spend(cap500-1))
		mustAllow(t, l, spend(1))
		mustDeny(t, l, 0, c.Until(april), spend(1))

		c.Set(april.Add(-1))
		mustDeny(t, l, 0, 1, tok(1))
		c.Set(april)
		d, _ = mustAllow(t, l, tok(1000), spend(cap500))
		if d.Remaining[0] != 0 || d.Remaining[1] != 0 || d.Reset[0] != 30*24*time.Hour {
			t.Fatalf("new month: remaining %v, reset %v", d.Remaining[:2], d.Reset[0])
		}
	})
}

func TestMonthRollsOverInLocation(t *testing.T) {
	backends(t, func(t *testing.T, newL newLimiter) {
		t.Run("fixed zone", func(t *testing.T) {
			plus10 := time.FixedZone("UTC+10", 10*3600)
			// 23:00 on 31 January at UTC+10, 13:00 in UTC.
			c := newClock(time.Date(2026, 1, 31, 13, 0, 0, 0, time.UTC))
			l := newL(c.Now)
			east := monthly(TokensPerMonth, "org:east", 100, 100, plus10)
			utc := monthly(TokensPerMonth, "org:utc", 100, 100, nil)
			mustAllow(t, l, east, utc)
			mustDeny(t, l, 0, time.Hour, east)
			mustDeny(t, l, 0, 11*time.Hour, utc)
			c.Advance(time.Hour)
			mustAllow(t, l, east)
			mustDeny(t, l, 0, 10*time.Hour, utc)
			c.Advance(10 * time.Hour)
			mustAllow(t, l, utc)
		})
		t.Run("daylight saving", func(t *testing.T) {
			ny, err := time.LoadLocation("America/New_York")
			if err != nil {
				t.Fatal(err)
			}
			// 1 November 2026 starts at 04:00 UTC (EDT); 1 December at 05:00
			// UTC (EST), since daylight saving ends on 1 November.
			c := newClock(time.Date(2026, 10, 31, 12, 0, 0, 0, time.UTC))
			l := newL(c.Now)
			ch := monthly(SpendPerMonth, "ws:1", 1_000_000, 1_000_000, ny)
			mustAllow(t, l, ch)
			mustDeny(t, l, 0, 16*time.Hour, ch)
			c.Set(time.Date(2026, 11, 1, 3, 59, 59, 0, time.UTC))
			mustDeny(t, l, 0, time.Second, ch)
			c.Advance(time.Second)
			d, _ := mustAllow(t, l, ch)
			if want := 30*24*time.Hour + time.Hour; d.Reset[0] != want {
				t.Fatalf("reset %v; want %v", d.Reset[0], want)
			}
		})
	})
}

func TestAllOrNothing(t *testing.T) {
	backends(t, func(t *testing.T, newL newLimiter) {
		c := newClock(t0)
		l := newL(c.Now)
		april := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
		mustAllow(t, l, monthly(SpendPerMonth, "ws:1", 100, 50, nil))

		checks := []Check{
			{Key: "org:1", Kind: RequestsPerSecond, Limit: 1},
			tpm("org:1:model:a", 1000, 1000),
			monthly(SpendPerMonth, "ws:1", 100, 60, nil),
		}
		d := mustDeny(t, l, 2, c.Until(april), checks...)
		// The headers describe the state, which nothing changed.
		if want := [3]int64{1, 1000, 50}; [3]int64(d.Remaining[:3]) != want {
			t.Fatalf("remaining %v; want %v", d.Remaining[:3], want)
		}
		// Fits only if the refused reservation took nothing: one request of a
		// burst of one, the whole minute's tokens and the rest of the month.
		checks[2].Cost = 50
		mustAllow(t, l, checks...)
	})
}

func TestRetryAfterCombines(t *testing.T) {
	backends(t, func(t *testing.T, newL newLimiter) {
		c := newClock(t0)
		l := newL(c.Now)
		april := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
		mustAllow(t, l, tpm("m", 6000, 6000), monthly(TokensPerMonth, "o", 10, 10, nil))

		// Both refuse: the wait is the longer one, after which both pass.
		mustDeny(t, l, 0, c.Until(april), tpm("m", 6000, 100), monthly(TokensPerMonth, "o", 10, 1, nil))
		// One can never pass: no wait helps.
		mustDeny(t, l, 0, 0, tpm("m", 6000, 100), monthly(TokensPerMonth, "o", 10, 11, nil))
		// The first check passes, the second is the one denied.
		mustDeny(t, l, 1, time.Second, rps("r", 1), tpm("m", 6000, 100))
	})
}

func TestDuplicateKeysInOneReserve(t *testing.T) {
	backends(t, func(t *testing.T, newL newLimiter) {
		c := newClock(t0)
		l := newL(c.Now)
		ch := Check{Key: "org:1", Kind: RequestsPerSecond, Limit: 5, Burst: 1}
		mustDeny(t, l, 1, 200*time.Millisecond, ch, ch)
		mustAllow(t, l, ch)

		sp := monthly(SpendPerMonth, "org:1", 100, 60, nil)
		mustDeny(t, l, 1, c.Until(time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)), sp, sp)
		sp.Cost = 50
		_, r := mustAllow(t, l, sp, sp)
		settle(t, l, &r, 10, 20)
		sp.Cost = 70
		mustAllow(t, l, sp)
		sp.Cost = 1
		mustDeny(t, l, 0, c.Until(time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)), sp)
	})
}

func TestSettle(t *testing.T) {
	backends(t, func(t *testing.T, newL newLimiter) {
		ctx := context.Background()
		spend := func(cost int64) Check { return monthly(SpendPerMonth, "org:1", 1000, cost, nil) }

		t.Run("gives back unused", func(t *testing.T) {
			c := newClock(t0)
			l := newL(c.Now)
			_, r := mustAllow(t, l, tpm("m", 1000, 1000), spend(1000))
			settle(t, l, &r, 100, 100)
			d, _ := mustAllow(t, l, tpm("m", 1000, 900), spend(900))
			if d.Remaining[0] != 0 || d.Remaining[1] != 0 {
				t.Fatalf("remaining %v; want none", d.Remaining[:2])
			}
			mustDeny(t, l, 0, 60*time.Millisecond, tpm("m", 1000, 1))
			mustDeny(t, l, 0, c.Until(time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)), spend(1))
		})
		t.Run("takes extra", func(t *testing.T) {
			c := newClock(t0)
			l := newL(c.Now)
			_, r := mustAllow(t, l, tpm("m", 1000, 100), spend(100))
			settle(t, l, &r, 300, 300)
			d, _ := mustAllow(t, l, tpm("m", 1000, 0), spend(0))
			if d.Remaining[0] != 700 || d.Remaining[1] != 700 {
				t.Fatalf("remaining %v; want 700 each", d.Remaining[:2])
			}
			// Beyond the burst and the cap: taken anyway, and then owed.
			_, r = mustAllow(t, l, tpm("m", 1000, 700), spend(700))
			settle(t, l, &r, 1700, 5000)
			// 300 + 1700 tokens is 120s of a 60s burst; one more token waits
			// 60s plus its own 60ms.
			mustDeny(t, l, 0, 60*time.Second+60*time.Millisecond, tpm("m", 1000, 1))
			mustDeny(t, l, 0, c.Until(time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)), spend(0))
		})
		t.Run("refund never before now", func(t *testing.T) {
			c := newClock(t0)
			l := newL(c.Now)
			_, r := mustAllow(t, l, tpm("m", 1000, 1000))
			c.Advance(30 * time.Second)
			// Half the reservation has drained: giving back all of it empties
			// the bucket, and no more than a whole burst is then available.
			settle(t, l, &r, 0)
			mustAllow(t, l, tpm("m", 1000, 1000))
			mustDeny(t, l, 0, 60*time.Millisecond, tpm("m", 1000, 1))
		})
		t.Run("requests are not given back", func(t *testing.T) {
			c := newClock(t0)
			l := newL(c.Now)
			_, r := mustAllow(t, l, rps("org:1", 1))
			settle(t, l, &r, 0)
			mustDeny(t, l, 0, time.Second, rps("org:1", 1))
		})
		t.Run("twice does not double count", func(t *testing.T) {
			c := newClock(t0)
			l := newL(c.Now)
			_, r := mustAllow(t, l, spend(1000))
			settle(t, l, &r, 100)
			if err := l.Settle(ctx, &r, []int64{100}); !errors.Is(err, ErrSettled) || !steward.IsKind(err, steward.KindInternal) {
				t.Fatalf("second Settle: %v; want ErrSettled", err)
			}
			if err := l.Settle(ctx, &r, []int64{0}); !errors.Is(err, ErrSettled) {
				t.Fatalf("third Settle: %v; want ErrSettled", err)
			}
			mustAllow(t, l, spend(900))
			mustDeny(t, l, 0, c.Until(time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)), spend(1))
		})
		t.Run("unchanged is a no-op", func(t *testing.T) {
			// Redis expires a rate's state in real time when its bucket
			// would be full again (here after 1 s and 6 s), whatever the
			// fake clock says: the snapshots compared are taken well
			// within that, and the second part starts a limiter of its
			// own, so that no state expires between or during them.
			c := newClock(t0)
			l := newL(c.Now)
			_, r := mustAllow(t, l, rps("o", 1), tpm("m", 1000, 100), spend(100))
			before := snapshot(t, l)
			c.Advance(time.Second)
			settle(t, l, &r, 5, 100, 100)
			if !slices.Equal(before, snapshot(t, l)) || !r.Settled() {
				t.Fatalf("settling the reserved costs changed the state")
			}
			l = newL(c.Now)
			_, r = mustAllow(t, l, spend(100))
			before = snapshot(t, l)
			settle(t, l, &r)
			if !slices.Equal(before, snapshot(t, l)) || !r.Settled() {
				t.Fatalf("settling nil changed the state")
			}
			var refused Reservation
			settle(t, l, &refused)
		})
		t.Run("errors leave it unsettled", func(t *testing.T) {
			c := newClock(t0)
			l := newL(c.Now)
			_, r := mustAllow(t, l, spend(1000))
			for _, actual := range [][]int64{{}, {1, 2}, {-1}} {
				if err := l.Settle(ctx, &r, actual); err == nil || errors.Is(err, ErrSettled) || r.Settled() {
					t.Fatalf("Settle(%v): %v, settled %v", actual, err, r.Settled())
				}
			}
			settle(t, l, &r, 0)
			mustAllow(t, l, spend(1000))
		})
		t.Run("after a sweep moved the state", func(t *testing.T) {
			c := newClock(t0)
			l := newL(c.Now)
			mustAllow(t, l, rps("x", 10))
			_, r := mustAllow(t, l, spend(1000))
			c.Advance(time.Second)
			mustAllow(t, l, tpm("m", 1000, 0))
			// Redis expires the state by its own clock, not the test's.
			if lo, ok := l.(*Local); ok && (len(lo.entries) != 1 || lo.entries[0].k.key != "org:1") {
				t.Fatalf("the sweep left %v", lo.entries)
			}
			settle(t, l, &r, 100)
			mustAllow(t, l, spend(900))
			mustDeny(t, l, 0, c.Until(time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)), spend(1))
		})
		t.Run("from nothing reserved", func(t *testing.T) {
			c := newClock(t0)
			l := newL(c.Now)
			_, r := mustAllow(t, l, tpm("m", 1000, 0), spend(0))
			if st := snapshot(t, l); len(st) != 0 {
				t.Fatalf("reserving nothing stored %v", st)
			}
			settle(t, l, &r, 400, 400)
			mustAllow(t, l, tpm("m", 1000, 600), spend(600))
			mustDeny(t, l, 0, 60*time.Millisecond, tpm("m", 1000, 1))
		})
		t.Run("a month that ended is left alone", func(t *testing.T) {
			c := newClock(t0)
			l := newL(c.Now)
			_, r := mustAllow(t, l, spend(100))
			c.Set(time.Date(2026, 4, 2, 0, 0, 0, 0, time.UTC))
			settle(t, l, &r, 900)
			mustAllow(t, l, spend(1000))
		})
	})
}

func TestReserveErrors(t *testing.T) {
	backends(t, func(t *testing.T, newL newLimiter) {
		l := newL(newClock(t0).Now)
		ok := rps("o", 1)
		for name, checks := range map[string][]Check{
			"too many":      slices.Repeat([]Check{ok}, MaxChecks+1),
			"no kind":       {ok, {Key: "x", Limit: 1}},
			"unknown kind":  {{Key: "x", Kind: SpendPerMonth + 1, Limit: 1}},
			"negative cost": {ok, tpm("m", 10, -1)},
			"negative cap":  {monthly(SpendPerMonth, "s", -1, 0, nil)},
		} {
			d, r, err := l.Reserve(context.Background(), checks)
			if !steward.IsKind(err, steward.KindInternal) || d.Allowed || r.Len() != 0 {
				t.Errorf("%s: %v, allowed %v", name, err, d.Allowed)
			}
		}
		// Nothing was taken by the calls that failed.
		mustAllow(t, l, ok)
		if d, _ := mustAllow(t, l); d.N != 0 {
			t.Fatalf("no checks: N %d", d.N)
		}
	})
}

func TestHugeNumbersSaturate(t *testing.T) {
	backends(t, func(t *testing.T, newL newLimiter) {
		c := newClock(t0)
		l := newL(c.Now)
		// A cost whose time overflows 64 bits can never pass.
		mustDeny(t, l, 0, 0, tpm("m", 1, math.MaxInt64))
		_, r := mustAllow(t, l, tpm("m", 1, 1), monthly(SpendPerMonth, "s", math.MaxInt64, math.MaxInt64-1, nil))
		settle(t, l, &r, math.MaxInt64, math.MaxInt64)
		// The debt of MaxInt64 tokens saturates instead of wrapping round.
		d, _ := reserve(t, l, tpm("m", 1, 1), monthly(SpendPerMonth, "s", math.MaxInt64, 0, nil))
		if d.Allowed || d.Denied != 0 || d.RetryAfter < 100*365*24*time.Hour || d.Remaining[0] != 0 || d.Remaining[1] != 0 || d.Reset[0] <= 0 {
			t.Fatalf("after a saturating debt: %+v", d)
		}
		if RequestsPerSecond.String() != "requests per second" || Kind(0).String() != "limits.Kind(0)" {
			t.Fatalf("kind names %q, %q", RequestsPerSecond, Kind(0))
		}
	})
}

func TestConcurrentSpend(t *testing.T) {
	backends(t, func(t *testing.T, newL newLimiter) {
		const (
			workers = 64
			tries   = 300
			limit   = 2_000_000
		)
		for _, settling := range []bool{false, true} {
			c := newClock(t0)
			l := newL(c.Now)
			var mu sync.Mutex
			var reserved, used int64
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					rnd := rand.New(rand.NewPCG(uint64(w), 1))
					checks := []Check{
						rps("org:1", 1_000_000_000),
						monthly(SpendPerMonth, "org:1", limit, 0, nil),
					}
					for range tries {
						checks[1].Cost = 1 + rnd.Int64N(1000)
						d, r, err := l.Reserve(context.Background(), checks)
						if err != nil {
							t.Error(err)
							return
						}
						if !d.Allowed {
							continue
						}
						actual := checks[1].Cost
						if settling {
							// Mostly less than reserved, sometimes more.
							actual = rnd.Int64N(checks[1].Cost * 11 / 10)
							if err := l.Settle(context.Background(), &r, []int64{1, actual}); err != nil {
								t.Error(err)
								return
							}
						}
						mu.Lock()
						reserved += checks[1].Cost
						used += actual
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			counter := stored(t, l, stateKey{key: "org:1", kind: SpendPerMonth, month: 2026*12 + 2})
			// Every try fits while 1000 are left, and the tries ask for far
			// more than the cap: so the cap fills to within 1000, never beyond.
			if !settling && (reserved > limit || reserved < limit-999) {
				t.Fatalf("reserved %d against a cap of %d", reserved, limit)
			}
			if counter != used {
				t.Fatalf("settling %v: counter %d; want the sum of actual costs %d", settling, counter, used)
			}
		}
	})
}

func TestSweepDropsIdleState(t *testing.T) {
	c := newClock(t0)
	l := NewLocal(c.Now)
	const keys = 5000
	for i := range keys {
		k := "key:" + strconv.Itoa(i)
		mustAllow(t, l, rps(k, 10), monthly(SpendPerMonth, k, 100, 1, nil))
	}
	if len(l.index) != 2*keys {
		t.Fatalf("%d states for %d keys", len(l.index), 2*keys)
	}
	peak := cap(l.entries)

	// A debt that lasts 100000 minutes outlives the move to April.
	_, r := mustAllow(t, l, tpm("debtor", 1, 1))
	settle(t, l, &r, 100_000)
	c.Set(time.Date(2026, 4, 2, 0, 0, 0, 0, time.UTC))
	mustAllow(t, l, monthly(SpendPerMonth, "april", 100, 40, nil))

	for i := 0; len(l.index) > 3 && i < 10*keys; i++ {
		c.Advance(time.Millisecond)
		mustAllow(t, l, rps("tick", 1000))
	}
	if len(l.index) > 3 || len(l.index) != len(l.entries) {
		t.Fatalf("%d states in the index, %d stored, after the keys went idle", len(l.index), len(l.entries))
	}
	if cap(l.entries) >= peak/4 {
		t.Fatalf("storage kept capacity %d of its peak %d", cap(l.entries), peak)
	}
	for k, i := range l.index {
		if l.entries[i].k != k {
			t.Fatalf("index of %v points at %v", k, l.entries[i].k)
		}
	}
	// The live states survived.
	if d, _ := reserve(t, l, tpm("debtor", 1, 1)); d.Allowed || d.RetryAfter < 30*24*time.Hour {
		t.Fatalf("the debt was forgotten: allowed %v, retry after %v", d.Allowed, d.RetryAfter)
	}
	if d, _ := mustAllow(t, l, monthly(SpendPerMonth, "april", 100, 0, nil)); d.Remaining[0] != 60 {
		t.Fatalf("april remaining %d; want 60", d.Remaining[0])
	}
}

// typical are the checks of a typical request: the Organization's and the
// Workspace's requests per second, the model's tokens per minute, and the
// Organization's and the Workspace's monthly spend. The limits are high
// enough, against a clock moving 1µs a call, for every call to pass.
func typical() ([]Check, []int64) {
	burst := int64(1) << 40
	return []Check{
			{Key: "org:0f8e2a", Kind: RequestsPerSecond, Limit: 500_000, Burst: burst},
			{Key: "ws:7c1d44", Kind: RequestsPerSecond, Limit: 500_000, Burst: burst},
			{Key: "org:0f8e2a:model:mistral-large", Kind: TokensPerMinute, Limit: 60_000_000, Burst: burst, Cost: 4096},
			{Key: "org:0f8e2a", Kind: SpendPerMonth, Limit: 1 << 60, Cost: 40_960},
			{Key: "ws:7c1d44", Kind: SpendPerMonth, Limit: 1 << 60, Cost: 40_960},
		},
		[]int64{1, 1, 1200, 12_000, 12_000}
}

func benchClock() func() time.Time {
	var n atomic.Int64
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	return func() time.Time { return time.Unix(0, base+n.Add(1000)) }
}

func BenchmarkReserveSettle(b *testing.B) {
	var l Limiter = NewLocal(benchClock())
	checks, actual := typical()
	ctx := context.Background()
	var r Reservation
	b.ReportAllocs()
	for b.Loop() {
		var d Decision
		var err error
		d, r, err = l.Reserve(ctx, checks)
		if err != nil || !d.Allowed {
			b.Fatalf("refused: %v %+v", err, d)
		}
		if err := l.Settle(ctx, &r, actual); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReserveSettleParallel(b *testing.B) {
	var l Limiter = NewLocal(benchClock())
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		checks, actual := typical()
		var r Reservation
		for pb.Next() {
			var d Decision
			var err error
			d, r, err = l.Reserve(ctx, checks)
			if err != nil || !d.Allowed {
				b.Errorf("refused: %v %+v", err, d)
				return
			}
			if err := l.Settle(ctx, &r, actual); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func TestParseKinds(t *testing.T) {
	for _, c := range []struct {
		list string
		want []Kind
	}{
		{"requests_per_second,tokens_per_minute", []Kind{RequestsPerSecond, TokensPerMinute}},
		{" tokens_per_month , spend_per_month,", []Kind{TokensPerMonth, SpendPerMonth}},
		{"", nil},
		{"none", nil},
	} {
		got, err := ParseKinds(c.list)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("ParseKinds(%q) = %v, %v; want %v", c.list, got, err, c.want)
		}
	}
	_, err := ParseKinds("requests_per_second,requests per second")
	if want := `"requests per second" is not a kind of limit: want requests_per_second, tokens_per_minute, tokens_per_month, spend_per_month or none`; err == nil || err.Error() != want {
		t.Errorf("ParseKinds of a misspelt kind = %v, want %q", err, want)
	}
}
