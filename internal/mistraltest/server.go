// Package mistraltest is a fake of Mistral's model API, the upstream that
// tests of Steward's gateway talk to. New starts it on an httptest server.
//
// It serves every operation of Mistral's model API document
// (model-api-openapi.yaml, beside the admin document STEWARD_MISTRAL_OPENAPI
// names), with the document's paths
// and methods. A "#stream" operation is its path asked with "stream": true
// in the JSON body (the stream form field for a transcription); agents
// completions stream too, as chat completions do, as Mistral's API does
// although the document gives that operation no stream. Any model name is
// answered. Every request must carry the server's key as "Authorization:
// Bearer <Key>"; anything else is answered 401. Answers follow the
// document's schemas (the package's tests validate each one against it);
// errors use Mistral's error object ({"object":"error","message","type",
// "param","code"}), or FastAPI's {"detail": [...]} (422) for a request
// that cannot be read. A path the document does not have is answered 404
// {"detail":"Not Found"}, as Mistral's API does.
//
// The server keeps state where Mistral does: files (stored on disk, under
// the test's temporary directory, never held whole in memory), batch
// jobs, agents with their versions and aliases, conversations, libraries
// with their documents and sharing, voices and fine-tuned models, each
// answered 404 once deleted or when unknown. Batch jobs stay queued until
// a test finishes one (FinishBatchJob); fine-tuned models are added by
// tests (AddFineTunedModel), as training them is not part of the document.
//
// Tests choose what metered answers report (SetUsage), how long every
// answer waits (SetDelay), how streams are cut (SetStream), and which
// operations fail (Fail); they read how many requests each operation
// received (Count) and the last one's headers and body (Last). Operations
// are named by the document's operationId.
//
// The package is for tests only.
package mistraltest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
)

// MaxRecordedBody is how much of a request's body Last keeps.
const MaxRecordedBody = 1 << 20

// Usage is what metered answers report. Token counts go to every answer
// that reports tokens (chat, FIM, agents completions, conversations,
// embeddings, moderations, classifications, transcriptions, speech
// streams); completion tokens are cut to the request's max_tokens, as a
// model stops there, and are zero where nothing is generated (embeddings,
// moderations, classifications). PagesProcessed is OCR's
// usage_info.pages_processed (and its number of pages); AudioSeconds is a
// transcription's usage.prompt_audio_seconds.
type Usage struct {
	PromptTokens     int
	CompletionTokens int
	PagesProcessed   int
	AudioSeconds     int
}

// Stream is how streamed answers are cut: Chunks events carry the content
// (chat, FIM and agents completion chunks, conversation message deltas,
// transcription text deltas, speech audio deltas), with Pause between two
// events. The events that open and close a stream come on top.
type Stream struct {
	Chunks int
	Pause  time.Duration
}

// Request is what the server read of one request.
type Request struct {
	Method string
	// URL is the request's URL as the server received it: its path and
	// query.
	URL    *url.URL
	Header http.Header
	// Body is the request's body, up to MaxRecordedBody bytes; BodySize
	// is its whole size as the server read it (every operation reads its
	// request before it answers).
	Body     []byte
	BodySize int64
}

// Server is a running fake of Mistral's model API.
type Server struct {
	// URL is the server's root, without /v1 (see BaseURL).
	URL string
	// Key is the upstream key every request must bear. Both are set by
	// New and only read afterwards.
	Key string

	srv  *httptest.Server
	dir  string
	done chan struct{}

	// org, workspace and user are the ids the server gives its caller
	// where Mistral names an owner.
	org, workspace, user string

	mu        sync.Mutex
	usage     Usage
	stream    Stream
	delay     time.Duration
	failures  map[string]int
	ops       map[string]*opStats
	signed    map[string]signedContent
	files     table[*file]
	jobs      table[*batchJob]
	models    table[*model]
	agents    table[*agent]
	convs     table[*conversation]
	libraries table[*library]
	voices    table[*voice]
}

type opStats struct {
	count int
	last  Request
}

// New starts a fake on an httptest server, closed when the test ends. It
// reports 10 prompt and 20 completion tokens, 2 OCR pages and 30 seconds
// of audio, streams 4 chunks without pauses, and knows a few of Mistral's
// base models and two preset voices.
func New(t testing.TB) *Server {
	t.Helper()
	s := &Server{
		Key:       "mistraltest-" + randomHex(16),
		dir:       t.TempDir(),
		done:      make(chan struct{}),
		org:       uuid.NewString(),
		workspace: uuid.NewString(),
		user:      uuid.NewString(),
		usage:     Usage{PromptTokens: 10, CompletionTokens: 20, PagesProcessed: 2, AudioSeconds: 30},
		stream:    Stream{Chunks: 4},
		failures:  map[string]int{},
		ops:       map[string]*opStats{},
		signed:    map[string]signedContent{},
	}
	s.seed()
	s.srv = httptest.NewServer(s.routes())
	s.URL = s.srv.URL
	t.Cleanup(func() {
		close(s.done)
		s.srv.Close()
	})
	return s
}

// BaseURL is the URL Mistral's SDKs and Steward's upstreams are given:
// URL with /v1.
func (s *Server) BaseURL() string { return s.URL + "/v1" }

// SetUsage sets what metered answers report from now on.
func (s *Server) SetUsage(u Usage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.usage = u
}

// SetDelay makes every operation wait d before it answers (0, the
// default, for none), whatever the answer. A request whose client goes
// away meanwhile is not answered.
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// SetStream sets how streamed answers are cut from now on; chunks below 1
// count as 1.
func (s *Server) SetStream(st Stream) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stream = st
	s.stream.Chunks = max(st.Chunks, 1)
}

// Fail makes the operation named operationID answer status, with Mistral's
// error object, until it is called again with status 0. The request is
// still counted and recorded.
func (s *Server) Fail(operationID string, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if status == 0 {
		delete(s.failures, operationID)
		return
	}
	s.failures[operationID] = status
}

// Count is how many requests the operation named operationID received,
// answered or not.
func (s *Server) Count(operationID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.ops[operationID]; st != nil {
		return st.count
	}
	return 0
}

// Last returns the last request the operation named operationID received,
// and false when it received none.
func (s *Server) Last(operationID string) (Request, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.ops[operationID]
	if st == nil {
		return Request{}, false
	}
	r := st.last
	r.Header = r.Header.Clone()
	r.Body = bytes.Clone(r.Body)
	u := *r.URL
	r.URL = &u
	return r, true
}

// routes lists every operation's route, by the document's order of tags.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	handle := func(pattern string, h func(*call)) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			body := &recordingBody{rc: r.Body}
			r.Body = body
			h(&call{s: s, w: w, r: r, body: body})
		})
	}

	handle("POST /v1/chat/completions", s.chat)
	handle("POST /v1/fim/completions", s.fim)
	handle("POST /v1/agents/completions", s.agentsCompletion)
	handle("POST /v1/embeddings", s.embeddings)
	handle("POST /v1/moderations", s.moderations)
	handle("POST /v1/chat/moderations", s.chatModerations)
	handle("POST /v1/classifications", s.classifications)
	handle("POST /v1/chat/classifications", s.chatClassifications)
	handle("POST /v1/ocr", s.ocr)
	handle("POST /v1/audio/transcriptions", s.transcription)
	handle("POST /v1/audio/speech", s.speech)

	handle("GET /v1/models", s.listModels)
	handle("GET /v1/models/{model_id}", s.getModel)
	handle("DELETE /v1/models/{model_id}", s.deleteModel)
	handle("PATCH /v1/fine_tuning/models/{model_id}", s.updateFineTunedModel)
	handle("POST /v1/fine_tuning/models/{model_id}/archive", s.archiveModel)
	handle("DELETE /v1/fine_tuning/models/{model_id}/archive", s.unarchiveModel)

	handle("POST /v1/files", s.uploadFile)
	handle("GET /v1/files", s.listFiles)
	handle("GET /v1/files/{file_id}", s.getFile)
	handle("DELETE /v1/files/{file_id}", s.deleteFile)
	handle("GET /v1/files/{file_id}/content", s.downloadFile)
	handle("GET /v1/files/{file_id}/url", s.fileURL)

	handle("POST /v1/batch/jobs", s.createBatchJob)
	handle("GET /v1/batch/jobs", s.listBatchJobs)
	handle("GET /v1/batch/jobs/{job_id}", s.getBatchJob)
	handle("DELETE /v1/batch/jobs/{job_id}", s.deleteBatchJob)
	handle("POST /v1/batch/jobs/{job_id}/cancel", s.cancelBatchJob)

	handle("POST /v1/agents", s.createAgent)
	handle("GET /v1/agents", s.listAgents)
	handle("GET /v1/agents/pages", s.listAgentPages)
	handle("GET /v1/agents/{agent_id}", s.getAgent)
	handle("PATCH /v1/agents/{agent_id}", s.updateAgent)
	handle("DELETE /v1/agents/{agent_id}", s.deleteAgent)
	handle("PATCH /v1/agents/{agent_id}/version", s.switchAgentVersion)
	handle("GET /v1/agents/{agent_id}/versions", s.listAgentVersions)
	handle("GET /v1/agents/{agent_id}/versions/{version}", s.getAgentVersion)
	handle("PUT /v1/agents/{agent_id}/aliases", s.putAgentAlias)
	handle("GET /v1/agents/{agent_id}/aliases", s.listAgentAliases)
	handle("DELETE /v1/agents/{agent_id}/aliases", s.deleteAgentAlias)

	handle("POST /v1/conversations", s.startConversation)
	handle("GET /v1/conversations", s.listConversations)
	handle("GET /v1/conversations/{conversation_id}", s.getConversation)
	handle("POST /v1/conversations/{conversation_id}", s.appendConversation)
	handle("DELETE /v1/conversations/{conversation_id}", s.deleteConversation)
	handle("GET /v1/conversations/{conversation_id}/history", s.conversationHistory)
	handle("GET /v1/conversations/{conversation_id}/messages", s.conversationMessages)
	handle("POST /v1/conversations/{conversation_id}/restart", s.restartConversation)

	handle("GET /v1/libraries", s.listLibraries)
	handle("POST /v1/libraries", s.createLibrary)
	handle("GET /v1/libraries/{library_id}", s.getLibrary)
	handle("DELETE /v1/libraries/{library_id}", s.deleteLibrary)
	handle("PATCH /v1/libraries/{library_id}", s.patchLibrary)
	handle("PUT /v1/libraries/{library_id}", s.putLibrary)
	handle("GET /v1/libraries/{library_id}/documents", s.listDocuments)
	handle("POST /v1/libraries/{library_id}/documents", s.uploadDocument)
	handle("GET /v1/libraries/{library_id}/documents/{document_id}", s.getDocument)
	handle("PATCH /v1/libraries/{library_id}/documents/{document_id}", s.patchDocument)
	handle("PUT /v1/libraries/{library_id}/documents/{document_id}", s.putDocument)
	handle("DELETE /v1/libraries/{library_id}/documents/{document_id}", s.deleteDocument)
	handle("GET /v1/libraries/{library_id}/documents/{document_id}/text_content", s.documentText)
	handle("GET /v1/libraries/{library_id}/documents/{document_id}/status", s.documentStatus)
	handle("GET /v1/libraries/{library_id}/documents/{document_id}/signed-url", s.documentURL)
	handle("GET /v1/libraries/{library_id}/documents/{document_id}/extracted-text-signed-url", s.documentTextURL)
	handle("POST /v1/libraries/{library_id}/documents/{document_id}/reprocess", s.reprocessDocument)
	handle("GET /v1/libraries/{library_id}/share", s.listShares)
	handle("PUT /v1/libraries/{library_id}/share", s.putShare)
	handle("DELETE /v1/libraries/{library_id}/share", s.deleteShare)

	handle("GET /v1/audio/voices", s.listVoices)
	handle("POST /v1/audio/voices", s.createVoice)
	handle("GET /v1/audio/voices/{voice_id}", s.getVoice)
	handle("PATCH /v1/audio/voices/{voice_id}", s.updateVoice)
	handle("DELETE /v1/audio/voices/{voice_id}", s.deleteVoice)
	handle("GET /v1/audio/voices/{voice_id}/sample", s.voiceSample)

	mux.HandleFunc("GET "+signedPrefix+"{token}", s.serveSigned)
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"detail": "Not Found"})
	})
	return mux
}

// call is one request to one operation.
type call struct {
	s    *Server
	w    http.ResponseWriter
	r    *http.Request
	body *recordingBody
}

// arrived records the request as one to the operation named op, waits
// the delay, then answers it when it must not go on: nothing when its
// client left meanwhile, 401 when it lacks the server's key, the status
// Fail set for op. Every handler reads its whole request before it calls arrived,
// so that Last holds the whole request, and the streamed variant it asks
// for is known.
func (c *call) arrived(op string) bool {
	s := c.s
	s.mu.Lock()
	st := s.ops[op]
	if st == nil {
		st = &opStats{}
		s.ops[op] = st
	}
	st.count++
	u := *c.r.URL
	st.last = Request{
		Method:   c.r.Method,
		URL:      &u,
		Header:   c.r.Header.Clone(),
		Body:     bytes.Clone(c.body.buf.Bytes()),
		BodySize: c.body.n,
	}
	failure, delay := s.failures[op], s.delay
	s.mu.Unlock()

	if !c.wait(delay) {
		return false
	}
	if c.r.Header.Get("Authorization") != "Bearer "+s.Key {
		c.fail(http.StatusUnauthorized, "Unauthorized")
		return false
	}
	if failure != 0 {
		c.fail(failure, fmt.Sprintf("%s failed as the test asked", op))
		return false
	}
	return true
}

// wait waits d, and reports false when the client or the server went away
// meanwhile.
func (c *call) wait(d time.Duration) bool {
	if d <= 0 {
		return c.r.Context().Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-c.r.Context().Done():
		return false
	case <-c.s.done:
		return false
	}
}

// decode reads the request's JSON body into v. The error, if any, is
// answered after arrived, so that a request without the key is answered
// 401 whatever its body.
func (c *call) decode(v any) error {
	b, err := io.ReadAll(c.r.Body)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return errors.New("the body is empty")
	}
	return json.Unmarshal(b, v)
}

// errorBody is Mistral's error object.
type errorBody struct {
	Object  string  `json:"object"`
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

// errorTypes is the error type Mistral gives each status.
var errorTypes = map[int]string{
	http.StatusBadRequest:      "invalid_request_error",
	http.StatusUnauthorized:    "authentication_error",
	http.StatusForbidden:       "permission_error",
	http.StatusNotFound:        "not_found_error",
	http.StatusConflict:        "invalid_request_error",
	http.StatusTooManyRequests: "rate_limit_error",
}

// fail answers status with Mistral's error object; a 429 says when to
// retry.
func (c *call) fail(status int, message string) {
	typ, ok := errorTypes[status]
	if !ok {
		typ = "invalid_request_error"
		if status >= 500 {
			typ = "server_error"
		}
	}
	if status == http.StatusTooManyRequests {
		c.w.Header().Set("Retry-After", "1")
	}
	writeJSON(c.w, status, errorBody{Object: "error", Message: message, Type: typ})
}

// notFound answers 404 for the object of kind named id.
func (c *call) notFound(kind, id string) {
	c.fail(http.StatusNotFound, fmt.Sprintf("%s %s not found", kind, id))
}

// validationDetail is one problem of FastAPI's 422 answer.
type validationDetail struct {
	Type string `json:"type"`
	Loc  []any  `json:"loc"`
	Msg  string `json:"msg"`
}

// invalid answers 422 in FastAPI's shape, naming the field at loc.
func (c *call) invalid(typ, msg string, loc ...any) {
	writeJSON(c.w, http.StatusUnprocessableEntity, map[string][]validationDetail{
		"detail": {{Type: typ, Loc: loc, Msg: msg}},
	})
}

// invalidBody answers 422 for a body that does not decode.
func (c *call) invalidBody(err error) {
	c.invalid("json_invalid", "JSON decode error: "+err.Error(), "body")
}

// field is a required field of a body, and whether the body lacks it.
type field struct {
	name   string
	absent bool
}

// read decodes the body into v and counts the call as op's. It answers 422
// and returns false when the body cannot be read or lacks one of the
// fields required returns (the first, in order), once decoded; required
// may be nil.
func (c *call) read(op string, v any, required func() []field) bool {
	err := c.decode(v)
	if !c.arrived(op) {
		return false
	}
	if err != nil {
		c.invalidBody(err)
		return false
	}
	if required == nil {
		return true
	}
	for _, f := range required() {
		if f.absent {
			c.missing(f.name)
			return false
		}
	}
	return true
}

// missing answers 422 for a required field the body lacks.
func (c *call) missing(field string) {
	c.invalid("missing", "Field required", "body", field)
}

// uuidParam returns the path parameter name, answering 422 as FastAPI does
// when the document says it is a UUID and it is not one.
func (c *call) uuidParam(name string) (string, bool) {
	v := c.r.PathValue(name)
	if _, err := uuid.Parse(v); err != nil {
		c.invalid("uuid_parsing", "Input should be a valid UUID", "path", name)
		return "", false
	}
	return v, true
}

// intQuery returns the query parameter name as an integer within [lo, hi],
// or def when it is absent; out of range or not a number, it answers 422.
func (c *call) intQuery(name string, def, lo, hi int) (int, bool) {
	v := c.r.URL.Query().Get(name)
	if v == "" {
		return def, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		c.invalid("int_parsing", fmt.Sprintf("Input should be an integer from %d to %d", lo, hi), "query", name)
		return 0, false
	}
	return n, true
}

// ok answers 200 with v as JSON.
func (c *call) ok(v any) { writeJSON(c.w, http.StatusOK, v) }

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// recordingBody keeps the first MaxRecordedBody bytes read from a request
// body and counts them all.
type recordingBody struct {
	rc  io.ReadCloser
	buf bytes.Buffer
	n   int64
}

func (b *recordingBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if room := MaxRecordedBody - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(n, room)])
	}
	b.n += int64(n)
	return n, err
}

func (b *recordingBody) Close() error { return b.rc.Close() }

// table holds objects by id in the order they were made.
type table[T any] struct {
	byID  map[string]T
	order []string
}

func (t *table[T]) add(id string, v T) {
	if t.byID == nil {
		t.byID = map[string]T{}
	}
	t.byID[id] = v
	t.order = append(t.order, id)
}

// lookup finds in t the object the path parameter param names, answering
// 422 when it is not a UUID and 404 (naming what) when there is none; it is
// returned with the server locked.
func lookup[T any](c *call, param, what string, t *table[T]) (T, bool) {
	id, ok := c.uuidParam(param)
	if !ok {
		var none T
		return none, false
	}
	c.s.mu.Lock()
	v, ok := t.get(id)
	if !ok {
		c.s.mu.Unlock()
		c.notFound(what, id)
	}
	return v, ok
}

func (t *table[T]) get(id string) (T, bool) {
	v, ok := t.byID[id]
	return v, ok
}

func (t *table[T]) remove(id string) {
	delete(t.byID, id)
	t.order = slices.DeleteFunc(t.order, func(v string) bool { return v == id })
}

// all returns the objects, oldest first.
func (t *table[T]) all() []T {
	out := make([]T, 0, len(t.order))
	for _, id := range t.order {
		out = append(out, t.byID[id])
	}
	return out
}

// page returns the items of the 0-based page of size n.
func page[T any](items []T, index, n int) []T {
	start := index * n
	if n <= 0 || start >= len(items) {
		return []T{}
	}
	return items[start:min(start+n, len(items))]
}

// pageToken encodes an offset as an opaque cursor; offsetOf reads it back.
func pageToken(offset int) string { return hex.EncodeToString([]byte(strconv.Itoa(offset))) }

func offsetOf(token string) (int, bool) {
	if token == "" {
		return 0, true
	}
	b, err := hex.DecodeString(token)
	if err != nil {
		return 0, false
	}
	n, err := strconv.Atoi(string(b))
	return n, err == nil && n >= 0
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// timestamp is a time as Mistral's object APIs write it.
func timestamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// contains reports whether s holds sub, ignoring case.
func contains(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}
