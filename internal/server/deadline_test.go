package server_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

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
		d.Gateway = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
		})
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
