package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/auth"
	"github.com/stewardhq/steward/internal/billing"
	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/enforce"
	"github.com/stewardhq/steward/internal/gateway"
	"github.com/stewardhq/steward/internal/inference"
	"github.com/stewardhq/steward/internal/keys"
	"github.com/stewardhq/steward/internal/limits"
	"github.com/stewardhq/steward/internal/metering"
	"github.com/stewardhq/steward/internal/quota"
	"github.com/stewardhq/steward/internal/server"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
	"github.com/stewardhq/steward/internal/usage"
)

type rateLimits struct {
	RequestsPerSecond   int64 `json:"requests_per_second"`
	TokensLimitsByModel map[string]struct {
		TokensPerMinute int64 `json:"tokens_per_minute"`
		TokensPerMonth  int64 `json:"tokens_per_month"`
	} `json:"tokens_limits_by_model"`
}

type spendLimit struct {
	Limits struct {
		Completion struct {
			NoMonthlyLimit      bool     `json:"no_monthly_limit"`
			MonthlyLimitReached bool     `json:"monthly_limit_reached"`
			Usage               *float64 `json:"usage"`
			UsageLimit          *float64 `json:"usage_limit"`
		} `json:"completion"`
		Currency string `json:"currency"`
	} `json:"limits"`
}

func TestRateLimits(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		var rl rateLimits
		ok(t, h.get("/v1/admin/rate-limit", h.boot.AdminKeySecret), &rl)
		if rl.RequestsPerSecond != 0 || len(rl.TokensLimitsByModel) != 0 {
			t.Fatalf("default limits = %+v, want none", rl)
		}
		ok(t, h.send("PUT", "/v1/admin/rate-limit", map[string]any{"requests_per_second": 20,
			"tokens_limits_by_model": map[string]any{"small": map[string]any{"tokens_per_minute": 1000, "tokens_per_month": 100000}}}), &rl)
		if rl.RequestsPerSecond != 20 || rl.TokensLimitsByModel["small"].TokensPerMinute != 1000 {
			t.Fatalf("set = %+v", rl)
		}
		ws := "/v1/admin/workspaces/" + h.boot.DefaultWorkspace.ID + "/rate-limit"
		expectValidation(t, h.send("PUT", ws, map[string]any{"requests_per_second": 50}), "body.requests_per_second")
		expectValidation(t, h.send("PUT", ws, map[string]any{"requests_per_second": 5,
			"tokens_limits_by_model": map[string]any{"small": map[string]any{"tokens_per_minute": 1001}}}), "body.tokens_limits_by_model.small")
		ok(t, h.send("PUT", ws, map[string]any{"requests_per_second": 5,
			"tokens_limits_by_model": map[string]any{"small": map[string]any{"tokens_per_minute": 100, "tokens_per_month": 1000}}}), &rl)
		if rl.RequestsPerSecond != 5 {
			t.Fatalf("workspace = %+v", rl)
		}
		// The Organization's limits cannot fall below a Workspace's.
		expectValidation(t, h.send("PUT", "/v1/admin/rate-limit", map[string]any{"requests_per_second": 2}), "body")
		expectValidation(t, h.send("PUT", "/v1/admin/rate-limit", map[string]any{"requests_per_second": 0}), "body.requests_per_second")
		expectError(t, h.get("/v1/admin/workspaces/6f9619ff-8b86-d011-b42d-00cf4fc964ff/rate-limit", h.boot.AdminKeySecret), http.StatusNotFound, "not_found_error")
		if n := h.eventCount(t, "rate_limit.rule.update"); n != 2 {
			t.Errorf("%d rate_limit.rule.update entries, want 2", n)
		}
	})
}

func TestSpendLimits(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		var sl spendLimit
		ok(t, h.get("/v1/admin/spend-limit", h.boot.AdminKeySecret), &sl)
		if !sl.Limits.Completion.NoMonthlyLimit || sl.Limits.Completion.UsageLimit != nil || *sl.Limits.Completion.Usage != 0 || sl.Limits.Currency != "USD" {
			t.Fatalf("default = %+v", sl)
		}
		ok(t, h.send("POST", "/v1/admin/spend-limit", map[string]any{"amount": 500}), &sl)
		if sl.Limits.Completion.NoMonthlyLimit || *sl.Limits.Completion.UsageLimit != 500 || sl.Limits.Completion.MonthlyLimitReached {
			t.Fatalf("with a cap = %+v", sl)
		}
		wsPath := "/v1/admin/workspaces/" + h.boot.DefaultWorkspace.ID + "/spend-limit"
		expectValidation(t, h.send("PUT", wsPath, map[string]any{"amount": 600}), "body.amount")
		var wsl struct {
			Value          *float64 `json:"value"`
			NoMonthlyLimit *bool    `json:"no_monthly_limit"`
		}
		ok(t, h.send("PUT", wsPath, map[string]any{"amount": 100}), &wsl)
		if *wsl.Value != 100 || *wsl.NoMonthlyLimit {
			t.Fatalf("workspace cap = %+v", wsl)
		}
		if r := h.get("/v1/admin/workspaces", h.boot.AdminKeySecret); !strings.Contains(string(r.body), `"spend_limit":{"value":100,"currency":"USD","no_monthly_limit":false}`) {
			t.Errorf("WorkspaceOUT does not show the cap: %s", r.body)
		}
		expectValidation(t, h.send("POST", "/v1/admin/spend-limit", map[string]any{"amount": 50}), "body.amount")
		expectValidation(t, h.send("POST", "/v1/admin/spend-limit", map[string]any{"amount": -1}), "body.amount")
		expectValidation(t, h.send("POST", "/v1/admin/spend-limit", map[string]any{}), "body.amount")
		ok(t, h.send("POST", "/v1/admin/spend-limit", map[string]any{"amount": 0, "no_monthly_limit": true}), &sl)
		if !sl.Limits.Completion.NoMonthlyLimit {
			t.Fatalf("after removing the cap = %+v", sl)
		}
		entries := h.auditLogs(t, h.boot.AdminKeySecret, "event_type=billing.monthly_limit.updated")
		if len(entries) != 2 || entries[1].EventMetadata["amount_after"] != "500" || entries[0].EventMetadata["amount_after"] != "none" {
			t.Errorf("monthly limit audit = %+v", entries)
		}
		if n := h.eventCount(t, "billing.workspace_monthly_limit.updated"); n != 1 {
			t.Errorf("%d workspace limit entries, want 1", n)
		}
	})
}

// A Workspace without a limit of its own for a model, or an archived one,
// never keeps the Organization from setting that model's limits; an active
// Workspace whose limit would be above the new one does.
func TestOrganizationTokenLimitsAndWorkspaces(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		org := "/v1/admin/rate-limit"
		wsLimits := func(id string) string { return "/v1/admin/workspaces/" + id + "/rate-limit" }
		// model gives one model's limits; 0 is none.
		model := func(name string, perMinute, perMonth int64) map[string]any {
			limits := map[string]any{}
			if perMinute > 0 {
				limits["tokens_per_minute"] = perMinute
			}
			if perMonth > 0 {
				limits["tokens_per_month"] = perMonth
			}
			return map[string]any{name: limits}
		}
		rpsOnly, archived, tight := h.workspace("rps only"), h.workspace("archived"), h.workspace("tight")
		ok(t, h.send("PUT", wsLimits(rpsOnly), map[string]any{"requests_per_second": 5}), nil)
		ok(t, h.send("PUT", wsLimits(archived), map[string]any{"tokens_limits_by_model": model("small", 5000, 0)}), nil)
		if r := h.send("DELETE", "/v1/admin/workspaces/"+archived, nil); r.status >= 300 {
			t.Fatalf("archive: %d %s", r.status, r.body)
		}

		var rl rateLimits
		ok(t, h.send("PUT", org, map[string]any{"requests_per_second": 10, "tokens_limits_by_model": model("small", 1000, 100000)}), &rl)
		if rl.RequestsPerSecond != 10 || rl.TokensLimitsByModel["small"].TokensPerMinute != 1000 || rl.TokensLimitsByModel["small"].TokensPerMonth != 100000 {
			t.Fatalf("Organization limits = %+v", rl)
		}
		// A Workspace may set only some limits: the Organization's hold the rest.
		ok(t, h.send("PUT", wsLimits(tight), map[string]any{"tokens_limits_by_model": model("small", 500, 0)}), &rl)
		if rl.RequestsPerSecond != 0 || rl.TokensLimitsByModel["small"].TokensPerMinute != 500 {
			t.Fatalf("Workspace limits = %+v", rl)
		}
		v := expectValidation(t, h.send("PUT", wsLimits(tight), map[string]any{"tokens_limits_by_model": model("small", 2000, 0)}), "body.tokens_limits_by_model.small")
		if !strings.Contains(v.Detail[0].Msg, "may not exceed the Organization's") {
			t.Errorf("message = %q", v.Detail[0].Msg)
		}
		// Lowering the Organization's below the tight Workspace's is refused,
		// and changes nothing.
		v = expectValidation(t, h.send("PUT", org, map[string]any{"requests_per_second": 10, "tokens_limits_by_model": model("small", 400, 100000)}), "body")
		if !strings.Contains(v.Detail[0].Msg, "would fall below those of Workspace "+tight) {
			t.Errorf("message = %q", v.Detail[0].Msg)
		}
		ok(t, h.get(org, h.boot.AdminKeySecret), &rl)
		if rl.TokensLimitsByModel["small"].TokensPerMinute != 1000 {
			t.Fatalf("after the refusal = %+v", rl)
		}
		ok(t, h.send("PUT", org, map[string]any{"requests_per_second": 10, "tokens_limits_by_model": model("small", 500, 100000)}), &rl)
		if n := h.eventCount(t, "rate_limit.rule.update"); n != 5 {
			t.Errorf("%d rate_limit.rule.update entries, want 5", n)
		}
	})
}

// A limit or cap above its bound, even one too large for int64, gets a 422
// that names the field and the largest value accepted, and changes
// nothing. 9223372036855 units was accepted before, and its micro-units
// overflowed into a negative cap that failed every model request.
func TestLimitsAboveTheirBounds(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		wsSpend := "/v1/admin/workspaces/" + h.boot.DefaultWorkspace.ID + "/spend-limit"
		wsRate := "/v1/admin/workspaces/" + h.boot.DefaultWorkspace.ID + "/rate-limit"
		aboveInt64 := json.RawMessage("9223372036854775808")
		model := func(field string, v any) map[string]any {
			return map[string]any{"tokens_limits_by_model": map[string]any{"small": map[string]any{field: v}}}
		}
		for _, c := range []struct {
			name, method, path string
			body               any
			field              string
			largest            int64
		}{
			{"an amount whose micro-units overflow", "POST", "/v1/admin/spend-limit", map[string]any{"amount": 9223372036855}, "body.amount", quota.MaxAmount},
			{"one above the largest amount", "POST", "/v1/admin/spend-limit", map[string]any{"amount": quota.MaxAmount + 1}, "body.amount", quota.MaxAmount},
			{"an amount above int64", "POST", "/v1/admin/spend-limit", map[string]any{"amount": aboveInt64}, "body.amount", quota.MaxAmount},
			{"a Workspace amount whose micro-units overflow", "PUT", wsSpend, map[string]any{"amount": 9223372036855}, "body.amount", quota.MaxAmount},
			{"a Workspace amount above int64", "PUT", wsSpend, map[string]any{"amount": aboveInt64}, "body.amount", quota.MaxAmount},
			{"requests per second", "PUT", "/v1/admin/rate-limit", map[string]any{"requests_per_second": quota.MaxRequestsPerSecond + 1}, "body.requests_per_second", quota.MaxRequestsPerSecond},
			{"tokens per minute", "PUT", "/v1/admin/rate-limit", model("tokens_per_minute", quota.MaxTokenLimit+1), "body.tokens_limits_by_model.small.tokens_per_minute", quota.MaxTokenLimit},
			{"tokens per month above int64", "PUT", "/v1/admin/rate-limit", model("tokens_per_month", aboveInt64), "body.tokens_limits_by_model.small.tokens_per_month", quota.MaxTokenLimit},
			{"a Workspace's requests per second above int64", "PUT", wsRate, map[string]any{"requests_per_second": aboveInt64}, "body.requests_per_second", quota.MaxRequestsPerSecond},
			{"a Workspace's tokens per month", "PUT", wsRate, model("tokens_per_month", quota.MaxTokenLimit+1), "body.tokens_limits_by_model.small.tokens_per_month", quota.MaxTokenLimit},
		} {
			r := h.send(c.method, c.path, c.body)
			if r.status != http.StatusUnprocessableEntity {
				t.Errorf("%s: status %d, want 422; body %s", c.name, r.status, r.body)
				continue
			}
			var v validationError
			r.decode(t, &v)
			largest := strconv.FormatInt(c.largest, 10)
			if len(v.Detail) != 1 || strings.Join(v.Detail[0].Loc, ".") != c.field || !strings.Contains(v.Detail[0].Msg, largest) || v.Detail[0].Type == "" {
				t.Errorf("%s: 422 %s, want one detail at %s naming %s", c.name, r.body, c.field, largest)
			}
		}
		var sl spendLimit
		ok(t, h.get("/v1/admin/spend-limit", h.boot.AdminKeySecret), &sl)
		var rl rateLimits
		ok(t, h.get("/v1/admin/rate-limit", h.boot.AdminKeySecret), &rl)
		if !sl.Limits.Completion.NoMonthlyLimit || rl.RequestsPerSecond != 0 || len(rl.TokensLimitsByModel) != 0 {
			t.Fatalf("after the refusals: spend %+v, rate %+v; want no limits", sl, rl)
		}
	})
}

// forEachGatewayEngine runs fn with a harness that also serves the model
// API, with the demo model, its limits enforced as serve enforces them.
func forEachGatewayEngine(t *testing.T, fn func(t *testing.T, h *harness)) {
	storetest.Run(t, func(t *testing.T, db *store.DB) { fn(t, newHarnessWith(t, db, gatewayDeps(t, db))) })
}

// gatewayDeps completes a harness's deps with the model API of
// forEachGatewayEngine, whose usage is recorded in db.
func gatewayDeps(t *testing.T, db *store.DB) func(*server.Deps) {
	t.Helper()
	// The demo model, the only one served, at its price.
	prices, err := billing.NewPrices([]billing.ModelPrice{gateway.DemoPrice})
	if err != nil {
		t.Fatal(err)
	}
	routes := modelAPI(t, db, gateway.Config{Prices: prices, Currency: "USD", DemoModel: true})
	return func(d *server.Deps) { d.Gateway = routes }
}

// modelAPI returns the routes of a gateway of cfg over db, as serve wires
// it: Workspace keys checked by the one authenticator, limits enforced at
// cfg's prices (none when nil), usage recorded.
func modelAPI(t *testing.T, db *store.DB, cfg gateway.Config) []inference.Route {
	t.Helper()
	ctx := context.Background()
	checker, err := keys.NewChecker(ctx, db, directory.NewAccess(db))
	if err != nil {
		t.Fatal(err)
	}
	rec := usage.NewRecorder(db, usage.Options{})
	go rec.Run(ctx)
	t.Cleanup(func() {
		if err := rec.Close(); err != nil {
			t.Error(err)
		}
	})
	if cfg.Prices == nil {
		if cfg.Prices, err = billing.NewPrices(nil); err != nil {
			t.Fatal(err)
		}
	}
	authn, err := auth.New(auth.Config{DB: db, WorkspaceKeys: checker})
	if err != nil {
		t.Fatal(err)
	}
	gw, err := gateway.New(cfg, authn, enforce.New(db, limits.NewLocal(nil), cfg.Prices, time.Now), metering.Meter{Usage: rec}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return gw.Routes()
}

// chat sends a chat completion to the demo model with a Workspace key and
// fails the test unless it is answered 200.
func (h *harness) chat(key, what string) {
	h.t.Helper()
	req, err := http.NewRequest("POST", h.http.URL+"/v1/chat/completions", strings.NewReader(`{"model":"steward-demo","messages":[{"role":"user","content":"hello"}]}`))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.http.Client().Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	var body strings.Builder
	_, err = io.Copy(&body, resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		h.t.Fatalf("%s: a model request got %d, %v; body %s", what, resp.StatusCode, err, body.String())
	}
}

// The largest accepted limits and caps let model requests through, and so
// does a cap stored above MaxAmount before it was checked: the limiter
// gets its micro-units saturated, never wrapped round to a negative
// number, and the cap is not reported as reached.
func TestModelRequestsUnderTheLargestLimits(t *testing.T) {
	forEachGatewayEngine(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		_, key := h.apiKey(h.boot.DefaultWorkspace.ID)
		if err := h.db.Transact(ctx, func(tx *store.Tx) error {
			_, err := tx.Exec(ctx, `UPDATE organizations SET spend_limit = ? WHERE id = ?`, int64(9223372036855), h.boot.Organization.ID)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		h.chat(key, "under a cap of 9223372036855 stored by an earlier version")
		var sl spendLimit
		ok(t, h.get("/v1/admin/spend-limit", h.boot.AdminKeySecret), &sl)
		if c := sl.Limits.Completion; c.MonthlyLimitReached || *c.UsageLimit != 9223372036855 {
			t.Fatalf("under a stored cap of 9223372036855: %+v, want it not reached", c)
		}

		largest := map[string]any{"requests_per_second": quota.MaxRequestsPerSecond, "tokens_limits_by_model": map[string]any{
			gateway.DemoModelName: map[string]any{"tokens_per_minute": quota.MaxTokenLimit, "tokens_per_month": quota.MaxTokenLimit}}}
		ok(t, h.send("POST", "/v1/admin/spend-limit", map[string]any{"amount": quota.MaxAmount}), &sl)
		ok(t, h.send("PUT", "/v1/admin/workspaces/"+h.boot.DefaultWorkspace.ID+"/spend-limit", map[string]any{"amount": quota.MaxAmount}), nil)
		ok(t, h.send("PUT", "/v1/admin/rate-limit", largest), nil)
		ok(t, h.send("PUT", "/v1/admin/workspaces/"+h.boot.DefaultWorkspace.ID+"/rate-limit", largest), nil)
		h.chat(key, "under the largest limits")
		ok(t, h.get("/v1/admin/spend-limit", h.boot.AdminKeySecret), &sl)
		if c := sl.Limits.Completion; c.MonthlyLimitReached || *c.UsageLimit != quota.MaxAmount {
			t.Fatalf("under the largest cap: %+v, want it not reached", c)
		}
	})
}
