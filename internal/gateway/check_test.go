package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/apierror"
	"github.com/stewardhq/steward/internal/billing"
	"github.com/stewardhq/steward/internal/inference"
	"github.com/stewardhq/steward/internal/steward"
)

func TestCheckAPI(t *testing.T) {
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	m := Model{Name: "m", Upstreams: []Upstream{{BaseURL: "http://127.0.0.1:9"}}}
	prices := newPrices(t, billing.ModelPrice{Model: "m", InputPerMillion: 1, OutputPerMillion: 2})
	h := newHarness(t, Config{Models: []Model{m}, Prices: prices, Now: func() time.Time { return time.Unix(0, clock.Load()) }})
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
	// The key reports more output than it reserved: that is recorded, and
	// less input, which is not: the check reserved 100.
	if resp := h.post(t, ctx, report, goodKey, `{"input_tokens": 90, "output_tokens": 60}`); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("report: %d %s", resp.StatusCode, readAll(t, resp))
	}
	u := h.rec.next(t)
	if u.InputTokens != 100 || u.OutputTokens != 60 || u.Estimated || !u.Overrun || u.Cost != 100+120 || u.Key != testKey || u.Currency != "EUR" {
		t.Fatalf("usage = %+v", u)
	}
	if r := h.limits.only(t); r.settledIn != 100 || r.settleOut != 60 || r.settles != 1 {
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
	h.limits.refuse = &inference.Refusal{
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

// TestCheckReportKeepsTheReservation: a key reporting its own check cannot
// make it cost less than it reserved; the proxy holding the report token
// reports what was used, less or more.
func TestCheckReportKeepsTheReservation(t *testing.T) {
	const token = "report-token-of-the-proxy-0123456789"
	m := Model{Name: "m", Upstreams: []Upstream{{BaseURL: "http://127.0.0.1:9"}}}
	prices := newPrices(t, billing.ModelPrice{Model: "m", InputPerMillion: 1, OutputPerMillion: 2})
	h := newHarnessAuth(t, Config{Models: []Model{m}, Prices: prices}, fakeAuth{report: token})
	ctx := context.Background()
	check := func() string {
		t.Helper()
		resp := h.post(t, ctx, "/v1/check?model=m&prompt_tokens=100&max_tokens=50", goodKey, "")
		id := resp.Header.Get("x-steward-check-id")
		if resp.StatusCode != 200 || id == "" {
			t.Fatalf("check: %d %s", resp.StatusCode, readAll(t, resp))
		}
		return "/v1/check/" + id + "/report"
	}
	for _, c := range []struct {
		name, by, report string
		in, out          int64
		overrun          bool
	}{
		{"the key reports nothing used", goodKey, `{"input_tokens": 0, "output_tokens": 0}`, 100, 50, false},
		{"the key reports less", goodKey, `{"input_tokens": 90, "output_tokens": 20}`, 100, 50, false},
		{"the key reports more", goodKey, `{"input_tokens": 120, "output_tokens": 20}`, 120, 50, true},
		{"the proxy reports nothing used", token, `{"input_tokens": 0, "output_tokens": 0}`, 0, 0, false},
		{"the proxy reports less", token, `{"input_tokens": 90, "output_tokens": 20}`, 90, 20, false},
		{"the proxy reports more", token, `{"input_tokens": 90, "output_tokens": 70}`, 90, 70, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			if resp := h.post(t, ctx, check(), c.by, c.report); resp.StatusCode != http.StatusNoContent {
				t.Fatalf("report: %d %s", resp.StatusCode, readAll(t, resp))
			}
			u := h.rec.next(t)
			if u.InputTokens != c.in || u.OutputTokens != c.out || u.Overrun != c.overrun || u.Cost != c.in+2*c.out || u.Key != testKey {
				t.Fatalf("usage = %+v, want %d and %d tokens, overrun %v, of the check's key", u, c.in, c.out, c.overrun)
			}
		})
	}
	if !strings.Contains(h.logs.String(), `msg="a check was reported beyond its reservation"`) {
		t.Errorf("the overruns are not logged:\n%s", h.logs.String())
	}

	report := check()
	for _, c := range []struct {
		name, by, body string
		status         int
		want           string
	}{
		{"another token", token + "x", `{"input_tokens": 0, "output_tokens": 0}`, 401, `"type":"authentication_error"`},
		{"too many tokens", token, `{"input_tokens": 1073741825, "output_tokens": 0}`, 422, `whole numbers from 0 to 1073741824`},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp := h.post(t, ctx, report, c.by, c.body)
			if got := readAll(t, resp); resp.StatusCode != c.status || !strings.Contains(got, c.want) {
				t.Fatalf("%d %s, want %d with %s", resp.StatusCode, got, c.status, c.want)
			}
		})
	}
	h.rec.none(t)
	// The report token reports; it is no key, and checks nothing.
	if resp := h.post(t, ctx, "/v1/check?model=m", token, ""); resp.StatusCode != 401 {
		t.Fatalf("a check with the report token: %d %s", resp.StatusCode, readAll(t, resp))
	}
	if strings.Contains(h.logs.String(), token) {
		t.Fatal("the report token was logged")
	}
}
