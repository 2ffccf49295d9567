package webhooks_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/audit"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
	"github.com/stewardhq/steward/internal/webhooks"
)

// An entry reaches the endpoints subscribed to its type, signed so that
// the Standard Webhooks reference library verifies it, with the entry in
// the Admin API's shape as its data.
func TestDeliverySignedAndMatched(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, webhooks.Settings{})
		keysHook, allHook := newReceiver(t, nil), newReceiver(t, nil)
		keysEndpoint, keysSecret := f.create(t, keysHook.URL, "api_key.*")
		f.clock.Advance(time.Second)
		_, allSecret := f.create(t, allHook.URL, "*")
		keysHook.trust(keysSecret)
		allHook.trust(allSecret)
		f.record(t, audit.EventAPIKeyCreate)
		f.record(t, audit.EventUserCreate)
		f.round(t)

		got := keysHook.requests()
		if len(got) != 1 {
			t.Fatalf("api_key.* endpoint got %d requests, want 1", len(got))
		}
		r := got[0]
		if !slices.Equal(r.verified, []int{0}) {
			t.Errorf("signature %q not verified by the reference library", r.signature)
		}
		if r.event.Type != audit.EventAPIKeyCreate || !strings.HasPrefix(r.id, "msg_") {
			t.Errorf("got type %q id %q, want %s and msg_...", r.event.Type, r.id, audit.EventAPIKeyCreate)
		}
		var item audit.Item
		if err := json.Unmarshal(r.event.Data, &item); err != nil {
			t.Fatal(err)
		}
		if item.EventType != audit.EventAPIKeyCreate || item.OrganizationUUID == nil || *item.OrganizationUUID != f.boot.Organization.ID ||
			item.TargetMetadata["n"] != audit.EventAPIKeyCreate || item.LogID == 0 || item.CreatedAt != r.event.Timestamp {
			t.Errorf("data %s does not carry the entry in the audit log's shape (timestamp %s)", r.event.Data, r.event.Timestamp)
		}

		// The second endpoint's creation is after the first's: it gets its
		// own creation and both entries (in no promised order).
		var types []string
		for _, r := range allHook.requests() {
			types = append(types, r.event.Type)
			if len(r.verified) != 1 {
				t.Errorf("request %s not verified", r.id)
			}
		}
		slices.Sort(types)
		if want := []string{audit.EventAPIKeyCreate, audit.EventUserCreate, audit.EventWebhookCreate}; !slices.Equal(types, want) {
			t.Errorf("* endpoint got %v, want %v", types, want)
		}

		ds := f.deliveries(t, keysEndpoint.ID)
		if len(ds) != 1 || ds[0].Status != webhooks.StatusDelivered || ds[0].Attempts != 1 || ds[0].HTTPStatus == nil || *ds[0].HTTPStatus != 200 ||
			ds[0].Latency == nil || ds[0].ID != r.id {
			t.Errorf("delivery log %+v, want one delivered in one attempt with 200 and id %s", ds, r.id)
		}
		// Nothing more is sent on a later round.
		f.round(t)
		if n := len(keysHook.requests()) + len(allHook.requests()); n != 4 {
			t.Errorf("%d requests after a second round, want still 4", n)
		}
	})
}

// A failed delivery is retried with backoff, with the same webhook-id and
// body every time, until the endpoint accepts it.
func TestRetrySameID(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, webhooks.Settings{RetryBase: time.Minute})
		hook := newReceiver(t, func(n int) int {
			if n <= 2 {
				return http.StatusServiceUnavailable
			}
			return 0
		})
		e, secret := f.create(t, hook.URL, "user.*")
		hook.trust(secret)
		f.record(t, audit.EventUserCreate)
		f.round(t)
		ds := f.deliveries(t, e.ID)
		if len(ds) != 1 || ds[0].Status != webhooks.StatusPending || ds[0].Attempts != 1 || *ds[0].HTTPStatus != 503 ||
			!strings.Contains(ds[0].LastError, "503") {
			t.Fatalf("after a 503: %+v, want pending after one attempt", ds)
		}
		if wait := ds[0].NextAttemptAt.Sub(f.clock.Now()); wait < 48*time.Second || wait > 72*time.Second {
			t.Errorf("next attempt in %v, want about a minute", wait)
		}
		f.round(t) // not due yet
		if n := len(hook.requests()); n != 1 {
			t.Fatalf("%d requests before the retry is due, want 1", n)
		}
		f.clock.Advance(2 * time.Minute)
		f.round(t)
		f.clock.Advance(3 * time.Minute)
		f.round(t)
		got := hook.requests()
		if len(got) != 3 {
			t.Fatalf("%d requests, want 3", len(got))
		}
		for _, r := range got {
			if r.id != got[0].id || string(r.body) != string(got[0].body) || len(r.verified) != 1 {
				t.Errorf("attempt %s (verified %v) differs from the first, %s", r.id, r.verified, got[0].id)
			}
		}
		ds = f.deliveries(t, e.ID)
		if ds[0].Status != webhooks.StatusDelivered || ds[0].Attempts != 3 || *ds[0].HTTPStatus != 200 || ds[0].LastError != "" {
			t.Errorf("after the third attempt: %+v, want delivered in 3", ds[0])
		}
	})
}

// A process that dies after sending a round and before recording it
// leaves the cursor where it was (here: put back, and the round's log
// rows removed): the next round sends the same events again with the same
// webhook-ids and bodies, and the log shows each once.
func TestSameIDAfterCrash(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db, webhooks.Settings{})
		hook := newReceiver(t, nil)
		e, _ := f.create(t, hook.URL, "user.*")
		var seq int64
		if err := db.View(ctx, func(tx *store.Tx) error {
			return tx.QueryRow(ctx, `SELECT seq FROM webhook_endpoint_cursors WHERE endpoint_id = ?`, e.ID).Scan(&seq)
		}); err != nil {
			t.Fatal(err)
		}
		f.record(t, audit.EventUserCreate)
		f.record(t, audit.EventUserDelete)
		f.round(t)
		if err := db.Transact(ctx, func(tx *store.Tx) error {
			if _, err := tx.Exec(ctx, `UPDATE webhook_endpoint_cursors SET seq = ? WHERE endpoint_id = ?`, seq, e.ID); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `DELETE FROM webhook_deliveries WHERE endpoint_id = ?`, e.ID)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		f.round(t)
		got := hook.requests()
		if len(got) != 4 {
			t.Fatalf("%d requests, want the two events twice", len(got))
		}
		first := map[string]string{}
		for _, r := range got[:2] {
			first[r.id] = string(r.body)
		}
		for _, r := range got[2:] {
			if b, ok := first[r.id]; !ok || b != string(r.body) {
				t.Errorf("second attempt %s (%s) is not one of the first round's %v", r.id, r.body, first)
			}
		}
		if ds := f.deliveries(t, e.ID); len(ds) != 2 || first[ds[0].ID] == "" || first[ds[1].ID] == "" || ds[0].ID == ds[1].ID {
			t.Errorf("delivery log %+v, want the two events once each", ds)
		}
	})
}

// An endpoint whose deliveries fail for DisableAfter is disabled: audited
// by Steward, its admins emailed, its pending deliveries given up, and no
// more are made for it until it is enabled again.
func TestDisableAfterFailures(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db, webhooks.Settings{RetryBase: time.Minute, RetryCap: 10 * time.Minute, RetryFor: 3 * time.Hour, DisableAfter: time.Hour})
		hook := newReceiver(t, func(int) int { return http.StatusInternalServerError })
		e, _ := f.create(t, hook.URL, "user.*")
		f.record(t, audit.EventUserCreate)
		for range 8 {
			f.round(t)
			f.clock.Advance(12 * time.Minute)
		}
		got, err := f.service.Get(ctx, f.boot.Organization.ID, e.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.DisabledAt == nil || !strings.Contains(got.DisabledReason, "failed since") {
			t.Fatalf("endpoint after 96 minutes of failures: disabled at %v (%q), want disabled", got.DisabledAt, got.DisabledReason)
		}
		requests := len(hook.requests())
		if requests < 5 || requests > 8 {
			t.Errorf("%d attempts in 96 minutes, want one about every 12", requests)
		}
		ds := f.deliveries(t, e.ID)
		if len(ds) != 1 || ds[0].Status != webhooks.StatusFailed {
			t.Errorf("deliveries %+v, want the one failed", ds)
		}
		entries, err := audit.NewService(db).List(ctx, audit.Filter{OrganizationID: f.boot.Organization.ID, EventTypes: []string{audit.EventWebhookDisabled}, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 1 || entries[0].TargetMetadata["id"] != e.ID || entries[0].Actor.Type != steward.ActorOther {
			t.Errorf("webhook.disabled entries %+v, want one by Steward naming %s", entries, e.ID)
		}
		var to, subject string
		if err := db.View(ctx, func(tx *store.Tx) error {
			return tx.QueryRow(ctx, `SELECT recipient, subject FROM outbox WHERE kind = 'webhook_disabled'`).Scan(&to, &subject)
		}); err != nil {
			t.Fatalf("no email of the disabling: %v", err)
		}
		if to != f.boot.Admin.Email || !strings.Contains(subject, "disabled") {
			t.Errorf("email to %s %q, want to the admin %s", to, subject, f.boot.Admin.Email)
		}

		// Disabled: new entries make no delivery.
		f.record(t, audit.EventUserCreate)
		f.clock.Advance(time.Hour)
		f.round(t)
		if n := len(hook.requests()); n != requests {
			t.Errorf("%d requests to a disabled endpoint, want none more than %d", n, requests)
		}
		// Enabled again: the next entry goes out.
		enabled := true
		if _, err := f.service.Update(ctx, actor, f.boot.Organization.ID, e.ID, webhooks.Input{Enabled: &enabled}); err != nil {
			t.Fatal(err)
		}
		f.record(t, audit.EventUserCreate)
		f.round(t)
		if n := len(hook.requests()); n != requests+1 {
			t.Errorf("%d requests after enabling, want %d", n, requests+1)
		}
	})
}

// A delivery that keeps failing is given up after RetryFor.
func TestGiveUpAfterRetryFor(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, webhooks.Settings{RetryBase: time.Minute, RetryCap: time.Minute, RetryFor: 5 * time.Minute, DisableAfter: time.Hour})
		hook := newReceiver(t, func(int) int { return http.StatusBadGateway })
		e, _ := f.create(t, hook.URL, "user.*")
		f.record(t, audit.EventUserCreate)
		for range 10 {
			f.round(t)
			f.clock.Advance(2 * time.Minute)
		}
		ds := f.deliveries(t, e.ID)
		if len(ds) != 1 || ds[0].Status != webhooks.StatusFailed || ds[0].Attempts < 3 || ds[0].Attempts > 5 || ds[0].FinishedAt == nil {
			t.Errorf("delivery %+v, want failed after a few attempts in 5 minutes", ds)
		}
		if n := len(hook.requests()); n != ds[0].Attempts {
			t.Errorf("%d requests, %d attempts recorded", n, ds[0].Attempts)
		}
	})
}

// A first attempt whose retry would come after RetryFor fails the delivery
// at once, without its body: the round that made it records it so.
func TestGiveUpAtTheFirstFailure(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, webhooks.Settings{RetryBase: time.Hour, RetryCap: time.Hour, RetryFor: time.Minute, DisableAfter: time.Hour})
		hook := newReceiver(t, func(int) int { return http.StatusBadGateway })
		e, _ := f.create(t, hook.URL, "user.*")
		f.record(t, audit.EventUserCreate)
		f.round(t)
		f.clock.Advance(2 * time.Hour)
		f.round(t)
		ds := f.deliveries(t, e.ID)
		if len(ds) != 1 || ds[0].Status != webhooks.StatusFailed || ds[0].Attempts != 1 || ds[0].FinishedAt == nil ||
			ds[0].HTTPStatus == nil || *ds[0].HTTPStatus != http.StatusBadGateway || !strings.Contains(ds[0].LastError, "502") {
			t.Fatalf("delivery %+v, want failed after its one attempt, with the answer's status and error", ds)
		}
		if n := len(hook.requests()); n != 1 {
			t.Errorf("%d requests, want the one attempt", n)
		}
	})
}

// After a rotation both secrets sign for a day, then the new one alone.
func TestSecretRotationOverlap(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db, webhooks.Settings{})
		hook := newReceiver(t, nil)
		e, old := f.create(t, hook.URL, "user.*")
		hook.trust(old)
		rotated, fresh, err := f.service.RotateSecret(ctx, actor, f.boot.Organization.ID, e.ID)
		if err != nil {
			t.Fatal(err)
		}
		if fresh == old || !strings.HasPrefix(fresh, "whsec_") || rotated.PreviousSecretUntil == nil {
			t.Fatalf("rotation gave %q (old %q), previous until %v", fresh, old, rotated.PreviousSecretUntil)
		}
		hook.trust(fresh)
		f.record(t, audit.EventUserCreate)
		f.round(t)
		f.clock.Advance(webhooks.RotateSecretOverlap + time.Minute)
		f.record(t, audit.EventUserCreate)
		f.round(t)
		got := hook.requests()
		if len(got) != 2 {
			t.Fatalf("%d requests, want 2", len(got))
		}
		if !slices.Equal(got[0].verified, []int{0, 1}) || strings.Count(got[0].signature, "v1,") != 2 {
			t.Errorf("during the overlap: verified by %v, signature %q; want both secrets", got[0].verified, got[0].signature)
		}
		if !slices.Equal(got[1].verified, []int{1}) || strings.Count(got[1].signature, "v1,") != 1 {
			t.Errorf("after the overlap: verified by %v, signature %q; want the new secret only", got[1].verified, got[1].signature)
		}
	})
}

// URLs that reach the server's own network are refused when they are set,
// and connections to them when deliveries are made; redirects are not
// followed.
func TestSSRF(t *testing.T) {
	ctx := context.Background()
	strict := webhooks.Guard{}
	for _, u := range []string{
		"http://8.8.8.8/hook",             // not https
		"https://127.0.0.1/hook",          // loopback
		"https://localhost/hook",          // resolves to loopback
		"https://[::1]/hook",              // loopback
		"https://10.1.2.3/hook",           // private
		"https://192.168.0.1/hook",        // private
		"https://172.16.5.5/hook",         // private
		"https://[fd00::1]/hook",          // private
		"https://169.254.169.254/latest",  // link-local (cloud metadata)
		"https://[fe80::1]/hook",          // link-local
		"https://0.0.0.0/hook",            // unspecified
		"https://[::]/hook",               // unspecified
		"https://224.0.0.1/hook",          // multicast
		"https://100.64.0.1/hook",         // carrier-grade NAT
		"https://[::ffff:127.0.0.1]/hook", // IPv4-mapped loopback
		"https://[::ffff:10.0.0.1]/hook",  // IPv4-mapped private
		"https://[64:ff9b::a00:1]/hook",   // NAT64 of a private address
		"https://user:pw@8.8.8.8/hook",    // credentials
		"/relative",
	} {
		err := strict.CheckURL(ctx, u)
		if e, ok := err.(*steward.Error); !ok || e.Kind != steward.KindInvalid || !slices.Equal(e.Field, []string{"body", "url"}) {
			t.Errorf("CheckURL(%s) = %v, want invalid url", u, err)
		}
	}
	for _, u := range []string{"https://8.8.8.8/hook?token=x", "https://[2606:4700::1111]/"} {
		if err := strict.CheckURL(ctx, u); err != nil {
			t.Errorf("CheckURL(%s) = %v, want accepted", u, err)
		}
	}
	if err := (webhooks.Guard{AllowPrivate: true}).CheckURL(ctx, "http://127.0.0.1:8080/hook"); err != nil {
		t.Errorf("with private addresses allowed: %v", err)
	}
	for _, a := range []string{"8.8.8.8", "2606:4700::1111", "1.1.1.1"} {
		if !webhooks.Public(netip.MustParseAddr(a)) {
			t.Errorf("%s judged not public", a)
		}
	}

	storetest.Run(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, webhooks.Settings{})
		// Registered while private addresses were allowed, delivered
		// after: the connection is refused once resolved.
		hook := newReceiver(t, nil)
		e, _ := f.create(t, hook.URL, "user.*")
		strictSender := webhooks.NewSender(db, strict, webhooks.Settings{}, quiet)
		f.record(t, audit.EventUserCreate)
		if _, err := webhooks.NewDispatcher(strictSender).RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
		if n := len(hook.requests()); n != 0 {
			t.Errorf("a loopback endpoint got %d requests with private addresses refused", n)
		}
		ds := f.deliveries(t, e.ID)
		if len(ds) != 1 || ds[0].Status != webhooks.StatusPending || !strings.Contains(ds[0].LastError, "not a public address") || ds[0].HTTPStatus != nil {
			t.Errorf("delivery %+v, want a refused connection", ds)
		}

		// A redirect, to anywhere, is a failure and is not followed.
		target := newReceiver(t, nil)
		redirect := httptest.NewServer(http.RedirectHandler(target.URL, http.StatusTemporaryRedirect))
		defer redirect.Close()
		r, _ := f.create(t, redirect.URL, "user.*")
		f.record(t, audit.EventUserCreate)
		f.round(t)
		if n := len(target.requests()); n != 0 {
			t.Errorf("the redirect's target got %d requests", n)
		}
		ds = f.deliveries(t, r.ID)
		if len(ds) != 1 || ds[0].Status != webhooks.StatusPending || !strings.Contains(ds[0].LastError, "redirects are not followed") {
			t.Errorf("redirected delivery %+v, want failed, not followed", ds)
		}
	})
}

// Three dispatchers and three senders over their own connections (three
// processes) fan out and deliver entries written meanwhile: every entry
// reaches the endpoint exactly once.
func TestExactlyOnceAcrossProcesses(t *testing.T) {
	for _, engine := range storetest.Engines(t) {
		t.Run(engine.Name, func(t *testing.T) {
			ctx := context.Background()
			db, cfg := engine.Open(t)
			f := newFixture(t, db, webhooks.Settings{})
			db.Now = time.Now
			hook := newReceiver(t, nil)
			f.create(t, hook.URL, "user.*")
			const entries = 120
			var wg sync.WaitGroup
			stop := make(chan struct{})
			for i := range 3 {
				pdb := db
				if i > 0 {
					pdb = storetest.OpenAgain(t, cfg)
				}
				s := webhooks.NewSender(pdb, webhooks.Guard{AllowPrivate: true}, webhooks.Settings{Batch: 7}, quiet)
				d := webhooks.NewDispatcher(s)
				wg.Go(func() {
					for {
						select {
						case <-stop:
							return
						default:
						}
						if _, err := d.RunOnce(ctx); err != nil {
							t.Error(err)
						}
						if _, err := s.RunOnce(ctx); err != nil {
							t.Error(err)
						}
					}
				})
			}
			for range entries {
				f.record(t, audit.EventUserCreate)
			}
			deadline := time.Now().Add(time.Minute)
			for len(hook.requests()) < entries && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			close(stop)
			wg.Wait()
			f.round(t)
			ids, logIDs := map[string]int{}, map[int64]int{}
			for _, r := range hook.requests() {
				var item audit.Item
				if err := json.Unmarshal(r.event.Data, &item); err != nil {
					t.Fatal(err)
				}
				ids[r.id]++
				logIDs[item.LogID]++
			}
			if len(ids) != entries || len(logIDs) != entries || len(hook.requests()) != entries {
				t.Errorf("%d requests, %d webhook-ids, %d entries; want %d of each", len(hook.requests()), len(ids), len(logIDs), entries)
			}
		})
	}
}

// A test event is sent to the endpoint whatever it subscribes to.
func TestTestEvent(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, webhooks.Settings{})
		hook := newReceiver(t, nil)
		e, secret := f.create(t, hook.URL, "limit.*")
		hook.trust(secret)
		d, err := f.service.Test(context.Background(), f.boot.Organization.ID, e.ID)
		if err != nil {
			t.Fatal(err)
		}
		f.round(t)
		got := hook.requests()
		if len(got) != 1 || got[0].event.Type != webhooks.EventTest || got[0].id != d.ID || len(got[0].verified) != 1 {
			t.Errorf("got %+v, want one verified webhook.test with id %s", got, d.ID)
		}
		// A disabled endpoint is sent its test events too.
		disabled := false
		if _, err := f.service.Update(context.Background(), actor, f.boot.Organization.ID, e.ID, webhooks.Input{Enabled: &disabled}); err != nil {
			t.Fatal(err)
		}
		f.record(t, "limit.spend.reached")
		if _, err := f.service.Test(context.Background(), f.boot.Organization.ID, e.ID); err != nil {
			t.Fatal(err)
		}
		f.round(t)
		if got := hook.requests(); len(got) != 2 || got[1].event.Type != webhooks.EventTest {
			t.Errorf("disabled endpoint got %d requests, want the second test event only", len(got))
		}
		if _, err := f.service.Test(context.Background(), f.boot.Organization.ID, "00000000-0000-0000-0000-000000000000"); !steward.IsKind(err, steward.KindNotFound) {
			t.Errorf("test of an unknown endpoint: %v, want not found", err)
		}
	})
}

// The server-wide endpoint gets api_key.expiring of every Organization,
// signed with the configured secret, and nothing else.
func TestServerEndpoint(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db, webhooks.Settings{})
		hook := newReceiver(t, nil)
		secret := webhooks.NewSecret()
		hook.trust(secret)
		if _, err := f.dispatcher.RunOnce(ctx); err != nil { // follows the chain from here
			t.Fatal(err)
		}
		if err := webhooks.ConfigureServerEndpoint(ctx, db, hook.URL, secret); err != nil {
			t.Fatal(err)
		}
		f.record(t, "api_key.expiring")
		f.record(t, audit.EventUserCreate)
		f.round(t)
		got := hook.requests()
		if len(got) != 1 || got[0].event.Type != "api_key.expiring" || len(got[0].verified) != 1 {
			t.Fatalf("server endpoint got %+v, want one verified api_key.expiring", got)
		}
		// Not an Organization's endpoint.
		p, err := f.service.List(ctx, f.boot.Organization.ID, 1, 20)
		if err != nil || p.Total != 0 {
			t.Errorf("the Organization lists %d endpoints (%v), want none", p.Total, err)
		}
		if err := webhooks.ConfigureServerEndpoint(ctx, db, "", ""); err != nil {
			t.Fatal(err)
		}
		f.record(t, "api_key.expiring")
		f.round(t)
		if n := len(hook.requests()); n != 1 {
			t.Errorf("%d requests after the server endpoint was removed, want still 1", n)
		}
	})
}

func TestMatches(t *testing.T) {
	for _, c := range []struct {
		events []string
		t      string
		want   bool
	}{
		{[]string{"*"}, "user.create", true},
		{[]string{"api_key.*"}, "api_key.create", true},
		{[]string{"api_key.*"}, "api_key_policy.update", false},
		{[]string{"api_key.create"}, "api_key.create", true},
		{[]string{"api_key.create"}, "api_key.created", false},
		{[]string{"limit.*", "user.create"}, "limit.spend.reached", true},
		{[]string{"user.*"}, "user", false},
	} {
		if got := webhooks.Matches(c.events, c.t); got != c.want {
			t.Errorf("Matches(%v, %s) = %v, want %v", c.events, c.t, got, c.want)
		}
	}
}

// Finished deliveries leave the log after Retention; pending ones stay.
func TestPrune(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db, webhooks.Settings{RetryBase: time.Hour})
		ok := newReceiver(t, nil)
		failing := newReceiver(t, func(int) int { return http.StatusInternalServerError })
		delivered, _ := f.create(t, ok.URL, "user.*")
		pending, _ := f.create(t, failing.URL, "user.*")
		f.record(t, audit.EventUserCreate)
		f.round(t)
		f.clock.Advance(webhooks.Retention + time.Minute)
		n, err := webhooks.Prune(ctx, db)
		if err != nil || n != 1 {
			t.Fatalf("Prune = %d, %v; want the one delivered", n, err)
		}
		if ds := f.deliveries(t, delivered.ID); len(ds) != 0 {
			t.Errorf("delivered after the retention: %+v", ds)
		}
		if ds := f.deliveries(t, pending.ID); len(ds) != 1 || ds[0].Status != webhooks.StatusPending {
			t.Errorf("pending: %+v, want kept", ds)
		}
		// The pending delivery keeps its body, which its retries send; the
		// delivered one kept none.
		var body string
		if err := db.View(ctx, func(tx *store.Tx) error {
			return tx.QueryRow(ctx, `SELECT payload FROM webhook_deliveries WHERE endpoint_id = ?`, pending.ID).Scan(&body)
		}); err != nil || !strings.Contains(body, `"type":"user.create"`) {
			t.Errorf("pending delivery's body %q (%v), want the event", body, err)
		}
	})
}

// TestEntriesWrittenDuringARound: an entry committed while a running
// dispatcher's round is delivering (its nudge, here none, could be taken
// by a round that finds the cursor claimed) is delivered soon after that
// round, not an interval later.
func TestEntriesWrittenDuringARound(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, webhooks.Settings{})
		release := make(chan struct{})
		rc := newReceiver(t, func(n int) int {
			if n == 1 {
				<-release
			}
			return 0
		})
		f.create(t, rc.URL, "*")
		ctx, cancel := context.WithCancel(context.Background())
		var running sync.WaitGroup
		running.Go(func() { f.dispatcher.Run(ctx, time.Hour) })
		defer func() {
			cancel()
			running.Wait()
		}()
		// The first round delivers the endpoint's own creation, and its
		// receiver holds the request while an entry is committed.
		for deadline := time.Now().Add(5 * time.Second); rc.count.Load() < 1; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the running dispatcher delivered nothing")
			}
		}
		f.record(t, audit.EventUserCreate)
		close(release)
		for deadline := time.Now().Add(5 * time.Second); rc.count.Load() < 2; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("an entry written during a round was not delivered within 5 s (the interval is an hour): %d requests", rc.count.Load())
			}
		}
		if got := rc.requests(); got[1].event.Type != audit.EventUserCreate {
			t.Errorf("second delivery %s, want %s", got[1].event.Type, audit.EventUserCreate)
		}
	})
}

// An update made while another change of the endpoint is uncommitted reads
// it once committed, instead of writing its field back as it was
// (PostgreSQL; SQLite runs one writer at a time).
func TestUpdateKeepsAConcurrentChange(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.OpenPostgres(t)
	f := newFixture(t, db, webhooks.Settings{})
	e, _ := f.create(t, "http://127.0.0.1:9/hook", "*")
	url := "http://127.0.0.1:9/moved"
	storetest.Meanwhile(t, db, func(tx *store.Tx) error {
		_, err := tx.Exec(ctx, `UPDATE webhook_endpoints SET description = 'changed meanwhile' WHERE id = ?`, e.ID)
		return err
	}, func() error {
		_, err := f.service.Update(ctx, actor, f.boot.Organization.ID, e.ID, webhooks.Input{URL: &url})
		return err
	})
	got, err := f.service.Get(ctx, f.boot.Organization.ID, e.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.URL != url || got.Description != "changed meanwhile" {
		t.Errorf("after two changes at once: URL %q, description %q; want %q and the other change's", got.URL, got.Description, url)
	}
}
