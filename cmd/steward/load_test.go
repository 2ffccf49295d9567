package main

import (
	"bufio"
	"context"
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
	"syscall"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/benchcpu"
	"github.com/stewardhq/steward/internal/gateway"
	domain "github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
)

// fakeModel answers every chat request at once with a small completion and
// its usage, like a model server with no compute time.
func fakeModel() *httptest.Server { return fakeModelAfter(0) }

// fakeModelAfter is fakeModel answering after delay, a model's compute time.
func fakeModelAfter(delay time.Duration) *httptest.Server {
	answer := []byte(`{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":2,"total_tokens":14}}`)
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		time.Sleep(delay)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(answer)
	}))
}

// BenchmarkAddedLatency measures what Steward adds to a bare reverse proxy
// in front of the same fake model, for a model that answers at once and
// one that takes 20 ms: both at 1,000 requests/s, alternated twice,
// reporting the difference of their percentiles and the ratio of their
// processes' CPU a request; then each as fast as 256 workers are answered,
// reporting the ratio of their throughputs (saturation). Steward runs on
// SQLite, and on PostgreSQL too when STEWARD_TEST_POSTGRES names a server.
//
//	go test ./cmd/steward -run '^$' -bench AddedLatency -benchtime 1x
func BenchmarkAddedLatency(b *testing.B) {
	const rate, n, workers, rounds = 1000, 3000, 64, 2
	const saturated, saturators = 20000, 256
	for _, engine := range []string{"sqlite", "postgres"} {
		for _, delay := range []time.Duration{0, 20 * time.Millisecond} {
			b.Run("engine="+engine+"/upstream="+delay.String(), func(b *testing.B) {
				model := fakeModelAfter(delay)
				defer model.Close()
				p, key, _ := stewardUnderLoad(b, model.URL, storage(b, engine)...)
				bare := bareProxy(b, model.URL, "reverse")
				send := chatSender(&http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: saturators}})
				for range b.N {
					measure(b, p, send(p.base, key), rate, rate/2, workers)
					measure(b, bare, send(bare.base, "x"), rate, rate/2, workers)
					var viaSteward, viaBare []time.Duration
					var stewardCPU, bareCPU float64
					for range rounds {
						lat, _, cpu := measure(b, p, send(p.base, key), rate, n, workers)
						viaSteward, stewardCPU = append(viaSteward, lat...), stewardCPU+cpu/rounds
						lat, _, cpu = measure(b, bare, send(bare.base, "x"), rate, n, workers)
						viaBare, bareCPU = append(viaBare, lat...), bareCPU+cpu/rounds
					}
					_, stewardMax, _ := measure(b, p, send(p.base, key), 0, saturated, saturators)
					_, bareMax, _ := measure(b, bare, send(bare.base, "x"), 0, saturated, saturators)
					slices.Sort(viaSteward)
					slices.Sort(viaBare)
					b.ReportMetric(float64((pct(viaSteward, 50) - pct(viaBare, 50)).Microseconds()), "added-p50-µs")
					b.ReportMetric(float64((pct(viaSteward, 99) - pct(viaBare, 99)).Microseconds()), "added-p99-µs")
					b.ReportMetric(float64(pct(viaBare, 50).Microseconds()), "bare-p50-µs")
					b.ReportMetric(stewardCPU/max(bareCPU, 1), "cpu-ratio")
					b.ReportMetric(stewardMax/max(bareMax, 1), "saturation-ratio")
				}
			})
		}
	}
}

// storage returns steward serve's flags for a fresh database of engine:
// an SQLite data directory, or a schema of the PostgreSQL server
// STEWARD_TEST_POSTGRES names (skipping the benchmark without one).
func storage(b *testing.B, engine string) []string {
	if engine == "postgres" {
		db, cfg := storetest.OpenPostgres(b)
		if err := db.Close(); err != nil {
			b.Fatal(err)
		}
		return []string{"--database-url", cfg.DatabaseURL}
	}
	return []string{"--data-dir", b.TempDir()}
}

// BenchmarkResidentMemory sends chat requests to the real binary (on
// SQLite) in front of a fake model that answers after 20 ms, 3,000 a
// second for 60 seconds, and reports its resident memory at start, at its
// peak and after the load, and the same of a bare reverse proxy under the
// same load. It runs twice: from 256 clients' connections, and from 3,000,
// as a load generator adds connections when answers are slow.
//
//	go test ./cmd/steward -run '^$' -bench ResidentMemory -benchtime 1x -timeout 30m
func BenchmarkResidentMemory(b *testing.B) {
	const rate, seconds = 3000, 60
	model := fakeModelAfter(20 * time.Millisecond)
	defer model.Close()
	for _, conns := range []int{256, 3000} {
		b.Run(fmt.Sprintf("connections=%d", conns), func(b *testing.B) {
			for range b.N {
				p, key, _ := stewardUnderLoad(b, model.URL)
				bare := bareProxy(b, model.URL, "reverse")
				for _, s := range []struct {
					name   string
					server *process
					key    string
				}{{"steward", p, key}, {"bare", bare, "x"}} {
					pid := s.server.cmd.Process.Pid
					startRSS := residentMemory(b, pid)
					send := chatSender(&http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conns}})
					measure(b, s.server, send(s.server.base, s.key), rate, rate*seconds, conns)
					b.ReportMetric(startRSS/(1<<20), s.name+"-start-MB")
					b.ReportMetric(peakMemory(b, pid)/(1<<20), s.name+"-peak-MB")
					b.ReportMetric(residentMemory(b, pid)/(1<<20), s.name+"-after-MB")
				}
			}
		})
	}
}

// streamingModel answers every chat request with a stream of chunks
// chunks, each flushed as a model server flushes its tokens, written as
// fast as the connection takes them, then a usage chunk and [DONE].
func streamingModel(chunks int) *httptest.Server {
	chunk := []byte(`data: {"id":"x","object":"chat.completion.chunk","model":"fake","choices":[{"index":0,"delta":{"content":"token "}}]}` + "\n\n")
	last := []byte(`data: {"id":"x","object":"chat.completion.chunk","model":"fake","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":` + strconv.Itoa(chunks) + `,"total_tokens":` + strconv.Itoa(chunks+12) + `}}` + "\n\ndata: [DONE]\n\n")
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		flush := http.NewResponseController(w)
		for range chunks {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			_ = flush.Flush()
		}
		_, _ = w.Write(last)
	}))
}

// copyingProxy is the least a streaming proxy does: it sends the request
// to upstream, and copies the answer's status, headers and body back,
// flushing every read. It is the stream benchmark's baseline:
// httputil.ReverseProxy cut about one stream in four short on this
// machine ("use of closed network connection" on its upstream read).
func copyingProxy(upstream string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := http.NewRequestWithContext(r.Context(), r.Method, upstream+r.URL.Path, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		req.Header = r.Header.Clone()
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, vs := range resp.Header {
			w.Header()[k] = vs
		}
		w.WriteHeader(resp.StatusCode)
		flush := http.NewResponseController(w)
		buf := make([]byte, 32<<10)
		for {
			n, err := resp.Body.Read(buf)
			if n > 0 {
				if _, werr := w.Write(buf[:n]); werr != nil {
					return
				}
				_ = flush.Flush()
			}
			if err != nil {
				return
			}
		}
	})
}

// BenchmarkStreamThroughput streams chat answers of 10,000 chunks, written
// as fast as the connection takes them, through the real binary (SQLite)
// and through a copying proxy (copyingProxy, a process of its own), one
// stream at a time, alternated three times, and reports the chunks a
// second each relays once its first chunk has come, and their ratio: a
// stream through Steward is never buffered, and Steward parses each chunk
// to count what it uses. The time to the first chunk (for Steward, its
// request's checks and the commit of its intent) is the added latency
// BenchmarkAddedLatency measures, not a stream's throughput.
//
//	go test ./cmd/steward -run '^$' -bench StreamThroughput -benchtime 1x
func BenchmarkStreamThroughput(b *testing.B) {
	const chunks, streams, rounds = 10000, 10, 3
	model := streamingModel(chunks)
	defer model.Close()
	p, key, _ := stewardUnderLoad(b, model.URL)
	bare := bareProxy(b, model.URL, "copying")
	client := &http.Client{}
	relay := func(base, auth string) time.Duration {
		var streaming time.Duration
		for range streams {
			req, _ := http.NewRequest("POST", base+"/v1/chat/completions", strings.NewReader(`{"model":"fake","max_tokens":20000,"stream":true,"messages":[{"role":"user","content":"hello"}]}`))
			req.Header.Set("Authorization", "Bearer "+auth)
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			var first time.Time
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				if strings.HasPrefix(sc.Text(), "data: {") {
					if n++; n == 1 {
						first = time.Now()
					}
				}
			}
			streaming += time.Since(first)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || n <= chunks || sc.Err() != nil {
				b.Fatalf("%s: %d, %d chunks of %d, %v", base, resp.StatusCode, n, chunks+1, sc.Err())
			}
		}
		return streaming
	}
	for range b.N {
		relay(p.base, key)
		relay(bare.base, "x")
		var viaSteward, viaBare time.Duration
		for range rounds {
			viaSteward += relay(p.base, key)
			viaBare += relay(bare.base, "x")
		}
		total := float64(chunks * streams * rounds)
		b.ReportMetric(total/viaSteward.Seconds(), "steward-chunks/s")
		b.ReportMetric(total/viaBare.Seconds(), "bare-chunks/s")
		b.ReportMetric(viaBare.Seconds()/viaSteward.Seconds(), "throughput-ratio")
	}
}

// chatSender returns, for a server's base URL and a key, a function that
// sends it a small chat request through client and expects a 200.
func chatSender(client *http.Client) func(base, auth string) func() error {
	const chat = `{"model":"fake","max_tokens":16,"messages":[{"role":"user","content":"hello"}]}`
	return func(base, auth string) func() error {
		return func() error {
			req, _ := http.NewRequest("POST", base+"/v1/chat/completions", strings.NewReader(chat))
			req.Header.Set("Authorization", "Bearer "+auth)
			_, err := expect(client, req, http.StatusOK)
			return err
		}
	}
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

// bareProxyEnv, set to "reverse" or "copying" and an upstream's URL
// ("reverse http://127.0.0.1:1234"), makes the test binary serve a bare
// proxy to it instead of running tests: the benchmarks run it as a process
// of its own, like Steward, so that both pay the same hops between
// processes and the CPU time of each is read alike.
const bareProxyEnv = "STEWARD_BENCH_BARE_PROXY"

// bareProxy starts the test binary as a bare proxy of kind ("reverse" for
// httputil.ReverseProxy, "copying" for copyingProxy) to upstream.
func bareProxy(b *testing.B, upstream, kind string) *process {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), bareProxyEnv+"="+kind+" "+upstream)
	return run(b, cmd)
}

// serveBareProxy serves a bare proxy as bareProxyEnv says, on a free
// loopback port, printing its address as steward serve does, until it is
// killed. The reverse proxy keeps as many idle upstream connections as the
// gateway, so that the difference is Steward's own work.
func serveBareProxy(setting string) {
	kind, upstream, _ := strings.Cut(setting, " ")
	target, err := url.Parse(upstream)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var proxy http.Handler
	switch kind {
	case "copying":
		proxy = copyingProxy(upstream)
	default:
		reverse := httputil.NewSingleHostReverseProxy(target)
		transport := http.DefaultTransport.(*http.Transport).Clone()
		transport.MaxIdleConnsPerHost = gateway.UpstreamIdleConns
		reverse.Transport = transport
		proxy = reverse
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("listening on http://%s\n", l.Addr())
	fmt.Fprintln(os.Stderr, http.Serve(l, proxy))
	os.Exit(1)
}

// stewardUnderLoad starts steward serve on storageFlags' database (a fresh
// SQLite one without) with the model "fake" served by upstream, a Workspace key, and the Organization's request and
// token limits and spend cap set, all checked on every request but high
// enough never to refuse one. It serves its profiler on 127.0.0.1:6061
// and its metrics at the returned URL.
func stewardUnderLoad(b *testing.B, upstream string, storageFlags ...string) (p *process, key, metricsURL string) {
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(b))
	if storageFlags == nil {
		storageFlags = storage(b, "sqlite")
	}
	p = start(b, append(storageFlags, "--config", modelConfig(b, upstream), "--log-level", "error", "--debug-addr", "127.0.0.1:6061", "--metrics-addr", metricsAddr)...)
	_, key = setLimits(b, p)
	return p, key, "http://" + metricsAddr + "/metrics"
}

// modelConfig writes a configuration file serving the model "fake" from
// upstream, and returns its path.
func modelConfig(b *testing.B, upstream string) string {
	cfg := filepath.Join(b.TempDir(), "steward.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, "models:\n  - name: fake\n    upstreams:\n      - url: %s\n    input_price_per_million: 0.1\n    output_price_per_million: 0.3\n", upstream), 0o600); err != nil {
		b.Fatal(err)
	}
	return cfg
}

// setLimits creates a Workspace key with the admin key p printed on its
// first start, and sets the Organization's request and token limits and
// spend cap, high enough never to refuse a request. It returns both keys.
func setLimits(b *testing.B, p *process) (admin, key string) {
	admin = adminKey.FindStringSubmatch(p.output)[1]
	_, key = p.workspaceKey(b, admin)
	p.call(b, "PUT", "/v1/admin/rate-limit", admin, `{"requests_per_second":100000,"tokens_limits_by_model":{"fake":{"tokens_per_minute":1000000000,"tokens_per_month":1000000000000}}}`)
	p.call(b, "POST", "/v1/admin/spend-limit", admin, `{"amount":1000000}`)
	return admin, key
}

// measure sends n requests with send to server at rate (0: as fast as
// answered) from workers goroutines, fails the benchmark if any failed,
// and returns their latencies, the requests/s achieved and the server
// process's CPU time a request.
func measure(b *testing.B, server *process, send func() error, rate, n, workers int) ([]time.Duration, float64, float64) {
	began, cpu := time.Now(), processCPU(b, server.cmd.Process.Pid)
	lat, failed := paced(send, rate, n, workers)
	elapsed, used := time.Since(began), processCPU(b, server.cmd.Process.Pid)-cpu
	if failed > 0 {
		b.Fatalf("%d of %d requests to %s failed", failed, n, server.base)
	}
	return lat, float64(len(lat)) / elapsed.Seconds(), float64(used.Microseconds()) / float64(max(len(lat), 1))
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
	p, key, metricsURL := stewardUnderLoad(b, model.URL)
	bareCmd := exec.Command(os.Args[0])
	bareCmd.Env = append(os.Environ(), bareProxyEnv+"="+model.URL)
	bare := run(b, bareCmd)

	send := chatSender(&http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: saturators, MaxConnsPerHost: saturators}})
	for range b.N {
		// Warm both paths, then measure.
		measure(b, p, send(p.base, key), 1000, 1000, workers)
		measure(b, bare, send(bare.base, "x"), 1000, 1000, workers)
		batches, events := metric(b, metricsURL, "steward_usage_batches_total"), metric(b, metricsURL, "steward_usage_events_total")
		viaSteward, stewardRate, stewardCPU := measure(b, p, send(p.base, key), rate, rate*seconds, workers)
		batches, events = metric(b, metricsURL, "steward_usage_batches_total")-batches, metric(b, metricsURL, "steward_usage_events_total")-events
		viaBare, bareRate, bareCPU := measure(b, bare, send(bare.base, "x"), rate, rate*seconds, workers)
		_, stewardMax, _ := measure(b, p, send(p.base, key), 0, saturated, saturators)
		_, bareMax, _ := measure(b, bare, send(bare.base, "x"), 0, saturated, saturators)
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

// BenchmarkCheckAPI asks the real steward binary's check API, over
// loopback with keep-alive, as fast as it answers: checks alone (a key
// checked and a request's worst case reserved against the limits), then
// checks each followed by its report (the reservation settled and the
// usage recorded, durably, before the 204).
//
//	go test ./cmd/steward -run '^$' -bench CheckAPI -benchtime 1x
func BenchmarkCheckAPI(b *testing.B) {
	const checks, pairs, workers = 100000, 20000, 64
	// The model server is never called: the check API stands beside it.
	p, key, _ := stewardUnderLoad(b, "http://127.0.0.1:9")
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers, MaxConnsPerHost: workers}}
	check := func() (string, error) {
		req, _ := http.NewRequest("GET", p.base+"/v1/check?model=fake&prompt_tokens=12&max_tokens=16", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := expect(client, req, http.StatusOK)
		if err != nil {
			return "", err
		}
		return resp.Header.Get("x-steward-check-id"), nil
	}
	checkOnly := func() error { _, err := check(); return err }
	checkAndReport := func() error {
		id, err := check()
		if err != nil {
			return err
		}
		req, _ := http.NewRequest("POST", p.base+"/v1/check/"+id+"/report", strings.NewReader(`{"input_tokens":12,"output_tokens":2}`))
		req.Header.Set("Authorization", "Bearer "+key)
		_, err = expect(client, req, http.StatusNoContent)
		return err
	}
	for range b.N {
		measure(b, p, checkOnly, 0, 2000, workers)
		lat, rate, cpu := measure(b, p, checkOnly, 0, checks, workers)
		pairLat, pairRate, pairCPU := measure(b, p, checkAndReport, 0, pairs, workers)
		b.ReportMetric(rate, "checks/s")
		b.ReportMetric(float64(pct(lat, 50).Microseconds()), "check-p50-µs")
		b.ReportMetric(float64(pct(lat, 99).Microseconds()), "check-p99-µs")
		b.ReportMetric(cpu, "steward-cpu-µs/check")
		b.ReportMetric(pairRate, "reported-checks/s")
		b.ReportMetric(float64(pct(pairLat, 50).Microseconds()), "reported-p50-µs")
		b.ReportMetric(float64(pct(pairLat, 99).Microseconds()), "reported-p99-µs")
		b.ReportMetric(pairCPU, "steward-cpu-µs/reported-check")
	}
}

// BenchmarkMillionKeys starts the real binary on an SQLite database that
// holds 1,000,000 Workspace API keys of one Organization, every one of
// them in the key check's cache, and reports its resident memory once
// started and after 20,000 chat requests, the time a key's creation takes,
// and the latency of the Admin API's key list at its first, middle and
// last page.
//
//	go test ./cmd/steward -run '^$' -bench MillionKeys -benchtime 1x
func BenchmarkMillionKeys(b *testing.B) {
	const count, requests, workers = 1_000_000, 20000, 64
	model := fakeModel()
	defer model.Close()
	dir, cfg := b.TempDir(), modelConfig(b, model.URL)
	first := start(b, "--data-dir", dir, "--config", cfg, "--log-level", "error")
	admin, key := setLimits(b, first)
	if err := first.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		b.Fatal(err)
	}
	_ = first.cmd.Wait()
	seedKeys(b, dir, count)
	p := start(b, "--data-dir", dir, "--config", cfg, "--log-level", "error")
	started := residentMemory(b, p.cmd.Process.Pid)

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers, MaxConnsPerHost: workers}}
	chat := func() error {
		req, _ := http.NewRequest("POST", p.base+"/v1/chat/completions", strings.NewReader(`{"model":"fake","max_tokens":16,"messages":[{"role":"user","content":"hello"}]}`))
		req.Header.Set("Authorization", "Bearer "+key)
		_, err := expect(client, req, http.StatusOK)
		return err
	}
	list := func(offset int) func() error {
		return func() error {
			req, _ := http.NewRequest("GET", fmt.Sprintf("%s/v1/admin/api-keys?limit=100&offset=%d", p.base, offset), nil)
			req.Header.Set("x-api-key", admin)
			_, err := expect(client, req, http.StatusOK)
			return err
		}
	}
	for range b.N {
		measure(b, p, chat, 0, requests, workers)
		b.ReportMetric(started/(1<<20), "rss-started-MiB")
		b.ReportMetric(residentMemory(b, p.cmd.Process.Pid)/(1<<20), "rss-after-MiB")
		// A new key reloads its Organization's keys into the key check's
		// cache before its creation returns.
		began := time.Now()
		p.workspaceKey(b, admin)
		b.ReportMetric(float64(time.Since(began).Microseconds()), "create-key-µs")
		for _, page := range []struct {
			name   string
			offset int
		}{{"first", 0}, {"middle", count / 2}, {"last", count - 100}} {
			lat, _, _ := measure(b, p, list(page.offset), 0, 100, 1)
			b.ReportMetric(float64(pct(lat, 50).Microseconds()), "list-"+page.name+"-p50-µs")
			b.ReportMetric(float64(pct(lat, 99).Microseconds()), "list-"+page.name+"-p99-µs")
		}
	}
}

// seedKeys adds n Workspace API keys to the SQLite database in dir, in the
// Organization, Workspace and member of the one key it holds, as fast as
// multi-row inserts go: their secrets are never used.
func seedKeys(b *testing.B, dir string, n int) {
	db := storetest.OpenAgain(b, store.Config{DataDir: dir})
	ctx := context.Background()
	var org, ws, user string
	if err := db.ReadRow(ctx, "SELECT organization_id, workspace_id, user_id FROM api_keys", nil, &org, &ws, &user); err != nil {
		b.Fatal(err)
	}
	columns := []string{"id", "organization_id", "workspace_id", "user_id", "name", "name_folded", "key_hash", "hidden_key", "last4_folded", "created_at"}
	created := time.Now().Add(-time.Hour).UnixMicro()
	const perTx = 50_000
	for first := 0; first < n; first += perTx {
		rows := make([][]any, 0, perTx)
		for i := first; i < min(first+perTx, n); i++ {
			name := fmt.Sprintf("seeded key %d", i)
			rows = append(rows, []any{fmt.Sprintf("00000000-0000-4000-8000-%012d", i), org, ws, user, name, name, domain.HashToken(name), "stwk...seed", "seed", created + int64(i)})
		}
		if err := db.Transact(ctx, func(tx *store.Tx) error { return tx.InsertMany(ctx, "api_keys", columns, rows, "") }); err != nil {
			b.Fatal(err)
		}
	}
}

// residentMemory is the resident set size of process pid, in bytes.
func residentMemory(b *testing.B, pid int) float64 { return procStatus(b, pid, "VmRSS") }

// peakMemory is the largest resident set size process pid has had, in
// bytes.
func peakMemory(b *testing.B, pid int) float64 { return procStatus(b, pid, "VmHWM") }

// procStatus is the field of /proc/pid/status counted in kB, in bytes.
func procStatus(b *testing.B, pid int, field string) float64 {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^` + field + `:\s+(\d+) kB$`).FindSubmatch(status)
	if m == nil {
		b.Fatalf("no %s in /proc/%d/status", field, pid)
	}
	kb, _ := strconv.ParseFloat(string(m[1]), 64)
	return kb * 1024
}

// expect sends req with client, reads and closes the answer's body, and
// returns the answer, or an error when its status is not want.
func expect(client *http.Client, req *http.Request, want int) (*http.Response, error) {
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != want {
		return nil, fmt.Errorf("%s %s: status %d, want %d: %s", req.Method, req.URL.Path, resp.StatusCode, want, body)
	}
	return resp, nil
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
