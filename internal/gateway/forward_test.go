package gateway

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/apitest"
	"github.com/stewardhq/steward/internal/inference"
	"github.com/stewardhq/steward/internal/steward"
)

const upstreamKey = "sk-upstream-secret"

// newForwardHarness is a gateway whose default upstream is up, with
// timeouts for every group.
func newForwardHarness(t *testing.T, up http.Handler, timeouts Timeouts) *harness {
	t.Helper()
	srv := httptest.NewServer(up)
	t.Cleanup(srv.Close)
	tos := map[string]Timeouts{}
	for group := range DefaultTimeouts {
		tos[group] = timeouts
	}
	h := newHarnessAuth(t, Config{Upstream: &Upstream{BaseURL: srv.URL + "/v1/", APIKey: upstreamKey}, Timeouts: tos, Objects: newMemObjects()}, workspaceAuth{})
	t.Cleanup(func() {
		if strings.Contains(h.logs.String(), upstreamKey) {
			t.Error("the upstream's key was logged")
		}
	})
	return h
}

// Keys of other Workspaces: of the same Organization, and of another.
const (
	otherWorkspaceKey = "sk-other-workspace"
	otherOrgKey       = "sk-other-org"
)

// workspaceAuth is fakeAuth with keys of a second Workspace and of a
// second Organization.
type workspaceAuth struct{ fakeAuth }

func (a workspaceAuth) WorkspaceKey(r *http.Request) (steward.Principal, error) {
	switch r.Header.Get("Authorization") {
	case "Bearer " + otherWorkspaceKey:
		return steward.Principal{Kind: steward.CredentialWorkspaceAPIKey, CredentialID: "key3", OrganizationID: "org1", WorkspaceID: "ws2", UserID: "user3"}, nil
	case "Bearer " + otherOrgKey:
		return steward.Principal{Kind: steward.CredentialWorkspaceAPIKey, CredentialID: "key4", OrganizationID: "org2", WorkspaceID: "ws1", UserID: "user4"}, nil
	}
	return a.fakeAuth.WorkspaceKey(r)
}

// memObjects is inference.Objects in memory.
type memObjects struct {
	mu   sync.Mutex
	objs map[[2]string]inference.Object
	// finds counts the lookups of each object.
	finds map[[2]string]int
}

func newMemObjects() *memObjects { return &memObjects{objs: map[[2]string]inference.Object{}} }

func (m *memObjects) Record(_ context.Context, o inference.Object) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.objs[[2]string{o.Kind, o.ID}]; !ok {
		m.objs[[2]string{o.Kind, o.ID}] = o
	}
	return nil
}

func (m *memObjects) Find(_ context.Context, kind, id string) (inference.Object, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.finds == nil {
		m.finds = map[[2]string]int{}
	}
	m.finds[[2]string{kind, id}]++
	o, ok := m.objs[[2]string{kind, id}]
	if !ok {
		return o, steward.Errorf(steward.KindNotFound, "no %s %s", kind, id)
	}
	return o, nil
}

func (m *memObjects) Forget(_ context.Context, kind, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.objs, [2]string{kind, id})
	return nil
}

func (m *memObjects) Owned(_ context.Context, org, ws, kind string, ids []string) (map[string]bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]bool{}
	for _, id := range ids {
		if o, ok := m.objs[[2]string{kind, id}]; ok && o.OrganizationID == org && o.WorkspaceID == ws {
			out[id] = true
		}
	}
	return out, nil
}

func (m *memObjects) Count(_ context.Context, org, ws, kind string) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var n int64
	for _, o := range m.objs {
		if o.Kind == kind && o.OrganizationID == org && o.WorkspaceID == ws {
			n++
		}
	}
	return n, nil
}

// own records an object as testKey's Workspace's.
func (h *harness) own(t *testing.T, kind, id string) {
	t.Helper()
	if err := h.g.objects.Record(context.Background(), inference.Object{Kind: kind, ID: id, OrganizationID: testKey.OrganizationID, WorkspaceID: testKey.WorkspaceID}); err != nil {
		t.Fatal(err)
	}
}

func (h *harness) do(t *testing.T, method, path, token string, body io.Reader, header http.Header) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, h.srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// A forwarded request reaches the default upstream with its method, path,
// query and headers, the upstream's key instead of the client's, and the
// request's id; the upstream's status, headers (but those of its
// connection) and body come back unchanged.
func TestForwardPassesRequestAndAnswerThrough(t *testing.T) {
	var got *http.Request
	var gotBody string
	h := newForwardHarness(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got, gotBody = r, string(b)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Upstream", "yes")
		w.Header().Set("Connection", "X-Hop")
		w.Header().Set("X-Hop", "connection's own")
		w.WriteHeader(http.StatusConflict)
		_, _ = io.WriteString(w, `{"object":"error","message":"upstream says no","type":"invalid_request_error","param":null,"code":"3000"}`)
	}), Timeouts{Header: time.Second, Idle: time.Second})
	h.own(t, inference.ObjectAgent, "ag/1")
	resp := h.do(t, "PATCH", "/v1/agents/ag%2F1?agent_version=2&x=a+b", goodKey, strings.NewReader(`{"name":"n"}`), http.Header{
		"Content-Type": {"application/json"}, "User-Agent": {"mistral-client-typescript/1.0"}, "X-Api-Key": {"stwk_leak"},
		"Cookie": {"s=1"}, "X-Request-Id": {"req-abc"}, "Expect": {"100-continue"}})
	body := readAll(t, resp)
	if resp.StatusCode != http.StatusConflict || body != `{"object":"error","message":"upstream says no","type":"invalid_request_error","param":null,"code":"3000"}` {
		t.Fatalf("answer %d %s", resp.StatusCode, body)
	}
	if resp.Header.Get("X-Upstream") != "yes" || resp.Header.Get("X-Hop") != "" || resp.Header.Get("x-request-id") != "req-abc" {
		t.Fatalf("answer headers %v", resp.Header)
	}
	if got.Method != "PATCH" || got.URL.EscapedPath() != "/v1/agents/ag%2F1" || got.URL.RawQuery != "agent_version=2&x=a+b" || gotBody != `{"name":"n"}` {
		t.Fatalf("upstream got %s %s?%s %s", got.Method, got.URL.EscapedPath(), got.URL.RawQuery, gotBody)
	}
	want := map[string]string{"Authorization": "Bearer " + upstreamKey, "Content-Type": "application/json", "User-Agent": "mistral-client-typescript/1.0",
		"X-Api-Key": "", "Cookie": "", "X-Request-Id": "req-abc", "Expect": ""}
	for k, v := range want {
		if g := got.Header.Get(k); g != v {
			t.Errorf("upstream header %s = %q, want %q", k, g, v)
		}
	}
}

// Without a Workspace key nothing is forwarded: 401 for none, the
// authenticator's refusal for a refused one.
func TestForwardNeedsAWorkspaceKey(t *testing.T) {
	called := false
	h := newForwardHarness(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called = true }), Timeouts{Header: time.Second, Idle: time.Second})
	for token, want := range map[string]string{
		"":             `401 {"object":"error","message":"missing API key: send Authorization: Bearer \u003ckey\u003e","type":"authentication_error","param":null,"code":null}`,
		"sk-forbidden": `403 {"object":"error","message":"no access","type":"permission_error","param":null,"code":null}`,
	} {
		resp := h.do(t, "GET", "/v1/files", token, nil, nil)
		if got := strings.TrimSpace(readAll(t, resp)); resp.Status[:3]+" "+got != want {
			t.Errorf("token %q: %s %s, want %s", token, resp.Status, got, want)
		}
	}
	if called {
		t.Fatal("the upstream was called without a Workspace key")
	}
}

// An upload is streamed to the upstream as it arrives: the upstream reads
// its first part before the client has sent the rest. A JSON body above
// 4 MiB is refused with 413, before the upstream is called when its length
// is known.
func TestForwardStreamsUploads(t *testing.T) {
	first := make(chan struct{})
	h := newForwardHarness(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sum := sha256.New()
		buf := make([]byte, 1<<20)
		n, err := io.ReadFull(r.Body, buf)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		sum.Write(buf[:n])
		close(first)
		m, _ := io.Copy(sum, r.Body)
		_, _ = io.WriteString(w, `{"id":"file-1","bytes":`+strconv.FormatInt(int64(n)+m, 10)+`,"sha256":"`+hex.EncodeToString(sum.Sum(nil))+`","ct":"`+strings.Split(r.Header.Get("Content-Type"), ";")[0]+`"}`)
	}), Timeouts{Header: 5 * time.Second, Idle: 5 * time.Second})
	pr, pw := io.Pipe()
	sum := sha256.New()
	go func() {
		chunk := strings.Repeat("a", 1<<20)
		_, _ = io.WriteString(io.MultiWriter(pw, sum), chunk)
		select {
		case <-first:
		case <-time.After(5 * time.Second):
			pw.CloseWithError(io.ErrUnexpectedEOF)
			return
		}
		for range 20 {
			_, _ = io.WriteString(io.MultiWriter(pw, sum), chunk)
		}
		pw.Close()
	}()
	resp := h.do(t, "POST", "/v1/files", goodKey, pr, http.Header{"Content-Type": {"multipart/form-data; boundary=x"}})
	var got struct {
		Bytes  int64
		SHA256 string
		CT     string
	}
	if err := json.Unmarshal([]byte(readAll(t, resp)), &got); err != nil || resp.StatusCode != 200 {
		t.Fatalf("upload: %d %v", resp.StatusCode, err)
	}
	if got.Bytes != 21<<20 || got.SHA256 != hex.EncodeToString(sum.Sum(nil)) || got.CT != "multipart/form-data" {
		t.Fatalf("the upstream got %+v", got)
	}

	big := strings.Repeat("x", maxJSONBytes+1)
	resp = h.do(t, "POST", "/v1/agents", goodKey, strings.NewReader(big), http.Header{"Content-Type": {"application/json"}})
	if body := readAll(t, resp); resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(body, "the request body exceeds 4194304 bytes") {
		t.Fatalf("a 4 MiB JSON body: %d %s", resp.StatusCode, body)
	}
}

// An event stream passes chunk by chunk: the client reads each event
// before the upstream sends the next.
func TestForwardFlushesEventStreams(t *testing.T) {
	next := make(chan struct{})
	h := newForwardHarness(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 3 {
			_, _ = io.WriteString(w, "data: {\"n\":"+strconv.Itoa(i)+"}\n\n")
			w.(http.Flusher).Flush()
			select {
			case <-next:
			case <-time.After(5 * time.Second):
				return
			}
		}
	}), Timeouts{Header: time.Second, Idle: 10 * time.Second})
	h.own(t, inference.ObjectConversation, "c1")
	resp := h.do(t, "GET", "/v1/conversations/c1/history", goodKey, nil, nil)
	rd := bufio.NewReader(resp.Body)
	for i := range 3 {
		line, err := rd.ReadString('\n')
		if err != nil || line != "data: {\"n\":"+strconv.Itoa(i)+"}\n" {
			t.Fatalf("event %d: %q, %v", i, line, err)
		}
		_, _ = rd.ReadString('\n')
		next <- struct{}{}
	}
}

// An upstream that cannot be reached is a 502, one that does not start
// answering within its header timeout a 504, both in Mistral's format; an
// answer that stops flowing for longer than the idle timeout is cut, its
// connection closed so that it does not look whole.
func TestForwardTimeouts(t *testing.T) {
	release := make(chan struct{})
	h := newForwardHarness(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/files/slow" {
			<-release
			return
		}
		w.Header().Set("Content-Length", "100")
		_, _ = io.WriteString(w, "part of it")
		w.(http.Flusher).Flush()
		<-release
	}), Timeouts{Header: 200 * time.Millisecond, Idle: 200 * time.Millisecond})
	t.Cleanup(func() { close(release) })
	h.own(t, inference.ObjectFile, "slow")
	h.own(t, inference.ObjectFile, "stalls")
	start := time.Now()
	resp := h.do(t, "GET", "/v1/files/slow", goodKey, nil, nil)
	if body := readAll(t, resp); resp.StatusCode != http.StatusGatewayTimeout ||
		body != `{"object":"error","message":"the upstream did not answer in time","type":"server_error","param":null,"code":"upstream_timeout"}` {
		t.Fatalf("a silent upstream: %d %s", resp.StatusCode, body)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("the header timeout of 200ms took %s", d)
	}
	resp = h.do(t, "GET", "/v1/files/stalls/content", goodKey, nil, nil)
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(b) != "part of it" || err == nil {
		t.Fatalf("a stalled answer: %d %q, %v; want it cut", resp.StatusCode, b, err)
	}

	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	h = newHarness(t, Config{Upstream: &Upstream{BaseURL: down.URL + "/v1"}, Objects: newMemObjects()})
	resp = h.do(t, "GET", "/v1/batch/jobs", goodKey, nil, nil)
	if body := readAll(t, resp); resp.StatusCode != http.StatusBadGateway ||
		body != `{"object":"error","message":"the upstream could not be reached","type":"server_error","param":null,"code":"upstream_unavailable"}` {
		t.Fatalf("an upstream that is down: %d %s", resp.StatusCode, body)
	}
}

// Without a default upstream, the operations that name no model are not
// served.
func TestNoDefaultUpstreamNoForwarding(t *testing.T) {
	h := newHarness(t, Config{})
	resp := h.do(t, "GET", "/v1/files", goodKey, nil, nil)
	if body := readAll(t, resp); resp.StatusCode != http.StatusNotFound || !strings.Contains(body, `"type":"not_found_error"`) {
		t.Fatalf("GET /v1/files without a default upstream: %d %s", resp.StatusCode, body)
	}
}

// wildcardKinds are the kinds of object the wildcards of the forwarded
// routes name.
var wildcardKinds = map[string]string{
	"file_id": inference.ObjectFile, "job_id": inference.ObjectBatchJob, "agent_id": inference.ObjectAgent,
	"conversation_id": inference.ObjectConversation, "library_id": inference.ObjectLibrary, "document_id": inference.ObjectDocument,
	"voice_id": inference.ObjectVoice, "model_id": inference.ObjectFineTunedModel,
}

// Every route that names an object answers another Workspace's key, of
// the same Organization or of another, 404 exactly as the upstream
// answers an unknown id, without calling the upstream for it (a voice is
// asked about once, to tell a preset); an object not created through
// Steward is unknown to every key; the owner's key reaches the upstream.
func TestObjectRoutesAreTheirWorkspaces(t *testing.T) {
	var mu sync.Mutex
	var calls []string
	h := newForwardHarness(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls = append(calls, r.Method+" "+r.URL.Path)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"x","user_id":"someone"}`)
	}), Timeouts{Header: time.Second, Idle: time.Second})
	var tested int
	for _, rt := range h.g.Routes() {
		method, path, _ := strings.Cut(rt.Pattern, " ")
		// A model card is a configured model's, not an object's
		// (TestModelCards).
		if !strings.Contains(path, "_id}") || strings.HasPrefix(path, "/v1/check/") || rt.Pattern == "GET /v1/models/{model_id}" {
			continue
		}
		tested++
		var firstKind, firstID string
		mine, unknown := path, path
		for wildcard, kind := range wildcardKinds {
			if !strings.Contains(path, "{"+wildcard+"}") {
				continue
			}
			id := kind + "-1"
			h.own(t, kind, id)
			mine = strings.ReplaceAll(mine, "{"+wildcard+"}", id)
			unknown = strings.ReplaceAll(unknown, "{"+wildcard+"}", "unknown-"+kind)
			if strings.Index(path, "{"+wildcard+"}") < strings.Index(path, "{"+firstKind) || firstKind == "" {
				firstKind, firstID = wildcard, id
			}
		}
		mine = strings.ReplaceAll(mine, "{version}", "1")
		unknown = strings.ReplaceAll(unknown, "{version}", "1")
		kind := wildcardKinds[firstKind]
		for _, c := range []struct{ token, path, id string }{
			{otherWorkspaceKey, mine, firstID}, {otherOrgKey, mine, firstID}, {goodKey, unknown, "unknown-" + kind},
		} {
			mu.Lock()
			calls = nil
			mu.Unlock()
			resp := h.do(t, method, c.path, c.token, strings.NewReader(`{}`), http.Header{"Content-Type": {"application/json"}})
			want := `{"object":"error","message":"` + objectNames[kind] + " " + c.id + ` not found","type":"not_found_error","param":null,"code":null}`
			if body := readAll(t, resp); resp.StatusCode != http.StatusNotFound || body != want {
				t.Errorf("%s %s with %s: %d %s, want 404 %s", method, c.path, c.token, resp.StatusCode, body, want)
			}
			mu.Lock()
			for _, call := range calls {
				if call != "GET /v1/audio/voices/"+c.id {
					t.Errorf("%s %s with %s called the upstream: %s", method, c.path, c.token, call)
				}
			}
			mu.Unlock()
		}
		// The metered conversation routes need a model; their owner's
		// requests are tested with one (TestConversations).
		if strings.HasPrefix(rt.Pattern, "POST /v1/conversations/") {
			continue
		}
		mu.Lock()
		calls = nil
		mu.Unlock()
		resp := h.do(t, method, mine, goodKey, strings.NewReader(`{}`), http.Header{"Content-Type": {"application/json"}})
		if body := readAll(t, resp); resp.StatusCode != http.StatusOK || len(calls) != 1 || calls[0] != method+" "+mine {
			t.Errorf("%s %s with its Workspace's key: %d %s, upstream calls %v", method, mine, resp.StatusCode, body, calls)
		}
	}
	if tested < 45 {
		t.Fatalf("%d routes naming objects tested", tested)
	}
}

// A creation is recorded as the caller's; lists hold only the caller's
// objects (and preset voices), their totals counting the caller's; a
// deletion forgets the object; a batch job may use only the caller's
// files and agents, and its output file becomes its Workspace's.
func TestObjectsCreatedListedDeleted(t *testing.T) {
	lists := map[string]string{
		"/v1/files":                 `{"object":"list","total":3,"data":[{"id":"f-mine"},{"id":"f-other"},{"id":"f-unknown"}]}`,
		"/v1/agents":                `[{"id":"a-other"},{"id":"a-mine"}]`,
		"/v1/libraries":             `{"pagination":{"total_items":9,"total_pages":9,"current_page":0,"page_size":1,"has_more":true},"data":[{"id":"l-mine"},{"id":"l-other"}]}`,
		"/v1/audio/voices":          `{"items":[{"id":"v-preset","user_id":null},{"id":"v-other","user_id":"u"},{"id":"v-mine","user_id":"u"}],"total":10,"page":1,"page_size":3,"total_pages":4}`,
		"/v1/batch/jobs":            `{"object":"list","total":2,"data":[{"id":"j-mine","output_file":"out-1"},{"id":"j-other","output_file":"out-2"}]}`,
		"/v1/conversations":         `[]`,
		"/v1/files/f-new":           `{"id":"f-new"}`,
		"/v1/batch/jobs/new":        `{"id":"j-new"}`,
		"/v1/audio/voices/v-preset": `{"id":"v-preset","user_id":null}`,
	}
	var lastBody string
	h := newForwardHarness(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		lastBody = string(b)
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == "POST" && r.URL.Path == "/v1/files":
			_, _ = io.WriteString(w, `{"id":"f-new","object":"file"}`)
		case r.Method == "POST" && r.URL.Path == "/v1/batch/jobs":
			_, _ = io.WriteString(w, `{"id":"j-new","object":"batch"}`)
		case r.Method == "DELETE":
			_, _ = io.WriteString(w, `{"id":"f-new","deleted":true}`)
		default:
			_, _ = io.WriteString(w, lists[r.URL.Path])
		}
	}), Timeouts{Header: time.Second, Idle: time.Second})
	other := h.g.objects
	for kind, id := range map[string]string{inference.ObjectFile: "f-other", inference.ObjectAgent: "a-other", inference.ObjectLibrary: "l-other",
		inference.ObjectVoice: "v-other", inference.ObjectBatchJob: "j-other"} {
		_ = other.Record(context.Background(), inference.Object{Kind: kind, ID: id, OrganizationID: "org1", WorkspaceID: "ws2"})
	}
	for kind, id := range map[string]string{inference.ObjectFile: "f-mine", inference.ObjectAgent: "a-mine", inference.ObjectLibrary: "l-mine",
		inference.ObjectVoice: "v-mine", inference.ObjectBatchJob: "j-mine"} {
		h.own(t, kind, id)
	}
	// The batch jobs first: the output file of the caller's job becomes
	// its, and counts in the files' total.
	for _, c := range []struct{ path, want string }{
		{"/v1/batch/jobs", `{"data":[{"id":"j-mine","output_file":"out-1"}],"object":"list","total":1}`},
		{"/v1/files", `{"data":[{"id":"f-mine"}],"object":"list","total":2}`},
		{"/v1/agents", `[{"id":"a-mine"}]`},
		{"/v1/libraries", `{"data":[{"id":"l-mine"}],"pagination":{"current_page":0,"has_more":true,"page_size":1,"total_items":1,"total_pages":1}}`},
		{"/v1/audio/voices", `{"items":[{"id":"v-preset","user_id":null},{"id":"v-mine","user_id":"u"}],"page":1,"page_size":3,"total":9,"total_pages":4}`},
		{"/v1/conversations", `[]`},
	} {
		resp := h.do(t, "GET", c.path, goodKey, nil, nil)
		if body := readAll(t, resp); resp.StatusCode != 200 || body != c.want {
			t.Errorf("GET %s: %d %s, want %s", c.path, resp.StatusCode, body, c.want)
		}
	}
	if _, err := h.g.objects.Find(context.Background(), inference.ObjectFile, "out-1"); err != nil {
		t.Errorf("the output file of the caller's batch job is not its: %v", err)
	}
	if _, err := h.g.objects.Find(context.Background(), inference.ObjectFile, "out-2"); err == nil {
		t.Error("the output file of another Workspace's batch job was recorded")
	}

	resp := h.do(t, "POST", "/v1/files", goodKey, strings.NewReader("--x--"), http.Header{"Content-Type": {"multipart/form-data; boundary=x"}})
	if body := readAll(t, resp); resp.StatusCode != 200 || body != `{"id":"f-new","object":"file"}` {
		t.Fatalf("upload: %d %s", resp.StatusCode, body)
	}
	if o, err := h.g.objects.Find(context.Background(), inference.ObjectFile, "f-new"); err != nil || o.WorkspaceID != "ws1" || o.KeyID != "key1" {
		t.Fatalf("the uploaded file: %+v, %v", o, err)
	}
	for _, c := range []struct{ body, want string }{
		{`{"input_files":["f-mine","f-other"],"endpoint":"/v1/chat/completions","model":"m"}`, `404 {"object":"error","message":"File f-other not found","type":"not_found_error","param":null,"code":null}`},
		{`{"input_files":["f-new"],"agent_id":"a-other","endpoint":"/v1/chat/completions"}`, `404 {"object":"error","message":"Agent a-other not found","type":"not_found_error","param":null,"code":null}`},
		// The upstream reads input_files; a field spelt in another case must
		// not be what Steward checks instead.
		{`{"input_files":["f-other"],"INPUT_FILES":["f-mine"],"endpoint":"/v1/chat/completions"}`, `404 {"object":"error","message":"File f-other not found","type":"not_found_error","param":null,"code":null}`},
		{`{"input_files":"f-mine","endpoint":"/v1/chat/completions"}`, `422 {"detail":[{"loc":["body","input_files"],"msg":"input_files is not of the right type","type":"value_error"}]}`},
		{`{"input_files":["f-mine","f-new"],"endpoint":"/v1/chat/completions","model":"m"}`, `200 {"id":"j-new","object":"batch"}`},
	} {
		lastBody = ""
		resp := h.do(t, "POST", "/v1/batch/jobs", goodKey, strings.NewReader(c.body), http.Header{"Content-Type": {"application/json"}})
		if got := resp.Status[:3] + " " + readAll(t, resp); got != c.want {
			t.Errorf("batch job %s: %s, want %s", c.body, got, c.want)
		}
		if forwarded := lastBody == c.body; forwarded != strings.HasPrefix(c.want, "200") {
			t.Errorf("batch job %s: the upstream got %q", c.body, lastBody)
		}
	}
	if _, err := h.g.objects.Find(context.Background(), inference.ObjectBatchJob, "j-new"); err != nil {
		t.Fatalf("the batch job created: %v", err)
	}
	resp = h.do(t, "DELETE", "/v1/files/f-new", goodKey, nil, nil)
	if body := readAll(t, resp); resp.StatusCode != 200 {
		t.Fatalf("delete: %d %s", resp.StatusCode, body)
	}
	if _, err := h.g.objects.Find(context.Background(), inference.ObjectFile, "f-new"); err == nil {
		t.Fatal("a deleted file is still recorded")
	}
	resp = h.do(t, "GET", "/v1/audio/voices/v-preset", otherOrgKey, nil, nil)
	if body := readAll(t, resp); resp.StatusCode != 200 {
		t.Fatalf("a preset voice for another Organization: %d %s", resp.StatusCode, body)
	}
}

// A creation whose client goes away before the upstream answers is still
// recorded as the client's Workspace's: the upstream made the object.
func TestCreationOutlivesItsClient(t *testing.T) {
	arrived := make(chan struct{})
	answered := make(chan struct{})
	h := newForwardHarness(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		close(arrived)
		time.Sleep(200 * time.Millisecond)
		_, _ = io.WriteString(w, `{"id":"ag-late","object":"agent"}`)
		close(answered)
	}), Timeouts{Header: 5 * time.Second, Idle: 5 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-arrived
		cancel()
	}()
	req, _ := http.NewRequestWithContext(ctx, "POST", h.srv.URL+"/v1/agents", strings.NewReader(`{"model":"m","name":"a"}`))
	req.Header.Set("Authorization", "Bearer "+goodKey)
	if resp, err := h.srv.Client().Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("the client's request was not cut")
	}
	<-answered
	deadline := time.Now().Add(5 * time.Second)
	for {
		o, err := h.g.objects.Find(context.Background(), inference.ObjectAgent, "ag-late")
		if err == nil {
			if o.WorkspaceID != testKey.WorkspaceID {
				t.Fatalf("recorded as %+v", o)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the agent created after its client went away was not recorded: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// An agent may hand off only to its Workspace's agents and search only
// its Workspace's libraries, whether it is created or changed: otherwise
// it would read another Workspace's documents. Fields are read by their
// exact names, as the upstream reads them.
func TestAgentsReferOnlyToTheirWorkspace(t *testing.T) {
	var got []string
	h := newForwardHarness(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = append(got, string(b))
		_, _ = io.WriteString(w, `{"id":"ag-new","object":"agent"}`)
	}), Timeouts{Header: time.Second, Idle: time.Second})
	h.own(t, inference.ObjectLibrary, "lib-mine")
	h.own(t, inference.ObjectAgent, "ag-mine")
	_ = h.g.objects.Record(context.Background(), inference.Object{Kind: inference.ObjectLibrary, ID: "lib-other", OrganizationID: "org1", WorkspaceID: "ws2"})
	notFound := func(kind, id string) string {
		return `404 {"object":"error","message":"` + kind + " " + id + ` not found","type":"not_found_error","param":null,"code":null}`
	}
	for _, c := range []struct{ method, path, body, want string }{
		{"POST", "/v1/agents", `{"model":"m","name":"a","tools":[{"type":"document_library","library_ids":["lib-mine","lib-other"]}]}`, notFound("Library", "lib-other")},
		{"POST", "/v1/agents", `{"model":"m","name":"a","handoffs":["ag-mine","ag-unknown"]}`, notFound("Agent", "ag-unknown")},
		{"PATCH", "/v1/agents/ag-mine", `{"tools":[{"type":"document_library","library_ids":["lib-other"]},{"type":"web_search"}]}`, notFound("Library", "lib-other")},
		{"PATCH", "/v1/agents/ag-mine", `{"Tools":[],"tools":[{"type":"document_library","library_ids":["lib-other"],"Library_Ids":["lib-mine"]}]}`, notFound("Library", "lib-other")},
		{"POST", "/v1/agents", `{"model":"m","name":"a","tools":{"type":"web_search"}}`, `422 {"detail":[{"loc":["body","tools"],"msg":"tools is not of the right type","type":"value_error"}]}`},
		{"POST", "/v1/agents", `{"model":"m","name":"a","handoffs":["ag-mine"],"tools":[{"type":"document_library","library_ids":["lib-mine"]}]}`, `200 {"id":"ag-new","object":"agent"}`},
	} {
		got = nil
		resp := h.do(t, c.method, c.path, goodKey, strings.NewReader(c.body), http.Header{"Content-Type": {"application/json"}})
		if answer := resp.Status[:3] + " " + readAll(t, resp); answer != c.want {
			t.Errorf("%s %s %s: %s, want %s", c.method, c.path, c.body, answer, c.want)
		}
		if forwarded := len(got) == 1 && got[0] == c.body; forwarded != strings.HasPrefix(c.want, "200") {
			t.Errorf("%s %s %s: the upstream got %q", c.method, c.path, c.body, got)
		}
	}
}

// A metered request may name only its Workspace's agent; an append or a
// restart only its Workspace's conversation, and the conversation a start
// makes is its Workspace's: nothing else reaches the upstream.
func TestMeteredRequestsNameOnlyTheirWorkspacesObjects(t *testing.T) {
	h, up, _ := agentGateway(t)
	_ = h.g.objects.Record(context.Background(), inference.Object{Kind: inference.ObjectAgent, ID: "ag-other", OrganizationID: "org1", WorkspaceID: "ws2"})
	for _, c := range []struct{ path, body, want string }{
		{"/v1/agents/completions", `{"agent_id":"ag-other","messages":[{"role":"user","content":"hi"}]}`, "Agent ag-other not found"},
		{"/v1/conversations", `{"agent_id":"ag-other","inputs":"hi"}`, "Agent ag-other not found"},
		{"/v1/conversations/conv-unknown", `{"inputs":"hi"}`, "Conversation conv-unknown not found"},
		{"/v1/conversations/conv-unknown/restart", `{"inputs":"hi","from_entry_id":"e"}`, "Conversation conv-unknown not found"},
	} {
		resp := h.post(t, context.Background(), c.path, goodKey, c.body)
		want := `{"object":"error","message":"` + c.want + `","type":"not_found_error","param":null,"code":null}`
		if got := readAll(t, resp); resp.StatusCode != http.StatusNotFound || got != want {
			t.Errorf("%s %s: %d %s, want 404 %s", c.path, c.body, resp.StatusCode, got, want)
		}
	}
	if n := up.Count("agents_completion_v1_agents_completions_post") + up.Count("agents_api_v1_conversations_start") +
		up.Count("agents_api_v1_conversations_append") + up.Count("agents_api_v1_conversations_restart"); n != 0 || len(h.limits.res) != 0 {
		t.Fatalf("refused requests reached the upstream (%d) or were reserved (%d)", n, len(h.limits.res))
	}
	resp := h.post(t, context.Background(), "/v1/conversations", goodKey, `{"model":"mistral-medium-latest","inputs":"ahoy","stream":true}`)
	body := readAll(t, resp)
	m := conversationIDRE.FindStringSubmatch(body)
	if resp.StatusCode != 200 || m == nil {
		t.Fatalf("a streamed start: %d %s", resp.StatusCode, body)
	}
	if o, err := h.g.objects.Find(context.Background(), inference.ObjectConversation, m[1]); err != nil || o.WorkspaceID != testKey.WorkspaceID {
		t.Fatalf("the conversation a streamed start made: %+v, %v", o, err)
	}
}

// TestFileChunksAreTheirWorkspaces sends requests that hand files to the
// model: another Workspace's file, named by a chat message's file chunk
// with or without its type, an agents completion's, a conversation's
// input or an OCR document, is answered as an unknown file and never
// reaches the upstream; the caller's own file, and a tool's file (the
// upstream's), pass.
func TestFileChunksAreTheirWorkspaces(t *testing.T) {
	h, up, agent := agentGateway(t)
	h.own(t, inference.ObjectFile, "file-mine")
	_ = h.g.objects.Record(context.Background(), inference.Object{Kind: inference.ObjectFile, ID: "file-other", OrganizationID: "org1", WorkspaceID: "ws2"})
	const otherFile = `{"object":"error","message":"File file-other not found","type":"not_found_error","param":null,"code":null}`
	chat := func(content string) string {
		return `{"model":"mistral-medium-latest","messages":[{"role":"user","content":` + content + `}]}`
	}
	for _, c := range []struct{ path, body string }{
		{"/v1/chat/completions", chat(`[{"type":"text","text":"read this"},{"type":"file","file_id":"file-other"}]`)},
		{"/v1/chat/completions", chat(`[{"file_id":"file-other"}]`)},
		{"/v1/chat/completions", chat(`[{"type":"file","file_id":"file-mine"},{"type":"file","file_id":"file-other"}]`)},
		{"/v1/agents/completions", `{"agent_id":"` + agent + `","messages":[{"role":"user","content":[{"type":"file","file_id":"file-other"}]}]}`},
		{"/v1/conversations", `{"agent_id":"` + agent + `","inputs":[{"role":"user","content":[{"type":"file","file_id":"file-other"}]}]}`},
		{"/v1/ocr", `{"model":"mistral-medium-latest","document":{"type":"file","file_id":"file-other"}}`},
	} {
		resp := h.post(t, context.Background(), c.path, goodKey, c.body)
		if got := readAll(t, resp); resp.StatusCode != http.StatusNotFound || got != otherFile {
			t.Errorf("%s %s: %d %s, want 404 %s", c.path, c.body, resp.StatusCode, got, otherFile)
		}
	}
	ops := []string{"chat_completion_v1_chat_completions_post", "agents_completion_v1_agents_completions_post", "agents_api_v1_conversations_start", "ocr_v1_ocr_post"}
	for _, op := range ops {
		if n := up.Count(op); n != 0 {
			t.Fatalf("%d refused requests reached the upstream's %s", n, op)
		}
	}
	for i, content := range []string{
		`[{"type":"file","file_id":"file-mine"}]`,
		`[{"type":"tool_file","tool":"code_interpreter","file_id":"file-other"}]`,
		`"no file_id here but the words"`,
	} {
		resp := h.post(t, context.Background(), "/v1/chat/completions", goodKey, chat(content))
		got := readAll(t, resp)
		if resp.StatusCode != http.StatusOK || !strings.Contains(got, `"object":"chat.completion"`) {
			t.Errorf("%s: %d %s, want the upstream's completion", content, resp.StatusCode, got)
		}
		apitest.CheckModelResponse(t, ops[0], resp.StatusCode, resp.Header.Get("Content-Type"), []byte(got))
		if n := up.Count(ops[0]); n != i+1 {
			t.Errorf("%s: the upstream had %d chat requests, want %d", content, n, i+1)
		}
	}
}

// A forwarded request names no model, but counts in the request rates:
// it is reserved as a request of no model and nothing, settled once, and
// carries its limits' headers over the upstream's; refused, it is
// answered Mistral's 429 and not forwarded.
func TestForwardCountsInTheRequestRates(t *testing.T) {
	calls := 0
	h := newForwardHarness(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		calls++
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Ratelimit-Remaining-Tokens", "the company's")
		_, _ = io.WriteString(w, `{"object":"list","data":[],"total":0}`)
	}), Timeouts{Header: time.Second, Idle: time.Second})
	resp := h.do(t, "GET", "/v1/files", goodKey, nil, nil)
	if body := readAll(t, resp); resp.StatusCode != 200 || body != `{"data":[],"object":"list","total":0}` || resp.Header.Get("X-Ratelimit-Remaining-Tokens") != "1000" {
		t.Fatalf("a file list: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	// The ticket is settled as the handler returns, which may be after the
	// client has read the answer.
	r := h.limits.only(t)
	for deadline := time.Now().Add(5 * time.Second); r.settles == 0 && time.Now().Before(deadline); r = h.limits.only(t) {
		time.Sleep(time.Millisecond)
	}
	if r.model != "" || r.prompt != 0 || r.maxOut != 0 || r.pages != 0 || r.settles != 1 || r.settledIn != 0 {
		t.Fatalf("reservation %+v, want one of no model and nothing, settled once", r)
	}
	h.limits.refuse = &inference.Refusal{
		Err:        &steward.Error{Kind: steward.KindRateLimited, Code: "rate_limit_exceeded", Message: "this request would exceed the requests per second of its Workspace"},
		RetryAfter: time.Second,
	}
	resp = h.do(t, "GET", "/v1/files", goodKey, nil, nil)
	want := `{"object":"error","message":"this request would exceed the requests per second of its Workspace","type":"rate_limit_error","param":null,"code":"rate_limit_exceeded"}`
	if body := strings.TrimSpace(readAll(t, resp)); resp.StatusCode != 429 || body != want || resp.Header.Get("Retry-After") != "1" || calls != 1 {
		t.Fatalf("a refused file list: %d %v %s (%d upstream calls), want 429 %s", resp.StatusCode, resp.Header, body, calls, want)
	}
}

// batchAuth is workspaceAuth with listAuth's key that may call model m
// only.
type batchAuth struct{ workspaceAuth }

func (a batchAuth) WorkspaceKey(r *http.Request) (steward.Principal, error) {
	if r.Header.Get("Authorization") == "Bearer "+onlyMKey {
		return listAuth{}.WorkspaceKey(r)
	}
	return a.workspaceAuth.WorkspaceKey(r)
}

// The lines of a batch job's input files are read from the upstream and
// checked as its inline requests are: a line naming another Workspace's
// agent or file, or a model the key may not call, is answered as the
// unknown object or model; a line that is not a JSON object, or longer
// than a request body, is refused; a file the upstream does not send
// whole, or in time, is a 502 or a 504; and nothing is forwarded.
func TestBatchInputFileLines(t *testing.T) {
	chat := func(extra string) string {
		return `{"custom_id":"1","body":{` + extra + `"messages":[{"role":"user","content":"hi"}]}}` + "\n"
	}
	fileChunk := func(id string) string {
		return `{"custom_id":"2","body":{"messages":[{"role":"user","content":[{"type":"file","file_id":"` + id + `"}]}]}}` + "\n"
	}
	contents := map[string]string{
		"f-good":        chat(`"agent_id":"a-mine","model":"m",`) + "\n" + fileChunk("f-mine") + chat(""),
		"f-other-file":  chat("") + fileChunk("f-other"),
		"f-other-agent": chat(`"agent_id":"a-other",`),
		"f-large-model": chat(`"model":"m",`) + chat(`"model":"mistral-large",`),
		"f-nan":         chat("") + `{"custom_id":"2","body":{"model":"mistral-large","temperature":NaN}}` + "\n",
		"f-text-body":   `{"custom_id":"1","body":"hi"}`,
		"f-agent-type":  chat(`"agent_id":5,`),
		"f-model-type":  chat(`"model":["mistral-large"],`),
		"f-repeated":    strings.Repeat(chat(`"agent_id":"a-repeated",`)+fileChunk("f-repeated-chunk"), 50),
		"f-long":        chat(`"stop":"` + strings.Repeat("x", maxJSONBytes) + `",`),
		"f-broken":      "",
		"f-dropped":     "",
		"f-cut":         chat(""),
		"f-stalls":      chat(""),
	}
	var forwarded []string
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id, ok := strings.CutSuffix(strings.TrimPrefix(r.URL.Path, "/v1/files/"), "/content"); ok && r.Method == "GET" {
			content, ok := contents[id]
			switch {
			case !ok:
				http.Error(w, `{"detail":"not found"}`, http.StatusNotFound)
			case id == "f-broken":
				http.Error(w, `{"detail":"boom"}`, http.StatusInternalServerError)
			case id == "f-dropped":
				// The connection closes before any answer.
				conn, _, _ := w.(http.Hijacker).Hijack()
				conn.Close()
			case id == "f-cut":
				// The answer ends before the length it announced.
				w.Header().Set("Content-Length", strconv.Itoa(len(content)+100))
				_, _ = io.WriteString(w, content)
			case id == "f-stalls":
				// A line, then silence past the idle timeout.
				_, _ = io.WriteString(w, content)
				w.(http.Flusher).Flush()
				<-release
			default:
				_, _ = io.WriteString(w, content)
			}
			return
		}
		b, _ := io.ReadAll(r.Body)
		forwarded = append(forwarded, r.Method+" "+r.URL.Path+" "+string(b))
		_, _ = io.WriteString(w, `{"id":"j-new","object":"batch"}`)
	}))
	t.Cleanup(up.Close)
	t.Cleanup(func() { close(release) })
	objects := newMemObjects()
	h := newHarnessAuth(t, Config{Upstream: &Upstream{BaseURL: up.URL + "/v1"}, Objects: objects,
		Timeouts: map[string]Timeouts{GroupBatchJobs: {Header: time.Second, Idle: 500 * time.Millisecond}}}, batchAuth{})
	h.own(t, inference.ObjectAgent, "a-mine")
	h.own(t, inference.ObjectAgent, "a-repeated")
	for _, id := range []string{"f-mine", "f-repeated-chunk", "f-gone", "f-good", "f-other-file", "f-other-agent", "f-large-model", "f-nan", "f-text-body",
		"f-agent-type", "f-model-type", "f-repeated", "f-long", "f-broken", "f-dropped", "f-cut", "f-stalls"} {
		h.own(t, inference.ObjectFile, id)
	}
	_ = h.g.objects.Record(context.Background(), inference.Object{Kind: inference.ObjectAgent, ID: "a-other", OrganizationID: "org1", WorkspaceID: "ws2"})
	_ = h.g.objects.Record(context.Background(), inference.Object{Kind: inference.ObjectFile, ID: "f-other", OrganizationID: "org1", WorkspaceID: "ws2"})
	job := func(files ...string) string {
		return `{"endpoint":"/v1/chat/completions","model":"m","input_files":["` + strings.Join(files, `","`) + `"]}`
	}
	invalid := func(i int, msg string) string {
		return `422 {"detail":[{"loc":["body","input_files","` + strconv.Itoa(i) + `"],"msg":"` + msg + `","type":"value_error"}]}`
	}
	for _, c := range []struct{ key, body, want string }{
		{onlyMKey, job("f-good"), `200 {"id":"j-new","object":"batch"}`},
		{goodKey, job("f-good", "f-other-file"), `404 {"object":"error","message":"File f-other not found","type":"not_found_error","param":null,"code":null}`},
		{goodKey, job("f-other-agent"), `404 {"object":"error","message":"Agent a-other not found","type":"not_found_error","param":null,"code":null}`},
		{onlyMKey, job("f-large-model"), `404 {"object":"error","message":"model \"mistral-large\" does not exist","type":"not_found_error","param":"model","code":"model_not_found"}`},
		{goodKey, job("f-good", "f-nan"), invalid(1, "line 2 of input file f-nan is not a JSON object with an object body whose agent_id and model are strings")},
		{goodKey, job("f-text-body"), invalid(0, "line 1 of input file f-text-body is not a JSON object with an object body whose agent_id and model are strings")},
		{goodKey, job("f-agent-type"), invalid(0, "line 1 of input file f-agent-type is not a JSON object with an object body whose agent_id and model are strings")},
		{goodKey, job("f-model-type"), invalid(0, "line 1 of input file f-model-type is not a JSON object with an object body whose agent_id and model are strings")},
		{goodKey, job("f-repeated"), `200 {"id":"j-new","object":"batch"}`},
		{goodKey, job("f-long"), invalid(0, "line 1 of input file f-long exceeds 4194304 bytes")},
		{goodKey, job("f-gone"), `404 {"object":"error","message":"File f-gone not found","type":"not_found_error","param":null,"code":null}`},
		{goodKey, job("f-broken"), `502 {"object":"error","message":"the upstream could not send input file f-broken","type":"server_error","param":null,"code":"upstream_unavailable"}`},
		{goodKey, job("f-good", "f-dropped"), `502 {"object":"error","message":"the upstream could not send input file f-dropped","type":"server_error","param":null,"code":"upstream_unavailable"}`},
		{goodKey, job("f-cut"), `502 {"object":"error","message":"the upstream could not send input file f-cut","type":"server_error","param":null,"code":"upstream_unavailable"}`},
		{goodKey, job("f-stalls"), `504 {"object":"error","message":"the upstream did not send input file f-stalls in time","type":"server_error","param":null,"code":"upstream_timeout"}`},
	} {
		forwarded = nil
		resp := h.do(t, "POST", "/v1/batch/jobs", c.key, strings.NewReader(c.body), http.Header{"Content-Type": {"application/json"}})
		if got := resp.Status[:3] + " " + strings.TrimSpace(readAll(t, resp)); got != c.want {
			t.Errorf("batch job %s: %s, want %s", c.body, got, c.want)
		}
		if ok := len(forwarded) == 1 && forwarded[0] == "POST /v1/batch/jobs "+c.body; ok != strings.HasPrefix(c.want, "200") {
			t.Errorf("batch job %s: the upstream got %q", c.body, forwarded)
		}
	}
	// The 50 lines of f-repeated that name one agent and one file cost one
	// lookup of each.
	for _, o := range [][2]string{{inference.ObjectAgent, "a-repeated"}, {inference.ObjectFile, "f-repeated-chunk"}} {
		if n := objects.finds[o]; n != 1 {
			t.Errorf("%s %s was looked up %d times for the lines of one job, want once", o[0], o[1], n)
		}
	}
}

// A batch job's inline requests may name, in their bodies, only an agent
// and files of the caller's Workspace and a model the key may call, as
// the job itself: otherwise they are answered as the unknown agent, file
// or model, and nothing is forwarded. Nor is a body that is not JSON.
func TestInlineBatchRequests(t *testing.T) {
	var forwarded []string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		forwarded = append(forwarded, string(b))
		_, _ = io.WriteString(w, `{"id":"j-new","object":"batch"}`)
	}))
	t.Cleanup(up.Close)
	h := newHarnessAuth(t, Config{Upstream: &Upstream{BaseURL: up.URL + "/v1"}, Objects: newMemObjects()}, batchAuth{})
	h.own(t, inference.ObjectAgent, "a-mine")
	h.own(t, inference.ObjectFile, "f-mine")
	_ = h.g.objects.Record(context.Background(), inference.Object{Kind: inference.ObjectAgent, ID: "a-other", OrganizationID: "org1", WorkspaceID: "ws2"})
	_ = h.g.objects.Record(context.Background(), inference.Object{Kind: inference.ObjectFile, ID: "f-other", OrganizationID: "org1", WorkspaceID: "ws2"})
	notFound := func(kind, id string) string {
		return `404 {"object":"error","message":"` + kind + " " + id + ` not found","type":"not_found_error","param":null,"code":null}`
	}
	noModel := func(name string) string {
		return `404 {"object":"error","message":"model \"` + name + `\" does not exist","type":"not_found_error","param":"model","code":"model_not_found"}`
	}
	chat := func(extra string) string {
		return `{"custom_id":"1","body":{` + extra + `"messages":[{"role":"user","content":"hi"}]}}`
	}
	fileChunk := func(id string) string {
		return `{"custom_id":"2","body":{"messages":[{"role":"user","content":[{"type":"file","file_id":"` + id + `"}]}]}}`
	}
	for _, c := range []struct{ key, body, want string }{
		{goodKey, `{"endpoint":"/v1/agents/completions","requests":[` + chat(`"agent_id":"a-mine",`) + `,` + chat(`"agent_id":"a-other",`) + `]}`, notFound("Agent", "a-other")},
		{goodKey, `{"endpoint":"/v1/agents/completions","agent_id":"a-other","requests":[` + chat("") + `]}`, notFound("Agent", "a-other")},
		{goodKey, `{"endpoint":"/v1/chat/completions","model":"m","requests":[` + fileChunk("f-mine") + `,` + fileChunk("f-other") + `]}`, notFound("File", "f-other")},
		{onlyMKey, `{"endpoint":"/v1/chat/completions","model":"m","requests":[` + chat(`"model":"m",`) + `,` + chat(`"model":"mistral-large",`) + `]}`, noModel("mistral-large")},
		{onlyMKey, `{"endpoint":"/v1/chat/completions","model":"mistral-large","requests":[` + chat("") + `]}`, noModel("mistral-large")},
		{goodKey, `{"endpoint":"/v1/chat/completions","requests":[{"custom_id":"1","body":"hi"}]}`, `422 {"detail":[{"loc":["body","body"],"msg":"body is not of the right type","type":"value_error"}]}`},
		{goodKey, `{"endpoint":"/v1/chat/completions","requests":{"custom_id":"1"}}`, `422 {"detail":[{"loc":["body","requests"],"msg":"requests is not of the right type","type":"value_error"}]}`},
		// Go refuses NaN, which another parser may read: not forwarded.
		{goodKey, `{"endpoint":"/v1/chat/completions","model":"m","input_files":["f-other"],"metadata":{"x":NaN}}`, `422 {"detail":[{"loc":["body"],"msg":"the body must be a JSON object","type":"value_error"}]}`},
		{onlyMKey, `{"endpoint":"/v1/agents/completions","requests":[` + chat(`"agent_id":"a-mine","model":"m",`) + `,` + fileChunk("f-mine") + `]}`, `200 {"id":"j-new","object":"batch"}`},
	} {
		forwarded = nil
		resp := h.do(t, "POST", "/v1/batch/jobs", c.key, strings.NewReader(c.body), http.Header{"Content-Type": {"application/json"}})
		if got := resp.Status[:3] + " " + strings.TrimSpace(readAll(t, resp)); got != c.want {
			t.Errorf("batch job %s: %s, want %s", c.body, got, c.want)
		}
		if ok := len(forwarded) == 1 && forwarded[0] == c.body; ok != strings.HasPrefix(c.want, "200") {
			t.Errorf("batch job %s: the upstream got %q", c.body, forwarded)
		}
	}
}
