package gateway

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
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
	return newHarness(t, Config{Upstream: &Upstream{BaseURL: srv.URL + "/v1/", APIKey: upstreamKey}, Timeouts: tos})
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
	resp := h.do(t, "PATCH", "/v1/agents/ag%2F1?agent_version=2&x=a+b", goodKey, strings.NewReader(`{"name":"n"}`), http.Header{
		"Content-Type": {"application/json"}, "User-Agent": {"mistral-client-typescript/1.0"}, "X-Api-Key": {"stwk_leak"},
		"Cookie": {"s=1"}, "X-Request-Id": {"req-abc"}})
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
		"X-Api-Key": "", "Cookie": "", "X-Request-Id": "req-abc"}
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
		_, _ = io.WriteString(w, `{"bytes":`+strconv.FormatInt(int64(n)+m, 10)+`,"sha256":"`+hex.EncodeToString(sum.Sum(nil))+`","ct":"`+strings.Split(r.Header.Get("Content-Type"), ";")[0]+`"}`)
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
	h = newHarness(t, Config{Upstream: &Upstream{BaseURL: down.URL + "/v1"}})
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
