package main

import (
	"bytes"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/stewardhq/steward/internal/apitest"
	"github.com/stewardhq/steward/internal/mistraltest"
)

// opsConfig serves one model for each metered endpoint, each priced a unit
// a token (a page, a second of audio), so that the usage report tells the
// operations apart by model and their cost is their count; the fake is the
// default upstream too, whose model list gives the chat model's card, by
// its alias, its capabilities.
const opsConfig = `models:
  - {name: chat-m, aliases: [mistral-small-latest], upstreams: [{url: %[1]s, api_key_env: FAKE_MISTRAL_KEY}], input_price_per_million: 1000000, output_price_per_million: 1000000, endpoints: [chat]}
  - {name: fim-m, upstreams: [{url: %[1]s, api_key_env: FAKE_MISTRAL_KEY}], input_price_per_million: 1000000, output_price_per_million: 1000000, endpoints: [fim]}
  - {name: embed-m, upstreams: [{url: %[1]s, api_key_env: FAKE_MISTRAL_KEY}], input_price_per_million: 1000000, endpoints: [embeddings]}
  - {name: mod-m, upstreams: [{url: %[1]s, api_key_env: FAKE_MISTRAL_KEY}], input_price_per_million: 1000000, endpoints: [moderations]}
  - {name: class-m, upstreams: [{url: %[1]s, api_key_env: FAKE_MISTRAL_KEY}], input_price_per_million: 1000000, endpoints: [classifications]}
  - {name: ocr-m, upstreams: [{url: %[1]s, api_key_env: FAKE_MISTRAL_KEY}], price_per_thousand_pages: 1000, endpoints: [ocr]}
  - {name: agent-m, upstreams: [{url: %[1]s, api_key_env: FAKE_MISTRAL_KEY}], input_price_per_million: 1000000, output_price_per_million: 1000000, endpoints: [agents]}
  - {name: voxtral-m, upstreams: [{url: %[1]s, api_key_env: FAKE_MISTRAL_KEY}], input_price_per_million: 1000000, output_price_per_million: 1000000, price_per_minute_of_audio: 60, endpoints: [transcriptions]}
  - {name: tts-m, upstreams: [{url: %[1]s, api_key_env: FAKE_MISTRAL_KEY}], input_price_per_million: 1000000, output_price_per_million: 1000000, endpoints: [speech]}
agent_model: agent-m
upstream:
  url: %[1]s
  api_key_env: FAKE_MISTRAL_KEY
`

// opCase is a request to one operation: its path parameters, query and
// body (JSON, or a multipart form whose fields come in order, then its
// file), and what the test checks of it.
type opCase struct {
	params map[string]string
	query  string
	json   any
	fields [][2]string
	file   string
	// model is the configured model whose usage a metered answer reports.
	model string
	// object is the Workspace's object the request names (in its path or
	// body): another Workspace's key must be answered as for an unknown
	// one. Empty when it names none.
	object string
	// list is set for a list, which another Workspace's key must see
	// none of the first's objects in.
	list bool
	// holds is what the first key's answer must hold.
	holds string
}

// opsFixture holds the objects the first Workspace's key made through
// Steward, and what the usage report must show.
type opsFixture struct {
	p                *process
	up               *mistraltest.Server
	db               *sql.DB
	key, other       string
	file, job, agent string
	conv, entry      string
	library, doc     string
	voice, tuned     string
	otherLibrary     string
	// want is the usage each model's answers reported.
	want map[string]*reportedUsage
}

type reportedUsage struct{ requests, in, out, pages, seconds int64 }

// opResponse is an answer of the binary, its body read.
type opResponse struct {
	status      int
	contentType string
	body        []byte
}

// send sends a request built from c to the operation's path with key.
func (f *opsFixture) send(t *testing.T, method, path string, c opCase, key string) opResponse {
	t.Helper()
	path = strings.TrimSuffix(path, "#stream")
	for k, v := range c.params {
		path = strings.ReplaceAll(path, "{"+k+"}", v)
	}
	if strings.Contains(path, "{") {
		t.Fatalf("%s: a path parameter is missing", path)
	}
	if c.query != "" {
		path += "?" + c.query
	}
	var body io.Reader
	var ct string
	switch {
	case c.fields != nil || c.file != "":
		var buf bytes.Buffer
		w := multipart.NewWriter(&buf)
		for _, kv := range c.fields {
			_ = w.WriteField(kv[0], kv[1])
		}
		if c.file != "" {
			part, _ := w.CreateFormFile("file", c.file)
			content := "RIFF content of " + c.file
			if strings.HasSuffix(c.file, ".jsonl") {
				// A batch job's input, whose lines the gateway reads.
				content = `{"custom_id":"1","body":{"messages":[{"role":"user","content":"hi"}]}}` + "\n"
			}
			_, _ = part.Write([]byte(content))
		}
		_ = w.Close()
		body, ct = &buf, w.FormDataContentType()
	case c.json != nil:
		b, err := json.Marshal(c.json)
		if err != nil {
			t.Fatal(err)
		}
		body, ct = bytes.NewReader(b), "application/json"
	}
	headers := []string{"Authorization", "Bearer " + key}
	if ct != "" {
		headers = append(headers, "Content-Type", ct)
	}
	_, resp, b := apitest.Send(t, http.DefaultClient, method, f.p.base+path, body, headers...)
	r := opResponse{status: resp.StatusCode, contentType: resp.Header.Get("Content-Type"), body: b}
	if c.model != "" && key == f.key && r.status == http.StatusOK {
		f.count(t, c.model, r)
	}
	return r
}

// count adds the usage a metered answer reports (its usage, or the
// usage of the stream's event that carries it) to what its model must
// show in the usage report.
func (f *opsFixture) count(t *testing.T, model string, r opResponse) {
	t.Helper()
	type reported struct {
		Usage *struct {
			PromptTokens       int64 `json:"prompt_tokens"`
			CompletionTokens   int64 `json:"completion_tokens"`
			PromptAudioSeconds int64 `json:"prompt_audio_seconds"`
		} `json:"usage"`
		UsageInfo *struct {
			PagesProcessed int64 `json:"pages_processed"`
		} `json:"usage_info"`
	}
	docs := [][]byte{r.body}
	if strings.HasPrefix(r.contentType, "text/event-stream") {
		docs = nil
		for line := range strings.SplitSeq(string(r.body), "\n") {
			if data, ok := strings.CutPrefix(line, "data: "); ok && data != "[DONE]" {
				docs = append(docs, []byte(data))
			}
		}
	}
	u := f.want[model]
	if u == nil {
		u = &reportedUsage{}
		f.want[model] = u
	}
	for _, d := range docs {
		var rep reported
		if json.Unmarshal(d, &rep) != nil {
			continue
		}
		switch {
		case rep.Usage != nil:
			u.requests++
			u.in += rep.Usage.PromptTokens
			u.out += rep.Usage.CompletionTokens
			u.seconds += rep.Usage.PromptAudioSeconds
			return
		case rep.UsageInfo != nil:
			u.requests++
			u.pages += rep.UsageInfo.PagesProcessed
			return
		}
	}
	t.Fatalf("the answer of a metered operation of %s reports no usage: %s", model, r.body)
}

// must sends c with the first key and fails unless it succeeds; it
// returns the answer's JSON object.
func (f *opsFixture) must(t *testing.T, method, path string, c opCase) map[string]any {
	t.Helper()
	r := f.send(t, method, path, c, f.key)
	var m map[string]any
	if r.status/100 != 2 || json.Unmarshal(r.body, &m) != nil {
		t.Fatalf("%s %s: %d %s", method, path, r.status, r.body)
	}
	return m
}

func (f *opsFixture) id(t *testing.T, method, path string, c opCase, member string) string {
	t.Helper()
	m := f.must(t, method, path, c)
	id, _ := m[member].(string)
	if id == "" {
		t.Fatalf("%s %s: no %s in %v", method, path, member, m)
	}
	return id
}

func (f *opsFixture) newFile(t *testing.T) string {
	return f.id(t, "POST", "/v1/files", opCase{fields: [][2]string{{"purpose", "batch"}}, file: "input.jsonl"}, "id")
}

func (f *opsFixture) newJob(t *testing.T) string {
	return f.id(t, "POST", "/v1/batch/jobs", opCase{json: map[string]any{"input_files": []string{f.file}, "endpoint": "/v1/chat/completions", "model": "chat-m"}}, "id")
}

func (f *opsFixture) newAgent(t *testing.T) string {
	return f.id(t, "POST", "/v1/agents", opCase{json: map[string]any{"model": "agent-m", "name": "helper", "instructions": "Be brief."}}, "id")
}

func (f *opsFixture) newConversation(t *testing.T) string {
	return f.id(t, "POST", "/v1/conversations", opCase{json: map[string]any{"inputs": "Hello", "model": "agent-m"}, model: "agent-m"}, "conversation_id")
}

func (f *opsFixture) newLibrary(t *testing.T, key string) string {
	t.Helper()
	r := f.send(t, "POST", "/v1/libraries", opCase{json: map[string]any{"name": "handbook"}}, key)
	var lib struct{ ID string }
	if r.status != http.StatusCreated || json.Unmarshal(r.body, &lib) != nil || lib.ID == "" {
		t.Fatalf("a library: %d %s", r.status, r.body)
	}
	return lib.ID
}

func (f *opsFixture) newDocument(t *testing.T) string {
	return f.id(t, "POST", "/v1/libraries/"+f.library+"/documents", opCase{file: "notes-" + uuid.NewString() + ".txt"}, "id")
}

func (f *opsFixture) newVoice(t *testing.T) string {
	sample := base64.StdEncoding.EncodeToString([]byte("RIFF a voice"))
	return f.id(t, "POST", "/v1/audio/voices", opCase{json: map[string]any{"name": "narrator", "sample_audio": sample, "languages": []string{"en"}}}, "id")
}

// newTuned adds a fine-tuned model to the fake and records it as the
// first key's Workspace's, as a fine-tuning job through Steward would:
// Steward forwards none, so the record is written beside the file's.
func (f *opsFixture) newTuned(t *testing.T) string {
	t.Helper()
	id := f.up.AddFineTunedModel("chat-m")
	if _, err := f.db.Exec(`INSERT INTO gateway_objects (kind, upstream_id, organization_id, workspace_id, key_id, created_at)
		SELECT 'fine_tuned_model', ?, organization_id, workspace_id, key_id, created_at FROM gateway_objects WHERE kind = 'file' AND upstream_id = ?`, id, f.file); err != nil {
		t.Fatal(err)
	}
	return id
}

// opsCases holds a valid request for every operation of Mistral's model
// API document, by operationId. A request that deletes or changes what
// another needs acts on an object of its own.
var opsCases = map[string]func(*testing.T, *opsFixture) opCase{
	"speech_v1_audio_speech_post": func(_ *testing.T, f *opsFixture) opCase {
		return opCase{json: map[string]any{"model": "tts-m", "input": "Hello", "voice_id": f.voice, "stream": true}, model: "tts-m", object: f.voice}
	},
	"list_models_v1_models_get": func(_ *testing.T, f *opsFixture) opCase { return opCase{list: true, holds: f.tuned} },
	"retrieve_model_v1_models__model_id__get": func(_ *testing.T, f *opsFixture) opCase {
		return opCase{params: map[string]string{"model_id": f.tuned}, object: f.tuned, holds: `"type":"fine-tuned"`}
	},
	"delete_model_v1_models__model_id__delete": func(t *testing.T, f *opsFixture) opCase {
		id := f.newTuned(t)
		return opCase{params: map[string]string{"model_id": id}, object: id}
	},
	"agents_api_v1_conversations_start": func(*testing.T, *opsFixture) opCase {
		return opCase{json: map[string]any{"inputs": "Hi", "model": "agent-m"}, model: "agent-m"}
	},
	"agents_api_v1_conversations_list": func(*testing.T, *opsFixture) opCase { return opCase{query: "page=0&page_size=10", list: true} },
	"agents_api_v1_conversations_get": func(_ *testing.T, f *opsFixture) opCase {
		return opCase{params: map[string]string{"conversation_id": f.conv}, object: f.conv}
	},
	"agents_api_v1_conversations_delete": func(t *testing.T, f *opsFixture) opCase {
		id := f.newConversation(t)
		return opCase{params: map[string]string{"conversation_id": id}, object: id}
	},
	"agents_api_v1_conversations_append": func(_ *testing.T, f *opsFixture) opCase {
		return opCase{params: map[string]string{"conversation_id": f.conv}, json: map[string]any{"inputs": "And then?"}, model: "agent-m", object: f.conv}
	},
	"agents_api_v1_conversations_history": func(_ *testing.T, f *opsFixture) opCase {
		return opCase{params: map[string]string{"conversation_id": f.conv}, object: f.conv}
	},
	"agents_api_v1_conversations_messages": func(_ *testing.T, f *opsFixture) opCase {
		return opCase{params: map[string]string{"conversation_id": f.conv}, object: f.conv}
	},
	"agents_api_v1_conversations_restart": func(_ *testing.T, f *opsFixture) opCase {
		return opCase{params: map[string]string{"conversation_id": f.conv}, json: map[string]any{"from_entry_id": f.entry, "inputs": "Again"}, model: "agent-m", object: f.conv}
	},
	"agents_api_v1_agents_create": func(*testing.T, *opsFixture) opCase {
		return opCase{json: map[string]any{"model": "agent-m", "name": "writer", "metadata": map[string]any{"team": "docs"}}}
	},
	"agents_api_v1_agents_list":       func(*testing.T, *opsFixture) opCase { return opCase{query: "page=0&page_size=5", list: true} },
	"agents_api_v1_agents_list_pages": func(*testing.T, *opsFixture) opCase { return opCase{query: "page_size=5", list: true} },
	"agents_api_v1_agents_get": func(_ *testing.T, f *opsFixture) opCase {
		return opCase{params: map[string]string{"agent_id": f.agent}, object: f.agent}
	},
	"agents_api_v1_agents_update": func(_ *testing.T, f *opsFixture) opCase {
		return opCase{params: map[string]string{"agent_id": f.agent}, json: map[string]any{"instructions": "Be very brief."}, object: f.agent}
	},
	"agents_api_v1_agents_delete": func(t *testing.T, f *opsFixture) opCase {
		id := f.newAgent(t)
		return opCase{params: map[string]string{"agent_id": id}, object: id}
	},
	"agents_api_v1_agents_update_version": func(_ *testing.T, f *opsFixture) opCase {
		return opCase{params: map[string]string{"agent_id": f.agent}, query: "version=0", object: f.agent}
	},
	"agents_api_v1_agents_list_versions": func(_ *testing.T, f *opsFixture) opCase {
		return opCase{params: map[string]string{"agent_id": f.agent}, object: f.agent}
	},
	"agents_api_v1_agents_get_version": func(_ *testing.T, f *opsFixture) opCase {
		return opCase{params: map[string]string{"agent_id": f.agent, "version": "0"}, object: f.agent}
	},
	"agents_api_v1_agents_create_or_update_alias": func(_ *testing.T, f *opsFixture) opCase {
		return opCase{params: map[string]string{"agent_id": f.agent}, query: "alias=prod&version=0", object: f.agent}
	},
	"agents_api_v1_agents_list_version_aliases": func(_ *testing.T, f *opsFixture) opCase {
		return opCase{params: map[string]string{"agent_id": f.agent}, object: f.agent}
	},
	"agents_api_v1_agents_delete_alias": func(t *testing.T, f *opsFixture) opCase {
		f.must(t, "PUT", "/v1/agents/"+f.agent+"/aliases", opCase{query: "alias=old&version=0"})
		return opCase{params: map[string]string{"agent_id": f.agent}, query: "alias=old", object: f.agent}
	},
	"agents_api_v1_conversations_start_stream": func(*testing.T, *opsFixture) opCase {
		return opCase{json: map[string]any{"inputs": "Hi", "model": "agent-m", "stream": true}, model: "agent-m"}
	},
	"agents_api_v1_conversations_append_stream": func(_ *testing.T, f *opsFixture) opCase {
		return opCase{params: map[string]string{"conversation_id": f.conv}, json: map[string]any{"inputs": "More", "stream": true}, model: "agent-m", object: f.conv}
	},
	"agents_api_v1_conversations_restart_stream": func(_ *testing.T, f *opsFixture) opCase {
		return opCase{params: map[string]string{"conversation_id": f.conv}, json: map[string]any{"from_entry_id": f.entry, "inputs": "Once more", "stream": true}, model: "agent-m", object: f.conv}
	},
	"files_api_routes_upload_file": func(*testing.T, *opsFixture) opCase {
		return opCase{fields: [][2]string{{"purpose", "ocr"}}, file: "scan.pdf"}
	},
	"files_api_routes_list_files": func(*testing.T, *opsFixture) opCase { return opCase{query: "page=0&page_size=10", list: true} },
	"files_api_routes_retrieve_file": func(_ *testing.T, f *opsFixture) opCase {
		return opCase{params: map[string]string{"file_id": f.file}, object: f.file}
	},
	"files_api_routes_delete_file": func(t *testing.T, f *opsFixture) opCase {
		id := f.newFile(t)
		return opCase{params: map[string]string{"file_id": id}, object: id}
	},
	"files_api_routes_download_file": func(_ *testing.T, f *opsFixture) opCase {
		return opCase{params: map[string]string{"file_id": f.file}, object: f.file}
	},
	"files_api_routes_get_signed_url": func(_ *testing.T, f *opsFixture) opCase {
		return opCase{params: map[string]string{"file_id": f.file}, query: "expiry=2", object: f.file}
	},
	"jobs_api_routes_fine_tuning_update_fine_tuned_model": func(_ *testing.T, f *opsFixture) opCase {
		return opCase{params: map[string]string{"model_id": f.tuned}, json: map[string]any{"name": "support bot"}, object: f.tuned}
	},
	"jobs_api_routes_fine_tuning_archive_fine_tuned_model": func(_ *testing.T, f *opsFixture) opCase {
		return opCase{params: map[string]string{"model_id": f.tuned}, object: f.tuned}
	},
	"jobs_api_routes_fine_tuning_unarchive_fine_tuned_model": func(_ *testing.T, f *opsFixture) opCase {
		return opCase{params: map[string]string{"model_id": f.tuned}, object: f.tuned}
	},
	"jobs_api_routes_batch_get_batch_jobs": func(*testing.T, *opsFixture) opCase {
		return opCase{query: "status=QUEUED&status=RUNNING", list: true}
	},
	"jobs_api_routes_batch_create_batch_job": func(_ *testing.T, f *opsFixture) opCase {
		return opCase{json: map[string]any{"input_files": []string{f.file}, "endpoint": "/v1/embeddings", "model": "embed-m", "metadata": map[string]string{"run": "1"}}, object: f.file}
	},
	"jobs_api_routes_batch_get_batch_job": func(_ *testing.T, f *opsFixture) opCase {
		return opCase{params: map[string]string{"job_id": f.job}, object: f.job}
	},
	"jobs_api_routes_batch_delete_batch_job": func(t *testing.T, f *opsFixture) opCase {
		id := f.newJob(t)
		return opCase{params: map[string]string{"job_id": id}, object: id}
	},
	"jobs_api_routes_batch_cancel_batch_job": func(t *testing.T, f *opsFixture) opCase {
		id := f.newJob(t)
		return opCase{params: map[string]string{"job_id": id}, object: id}
	},
	"chat_completion_v1_chat_completions_post": func(*testing.T, *opsFixture) opCase {
		return opCase{json: map[string]any{"model": "chat-m", "max_tokens": 3, "messages": []map[string]any{{"role": "user", "content": "Hello"}}}, model: "chat-m"}
	},
	"fim_completion_v1_fim_completions_post": func(*testing.T, *opsFixture) opCase {
		return opCase{json: map[string]any{"model": "fim-m", "prompt": "def add(a, b):", "suffix": "return c"}, model: "fim-m"}
	},
	"agents_completion_v1_agents_completions_post": func(_ *testing.T, f *opsFixture) opCase {
		return opCase{json: map[string]any{"agent_id": f.agent, "messages": []map[string]any{{"role": "user", "content": "Hello"}}}, model: "agent-m", object: f.agent}
	},
	"embeddings_v1_embeddings_post": func(*testing.T, *opsFixture) opCase {
		return opCase{json: map[string]any{"model": "embed-m", "input": []string{"one", "two"}}, model: "embed-m"}
	},
	"moderations_v1_moderations_post": func(*testing.T, *opsFixture) opCase {
		return opCase{json: map[string]any{"model": "mod-m", "input": "Hello"}, model: "mod-m"}
	},
	"chat_moderations_v1_chat_moderations_post": func(*testing.T, *opsFixture) opCase {
		return opCase{json: map[string]any{"model": "mod-m", "input": []map[string]any{{"role": "user", "content": "Hello"}}}, model: "mod-m"}
	},
	"ocr_v1_ocr_post": func(_ *testing.T, f *opsFixture) opCase {
		return opCase{json: map[string]any{"model": "ocr-m", "document": map[string]any{"type": "file", "file_id": f.file}}, model: "ocr-m", object: f.file}
	},
	"classifications_v1_classifications_post": func(*testing.T, *opsFixture) opCase {
		return opCase{json: map[string]any{"model": "class-m", "input": []string{"great", "awful"}}, model: "class-m"}
	},
	"chat_classifications_v1_chat_classifications_post": func(*testing.T, *opsFixture) opCase {
		return opCase{json: map[string]any{"model": "class-m", "input": map[string]any{"messages": []map[string]any{{"role": "user", "content": "Hello"}}}}, model: "class-m"}
	},
	"audio_api_v1_transcriptions_post": func(_ *testing.T, f *opsFixture) opCase {
		return opCase{fields: [][2]string{{"model", "voxtral-m"}, {"language", "fr"}, {"file_id", f.file}}, model: "voxtral-m", object: f.file}
	},
	"audio_api_v1_transcriptions_post_stream": func(*testing.T, *opsFixture) opCase {
		return opCase{fields: [][2]string{{"model", "voxtral-m"}, {"stream", "true"}}, file: "speech.wav", model: "voxtral-m"}
	},
	"libraries_list_v1": func(*testing.T, *opsFixture) opCase { return opCase{query: "page_size=10", list: true} },
	"libraries_create_v1": func(*testing.T, *opsFixture) opCase {
		return opCase{json: map[string]any{"name": "policies", "owner_type": "Workspace"}}
	},
	"libraries_get_v1": func(_ *testing.T, f *opsFixture) opCase {
		return opCase{params: map[string]string{"library_id": f.library}, object: f.library}
	},
	"libraries_delete_v1": func(t *testing.T, f *opsFixture) opCase {
		id := f.newLibrary(t, f.key)
		return opCase{params: map[string]string{"library_id": id}, object: id}
	},
	"libraries_patch_v1": func(_ *testing.T, f *opsFixture) opCase {
		return opCase{params: map[string]string{"library_id": f.library}, json: map[string]any{"name": "handbook 2"}, object: f.library}
	},
	"libraries_update_v1": func(_ *testing.T, f *opsFixture) opCase {
		return opCase{params: map[string]string{"library_id": f.library}, json: map[string]any{"name": "handbook 3"}, object: f.library}
	},
	"libraries_documents_list_v1": func(_ *testing.T, f *opsFixture) opCase {
		return opCase{params: map[string]string{"library_id": f.library}, query: "page_size=10&page=0", object: f.library}
	},
	"libraries_documents_upload_v1": func(_ *testing.T, f *opsFixture) opCase {
		return opCase{params: map[string]string{"library_id": f.library}, file: "guide-" + uuid.NewString() + ".md", object: f.library}
	},
	"libraries_documents_get_v1": func(_ *testing.T, f *opsFixture) opCase {
		return f.docCase(f.doc, nil)
	},
	"libraries_documents_patch_v1": func(_ *testing.T, f *opsFixture) opCase {
		return f.docCase(f.doc, map[string]any{"name": "notes 2", "attributes": map[string]any{"team": "ops"}})
	},
	"libraries_documents_update_v1": func(_ *testing.T, f *opsFixture) opCase {
		return f.docCase(f.doc, map[string]any{"name": "notes 3"})
	},
	"libraries_documents_delete_v1": func(t *testing.T, f *opsFixture) opCase {
		return f.docCase(f.newDocument(t), nil)
	},
	"libraries_documents_get_text_content_v1": func(_ *testing.T, f *opsFixture) opCase {
		return f.docCase(f.doc, nil)
	},
	"libraries_documents_get_status_v1": func(_ *testing.T, f *opsFixture) opCase {
		return f.docCase(f.doc, nil)
	},
	"libraries_documents_get_signed_url_v1": func(_ *testing.T, f *opsFixture) opCase {
		return f.docCase(f.doc, nil)
	},
	"libraries_documents_get_extracted_text_signed_url_v1": func(_ *testing.T, f *opsFixture) opCase {
		return f.docCase(f.doc, nil)
	},
	"libraries_documents_reprocess_v1": func(_ *testing.T, f *opsFixture) opCase {
		return f.docCase(f.doc, nil)
	},
	"libraries_share_list_v1": func(_ *testing.T, f *opsFixture) opCase {
		return opCase{params: map[string]string{"library_id": f.library}, object: f.library}
	},
	"libraries_share_create_v1": func(_ *testing.T, f *opsFixture) opCase {
		return opCase{params: map[string]string{"library_id": f.library}, json: map[string]any{"level": "Viewer", "share_with_uuid": uuid.NewString(), "share_with_type": "User"}, object: f.library}
	},
	"libraries_share_delete_v1": func(t *testing.T, f *opsFixture) opCase {
		who := map[string]any{"level": "Editor", "share_with_uuid": uuid.NewString(), "share_with_type": "Workspace"}
		f.must(t, "PUT", "/v1/libraries/{library_id}/share", opCase{params: map[string]string{"library_id": f.library}, json: who})
		delete(who, "level")
		return opCase{params: map[string]string{"library_id": f.library}, json: who, object: f.library}
	},
	"list_voices_v1_audio_voices_get": func(*testing.T, *opsFixture) opCase { return opCase{query: "limit=5&type=all", list: true} },
	"create_voice_v1_audio_voices_post": func(*testing.T, *opsFixture) opCase {
		return opCase{json: map[string]any{"name": "host", "sample_audio": base64.StdEncoding.EncodeToString([]byte("RIFF a host")), "gender": "female"}}
	},
	"delete_voice_v1_audio_voices__voice_id__delete": func(t *testing.T, f *opsFixture) opCase {
		id := f.newVoice(t)
		return opCase{params: map[string]string{"voice_id": id}, object: id}
	},
	"update_voice_v1_audio_voices__voice_id__patch": func(_ *testing.T, f *opsFixture) opCase {
		return opCase{params: map[string]string{"voice_id": f.voice}, json: map[string]any{"name": "narrator 2", "tags": []string{"calm"}}, object: f.voice}
	},
	"get_voice_v1_audio_voices__voice_id__get": func(_ *testing.T, f *opsFixture) opCase {
		return opCase{params: map[string]string{"voice_id": f.voice}, object: f.voice}
	},
	"get_voice_sample_audio_v1_audio_voices__voice_id__sample_get": func(_ *testing.T, f *opsFixture) opCase {
		return opCase{params: map[string]string{"voice_id": f.voice}, object: f.voice}
	},
}

// docCase is a request naming a document of the fixture's library.
func (f *opsFixture) docCase(doc string, body any) opCase {
	return opCase{params: map[string]string{"library_id": f.library, "document_id": doc}, json: body, object: f.library}
}

// swapped is c with every mention of id, in its path, query and body,
// replaced by by.
func swapped(t *testing.T, c opCase, id, by string) opCase {
	t.Helper()
	out := c
	out.params = map[string]string{}
	for k, v := range c.params {
		out.params[k] = strings.ReplaceAll(v, id, by)
	}
	out.query = strings.ReplaceAll(c.query, id, by)
	if c.json != nil {
		b, err := json.Marshal(c.json)
		if err != nil {
			t.Fatal(err)
		}
		out.json = json.RawMessage(strings.ReplaceAll(string(b), id, by))
	}
	out.fields = nil
	for _, kv := range c.fields {
		out.fields = append(out.fields, [2]string{kv[0], strings.ReplaceAll(kv[1], id, by)})
	}
	return out
}

// TestEveryOperationThroughTheBinary drives every operation of Mistral's
// model API document through the real binary in front of the fake Mistral
// upstream: each answer matches the document (its status, its body's
// schema, each event of a stream), and the usage report shows, by model,
// what the metered answers reported. Every route naming an object, in its
// path or its body, is tried with a second Workspace's key first, and
// answered exactly as an unknown id is, without reaching the upstream
// when it would change something; lists show that key none of the first
// Workspace's objects. Last, a forwarded operation counts in the request
// rate.
func TestEveryOperationThroughTheBinary(t *testing.T) {
	ops := apitest.ModelOperations(t)
	up := mistraltest.New(t)
	up.SetUsage(mistraltest.Usage{PromptTokens: 7, CompletionTokens: 5, PagesProcessed: 3, AudioSeconds: 4})
	dir := t.TempDir()
	cfg := filepath.Join(dir, "steward.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, opsConfig, up.BaseURL()), 0o600); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	cmd := exec.Command(binary, "serve", "--addr", "127.0.0.1:0", "--data-dir", data, "--config", cfg)
	cmd.Env = append(os.Environ(), "FAKE_MISTRAL_KEY="+up.Key)
	p := run(t, cmd)
	admin := adminKey.FindStringSubmatch(p.output)[1]
	_, key := p.workspaceKey(t, admin)
	db, err := sql.Open("sqlite", "file:"+filepath.Join(data, "steward.db")+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })

	f := &opsFixture{p: p, up: up, db: db, key: key, other: p.otherWorkspaceKey(t, admin), want: map[string]*reportedUsage{}}
	f.file = f.newFile(t)
	f.job = f.newJob(t)
	f.agent = f.newAgent(t)
	f.conv = f.newConversation(t)
	history := f.must(t, "GET", "/v1/conversations/"+f.conv+"/history", opCase{})
	entries, _ := history["entries"].([]any)
	if len(entries) == 0 {
		t.Fatalf("the conversation's history has no entry: %v", history)
	}
	f.entry, _ = entries[0].(map[string]any)["id"].(string)
	f.library = f.newLibrary(t, f.key)
	f.doc = f.newDocument(t)
	f.voice = f.newVoice(t)
	f.tuned = f.newTuned(t)
	f.otherLibrary = f.newLibrary(t, f.other)
	mine := []string{f.file, f.job, f.agent, f.conv, f.library, f.doc, f.voice, f.tuned}
	// The upstream's list is read as serve starts: mistral-small-latest
	// calls functions and sees.
	if card := eventually(func() (string, bool) {
		body := string(f.send(t, "GET", "/v1/models/chat-m", opCase{}, f.key).body)
		return body, strings.Contains(body, `"function_calling":true`)
	}); !strings.Contains(card, `"completion_chat":true`) || !strings.Contains(card, `"vision":true`) || !strings.Contains(card, `"completion_fim":false`) {
		t.Errorf("the chat model's card: %s, want the upstream's capabilities", card)
	}

	documented := map[string]bool{}
	for _, op := range ops {
		documented[op.ID] = true
		t.Run(op.ID, func(t *testing.T) {
			build, ok := opsCases[op.ID]
			if !ok {
				t.Fatalf("%s %s is not driven through the binary: add a request to opsCases", op.Method, op.Path)
			}
			c := build(t, f)
			if c.object != "" {
				f.probe(t, op, c)
			}
			r := f.send(t, op.Method, op.Path, c, f.key)
			if r.status/100 != 2 {
				t.Fatalf("%s %s answered %d: %s", op.Method, op.Path, r.status, r.body)
			}
			apitest.CheckModelResponse(t, op.ID, r.status, r.contentType, r.body)
			if !bytes.Contains(r.body, []byte(c.holds)) {
				t.Errorf("%s %s answered %s, which does not hold %s", op.Method, op.Path, r.body, c.holds)
			}
			if c.list {
				r := f.send(t, op.Method, op.Path, c, f.other)
				for _, id := range mine {
					if r.status != http.StatusOK || bytes.Contains(r.body, []byte(id)) {
						t.Fatalf("the second Workspace's list: %d %s, which must not hold %s", r.status, r.body, id)
					}
				}
			}
		})
	}
	for id := range opsCases {
		if !documented[id] {
			t.Errorf("opsCases has %s, which Mistral's model API document does not", id)
		}
	}
	f.checkUsage(t, admin)
	f.checkRequestRate(t, admin)
}

// checkRequestRate limits the Organization to a request a second: a file
// list, forwarded and unmetered, is refused with Mistral's 429 once the
// limit holds (the limits are followed from the change feed), and the
// refused lists never reach the upstream.
func (f *opsFixture) checkRequestRate(t *testing.T, admin string) {
	t.Helper()
	if status, body := f.p.call(t, "PUT", "/v1/admin/rate-limit", admin, `{"requests_per_second":1}`); status != http.StatusOK {
		t.Fatalf("the rate limit: %d %s", status, body)
	}
	const list = "files_api_routes_list_files"
	before, answered := f.up.Count(list), 0
	for deadline := time.Now().Add(10 * time.Second); ; {
		r := f.send(t, "GET", "/v1/files", opCase{}, f.key)
		if r.status == http.StatusOK {
			answered++
		} else {
			var e struct{ Type, Code string }
			if r.status != http.StatusTooManyRequests || json.Unmarshal(r.body, &e) != nil || e.Type != "rate_limit_error" || e.Code != "rate_limit_exceeded" {
				t.Fatalf("a file list beyond the rate: %d %s, want Mistral's 429 rate_limit_exceeded", r.status, r.body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d file lists were answered under a limit of a request a second", answered)
		}
	}
	if got := f.up.Count(list) - before; got != answered {
		t.Fatalf("the upstream got %d file lists, want the %d answered", got, answered)
	}
}

// probe sends c with the second Workspace's key, and c naming an unknown
// object instead with the first's: both are 404, with the same body but
// for the id, and neither reaches the upstream but to tell a preset voice.
// A document is tried under the second Workspace's own library too.
func (f *opsFixture) probe(t *testing.T, op apitest.ModelOperation, c opCase) {
	t.Helper()
	unknown := uuid.NewString()
	try := func(what string, theirs opCase, key string, unknownCase opCase, id string) {
		t.Helper()
		before := f.up.Count(op.ID)
		got := f.send(t, op.Method, op.Path, theirs, key)
		want := f.send(t, op.Method, op.Path, unknownCase, key)
		if op.Method != http.MethodGet && f.up.Count(op.ID) != before {
			t.Errorf("%s: a request naming another Workspace's object reached the upstream", what)
		}
		wantBody := strings.ReplaceAll(string(want.body), unknown, id)
		if got.status != http.StatusNotFound || want.status != http.StatusNotFound || string(got.body) != wantBody || got.contentType != want.contentType {
			t.Errorf("%s: %d %s (%s), want it answered as an unknown id: %d %s (%s)", what, got.status, got.body, got.contentType, want.status, wantBody, want.contentType)
		}
	}
	try("the second Workspace's key", c, f.other, swapped(t, c, c.object, unknown), c.object)
	if doc := c.params["document_id"]; doc != "" {
		theirs := swapped(t, c, f.library, f.otherLibrary)
		try("a document under the second Workspace's library", theirs, f.other, swapped(t, theirs, doc, unknown), doc)
	}
}

// checkUsage waits for the usage report to show every metered answer,
// then checks each model's requests, tokens and cost (a unit a token, a
// page and a second of audio) against what the answers reported.
func (f *opsFixture) checkUsage(t *testing.T, admin string) {
	t.Helper()
	var requests int64
	for _, u := range f.want {
		requests += u.requests
	}
	day := time.Now().UTC()
	var rep struct {
		Rows []struct {
			Model             string  `json:"model"`
			Requests          int64   `json:"requests"`
			InputTokens       int64   `json:"input_tokens"`
			OutputTokens      int64   `json:"output_tokens"`
			Cost              float64 `json:"cost"`
			EstimatedRequests int64   `json:"estimated_requests"`
		}
	}
	body := eventually(func() (string, bool) {
		_, body := f.p.get(t, "/v1/admin/usage/report?start="+day.Format("2006-01-02")+"&end="+day.AddDate(0, 0, 1).Format("2006-01-02")+"&bucket=day&group_by=model", admin)
		var n int64
		if json.Unmarshal([]byte(body), &rep) == nil {
			for _, r := range rep.Rows {
				n += r.Requests
			}
		}
		return body, n == requests
	})
	if len(rep.Rows) != len(f.want) {
		t.Fatalf("the usage report has %d models, want %d: %s", len(rep.Rows), len(f.want), body)
	}
	for _, r := range rep.Rows {
		w := f.want[r.Model]
		if w == nil {
			t.Errorf("the usage report has %s, which no metered answer named", r.Model)
			continue
		}
		cost := float64(w.in + w.out + w.pages + w.seconds)
		if r.Requests != w.requests || r.InputTokens != w.in || r.OutputTokens != w.out || r.Cost != cost || r.EstimatedRequests != 0 {
			t.Errorf("usage of %s: %+v, want %+v costing %v, none estimated", r.Model, r, *w, cost)
		}
	}
}
