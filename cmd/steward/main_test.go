package main

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite" // reads the database after a kill

	"github.com/stewardhq/steward/internal/logbuf"
	"github.com/stewardhq/steward/internal/store/storetest"
)

var binary string

// TestMain builds the real binary once; the tests below run it as a user
// would, and kill it as an operator or a crash would.
func TestMain(m *testing.M) {
	if upstream := os.Getenv(bareProxyEnv); upstream != "" {
		serveBareProxy(upstream)
		return
	}
	if os.Getenv(receiverEnv) != "" {
		serveReceiver()
		return
	}
	dir, err := os.MkdirTemp("", "steward-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "steward")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build steward: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type process struct {
	cmd  *exec.Cmd
	base string
	// output is what steward printed up to "listening on".
	output string
	logs   *logbuf.Buffer
}

var listening = regexp.MustCompile(`listening on (http://\S+)`)

// start runs steward serve on a free port and waits until it listens.
func start(t testing.TB, args ...string) *process {
	t.Helper()
	return run(t, exec.Command(binary, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...))
}

// run starts cmd, a server that prints "listening on" and its address, and
// waits until it listens.
func run(t testing.TB, cmd *exec.Cmd) *process {
	t.Helper()
	p := &process{cmd: cmd, logs: &logbuf.Buffer{}}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stderr = p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.cmd.Process.Kill(); _ = p.cmd.Wait() })
	found := make(chan [2]string, 1)
	go func() {
		var printed strings.Builder
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			printed.WriteString(sc.Text() + "\n")
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				found <- [2]string{m[1], printed.String()}
			}
		}
		close(found)
	}()
	select {
	case got, ok := <-found:
		if !ok {
			t.Fatalf("%s exited before listening", filepath.Base(cmd.Path))
		}
		p.base, p.output = got[0], got[1]
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not start within 30s", filepath.Base(cmd.Path))
	}
	return p
}

func (p *process) get(t testing.TB, path, key string) (int, string) {
	t.Helper()
	return p.call(t, "GET", path, key, "")
}

func (p *process) call(t testing.TB, method, path, key, body string) (int, string) {
	t.Helper()
	resp, b, err := p.send(method, path, "x-api-key", key, body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// hello is a small chat completion request for the model "fake".
const hello = `{"model":"fake","max_tokens":4,"messages":[{"role":"user","content":"hello"}]}`

// chat sends a chat completion request body to p's gateway with a
// Workspace key, and returns the answer with its body read.
func (p *process) chat(key, body string) (*http.Response, string, error) {
	return p.send("POST", "/v1/chat/completions", "Authorization", "Bearer "+key, body)
}

// send sends a request with one header, and returns the answer with its
// body read.
func (p *process) send(method, path, header, value, body string) (*http.Response, string, error) {
	req, err := http.NewRequest(method, p.base+path, strings.NewReader(body))
	if err != nil {
		return nil, "", err
	}
	req.Header.Set(header, value)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

// workspaceKey creates a Workspace API key of the first start's admin in
// the first Workspace, and returns its id and secret.
func (p *process) workspaceKey(t testing.TB, admin string) (id, secret string) {
	t.Helper()
	_, body := p.call(t, "GET", "/v1/admin/workspaces", admin, "")
	var ws struct {
		Items []struct{ UUID string } `json:"items"`
	}
	_ = json.Unmarshal([]byte(body), &ws)
	_, body = p.call(t, "GET", "/v1/admin/users", admin, "")
	var users struct {
		Members []struct{ UUID string } `json:"members"`
	}
	_ = json.Unmarshal([]byte(body), &users)
	if len(ws.Items) == 0 || len(users.Members) == 0 {
		t.Fatalf("no Workspace or member to make a key for")
	}
	status, body := p.call(t, "POST", "/v1/admin/api-keys", admin, `{"workspace_uuid":"`+ws.Items[0].UUID+`","user_id":"`+users.Members[0].UUID+`"}`)
	var key struct {
		KeyID string `json:"key_id"`
		Key   string `json:"key"`
	}
	if err := json.Unmarshal([]byte(body), &key); status != http.StatusCreated && status != http.StatusOK || err != nil || key.Key == "" {
		t.Fatalf("create key: %d %s", status, body)
	}
	return key.KeyID, key.Key
}

// otherWorkspaceKey creates a second Workspace, administered by the first
// member, and returns a key of it, the secret.
func (p *process) otherWorkspaceKey(t testing.TB, admin string) string {
	t.Helper()
	_, body := p.call(t, "GET", "/v1/admin/users", admin, "")
	var users struct{ Members []struct{ UUID string } }
	if err := json.Unmarshal([]byte(body), &users); err != nil || len(users.Members) == 0 {
		t.Fatalf("members: %s", body)
	}
	status, body := p.call(t, "POST", "/v1/admin/workspaces", admin, `{"name":"Other","admin_user_id":"`+users.Members[0].UUID+`"}`)
	var ws struct{ UUID string }
	if err := json.Unmarshal([]byte(body), &ws); err != nil || ws.UUID == "" {
		t.Fatalf("another Workspace: %d %s", status, body)
	}
	status, body = p.call(t, "POST", "/v1/admin/api-keys", admin, `{"workspace_uuid":"`+ws.UUID+`","user_id":"`+users.Members[0].UUID+`"}`)
	var key struct{ Key string }
	if err := json.Unmarshal([]byte(body), &key); err != nil || key.Key == "" {
		t.Fatalf("a key of another Workspace: %d %s", status, body)
	}
	return key.Key
}

// eventually calls get until it reports ok, for at most 10 seconds, and
// returns what it got last: an answer's usage event is committed after the
// answer, which does not wait for it, so a report read right after the
// answers may lack the last of them for a commit's time.
func eventually(get func() (string, bool)) string {
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, ok := get()
		if ok || time.Now().After(deadline) {
			return got
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func engines(t *testing.T, fn func(t *testing.T, db []string)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, []string{"--data-dir", t.TempDir()}) })
	t.Run("postgres", func(t *testing.T) {
		db, cfg := storetest.OpenPostgres(t)
		db.Close()
		fn(t, []string{"--database-url", cfg.DatabaseURL})
	})
}

var adminKey = regexp.MustCompile(`x-api-key: (stwa_\w+)`)

// TestKillNineLosesNothingAcknowledged starts Steward, takes the first
// start's key once the server has answered with it, kills the process with
// SIGKILL, and checks that everything acknowledged is there after a restart.
func TestKillNineLosesNothingAcknowledged(t *testing.T) {
	engines(t, func(t *testing.T, db []string) {
		p := start(t, db...)
		m := adminKey.FindStringSubmatch(p.output)
		if m == nil {
			t.Fatalf("no admin key printed:\n%s", p.output)
		}
		status, created := p.call(t, "POST", "/v1/admin/users", m[1], `[{"email":"kept@example.com","first_name":"Kept","last_name":"Safe"}]`)
		if status != 200 || !strings.Contains(created, "kept@example.com") {
			t.Fatalf("create user: %d %s", status, created)
		}
		status, before := p.get(t, "/v1/admin/audit-logs", m[1])
		if status != 200 || !strings.Contains(before, "kept@example.com") {
			t.Fatalf("audit-logs: %d %s", status, before)
		}
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = p.cmd.Wait()

		q := start(t, db...)
		if strings.Contains(q.output, "stwa_") {
			t.Fatalf("restart after kill -9 bootstrapped again:\n%s", q.output)
		}
		status, after := q.get(t, "/v1/admin/audit-logs", m[1])
		if status != 200 || after != before {
			t.Fatalf("after kill -9: %d\n%s\nwant the same entries as before:\n%s", status, after, before)
		}
		if status, users := q.get(t, "/v1/admin/users?email=kept@example.com", m[1]); status != 200 || !strings.Contains(users, `"total":1`) {
			t.Fatalf("the member created before kill -9: %d %s", status, users)
		}
	})
}

var acceptLink = regexp.MustCompile(`(http://[^\s"]+/invitations/accept\?token=[A-Z2-7]+)`)

// TestInvitationByEmailLog follows an invitation as a person would without
// an SMTP server: invite, find the link in the log, open it, accept.
func TestInvitationByEmailLog(t *testing.T) {
	p := start(t, "--data-dir", t.TempDir())
	key := adminKey.FindStringSubmatch(p.output)[1]
	status, body := p.call(t, "POST", "/v1/admin/users-invite", key, `{"email":"new@example.com","role_names":["billing_manager"]}`)
	if status != 200 || !strings.Contains(body, `"invited_members_count":1`) {
		t.Fatalf("invite: %d %s", status, body)
	}
	var link string
	deadline := time.Now().Add(20 * time.Second)
	for link == "" && time.Now().Before(deadline) {
		if m := acceptLink.FindStringSubmatch(p.logs.String()); m != nil {
			link = m[1]
		}
		time.Sleep(50 * time.Millisecond)
	}
	if link == "" || !strings.HasPrefix(link, p.base) {
		t.Fatalf("no accept link on %s in the log:\n%s", p.base, p.logs.String())
	}
	resp, err := http.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), "Accept your invitation") {
		t.Fatalf("accept page: %d %s", resp.StatusCode, page)
	}
	u, _ := url.Parse(link)
	resp, err = http.PostForm(p.base+"/invitations/accept", url.Values{"token": {u.Query().Get("token")}, "first_name": {"New"}, "last_name": {"Person"},
		"password": {"new person's password"}, "password_confirm": {"new person's password"}})
	if err != nil {
		t.Fatal(err)
	}
	page, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), "new@example.com") {
		t.Fatalf("accepting: %d %s", resp.StatusCode, page)
	}
	status, users := p.get(t, "/v1/admin/users?email=new@example.com", key)
	if status != 200 || !strings.Contains(users, `"name":"New Person"`) || !strings.Contains(users, "c955f4e1-9477-43f0-8349-6fbc629fccc9") {
		t.Fatalf("the new member: %d %s", status, users)
	}
}

// TestSigtermShutsDownGracefully checks the exit status of a SIGTERM.
func TestSigtermShutsDownGracefully(t *testing.T) {
	p := start(t, "--data-dir", t.TempDir())
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("steward did not stop within 20s of SIGTERM")
	}
}

// TestSecondServerOnSQLiteRefused starts a second server on the data
// directory of a running one: it refuses to start, naming the database and
// the process that holds it, before touching the file. Once the first is
// killed with SIGKILL, its lock is gone with it and a server starts.
func TestSecondServerOnSQLiteRefused(t *testing.T) {
	dir := t.TempDir()
	p := start(t, "--data-dir", dir)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, binary, "serve", "--addr", "127.0.0.1:0", "--data-dir", dir).CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() <= 0 {
		t.Fatalf("second server on the same data directory: %v, want it to exit with an error\n%s", err, out)
	}
	db := filepath.Join(dir, "steward.db")
	for _, want := range []string{"the SQLite database " + db + " is in use", fmt.Sprintf("another process (pid %d)", p.cmd.Process.Pid), db + ".lock"} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("second server's error:\n%s\nwant it to say %q", out, want)
		}
	}
	if strings.Contains(string(out), "listening on") {
		t.Fatalf("the second server listened:\n%s", out)
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	stopped(t, p)
	start(t, "--data-dir", dir)
}

var backofficeKey = regexp.MustCompile(`Backoffice key\s+(stwb_\w+)`)

// TestBackofficeFromTheCLI runs the Backoffice flow as an Enterprise
// Account admin would: create an Organization, issue it an Admin API key,
// use the key, delete it, see it refused.
func TestBackofficeFromTheCLI(t *testing.T) {
	p := start(t, "--data-dir", t.TempDir())
	bo := backofficeKey.FindStringSubmatch(p.output)
	if bo == nil {
		t.Fatalf("no Backoffice key printed:\n%s", p.output)
	}
	cli := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(binary, append([]string{"backoffice"}, args...)...)
		cmd.Env = append(os.Environ(), "STEWARD_URL="+p.base, "STEWARD_BACKOFFICE_KEY="+bo[1])
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("steward backoffice %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	var org struct{ ID string }
	if err := json.Unmarshal([]byte(cli("orgs", "create", "--name", "Acme EU", "--json")), &org); err != nil || org.ID == "" {
		t.Fatalf("orgs create: %v", err)
	}
	if out := cli("orgs", "list"); !strings.Contains(out, "Acme EU") || !strings.Contains(out, "NAME") {
		t.Fatalf("orgs list:\n%s", out)
	}
	var key struct{ ID, Key string }
	if err := json.Unmarshal([]byte(cli("admin-keys", "create", "--org", org.ID, "--name", "eu", "--json")), &key); err != nil || !strings.HasPrefix(key.Key, "stwa_") {
		t.Fatalf("admin-keys create: %v %+v", err, key)
	}
	if status, body := p.get(t, "/v1/admin/users", key.Key); status != 200 {
		t.Fatalf("the new key on /v1/admin/users: %d %s", status, body)
	}
	if out := cli("admin-keys", "list"); !strings.Contains(out, key.ID) || strings.Contains(out, key.Key) {
		t.Fatalf("admin-keys list:\n%s", out)
	}
	cli("admin-keys", "delete", key.ID)
	if status, _ := p.get(t, "/v1/admin/users", key.Key); status != 401 {
		t.Fatalf("the deleted key answered %d, want 401", status)
	}
}

// TestModelAPIWithTheDemoModel follows the README's first model request:
// create a Workspace key, call the demo model, find the usage recorded and
// the key's last use saved; an Admin API key is refused there.
func TestModelAPIWithTheDemoModel(t *testing.T) {
	dir := t.TempDir()
	p := start(t, "--data-dir", dir, "--demo-model")
	admin := adminKey.FindStringSubmatch(p.output)[1]
	status, body := p.call(t, "GET", "/v1/admin/workspaces", admin, "")
	var ws struct {
		Items []struct{ UUID string } `json:"items"`
	}
	if err := json.Unmarshal([]byte(body), &ws); status != 200 || err != nil || len(ws.Items) != 1 {
		t.Fatalf("workspaces: %d %s", status, body)
	}
	status, body = p.call(t, "GET", "/v1/admin/users", admin, "")
	var users struct {
		Members []struct{ UUID string } `json:"members"`
	}
	if err := json.Unmarshal([]byte(body), &users); status != 200 || err != nil {
		t.Fatalf("users: %d %s", status, body)
	}
	status, body = p.call(t, "POST", "/v1/admin/api-keys", admin, `{"workspace_uuid":"`+ws.Items[0].UUID+`","user_id":"`+users.Members[0].UUID+`","name":"first"}`)
	var key struct{ Key string }
	if err := json.Unmarshal([]byte(body), &key); status != 200 || err != nil {
		t.Fatalf("create key: %d %s", status, body)
	}
	chatWith := func(k, content string) (int, string) {
		resp, b, err := p.chat(k, `{"model":"steward-demo","max_tokens":16,"messages":[{"role":"user","content":"`+content+`"}]}`)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, b
	}
	chat := func(k string) (int, string) { return chatWith(k, "hello steward") }
	status, body = chat(key.Key)
	if status != 200 || !strings.Contains(body, "hello steward") || !strings.Contains(body, `"usage"`) {
		t.Fatalf("chat: %d %s", status, body)
	}
	if status, body := chat(admin); status != 403 {
		t.Fatalf("an Admin API key on the model API: %d %s", status, body)
	}
	// Prompts may be larger than Admin API bodies (1 MiB), up to the
	// gateway's own 4 MiB.
	if status, body := chatWith(key.Key, strings.Repeat("a", 2<<20)); status != 200 {
		t.Fatalf("a 2 MiB prompt: %d %.200s", status, body)
	}
	if status, body := chatWith(key.Key, strings.Repeat("a", 5<<20)); status != 413 || !strings.Contains(body, `"code":"request_too_large"`) {
		t.Fatalf("a 5 MiB prompt: %d %.200s", status, body)
	}
	// Another gateway checks the key and reports what the request used.
	req, _ := http.NewRequest("POST", p.base+"/v1/check?model=steward-demo&prompt_tokens=10&max_tokens=5", nil)
	req.Header.Set("Authorization", "Bearer "+key.Key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var check struct {
		CheckID     string `json:"check_id"`
		WorkspaceID string `json:"workspace_id"`
	}
	err = json.NewDecoder(resp.Body).Decode(&check)
	resp.Body.Close()
	checkID := resp.Header.Get("x-steward-check-id")
	if resp.StatusCode != 200 || err != nil || checkID == "" || check.CheckID != checkID || check.WorkspaceID != ws.Items[0].UUID {
		t.Fatalf("check: %d %+v %v", resp.StatusCode, check, err)
	}
	req, _ = http.NewRequest("POST", p.base+"/v1/check/"+checkID+"/report", strings.NewReader(`{"input_tokens":9,"output_tokens":4}`))
	req.Header.Set("Authorization", "Bearer "+key.Key)
	if resp, err = http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("report: %v %v", resp, err)
	}
	resp.Body.Close()
	// The usage was committed before the answer: it is there after kill -9.
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Wait()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "steward.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n, tokens int64
	if err := db.QueryRow(`SELECT COUNT(*), COALESCE(SUM(input_tokens + output_tokens), 0) FROM usage_events WHERE model = 'steward-demo'`).Scan(&n, &tokens); err != nil {
		t.Fatal(err)
	}
	if n != 3 || tokens == 0 {
		t.Fatalf("usage after kill -9: %d events, %d tokens; want the 2 answered requests and the reported check", n, tokens)
	}
	// The key reported its own check, which then costs at least what it
	// reserved.
	var in, out int64
	if err := db.QueryRow(`SELECT input_tokens, output_tokens FROM usage_events WHERE endpoint = 'check'`).Scan(&in, &out); err != nil || in != 10 || out != 5 {
		t.Fatalf("the reported check's usage: %d in, %d out (%v); want the 10 and 5 reserved", in, out, err)
	}
}

// TestLimitsAreEnforced sets limits through the Admin API and sees the model
// API refuse what would break them, before any model is called.
func TestLimitsAreEnforced(t *testing.T) {
	p := start(t, "--data-dir", t.TempDir(), "--demo-model")
	admin := adminKey.FindStringSubmatch(p.output)[1]
	_, key := p.workspaceKey(t, admin)
	chat := func(maxTokens int) (*http.Response, string) {
		resp, b, err := p.chat(key, fmt.Sprintf(`{"model":"steward-demo","max_tokens":%d,"messages":[{"role":"user","content":"hi"}]}`, maxTokens))
		if err != nil {
			t.Fatal(err)
		}
		return resp, b
	}
	if status, body := p.call(t, "PUT", "/v1/admin/rate-limit", admin, `{"requests_per_second":1,"tokens_limits_by_model":{"steward-demo":{"tokens_per_month":100}}}`); status != 200 {
		t.Fatalf("set rate limit: %d %s", status, body)
	}
	resp, body := chat(8)
	if resp.StatusCode != 200 || resp.Header.Get("x-ratelimit-limit-requests") != "1" {
		t.Fatalf("first request: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	resp, body = chat(8)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, "rate_limit_exceeded") {
		t.Fatalf("second request within the second: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	time.Sleep(1100 * time.Millisecond)
	resp, body = chat(500)
	if resp.StatusCode != 429 || !strings.Contains(body, "monthly_token_limit_exceeded") {
		t.Fatalf("a request whose worst case exceeds the month's tokens: %d %s", resp.StatusCode, body)
	}
	// The refused requests were not metered; the answered one was.
	if status, body := p.call(t, "GET", "/v1/admin/spend-limit", admin, ""); status != 200 || !strings.Contains(body, `"no_monthly_limit":true`) {
		t.Fatalf("spend limit: %d %s", status, body)
	}
	if status, body := p.call(t, "GET", "/v1/admin/rate-limit", admin, ""); status != 200 || !strings.Contains(body, `"tokens_per_month":100`) {
		t.Fatalf("rate limit: %d %s", status, body)
	}
	status, body := p.call(t, "GET", "/v1/admin/usage", admin, "")
	var rep struct {
		Completion struct {
			Models map[string]map[string][]struct{ Value float64 } `json:"models"`
		} `json:"completion"`
	}
	if err := json.Unmarshal([]byte(body), &rep); status != 200 || err != nil {
		t.Fatalf("usage: %d %s", status, body)
	}
	if reqs := rep.Completion.Models["steward-demo"]["requests"]; len(reqs) != 1 || reqs[0].Value != 1 {
		t.Fatalf("usage shows %+v, want the one answered request", rep.Completion.Models)
	}
	// The demo model has a price, so that the Usage page shows a cost.
	if cost := rep.Completion.Models["steward-demo"]["cost"]; len(cost) != 1 || cost[0].Value <= 0 {
		t.Fatalf("usage shows the demo model's cost %+v, want more than nothing", cost)
	}
}

var profilerURL = regexp.MustCompile(`profiler serving.*url=(http://\S+)`)

// TestProfilerOnlyOnLoopback serves the profiler on its own loopback
// address, never on the API's, and refuses any other address.
func TestProfilerOnlyOnLoopback(t *testing.T) {
	p := start(t, "--data-dir", t.TempDir(), "--debug-addr", "127.0.0.1:0")
	m := profilerURL.FindStringSubmatch(p.logs.String())
	if m == nil {
		t.Fatalf("no profiler address in the log:\n%s", p.logs.String())
	}
	resp, err := http.Get(m[1] + "goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), "goroutine profile") {
		t.Fatalf("profiler: %d %.200s", resp.StatusCode, b)
	}
	if status, _ := p.get(t, "/debug/pprof/", ""); status != http.StatusNotFound {
		t.Fatalf("the API's address serves the profiler: %d", status)
	}

	out, err := exec.Command(binary, "serve", "--data-dir", t.TempDir(), "--debug-addr", "0.0.0.0:6060").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "want a loopback host:port") {
		t.Fatalf("a public profiler address: err %v, output %s", err, out)
	}
}
