package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/mistraltest"
)

// TestPagesAndAudioThroughTheBinary serves OCR and transcriptions from the
// fake Mistral upstream through the real binary, on both engines: each is
// priced in its unit (a page, a second of audio, each a unit here), the
// Organization's spend cap holds them by their cost, and the usage report
// shows what they cost.
func TestPagesAndAudioThroughTheBinary(t *testing.T) {
	engines(t, func(t *testing.T, db []string) {
		up := mistraltest.New(t)
		up.SetUsage(mistraltest.Usage{PagesProcessed: 4, AudioSeconds: 3, PromptTokens: 2, CompletionTokens: 1})
		cfg := filepath.Join(t.TempDir(), "steward.yaml")
		if err := os.WriteFile(cfg, fmt.Appendf(nil, `models:
  - name: ocr
    upstreams: [{url: %[1]s, api_key_env: FAKE_MISTRAL_KEY}]
    price_per_thousand_pages: 1000
    endpoints: [ocr]
    aliases: [ocr-latest]
    description: Reads documents.
    max_context_length: 16384
    capabilities: {vision: true}
  - name: voxtral
    upstreams: [{url: %[1]s, api_key_env: FAKE_MISTRAL_KEY}]
    price_per_minute_of_audio: 60
    max_audio_seconds: 5
    endpoints: [transcriptions]
`, up.BaseURL()), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(binary, append([]string{"serve", "--addr", "127.0.0.1:0", "--config", cfg}, db...)...)
		cmd.Env = append(os.Environ(), "FAKE_MISTRAL_KEY="+up.Key)
		p := run(t, cmd)
		admin := adminKey.FindStringSubmatch(p.output)[1]
		_, key := p.workspaceKey(t, admin)
		if status, body := p.call(t, "POST", "/v1/admin/spend-limit", admin, `{"amount":10}`); status != 200 {
			t.Fatalf("spend limit: %d %s", status, body)
		}
		// The config file's card settings make the model's card, which
		// its alias names too.
		if resp, body, err := p.send("GET", "/v1/models/ocr-latest", "Authorization", "Bearer "+key, ""); err != nil || resp.StatusCode != 200 ||
			!strings.HasPrefix(body, `{"id":"ocr",`) || !strings.Contains(body, `"ocr":true,`) || !strings.Contains(body, `"vision":true}`) ||
			!strings.Contains(body, `"description":"Reads documents.","max_context_length":16384,"aliases":["ocr-latest"],`) {
			t.Fatalf("the card of the OCR model's alias: %v %s", err, body)
		}
		ocr := func(pages string) (*http.Response, string) {
			t.Helper()
			resp, body, err := p.send("POST", "/v1/ocr", "Authorization", "Bearer "+key,
				`{"model":"ocr","document":{"type":"document_url","document_url":"https://example.com/a.pdf"},"pages":`+pages+`}`)
			if err != nil {
				t.Fatal(err)
			}
			return resp, body
		}
		// 5 pages reserved, 4 read: 4 units.
		if resp, body := ocr("[0,1,2,3,4]"); resp.StatusCode != 200 || !strings.Contains(body, `"pages_processed":4`) {
			t.Fatalf("OCR: %d %s", resp.StatusCode, body)
		}
		// 5 seconds reserved, 3 heard: 3 units.
		var form bytes.Buffer
		w := multipart.NewWriter(&form)
		_ = w.WriteField("model", "voxtral")
		f, _ := w.CreateFormFile("file", "a.mp3")
		_, _ = f.Write(bytes.Repeat([]byte{1}, 4096))
		_ = w.Close()
		req, err := http.NewRequest("POST", p.base+"/v1/audio/transcriptions", &form)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", w.FormDataContentType())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var tr struct {
			Usage struct {
				PromptAudioSeconds int64 `json:"prompt_audio_seconds"`
			}
		}
		if err := json.NewDecoder(resp.Body).Decode(&tr); resp.StatusCode != 200 || err != nil || tr.Usage.PromptAudioSeconds != 3 {
			t.Fatalf("transcription: %d %+v %v", resp.StatusCode, tr, err)
		}
		resp.Body.Close()
		// 7 of 10 spent: 4 pages more would exceed the cap.
		if resp, body := ocr("[0,1,2,3]"); resp.StatusCode != 429 || !strings.Contains(body, "spend_limit_exceeded") {
			t.Fatalf("OCR beyond the cap: %d %s", resp.StatusCode, body)
		}
		// 3 fit; the upstream reads 4 all the same, which are recorded
		// (an overrun): OCR has cost 8.
		if resp, body := ocr("[0,1,2]"); resp.StatusCode != 200 {
			t.Fatalf("OCR within the cap: %d %s", resp.StatusCode, body)
		}

		day := time.Now().UTC()
		var rep struct {
			Rows []struct {
				Model    string  `json:"model"`
				Requests int64   `json:"requests"`
				Cost     float64 `json:"cost"`
			}
		}
		body := eventually(func() (string, bool) {
			_, body := p.get(t, "/v1/admin/usage/report?start="+day.Format("2006-01-02")+"&end="+day.AddDate(0, 0, 1).Format("2006-01-02")+"&bucket=day&group_by=model", admin)
			return body, strings.Count(body, `"requests":`) == 2 && strings.Contains(body, `"requests":2,`)
		})
		if err := json.Unmarshal([]byte(body), &rep); err != nil || len(rep.Rows) != 2 {
			t.Fatalf("usage report: %s", body)
		}
		for _, r := range rep.Rows {
			if want := map[string]float64{"ocr": 8, "voxtral": 3}[r.Model]; r.Cost != want {
				t.Errorf("%s cost %v, want %v: %s", r.Model, r.Cost, want, body)
			}
		}
	})
}
