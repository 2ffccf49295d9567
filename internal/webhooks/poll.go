package webhooks

import (
	"context"
	"time"
)

// poller runs the rounds of the dispatcher and the sender: every interval,
// at once when nudged (after another part of the process wrote work for
// it), and at once again after a round that asks for it (a full batch).
type poller struct {
	wake chan struct{}
}

func newPoller() poller { return poller{wake: make(chan struct{}, 1)} }

// Nudge makes a running poller start its next round now.
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
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-p.wake:
		}
		if round() {
			timer.Reset(0)
		} else {
			timer.Reset(interval)
		}
	}
}
