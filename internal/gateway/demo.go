package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/stewardhq/steward/internal/apierror"
)

// demo answers a chat request to DemoModelName without an upstream: the
// answer echoes the last user message, cut to max_tokens by the estimate,
// and its usage is the gateway's estimate (Estimated), settled and
// recorded like any other.
func (x *exchange) demo() {
	answer, reason := x.req.lastUser, "stop"
	limit := x.req.maxTokens
	if limit == 0 {
		limit = x.m.maxOut
	}
	if estimateTokens(int64(len(answer))) > limit {
		cut := int(limit * 4)
		for cut > 0 && !utf8.RuneStart(answer[cut]) {
			cut--
		}
		answer, reason = answer[:cut], "length"
	}
	in, out := x.req.prompt.estimate(), estimateTokens(int64(len(answer)))
	usage := map[string]int64{"prompt_tokens": in, "completion_tokens": out, "total_tokens": in + out}
	id := "chatcmpl-" + x.id
	created := x.start.Unix()
	if !x.req.stream {
		if x.finish(outcome{in: in, out: out, estimated: true}) != nil {
			x.unrecorded()
			return
		}
		apierror.WriteJSON(x.w, http.StatusOK, map[string]any{
			"id": id, "object": "chat.completion", "created": created, "model": DemoModelName,
			"choices": []any{map[string]any{
				"index": 0, "message": map[string]any{"role": "assistant", "content": answer}, "finish_reason": reason,
			}},
			"usage": usage,
		})
		return
	}
	if !x.durable() {
		return
	}
	h := x.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	x.w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(x.w)
	event := func(delta map[string]any, finish any, u any) {
		c := map[string]any{
			"id": id, "object": "chat.completion.chunk", "created": created, "model": DemoModelName,
			"choices": []any{map[string]any{"index": 0, "delta": delta, "finish_reason": finish}},
		}
		if u != nil {
			c["usage"] = u
		}
		b, _ := json.Marshal(c)
		_, _ = fmt.Fprintf(x.w, "data: %s\n\n", b)
		_ = rc.Flush()
	}
	event(map[string]any{"role": "assistant", "content": ""}, nil, nil)
	for _, word := range strings.SplitAfter(answer, " ") {
		if word != "" {
			event(map[string]any{"content": word}, nil, nil)
		}
	}
	// Usage rides on the last content chunk, as Mistral sends it, so that
	// clients that did not ask for a usage-only chunk see none.
	event(map[string]any{}, reason, usage)
	_, _ = x.w.Write([]byte("data: [DONE]\n\n"))
	_ = rc.Flush()
	_ = x.finish(outcome{in: in, out: out, estimated: true})
}
