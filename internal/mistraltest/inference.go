package mistraltest

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// usageInfo is the usage a completion, an embedding, a classification or a
// transcription reports.
type usageInfo struct {
	PromptTokens       int  `json:"prompt_tokens"`
	CompletionTokens   int  `json:"completion_tokens"`
	TotalTokens        int  `json:"total_tokens"`
	PromptAudioSeconds *int `json:"prompt_audio_seconds,omitempty"`
}

func tokens(prompt, completion int) usageInfo {
	return usageInfo{PromptTokens: prompt, CompletionTokens: completion, TotalTokens: prompt + completion}
}

// settings returns what answers report and how streams are cut now.
func (s *Server) settings() (Usage, Stream) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.usage, s.stream
}

// word is the text of one streamed chunk; an answer's text is Chunks words.
const word = "tok "

// completionRequest holds what the fake reads of a chat, FIM or agents
// completion request.
type completionRequest struct {
	Model     string          `json:"model"`
	AgentID   string          `json:"agent_id"`
	Messages  json.RawMessage `json:"messages"`
	Prompt    *string         `json:"prompt"`
	MaxTokens *int            `json:"max_tokens"`
	Stream    bool            `json:"stream"`
}

func (s *Server) chat(c *call) {
	var req completionRequest
	if c.read("chat_completion_v1_chat_completions_post", &req, func() []field {
		return []field{{"model", req.Model == ""}, {"messages", req.Messages == nil}}
	}) {
		c.complete(req.Model, req.MaxTokens, req.Stream)
	}
}

func (s *Server) fim(c *call) {
	var req completionRequest
	if c.read("fim_completion_v1_fim_completions_post", &req, func() []field {
		return []field{{"model", req.Model == ""}, {"prompt", req.Prompt == nil}}
	}) {
		c.complete(req.Model, req.MaxTokens, req.Stream)
	}
}

// agentsCompletion answers as the agent's current model; an unknown agent
// is 404.
func (s *Server) agentsCompletion(c *call) {
	var req completionRequest
	if !c.read("agents_completion_v1_agents_completions_post", &req, func() []field {
		return []field{{"agent_id", req.AgentID == ""}, {"messages", req.Messages == nil}}
	}) {
		return
	}
	s.mu.Lock()
	a, ok := s.agents.get(req.AgentID)
	var model string
	if ok {
		model = a.currentVersion().model()
	}
	s.mu.Unlock()
	if !ok {
		c.notFound("Agent", req.AgentID)
		return
	}
	c.complete(model, req.MaxTokens, req.Stream)
}

// chunkChoice and its delta are one choice of a streamed chunk.
type chunkChoice struct {
	Index        int     `json:"index"`
	Delta        delta   `json:"delta"`
	FinishReason *string `json:"finish_reason"`
}

type delta struct {
	Role    string `json:"role,omitempty"`
	Content string `json:"content"`
}

type completionChunk struct {
	ID      string        `json:"id"`
	Object  string        `json:"object"`
	Created int64         `json:"created"`
	Model   string        `json:"model"`
	Choices []chunkChoice `json:"choices"`
	Usage   *usageInfo    `json:"usage,omitempty"`
}

// complete answers a completion: Chunks words, with the usage set, its
// completion tokens cut to maxTokens (the finish reason is then
// "length"); streamed as chunks closed by data: [DONE], the last with the
// finish reason and the usage.
func (c *call) complete(model string, maxTokens *int, stream bool) {
	u, st := c.s.settings()
	completion, finish := u.CompletionTokens, "stop"
	if maxTokens != nil && *maxTokens < completion {
		completion, finish = max(*maxTokens, 0), "length"
	}
	usage := tokens(u.PromptTokens, completion)
	id, created := randomHex(16), time.Now().Unix()
	if !stream {
		c.ok(map[string]any{
			"id":      id,
			"object":  "chat.completion",
			"model":   model,
			"created": created,
			"usage":   usage,
			"choices": []map[string]any{{
				"index":         0,
				"message":       map[string]any{"role": "assistant", "content": strings.Repeat(word, st.Chunks), "tool_calls": nil, "prefix": false},
				"finish_reason": finish,
			}},
		})
		return
	}
	chunk := func(d delta, finish *string, usage *usageInfo) []byte {
		b, _ := json.Marshal(completionChunk{
			ID: id, Object: "chat.completion.chunk", Created: created, Model: model,
			Choices: []chunkChoice{{Index: 0, Delta: d, FinishReason: finish}}, Usage: usage,
		})
		return b
	}
	first := chunk(delta{Role: "assistant", Content: word}, nil, nil)
	middle := chunk(delta{Content: word}, nil, nil)
	last := chunk(delta{Content: word}, &finish, &usage)
	if st.Chunks == 1 {
		last = chunk(delta{Role: "assistant", Content: word}, &finish, &usage)
	}
	e := c.startEvents()
	for i := range st.Chunks {
		data := middle
		switch {
		case i == st.Chunks-1:
			data = last
		case i == 0:
			data = first
		}
		if i > 0 && !c.wait(st.Pause) || !e.send("", data) {
			return
		}
	}
	e.send("", []byte("[DONE]"))
}

// events writes a text/event-stream answer, flushing each event.
type events struct {
	w  io.Writer
	rc *http.ResponseController
}

func (c *call) startEvents() *events {
	h := c.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	c.w.WriteHeader(http.StatusOK)
	return &events{w: c.w, rc: http.NewResponseController(c.w)}
}

// send writes one event, named when name is not empty, and reports whether
// it reached the connection.
func (e *events) send(name string, data []byte) bool {
	if name != "" {
		if _, err := io.WriteString(e.w, "event: "+name+"\n"); err != nil {
			return false
		}
	}
	_, err1 := io.WriteString(e.w, "data: ")
	_, err2 := e.w.Write(data)
	_, err3 := io.WriteString(e.w, "\n\n")
	if err1 != nil || err2 != nil || err3 != nil {
		return false
	}
	return e.rc.Flush() == nil
}

// sendJSON sends v as the data of the event name.
func (e *events) sendJSON(name string, v any) bool {
	b, err := json.Marshal(v)
	if err != nil {
		return false
	}
	return e.send(name, b)
}

// inputCount is how many inputs a classification or embedding request
// holds: one for a string or an object, the length of an array; 0 when it
// is none of these.
func inputCount(raw json.RawMessage) int {
	var list []json.RawMessage
	if json.Unmarshal(raw, &list) == nil {
		return len(list)
	}
	var one any
	if json.Unmarshal(raw, &one) != nil {
		return 0
	}
	switch one.(type) {
	case string, map[string]any:
		return 1
	}
	return 0
}

// classifyRequest holds what the fake reads of an embeddings, moderation
// or classification request.
type classifyRequest struct {
	Model           string          `json:"model"`
	Input           json.RawMessage `json:"input"`
	OutputDimension *int            `json:"output_dimension"`
}

// readClassify decodes a request to op and checks its model and input,
// answering when they are wrong; it returns the number of inputs, 0 when
// it answered.
func (c *call) readClassify(op string, req *classifyRequest) int {
	if !c.read(op, req, func() []field { return []field{{"model", req.Model == ""}, {"input", req.Input == nil}} }) {
		return 0
	}
	n := inputCount(req.Input)
	if n == 0 {
		c.invalid("string_type", "Input should be a valid string or list", "body", "input")
	}
	return n
}

// embeddingDimension is the length of an embedding unless the request asks
// for another (output_dimension, at most maxEmbeddingDimension).
const (
	embeddingDimension    = 8
	maxEmbeddingDimension = 4096
)

func (s *Server) embeddings(c *call) {
	var req classifyRequest
	n := c.readClassify("embeddings_v1_embeddings_post", &req)
	if n == 0 {
		return
	}
	dim := embeddingDimension
	if req.OutputDimension != nil {
		dim = min(max(*req.OutputDimension, 1), maxEmbeddingDimension)
	}
	u, _ := s.settings()
	data := make([]map[string]any, n)
	for i := range data {
		vec := make([]float64, dim)
		for j := range vec {
			vec[j] = float64((i+1)*(j+1)%7) / 10
		}
		data[i] = map[string]any{"object": "embedding", "embedding": vec, "index": i}
	}
	c.ok(map[string]any{
		"id":     randomHex(16),
		"object": "list",
		"model":  req.Model,
		"data":   data,
		"usage":  tokens(u.PromptTokens, 0),
	})
}

// moderationCategories are the categories of Mistral's moderation model.
var moderationCategories = []string{
	"sexual", "hate_and_discrimination", "violence_and_threats", "dangerous_and_criminal_content",
	"selfharm", "health", "financial", "law", "pii",
}

func (s *Server) moderations(c *call) {
	var req classifyRequest
	if n := c.readClassify("moderations_v1_moderations_post", &req); n > 0 {
		c.moderate(req.Model, n)
	}
}

// chatModerations moderates one conversation, or each of a list of them.
func (s *Server) chatModerations(c *call) {
	var req classifyRequest
	if n := c.readClassify("chat_moderations_v1_chat_moderations_post", &req); n > 0 {
		c.moderate(req.Model, conversations(req.Input, n))
	}
}

// conversations is how many conversations a chat moderation or
// classification input of n items holds: n when its items are lists of
// messages, else one.
func conversations(input json.RawMessage, n int) int {
	var lists [][]json.RawMessage
	if json.Unmarshal(input, &lists) == nil {
		return n
	}
	return 1
}

func (c *call) moderate(model string, n int) {
	u, _ := c.s.settings()
	results := make([]map[string]any, n)
	for i := range results {
		flags, scores := map[string]bool{}, map[string]float64{}
		for _, cat := range moderationCategories {
			flags[cat], scores[cat] = false, 0.001
		}
		results[i] = map[string]any{"categories": flags, "category_scores": scores}
	}
	c.ok(map[string]any{"id": randomHex(16), "model": model, "results": results, "usage": tokens(u.PromptTokens, 0)})
}

func (s *Server) classifications(c *call) {
	var req classifyRequest
	if n := c.readClassify("classifications_v1_classifications_post", &req); n > 0 {
		c.classify(req.Model, n)
	}
}

// chatClassifications classifies one instruct request ({"messages": ...})
// or each of a list of them.
func (s *Server) chatClassifications(c *call) {
	var req classifyRequest
	n := c.readClassify("chat_classifications_v1_chat_classifications_post", &req)
	if n == 0 {
		return
	}
	var one map[string]json.RawMessage
	if json.Unmarshal(req.Input, &one) == nil {
		n = 1
	}
	c.classify(req.Model, n)
}

// classify answers n results of one target, "label", with two classes.
func (c *call) classify(model string, n int) {
	u, _ := c.s.settings()
	results := make([]map[string]any, n)
	for i := range results {
		results[i] = map[string]any{"label": map[string]any{"scores": map[string]float64{"yes": 0.9, "no": 0.1}}}
	}
	c.ok(map[string]any{"id": randomHex(16), "model": model, "results": results, "usage": tokens(u.PromptTokens, 0)})
}

// ocr answers PagesProcessed pages. A document given as an uploaded file
// must be one of the server's files.
func (s *Server) ocr(c *call) {
	var req struct {
		Model    string `json:"model"`
		Document *struct {
			Type   string `json:"type"`
			FileID string `json:"file_id"`
		} `json:"document"`
	}
	if !c.read("ocr_v1_ocr_post", &req, func() []field {
		return []field{{"model", req.Model == ""}, {"document", req.Document == nil}}
	}) {
		return
	}
	var size any
	if req.Document.Type == "file" || req.Document.FileID != "" {
		s.mu.Lock()
		f, ok := s.files.get(req.Document.FileID)
		if ok {
			size = f.bytes
		}
		s.mu.Unlock()
		if !ok {
			c.notFound("File", req.Document.FileID)
			return
		}
	}
	u, _ := s.settings()
	pages := make([]map[string]any, u.PagesProcessed)
	for i := range pages {
		pages[i] = map[string]any{
			"index":      i,
			"markdown":   fmt.Sprintf("# Page %d\n\nText of page %d.", i+1, i+1),
			"images":     []any{},
			"dimensions": map[string]int{"dpi": 200, "height": 2200, "width": 1700},
		}
	}
	c.ok(map[string]any{
		"pages":               pages,
		"model":               req.Model,
		"document_annotation": nil,
		"usage_info":          map[string]any{"pages_processed": u.PagesProcessed, "doc_size_bytes": size},
	})
}

// transcription reads its form as a stream, the audio without keeping it,
// and answers Chunks words; with the stream field true it is the streamed
// operation: the language, Chunks text deltas, then transcription.done
// with the usage. A file_id must be one of the server's files.
func (s *Server) transcription(c *call) {
	form, err := c.readForm(false)
	op := "audio_api_v1_transcriptions_post"
	stream := form.fields["stream"] == "true"
	if stream {
		op = "audio_api_v1_transcriptions_post_stream"
	}
	if !c.arrived(op) {
		return
	}
	model, fileID := form.fields["model"], form.fields["file_id"]
	switch {
	case err != nil:
		c.invalid("value_error", err.Error(), "body")
		return
	case model == "":
		c.missing("model")
		return
	case form.file == nil && fileID == "" && form.fields["file_url"] == "":
		c.missing("file")
		return
	}
	if fileID != "" {
		s.mu.Lock()
		_, ok := s.files.get(fileID)
		s.mu.Unlock()
		if !ok {
			c.notFound("File", fileID)
			return
		}
	}
	u, st := s.settings()
	usage := tokens(u.PromptTokens, u.CompletionTokens)
	usage.PromptAudioSeconds = &u.AudioSeconds
	language := "en"
	if l := form.fields["language"]; l != "" {
		language = l
	}
	text := strings.Repeat(word, st.Chunks)
	done := map[string]any{"model": model, "text": text, "language": language, "segments": []any{}, "usage": usage}
	if !stream {
		c.ok(done)
		return
	}
	e := c.startEvents()
	if !e.sendJSON("transcription.language", map[string]string{"type": "transcription.language", "audio_language": language}) {
		return
	}
	for range st.Chunks {
		if !c.wait(st.Pause) || !e.sendJSON("transcription.text.delta", map[string]string{"type": "transcription.text.delta", "text": word}) {
			return
		}
	}
	done["type"] = "transcription.done"
	e.sendJSON("transcription.done", done)
}

// speech answers a short silent WAV, whole or, with "stream": true, as
// Chunks audio deltas followed by speech.audio.done with the usage. A
// voice_id must be one of the server's voices.
func (s *Server) speech(c *call) {
	var req struct {
		Input   *string `json:"input"`
		VoiceID string  `json:"voice_id"`
		Stream  bool    `json:"stream"`
	}
	if !c.read("speech_v1_audio_speech_post", &req, func() []field { return []field{{"input", req.Input == nil}} }) {
		return
	}
	if req.VoiceID != "" {
		s.mu.Lock()
		_, ok := s.voice(req.VoiceID)
		s.mu.Unlock()
		if !ok {
			c.notFound("Voice", req.VoiceID)
			return
		}
	}
	u, st := s.settings()
	audio := wav(1600)
	if !req.Stream {
		c.ok(map[string]string{"audio_data": base64.StdEncoding.EncodeToString(audio)})
		return
	}
	e := c.startEvents()
	step := (len(audio) + st.Chunks - 1) / st.Chunks
	for i := range st.Chunks {
		part := audio[min(i*step, len(audio)):min((i+1)*step, len(audio))]
		if i > 0 && !c.wait(st.Pause) || !e.sendJSON("speech.audio.delta", map[string]string{"type": "speech.audio.delta", "audio_data": base64.StdEncoding.EncodeToString(part)}) {
			return
		}
	}
	e.sendJSON("speech.audio.done", map[string]any{"type": "speech.audio.done", "usage": tokens(u.PromptTokens, 0)})
}

// wav is a silent mono 16-bit PCM WAV file of n samples at 16 kHz.
func wav(n int) []byte {
	const rate, bytesPerSample = 16000, 2
	data := n * bytesPerSample
	b := make([]byte, 44+data)
	copy(b, "RIFF")
	binary.LittleEndian.PutUint32(b[4:], uint32(36+data))
	copy(b[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(b[16:], 16)
	binary.LittleEndian.PutUint16(b[20:], 1)
	binary.LittleEndian.PutUint16(b[22:], 1)
	binary.LittleEndian.PutUint32(b[24:], rate)
	binary.LittleEndian.PutUint32(b[28:], rate*bytesPerSample)
	binary.LittleEndian.PutUint16(b[32:], bytesPerSample)
	binary.LittleEndian.PutUint16(b[34:], 8*bytesPerSample)
	copy(b[36:], "data")
	binary.LittleEndian.PutUint32(b[40:], uint32(data))
	return b
}
