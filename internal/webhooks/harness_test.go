package webhooks_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/stewardhq/steward/internal/audit"
	"github.com/stewardhq/steward/internal/bootstrap"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/webhooks"
)

var actor = steward.SystemActor("test")

// clock is the database's clock, moved by the test.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type fixture struct {
	db         *store.DB
	boot       bootstrap.Result
	clock      *clock
	service    *webhooks.Service
	dispatcher *webhooks.Dispatcher
	sender     *webhooks.Sender
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// newFixture bootstraps db, puts it on a clock the test moves, and makes
// a service, dispatcher and sender that reach loopback.
func newFixture(t testing.TB, db *store.DB, settings webhooks.Settings) *fixture {
	t.Helper()
	c := &clock{now: time.Now().UTC()}
	db.Now = c.Now
	boot, err := bootstrap.Run(context.Background(), db, bootstrap.Options{})
	if err != nil {
		t.Fatal(err)
	}
	guard := webhooks.Guard{AllowPrivate: true}
	sender := webhooks.NewSender(db, guard, settings, quiet)
	return &fixture{db: db, boot: boot, clock: c,
		service:    webhooks.NewService(db, guard, nil),
		dispatcher: webhooks.NewDispatcher(sender),
		sender:     sender}
}

// record writes an audit entry of the bootstrapped Organization.
func (f *fixture) record(t testing.TB, eventType string) {
	t.Helper()
	err := f.db.Transact(context.Background(), func(tx *store.Tx) error {
		return audit.Record(context.Background(), tx, audit.Entry{EnterpriseAccountID: f.boot.EnterpriseAccount.ID,
			OrganizationID: f.boot.Organization.ID, Actor: actor, EventType: eventType, TargetType: audit.TargetOrganization,
			TargetMetadata: map[string]string{"n": eventType}})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// create registers an endpoint and returns it with its secret.
func (f *fixture) create(t testing.TB, url string, events ...string) (webhooks.Endpoint, string) {
	t.Helper()
	e, secret, err := f.service.Create(context.Background(), actor, f.boot.Organization.ID, webhooks.Input{URL: &url, Events: events})
	if err != nil {
		t.Fatal(err)
	}
	return e, secret
}

// round delivers the new entries and makes the due retries once.
func (f *fixture) round(t testing.TB) {
	t.Helper()
	if _, err := f.dispatcher.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := f.sender.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) deliveries(t *testing.T, endpointID string) []webhooks.Delivery {
	t.Helper()
	p, err := f.service.Deliveries(context.Background(), f.boot.Organization.ID, endpointID, 1, webhooks.MaxPageSize)
	if err != nil {
		t.Fatal(err)
	}
	return p.Items
}

// received is one request a receiver took.
type received struct {
	id        string
	signature string
	body      []byte
	event     struct {
		Type      string          `json:"type"`
		Timestamp string          `json:"timestamp"`
		Data      json.RawMessage `json:"data"`
	}
	// verified lists the secrets (by index in the receiver's list) that
	// verify the request with the Standard Webhooks reference library.
	verified []int
}

// receiver is a webhook endpoint on loopback that verifies each request
// with the reference library against the secrets it is given, and answers
// with status (200 when it returns 0).
type receiver struct {
	*httptest.Server
	mu      sync.Mutex
	secrets []string
	got     []received
	status  func(n int) int
	count   atomic.Int64
}

func newReceiver(t testing.TB, status func(n int) int) *receiver {
	t.Helper()
	rc := &receiver{status: status}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		n := int(rc.count.Add(1))
		got := received{id: r.Header.Get("webhook-id"), signature: r.Header.Get("webhook-signature"), body: body}
		if err := json.Unmarshal(body, &got.event); err != nil {
			t.Errorf("webhook body %s: %v", body, err)
		}
		rc.mu.Lock()
		for i, s := range rc.secrets {
			wh, err := standardwebhooks.NewWebhook(s)
			if err != nil {
				t.Errorf("secret %q: %v", s, err)
				continue
			}
			if wh.Verify(body, r.Header) == nil {
				got.verified = append(got.verified, i)
			}
		}
		rc.got = append(rc.got, got)
		rc.mu.Unlock()
		code := http.StatusOK
		if rc.status != nil {
			if c := rc.status(n); c != 0 {
				code = c
			}
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) trust(secret string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.secrets = append(rc.secrets, secret)
}

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}
