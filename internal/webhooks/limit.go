package webhooks

import (
	"context"
	"sync"
	"time"
)

// The deliveries in flight to one host are bounded by a limit that follows
// the host's answers, as TCP Vegas and Envoy's adaptive concurrency do: it
// grows while answers come about as fast as the fastest seen lately, and
// shrinks when they slow down. A remote receiver answers in its round trip
// whatever the number in flight, so its limit grows to connsPerHost and a
// round's deliveries go out together; a receiver whose answers slow down
// as more arrive (one on this machine's cores, or one overloaded) gets a
// few at a time, and a round's burst no longer takes the CPU that the Admin
// API's answers need at once. Deliveries beyond the limit wait, within
// their attempt's timeout.
const (
	// minInFlight and startInFlight bound the limit from below and start
	// it; connsPerHost bounds it from above.
	minInFlight, startInFlight = 1, 4
	// slowAfter is how much slower than the fastest answer seen lately an
	// answer may be, twice that and this, and still let the limit grow.
	slowAfter = 500 * time.Microsecond
	// fastestFor is how long the fastest answer is kept as the measure: a
	// host's fastest of an earlier period does not hold it down for good.
	fastestFor = 10 * time.Second
	// shrink is the factor the limit shrinks by after a slow answer.
	shrink = 0.9
)

// hostLimits holds each host's limit.
type hostLimits struct {
	mu    sync.Mutex
	hosts map[string]*hostLimit
}

func (h *hostLimits) of(host string) *hostLimit {
	h.mu.Lock()
	defer h.mu.Unlock()
	l := h.hosts[host]
	if l == nil {
		if h.hosts == nil {
			h.hosts = map[string]*hostLimit{}
		}
		l = &hostLimit{limit: startInFlight}
		h.hosts[host] = l
	}
	return l
}

// hostLimit is one host's limit and the deliveries in flight to it.
type hostLimit struct {
	mu       sync.Mutex
	limit    float64
	inFlight int
	// waiting are the deliveries waiting for room, first come first; a
	// delivery is let go by closing its channel.
	waiting []chan struct{}
	// fastest is the fastest answer since fastestAt (zero: none yet).
	fastest   time.Duration
	fastestAt time.Time
}

// acquire waits for room for one more delivery, or for ctx to end.
func (l *hostLimit) acquire(ctx context.Context) error {
	l.mu.Lock()
	if l.inFlight < int(l.limit) {
		l.inFlight++
		l.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	l.waiting = append(l.waiting, ch)
	l.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		l.mu.Lock()
		defer l.mu.Unlock()
		for i, w := range l.waiting {
			if w == ch {
				l.waiting = append(l.waiting[:i], l.waiting[i+1:]...)
				return ctx.Err()
			}
		}
		// Let go meanwhile: the room is handed on.
		l.inFlight--
		l.letGo()
		return ctx.Err()
	}
}

// release ends a delivery that took took to be answered at now (zero:
// it was not answered, and says nothing of the host's speed), adjusts the
// limit and lets waiting deliveries go.
func (l *hostLimit) release(took time.Duration, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inFlight--
	if took > 0 {
		if l.fastest == 0 || took < l.fastest || now.Sub(l.fastestAt) > fastestFor {
			l.fastest, l.fastestAt = took, now
		}
		if took <= 2*l.fastest+slowAfter {
			l.limit = min(l.limit+1/l.limit, connsPerHost)
		} else {
			l.limit = max(l.limit*shrink, minInFlight)
		}
	}
	l.letGo()
}

// room is how many deliveries may be in flight to the host now.
func (l *hostLimit) room() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return int(l.limit)
}

// letGo lets waiting deliveries go while there is room; l.mu is held.
func (l *hostLimit) letGo() {
	for len(l.waiting) > 0 && l.inFlight < int(l.limit) {
		close(l.waiting[0])
		l.waiting = l.waiting[1:]
		l.inFlight++
	}
}
