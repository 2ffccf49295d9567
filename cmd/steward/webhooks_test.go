package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/stewardhq/steward/internal/store/storetest"
)

// hookReceiver is a webhook endpoint on loopback that verifies every
// request with the Standard Webhooks reference library; hold, while set,
// makes it wait before answering.
type hookReceiver struct {
	*httptest.Server
	mu     sync.Mutex
	secret string
	ids    []string
	bodies []string
	hold   chan struct{}
	held   chan struct{}
}

func newHookReceiver(t *testing.T) *hookReceiver {
	rc := &hookReceiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		wh, err := standardwebhooks.NewWebhook(rc.secret)
		if err == nil {
			err = wh.Verify(body, r.Header)
		}
		if err != nil {
			t.Errorf("webhook %s not verified: %v", r.Header.Get("webhook-id"), err)
		}
		rc.ids = append(rc.ids, r.Header.Get("webhook-id"))
		rc.bodies = append(rc.bodies, string(body))
		hold, held := rc.hold, rc.held
		rc.hold = nil
		rc.mu.Unlock()
		if hold != nil {
			close(held)
			<-hold
		}
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *hookReceiver) received() ([]string, []string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]string(nil), rc.ids...), append([]string(nil), rc.bodies...)
}

// createHook registers rc for the events through p and keeps its secret.
func (rc *hookReceiver) createHook(t *testing.T, p *process, admin string, events ...string) string {
	t.Helper()
	ev, _ := json.Marshal(events)
	status, body := p.call(t, "POST", "/v1/admin/webhooks", admin, fmt.Sprintf(`{"url":%q,"events":%s}`, rc.URL+"/hook", ev))
	var hook struct{ ID, Secret string }
	if err := json.Unmarshal([]byte(body), &hook); status != 200 || err != nil || hook.Secret == "" {
		t.Fatalf("create webhook: %d %s", status, body)
	}
	rc.mu.Lock()
	rc.secret = hook.Secret
	rc.mu.Unlock()
	return hook.ID
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 30s for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A process killed with SIGKILL while it delivers a webhook loses nothing:
// the next process makes the delivery, with the same webhook-id, once the
// dead one's claim has expired.
func TestWebhookDeliveredAfterKillNine(t *testing.T) {
	t.Setenv("STEWARD_WEBHOOKS_LEASE", "2s")
	engines(t, func(t *testing.T, db []string) {
		args := append([]string{"--webhooks-allow-private"}, db...)
		p := start(t, args...)
		admin := adminKey.FindStringSubmatch(p.output)[1]
		rc := newHookReceiver(t)
		hookID := rc.createHook(t, p, admin, "user.*")
		release := make(chan struct{})
		rc.mu.Lock()
		rc.hold, rc.held = release, make(chan struct{})
		held := rc.held
		rc.mu.Unlock()
		if status, body := p.call(t, "POST", "/v1/admin/users", admin, `[{"email":"hooked@example.com","first_name":"Hooked","last_name":"User"}]`); status != 200 {
			t.Fatalf("create user: %d %s", status, body)
		}
		select {
		case <-held:
		case <-time.After(30 * time.Second):
			t.Fatal("no delivery began within 30s")
		}
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = p.cmd.Wait()
		close(release)

		q := start(t, args...)
		waitFor(t, "the delivery again", func() bool { ids, _ := rc.received(); return len(ids) >= 2 })
		ids, bodies := rc.received()
		if len(ids) != 2 || ids[0] != ids[1] || bodies[0] != bodies[1] || !strings.Contains(bodies[0], `"type":"user.create"`) ||
			!strings.Contains(bodies[0], "hooked@example.com") {
			t.Fatalf("requests %v %v, want the user.create event twice with one webhook-id", ids, bodies)
		}
		var log struct {
			Items []struct {
				ID, Status string
				Attempts   int
			}
		}
		waitFor(t, "the delivery recorded", func() bool {
			_, body := q.get(t, "/v1/admin/webhooks/"+hookID+"/deliveries", admin)
			_ = json.Unmarshal([]byte(body), &log)
			return len(log.Items) == 1 && log.Items[0].Status == "delivered"
		})
		if log.Items[0].ID != ids[0] {
			t.Errorf("delivery log %+v, want %s delivered", log.Items, ids[0])
		}
	})
}

// Three processes on one PostgreSQL fan out and deliver the entries written
// through all of them: each event is delivered exactly once.
func TestWebhooksOnceAcrossThreeProcesses(t *testing.T) {
	db, cfg := storetest.OpenPostgres(t)
	db.Close()
	args := []string{"--webhooks-allow-private", "--database-url", cfg.DatabaseURL}
	procs := []*process{start(t, args...)}
	admin := adminKey.FindStringSubmatch(procs[0].output)[1]
	procs = append(procs, start(t, args...), start(t, args...))
	rc := newHookReceiver(t)
	hookID := rc.createHook(t, procs[1], admin, "user.create")
	const users = 45
	var wg sync.WaitGroup
	for i := range users {
		wg.Go(func() {
			status, body := procs[i%3].call(t, "POST", "/v1/admin/users", admin, fmt.Sprintf(`[{"email":"user%d@example.com","first_name":"U","last_name":"Ser"}]`, i))
			if status != 200 {
				t.Errorf("create user %d: %d %s", i, status, body)
			}
		})
	}
	wg.Wait()
	var log struct {
		Total int
		Items []struct{ Status string }
	}
	waitFor(t, "every delivery made", func() bool {
		_, body := procs[2].get(t, "/v1/admin/webhooks/"+hookID+"/deliveries?page_size=100", admin)
		_ = json.Unmarshal([]byte(body), &log)
		for _, d := range log.Items {
			if d.Status != "delivered" {
				return false
			}
		}
		return log.Total == users
	})
	ids, bodies := rc.received()
	distinct := map[string]bool{}
	for _, id := range ids {
		distinct[id] = true
	}
	for i := range users {
		n := 0
		for _, b := range bodies {
			n += strings.Count(b, fmt.Sprintf(`"user%d@example.com"`, i))
		}
		if n != 1 {
			t.Errorf("user%d's event delivered %d times", i, n)
		}
	}
	if len(ids) != users || len(distinct) != users {
		t.Errorf("%d requests, %d webhook-ids; want %d of each", len(ids), len(distinct), users)
	}
}

// --webhook-url without a signing secret is refused at start, naming the
// variable that holds it.
func TestWebhookURLNeedsASecret(t *testing.T) {
	t.Setenv("STEWARD_WEBHOOK_SECRET", "")
	t.Setenv("STEWARD_WEBHOOK_SECRET_FILE", "")
	out, err := exec.Command(binary, "serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--webhook-url", "https://hooks.example.com/steward").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "STEWARD_WEBHOOK_SECRET") {
		t.Fatalf("serve with --webhook-url and no secret: %v\n%s", err, out)
	}
}
