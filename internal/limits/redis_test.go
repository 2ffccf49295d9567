package limits

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stewardhq/steward/internal/redistest"
	"github.com/stewardhq/steward/internal/steward"
)

func TestRedisServerClock(t *testing.T) {
	client, prefix := redistest.Open(t)
	l := NewRedis(client, RedisOptions{Prefix: prefix})
	// A burst of 5 at 1 rps: the sixth request waits most of a second,
	// measured by the server's clock.
	burst := Check{Key: "org:1", Kind: RequestsPerSecond, Limit: 1, Burst: 5}
	for range 5 {
		mustAllow(t, l, burst, monthly(SpendPerMonth, "org:1", 100, 10, nil))
	}
	d, _ := reserve(t, l, burst)
	if d.Allowed || d.Denied != 0 || d.RetryAfter <= 900*time.Millisecond || d.RetryAfter > time.Second {
		t.Fatalf("sixth request: %+v", d)
	}
	d, _ = mustAllow(t, l, monthly(SpendPerMonth, "org:1", 100, 0, nil))
	if d.Remaining[0] != 50 || d.Reset[0] <= 0 || d.Reset[0] > 31*24*time.Hour {
		t.Fatalf("spend after five requests: remaining %d, reset %v", d.Remaining[0], d.Reset[0])
	}
	// The states expire in Redis when they stop mattering.
	ttl, err := client.PTTL(context.Background(), l.key(stateKey{key: "org:1", kind: RequestsPerSecond})).Result()
	if err != nil || ttl <= 4*time.Second || ttl > 5*time.Second+time.Millisecond {
		t.Fatalf("GCRA state expires in %v (%v); want about 5s", ttl, err)
	}
	if st := l.Stats(); st.RoundTrips != 7 || st.Errors != 0 {
		t.Fatalf("stats %+v; want 7 round trips, no errors", st)
	}
}

func TestRedisSharedByProcesses(t *testing.T) {
	client, prefix := redistest.Open(t)
	c := newClock(t0)
	// Two limiters on one prefix stand for two gateway processes.
	a := NewRedis(client, RedisOptions{Prefix: prefix, Clock: c.Now})
	b := NewRedis(client, RedisOptions{Prefix: prefix, Clock: c.Now})
	for i := range 10 {
		l := Limiter(a)
		if i%2 == 1 {
			l = b
		}
		mustAllow(t, l, rps("org:1", 10), monthly(SpendPerMonth, "org:1", 1000, 100, nil))
	}
	mustDeny(t, a, 0, 100*time.Millisecond, rps("org:1", 10))
	c.Advance(time.Second)
	mustDeny(t, b, 0, c.Until(time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)), monthly(SpendPerMonth, "org:1", 1000, 1, nil))
}

func TestRedisSeed(t *testing.T) {
	ctx := context.Background()
	client, prefix := redistest.Open(t)
	c := newClock(t0)
	l := NewRedis(client, RedisOptions{Prefix: prefix, Clock: c.Now, Seeded: true})
	spend := monthly(SpendPerMonth, "org:1", 1000, 100, nil)

	if _, _, err := l.Reserve(ctx, []Check{rps("org:1", 10), spend}); !errors.Is(err, ErrUnseeded) {
		t.Fatalf("reserve before seeding: %v; want ErrUnseeded", err)
	}
	// The first process seeds; a second one finds the counter started.
	if set, err := l.Seed(ctx, spend, 850); err != nil || !set {
		t.Fatalf("first seed: %v, %v", set, err)
	}
	if set, err := l.Seed(ctx, spend, 999); err != nil || set {
		t.Fatalf("second seed: %v, %v; want not set", set, err)
	}
	_, r := mustAllow(t, l, rps("org:1", 10), spend)
	mustDeny(t, l, 0, c.Until(time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)), spend)
	settle(t, l, &r, 1, 40)
	d, _ := mustAllow(t, l, monthly(SpendPerMonth, "org:1", 1000, 0, nil))
	if d.Remaining[0] != 110 {
		t.Fatalf("remaining %d after settling; want 110", d.Remaining[0])
	}

	// Redis lost the counter (a restart without persistence): Reserve asks
	// for it to be seeded again rather than counting from zero, and a
	// Settle leaves it missing.
	_, r = mustAllow(t, l, spend)
	redistest.Clean(client, prefix)
	settle(t, l, &r, 500)
	if st := snapshot(t, l); len(st) != 0 {
		t.Fatalf("settling a lost counter stored %v", st)
	}
	if _, _, err := l.Reserve(ctx, []Check{spend}); !errors.Is(err, ErrUnseeded) || !steward.IsKind(err, steward.KindUnavailable) {
		t.Fatalf("reserve after the counter was lost: %v", err)
	}
	if _, err := l.Seed(ctx, rps("org:1", 1), 1); err == nil {
		t.Fatalf("seeding a GCRA limit: no error")
	}
}

func TestRedisUnavailable(t *testing.T) {
	ctx := context.Background()
	// Nothing listens on port 1 of the loopback address.
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: time.Second})
	defer client.Close()
	l := NewRedis(client, RedisOptions{FailOpen: []Kind{RequestsPerSecond, TokensPerMinute, TokensPerMonth}})

	d, r, err := l.Reserve(ctx, []Check{rps("org:1", 1), tpm("m", 100, 50), monthly(TokensPerMonth, "o", 100, 50, nil)})
	if err != nil || !d.Allowed || r.Len() != 3 {
		t.Fatalf("fail-open kinds: %+v, %v", d, err)
	}
	if err := l.Settle(ctx, &r, []int64{1, 10, 10}); err != nil || !r.Settled() {
		t.Fatalf("settling an open reservation: %v", err)
	}
	_, _, err = l.Reserve(ctx, []Check{rps("org:1", 1), monthly(SpendPerMonth, "o", 100, 50, nil)})
	var se *steward.Error
	if !errors.As(err, &se) || se.Kind != steward.KindUnavailable || se.Code != "limits_unavailable" {
		t.Fatalf("spend while Redis is down: %v; want limits_unavailable", err)
	}
	if st := l.Stats(); st.RoundTrips != 2 || st.Errors != 2 {
		t.Fatalf("stats %+v; want 2 round trips, 2 errors", st)
	}
}

func BenchmarkRedisReserveSettle(b *testing.B) {
	client, prefix := redistest.Open(b)
	l := NewRedis(client, RedisOptions{Prefix: prefix})
	checks, actual := typical()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		d, r, err := l.Reserve(ctx, checks)
		if err != nil || !d.Allowed {
			b.Fatalf("refused: %v %+v", err, d)
		}
		if err := l.Settle(ctx, &r, actual); err != nil {
			b.Fatal(err)
		}
	}
}
