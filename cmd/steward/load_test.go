package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
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
// returns every request's latency and how many failed. A request's latency
// counts from when the pacer released it, so that a request held back
// because every worker was waiting for an answer counts its wait too. A
// rate of 0 sends them as fast as the workers are answered, the server's
// saturation, each counting from when it was sent.
func paced(send func() error, rate, n, workers int) ([]time.Duration, int) {
	start := time.Now()
	jobs := make(chan time.Time, n)
	go func() {
		for i := range n {
			var released time.Time
			if rate > 0 {
				time.Sleep(time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(rate))))
				released = time.Now()
			}
			jobs <- released
		}
		close(jobs)
	}()
	var mu sync.Mutex
	var lat []time.Duration
	failed := 0
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for released := range jobs {
				if released.IsZero() {
					released = time.Now()
				}
				err := send()
				d := time.Since(released)
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

// bareProxyEnv, set to an upstream's URL, makes the test binary serve a
// bare httputil.ReverseProxy to it instead of running tests: BenchmarkLoad
// runs it as a process of its own, like Steward, so that the CPU time of
// each is read alike.
const bareProxyEnv = "STEWARD_BENCH_BARE_PROXY"

// serveBareProxy serves a bare reverse proxy to upstream on a free loopback
// port, printing its address as steward serve does, until it is killed.
// It keeps as many idle upstream connections as the gateway, so that the
// difference is Steward's own work.
func serveBareProxy(upstream string) {
	target, err := url.Parse(upstream)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = gateway.UpstreamIdleConns
	proxy.Transport = transport
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("listening on http://%s\n", l.Addr())
	fmt.Fprintln(os.Stderr, http.Serve(l, proxy))
	os.Exit(1)
}

// BenchmarkLoad sends chat requests over loopback to a fake model server,
// through the real steward binary (key check, limits set and reserved,
// usage recorded on SQLite) and through a bare httputil.ReverseProxy in a
// process of its own, twice each: 5,000 a second for a few seconds, whose
// latencies it reports (the difference of the percentiles is what Steward
// adds), then as fast as each is answered, whose throughput it reports
// (its saturation on this machine).
//
//	go test ./cmd/steward -run '^$' -bench Load -benchtime 1x
func BenchmarkLoad(b *testing.B) {
	const rate, seconds, workers = 5000, 4, 64
	// saturated is the requests sent as fast as answered, by saturators
	// workers: enough in flight to keep Steward's group commit full.
	const saturated, saturators = 40000, 256
	model := fakeModel()
	defer model.Close()
	cfg := filepath.Join(b.TempDir(), "steward.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, "models:\n  - name: fake\n    upstreams:\n      - url: %s\n    input_price_per_million: 0.1\n    output_price_per_million: 0.3\n", model.URL), 0o600); err != nil {
		b.Fatal(err)
	}
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(b))
	metricsURL := "http://" + metricsAddr + "/metrics"
	p := start(b, "--data-dir", b.TempDir(), "--config", cfg, "--log-level", "error", "--debug-addr", "127.0.0.1:6061", "--metrics-addr", metricsAddr)
	admin := adminKey.FindStringSubmatch(p.output)[1]
	_, key := p.workspaceKey(b, admin)
	p.call(b, "PUT", "/v1/admin/rate-limit", admin, `{"requests_per_second":100000,"tokens_limits_by_model":{"fake":{"tokens_per_minute":1000000000,"tokens_per_month":1000000000000}}}`)
	p.call(b, "POST", "/v1/admin/spend-limit", admin, `{"amount":1000000}`)
	bareCmd := exec.Command(os.Args[0])
	bareCmd.Env = append(os.Environ(), bareProxyEnv+"="+model.URL)
	bare := run(b, bareCmd)

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: saturators, MaxConnsPerHost: saturators}}
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
	// measure sends n requests to server at rate (0: as fast as answered)
	// and returns their latencies, the requests/s achieved and the server
	// process's CPU time a request.
	measure := func(server *process, auth string, rate, n, workers int) ([]time.Duration, float64, float64) {
		began, cpu := time.Now(), processCPU(b, server.cmd.Process.Pid)
		lat, failed := paced(send(server.base, auth), rate, n, workers)
		elapsed, used := time.Since(began), processCPU(b, server.cmd.Process.Pid)-cpu
		if failed > 0 {
			b.Fatalf("%d of %d requests through %s failed", failed, n, server.base)
		}
		return lat, float64(len(lat)) / elapsed.Seconds(), float64(used.Microseconds()) / float64(max(len(lat), 1))
	}
	for range b.N {
		// Warm both paths, then measure.
		measure(p, key, 1000, 1000, workers)
		measure(bare, "x", 1000, 1000, workers)
		batches, events := metric(b, metricsURL, "steward_usage_batches_total"), metric(b, metricsURL, "steward_usage_events_total")
		viaSteward, stewardRate, stewardCPU := measure(p, key, rate, rate*seconds, workers)
		batches, events = metric(b, metricsURL, "steward_usage_batches_total")-batches, metric(b, metricsURL, "steward_usage_events_total")-events
		viaBare, bareRate, bareCPU := measure(bare, "x", rate, rate*seconds, workers)
		_, stewardMax, _ := measure(p, key, 0, saturated, saturators)
		_, bareMax, _ := measure(bare, "x", 0, saturated, saturators)
		b.ReportMetric(float64(pct(viaSteward, 50).Microseconds()), "steward-p50-µs")
		b.ReportMetric(float64(pct(viaSteward, 99).Microseconds()), "steward-p99-µs")
		b.ReportMetric(float64(pct(viaBare, 50).Microseconds()), "bare-p50-µs")
		b.ReportMetric(float64(pct(viaBare, 99).Microseconds()), "bare-p99-µs")
		b.ReportMetric(stewardRate, "steward-req/s")
		b.ReportMetric(bareRate, "bare-req/s")
		// CPU time per request, which the load of a shared machine changes
		// less than throughput.
		b.ReportMetric(stewardCPU, "steward-cpu-µs/req")
		b.ReportMetric(bareCPU, "bare-cpu-µs/req")
		b.ReportMetric(events/max(batches, 1), "steward-events/batch")
		b.ReportMetric(stewardMax, "steward-max-req/s")
		b.ReportMetric(bareMax, "bare-max-req/s")
	}
}

// metric scrapes the Prometheus metrics at metricsURL and returns the value
// of the sample without labels called name.
func metric(b testing.TB, metricsURL, name string) float64 {
	b.Helper()
	resp, err := http.Get(metricsURL)
	if err != nil {
		b.Fatal(err)
	}
	text, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		b.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindSubmatch(text)
	if m == nil {
		b.Fatalf("no %s in the metrics", name)
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		b.Fatalf("%s: %v", name, err)
	}
	return v
}

// processCPU is the CPU time process pid has run.
func processCPU(b *testing.B, pid int) time.Duration {
	d, err := benchcpu.Process(pid)
	if err != nil {
		b.Fatal(err)
	}
	return d
}
