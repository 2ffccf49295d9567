package webhooks

import (
	"context"
	"time"
)

// poller runs the rounds of the dispatcher and the sender: every interval,
// when nudged (after another part of the process wrote work for it) but
// no sooner than gap after the last round, and at once again after a round
// that asks for it (a full batch).
type poller struct {
	wake chan struct{}
	gap  time.Duration
}

func newPoller(gap time.Duration) poller { return poller{wake: make(chan struct{}, 1), gap: gap} }

// Nudge makes a running poller start its next round soon.
func (p poller) Nudge() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// run calls round until ctx ends.
func (p poller) run(ctx context.Context, interval time.Duration, round func() (again bool)) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-p.wake:
			if wait := time.Until(last.Add(p.gap)); wait > 0 {
				timer.Reset(wait)
				continue
			}
		}
		last = time.Now()
		if round() {
			timer.Reset(0)
		} else {
			timer.Reset(interval)
		}
	}
}
