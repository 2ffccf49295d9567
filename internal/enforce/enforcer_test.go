package enforce_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/billing"
	"github.com/stewardhq/steward/internal/bootstrap"
	"github.com/stewardhq/steward/internal/enforce"
	"github.com/stewardhq/steward/internal/inference"
	"github.com/stewardhq/steward/internal/limits"
	"github.com/stewardhq/steward/internal/quota"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
	"github.com/stewardhq/steward/internal/usage"
)

// prices price a token of model m at one micro-unit: a million tokens
// cost one unit.
func prices(t testing.TB) *billing.Prices {
	t.Helper()
	p, err := billing.NewPrices([]billing.ModelPrice{{Model: "m", InputPerMillion: 1, OutputPerMillion: 1}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func setup(t *testing.T, db *store.DB) (bootstrap.Result, *enforce.Enforcer, steward.Principal) {
	t.Helper()
	boot, err := bootstrap.Run(context.Background(), db, bootstrap.Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	e := enforce.New(db, limits.NewLocal(func() time.Time { return now }), prices(t), func() time.Time { return now })
	k := steward.Principal{CredentialID: "k", OrganizationID: boot.Organization.ID, WorkspaceID: boot.DefaultWorkspace.ID, UserID: boot.Admin.ID}
	return boot, e, k
}

func setCap(t *testing.T, db *store.DB, boot bootstrap.Result, ws string, units int64) {
	t.Helper()
	ctx := context.Background()
	if err := db.Transact(ctx, func(tx *store.Tx) error {
		return quota.SetSpendCap(ctx, tx, steward.SystemActor("test"), boot.Organization, ws, &units)
	}); err != nil {
		t.Fatal(err)
	}
}

func refusedWith(t *testing.T, err error, code string) {
	t.Helper()
	var r *inference.Refusal
	if !errors.As(err, &r) || r.Err.Code != code {
		t.Fatalf("Reserve = %v, want a refusal with code %s", err, code)
	}
}

func TestSpendCapHoldsUnderConcurrencyAndAcrossRestarts(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		boot, e, k := setup(t, db)
		setCap(t, db, boot, "", 1) // one unit: a million tokens

		// Many concurrent requests of a worst case of 100,000 tokens, each
		// using half of it: at most 10 fit at once, and settled, 20 in all.
		var mu sync.Mutex
		admitted := 0
		var wg sync.WaitGroup
		for range 64 {
			wg.Go(func() {
				tk, err := e.Reserve(ctx, k, "m", billing.Tokens(50_000, 50_000))
				if err != nil {
					refusedWith(t, err, "spend_limit_exceeded")
					return
				}
				mu.Lock()
				admitted++
				mu.Unlock()
				tk.Settle(billing.Tokens(25_000, 25_000))
			})
		}
		wg.Wait()
		if admitted < 10 || admitted > 20 {
			t.Fatalf("%d requests admitted under a cap of 20 actual or 10 worst-case requests", admitted)
		}

		// A new process starts from the month's recorded usage.
		rec := usage.NewRecorder(db, usage.Options{})
		go rec.Run(ctx)
		defer rec.Close()
		if err := rec.Record(ctx, usage.Event{ID: "spent", OrganizationID: k.OrganizationID, WorkspaceID: k.WorkspaceID, Model: "m",
			InputTokens: 900_000, Cost: 900_000, Currency: "USD"}); err != nil {
			t.Fatal(err)
		}
		_, fresh, _ := setup2(t, db, boot)
		if _, err := fresh.Reserve(ctx, k, "m", billing.Tokens(50_000, 50_000)); err != nil {
			t.Fatalf("100,000 of the remaining 100,000: %v", err)
		}
		_, err := fresh.Reserve(ctx, k, "m", billing.Tokens(1, 0))
		refusedWith(t, err, "spend_limit_exceeded")

		// Raising the cap takes effect at once.
		setCap(t, db, boot, "", 2)
		if _, err := fresh.Reserve(ctx, k, "m", billing.Tokens(500_000, 0)); err != nil {
			t.Fatalf("after raising the cap: %v", err)
		}
		// A Workspace cap applies too.
		setCap(t, db, boot, boot.DefaultWorkspace.ID, 1)
		_, err = fresh.Reserve(ctx, k, "m", billing.Tokens(200_000, 0))
		refusedWith(t, err, "spend_limit_exceeded")
	})
}

// setup2 is another process's enforcer over the same database.
func setup2(t *testing.T, db *store.DB, boot bootstrap.Result) (bootstrap.Result, *enforce.Enforcer, steward.Principal) {
	t.Helper()
	now := time.Now()
	e := enforce.New(db, limits.NewLocal(func() time.Time { return now }), prices(t), func() time.Time { return now })
	return boot, e, steward.Principal{CredentialID: "k", OrganizationID: boot.Organization.ID, WorkspaceID: boot.DefaultWorkspace.ID, UserID: boot.Admin.ID}
}

func TestRateAndTokenLimits(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		boot, e, k := setup(t, db)
		rl := quota.RateLimits{RequestsPerSecond: 2, Models: map[string]quota.TokenLimits{"m": {PerMinute: 1000}}}
		if err := db.Transact(ctx, func(tx *store.Tx) error {
			return quota.SetRateLimits(ctx, tx, steward.SystemActor("test"), boot.Organization, "", rl)
		}); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			tk, err := e.Reserve(ctx, k, "m", billing.Tokens(100, 100))
			if err != nil {
				t.Fatal(err)
			}
			if tk.Headers().Get("x-ratelimit-limit-requests") != "2" || tk.Headers().Get("x-ratelimit-limit-tokens") != "1000" {
				t.Fatalf("headers = %v", tk.Headers())
			}
			tk.Settle(billing.Tokens(100, 100))
		}
		_, err := e.Reserve(ctx, k, "m", billing.Tokens(1, 1))
		refusedWith(t, err, "rate_limit_exceeded")
		_, err = e.Reserve(ctx, k, "other", billing.Tokens(1, 1))
		refusedWith(t, err, "rate_limit_exceeded")
	})
}

// TestRequestsNamingNoModel: a request that names no model (a forwarded
// operation) counts in the request rates as a model request does, and is
// refused by them; a spent cap does not hold it, since it costs nothing.
func TestRequestsNamingNoModel(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		boot, e, k := setup(t, db)
		setCap(t, db, boot, "", 1)
		if _, err := e.Reserve(ctx, k, "m", billing.Tokens(1_000_000, 0)); err != nil {
			t.Fatalf("the whole cap: %v", err)
		}
		_, err := e.Reserve(ctx, k, "m", billing.Tokens(1, 0))
		refusedWith(t, err, "spend_limit_exceeded")
		if err := db.Transact(ctx, func(tx *store.Tx) error {
			return quota.SetRateLimits(ctx, tx, steward.SystemActor("test"), boot.Organization, boot.DefaultWorkspace.ID, quota.RateLimits{RequestsPerSecond: 2})
		}); err != nil {
			t.Fatal(err)
		}
		tk, err := e.Reserve(ctx, k, "", billing.Quantity{})
		if err != nil {
			t.Fatalf("a request naming no model under a spent cap: %v", err)
		}
		if got := tk.Headers().Get("x-ratelimit-limit-requests"); got != "2" {
			t.Fatalf("headers = %v, want the Workspace's request rate", tk.Headers())
		}
		tk.Settle(billing.Quantity{})
		if _, err := e.Reserve(ctx, k, "", billing.Quantity{}); err != nil {
			t.Fatalf("the second request of the second: %v", err)
		}
		_, err = e.Reserve(ctx, k, "", billing.Quantity{})
		refusedWith(t, err, "rate_limit_exceeded")
	})
}

// Token counts whose sum overflows int64, or that arrive negative from a
// product that overflowed before the enforcer, count as the most there is:
// the request is refused by its token limits, never failed by the limiter
// with a negative cost.
func TestTokenCountsThatOverflowAreRefused(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		boot, e, k := setup(t, db)
		rl := quota.RateLimits{Models: map[string]quota.TokenLimits{"m": {PerMonth: quota.MaxTokenLimit}}}
		if err := db.Transact(ctx, func(tx *store.Tx) error {
			return quota.SetRateLimits(ctx, tx, steward.SystemActor("test"), boot.Organization, "", rl)
		}); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct{ prompt, maxOut int64 }{{math.MaxInt64, math.MaxInt64}, {1, -2}, {math.MinInt64, 0}} {
			_, err := e.Reserve(ctx, k, "m", billing.Tokens(c.prompt, c.maxOut))
			refusedWith(t, err, "monthly_token_limit_exceeded")
		}
		tk, err := e.Reserve(ctx, k, "m", billing.Tokens(100, 100))
		if err != nil {
			t.Fatalf("after the refusals: %v", err)
		}
		// Settled beyond int64, the month's tokens are all used up.
		tk.Settle(billing.Tokens(math.MaxInt64, math.MaxInt64))
		_, err = e.Reserve(ctx, k, "m", billing.Tokens(1, 0))
		refusedWith(t, err, "monthly_token_limit_exceeded")
	})
}

// The x-ratelimit-* headers describe, for requests and for tokens, the
// check with the fewest remaining, whichever level it is at.
func TestHeadersShowTheTightestLimit(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		boot, e, k := setup(t, db)
		if err := db.Transact(ctx, func(tx *store.Tx) error {
			org := quota.RateLimits{RequestsPerSecond: 4, Models: map[string]quota.TokenLimits{"m": {PerMinute: 5000}}}
			if err := quota.SetRateLimits(ctx, tx, steward.SystemActor("test"), boot.Organization, "", org); err != nil {
				return err
			}
			ws := quota.RateLimits{RequestsPerSecond: 3, Models: map[string]quota.TokenLimits{"m": {PerMinute: 1000}}}
			return quota.SetRateLimits(ctx, tx, steward.SystemActor("test"), boot.Organization, boot.DefaultWorkspace.ID, ws)
		}); err != nil {
			t.Fatal(err)
		}
		// Another Workspace's requests leave the Organization fewer
		// requests than the Workspace, but more tokens.
		other := k
		other.CredentialID, other.WorkspaceID = "k2", "another-workspace"
		for range 2 {
			tk, err := e.Reserve(ctx, other, "m", billing.Tokens(100, 100))
			if err != nil {
				t.Fatal(err)
			}
			defer tk.Settle(billing.Tokens(100, 100))
		}
		tk, err := e.Reserve(ctx, k, "m", billing.Tokens(100, 100))
		if err != nil {
			t.Fatal(err)
		}
		defer tk.Settle(billing.Tokens(100, 100))
		want := map[string]string{
			"X-Ratelimit-Limit-Requests": "4", "X-Ratelimit-Remaining-Requests": "1",
			"X-Ratelimit-Limit-Tokens": "1000", "X-Ratelimit-Remaining-Tokens": "800",
		}
		h := tk.Headers()
		for name, v := range want {
			if got := h.Get(name); got != v {
				t.Errorf("%s = %q, want %q (headers %v)", name, got, v, h)
			}
		}
		for _, name := range []string{"X-Ratelimit-Reset-Requests", "X-Ratelimit-Reset-Tokens"} {
			if got := h.Get(name); !strings.HasSuffix(got, "s") {
				t.Errorf("%s = %q, want seconds", name, got)
			}
		}
		if len(h) != 6 {
			t.Errorf("headers %v, want the six x-ratelimit-* ones", h)
		}
	})
}

func TestRefusalNamesTheLimit(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		boot, e, k := setup(t, db)
		rl := quota.RateLimits{Models: map[string]quota.TokenLimits{"m": {PerMinute: 1000}}}
		if err := db.Transact(ctx, func(tx *store.Tx) error {
			return quota.SetRateLimits(ctx, tx, steward.SystemActor("test"), boot.Organization, "", rl)
		}); err != nil {
			t.Fatal(err)
		}
		_, err := e.Reserve(ctx, k, "m", billing.Tokens(600, 600))
		refusedWith(t, err, "token_limit_exceeded")
		var r *inference.Refusal
		if errors.As(err, &r); r.Err.Message != "this request would exceed the tokens per minute of m of its Organization" {
			t.Fatalf("message = %q", r.Err.Message)
		}
	})
}

// The monthly counters count the calendar month of the Organization's time
// zone, and follow a change of zone at once.
func TestMonthFollowsTheTimeZone(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		boot, err := bootstrap.Run(ctx, db, bootstrap.Options{})
		if err != nil {
			t.Fatal(err)
		}
		// 00:30 on 1 March in Paris is still February in UTC.
		now := time.Date(2026, 2, 28, 23, 30, 0, 0, time.UTC)
		e := enforce.New(db, limits.NewLocal(func() time.Time { return now }), prices(t), func() time.Time { return now })
		k := steward.Principal{CredentialID: "k", OrganizationID: boot.Organization.ID, WorkspaceID: boot.DefaultWorkspace.ID, UserID: boot.Admin.ID}
		setCap(t, db, boot, "", 1)
		rec := usage.NewRecorder(db, usage.Options{})
		go rec.Run(ctx)
		defer rec.Close()
		// Spent at 23:00 on 28 February, Paris time.
		if err := rec.Record(ctx, usage.Event{ID: "february", Time: now.Add(-90 * time.Minute), OrganizationID: k.OrganizationID,
			WorkspaceID: k.WorkspaceID, Model: "m", InputTokens: 900_000, Cost: 900_000, Currency: "USD"}); err != nil {
			t.Fatal(err)
		}
		_, err = e.Reserve(ctx, k, "m", billing.Tokens(200_000, 0))
		refusedWith(t, err, "spend_limit_exceeded")

		if err := db.Transact(ctx, func(tx *store.Tx) error {
			return quota.SetTimeZone(ctx, tx, steward.SystemActor("test"), boot.Organization, "Europe/Paris")
		}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.Reserve(ctx, k, "m", billing.Tokens(200_000, 0)); err != nil {
			t.Fatalf("March in Paris has spent nothing yet: %v", err)
		}
		// Spent at 00:10 on 1 March, Paris time: another process starts its
		// counter from it, in the month of Paris.
		if err := rec.Record(ctx, usage.Event{ID: "march", Time: now.Add(-20 * time.Minute), OrganizationID: k.OrganizationID,
			WorkspaceID: k.WorkspaceID, Model: "m", InputTokens: 700_000, Cost: 700_000, Currency: "USD"}); err != nil {
			t.Fatal(err)
		}
		other := enforce.New(db, limits.NewLocal(func() time.Time { return now }), prices(t), func() time.Time { return now })
		_, err = other.Reserve(ctx, k, "m", billing.Tokens(400_000, 0))
		refusedWith(t, err, "spend_limit_exceeded")
		for _, zone := range []string{"Mars/Olympus_Mons", "", "Local"} {
			err := db.Transact(ctx, func(tx *store.Tx) error {
				return quota.SetTimeZone(ctx, tx, steward.SystemActor("test"), boot.Organization, zone)
			})
			if !steward.IsKind(err, steward.KindInvalid) {
				t.Errorf("time zone %q: %v, want KindInvalid", zone, err)
			}
		}
	})
}

// TestSpendCapCountsPagesAndAudio: a request metered in pages or seconds
// of audio reserves and settles its cost against the spend caps as tokens
// do, and passes the model's token limits with the tokens it uses, none.
func TestSpendCapCountsPagesAndAudio(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		boot, _, k := setup(t, db)
		// A page and a second of audio cost a tenth of a unit each.
		p, err := billing.NewPrices([]billing.ModelPrice{{Model: "ocr", PerThousandPages: 100}, {Model: "voxtral", PerMinuteOfAudio: 6}})
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		e := enforce.New(db, limits.NewLocal(func() time.Time { return now }), p, func() time.Time { return now })
		setCap(t, db, boot, "", 1)
		rl := quota.RateLimits{Models: map[string]quota.TokenLimits{"ocr": {PerMinute: 10, PerMonth: 10}}}
		if err := db.Transact(ctx, func(tx *store.Tx) error {
			return quota.SetRateLimits(ctx, tx, steward.SystemActor("test"), boot.Organization, "", rl)
		}); err != nil {
			t.Fatal(err)
		}
		tk, err := e.Reserve(ctx, k, "ocr", billing.Quantity{Pages: 8})
		if err != nil {
			t.Fatalf("8 pages under a cap of 10: %v", err)
		}
		_, err = e.Reserve(ctx, k, "ocr", billing.Quantity{Pages: 3})
		refusedWith(t, err, "spend_limit_exceeded")
		tk.Settle(billing.Quantity{Pages: 5})
		if _, err := e.Reserve(ctx, k, "ocr", billing.Quantity{Pages: 5}); err != nil {
			t.Fatalf("5 more pages once 5 were used: %v", err)
		}
		_, err = e.Reserve(ctx, k, "voxtral", billing.Quantity{AudioSeconds: 1})
		refusedWith(t, err, "spend_limit_exceeded")
	})
}
