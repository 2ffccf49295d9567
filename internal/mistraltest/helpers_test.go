package mistraltest

import (
	"bytes"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
)

// response is an answer of the fake, its body read.
type response struct {
	status      int
	contentType string
	header      http.Header
	body        []byte
}

// object decodes the answer as a JSON object.
func (r response) object(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("answer %d %s is not a JSON object: %v", r.status, r.body, err)
	}
	return m
}

// list decodes the answer as a JSON array of objects.
func (r response) list(t *testing.T) []map[string]any {
	t.Helper()
	var l []map[string]any
	if err := json.Unmarshal(r.body, &l); err != nil {
		t.Fatalf("answer %d %s is not a JSON array: %v", r.status, r.body, err)
	}
	return l
}

// want fails the test unless the answer has the status.
func (r response) want(t *testing.T, status int) response {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	return r
}

// send sends a request with key as its bearer token ("" for none).
func send(t *testing.T, s *Server, key, method, path string, body io.Reader, contentType string) response {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, contentType: resp.Header.Get("Content-Type"), header: resp.Header, body: b}
}

// call sends a request with the server's key and, unless body is nil, a
// JSON body.
func (s *Server) call(t *testing.T, method, path string, body any) response {
	t.Helper()
	if body == nil {
		return send(t, s, s.Key, method, path, nil, "")
	}
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	return send(t, s, s.Key, method, path, bytes.NewReader(b), "application/json")
}

// multipartForm is a multipart body with fields and, when name is not empty, a
// file part.
func multipartForm(t *testing.T, fields map[string]string, name string, content []byte) (io.Reader, string) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for k, v := range fields {
		if err := w.WriteField(k, v); err != nil {
			t.Fatal(err)
		}
	}
	if name != "" {
		part, err := w.CreateFormFile("file", name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := part.Write(content); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf, w.FormDataContentType()
}

// upload uploads a file and returns its id.
func (s *Server) upload(t *testing.T, name, purpose string, content []byte) string {
	t.Helper()
	body, ct := multipartForm(t, map[string]string{"purpose": purpose}, name, content)
	return str(t, send(t, s, s.Key, "POST", "/v1/files", body, ct).want(t, 200).object(t), "id")
}

// str returns the string member key of m.
func str(t *testing.T, m map[string]any, key string) string {
	t.Helper()
	v, ok := m[key].(string)
	if !ok {
		t.Fatalf("%s is %v in %v, want a string", key, m[key], m)
	}
	return v
}

// num returns the number member key of m as an int.
func num(t *testing.T, m map[string]any, key string) int {
	t.Helper()
	v, ok := m[key].(float64)
	if !ok {
		t.Fatalf("%s is %v in %v, want a number", key, m[key], m)
	}
	return int(v)
}

// wantError checks that an answer is Mistral's error object of the type,
// its message holding each of wants.
func wantError(t *testing.T, r response, status int, typ string, wants ...string) {
	t.Helper()
	r.want(t, status)
	var e struct {
		Object  *string `json:"object"`
		Message string  `json:"message"`
		Type    string  `json:"type"`
	}
	if err := json.Unmarshal(r.body, &e); err != nil || e.Object == nil || *e.Object != "error" || e.Type != typ {
		t.Fatalf("error body %s, want Mistral's error object of type %s", r.body, typ)
	}
	for _, w := range wants {
		if !strings.Contains(e.Message, w) {
			t.Errorf("error message %q does not say %q", e.Message, w)
		}
	}
}

// wantDetail checks that an answer is FastAPI's 422 naming the field.
func wantDetail(t *testing.T, r response, field string) {
	t.Helper()
	r.want(t, http.StatusUnprocessableEntity)
	var v struct {
		Detail []struct {
			Loc []any  `json:"loc"`
			Msg string `json:"msg"`
		} `json:"detail"`
	}
	if err := json.Unmarshal(r.body, &v); err != nil || len(v.Detail) == 0 {
		t.Fatalf("422 body %s, want FastAPI's detail", r.body)
	}
	if loc := v.Detail[0].Loc; len(loc) == 0 || loc[len(loc)-1] != field {
		t.Fatalf("422 body %s, want it to name %s", r.body, field)
	}
}

// sseEvent is one event of a stream.
type sseEvent struct {
	name string
	data string
}

// parseEvents splits a stream's body into its events.
func parseEvents(t *testing.T, body []byte) []sseEvent {
	t.Helper()
	var out []sseEvent
	for _, block := range strings.Split(strings.TrimSuffix(string(body), "\n\n"), "\n\n") {
		var e sseEvent
		for _, line := range strings.Split(block, "\n") {
			switch field, value, _ := strings.Cut(line, ": "); field {
			case "event":
				e.name = value
			case "data":
				e.data = value
			default:
				t.Fatalf("stream line %q is neither event nor data: %s", line, body)
			}
		}
		out = append(out, e)
	}
	return out
}

// decode decodes an event's data.
func (e sseEvent) decode(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(e.data), &m); err != nil {
		t.Fatalf("event %s data %q is not a JSON object", e.name, e.data)
	}
	return m
}
