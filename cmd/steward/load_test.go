package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/benchcpu"
	"github.com/stewardhq/steward/internal/gateway"
)

// fakeModel answers every chat request at once with a small completion and
// its usage, like a model server with no compute time.
func fakeModel() *httptest.Server {
	answer := []byte(`{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":2,"total_tokens":14}}`)
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(answer)
	}))
}

// paced sends n requests at rate per second from workers goroutines and
// returns every request's latency and how many failed.
func paced(b *testing.B, send func() error, rate, n, workers int) ([]time.Duration, int) {
	tick := time.Second / time.Duration(rate)
	start := time.Now()
	jobs := make(chan time.Time, n)
	go func() {
		for i := range n {
			at := start.Add(time.Duration(i) * tick)
			time.Sleep(time.Until(at))
			jobs <- at
		}
		close(jobs)
	}()
	var mu sync.Mutex
	var lat []time.Duration
	failed := 0
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range jobs {
				t0 := time.Now()
				err := send()
				d := time.Since(t0)
				mu.Lock()
				if err != nil {
					failed++
				} else {
					lat = append(lat, d)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.Sort(lat)
	return lat, failed
}

func pct(lat []time.Duration, p int) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	return lat[len(lat)*p/100]
}

// BenchmarkLoad sends 5,000 chat requests a second for a few seconds over
// loopback to a fake model server, through the real steward binary (key
// check, limits set and reserved, usage recorded on SQLite) and through a
// bare httputil.ReverseProxy, and reports both latencies. The difference of
// the percentiles is what Steward adds.
//
//	go test ./cmd/steward -run '^$' -bench Load -benchtime 1x
func BenchmarkLoad(b *testing.B) {
	const rate, seconds, workers = 5000, 4, 64
	model := fakeModel()
	defer model.Close()
	cfg := filepath.Join(b.TempDir(), "steward.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, "models:\n  - name: fake\n    upstreams:\n      - url: %s\n    input_price_per_million: 0.1\n    output_price_per_million: 0.3\n", model.URL), 0o600); err != nil {
		b.Fatal(err)
	}
	p := start(b, "--data-dir", b.TempDir(), "--config", cfg, "--log-level", "error", "--debug-addr", "127.0.0.1:6061")
	defer func() { _ = p.cmd.Process.Kill(); _ = p.cmd.Wait() }()
	admin := adminKey.FindStringSubmatch(p.output)[1]
	_, key := p.workspaceKey(b, admin)
	p.call(b, "PUT", "/v1/admin/rate-limit", admin, `{"requests_per_second":100000,"tokens_limits_by_model":{"fake":{"tokens_per_minute":1000000000,"tokens_per_month":1000000000000}}}`)
	p.call(b, "POST", "/v1/admin/spend-limit", admin, `{"amount":1000000}`)

	target, _ := url.Parse(model.URL)
	// The bare proxy keeps as many idle upstream connections as the
	// gateway, so that the difference is Steward's own work.
	proxy := httputil.NewSingleHostReverseProxy(target)
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = gateway.UpstreamIdleConns
	proxy.Transport = transport
	bare := httptest.NewServer(proxy)
	defer bare.Close()

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers, MaxConnsPerHost: workers}}
	const chat = `{"model":"fake","max_tokens":16,"messages":[{"role":"user","content":"hello"}]}`
	send := func(base, auth string) func() error {
		return func() error {
			req, _ := http.NewRequest("POST", base+"/v1/chat/completions", strings.NewReader(chat))
			req.Header.Set("Authorization", "Bearer "+auth)
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				return fmt.Errorf("status %d", resp.StatusCode)
			}
			return nil
		}
	}
	for range b.N {
		// Warm both paths, then measure.
		paced(b, send(p.base, key), 1000, 1000, workers)
		paced(b, send(bare.URL, "x"), 1000, 1000, workers)
		// The test process runs the load and the model server in both
		// runs, and the bare proxy in the second only: the difference of
		// its CPU time per request is the bare proxy's.
		began, cpu, own := time.Now(), processCPU(b, p.cmd.Process.Pid), processCPU(b, os.Getpid())
		viaSteward, failed := paced(b, send(p.base, key), rate, rate*seconds, workers)
		stewardRate := float64(len(viaSteward)) / time.Since(began).Seconds()
		stewardCPU, aside := processCPU(b, p.cmd.Process.Pid)-cpu, processCPU(b, os.Getpid())-own
		began, own = time.Now(), processCPU(b, os.Getpid())
		viaBare, bareFailed := paced(b, send(bare.URL, "x"), rate, rate*seconds, workers)
		bareRate := float64(len(viaBare)) / time.Since(began).Seconds()
		withBare := processCPU(b, os.Getpid()) - own
		if failed > 0 || bareFailed > 0 {
			b.Fatalf("%d requests through Steward and %d through the bare proxy failed", failed, bareFailed)
		}
		b.ReportMetric(float64(pct(viaSteward, 50).Microseconds()), "steward-p50-µs")
		b.ReportMetric(float64(pct(viaSteward, 99).Microseconds()), "steward-p99-µs")
		b.ReportMetric(float64(pct(viaBare, 50).Microseconds()), "bare-p50-µs")
		b.ReportMetric(float64(pct(viaBare, 99).Microseconds()), "bare-p99-µs")
		b.ReportMetric(stewardRate, "steward-req/s")
		// Steward's CPU time per request, which the load of a shared
		// machine changes less than its throughput.
		perRequest := func(d time.Duration, n int) float64 { return float64(d.Microseconds()) / float64(max(n, 1)) }
		b.ReportMetric(perRequest(stewardCPU, len(viaSteward)), "steward-cpu-µs/req")
		b.ReportMetric(perRequest(withBare, len(viaBare))-perRequest(aside, len(viaSteward)), "bare-cpu-µs/req")
		b.ReportMetric(bareRate, "bare-req/s")
	}
}

// processCPU is the CPU time process pid has run.
func processCPU(b *testing.B, pid int) time.Duration {
	d, err := benchcpu.Process(pid)
	if err != nil {
		b.Fatal(err)
	}
	return d
}
