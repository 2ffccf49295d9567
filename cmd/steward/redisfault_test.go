package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// redisServer runs a Redis server of the test's own, without persistence,
// on port, until the test ends or stop is called.
func redisServer(t *testing.T, port int) (stop func()) {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("redis-server: %v", err)
		}
		t.Skipf("Redis fault test not run: no redis-server: %v", err)
	}
	cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--save", "", "--appendonly", "no")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stop = func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	t.Cleanup(stop)
	for range 100 {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			return stop
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("redis-server on port %d did not start", port)
	return nil
}

// freePort returns a loopback port nothing listens on now.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestRedisStopsAndReturns stops the limits' Redis mid-run and starts it
// again, empty: a spend cap fails closed with a clear 503 meanwhile, a rate
// limit fails open, and once Redis is back the cap holds over the whole
// month, counting the spend from before the restart.
func TestRedisStopsAndReturns(t *testing.T) {
	port := freePort(t)
	stopRedis := redisServer(t, port)
	model := fakeModel()
	defer model.Close()
	// 12 input and 2 output tokens an answer, at 1,000 a million: 0.014.
	const costPerAnswer = 0.014
	cfg := filepath.Join(t.TempDir(), "steward.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, "models:\n  - name: fake\n    upstreams:\n      - url: %s\n    input_price_per_million: 1000\n    output_price_per_million: 1000\n", model.URL), 0o600); err != nil {
		t.Fatal(err)
	}
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p := start(t, "--data-dir", t.TempDir(), "--config", cfg, "--redis-url", fmt.Sprintf("redis://127.0.0.1:%d/0", port), "--metrics-addr", metricsAddr)
	admin := adminKey.FindStringSubmatch(p.output)[1]
	_, key := p.workspaceKey(t, admin)
	chat := func() (int, string) {
		resp, b, err := p.chat(key, hello)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, b
	}
	setCap := func(body string) {
		t.Helper()
		if status, b := p.call(t, "POST", "/v1/admin/spend-limit", admin, body); status != 200 {
			t.Fatalf("spend limit %s: %d %s", body, status, b)
		}
	}
	if status, body := p.call(t, "PUT", "/v1/admin/rate-limit", admin, `{"requests_per_second":1000}`); status != 200 {
		t.Fatalf("rate limit: %d %s", status, body)
	}
	setCap(`{"amount":1}`)
	answered := 0
	for range 20 {
		if status, body := chat(); status != 200 {
			t.Fatalf("with Redis: %d %s", status, body)
		}
		answered++
	}

	stopRedis()
	status, body := chat()
	var e struct {
		Object, Message, Type string
		Code                  *string
	}
	if err := json.Unmarshal([]byte(body), &e); status != 503 || err != nil || e.Object != "error" || e.Code == nil || *e.Code != "limits_unavailable" || !strings.Contains(e.Message, "Redis") {
		t.Fatalf("spend cap without Redis: %d %s; want 503 limits_unavailable", status, body)
	}
	scraped := []byte(eventually(func() (string, bool) {
		resp, err := http.Get("http://" + metricsAddr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		scraped, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return string(scraped), strings.Contains(string(scraped), "steward_usage_events_total 20\n")
	}))
	for _, want := range []string{`steward_gateway_refusals_total{reason="limits_unavailable"} 1`, `steward_gateway_requests_total{code="200"} 20`, `steward_gateway_requests_total{code="503"} 1`, "steward_usage_events_total 20", "steward_usage_failed_batches_total 0"} {
		if !strings.Contains(string(scraped), want+"\n") {
			t.Errorf("metrics lack %s", want)
		}
	}
	if !regexp.MustCompile(`(?m)^steward_limiter_redis_errors_total [1-9]`).Match(scraped) {
		t.Errorf("metrics count no Redis error")
	}
	// A request's reservation and its usage may take a batch each.
	if !regexp.MustCompile(`(?m)^steward_usage_batches_total ([1-9]|[1-3][0-9]|40)$`).Match(scraped) {
		t.Errorf("metrics count no usage batch, or more than two for each of the 20 requests")
	}
	// Without the cap only the rate limit applies, and it fails open.
	setCap(`{"amount":1,"no_monthly_limit":true}`)
	if status, body := chat(); status != 200 {
		t.Fatalf("rate limit without Redis: %d %s; want it to fail open", status, body)
	}
	answered++
	setCap(`{"amount":1}`)

	redisServer(t, port)
	// The client reconnects by itself.
	for i := 0; ; i++ {
		status, body := chat()
		if status == 200 {
			answered++
			break
		}
		if i == 100 || status != 503 {
			t.Fatalf("after Redis returned: %d %s", status, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for range 100 {
		status, body := chat()
		if status == 429 && strings.Contains(body, "spend_limit_exceeded") {
			break
		}
		if status != 200 {
			t.Fatalf("after Redis returned: %d %s", status, body)
		}
		answered++
	}
	// The restarted Redis was empty: had the counter started again from
	// zero, the 22 answers before it would come on top of a full cap.
	if answered < 70 || float64(answered)*costPerAnswer > 1 {
		t.Fatalf("%d answers under a cap of 1 at %.3f each", answered, costPerAnswer)
	}
	var spend struct {
		Limits struct {
			Completion struct {
				Usage float64 `json:"usage"`
			} `json:"completion"`
		} `json:"limits"`
	}
	body = eventually(func() (string, bool) {
		_, body := p.call(t, "GET", "/v1/admin/spend-limit", admin, "")
		err := json.Unmarshal([]byte(body), &spend)
		return body, err == nil && math.Abs(spend.Limits.Completion.Usage-float64(answered)*costPerAnswer) <= 1e-6
	})
	if math.Abs(spend.Limits.Completion.Usage-float64(answered)*costPerAnswer) > 1e-6 {
		t.Fatalf("spend limit reports %s; want %d answers", body, answered)
	}
}
