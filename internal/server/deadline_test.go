package server_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/inference"
	"github.com/stewardhq/steward/internal/server"
	"github.com/stewardhq/steward/internal/store/storetest"
)

// The body's deadline must end with the body: a model's answer, streamed
// or not, takes far longer than its prompt took to arrive. net/http lifts
// a connection's read deadline once a body has been read to its end, which
// withBodyDeadline relies on.
func TestBodyDeadlineEndsWithTheBody(t *testing.T) {
	const timeout = 100 * time.Millisecond
	db, _ := storetest.OpenSQLite(t)
	h := newHarnessWith(t, db, func(d *server.Deps) {
		d.BodyTimeout, d.ModelBodyTimeout = timeout, timeout
		d.Gateway = []inference.Route{{Pattern: "POST /v1/chat/completions", OwnsBody: true, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, err := io.ReadAll(r.Body); err != nil {
				http.Error(w, "body: "+err.Error(), http.StatusBadRequest)
				return
			}
			select {
			case <-time.After(5 * timeout):
				_, _ = io.WriteString(w, "answered after the body's deadline")
			case <-r.Context().Done():
				// The client sees the connection end instead of an answer.
			}
		})}}
	})
	resp, err := h.http.Client().Post(h.http.URL+"/v1/chat/completions", "application/json", strings.NewReader(`{"model":"m"}`))
	if err != nil {
		t.Fatalf("a request answered after its body's deadline: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || string(body) != "answered after the body's deadline" {
		t.Fatalf("a request answered after its body's deadline: %d %s", resp.StatusCode, body)
	}
}

// readingPages reads a body to its end and says whether it could: the web
// pages, as far as withBodyDeadline is concerned.
type readingPages struct{}

func (readingPages) Patterns() []string { return nil }

func (readingPages) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, err := io.ReadAll(r.Body); err != nil {
		http.Error(w, "body: "+err.Error(), http.StatusBadRequest)
		return
	}
	_, _ = io.WriteString(w, "read")
}

// A prompt may take ModelBodyTimeout to arrive; any other body is cut at
// BodyTimeout.
func TestModelBodiesHaveTheirOwnDeadline(t *testing.T) {
	const short = 100 * time.Millisecond
	db, _ := storetest.OpenSQLite(t)
	h := newHarnessWith(t, db, func(d *server.Deps) {
		d.BodyTimeout, d.ModelBodyTimeout = short, time.Minute
		d.Gateway = []inference.Route{{Pattern: "POST /v1/chat/completions", OwnsBody: true, Handler: readingPages{}}}
		d.Web = readingPages{}
	})
	for path, read := range map[string]bool{"/v1/chat/completions": true, "/web/signin": false} {
		body, w := io.Pipe()
		go func() {
			_, _ = io.WriteString(w, `{"model":`)
			time.Sleep(4 * short)
			_, _ = io.WriteString(w, `"m"}`)
			_ = w.Close()
		}()
		resp, err := h.http.Client().Post(h.http.URL+path, "application/json", body)
		got := "no answer: " + fmt.Sprint(err)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			got = fmt.Sprintf("%d %s", resp.StatusCode, b)
		}
		if (got == "200 read") != read {
			t.Errorf("%s, a body sent over %s with a %s body timeout: %s; want it read: %v", path, 4*short, short, got, read)
		}
	}
}
