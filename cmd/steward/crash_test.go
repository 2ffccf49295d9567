package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/store/storetest"
)

// slowModel serves the model "fake": it answers a chat request after a few
// milliseconds, as a model with compute time does, with 12 input and 2
// output tokens; a streamed one gets one chunk of 16 bytes of output and
// then nothing until the call ends, as from a model still generating. It
// returns the arguments that serve it.
func slowModel(t *testing.T) []string {
	t.Helper()
	done := make(chan struct{})
	answer := []byte(`{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":2,"total_tokens":14}}`)
	model := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if strings.Contains(string(body), `"stream":true`) {
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, `data: {"id":"c","object":"chat.completion.chunk","model":"fake","choices":[{"index":0,"delta":{"content":"sixteen bytes..."}}]}`+"\n\n")
			http.NewResponseController(w).Flush()
			select {
			case <-r.Context().Done():
			case <-done:
			}
			return
		}
		time.Sleep(5 * time.Millisecond)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(answer)
	}))
	t.Cleanup(func() { close(done); model.Close() })
	cfg := filepath.Join(t.TempDir(), "steward.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, "models:\n  - name: fake\n    upstreams:\n      - url: %s\n    input_price_per_million: 1000\n    output_price_per_million: 1000\n", model.URL), 0o600); err != nil {
		t.Fatal(err)
	}
	return []string{"--config", cfg}
}

// startStream starts a stream of at most maxTokens through p and returns
// once its first chunk has reached the client.
func startStream(t *testing.T, p *process, key string, maxTokens int) {
	t.Helper()
	req, err := http.NewRequest("POST", p.base+"/v1/chat/completions", strings.NewReader(fmt.Sprintf(`{"model":"fake","max_tokens":%d,"stream":true,"messages":[{"role":"user","content":"hello"}]}`, maxTokens)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if first, err := bufio.NewReader(resp.Body).ReadString('\n'); resp.StatusCode != 200 || !strings.Contains(first, "sixteen bytes") {
		t.Fatalf("the stream's start: %d %q %v", resp.StatusCode, first, err)
	}
}

// reportRow is today's usage report through p, with one row for the model.
type reportRow struct {
	Model             string `json:"model"`
	Requests          int64  `json:"requests"`
	OutputTokens      int64  `json:"output_tokens"`
	EstimatedRequests int64  `json:"estimated_requests"`
}

func todaysUsage(t *testing.T, p *process, admin string) reportRow {
	t.Helper()
	day := time.Now().UTC()
	status, body := p.get(t, "/v1/admin/usage/report?start="+day.Format("2006-01-02")+"&end="+day.AddDate(0, 0, 1).Format("2006-01-02")+"&bucket=day&group_by=model", admin)
	var rep struct{ Rows []reportRow }
	if err := json.Unmarshal([]byte(body), &rep); status != 200 || err != nil || len(rep.Rows) != 1 || rep.Rows[0].Model != "fake" {
		t.Fatalf("usage report: %d %s; want one row, of the model fake", status, body)
	}
	return rep.Rows[0]
}

// stopped waits for p to exit.
func stopped(t *testing.T, p *process) {
	t.Helper()
	exited := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(exited) }()
	select {
	case <-exited:
	case <-time.After(20 * time.Second):
		t.Fatal("steward did not stop within 20s")
	}
}

// TestShutdownBillsCutStreams stops Steward with SIGTERM while a stream is
// still running past --shutdown-timeout: the stream is cut, and after a
// restart the usage report shows it, estimated (the upstream reported no
// usage: 16 bytes, about four a token) and marked so.
func TestShutdownBillsCutStreams(t *testing.T) {
	engines(t, func(t *testing.T, db []string) {
		args := append(db, slowModel(t)...)
		p := start(t, append(args, "--shutdown-timeout", "100ms")...)
		admin := adminKey.FindStringSubmatch(p.output)[1]
		_, key := p.workspaceKey(t, admin)
		startStream(t, p, key, 100)
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		stopped(t, p)

		got := todaysUsage(t, start(t, args...), admin)
		if want := (reportRow{Model: "fake", Requests: 1, OutputTokens: 4, EstimatedRequests: 1}); got != want {
			t.Fatalf("usage after a shutdown that cut a stream: %+v, want %+v", got, want)
		}
	})
}

// sweepEnv sets how often each process settles the usage intents of
// processes that died (PostgreSQL): shorter than its minute in tests.
const sweepEnv = "STEWARD_USAGE_SWEEP_INTERVAL"

// load is the outcome of loadThenKill: requests sent, and answers the
// clients received whole.
type load struct{ sent, answered int64 }

// loadThenKill starts a stream through p, sends chat requests from 8
// clients, and kills p with SIGKILL once 100 have been answered; it
// returns once p has exited and the clients have stopped.
func loadThenKill(t *testing.T, p *process, key string) load {
	t.Helper()
	startStream(t, p, key, 4)
	var sent, answered atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				sent.Add(1)
				resp, body, err := p.chat(key, hello)
				switch {
				case err != nil:
				case resp.StatusCode == 200 && strings.Contains(body, `"completion_tokens":2`):
					answered.Add(1)
				default:
					t.Errorf("answer: %d %s", resp.StatusCode, body)
				}
			}
		})
	}
	for deadline := time.Now().Add(30 * time.Second); answered.Load() < 100; {
		if time.Now().After(deadline) {
			t.Fatalf("%d answers in 30s, want 100 before the kill", answered.Load())
		}
		time.Sleep(time.Millisecond)
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	stopped(t, p)
	close(stop)
	wg.Wait()
	// The stream, whose first chunk reached its client, counts as sent
	// and answered.
	return load{sent: sent.Load() + 1, answered: answered.Load() + 1}
}

// settledUsage reads today's usage through p until every answer of l is
// in it (a dead process's intents may wait for the next sweep), and checks
// that it equals what the clients received: every answer recorded,
// exactly (2 output tokens) or at its reservation marked estimated (4, its
// max_tokens), the stream among the estimated, and no request twice.
func settledUsage(t *testing.T, p *process, admin string, l load) reportRow {
	t.Helper()
	var got reportRow
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		// The stream, in flight at the kill, is recorded at its
		// reservation by the sweep; an answered request may be recorded
		// exactly before that, so the count alone does not say it is done.
		if got = todaysUsage(t, p, admin); got.Requests >= l.answered && got.EstimatedRequests >= 1 || time.Now().After(deadline) {
			break
		}
	}
	exact := got.Requests - got.EstimatedRequests
	switch {
	case got.Requests < l.answered:
		t.Fatalf("recorded %d requests; clients received %d answers (the stream included)", got.Requests, l.answered)
	case got.Requests > l.sent:
		t.Fatalf("recorded %d requests of %d sent: some twice", got.Requests, l.sent)
	case got.OutputTokens != 2*exact+4*got.EstimatedRequests:
		t.Fatalf("recorded %d output tokens for %d exact and %d estimated requests, want 2 and 4 each", got.OutputTokens, exact, got.EstimatedRequests)
	case got.EstimatedRequests < 1:
		t.Fatalf("recorded %d estimated requests, want the stream among them", got.EstimatedRequests)
	}
	t.Logf("answered %d of %d sent; recorded %d, %d estimated", l.answered, l.sent, got.Requests, got.EstimatedRequests)
	return got
}

// TestKillNineDuringLoadLosesNoAnswer kills Steward with SIGKILL while
// clients are being answered and a stream is running, restarts it, and
// compares what the clients received with the usage report
// (settledUsage). The restarted process records what the killed one left
// in flight: on SQLite at start, on PostgreSQL by its sweep.
func TestKillNineDuringLoadLosesNoAnswer(t *testing.T) {
	t.Setenv(sweepEnv, "200ms")
	engines(t, func(t *testing.T, db []string) {
		args := append(db, slowModel(t)...)
		p := start(t, args...)
		admin := adminKey.FindStringSubmatch(p.output)[1]
		_, key := p.workspaceKey(t, admin)
		p.call(t, "PUT", "/v1/admin/rate-limit", admin, `{"requests_per_second":100000}`)
		l := loadThenKill(t, p, key)
		settledUsage(t, start(t, args...), admin, l)
	})
}

// TestKilledProcessSettledByAnother runs two processes on one PostgreSQL
// database and kills the first with SIGKILL during load: the second, still
// running, records what the first left in flight, without a restart, and
// the usage report then equals what the clients received
// (settledUsage). Every estimated request is one the second process's
// sweep recorded, which its metric shows.
func TestKilledProcessSettledByAnother(t *testing.T) {
	t.Setenv(sweepEnv, "200ms")
	db, cfg := storetest.OpenPostgres(t)
	db.Close()
	args := append([]string{"--database-url", cfg.DatabaseURL}, slowModel(t)...)
	first := start(t, args...)
	admin := adminKey.FindStringSubmatch(first.output)[1]
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	second := start(t, append(args, "--metrics-addr", metricsAddr)...)
	_, key := first.workspaceKey(t, admin)
	first.call(t, "PUT", "/v1/admin/rate-limit", admin, `{"requests_per_second":100000}`)

	l := loadThenKill(t, first, key)
	got := settledUsage(t, second, admin, l)
	// The metric is counted once the sweep's transaction has committed.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		swept := metric(t, "http://"+metricsAddr+"/metrics", "steward_usage_orphaned_intents_total")
		if swept == float64(got.EstimatedRequests) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the second process recorded %v intents of the first, want the %d estimated requests", swept, got.EstimatedRequests)
		}
	}
	if resp, body, err := second.chat(key, hello); err != nil || resp.StatusCode != 200 {
		t.Fatalf("the second process after the sweep: %v %s", err, body)
	}
}
