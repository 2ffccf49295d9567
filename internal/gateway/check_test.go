package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/apierror"
	"github.com/stewardhq/steward/internal/steward"
)

func TestCheckAPI(t *testing.T) {
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	m := Model{Name: "m", Upstreams: []Upstream{{BaseURL: "http://127.0.0.1:9"}}, InputPricePerMillion: 1, OutputPricePerMillion: 2}
	h := newHarness(t, Config{Models: []Model{m}, Now: func() time.Time { return time.Unix(0, clock.Load()) }})
	ctx := context.Background()

	resp := h.post(t, ctx, "/v1/check?model=m&prompt_tokens=100&max_tokens=50", goodKey, "")
	body := readAll(t, resp)
	var out checkOut
	if err := json.Unmarshal([]byte(body), &out); resp.StatusCode != 200 || err != nil || out.CheckID == "" || out.WorkspaceID != "ws1" ||
		resp.Header.Get("x-steward-check-id") != out.CheckID || resp.Header.Get("X-Ratelimit-Remaining-Tokens") != "1000" {
		t.Fatalf("check: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	if r := h.limits.only(t); r.prompt != 100 || r.maxOut != 50 || r.model != "m" {
		t.Fatalf("reservation = %+v", r)
	}
	h.rec.none(t)

	report := "/v1/check/" + out.CheckID + "/report"
	// Another key of the same Workspace cannot report it.
	if resp := h.post(t, ctx, report, otherKey, `{"input_tokens": 1, "output_tokens": 1}`); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("a report by another key: %d", resp.StatusCode)
	}
	if resp := h.post(t, ctx, report, goodKey, `{"input_tokens": 90, "output_tokens": 20}`); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("report: %d %s", resp.StatusCode, readAll(t, resp))
	}
	u := h.rec.next(t)
	if u.InputTokens != 90 || u.OutputTokens != 20 || u.Estimated || u.Cost != 90+40 || u.Key != testKey || u.Currency != "EUR" {
		t.Fatalf("usage = %+v", u)
	}
	if r := h.limits.only(t); r.settledIn != 90 || r.settleOut != 20 || r.settles != 1 {
		t.Fatalf("settlement = %+v", r)
	}
	// A check is reported once, and only by its key.
	if resp := h.post(t, ctx, report, goodKey, `{"input_tokens": 1, "output_tokens": 1}`); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("a second report: %d", resp.StatusCode)
	}
	for path, want := range map[string]int{
		"/v1/check?model=nope":                      422,
		"/v1/check?model=m&max_tokens=-4":           422,
		"/v1/check/" + out.CheckID + "/report/more": 404,
	} {
		if resp := h.post(t, ctx, path, goodKey, `{}`); resp.StatusCode != want {
			t.Errorf("%s: %d, want %d", path, resp.StatusCode, want)
		}
	}
	if resp := h.post(t, ctx, "/v1/check?model=m", "sk-forbidden", ""); resp.StatusCode != 403 {
		t.Errorf("a forbidden key: %d", resp.StatusCode)
	}
	if resp := h.post(t, ctx, "/v1/check?model=m", "", ""); resp.StatusCode != 401 {
		t.Errorf("no key: %d", resp.StatusCode)
	}
	if resp := h.post(t, ctx, report, goodKey, `{"input_tokens": -1, "output_tokens": 1}`); resp.StatusCode != 422 {
		t.Errorf("a negative report: %d", resp.StatusCode)
	}

	// A check never reported is charged its worst case, estimated.
	resp = h.post(t, ctx, "/v1/check?model=m&prompt_tokens=10&max_tokens=5", goodKey, "")
	if resp.StatusCode != 200 {
		t.Fatal(resp.StatusCode)
	}
	// Checks are swept in the background, not by the requests.
	sweep, stop := context.WithCancel(ctx)
	defer stop()
	go h.g.ExpireChecks(sweep, time.Millisecond)
	time.Sleep(20 * time.Millisecond)
	h.rec.none(t)
	clock.Add(int64(CheckTTL + time.Second))
	u = h.rec.next(t)
	if u.InputTokens != 10 || u.OutputTokens != 5 || !u.Estimated {
		t.Fatalf("an expired check's usage = %+v", u)
	}

	// A refused check answers 429 in Mistral's format and reserves nothing.
	h.limits.refuse = &Refusal{
		Err:        &steward.Error{Kind: steward.KindRateLimited, Code: "rate_limit_exceeded", Message: "too many requests"},
		RetryAfter: time.Second,
	}
	resp = h.post(t, ctx, "/v1/check?model=m", goodKey, "")
	var e apierror.Body
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "1" ||
		resp.Header.Get("x-steward-check-id") != "" || e.Code == nil || *e.Code != "rate_limit_exceeded" {
		t.Fatalf("a refused check: %d %v %+v", resp.StatusCode, resp.Header, e)
	}
}
