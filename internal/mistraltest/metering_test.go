package mistraltest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/apitest"
)

// at returns the number at a dotted path of m.
func at(t *testing.T, m map[string]any, path string) int {
	t.Helper()
	var v any = m
	for _, k := range strings.Split(path, ".") {
		obj, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%s: %v has no %s", path, v, k)
		}
		v = obj[k]
	}
	n, ok := v.(float64)
	if !ok {
		t.Fatalf("%s is %v in %v, want a number", path, v, m)
	}
	return int(n)
}

// TestUsage: every metered answer reports the usage the test set, with
// completion tokens cut to max_tokens, OCR pages and audio seconds.
func TestUsage(t *testing.T) {
	s := New(t)
	f := &fixture{s: s}
	agent := f.newAgent(t)
	file := s.upload(t, "scan.pdf", "ocr", []byte("%PDF-1.4 twelve"))
	s.SetUsage(Usage{PromptTokens: 7, CompletionTokens: 11, PagesProcessed: 3, AudioSeconds: 42})
	for _, c := range []struct {
		name, path string
		body       any
		want       map[string]int
	}{
		{"chat", "/v1/chat/completions", map[string]any{"model": "m", "messages": hello},
			map[string]int{"usage.prompt_tokens": 7, "usage.completion_tokens": 11, "usage.total_tokens": 18}},
		{"chat cut by max_tokens", "/v1/chat/completions", map[string]any{"model": "m", "messages": hello, "max_tokens": 5},
			map[string]int{"usage.completion_tokens": 5, "usage.total_tokens": 12}},
		{"fim", "/v1/fim/completions", map[string]any{"model": "codestral-latest", "prompt": "x", "max_tokens": 50},
			map[string]int{"usage.prompt_tokens": 7, "usage.completion_tokens": 11}},
		{"agents", "/v1/agents/completions", map[string]any{"agent_id": agent, "messages": hello},
			map[string]int{"usage.prompt_tokens": 7, "usage.completion_tokens": 11}},
		{"embeddings", "/v1/embeddings", map[string]any{"model": "mistral-embed", "input": "one"},
			map[string]int{"usage.prompt_tokens": 7, "usage.completion_tokens": 0, "usage.total_tokens": 7}},
		{"moderations", "/v1/moderations", map[string]any{"model": "x", "input": []string{"a", "b"}},
			map[string]int{"usage.prompt_tokens": 7, "usage.total_tokens": 7}},
		{"chat moderations", "/v1/chat/moderations", map[string]any{"model": "x", "input": hello},
			map[string]int{"usage.prompt_tokens": 7}},
		{"classifications", "/v1/classifications", map[string]any{"model": "x", "input": "a"},
			map[string]int{"usage.prompt_tokens": 7}},
		{"chat classifications", "/v1/chat/classifications", map[string]any{"model": "x", "input": []any{map[string]any{"messages": hello}}},
			map[string]int{"usage.prompt_tokens": 7}},
		{"ocr", "/v1/ocr", map[string]any{"model": "mistral-ocr-latest", "document": map[string]any{"type": "file", "file_id": file}},
			map[string]int{"usage_info.pages_processed": 3, "usage_info.doc_size_bytes": 15}},
		{"conversation", "/v1/conversations", map[string]any{"model": "m", "inputs": "Hi", "completion_args": map[string]any{"max_tokens": 2}},
			map[string]int{"usage.prompt_tokens": 7, "usage.completion_tokens": 2, "usage.total_tokens": 9}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := s.call(t, "POST", c.path, c.body).want(t, 200).object(t)
			for path, want := range c.want {
				if n := at(t, got, path); n != want {
					t.Errorf("%s = %d, want %d in %v", path, n, want, got)
				}
			}
		})
	}

	chat := s.call(t, "POST", "/v1/chat/completions", map[string]any{"model": "m", "messages": hello, "max_tokens": 5}).object(t)
	if choice := chat["choices"].([]any)[0].(map[string]any); choice["finish_reason"] != "length" {
		t.Errorf("a completion cut by max_tokens finished with %v, want length", choice["finish_reason"])
	}
	agentAnswer := s.call(t, "POST", "/v1/agents/completions", map[string]any{"agent_id": agent, "messages": hello}).object(t)
	if agentAnswer["model"] != "mistral-small-latest" {
		t.Errorf("an agent answered as %v, want its model", agentAnswer["model"])
	}
	if got := s.call(t, "POST", "/v1/moderations", map[string]any{"model": "x", "input": []string{"a", "b"}}).object(t); len(got["results"].([]any)) != 2 {
		t.Errorf("two inputs moderated as %v", got["results"])
	}
	if got := s.call(t, "POST", "/v1/chat/moderations", map[string]any{"model": "x", "input": []any{hello, hello, hello}}).object(t); len(got["results"].([]any)) != 3 {
		t.Errorf("three conversations moderated as %v", got["results"])
	}
	embedded := s.call(t, "POST", "/v1/embeddings", map[string]any{"model": "e", "input": []string{"a", "b"}, "output_dimension": 3}).object(t)
	if data := embedded["data"].([]any); len(data) != 2 || len(data[1].(map[string]any)["embedding"].([]any)) != 3 {
		t.Errorf("embeddings %v, want two of 3 dimensions", data)
	}
	if got := s.call(t, "POST", "/v1/ocr", map[string]any{"model": "o", "document": map[string]any{"type": "document_url", "document_url": "https://example.com/a.pdf"}}).object(t); len(got["pages"].([]any)) != 3 {
		t.Errorf("OCR answered %d pages, want 3", len(got["pages"].([]any)))
	}
	wantError(t, s.call(t, "POST", "/v1/ocr", map[string]any{"model": "o", "document": map[string]any{"type": "file", "file_id": agent}}), 404, "not_found_error", agent)

	body, ct := multipartForm(t, map[string]string{"model": "voxtral-mini-latest", "language": "de"}, "a.wav", []byte(audioWAV))
	heard := send(t, s, s.Key, "POST", "/v1/audio/transcriptions", body, ct).want(t, 200).object(t)
	if at(t, heard, "usage.prompt_audio_seconds") != 42 || at(t, heard, "usage.prompt_tokens") != 7 || heard["language"] != "de" {
		t.Errorf("transcription %v", heard)
	}
	body, ct = multipartForm(t, map[string]string{"model": "voxtral-mini-latest", "file_id": agent}, "", nil)
	wantError(t, send(t, s, s.Key, "POST", "/v1/audio/transcriptions", body, ct), 404, "not_found_error", agent)
}

// TestStreams: every streamed operation sends Chunks content events with
// Pause between them, in Mistral's event shapes, the usage in the last
// event (chat, FIM and agents completions end with data: [DONE]); each
// stream matches the document.
func TestStreams(t *testing.T) {
	s := New(t)
	f := &fixture{s: s}
	agent := f.newAgent(t)
	conv, entry := f.newConversation(t)
	const chunks, pause = 5, 10 * time.Millisecond
	s.SetStream(Stream{Chunks: chunks, Pause: pause})
	s.SetUsage(Usage{PromptTokens: 3, CompletionTokens: 9, AudioSeconds: 4})

	// The document gives agents completions no stream, though Mistral's
	// API and SDKs stream them as chat completions; the stream is checked
	// as chat's.
	completions := []struct{ op, path, checkAs string }{
		{"chat_completion_v1_chat_completions_post", "/v1/chat/completions", "chat_completion_v1_chat_completions_post"},
		{"fim_completion_v1_fim_completions_post", "/v1/fim/completions", "fim_completion_v1_fim_completions_post"},
		{"agents_completion_v1_agents_completions_post", "/v1/agents/completions", "chat_completion_v1_chat_completions_post"},
	}
	for _, c := range completions {
		t.Run(c.op, func(t *testing.T) {
			start := time.Now()
			r := s.call(t, "POST", c.path, map[string]any{"model": "m", "agent_id": agent, "messages": hello, "prompt": "x", "stream": true}).want(t, 200)
			if elapsed := time.Since(start); elapsed < (chunks-1)*pause {
				t.Errorf("the stream took %v, less than its pauses", elapsed)
			}
			if !strings.HasPrefix(r.contentType, "text/event-stream") {
				t.Fatalf("content type %s", r.contentType)
			}
			evs := parseEvents(t, r.body)
			if len(evs) != chunks+1 || evs[chunks].data != "[DONE]" {
				t.Fatalf("%d events, want %d chunks and [DONE]: %s", len(evs), chunks, r.body)
			}
			var text strings.Builder
			for i, e := range evs[:chunks] {
				chunk := e.decode(t)
				choice := chunk["choices"].([]any)[0].(map[string]any)
				text.WriteString(choice["delta"].(map[string]any)["content"].(string))
				last := i == chunks-1
				if (choice["finish_reason"] != nil) != last || (chunk["usage"] != nil) != last {
					t.Errorf("chunk %d: %v; only the last has a finish reason and the usage", i, chunk)
				}
			}
			if text.String() != strings.Repeat(word, chunks) {
				t.Errorf("streamed text %q", text.String())
			}
			if last := evs[chunks-1].decode(t); at(t, last, "usage.completion_tokens") != 9 || at(t, last, "usage.total_tokens") != 12 {
				t.Errorf("last chunk %v", last)
			}
			apitest.CheckModelResponse(t, c.checkAs, r.status, r.contentType, r.body)
		})
	}

	for _, c := range []struct {
		op, path string
		body     map[string]any
	}{
		{"agents_api_v1_conversations_start_stream", "/v1/conversations", map[string]any{"model": "m", "inputs": "Hi"}},
		{"agents_api_v1_conversations_append_stream", "/v1/conversations/" + conv, map[string]any{"inputs": "More"}},
		{"agents_api_v1_conversations_restart_stream", "/v1/conversations/" + conv + "/restart", map[string]any{"from_entry_id": entry, "inputs": "Again"}},
	} {
		t.Run(c.op, func(t *testing.T) {
			c.body["stream"] = true
			r := s.call(t, "POST", c.path, c.body).want(t, 200)
			evs := parseEvents(t, r.body)
			if len(evs) != chunks+2 || evs[0].name != "conversation.response.started" || evs[chunks+1].name != "conversation.response.done" {
				t.Fatalf("events %v", evs)
			}
			for _, e := range evs {
				if d := e.decode(t); d["type"] != e.name {
					t.Errorf("event %s carries type %v", e.name, d["type"])
				}
			}
			id := str(t, evs[0].decode(t), "conversation_id")
			if done := evs[chunks+1].decode(t); at(t, done, "usage.completion_tokens") != 9 {
				t.Errorf("done %v", done)
			}
			history := s.call(t, "GET", "/v1/conversations/"+id+"/history", nil).want(t, 200).object(t)["entries"].([]any)
			if last := history[len(history)-1].(map[string]any); last["type"] != "message.output" || last["content"] != strings.Repeat(word, chunks) {
				t.Errorf("the streamed answer was kept as %v", last)
			}
			if s.Count(c.op) != 1 {
				t.Errorf("Count(%s) = %d, want 1", c.op, s.Count(c.op))
			}
			apitest.CheckModelResponse(t, c.op, r.status, r.contentType, r.body)
		})
	}

	t.Run("transcription", func(t *testing.T) {
		body, ct := multipartForm(t, map[string]string{"model": "voxtral-mini-latest", "stream": "true"}, "a.wav", []byte(audioWAV))
		r := send(t, s, s.Key, "POST", "/v1/audio/transcriptions", body, ct).want(t, 200)
		evs := parseEvents(t, r.body)
		if len(evs) != chunks+2 || evs[0].name != "transcription.language" || evs[chunks+1].name != "transcription.done" {
			t.Fatalf("events %v", evs)
		}
		if done := evs[chunks+1].decode(t); at(t, done, "usage.prompt_audio_seconds") != 4 || done["text"] != strings.Repeat(word, chunks) {
			t.Errorf("done %v", done)
		}
		if s.Count("audio_api_v1_transcriptions_post_stream") != 1 || s.Count("audio_api_v1_transcriptions_post") != 0 {
			t.Error("a streamed transcription was not counted as the streamed operation")
		}
		apitest.CheckModelResponse(t, "audio_api_v1_transcriptions_post_stream", r.status, r.contentType, r.body)
	})

	t.Run("speech", func(t *testing.T) {
		r := s.call(t, "POST", "/v1/audio/speech", map[string]any{"input": "Hello", "stream": true}).want(t, 200)
		evs := parseEvents(t, r.body)
		if len(evs) != chunks+1 || evs[chunks].name != "speech.audio.done" {
			t.Fatalf("events %v", evs)
		}
		var audio []byte
		for _, e := range evs[:chunks] {
			part, err := base64.StdEncoding.DecodeString(str(t, e.decode(t), "audio_data"))
			if err != nil {
				t.Fatal(err)
			}
			audio = append(audio, part...)
		}
		if !bytes.Equal(audio, wav(1600)) {
			t.Errorf("the deltas make %d bytes, not the WAV", len(audio))
		}
		if done := evs[chunks].decode(t); at(t, done, "usage.prompt_tokens") != 3 {
			t.Errorf("done %v", done)
		}
		apitest.CheckModelResponse(t, "speech_v1_audio_speech_post", r.status, r.contentType, r.body)
	})

	t.Run("one chunk", func(t *testing.T) {
		s.SetStream(Stream{Chunks: 0})
		r := s.call(t, "POST", "/v1/chat/completions", map[string]any{"model": "m", "messages": hello, "stream": true}).want(t, 200)
		evs := parseEvents(t, r.body)
		if len(evs) != 2 {
			t.Fatalf("events %v, want one chunk and [DONE]", evs)
		}
		chunk := evs[0].decode(t)
		choice := chunk["choices"].([]any)[0].(map[string]any)
		if choice["delta"].(map[string]any)["role"] != "assistant" || choice["finish_reason"] != "stop" || chunk["usage"] == nil {
			t.Errorf("the only chunk %v lacks the role, finish reason or usage", chunk)
		}
		apitest.CheckModelResponse(t, "chat_completion_v1_chat_completions_post", r.status, r.contentType, r.body)
	})
}

// TestStreamEndsWithItsClient: a client that leaves mid-stream ends the
// stream, and a server whose test ends mid-pause closes at once.
func TestStreamEndsWithItsClient(t *testing.T) {
	open := func(t *testing.T, s *Server, ctx context.Context) (*http.Response, *bufio.Reader) {
		t.Helper()
		b, _ := json.Marshal(map[string]any{"model": "m", "messages": hello, "stream": true})
		req, err := http.NewRequestWithContext(ctx, "POST", s.URL+"/v1/chat/completions", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+s.Key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		rd := bufio.NewReader(resp.Body)
		if line, err := rd.ReadString('\n'); err != nil || !strings.HasPrefix(line, "data: {") {
			t.Fatalf("first line %q, %v", line, err)
		}
		return resp, rd
	}

	s := New(t)
	s.SetStream(Stream{Chunks: 3, Pause: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	resp, rd := open(t, s, ctx)
	cancel()
	if _, err := io.ReadAll(rd); !errors.Is(err, context.Canceled) {
		t.Errorf("reading a cancelled stream: %v", err)
	}
	resp.Body.Close()

	var left *http.Response
	var rest *bufio.Reader
	t.Run("the test ends mid-pause", func(t *testing.T) {
		inner := New(t)
		inner.SetStream(Stream{Chunks: 3, Pause: time.Hour})
		left, rest = open(t, inner, context.Background())
	})
	defer left.Body.Close()
	if b, _ := io.ReadAll(rest); bytes.Contains(b, []byte("[DONE]")) {
		t.Errorf("a stream cut by the server's end went on: %s", b)
	}
}

// TestRecordingAndFailures: Last holds what an operation received, Fail
// makes it answer an error until cleared, a delay holds the answer (the
// request recorded meanwhile), and paths or bodies the document does not
// allow are refused as Mistral refuses them.
func TestRecordingAndFailures(t *testing.T) {
	s := New(t)
	const chat = "chat_completion_v1_chat_completions_post"
	if _, ok := s.Last(chat); ok || s.Count(chat) != 0 {
		t.Fatal("Last or Count report a request never sent")
	}
	body := `{"model":"m","messages":[{"role":"user","content":"Hi"}]}`
	req, _ := http.NewRequest("POST", s.BaseURL()+"/chat/completions?trace=1", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+s.Key)
	req.Header.Set("X-Request-Id", "req-1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	last, ok := s.Last(chat)
	if !ok || string(last.Body) != body || last.BodySize != int64(len(body)) || last.Header.Get("X-Request-Id") != "req-1" ||
		last.URL.Path != "/v1/chat/completions" || last.URL.Query().Get("trace") != "1" || last.Method != "POST" {
		t.Fatalf("Last = %+v", last)
	}
	last.Header.Set("X-Request-Id", "changed")
	if again, _ := s.Last(chat); again.Header.Get("X-Request-Id") != "req-1" {
		t.Error("Last shares its header with the server")
	}

	s.Fail(chat, http.StatusServiceUnavailable)
	wantError(t, s.call(t, "POST", "/v1/chat/completions", json.RawMessage(body)), 503, "server_error", chat)
	s.Fail(chat, http.StatusTooManyRequests)
	limited := s.call(t, "POST", "/v1/chat/completions", json.RawMessage(body))
	wantError(t, limited, 429, "rate_limit_error")
	if limited.header.Get("Retry-After") == "" {
		t.Error("a 429 without Retry-After")
	}
	s.Fail("agents_api_v1_conversations_start_stream", http.StatusInternalServerError)
	wantError(t, s.call(t, "POST", "/v1/conversations", map[string]any{"model": "m", "inputs": "Hi", "stream": true}), 500, "server_error")
	s.call(t, "POST", "/v1/conversations", map[string]any{"model": "m", "inputs": "Hi"}).want(t, 200)
	s.Fail(chat, 0)
	s.call(t, "POST", "/v1/chat/completions", json.RawMessage(body)).want(t, 200)
	if s.Count(chat) != 4 {
		t.Errorf("Count = %d, want 4 (failed requests count)", s.Count(chat))
	}

	s.SetDelay(time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	slow, _ := http.NewRequestWithContext(ctx, "GET", s.URL+"/v1/models", nil)
	slow.Header.Set("Authorization", "Bearer "+s.Key)
	if resp, err := http.DefaultClient.Do(slow); err == nil {
		resp.Body.Close()
		t.Fatalf("a delayed answer came at once: %d", resp.StatusCode)
	}
	if s.Count("list_models_v1_models_get") != 1 {
		t.Error("a delayed request was not recorded")
	}
	s.SetDelay(0)

	for _, c := range []struct{ method, path string }{{"GET", "/v1/nothing"}, {"PUT", "/v1/chat/completions"}, {"GET", "/v2/models"}} {
		r := send(t, s, s.Key, c.method, c.path, nil, "")
		if r.status != 404 || strings.TrimSpace(string(r.body)) != `{"detail":"Not Found"}` {
			t.Errorf("%s %s: %d %s, want 404 Not Found", c.method, c.path, r.status, r.body)
		}
	}
	bad := send(t, s, s.Key, "POST", "/v1/chat/completions", strings.NewReader("{"), "application/json")
	wantDetail(t, bad, "body")
	apitest.CheckModelResponse(t, chat, bad.status, bad.contentType, bad.body)
	missing := s.call(t, "POST", "/v1/chat/completions", map[string]any{"messages": hello})
	wantDetail(t, missing, "model")
	apitest.CheckModelResponse(t, chat, missing.status, missing.contentType, missing.body)
	wantDetail(t, s.call(t, "GET", "/v1/agents?page_size=0", nil), "page_size")
}
