package gateway

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stewardhq/steward/internal/billing"
	"github.com/stewardhq/steward/internal/inference"
)

// intentRecorder notes what the gateway asks of its requests' intents, in
// order; intendErr is what Intend returns, durableErr what Durable does.
type intentRecorder struct {
	mu                    sync.Mutex
	ops                   []string
	intendErr, durableErr error
}

func (r *intentRecorder) note(op string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ops = append(r.ops, op)
}

func (r *intentRecorder) Record(context.Context, inference.Usage) error { return nil }

func (r *intentRecorder) Intend(u inference.Usage) (inference.Intent, error) {
	r.note("intend " + itoa(u.InputTokens) + "/" + itoa(u.OutputTokens))
	if r.intendErr != nil {
		return nil, r.intendErr
	}
	return recordingIntent{r}, nil
}

type recordingIntent struct{ r *intentRecorder }

func (in recordingIntent) Durable(context.Context) error {
	in.r.note("durable")
	return in.r.durableErr
}

func (in recordingIntent) Settle(_ context.Context, u inference.Usage) error {
	in.r.note("settle " + itoa(u.InputTokens) + "/" + itoa(u.OutputTokens))
	return nil
}

func (in recordingIntent) Cancel() { in.r.note("cancel") }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestIntents checks that a request's reservation is intended before its
// upstream is called, replaced by its usage when it was answered, dropped
// when nothing was, and durable before a stream's first byte; a request
// whose reservation cannot be stored calls no upstream.
func TestIntents(t *testing.T) {
	streamed := func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		sse(w, `{"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":"stop"}]}`)
		sse(w, `{"choices":[],"usage":{"prompt_tokens":20,"completion_tokens":9}}`)
		sse(w, `[DONE]`)
	}
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	for _, tc := range []struct {
		name       string
		handle     func(http.ResponseWriter, *http.Request)
		upstream   string
		stream     bool
		intendErr  error
		durableErr error
		status     int
		body       string
		ops        []string
	}{
		{name: "answered", handle: jsonAnswer(chatAnswer), status: 200, body: `"Hi there"`, ops: []string{"settle 11/7"}},
		{name: "streamed", handle: streamed, stream: true, status: 200, body: `"Hi"`, ops: []string{"durable", "settle 20/9"}},
		{name: "error status", handle: func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadRequest) }, status: 400, ops: []string{"cancel"}},
		{name: "no upstream", upstream: down.URL, status: 502, body: "upstream_unavailable", ops: []string{"cancel"}},
		{name: "not intended", handle: jsonAnswer(chatAnswer), intendErr: errors.New("recorder closed"), status: 503, body: "usage_not_recorded"},
		{name: "stream not durable", handle: streamed, stream: true, durableErr: errors.New("disk full"), status: 503, body: "usage_not_recorded", ops: []string{"durable", "cancel"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := Model{Name: "m", MaxOutputTokens: 1000, Upstreams: []Upstream{{BaseURL: tc.upstream}}}
			var up *upstream
			if tc.handle != nil {
				up = newUpstream(t, tc.handle)
				m.Upstreams[0].BaseURL = up.url()
			}
			rec, limits := &intentRecorder{intendErr: tc.intendErr, durableErr: tc.durableErr}, &fakeLimits{}
			g, err := New(Config{Currency: "EUR", Models: []Model{m}, Prices: newPrices(t, billing.ModelPrice{Model: "m"})}, fakeAuth{}, limits, rec, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(g)
			defer srv.Close()
			body := `{"model":"m","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`
			if tc.stream {
				body = `{"model":"m","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"hi"}]}`
			}
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/chat/completions", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+goodKey)
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || !strings.Contains(string(got), tc.body) {
				t.Fatalf("answer %d %s, want %d with %s", resp.StatusCode, got, tc.status, tc.body)
			}
			if tc.durableErr != nil && strings.Contains(string(got), `"Hi"`) {
				t.Fatalf("a stream whose reservation is not stored was relayed: %s", got)
			}
			rec.mu.Lock()
			defer rec.mu.Unlock()
			// The intent is the reservation.
			r := limits.only(t)
			want := append([]string{"intend " + itoa(r.prompt) + "/" + itoa(r.maxOut)}, tc.ops...)
			if !slices.Equal(rec.ops, want) {
				t.Fatalf("intents: %q, want %q", rec.ops, want)
			}
			if tc.intendErr != nil && (up.calls.Load() != 0 || r.settles != 1 || r.settledIn != 0 || r.settleOut != 0) {
				t.Fatalf("a request not intended: %d upstream calls, reservation %+v, want none and settled at zero", up.calls.Load(), r)
			}
		})
	}
}
