package gateway

import (
	"context"
	"sync"
)

// inflight counts the model requests being served, so that a shutdown can
// wait for their usage to be recorded before it closes the recorder. A
// mutex rather than a sync.WaitGroup, because a request may still begin
// while Drain waits (a connection accepted just before the cut).
type inflight struct {
	mu sync.Mutex
	n  int
	// idle, when set, is closed once n is back at zero.
	idle chan struct{}
}

func (f *inflight) enter() {
	f.mu.Lock()
	f.n++
	f.mu.Unlock()
}

func (f *inflight) leave() {
	f.mu.Lock()
	f.n--
	if f.n == 0 && f.idle != nil {
		close(f.idle)
		f.idle = nil
	}
	f.mu.Unlock()
}

// Drain waits until no model request is in flight: every one has settled
// its reservation and recorded its usage, or given up doing so. It returns
// ctx's error if ctx ends first. A shutdown calls it after it has cut the
// requests still running (by closing their connections, which cancels
// their contexts and so their upstream calls), and before it closes the
// usage recorder: a stream cut that way is recorded at its estimate,
// marked estimated, instead of finding the recorder closed.
func (g *Gateway) Drain(ctx context.Context) error {
	f := &g.inflight
	f.mu.Lock()
	if f.n == 0 {
		f.mu.Unlock()
		return nil
	}
	if f.idle == nil {
		f.idle = make(chan struct{})
	}
	idle := f.idle
	f.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
