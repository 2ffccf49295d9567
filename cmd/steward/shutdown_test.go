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
	"syscall"
	"testing"
	"time"
)

// hangingModel streams one chunk of output and then nothing, until the
// call is cancelled or the test ends: a model still generating when the
// process stops.
func hangingModel(t *testing.T) *httptest.Server {
	t.Helper()
	done := make(chan struct{})
	model := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, `data: {"id":"c","object":"chat.completion.chunk","model":"fake","choices":[{"index":0,"delta":{"content":"sixteen bytes..."}}]}`+"\n\n")
		http.NewResponseController(w).Flush()
		select {
		case <-r.Context().Done():
		case <-done:
		}
	}))
	t.Cleanup(func() { close(done); model.Close() })
	return model
}

// TestShutdownBillsCutStreams stops Steward with SIGTERM while a stream is
// still running past --shutdown-timeout: the stream is cut, and after a
// restart the usage report shows it, estimated (the upstream reported no
// usage) and marked so.
func TestShutdownBillsCutStreams(t *testing.T) {
	engines(t, func(t *testing.T, db []string) {
		model := hangingModel(t)
		cfg := filepath.Join(t.TempDir(), "steward.yaml")
		if err := os.WriteFile(cfg, fmt.Appendf(nil, "models:\n  - name: fake\n    upstreams:\n      - url: %s\n    input_price_per_million: 1000\n    output_price_per_million: 1000\n", model.URL), 0o600); err != nil {
			t.Fatal(err)
		}
		args := append(db, "--config", cfg)
		p := start(t, append(args, "--shutdown-timeout", "100ms")...)
		admin := adminKey.FindStringSubmatch(p.output)[1]
		_, key := p.workspaceKey(t, admin)

		req, err := http.NewRequest("POST", p.base+"/v1/chat/completions", strings.NewReader(`{"model":"fake","max_tokens":100,"stream":true,"messages":[{"role":"user","content":"hello"}]}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		first, err := bufio.NewReader(resp.Body).ReadString('\n')
		if resp.StatusCode != 200 || !strings.Contains(first, "sixteen bytes") {
			t.Fatalf("the stream's start: %d %q %v", resp.StatusCode, first, err)
		}

		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { _ = p.cmd.Wait(); close(exited) }()
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			t.Fatal("steward did not stop within 20s of SIGTERM")
		}

		q := start(t, args...)
		day := time.Now().UTC()
		status, body := q.get(t, "/v1/admin/usage/report?start="+day.Format("2006-01-02")+"&end="+day.AddDate(0, 0, 1).Format("2006-01-02")+"&bucket=day&group_by=model", admin)
		var rep struct {
			Rows []struct {
				Model             string `json:"model"`
				Requests          int64  `json:"requests"`
				OutputTokens      int64  `json:"output_tokens"`
				EstimatedRequests int64  `json:"estimated_requests"`
			} `json:"rows"`
		}
		if err := json.Unmarshal([]byte(body), &rep); status != 200 || err != nil {
			t.Fatalf("usage report: %d %s", status, body)
		}
		// 16 bytes of output, about four a token.
		if len(rep.Rows) != 1 || rep.Rows[0].Model != "fake" || rep.Rows[0].Requests != 1 || rep.Rows[0].EstimatedRequests != 1 || rep.Rows[0].OutputTokens != 4 {
			t.Fatalf("usage report after a shutdown that cut a stream: %s\nwant the stream, 4 output tokens, estimated", body)
		}
	})
}
