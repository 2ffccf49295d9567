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

// TestKillNineDuringLoadLosesNoAnswer kills Steward with SIGKILL while
// clients are being answered and a stream is running, restarts it, and
// compares what the clients received with the usage report: every answer
// a client received is recorded, exactly (2 output tokens) or at its
// reservation marked estimated (4, its max_tokens), and no request is
// recorded twice. On SQLite the stream, whose first chunk reached its
// client, is recorded at its reservation too; on PostgreSQL a stream is
// not yet covered before it ends.
func TestKillNineDuringLoadLosesNoAnswer(t *testing.T) {
	engines(t, func(t *testing.T, db []string) {
		args := append(db, slowModel(t)...)
		p := start(t, args...)
		admin := adminKey.FindStringSubmatch(p.output)[1]
		_, key := p.workspaceKey(t, admin)
		p.call(t, "PUT", "/v1/admin/rate-limit", admin, `{"requests_per_second":100000}`)
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
		for answered.Load() < 100 {
			time.Sleep(time.Millisecond)
		}
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		stopped(t, p)
		close(stop)
		wg.Wait()

		got := todaysUsage(t, start(t, args...), admin)
		streams := int64(0)
		if db[0] == "--data-dir" {
			streams = 1
		}
		exact := got.Requests - got.EstimatedRequests
		switch {
		case got.Requests < answered.Load()+streams:
			t.Fatalf("recorded %d requests; clients received %d answers and %d streams", got.Requests, answered.Load(), streams)
		case got.Requests > sent.Load()+1:
			t.Fatalf("recorded %d requests of %d sent: some twice", got.Requests, sent.Load()+1)
		case got.OutputTokens != 2*exact+4*got.EstimatedRequests:
			t.Fatalf("recorded %d output tokens for %d exact and %d estimated requests, want 2 and 4 each", got.OutputTokens, exact, got.EstimatedRequests)
		case got.EstimatedRequests < streams:
			t.Fatalf("recorded %d estimated requests, want the stream among them", got.EstimatedRequests)
		}
		t.Logf("answered %d of %d sent; recorded %d, %d estimated", answered.Load(), sent.Load(), got.Requests, got.EstimatedRequests)
	})
}
