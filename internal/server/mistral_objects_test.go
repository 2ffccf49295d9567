package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/stewardhq/steward/internal/apitest"
	"github.com/stewardhq/steward/internal/gateway"
	"github.com/stewardhq/steward/internal/inference"
	"github.com/stewardhq/steward/internal/mistraltest"
	"github.com/stewardhq/steward/internal/objects"
	"github.com/stewardhq/steward/internal/server"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
)

// forEachMistralEngine runs fn with a harness that serves the model API
// as serve does, its default upstream the fake of Mistral's API, on every
// engine.
func forEachMistralEngine(t *testing.T, fn func(t *testing.T, h *harness, fake *mistraltest.Server)) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		fake := mistraltest.New(t)
		routes := modelAPI(t, db, gateway.Config{Currency: "USD", Upstream: &gateway.Upstream{BaseURL: fake.BaseURL(), APIKey: fake.Key},
			Objects: objects.NewService(db)})
		fn(t, newHarnessWith(t, db, func(d *server.Deps) { d.Gateway = routes }), fake)
	})
}

// modelCall is a model API request's answer.
type modelCall struct {
	status      int
	contentType string
	body        []byte
}

// call sends a model API request with a Workspace key.
func (h *harness) call(method, path, key, contentType string, body []byte) modelCall {
	h.t.Helper()
	req, err := http.NewRequest(method, h.http.URL+path, bytes.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := h.http.Client().Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return modelCall{status: resp.StatusCode, contentType: resp.Header.Get("Content-Type"), body: b}
}

// multipartFile is a form with a file and fields.
func multipartFile(name string, content []byte, fields ...string) (string, []byte) {
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for i := 0; i+1 < len(fields); i += 2 {
		_ = mw.WriteField(fields[i], fields[i+1])
	}
	fw, _ := mw.CreateFormFile("file", name)
	_, _ = fw.Write(content)
	_ = mw.Close()
	return mw.FormDataContentType(), b.Bytes()
}

// created sends a creation through Steward and returns the id answered.
func (h *harness) created(key, path, contentType string, body []byte) string {
	h.t.Helper()
	c := h.call("POST", path, key, contentType, body)
	var out struct{ ID string }
	if err := json.Unmarshal(c.body, &out); c.status/100 != 2 || err != nil || out.ID == "" {
		h.t.Fatalf("POST %s: %d %s", path, c.status, c.body)
	}
	return out.ID
}

// TestEveryObjectOperationIsItsWorkspaces drives every operation that names
// an object, in front of the fake of Mistral's API, through the real
// handler and store: with the key of the Workspace that created the
// object, its answer is Mistral's, valid against the document; with a
// second Workspace's key, or another Organization's, it is 404 as for an
// unknown id, and the upstream is not called.
func TestEveryObjectOperationIsItsWorkspaces(t *testing.T) {
	forEachMistralEngine(t, func(t *testing.T, h *harness, fake *mistraltest.Server) {
		_, mine := h.apiKey(h.workspace("Research"))
		_, second := h.apiKey(h.boot.DefaultWorkspace.ID)
		third := h.otherOrganizationKey()

		ct, form := multipartFile("in.jsonl", []byte(`{"custom_id":"0","body":{"messages":[{"role":"user","content":"hi"}]}}`+"\n"), "purpose", "batch")
		ids := map[string]string{"file_id": h.created(mine, "/v1/files", ct, form)}
		ids["job_id"] = h.created(mine, "/v1/batch/jobs", "application/json", []byte(`{"input_files":["`+ids["file_id"]+`"],"endpoint":"/v1/chat/completions","model":"mistral-small-latest"}`))
		ids["agent_id"] = h.created(mine, "/v1/agents", "application/json", []byte(`{"model":"mistral-small-latest","name":"helper"}`))
		ids["library_id"] = h.created(mine, "/v1/libraries", "application/json", []byte(`{"name":"handbook"}`))
		ct, form = multipartFile("doc.txt", []byte("the handbook"))
		ids["document_id"] = h.created(mine, "/v1/libraries/"+ids["library_id"]+"/documents", ct, form)
		ids["voice_id"] = h.created(mine, "/v1/audio/voices", "application/json", []byte(`{"name":"narrator","sample_audio":"`+base64.StdEncoding.EncodeToString([]byte("RIFF....WAVE"))+`"}`))
		// Conversations are created by metered operations, and fine-tuned
		// models by training: both are recorded here as the gateway would.
		ids["model_id"] = fake.AddFineTunedModel("open-mistral-7b")
		req, _ := http.NewRequest("POST", fake.BaseURL()+"/conversations", strings.NewReader(`{"model":"mistral-small-latest","inputs":"hello"}`))
		req.Header.Set("Authorization", "Bearer "+fake.Key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var conv struct {
			ConversationID string `json:"conversation_id"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&conv)
		resp.Body.Close()
		ids["conversation_id"] = conv.ConversationID
		var ws struct{ Items []struct{ UUID, Name string } }
		ok(t, h.get("/v1/admin/workspaces", h.boot.AdminKeySecret), &ws)
		research := ws.Items[slices.IndexFunc(ws.Items, func(w struct{ UUID, Name string }) bool { return w.Name == "Research" })].UUID
		objs := objects.NewService(h.db)
		for kind, id := range map[string]string{inference.ObjectConversation: ids["conversation_id"], inference.ObjectFineTunedModel: ids["model_id"]} {
			if err := objs.Record(context.Background(), inference.Object{Kind: kind, ID: id, OrganizationID: h.boot.Organization.ID, WorkspaceID: research}); err != nil {
				t.Fatal(err)
			}
		}

		// Lists: the creator's Workspace sees its objects, valid lists of
		// Mistral's; the others see none of them.
		for _, l := range []struct{ id, path, object string }{
			{"files_api_routes_list_files", "/v1/files", ids["file_id"]},
			{"jobs_api_routes_batch_get_batch_jobs", "/v1/batch/jobs", ids["job_id"]},
			{"agents_api_v1_agents_list", "/v1/agents", ids["agent_id"]},
			{"agents_api_v1_agents_list_pages", "/v1/agents/pages", ids["agent_id"]},
			{"agents_api_v1_conversations_list", "/v1/conversations", ids["conversation_id"]},
			{"libraries_list_v1", "/v1/libraries?page=0", ids["library_id"]},
			{"list_voices_v1_audio_voices_get", "/v1/audio/voices?limit=100", ids["voice_id"]},
		} {
			for _, key := range []string{mine, second, third} {
				c := h.call("GET", l.path, key, "", nil)
				if c.status != http.StatusOK {
					t.Fatalf("GET %s: %d %s", l.path, c.status, c.body)
				}
				apitest.CheckModelResponse(t, l.id, c.status, c.contentType, c.body)
				if listed := bytes.Contains(c.body, []byte(l.object)); listed != (key == mine) {
					t.Errorf("GET %s by %s lists %s: %v: %s", l.path, key[:8], l.object, listed, c.body)
				}
			}
		}

		// What each operation is sent, beyond its path.
		queries := map[string]string{
			"agents_api_v1_agents_update_version":         "?version=0",
			"agents_api_v1_agents_create_or_update_alias": "?alias=stable&version=0",
			"agents_api_v1_agents_delete_alias":           "?alias=stable",
		}
		bodies := map[string]string{
			"agents_api_v1_agents_update":                         `{"description":"helps"}`,
			"libraries_patch_v1":                                  `{"name":"handbook 2"}`,
			"libraries_update_v1":                                 `{"name":"handbook 3"}`,
			"libraries_documents_patch_v1":                        `{"name":"doc 2"}`,
			"libraries_documents_update_v1":                       `{"name":"doc 3"}`,
			"libraries_share_create_v1":                           `{"level":"Viewer","share_with_uuid":"` + research + `","share_with_type":"Workspace"}`,
			"libraries_share_delete_v1":                           `{"share_with_uuid":"` + research + `","share_with_type":"Workspace"}`,
			"update_voice_v1_audio_voices__voice_id__patch":       `{"name":"narrator 2"}`,
			"jobs_api_routes_fine_tuning_update_fine_tuned_model": `{"name":"tuned"}`,
			"libraries_documents_reprocess_v1":                    ``,
		}
		var ops []apitest.ModelOperation
		for _, op := range apitest.ModelOperations(t) {
			if strings.Contains(op.Path, "_id}") && !strings.Contains(op.Path, "#") && (op.Path != "/v1/models/{model_id}" || op.Method == "DELETE") &&
				!(op.Method == "POST" && (op.Path == "/v1/conversations/{conversation_id}" || op.Path == "/v1/conversations/{conversation_id}/restart")) {
				ops = append(ops, op)
			}
		}
		// Deletions last, the documents' before their library's, an alias's
		// before its agent's.
		rank := func(op apitest.ModelOperation) int {
			switch {
			case op.Method != "DELETE":
				return 0
			case strings.HasSuffix(op.Path, "/aliases") || strings.HasSuffix(op.Path, "/share") || strings.HasSuffix(op.Path, "/archive") || strings.Contains(op.Path, "{document_id}"):
				return 1
			}
			return 2
		}
		slices.SortStableFunc(ops, func(a, b apitest.ModelOperation) int { return rank(a) - rank(b) })
		if len(ops) < 45 {
			t.Fatalf("%d operations naming objects", len(ops))
		}
		for _, op := range ops {
			path := op.Path
			firstName := ""
			for name, id := range ids {
				if i := strings.Index(path, "{"+name+"}"); i >= 0 {
					if firstName == "" || i < strings.Index(op.Path, "{"+firstName+"}") {
						firstName = name
					}
					path = strings.ReplaceAll(path, "{"+name+"}", id)
				}
			}
			path = strings.ReplaceAll(path, "{version}", "0") + queries[op.ID]
			body, ct := []byte(bodies[op.ID]), "application/json"
			switch {
			case op.ID == "libraries_documents_upload_v1":
				ct, body = multipartFile("more.txt", []byte("more of the handbook"))
			case len(body) == 0:
				body, ct = nil, ""
			}
			kindName := map[string]string{"file_id": "File", "job_id": "Batch job", "agent_id": "Agent", "conversation_id": "Conversation",
				"library_id": "Library", "document_id": "Document", "voice_id": "Voice", "model_id": "Fine-tuned model"}[firstName]
			want := `{"object":"error","message":"` + kindName + " " + ids[firstName] + ` not found","type":"not_found_error","param":null,"code":null}`
			before := fake.Count(op.ID)
			for _, key := range []string{second, third} {
				if c := h.call(op.Method, path, key, ct, body); c.status != http.StatusNotFound || string(c.body) != want {
					t.Errorf("%s %s by another Workspace: %d %s, want 404 %s", op.Method, path, c.status, c.body, want)
				}
			}
			// A voice is asked about, to tell a preset from another
			// Workspace's voice; nothing else reaches the upstream.
			if n := fake.Count(op.ID); n != before && (op.ID != "get_voice_v1_audio_voices__voice_id__get" || n != before+2) {
				t.Errorf("%s %s by another Workspace reached the upstream", op.Method, path)
			}
			c := h.call(op.Method, path, mine, ct, body)
			if c.status/100 != 2 {
				t.Errorf("%s %s by its Workspace: %d %s", op.Method, path, c.status, c.body)
				continue
			}
			apitest.CheckModelResponse(t, op.ID, c.status, c.contentType, c.body)
		}
	})
}
