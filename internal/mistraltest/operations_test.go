package mistraltest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/stewardhq/steward/internal/apitest"
)

// fixture holds one object of each kind, made through the fake's API.
type fixture struct {
	s                                      *Server
	file, job, agent, conv, entry, library string
	document, voice, ftModel               string
}

func newFixture(t *testing.T, s *Server) *fixture {
	t.Helper()
	f := &fixture{s: s}
	f.file = f.newFile(t)
	f.job = f.newJob(t)
	f.agent = f.newAgent(t)
	f.conv, f.entry = f.newConversation(t)
	f.library = f.newLibrary(t)
	f.document = f.newDocument(t)
	f.voice = f.newVoice(t)
	f.ftModel = s.AddFineTunedModel("open-mistral-7b")
	return f
}

// batchInput is a batch input file of two requests.
const batchInput = `{"custom_id":"a","body":{"messages":[{"role":"user","content":"Hi"}]}}
{"custom_id":"b","body":{"messages":[{"role":"user","content":"Bye"}]}}
`

func (f *fixture) newFile(t *testing.T) string {
	return f.s.upload(t, "input.jsonl", "batch", []byte(batchInput))
}

func (f *fixture) newJob(t *testing.T) string {
	t.Helper()
	body := map[string]any{"input_files": []string{f.file}, "endpoint": "/v1/chat/completions", "model": "mistral-small-latest"}
	return str(t, f.s.call(t, "POST", "/v1/batch/jobs", body).want(t, 200).object(t), "id")
}

func (f *fixture) newAgent(t *testing.T) string {
	t.Helper()
	body := map[string]any{"model": "mistral-small-latest", "name": "helper", "instructions": "Be brief."}
	return str(t, f.s.call(t, "POST", "/v1/agents", body).want(t, 200).object(t), "id")
}

// newConversation starts a conversation and returns it with the id of
// its first entry.
func (f *fixture) newConversation(t *testing.T) (string, string) {
	t.Helper()
	body := map[string]any{"inputs": "Hello", "model": "mistral-small-latest"}
	id := str(t, f.s.call(t, "POST", "/v1/conversations", body).want(t, 200).object(t), "conversation_id")
	history := f.s.call(t, "GET", "/v1/conversations/"+id+"/history", nil).want(t, 200).object(t)
	first := history["entries"].([]any)[0].(map[string]any)
	return id, str(t, first, "id")
}

func (f *fixture) newLibrary(t *testing.T) string {
	t.Helper()
	return str(t, f.s.call(t, "POST", "/v1/libraries", map[string]any{"name": "handbook"}).want(t, 201).object(t), "id")
}

// newDocument uploads a document, each time another, to the fixture's
// library.
func (f *fixture) newDocument(t *testing.T) string {
	t.Helper()
	body, ct := multipartForm(t, nil, "notes.txt", []byte("notes "+uuid.NewString()))
	return str(t, send(t, f.s, f.s.Key, "POST", "/v1/libraries/"+f.library+"/documents", body, ct).want(t, 201).object(t), "id")
}

func (f *fixture) newVoice(t *testing.T) string {
	t.Helper()
	body := map[string]any{"name": "narrator", "sample_audio": base64.StdEncoding.EncodeToString(wav(160)), "languages": []string{"en"}}
	return str(t, f.s.call(t, "POST", "/v1/audio/voices", body).want(t, 200).object(t), "id")
}

// opRequest is a request to one operation: its path parameters, query
// and body (JSON, or a multipart form).
type opRequest struct {
	params map[string]string
	query  string
	json   any
	form   bool
	fields map[string]string
	file   string
}

var (
	hello    = []map[string]any{{"role": "user", "content": "Hello"}}
	audioWAV = string(wav(1600))
)

// operationRequests holds a valid request for every operation of the
// document, by operationId. A request that deletes or changes what
// another needs acts on an object of its own.
var operationRequests = map[string]func(*testing.T, *fixture) opRequest{
	"speech_v1_audio_speech_post": func(*testing.T, *fixture) opRequest {
		return opRequest{json: map[string]any{"model": "voxtral-mini-tts-latest", "input": "Hello"}}
	},
	"list_models_v1_models_get": func(*testing.T, *fixture) opRequest { return opRequest{} },
	"retrieve_model_v1_models__model_id__get": func(_ *testing.T, f *fixture) opRequest {
		return opRequest{params: map[string]string{"model_id": f.ftModel}}
	},
	"delete_model_v1_models__model_id__delete": func(_ *testing.T, f *fixture) opRequest {
		return opRequest{params: map[string]string{"model_id": f.s.AddFineTunedModel("mistral-small-latest")}}
	},
	"agents_api_v1_conversations_start": func(*testing.T, *fixture) opRequest {
		return opRequest{json: map[string]any{"inputs": "Hi", "model": "mistral-small-latest"}}
	},
	"agents_api_v1_conversations_list": func(*testing.T, *fixture) opRequest { return opRequest{query: "page=0&page_size=10"} },
	"agents_api_v1_conversations_get": func(_ *testing.T, f *fixture) opRequest {
		return opRequest{params: map[string]string{"conversation_id": f.conv}}
	},
	"agents_api_v1_conversations_delete": func(t *testing.T, f *fixture) opRequest {
		id, _ := f.newConversation(t)
		return opRequest{params: map[string]string{"conversation_id": id}}
	},
	"agents_api_v1_conversations_append": func(_ *testing.T, f *fixture) opRequest {
		return opRequest{params: map[string]string{"conversation_id": f.conv}, json: map[string]any{"inputs": "And then?"}}
	},
	"agents_api_v1_conversations_history": func(_ *testing.T, f *fixture) opRequest {
		return opRequest{params: map[string]string{"conversation_id": f.conv}}
	},
	"agents_api_v1_conversations_messages": func(_ *testing.T, f *fixture) opRequest {
		return opRequest{params: map[string]string{"conversation_id": f.conv}}
	},
	"agents_api_v1_conversations_restart": func(_ *testing.T, f *fixture) opRequest {
		return opRequest{params: map[string]string{"conversation_id": f.conv}, json: map[string]any{"from_entry_id": f.entry, "inputs": "Again"}}
	},
	"agents_api_v1_agents_create": func(*testing.T, *fixture) opRequest {
		return opRequest{json: map[string]any{"model": "mistral-large-latest", "name": "writer", "metadata": map[string]any{"team": "docs"}}}
	},
	"agents_api_v1_agents_list":       func(*testing.T, *fixture) opRequest { return opRequest{query: "page=0&page_size=5"} },
	"agents_api_v1_agents_list_pages": func(*testing.T, *fixture) opRequest { return opRequest{query: "page_size=5"} },
	"agents_api_v1_agents_get": func(_ *testing.T, f *fixture) opRequest {
		return opRequest{params: map[string]string{"agent_id": f.agent}}
	},
	"agents_api_v1_agents_update": func(_ *testing.T, f *fixture) opRequest {
		return opRequest{params: map[string]string{"agent_id": f.agent}, json: map[string]any{"instructions": "Be very brief."}}
	},
	"agents_api_v1_agents_delete": func(t *testing.T, f *fixture) opRequest {
		return opRequest{params: map[string]string{"agent_id": f.newAgent(t)}}
	},
	"agents_api_v1_agents_update_version": func(_ *testing.T, f *fixture) opRequest {
		return opRequest{params: map[string]string{"agent_id": f.agent}, query: "version=0"}
	},
	"agents_api_v1_agents_list_versions": func(_ *testing.T, f *fixture) opRequest {
		return opRequest{params: map[string]string{"agent_id": f.agent}}
	},
	"agents_api_v1_agents_get_version": func(_ *testing.T, f *fixture) opRequest {
		return opRequest{params: map[string]string{"agent_id": f.agent, "version": "0"}}
	},
	"agents_api_v1_agents_create_or_update_alias": func(_ *testing.T, f *fixture) opRequest {
		return opRequest{params: map[string]string{"agent_id": f.agent}, query: "alias=prod&version=0"}
	},
	"agents_api_v1_agents_list_version_aliases": func(_ *testing.T, f *fixture) opRequest {
		return opRequest{params: map[string]string{"agent_id": f.agent}}
	},
	"agents_api_v1_agents_delete_alias": func(t *testing.T, f *fixture) opRequest {
		f.s.call(t, "PUT", "/v1/agents/"+f.agent+"/aliases?alias=old&version=0", nil).want(t, 200)
		return opRequest{params: map[string]string{"agent_id": f.agent}, query: "alias=old"}
	},
	"agents_api_v1_conversations_start_stream": func(*testing.T, *fixture) opRequest {
		return opRequest{json: map[string]any{"inputs": "Hi", "model": "mistral-small-latest", "stream": true}}
	},
	"agents_api_v1_conversations_append_stream": func(_ *testing.T, f *fixture) opRequest {
		return opRequest{params: map[string]string{"conversation_id": f.conv}, json: map[string]any{"inputs": "More", "stream": true}}
	},
	"agents_api_v1_conversations_restart_stream": func(_ *testing.T, f *fixture) opRequest {
		return opRequest{params: map[string]string{"conversation_id": f.conv}, json: map[string]any{"from_entry_id": f.entry, "inputs": "Once more", "stream": true}}
	},
	"files_api_routes_upload_file": func(*testing.T, *fixture) opRequest {
		return opRequest{form: true, fields: map[string]string{"purpose": "ocr"}, file: "scan.pdf"}
	},
	"files_api_routes_list_files": func(*testing.T, *fixture) opRequest { return opRequest{query: "page=0&page_size=10"} },
	"files_api_routes_retrieve_file": func(_ *testing.T, f *fixture) opRequest {
		return opRequest{params: map[string]string{"file_id": f.file}}
	},
	"files_api_routes_delete_file": func(t *testing.T, f *fixture) opRequest {
		return opRequest{params: map[string]string{"file_id": f.newFile(t)}}
	},
	"files_api_routes_download_file": func(_ *testing.T, f *fixture) opRequest {
		return opRequest{params: map[string]string{"file_id": f.file}}
	},
	"files_api_routes_get_signed_url": func(_ *testing.T, f *fixture) opRequest {
		return opRequest{params: map[string]string{"file_id": f.file}, query: "expiry=2"}
	},
	"jobs_api_routes_fine_tuning_update_fine_tuned_model": func(_ *testing.T, f *fixture) opRequest {
		return opRequest{params: map[string]string{"model_id": f.ftModel}, json: map[string]any{"name": "support bot"}}
	},
	"jobs_api_routes_fine_tuning_archive_fine_tuned_model": func(_ *testing.T, f *fixture) opRequest {
		return opRequest{params: map[string]string{"model_id": f.ftModel}}
	},
	"jobs_api_routes_fine_tuning_unarchive_fine_tuned_model": func(_ *testing.T, f *fixture) opRequest {
		return opRequest{params: map[string]string{"model_id": f.ftModel}}
	},
	"jobs_api_routes_batch_get_batch_jobs": func(*testing.T, *fixture) opRequest { return opRequest{query: "status=QUEUED&status=RUNNING"} },
	"jobs_api_routes_batch_create_batch_job": func(_ *testing.T, f *fixture) opRequest {
		return opRequest{json: map[string]any{"input_files": []string{f.file}, "endpoint": "/v1/embeddings", "model": "mistral-embed", "metadata": map[string]string{"run": "1"}}}
	},
	"jobs_api_routes_batch_get_batch_job": func(_ *testing.T, f *fixture) opRequest {
		return opRequest{params: map[string]string{"job_id": f.job}}
	},
	"jobs_api_routes_batch_delete_batch_job": func(t *testing.T, f *fixture) opRequest {
		return opRequest{params: map[string]string{"job_id": f.newJob(t)}}
	},
	"jobs_api_routes_batch_cancel_batch_job": func(t *testing.T, f *fixture) opRequest {
		return opRequest{params: map[string]string{"job_id": f.newJob(t)}}
	},
	"chat_completion_v1_chat_completions_post": func(*testing.T, *fixture) opRequest {
		return opRequest{json: map[string]any{"model": "mistral-small-latest", "messages": hello}}
	},
	"fim_completion_v1_fim_completions_post": func(*testing.T, *fixture) opRequest {
		return opRequest{json: map[string]any{"model": "codestral-latest", "prompt": "def add(a, b):", "suffix": "return c"}}
	},
	"agents_completion_v1_agents_completions_post": func(_ *testing.T, f *fixture) opRequest {
		return opRequest{json: map[string]any{"agent_id": f.agent, "messages": hello}}
	},
	"embeddings_v1_embeddings_post": func(*testing.T, *fixture) opRequest {
		return opRequest{json: map[string]any{"model": "mistral-embed", "input": []string{"one", "two"}}}
	},
	"moderations_v1_moderations_post": func(*testing.T, *fixture) opRequest {
		return opRequest{json: map[string]any{"model": "mistral-moderation-latest", "input": "Hello"}}
	},
	"chat_moderations_v1_chat_moderations_post": func(*testing.T, *fixture) opRequest {
		return opRequest{json: map[string]any{"model": "mistral-moderation-latest", "input": hello}}
	},
	"ocr_v1_ocr_post": func(_ *testing.T, f *fixture) opRequest {
		return opRequest{json: map[string]any{"model": "mistral-ocr-latest", "document": map[string]any{"type": "file", "file_id": f.file}}}
	},
	"classifications_v1_classifications_post": func(*testing.T, *fixture) opRequest {
		return opRequest{json: map[string]any{"model": "ft:classifier", "input": []string{"great", "awful"}}}
	},
	"chat_classifications_v1_chat_classifications_post": func(*testing.T, *fixture) opRequest {
		return opRequest{json: map[string]any{"model": "ft:classifier", "input": map[string]any{"messages": hello}}}
	},
	"audio_api_v1_transcriptions_post": func(*testing.T, *fixture) opRequest {
		return opRequest{form: true, fields: map[string]string{"model": "voxtral-mini-latest", "language": "fr"}, file: "speech.wav"}
	},
	"audio_api_v1_transcriptions_post_stream": func(*testing.T, *fixture) opRequest {
		return opRequest{form: true, fields: map[string]string{"model": "voxtral-mini-latest", "stream": "true"}, file: "speech.wav"}
	},
	"libraries_list_v1": func(*testing.T, *fixture) opRequest { return opRequest{query: "page_size=10"} },
	"libraries_create_v1": func(*testing.T, *fixture) opRequest {
		return opRequest{json: map[string]any{"name": "policies", "owner_type": "Workspace"}}
	},
	"libraries_get_v1": func(_ *testing.T, f *fixture) opRequest {
		return opRequest{params: map[string]string{"library_id": f.library}}
	},
	"libraries_delete_v1": func(t *testing.T, f *fixture) opRequest {
		return opRequest{params: map[string]string{"library_id": f.newLibrary(t)}}
	},
	"libraries_patch_v1": func(_ *testing.T, f *fixture) opRequest {
		return opRequest{params: map[string]string{"library_id": f.library}, json: map[string]any{"name": "handbook 2"}}
	},
	"libraries_update_v1": func(_ *testing.T, f *fixture) opRequest {
		return opRequest{params: map[string]string{"library_id": f.library}, json: map[string]any{"name": "handbook 3"}}
	},
	"libraries_documents_list_v1": func(_ *testing.T, f *fixture) opRequest {
		return opRequest{params: map[string]string{"library_id": f.library}, query: "page_size=10&page=0"}
	},
	"libraries_documents_upload_v1": func(_ *testing.T, f *fixture) opRequest {
		return opRequest{params: map[string]string{"library_id": f.library}, form: true, file: "guide-" + uuid.NewString() + ".md"}
	},
	"libraries_documents_get_v1": func(_ *testing.T, f *fixture) opRequest {
		return opRequest{params: map[string]string{"library_id": f.library, "document_id": f.document}}
	},
	"libraries_documents_patch_v1": func(_ *testing.T, f *fixture) opRequest {
		return opRequest{params: map[string]string{"library_id": f.library, "document_id": f.document}, json: map[string]any{"name": "notes 2", "attributes": map[string]any{"team": "ops"}}}
	},
	"libraries_documents_update_v1": func(_ *testing.T, f *fixture) opRequest {
		return opRequest{params: map[string]string{"library_id": f.library, "document_id": f.document}, json: map[string]any{"name": "notes 3"}}
	},
	"libraries_documents_delete_v1": func(t *testing.T, f *fixture) opRequest {
		return opRequest{params: map[string]string{"library_id": f.library, "document_id": f.newDocument(t)}}
	},
	"libraries_documents_get_text_content_v1": func(_ *testing.T, f *fixture) opRequest {
		return opRequest{params: map[string]string{"library_id": f.library, "document_id": f.document}}
	},
	"libraries_documents_get_status_v1": func(_ *testing.T, f *fixture) opRequest {
		return opRequest{params: map[string]string{"library_id": f.library, "document_id": f.document}}
	},
	"libraries_documents_get_signed_url_v1": func(_ *testing.T, f *fixture) opRequest {
		return opRequest{params: map[string]string{"library_id": f.library, "document_id": f.document}}
	},
	"libraries_documents_get_extracted_text_signed_url_v1": func(_ *testing.T, f *fixture) opRequest {
		return opRequest{params: map[string]string{"library_id": f.library, "document_id": f.document}}
	},
	"libraries_documents_reprocess_v1": func(_ *testing.T, f *fixture) opRequest {
		return opRequest{params: map[string]string{"library_id": f.library, "document_id": f.document}}
	},
	"libraries_share_list_v1": func(_ *testing.T, f *fixture) opRequest {
		return opRequest{params: map[string]string{"library_id": f.library}}
	},
	"libraries_share_create_v1": func(_ *testing.T, f *fixture) opRequest {
		return opRequest{params: map[string]string{"library_id": f.library}, json: map[string]any{"level": "Viewer", "share_with_uuid": uuid.NewString(), "share_with_type": "User"}}
	},
	"libraries_share_delete_v1": func(t *testing.T, f *fixture) opRequest {
		who := map[string]any{"level": "Editor", "share_with_uuid": uuid.NewString(), "share_with_type": "Workspace"}
		f.s.call(t, "PUT", "/v1/libraries/"+f.library+"/share", who).want(t, 200)
		delete(who, "level")
		return opRequest{params: map[string]string{"library_id": f.library}, json: who}
	},
	"list_voices_v1_audio_voices_get": func(*testing.T, *fixture) opRequest { return opRequest{query: "limit=5&type=all"} },
	"create_voice_v1_audio_voices_post": func(*testing.T, *fixture) opRequest {
		return opRequest{json: map[string]any{"name": "host", "sample_audio": base64.StdEncoding.EncodeToString([]byte(audioWAV)), "gender": "female"}}
	},
	"delete_voice_v1_audio_voices__voice_id__delete": func(t *testing.T, f *fixture) opRequest {
		return opRequest{params: map[string]string{"voice_id": f.newVoice(t)}}
	},
	"update_voice_v1_audio_voices__voice_id__patch": func(_ *testing.T, f *fixture) opRequest {
		return opRequest{params: map[string]string{"voice_id": f.voice}, json: map[string]any{"name": "narrator 2", "tags": []string{"calm"}}}
	},
	"get_voice_v1_audio_voices__voice_id__get": func(_ *testing.T, f *fixture) opRequest {
		return opRequest{params: map[string]string{"voice_id": f.voice}}
	},
	"get_voice_sample_audio_v1_audio_voices__voice_id__sample_get": func(_ *testing.T, f *fixture) opRequest {
		return opRequest{params: map[string]string{"voice_id": f.voice}}
	},
}

// send sends req to op with key.
func (f *fixture) send(t *testing.T, op apitest.ModelOperation, req opRequest, key string) response {
	t.Helper()
	path := strings.TrimSuffix(op.Path, "#stream")
	for k, v := range req.params {
		path = strings.ReplaceAll(path, "{"+k+"}", v)
	}
	if strings.Contains(path, "{") {
		t.Fatalf("%s: a path parameter is missing: %s", op.ID, path)
	}
	if req.query != "" {
		path += "?" + req.query
	}
	var body io.Reader
	var ct string
	switch {
	case req.form:
		content := []byte(audioWAV)
		if !strings.HasSuffix(req.file, ".wav") {
			content = []byte("content of " + req.file)
		}
		body, ct = multipartForm(t, req.fields, req.file, content)
	case req.json != nil:
		b, err := json.Marshal(req.json)
		if err != nil {
			t.Fatal(err)
		}
		body, ct = bytes.NewReader(b), "application/json"
	}
	return send(t, f.s, key, op.Method, path, body, ct)
}

// TestEveryOperationIsServed: each operation of Mistral's model API
// document answers a valid request with success, counted and recorded
// under its operationId, and its answer matches the document.
func TestEveryOperationIsServed(t *testing.T) {
	ops := apitest.ModelOperations(t)
	s := New(t)
	f := newFixture(t, s)
	documented := map[string]bool{}
	for _, op := range ops {
		documented[op.ID] = true
		t.Run(op.ID, func(t *testing.T) {
			build, ok := operationRequests[op.ID]
			if !ok {
				t.Fatalf("the fake is not tested on %s %s: add a request to operationRequests", op.Method, op.Path)
			}
			req := build(t, f)
			before := s.Count(op.ID)
			r := f.send(t, op, req, s.Key)
			if r.status < 200 || r.status > 299 {
				t.Fatalf("%s %s answered %d: %s", op.Method, op.Path, r.status, r.body)
			}
			if got := s.Count(op.ID); got != before+1 {
				t.Errorf("Count(%s) = %d after one request, want %d", op.ID, got, before+1)
			}
			last, ok := s.Last(op.ID)
			if !ok || last.Method != op.Method || last.Header.Get("Authorization") != "Bearer "+s.Key {
				t.Errorf("Last(%s) = %+v, %v; want the request just sent", op.ID, last, ok)
			}
			apitest.CheckModelResponse(t, op.ID, r.status, r.contentType, r.body)
		})
	}
	for id := range operationRequests {
		if !documented[id] {
			t.Errorf("operationRequests has %s, which Mistral's model API document does not", id)
		}
	}
}

// TestAuthIsRequired: every operation answers a wrong key, or none, 401
// in Mistral's error shape, and changes nothing.
func TestAuthIsRequired(t *testing.T) {
	ops := apitest.ModelOperations(t)
	s := New(t)
	f := newFixture(t, s)
	files := len(s.call(t, "GET", "/v1/files", nil).want(t, 200).object(t)["data"].([]any))
	for i, op := range ops {
		t.Run(op.ID, func(t *testing.T) {
			build, ok := operationRequests[op.ID]
			if !ok {
				t.Fatalf("no request for %s", op.ID)
			}
			key := "wrong-" + s.Key
			if i%2 == 0 {
				key = ""
			}
			before := s.Count(op.ID)
			wantError(t, f.send(t, op, build(t, f), key), http.StatusUnauthorized, "authentication_error", "Unauthorized")
			if got := s.Count(op.ID); got != before+1 {
				t.Errorf("Count(%s) = %d after a refused request, want %d", op.ID, got, before+1)
			}
		})
	}
	for _, path := range []string{
		"/v1/files/" + f.file, "/v1/batch/jobs/" + f.job, "/v1/agents/" + f.agent, "/v1/conversations/" + f.conv,
		"/v1/libraries/" + f.library + "/documents/" + f.document, "/v1/audio/voices/" + f.voice, "/v1/models/" + f.ftModel,
	} {
		s.call(t, "GET", path, nil).want(t, 200)
	}
	if got := s.call(t, "GET", "/v1/agents/"+f.agent, nil).object(t); num(t, got, "version") != 0 || got["instructions"] != "Be brief." {
		t.Errorf("the agent after refused updates: %v, want version 0 as made", got)
	}
	// The refused uploads were not kept; the requests' builders uploaded
	// one file each for the refused deletions.
	if got := len(s.call(t, "GET", "/v1/files", nil).want(t, 200).object(t)["data"].([]any)); got != files+1 {
		t.Errorf("%d files after refused requests, want %d", got, files+1)
	}
}

// TestOnlyTestsImportThePackage: no code but tests imports the fake.
func TestOnlyTestsImportThePackage(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("the module root is not two folders up: %v", err)
	}
	const self = "github.com/stewardhq/steward/internal/mistraltest"
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && strings.HasPrefix(d.Name(), ".") && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		file, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range file.Imports {
			if imp.Path.Value == strconv.Quote(self) {
				t.Errorf("%s imports %s, which is for tests only", path, self)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
