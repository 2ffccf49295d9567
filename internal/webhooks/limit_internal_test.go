package webhooks

import (
	"context"
	"errors"
	"testing"
	"time"
)

// room takes n places of l at once, failing if one has to wait.
func room(t *testing.T, l *hostLimit, n int) {
	t.Helper()
	for i := range n {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		err := l.acquire(ctx)
		cancel()
		if err != nil {
			t.Fatalf("place %d of %d: %v", i+1, n, err)
		}
	}
}

// A host's limit starts at startInFlight; a delivery beyond it waits until
// one in flight ends, or its attempt's time is up, which leaves no place
// taken.
func TestHostLimitMakesDeliveriesWait(t *testing.T) {
	var hosts hostLimits
	l := hosts.of("example.com:443")
	if hosts.of("example.com:443") != l || hosts.of("other.example:443") == l {
		t.Fatal("hosts do not have a limit each")
	}
	room(t, l, startInFlight)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := l.acquire(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a delivery beyond the limit: %v, want it to wait until its deadline", err)
	}
	got := make(chan error)
	go func() { got <- l.acquire(context.Background()) }()
	time.Sleep(10 * time.Millisecond)
	select {
	case err := <-got:
		t.Fatalf("a delivery beyond the limit went at once: %v", err)
	default:
	}
	l.release(0, time.Now())
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	for range startInFlight {
		l.release(0, time.Now())
	}
	if l.inFlight != 0 || len(l.waiting) != 0 || l.limit != startInFlight {
		t.Errorf("after every delivery ended: %d in flight, %d waiting, limit %v; want 0, 0, %d unchanged by unanswered ones",
			l.inFlight, len(l.waiting), l.limit, startInFlight)
	}
}

// The limit grows while answers come as fast as the fastest lately (a
// remote receiver, answering in its round trip) up to connsPerHost, and
// shrinks to minInFlight while they come much slower (a receiver that slows
// down as deliveries pile up); a fastest answer older than fastestFor no
// longer counts.
func TestHostLimitFollowsTheAnswers(t *testing.T) {
	l := &hostLimit{limit: startInFlight}
	now := time.Now()
	answer := func(took time.Duration) {
		room(t, l, 1)
		now = now.Add(time.Millisecond)
		l.release(took, now)
	}
	for range 2000 {
		answer(50 * time.Millisecond)
	}
	if l.limit != connsPerHost {
		t.Fatalf("limit after steady answers: %v, want %d", l.limit, connsPerHost)
	}
	answer(100 * time.Millisecond)
	if l.limit != connsPerHost {
		t.Errorf("limit after an answer within twice the fastest and %v: %v, want %d", slowAfter, l.limit, connsPerHost)
	}
	for range 100 {
		answer(time.Second)
	}
	if l.limit != minInFlight {
		t.Fatalf("limit after slow answers: %v, want %d", l.limit, minInFlight)
	}
	now = now.Add(fastestFor)
	answer(time.Second)
	for range 10 {
		answer(time.Second)
	}
	if l.limit <= minInFlight {
		t.Errorf("limit %v after answers as fast as the fastest of the last %v: it did not grow", l.limit, fastestFor)
	}
}
