package gateway

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	"testing"
	"time"
)

// TestDrainWaitsForRequestsInFlight: Drain returns at once when nothing is
// in flight, returns its context's error while a stream still runs, and
// returns once that stream, cut by its client, has recorded its usage.
func TestDrainWaitsForRequestsInFlight(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		sse(w, `{"choices":[{"delta":{"content":"12345678"}}]}`)
		<-r.Context().Done()
	})
	h := newHarness(t, Config{Models: []Model{chatModel("m", up)}})
	if err := h.g.Drain(context.Background()); err != nil {
		t.Fatalf("Drain with nothing in flight: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp := h.post(t, ctx, "/v1/chat/completions", goodKey, `{"model":"m","stream":true,"messages":[]}`)
	readEvent(t, bufio.NewReader(resp.Body))
	short, stop := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer stop()
	if err := h.g.Drain(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Drain while a stream runs: %v, want %v", err, context.DeadlineExceeded)
	}
	drained := make(chan error, 1)
	go func() { drained <- h.g.Drain(context.Background()) }()
	cancel()
	select {
	case err := <-drained:
		if err != nil {
			t.Fatalf("Drain once the stream ended: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Drain did not return once the stream ended")
	}
	select {
	case u := <-h.rec.got:
		if !u.Estimated {
			t.Fatalf("usage %+v, want it estimated", u)
		}
	default:
		t.Fatal("Drain returned before the stream's usage was recorded")
	}
}
