package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// TestScriptedRun is the acceptance run: an Organization spend cap
// set through the Admin API, concurrent traffic with two keys, one key
// revoked mid-run, and what was answered compared with what GET /usage and
// GET /spend-limit report.
func TestScriptedRun(t *testing.T) {
	engines(t, scriptedRun)
}

func scriptedRun(t *testing.T, db []string) {
	model := fakeModel()
	defer model.Close()
	// 12 input and 2 output tokens an answer, at 1,000 a million: 0.014.
	const costPerAnswer = 0.014
	cfg := filepath.Join(t.TempDir(), "steward.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, "models:\n  - name: fake\n    upstreams:\n      - url: %s\n    input_price_per_million: 1000\n    output_price_per_million: 1000\n", model.URL), 0o600); err != nil {
		t.Fatal(err)
	}
	p := start(t, append(db, "--config", cfg)...)
	admin := adminKey.FindStringSubmatch(p.output)[1]
	var keys [2]struct{ KeyID, Key string }
	for i := range keys {
		keys[i].KeyID, keys[i].Key = p.workspaceKey(t, admin)
	}
	if status, body := p.call(t, "POST", "/v1/admin/spend-limit", admin, `{"amount":1}`); status != 200 {
		t.Fatalf("spend cap: %d %s", status, body)
	}

	const workers, perWorker = 4, 40
	var answered, capped, afterRevoke atomic.Int64
	// revoking is set when key 2's revocation is sent, revoked when it
	// has returned: a request in flight meanwhile may be refused.
	var revoking, revoked atomic.Bool
	var revokeOnce sync.Once
	var wg sync.WaitGroup
	for k := range keys {
		for range workers {
			wg.Go(func() {
				for range perWorker {
					wasRevoked := k == 1 && revoked.Load()
					resp, b, err := p.chat(keys[k].Key, hello)
					if err != nil {
						t.Error(err)
						return
					}
					switch {
					case resp.StatusCode == 200 && wasRevoked:
						t.Errorf("key 2 answered after its revocation returned")
					case resp.StatusCode == 200:
						answered.Add(1)
						if k == 1 {
							revokeOnce.Do(func() {
								revoking.Store(true)
								if status, body := p.call(t, "DELETE", "/v1/admin/api-keys/"+keys[1].KeyID, admin, ""); status != 204 && status != 200 {
									t.Errorf("revoke: %d %s", status, body)
								}
								revoked.Store(true)
							})
						}
					case resp.StatusCode == 401 && (wasRevoked || k == 1 && revoking.Load()):
						afterRevoke.Add(1)
					case resp.StatusCode == 429 && strings.Contains(string(b), "spend_limit_exceeded"):
						capped.Add(1)
					default:
						t.Errorf("key %d: %d %s", k+1, resp.StatusCode, b)
					}
				}
			})
		}
	}
	wg.Wait()
	if answered.Load() == 0 || capped.Load() == 0 || afterRevoke.Load() == 0 {
		t.Fatalf("answered %d, refused by the cap %d, refused after revocation %d: want some of each", answered.Load(), capped.Load(), afterRevoke.Load())
	}

	var spend struct {
		Limits struct {
			Completion struct {
				Usage      float64 `json:"usage"`
				UsageLimit float64 `json:"usage_limit"`
			} `json:"completion"`
		} `json:"limits"`
	}
	want := float64(answered.Load()) * costPerAnswer
	// The last answers' usage is committed a moment after them.
	body := eventually(func() (string, bool) {
		status, body := p.call(t, "GET", "/v1/admin/spend-limit", admin, "")
		if err := json.Unmarshal([]byte(body), &spend); status != 200 || err != nil {
			t.Fatalf("spend limit: %d %s", status, body)
		}
		return body, math.Abs(spend.Limits.Completion.Usage-want) <= 1e-6
	})
	if got := spend.Limits.Completion; math.Abs(got.Usage-want) > 1e-6 || got.Usage > 1 || got.UsageLimit != 1 {
		t.Fatalf("spend limit reports %s; %d answers cost %.3f under a cap of 1", body, answered.Load(), want)
	}
	var rep struct {
		Completion struct {
			Models map[string]map[string][]struct{ Value float64 } `json:"models"`
		} `json:"completion"`
	}
	eventually(func() (string, bool) {
		_, body := p.call(t, "GET", "/v1/admin/usage", admin, "")
		_ = json.Unmarshal([]byte(body), &rep)
		reqs := rep.Completion.Models["fake"]["requests"]
		return body, len(reqs) == 1 && int64(reqs[0].Value) == answered.Load()
	})
	if reqs := rep.Completion.Models["fake"]["requests"]; len(reqs) != 1 || int64(reqs[0].Value) != answered.Load() {
		t.Fatalf("usage shows %+v requests, want %d", reqs, answered.Load())
	}
}
