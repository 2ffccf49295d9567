package enforce

import (
	"context"
	"math"
	"math/big"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/billing"
	"github.com/stewardhq/steward/internal/limits"
	"github.com/stewardhq/steward/internal/quota"
	"github.com/stewardhq/steward/internal/steward"
)

// FuzzLimitsReachTheLimiter follows limits and caps from the Admin API to
// the limiter. A value the API accepts reaches the limiter exactly (a cap
// as its micro-units, without saturating); a value it refuses gets a
// KindInvalid error naming the field and the largest value accepted. Any
// value that may be stored, including one stored before the bounds were
// checked, and any token counts and cost, reach the limiter as checks it
// reserves and settles without an error (which would answer 500). Its
// seed corpus, in testdata/fuzz, runs with every go test.
func FuzzLimitsReachTheLimiter(f *testing.F) {
	f.Add(int64(9223372036855), int64(0), int64(0), int64(0), int64(0), int64(100), int64(4096), int64(20), int64(10), int64(10))
	f.Add(int64(9223372036854), int64(9223372036854), int64(1), int64(1), int64(1), int64(math.MaxInt64), int64(math.MaxInt64), int64(math.MaxInt64), int64(math.MaxInt64), int64(math.MaxInt64))
	f.Add(int64(quota.MaxAmount), int64(quota.MaxAmount), int64(quota.MaxRequestsPerSecond), int64(quota.MaxTokenLimit), int64(quota.MaxTokenLimit), int64(1<<20), int64(-9223372036854775807), int64(0), int64(-1), int64(1))
	f.Add(int64(quota.MaxAmount+1), int64(-1), int64(quota.MaxRequestsPerSecond+1), int64(quota.MaxTokenLimit+1), int64(math.MinInt64), int64(0), int64(0), int64(0), int64(0), int64(0))

	f.Fuzz(func(t *testing.T, orgCap, wsCap, rps, perMinute, perMonth, prompt, maxOut, cost, in, out int64) {
		model := map[string]quota.TokenLimits{"m": {PerMinute: perMinute, PerMonth: perMonth}}
		rl := quota.RateLimits{RequestsPerSecond: rps, Models: model}
		inRange := func(v, bound int64) bool { return v >= 0 && v <= bound }

		// The Admin API's checks.
		for _, c := range []struct {
			err error
			ok  bool
		}{
			{quota.CheckAmount(&orgCap), inRange(orgCap, quota.MaxAmount)},
			{quota.CheckAmount(&wsCap), inRange(wsCap, quota.MaxAmount)},
			{quota.CheckRateLimits(rl), inRange(rps, quota.MaxRequestsPerSecond) && inRange(perMinute, quota.MaxTokenLimit) && inRange(perMonth, quota.MaxTokenLimit)},
		} {
			if (c.err == nil) != c.ok {
				t.Fatalf("caps %d, %d, limits %+v: error %v, want one: %v", orgCap, wsCap, rl, c.err, !c.ok)
			}
			if c.err != nil {
				checkNamesBound(t, c.err)
			}
		}
		accepted := quota.CheckAmount(&orgCap) == nil && quota.CheckAmount(&wsCap) == nil && quota.CheckRateLimits(rl) == nil

		// What may be stored: any value that is not negative.
		fold := func(v int64) int64 { return v & math.MaxInt64 }
		orgCap, wsCap = fold(orgCap), fold(wsCap)
		stored := quota.RateLimits{RequestsPerSecond: fold(rps), Models: map[string]quota.TokenLimits{"m": {PerMinute: fold(perMinute), PerMonth: fold(perMonth)}}}
		s := quota.Settings{Organization: stored, Workspaces: map[string]quota.RateLimits{"w": stored}, SpendCap: &orgCap,
			WorkspaceSpends: map[string]int64{"w": wsCap}, Location: time.UTC}
		cs := checks(s, steward.Principal{OrganizationID: "o", WorkspaceID: "w"}, "m", limits.AddSat(tokenCount(prompt), tokenCount(maxOut)), fold(cost))
		if len(cs) == 0 || len(cs) > limits.MaxChecks {
			t.Fatalf("settings %+v make %d checks", s, len(cs))
		}
		plain := make([]limits.Check, len(cs))
		for i, c := range cs {
			plain[i] = c.Check
			if c.Limit < 0 || c.Cost < 0 {
				t.Fatalf("check %+v is negative", c.Check)
			}
			if !accepted {
				continue
			}
			want := map[limits.Kind]int64{limits.RequestsPerSecond: rps, limits.TokensPerMinute: perMinute, limits.TokensPerMonth: perMonth}[c.Kind]
			if c.Kind == limits.SpendPerMonth {
				units := map[bool]int64{false: orgCap, true: wsCap}[strings.HasPrefix(c.Key, "ws:")]
				exact := new(big.Int).Mul(big.NewInt(units), big.NewInt(billing.MicrosPerUnit))
				if !exact.IsInt64() {
					t.Fatalf("an accepted cap of %d units overflows int64 as micro-units", units)
				}
				want = exact.Int64()
			}
			if c.Limit != want {
				t.Fatalf("check %+v: limit %d, want exactly %d", c.Check, c.Limit, want)
			}
		}

		now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
		l := limits.NewLocal(func() time.Time { return now })
		d, r, err := l.Reserve(context.Background(), plain)
		if err != nil {
			t.Fatalf("Reserve(%+v): %v", plain, err)
		}
		if d.Allowed {
			if err := l.Settle(context.Background(), &r, actuals(cs, limits.AddSat(tokenCount(in), tokenCount(out)), fold(cost))); err != nil {
				t.Fatalf("Settle of %+v with %d, %d tokens: %v", plain, in, out, err)
			}
		}
	})
}

// checkNamesBound fails t unless err is a KindInvalid error at a field of
// the body whose message names the field and the largest value accepted.
func checkNamesBound(t *testing.T, err error) {
	t.Helper()
	e, ok := err.(*steward.Error)
	if !ok || e.Kind != steward.KindInvalid || len(e.Field) < 2 || e.Field[0] != "body" {
		t.Fatalf("error %v, want KindInvalid at a field of the body", err)
	}
	name := e.Field[len(e.Field)-1]
	largest, ok := map[string]int64{"amount": quota.MaxAmount, "requests_per_second": quota.MaxRequestsPerSecond, "tokens_per_minute": quota.MaxTokenLimit, "tokens_per_month": quota.MaxTokenLimit}[name]
	if !ok || !strings.Contains(e.Message, name) || !strings.Contains(e.Message, strconv.FormatInt(largest, 10)) {
		t.Fatalf("error at %v: %q does not name the field and its largest value", e.Field, e.Message)
	}
}
