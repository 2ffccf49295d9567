package mistraltest

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// benchChunks is how many chunks a benchmarked stream has.
const benchChunks = 1000

// BenchmarkChatStream measures the chunks per second the fake streams to
// one client, beside a bare handler that writes and flushes the same
// number of precomputed chunks: how far the fake is from being the
// bottleneck of a benchmark of what stands between it and its client.
func BenchmarkChatStream(b *testing.B) {
	s := New(b)
	s.SetStream(Stream{Chunks: benchChunks})
	body := `{"model":"m","messages":[{"role":"user","content":"Hi"}],"stream":true}`
	chunk := []byte(`data: {"id":"0123456789abcdef0123456789abcdef","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"tok "},"finish_reason":null}]}` + "\n\n")
	bare := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		rc := http.NewResponseController(w)
		for range benchChunks {
			_, _ = w.Write(chunk)
			_ = rc.Flush()
		}
		_, _ = io.WriteString(w, "data: [DONE]\n\n")
	}))
	b.Cleanup(bare.Close)

	for _, target := range []struct{ name, url string }{{"fake", s.URL}, {"bare", bare.URL}} {
		b.Run(target.name, func(b *testing.B) {
			client := &http.Client{}
			for b.Loop() {
				req, _ := http.NewRequest("POST", target.url+"/v1/chat/completions", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+s.Key)
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				got, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || bytes.Count(got, []byte("\n\n")) != benchChunks+1 {
					b.Fatalf("a stream of %d events, %v", bytes.Count(got, []byte("\n\n")), err)
				}
			}
			b.ReportMetric(float64(b.N*benchChunks)/b.Elapsed().Seconds(), "chunks/s")
		})
	}
}
