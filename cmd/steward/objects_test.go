package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestDefaultUpstreamThroughTheBinary: serve reads the default upstream
// from its config file and its key from the environment; a file uploaded
// through it by one Workspace's key is that Workspace's alone: another
// Workspace's key neither lists nor reads it.
func TestDefaultUpstreamThroughTheBinary(t *testing.T) {
	engines(t, func(t *testing.T, db []string) {
		var mu sync.Mutex
		files := map[string]bool{}
		up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			defer mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			switch {
			case r.Header.Get("Authorization") != "Bearer the-company-key":
				w.WriteHeader(http.StatusUnauthorized)
			case r.Method == "POST" && r.URL.Path == "/v1/files":
				_, _ = io.Copy(io.Discard, r.Body)
				id := fmt.Sprintf("file-%d", len(files)+1)
				files[id] = true
				fmt.Fprintf(w, `{"id":%q,"object":"file"}`, id)
			case r.URL.Path == "/v1/files":
				var data []string
				for id := range files {
					data = append(data, fmt.Sprintf(`{"id":%q}`, id))
				}
				fmt.Fprintf(w, `{"object":"list","total":%d,"data":[%s]}`, len(data), strings.Join(data, ","))
			default:
				fmt.Fprintf(w, `{"id":%q}`, strings.TrimPrefix(r.URL.Path, "/v1/files/"))
			}
		}))
		t.Cleanup(up.Close)
		cfg := filepath.Join(t.TempDir(), "steward.yaml")
		if err := os.WriteFile(cfg, fmt.Appendf(nil, "upstream:\n  url: %s/v1\n  api_key_env: TEST_COMPANY_KEY\n  timeouts:\n    files: {header: 10s}\n", up.URL), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(binary, append([]string{"serve", "--addr", "127.0.0.1:0", "--config", cfg}, db...)...)
		cmd.Env = append(os.Environ(), "TEST_COMPANY_KEY=the-company-key")
		p := run(t, cmd)
		admin := adminKey.FindStringSubmatch(p.output)[1]
		_, mine := p.workspaceKey(t, admin)
		other := p.otherWorkspaceKey(t, admin)

		bearer := func(method, path, key, body string) string {
			t.Helper()
			resp, b, err := p.send(method, path, "Authorization", "Bearer "+key, body)
			if err != nil {
				t.Fatal(err)
			}
			return fmt.Sprintf("%d %s", resp.StatusCode, b)
		}
		if got := bearer("POST", "/v1/files", mine, "--x--"); got != `200 {"id":"file-1","object":"file"}` {
			t.Fatalf("upload: %s", got)
		}
		for _, c := range []struct{ key, path, want string }{
			{mine, "/v1/files", `200 {"data":[{"id":"file-1"}],"object":"list","total":1}`},
			{mine, "/v1/files/file-1", `200 {"id":"file-1"}`},
			{other, "/v1/files", `200 {"data":[],"object":"list","total":0}`},
			{other, "/v1/files/file-1", `404 {"object":"error","message":"File file-1 not found","type":"not_found_error","param":null,"code":null}`},
		} {
			if got := bearer("GET", c.path, c.key, ""); got != c.want {
				t.Errorf("GET %s: %s, want %s", c.path, got, c.want)
			}
		}
	})
}
