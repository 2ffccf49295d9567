package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stewardhq/steward/internal/gateway"
	"github.com/stewardhq/steward/internal/inference"
	"github.com/stewardhq/steward/internal/objects"
	"github.com/stewardhq/steward/internal/server"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
)

// fileStore is an upstream holding files, as Mistral's files API does:
// an upload gets an id, and every file is listed, read and deleted by it
// for whoever bears the upstream's key.
type fileStore struct {
	mu    sync.Mutex
	n     int
	files map[string][]byte
}

func (s *fileStore) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	id := strings.TrimPrefix(r.URL.Path, "/v1/files/")
	switch {
	case r.Header.Get("Authorization") != "Bearer upstream-key":
		w.WriteHeader(http.StatusUnauthorized)
	case r.Method == "POST" && r.URL.Path == "/v1/files":
		f, _, err := r.FormFile("file")
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		content, _ := io.ReadAll(f)
		s.n++
		id := fmt.Sprintf("file-%d", s.n)
		s.files[id] = content
		fmt.Fprintf(w, `{"id":%q,"object":"file","bytes":%d}`, id, len(content))
	case r.Method == "GET" && r.URL.Path == "/v1/files":
		var data []string
		for id, content := range s.files {
			data = append(data, fmt.Sprintf(`{"id":%q,"bytes":%d}`, id, len(content)))
		}
		fmt.Fprintf(w, `{"object":"list","total":%d,"data":[%s]}`, len(data), strings.Join(data, ","))
	case r.URL.Path == "/v1/batch/jobs":
		_, _ = io.WriteString(w, `{"id":"job-1","object":"batch"}`)
	case s.files[strings.TrimSuffix(id, "/content")] == nil:
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, `{"object":"error","message":"File %s not found","type":"not_found_error","param":null,"code":null}`, id)
	case strings.HasSuffix(id, "/content"):
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(s.files[strings.TrimSuffix(id, "/content")])
	case r.Method == "DELETE":
		delete(s.files, id)
		fmt.Fprintf(w, `{"id":%q,"object":"file","deleted":true}`, id)
	default:
		fmt.Fprintf(w, `{"id":%q,"bytes":%d}`, id, len(s.files[id]))
	}
}

// forEachObjectsEngine runs fn with a harness that serves the model API
// as serve does, with a default upstream holding files, on every engine.
func forEachObjectsEngine(t *testing.T, fn func(t *testing.T, h *harness)) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		up := httptest.NewServer(&fileStore{files: map[string][]byte{}})
		t.Cleanup(up.Close)
		routes := modelAPI(t, db, gateway.Config{Currency: "USD", Upstream: &gateway.Upstream{BaseURL: up.URL + "/v1", APIKey: "upstream-key"},
			Objects: objects.NewService(db)})
		fn(t, newHarnessWith(t, db, func(d *server.Deps) { d.Gateway = routes }))
	})
}

// upload sends a batch job's input file of size bytes (a multiple of 64),
// lines of 64 bytes, as multipart form data.
func (h *harness) upload(key string, size int) (int, string) {
	h.t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	_ = mw.WriteField("purpose", "batch")
	fw, _ := mw.CreateFormFile("file", "in.jsonl")
	line := `{"custom_id":"` + strings.Repeat("x", 37) + `","body":{}}` + "\n"
	_, _ = fw.Write(bytes.Repeat([]byte(line), size/len(line)))
	_ = mw.Close()
	req, _ := http.NewRequest("POST", h.http.URL+"/v1/files", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := h.http.Client().Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// otherOrganizationKey is a Workspace key of a second Organization.
func (h *harness) otherOrganizationKey() string {
	h.t.Helper()
	_, admin := h.secondOrganization("other")
	var wss struct{ Items []struct{ UUID string } }
	ok(h.t, h.do("GET", "/v1/admin/workspaces", nil, "x-api-key", admin), &wss)
	var users struct{ Members []struct{ UUID string } }
	ok(h.t, h.do("GET", "/v1/admin/users", nil, "x-api-key", admin), &users)
	body, _ := json.Marshal(map[string]any{"workspace_uuid": wss.Items[0].UUID, "user_id": users.Members[0].UUID, "name": "other"})
	var out struct{ Key string }
	ok(h.t, h.do("POST", "/v1/admin/api-keys", body, "x-api-key", admin), &out)
	return out.Key
}

// TestFilesAreTheirWorkspaces: through the real handler and store, a file
// uploaded by one Workspace's key (larger than the Admin API's body cap)
// is recorded as that Workspace's; a second Workspace's key, or another
// Organization's, neither sees it in the list, nor reads, deletes or
// uses it in a batch job: 404 as an unknown file. Its owner deletes it,
// and its record goes.
func TestFilesAreTheirWorkspaces(t *testing.T) {
	forEachObjectsEngine(t, func(t *testing.T, h *harness) {
		_, mine := h.apiKey(h.workspace("Research"))
		_, second := h.apiKey(h.boot.DefaultWorkspace.ID)
		third := h.otherOrganizationKey()

		status, body := h.upload(mine, 3<<20)
		if status != 200 || body != `{"id":"file-1","object":"file","bytes":3145728}` {
			t.Fatalf("upload: %d %s", status, body)
		}
		recorded, err := objects.NewService(h.db).Find(context.Background(), inference.ObjectFile, "file-1")
		if err != nil || recorded.WorkspaceID == h.boot.DefaultWorkspace.ID {
			t.Fatalf("the record of the upload: %+v, %v", recorded, err)
		}
		notFound := `{"object":"error","message":"File file-1 not found","type":"not_found_error","param":null,"code":null}`
		for _, key := range []string{second, third} {
			for _, c := range []struct{ method, path, body string }{
				{"GET", "/v1/files/file-1", ""}, {"GET", "/v1/files/file-1/content", ""}, {"GET", "/v1/files/file-1/url", ""},
				{"DELETE", "/v1/files/file-1", ""},
				{"POST", "/v1/batch/jobs", `{"input_files":["file-1"],"endpoint":"/v1/chat/completions","model":"m"}`},
			} {
				if status, body := h.model(c.method, c.path, key, c.body); status != 404 || body != notFound {
					t.Errorf("%s %s by another Workspace: %d %s", c.method, c.path, status, body)
				}
			}
			if status, body := h.model("GET", "/v1/files", key, ""); status != 200 || body != `{"data":[],"object":"list","total":0}` {
				t.Errorf("another Workspace's list: %d %s", status, body)
			}
		}
		if status, body := h.model("GET", "/v1/files", mine, ""); status != 200 || body != `{"data":[{"id":"file-1","bytes":3145728}],"object":"list","total":1}` {
			t.Errorf("its Workspace's list: %d %s", status, body)
		}
		if status, body := h.model("POST", "/v1/batch/jobs", mine, `{"input_files":["file-1"],"endpoint":"/v1/chat/completions","model":"m"}`); status != 200 {
			t.Errorf("a batch job of its Workspace: %d %s", status, body)
		}
		if status, body := h.model("DELETE", "/v1/files/file-1", mine, ""); status != 200 || body != `{"id":"file-1","object":"file","deleted":true}` {
			t.Fatalf("delete by its Workspace: %d %s", status, body)
		}
		if _, err := objects.NewService(h.db).Find(context.Background(), inference.ObjectFile, "file-1"); err == nil {
			t.Fatal("a deleted file's record stayed")
		}
	})
}
