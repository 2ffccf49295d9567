// Package poll runs a background loop's rounds: every interval, and soon
// after a nudge from the part of the process that wrote work for it.
package poll

import (
	"context"
	"sync/atomic"
	"time"
)

// Poller runs a loop's rounds (the webhooks' dispatcher and sender, the
// audit log's linker, the outbox's sender, the alerts' evaluator, the key
// expiry reminders, the gateway's expiry of checks and reading of the
// upstream's capabilities): at once, then every interval,
// when nudged (after another part of the process wrote work for it) but
// no sooner than gap after the last round, and at once
// again after a round that asks for it (a full batch). Several loops may
// run over one poller; a nudge wakes one of them, and the gap is kept
// between the rounds of all of them, so that more loops do not mean more,
// smaller rounds.
type Poller struct {
	wake chan struct{}
	gap  time.Duration
	// last is when the last round started, in Unix nanoseconds.
	last *atomic.Int64
}

// New returns a poller that keeps at least gap between rounds started by
// nudges.
func New(gap time.Duration) Poller {
	return Poller{wake: make(chan struct{}, 1), gap: gap, last: new(atomic.Int64)}
}

// Nudge makes a running poller start its next round soon.
func (p Poller) Nudge() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Run calls round until ctx ends.
func (p Poller) Run(ctx context.Context, interval time.Duration, round func() (again bool)) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-p.wake:
			last := p.last.Load()
			if wait := time.Until(time.Unix(0, last).Add(p.gap)); wait > 0 || !p.last.CompareAndSwap(last, time.Now().UnixNano()) {
				// Within the gap, or another loop has just started a
				// round: this nudge's entries are left to it or to the
				// round after the gap.
				timer.Reset(max(wait, p.gap))
				continue
			}
		}
		p.last.Store(time.Now().UnixNano())
		if round() {
			timer.Reset(0)
		} else {
			timer.Reset(interval)
		}
	}
}
