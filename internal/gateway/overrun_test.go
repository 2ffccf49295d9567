package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/apitest"
)

// TestUpstreamIsToldTheReservedMaxTokens: a request without max_tokens
// reserves the model's max_output_tokens, and the upstream is told so,
// instead of writing as much as its own default lets it.
func TestUpstreamIsToldTheReservedMaxTokens(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.Header.Get("Accept"), "event-stream") {
			sse(w, `[DONE]`)
			return
		}
		jsonAnswer(`{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1}}`)(w, r)
	})
	emb := Model{Name: "emb", Upstreams: []Upstream{{BaseURL: up.url()}}, Endpoints: []string{EndpointEmbeddings}}
	h := newHarness(t, Config{Models: []Model{chatModel("m", up), emb}})
	for i, c := range []struct {
		name, path, body string
		// want is the body the upstream gets: the client's bytes when
		// fields are only added, else its fields.
		want    string
		fields  map[string]string
		reserve int64
	}{
		{name: "none", path: "/v1/chat/completions", body: `{"model":"m","messages":[]}`,
			want: `{"model":"m","messages":[],"max_tokens":1000}`, reserve: 1000},
		{name: "none, two choices", path: "/v1/chat/completions", body: `{"model":"m","n":2,"messages":[]} `,
			want: `{"model":"m","n":2,"messages":[],"max_tokens":1000}`, reserve: 2000},
		{name: "null", path: "/v1/chat/completions", body: `{"model":"m","max_tokens":null,"messages":[]}`,
			fields: map[string]string{"model": `"m"`, "max_tokens": "1000", "messages": "[]"}, reserve: 1000},
		{name: "given", path: "/v1/chat/completions", body: `{"model":"m","max_tokens":50,"messages":[]}`,
			want: `{"model":"m","max_tokens":50,"messages":[]}`, reserve: 50},
		{name: "max_completion_tokens given", path: "/v1/chat/completions", body: `{"model":"m","max_completion_tokens":30}`,
			want: `{"model":"m","max_completion_tokens":30}`, reserve: 30},
		{name: "fill in the middle", path: "/v1/fim/completions", body: `{"model":"m","prompt":"def"}`,
			want: `{"model":"m","prompt":"def","max_tokens":1000}`, reserve: 1000},
		{name: "stream", path: "/v1/chat/completions", body: `{"model":"m","stream":true}`,
			want: `{"model":"m","stream":true,"max_tokens":1000,"stream_options":{"include_usage":true}}`, reserve: 1000},
		{name: "stream, both null", path: "/v1/chat/completions", body: `{"model":"m","stream":true,"stream_options":null,"max_tokens":null}`,
			fields: map[string]string{"model": `"m"`, "stream": "true", "max_tokens": "1000", "stream_options": `{"include_usage":true}`}, reserve: 1000},
		{name: "embeddings", path: "/v1/embeddings", body: `{"model":"emb","input":"x"}`,
			want: `{"model":"emb","input":"x"}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, h.srv.URL+c.path, strings.NewReader(c.body))
			req.Header.Set("Authorization", "Bearer "+goodKey)
			if strings.Contains(c.body, `"stream":true`) {
				req.Header.Set("Accept", "text/event-stream")
			}
			resp, err := h.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			readAll(t, resp)
			resp.Body.Close()
			h.rec.next(t)
			got := up.body(t, i)
			if c.fields == nil {
				if got != c.want {
					t.Fatalf("upstream got %s, want %s", got, c.want)
				}
			} else {
				var fields map[string]json.RawMessage
				if err := json.Unmarshal([]byte(got), &fields); err != nil || len(fields) != len(c.fields) || strings.Count(got, `"max_tokens"`) != 1 {
					t.Fatalf("upstream got %s, want the fields %v once each", got, c.fields)
				}
				for k, v := range c.fields {
					if string(fields[k]) != v {
						t.Fatalf("upstream got %s = %s, want %s", k, fields[k], v)
					}
				}
			}
			h.limits.mu.Lock()
			r := *h.limits.res[i]
			h.limits.mu.Unlock()
			if r.maxOut != c.reserve {
				t.Fatalf("reserved %d output tokens, want %d", r.maxOut, c.reserve)
			}
		})
	}
}

// TestStreamOutrunningItsReservationIsCut: an upstream that goes on
// streaming beyond max_tokens is stopped there; the client gets the end of
// a stream cut at its length, and the request is charged its reservation,
// marked as an overrun of that upstream.
func TestStreamOutrunningItsReservationIsCut(t *testing.T) {
	chunk := func(i int, content string, usage int) string {
		c := fmt.Sprintf(`{"id":"c1","object":"chat.completion.chunk","created":7,"model":"m","choices":[{"index":%d,"delta":{"content":%q},"finish_reason":null}]`, i, content)
		if usage > 0 {
			c += fmt.Sprintf(`,"usage":{"prompt_tokens":9,"completion_tokens":%d}`, usage)
		}
		return c + "}"
	}
	for _, c := range []struct {
		name, body string
		// events are what the upstream streams before it waits for the
		// call to end.
		events []string
		// relayed are the chunks the client gets before the end.
		relayed int
		// end is the chunk ending the stream, without its usage.
		end     string
		in, out int64
	}{
		{
			name: "a token a chunk", body: `{"model":"m","stream":true,"max_tokens":3,"messages":[{"role":"user","content":"abcd"}]}`,
			events:  []string{chunk(0, "", 0), chunk(0, "a", 0), chunk(0, "b", 0), chunk(0, "c", 0), chunk(0, "d", 0), chunk(0, "e", 0)},
			relayed: 4, end: `{"id":"c1","object":"chat.completion.chunk","created":7,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"length"}]`,
			// Charged its reservation: "abcd" is at most 4 tokens, + 4
			// for the message, + 3 for the reply.
			in: 4 + 4 + 3, out: 3,
		},
		{
			name: "usage in every chunk", body: `{"model":"m","stream":true,"max_tokens":3,"messages":[]}`,
			events:  []string{chunk(0, "ab", 2), chunk(0, "cdef", 6), chunk(0, "g", 7)},
			relayed: 1, end: `{"id":"c1","object":"chat.completion.chunk","created":7,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"length"}]`,
			in: 9, out: 6,
		},
		{
			name: "two choices", body: `{"model":"m","stream":true,"n":2,"max_tokens":2,"messages":[]}`,
			events: []string{chunk(0, "a", 0), chunk(1, "a", 0), `{"id":"c1","choices":[{"index":0,"delta":{"content":"b"},"finish_reason":"stop"}]}`,
				chunk(1, "b", 0), chunk(1, "c", 0), chunk(1, "d", 0)},
			relayed: 4, end: `{"id":"c1","object":"chat.completion.chunk","created":7,"model":"m","choices":[{"index":1,"delta":{},"finish_reason":"length"}]`,
			in: 3, out: 4,
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			cancelled := make(chan struct{})
			up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
				defer close(cancelled)
				for _, e := range c.events {
					sse(w, e)
				}
				<-r.Context().Done()
			})
			h := newHarness(t, Config{Models: []Model{chatModel("m", up)}})
			resp := h.post(t, context.Background(), "/v1/chat/completions", goodKey, c.body)
			br := bufio.NewReader(resp.Body)
			for i := range c.relayed {
				if got := readEvent(t, br); got != c.events[i] {
					t.Fatalf("event %d: %s, want %s", i, got, c.events[i])
				}
			}
			wantEnd := fmt.Sprintf(`%s,"usage":{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d}}`, c.end, c.in, c.out, c.in+c.out)
			got := readEvent(t, br)
			if got != wantEnd {
				t.Fatalf("the stream ends with %s, want %s", got, wantEnd)
			}
			apitest.CheckModelSchema(t, "CompletionChunk", []byte(got))
			if got := readEvent(t, br); got != "[DONE]" {
				t.Fatalf("then %s, want [DONE]", got)
			}
			select {
			case <-cancelled:
			case <-time.After(5 * time.Second):
				t.Fatal("the upstream call was not ended")
			}
			u := h.rec.next(t)
			if u.InputTokens != c.in || u.OutputTokens != c.out || !u.Overrun || u.Upstream != up.url() {
				t.Fatalf("usage %+v, want %d and %d tokens, an overrun of %s", u, c.in, c.out, up.url())
			}
			if r := h.limits.only(t); r.settles != 1 || r.settledIn != c.in || r.settleOut != c.out {
				t.Fatalf("settled %+v", r)
			}
			if want := `msg="the upstream used more than the request reserved" request_id=` + resp.Header.Get("x-request-id") + ` model=m upstream=` + up.url(); !strings.Contains(h.logs.String(), want) {
				t.Fatalf("no warning %s in\n%s", want, h.logs.String())
			}
		})
	}
}

// TestNonStreamedOverrunIsRecorded: what an upstream reports beyond the
// reservation is recorded as it is, marked and logged with the upstream;
// an estimate, made only when the upstream reports nothing, never goes
// beyond what the upstream was asked for.
func TestNonStreamedOverrunIsRecorded(t *testing.T) {
	for _, c := range []struct {
		name, answer string
		in, out      int64
		estimated    bool
		overrun      bool
	}{
		{"more output", `{"choices":[{"message":{"content":"x"}}],"usage":{"prompt_tokens":4,"completion_tokens":50}}`, 4, 50, false, true},
		// "abcd": 4 bytes, + 4 for the message, + 3 for the reply.
		{"more input", `{"choices":[{"message":{"content":"x"}}],"usage":{"prompt_tokens":12,"completion_tokens":1}}`, 12, 1, false, true},
		{"within", `{"choices":[{"message":{"content":"x"}}],"usage":{"prompt_tokens":11,"completion_tokens":5}}`, 11, 5, false, false},
		{"estimated", `{"choices":[{"message":{"content":"` + strings.Repeat("word ", 20) + `"}}]}`, 1 + 4 + 3, 5, true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			up := newUpstream(t, jsonAnswer(c.answer))
			h := newHarness(t, Config{Models: []Model{chatModel("m", up)}})
			resp := h.post(t, context.Background(), "/v1/chat/completions", goodKey, `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"abcd"}]}`)
			if got := readAll(t, resp); resp.StatusCode != 200 || got != c.answer {
				t.Fatalf("%d %s", resp.StatusCode, got)
			}
			u := h.rec.next(t)
			if u.InputTokens != c.in || u.OutputTokens != c.out || u.Estimated != c.estimated || u.Overrun != c.overrun {
				t.Fatalf("usage %+v, want %d and %d tokens, estimated %v, overrun %v", u, c.in, c.out, c.estimated, c.overrun)
			}
			logged := strings.Contains(h.logs.String(), `msg="the upstream used more than the request reserved"`) &&
				strings.Contains(h.logs.String(), "upstream="+up.url())
			if logged != c.overrun {
				t.Fatalf("overrun %v, but the log says:\n%s", c.overrun, h.logs.String())
			}
		})
	}
}
