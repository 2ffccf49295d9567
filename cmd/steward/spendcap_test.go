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
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/redistest"
	"github.com/stewardhq/steward/internal/store/storetest"
)

// TestSpendCapHoldsWhenUpstreamsOverrun is the promise of docs/limits.md
// (a cap is never exceeded by more than one request's worst case) under
// concurrent traffic against model servers that do not stop where asked:
// one ignores max_tokens and streams 50 tokens whatever it is told, the
// other writes 50 tokens when it is given no max_tokens, and both count a
// prompt's tokens as its bytes, as a tokenizer may at worst. On SQLite in
// one process, and on PostgreSQL and Redis in two.
func TestSpendCapHoldsWhenUpstreamsOverrun(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { spendCapRun(t, []string{"--data-dir", t.TempDir()}, 1) })
	t.Run("postgres", func(t *testing.T) {
		_, prefix := redistest.Open(t)
		db, cfg := storetest.OpenPostgres(t)
		db.Close()
		spendCapRun(t, []string{"--database-url", cfg.DatabaseURL, "--redis-url", os.Getenv(redistest.Env), "--redis-prefix", prefix}, 2)
	})
}

// overrunTokens is what overrunModel writes when it does not stop.
const overrunTokens = 50

// overrunModel serves two models: "ignores" answers overrunTokens whatever
// max_tokens says, "defaults" answers max_tokens when it is given one and
// overrunTokens otherwise. A prompt counts a token per byte of its messages'
// text, 4 per message and 3 for the reply. Streams send a token a chunk.
func overrunModel() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Model     string
			Stream    bool
			MaxTokens *int `json:"max_tokens"`
			Messages  []struct{ Content string }
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		prompt := 3
		for _, m := range req.Messages {
			prompt += len(m.Content) + 4
		}
		out := overrunTokens
		if req.Model == "defaults" && req.MaxTokens != nil {
			out = *req.MaxTokens
		}
		usage := fmt.Sprintf(`{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d}`, prompt, out, prompt+out)
		if !req.Stream {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"id":"x","object":"chat.completion","model":%q,"choices":[{"index":0,"message":{"role":"assistant","content":%q},"finish_reason":"stop"}],"usage":%s}`,
				req.Model, strings.Repeat("x", out), usage)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		for range out {
			if _, err := fmt.Fprintf(w, "data: {\"id\":\"x\",\"object\":\"chat.completion.chunk\",\"model\":%q,\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"}}]}\n\n", req.Model); err != nil {
				return
			}
		}
		fmt.Fprintf(w, "data: {\"id\":\"x\",\"object\":\"chat.completion.chunk\",\"model\":%q,\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n", req.Model)
		fmt.Fprintf(w, "data: {\"id\":\"x\",\"object\":\"chat.completion.chunk\",\"model\":%q,\"choices\":[],\"usage\":%s}\n\ndata: [DONE]\n\n", req.Model, usage)
	}))
}

func spendCapRun(t *testing.T, db []string, processes int) {
	model := overrunModel()
	defer model.Close()
	// Both models reserve 12 prompt tokens ("hello": 5 bytes, 4 for the
	// message, 3 for the reply) and 5 output tokens, at 0.1 a token: 1.7.
	const capAmount, worstCost = 20, 1.7
	cfg := filepath.Join(t.TempDir(), "steward.yaml")
	var models strings.Builder
	for _, name := range []string{"ignores", "defaults"} {
		fmt.Fprintf(&models, "  - name: %s\n    upstreams:\n      - url: %s/v1\n    input_price_per_million: 100000\n    output_price_per_million: 100000\n    max_output_tokens: 5\n", name, model.URL)
	}
	if err := os.WriteFile(cfg, []byte("models:\n"+models.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	args := append(db, "--config", cfg)
	procs := []*process{start(t, args...)}
	admin := adminKey.FindStringSubmatch(procs[0].output)[1]
	for len(procs) < processes {
		procs = append(procs, start(t, args...))
	}
	_, key := procs[0].workspaceKey(t, admin)
	_, body := procs[0].call(t, "GET", "/v1/admin/workspaces", admin, "")
	var ws struct {
		Items []struct{ UUID string } `json:"items"`
	}
	_ = json.Unmarshal([]byte(body), &ws)
	if status, body := procs[len(procs)-1].call(t, "PUT", "/v1/admin/workspaces/"+ws.Items[0].UUID+"/spend-limit", admin, fmt.Sprintf(`{"amount":%d}`, capAmount)); status != 200 {
		t.Fatalf("Workspace spend cap: %d %s", status, body)
	}

	const workers, requests = 8, 64
	var sent, answered, streamed, refused atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; sent.Add(1) <= requests; i++ {
				p := procs[i%len(procs)]
				stream := i%2 == 0
				body := `{"model":"defaults","messages":[{"role":"user","content":"hello"}]}`
				if stream {
					body = `{"model":"ignores","stream":true,"messages":[{"role":"user","content":"hello"}]}`
				}
				resp, b, err := p.chat(key, body)
				if err != nil {
					t.Error(err)
					return
				}
				switch {
				case resp.StatusCode == 429 && strings.Contains(b, "spend_limit_exceeded"):
					refused.Add(1)
				case resp.StatusCode != 200:
					t.Errorf("%d %s", resp.StatusCode, b)
				case stream:
					if tokens, ended := streamedTokens(t, b); tokens > 5 || !ended {
						t.Errorf("a stream of %d tokens (ended with finish_reason length and [DONE]: %v), want it cut at 5:\n%s", tokens, ended, b)
					}
					streamed.Add(1)
					answered.Add(1)
				default:
					answered.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if answered.Load() == 0 || refused.Load() == 0 {
		t.Fatalf("%d answered, %d refused by the cap: want some of each", answered.Load(), refused.Load())
	}

	day := time.Now().UTC().Format("2006-01-02")
	var status int
	body = eventually(func() (string, bool) {
		var body string
		status, body = procs[0].call(t, "GET", "/v1/admin/usage/report?start="+day+"&end="+time.Now().UTC().AddDate(0, 0, 1).Format("2006-01-02")+"&bucket=day&group_by=workspace", admin, "")
		return body, strings.Contains(body, fmt.Sprintf(`"requests":%d,`, answered.Load()))
	})
	var rep struct {
		Rows []struct {
			Requests        int64   `json:"requests"`
			Cost            float64 `json:"cost"`
			OverrunRequests int64   `json:"overrun_requests"`
		} `json:"rows"`
	}
	if err := json.Unmarshal([]byte(body), &rep); status != 200 || err != nil || len(rep.Rows) != 1 {
		t.Fatalf("usage report: %d %s", status, body)
	}
	got := rep.Rows[0]
	t.Logf("%d answered (%d streams cut), %d refused: %.1f spent under a cap of %d", answered.Load(), streamed.Load(), refused.Load(), got.Cost, capAmount)
	if got.Cost > capAmount+worstCost || got.Requests != answered.Load() {
		t.Fatalf("%d requests answered spent %.1f under a cap of %d (at most %.1f over): %s", answered.Load(), got.Cost, capAmount, worstCost, body)
	}
	// Every stream outran its reservation and was cut: the admin sees it.
	if got.OverrunRequests != streamed.Load() {
		t.Fatalf("%d overrun requests reported, want the %d cut streams: %s", got.OverrunRequests, streamed.Load(), body)
	}
	logged := false
	for _, p := range procs {
		logged = logged || strings.Contains(p.logs.String(), "upstream="+model.URL+"/v1")
	}
	if !logged {
		t.Fatalf("no process logged the upstream that overran (%s)", model.URL)
	}
}

// streamedTokens counts the content chunks of an SSE answer, and whether it
// ends with a chunk whose finish_reason is "length" and then [DONE].
func streamedTokens(t *testing.T, body string) (tokens int, ended bool) {
	t.Helper()
	var events []string
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			events = append(events, data)
		}
	}
	if err := sc.Err(); err != nil && err != io.EOF {
		t.Fatal(err)
	}
	for _, e := range events {
		var c struct {
			Choices []struct{ Delta struct{ Content string } }
		}
		if json.Unmarshal([]byte(e), &c) == nil && len(c.Choices) > 0 && c.Choices[0].Delta.Content != "" {
			tokens++
		}
	}
	n := len(events)
	ended = n >= 2 && events[n-1] == "[DONE]" && strings.Contains(events[n-2], `"finish_reason":"length"`)
	return tokens, ended
}
