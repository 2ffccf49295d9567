package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/redistest"
	"github.com/stewardhq/steward/internal/store/storetest"
)

// BenchmarkScaleOut sends a fixed number of chat requests, as fast as 32
// clients can, through one and through three steward processes on
// PostgreSQL and Redis, with a rate limit, a token limit and a spend cap
// set, and reports the requests per second in all and per process, the
// latency, and the limiter's Redis round trips per request.
//
//	STEWARD_TEST_POSTGRES=... STEWARD_TEST_REDIS=... go test ./cmd/steward -run '^$' -bench ScaleOut -benchtime 1x
func BenchmarkScaleOut(b *testing.B) {
	for _, n := range []int{1, 3} {
		b.Run(fmt.Sprintf("processes=%d", n), func(b *testing.B) { scaleOut(b, n) })
	}
}

func scaleOut(b *testing.B, n int) {
	const requests, workers = 4000, 32
	_, prefix := redistest.Open(b)
	db, dbCfg := storetest.OpenPostgres(b)
	db.Close()
	model := fakeModel()
	defer model.Close()
	cfg := filepath.Join(b.TempDir(), "steward.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, "models:\n  - name: fake\n    upstreams:\n      - url: %s\n    input_price_per_million: 0.1\n    output_price_per_million: 0.3\n", model.URL), 0o600); err != nil {
		b.Fatal(err)
	}
	var procs []*process
	var metricsURLs []string
	var admin string
	for i := range n {
		addr := fmt.Sprintf("127.0.0.1:%d", freePort(b))
		p := start(b, "--database-url", dbCfg.DatabaseURL, "--redis-url", os.Getenv(redistest.Env), "--redis-prefix", prefix,
			"--config", cfg, "--log-level", "error", "--metrics-addr", addr)
		if i == 0 {
			admin = adminKey.FindStringSubmatch(p.output)[1]
		}
		procs = append(procs, p)
		metricsURLs = append(metricsURLs, "http://"+addr+"/metrics")
	}
	_, key := procs[0].workspaceKey(b, admin)
	procs[0].call(b, "PUT", "/v1/admin/rate-limit", admin, `{"requests_per_second":100000,"tokens_limits_by_model":{"fake":{"tokens_per_minute":1000000000,"tokens_per_month":1000000000000}}}`)
	procs[0].call(b, "POST", "/v1/admin/spend-limit", admin, `{"amount":1000000}`)

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers, MaxConnsPerHost: workers}}
	const chat = `{"model":"fake","max_tokens":16,"messages":[{"role":"user","content":"hello"}]}`
	run := func(total int) ([]time.Duration, time.Duration) {
		var sent atomic.Int64
		var mu sync.Mutex
		var lat []time.Duration
		began := time.Now()
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for i := sent.Add(1); i <= int64(total); i = sent.Add(1) {
					p := procs[(w+int(i))%len(procs)]
					req, _ := http.NewRequest("POST", p.base+"/v1/chat/completions", strings.NewReader(chat))
					req.Header.Set("Authorization", "Bearer "+key)
					t := time.Now()
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
					mu.Lock()
					lat = append(lat, time.Since(t))
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		return lat, time.Since(began)
	}
	trips := func() float64 {
		var sum float64
		for _, u := range metricsURLs {
			sum += metric(b, u, "steward_limiter_redis_round_trips_total")
		}
		return sum
	}
	for range b.N {
		run(500)
		before := trips()
		lat, took := run(requests)
		if len(lat) != requests {
			b.Fatalf("%d of %d requests answered", len(lat), requests)
		}
		slices.Sort(lat)
		rate := float64(requests) / took.Seconds()
		b.ReportMetric(rate, "req/s")
		b.ReportMetric(rate/float64(n), "req/s/process")
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		b.ReportMetric((trips()-before)/requests, "redis-trips/req")
	}
}
