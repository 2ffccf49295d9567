package main

import (
	"encoding/json"
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
	"time"
)

// docsNginxBlock returns the nginx configuration of docs/gateway.md, so
// that the test runs what users copy.
func docsNginxBlock(t *testing.T) string {
	t.Helper()
	doc, err := os.ReadFile("../../docs/gateway.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "```nginx\n")
	block, _, closed := strings.Cut(rest, "```")
	if !ok || !closed {
		t.Fatal("docs/gateway.md has no nginx block")
	}
	return block
}

// TestNginxAuthRequest puts a real nginx, configured as docs/gateway.md
// says, in front of a fake model server, with Steward's check API deciding.
func TestNginxAuthRequest(t *testing.T) {
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		nginx = "/usr/sbin/nginx"
		if _, err := os.Stat(nginx); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatal("nginx is not installed; .ci/run installs Debian's nginx-light")
			}
			t.Skip("nginx is not installed (apt-get install nginx-light): the nginx example of docs/gateway.md was not run")
		}
	}
	// The model server reports usage as the proxy's trusted reporter.
	const reportToken = "nginx-report-token-0123456789abcdef"
	serve := exec.Command(binary, "serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--demo-model")
	serve.Env = append(os.Environ(), "STEWARD_CHECK_REPORT_TOKEN="+reportToken)
	p := run(t, serve)
	admin := adminKey.FindStringSubmatch(p.output)[1]
	_, key := p.workspaceKey(t, admin)

	var mu sync.Mutex
	var checkIDs []string
	models := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		checkIDs = append(checkIDs, r.Header.Get("X-Steward-Check-Id"))
		mu.Unlock()
		if r.Header.Get("Authorization") == "" {
			t.Error("the model server did not get the client's Authorization header")
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"id":"cmpl-1","object":"chat.completion","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":4}}`)
	}))
	defer models.Close()

	dir := t.TempDir()
	listen := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	steward := strings.TrimPrefix(p.base, "http://")
	block := docsNginxBlock(t)
	for from, to := range map[string]string{"127.0.0.1:8000": strings.TrimPrefix(models.URL, "http://"), "127.0.0.1:8080": steward, "127.0.0.1:8081": listen} {
		if !strings.Contains(block, from) {
			t.Fatalf("the docs' nginx block no longer mentions %s", from)
		}
		block = strings.ReplaceAll(block, from, to)
	}
	conf := fmt.Sprintf(`daemon off;
master_process off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events {}
http {
    access_log off;
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
%[2]s
}
`, dir, block)
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(nginx, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Logf("nginx error.log:\n%s", log)
		}
	})

	send := func(k string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("POST", "http://"+listen+"/v1/chat/completions", strings.NewReader(`{"model":"steward-demo","messages":[]}`))
		req.Header.Set("Authorization", "Bearer "+k)
		req.Header.Set("X-Model", "steward-demo")
		var resp *http.Response
		var err error
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if resp, err = http.DefaultClient.Do(req); err == nil || time.Now().After(deadline) {
				break
			}
		}
		if err != nil {
			t.Fatalf("nginx does not answer: %v", err)
		}
		return resp
	}
	body := func(resp *http.Response) string {
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}

	resp := send(key)
	if b := body(resp); resp.StatusCode != 200 || !strings.Contains(b, "cmpl-1") {
		t.Fatalf("an admitted request through nginx: %d %s", resp.StatusCode, b)
	}
	mu.Lock()
	id := checkIDs[0]
	mu.Unlock()
	if id == "" {
		t.Fatal("the model server got no X-Steward-Check-Id")
	}
	req, _ := http.NewRequest("POST", p.base+"/v1/check/"+id+"/report", strings.NewReader(`{"input_tokens":9,"output_tokens":4}`))
	req.Header.Set("Authorization", "Bearer "+reportToken)
	rep, err := http.DefaultClient.Do(req)
	if err != nil || rep.StatusCode != http.StatusNoContent {
		t.Fatalf("report: %v %v", rep, err)
	}
	rep.Body.Close()

	if resp := send("not-a-key"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a bad key through nginx: %d %s", resp.StatusCode, body(resp))
	}

	if status, b := p.call(t, "PUT", "/v1/admin/rate-limit", admin, `{"requests_per_second":1}`); status != 200 {
		t.Fatalf("set a rate limit: %d %s", status, b)
	}
	refused := false
	for range 20 {
		resp := send(key)
		b := body(resp)
		if resp.StatusCode == http.StatusTooManyRequests {
			var e struct{ Code string }
			if err := json.Unmarshal([]byte(b), &e); err != nil || e.Code != "rate_limit_exceeded" || resp.Header.Get("Retry-After") == "" {
				t.Fatalf("a refusal through nginx: %s, Retry-After %q", b, resp.Header.Get("Retry-After"))
			}
			refused = true
			break
		}
		if resp.StatusCode != 200 {
			t.Fatalf("over the rate limit through nginx: %d %s", resp.StatusCode, b)
		}
	}
	if !refused {
		t.Fatal("20 requests at once under a limit of 1 per second were all let through")
	}

	day := time.Now().UTC().Format("2006-01-02")
	status, b := p.call(t, "GET", "/v1/admin/usage/report?start="+day+"&end="+time.Now().UTC().AddDate(0, 0, 1).Format("2006-01-02")+"&bucket=day&group_by=model", admin, "")
	// The output reported, not the 4,096 tokens the check reserved.
	if status != 200 || !strings.Contains(b, `"steward-demo"`) || !strings.Contains(b, `"input_tokens":9`) || !strings.Contains(b, `"output_tokens":4,`) {
		t.Fatalf("the reported usage: %d %s", status, b)
	}
}
