package poll

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rounds runs p with round counting its calls (asking for another at
// once while again says so) until the test ends.
func rounds(t *testing.T, p Poller, interval time.Duration, again func(n int64) bool) *atomic.Int64 {
	t.Helper()
	var n atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { p.Run(ctx, interval, func() bool { return again(n.Add(1)) }) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	return &n
}

// waitFor waits up to five seconds for n to reach want.
func waitFor(t *testing.T, n *atomic.Int64, want int64, what string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); n.Load() < want; {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d rounds, want %d", what, n.Load(), want)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestPollerRoundsAtStartOnNudgeAndAgain(t *testing.T) {
	p := New(0)
	n := rounds(t, p, time.Hour, func(n int64) bool { return n == 2 })
	waitFor(t, n, 1, "at start")
	p.Nudge()
	// The nudged round asks for another, which follows at once.
	waitFor(t, n, 3, "a nudge and the round it asked for")
	time.Sleep(50 * time.Millisecond)
	if got := n.Load(); got != 3 {
		t.Fatalf("%d rounds without a nudge within the hour's interval, want 3", got)
	}
}

func TestPollerKeepsTheGapBetweenNudgedRounds(t *testing.T) {
	const gap = time.Second
	p := New(gap)
	n := rounds(t, p, time.Hour, func(int64) bool { return false })
	waitFor(t, n, 1, "at start")
	for range 20 {
		p.Nudge()
	}
	time.Sleep(gap / 2)
	if got := n.Load(); got != 1 {
		t.Fatalf("%d rounds within the gap after the first, want 1", got)
	}
	waitFor(t, n, 2, "nudges within the gap")
	time.Sleep(gap / 2)
	if got := n.Load(); got != 2 {
		t.Fatalf("%d rounds after 20 nudges within one gap, want 2 (one for all of them)", got)
	}
}

func TestPollerRoundsEveryInterval(t *testing.T) {
	n := rounds(t, New(0), 20*time.Millisecond, func(int64) bool { return false })
	waitFor(t, n, 4, "every interval")
}
