package web_test

import (
	"cmp"
	"context"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/stewardhq/steward/internal/audit"
	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
	"github.com/stewardhq/steward/internal/web"
	"github.com/stewardhq/steward/internal/webhooks"
)

// loopbackHooks is a webhooks service whose URLs may reach loopback, where
// the tests' receivers listen.
func loopbackHooks(db *store.DB) *webhooks.Service {
	return webhooks.NewService(db, webhooks.Guard{AllowPrivate: true}, nil)
}

// hookReceiver answers every webhook 204 and keeps the bodies whose
// signature the secret it is given verifies.
type hookReceiver struct {
	*httptest.Server
	mu       sync.Mutex
	verifier *standardwebhooks.Webhook
	verified []string
}

func newHookReceiver(t *testing.T) *hookReceiver {
	rc := &hookReceiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		defer rc.mu.Unlock()
		if rc.verifier != nil && rc.verifier.Verify(body, r.Header) == nil {
			rc.verified = append(rc.verified, string(body))
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rc.Close)
	return rc
}

// signed returns the bodies that the trusted secret verified.
func (rc *hookReceiver) signed() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]string(nil), rc.verified...)
}

func (rc *hookReceiver) trust(t *testing.T, secret string) {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatalf("the shown secret %q: %v", secret, err)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.verifier = wh
}

var shownSecretRE = regexp.MustCompile(`id="secret-value" type="text" readonly value="(whsec_[^"]+)"`)

// TestWebhooksPage creates, changes, tests, rotates and deletes an
// endpoint through the Admin Panel, checking what the webhooks service and
// the audit log keep, and that another Organization's endpoint is not found.
func TestWebhooksPage(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		hooks := loopbackHooks(db)
		e := newEnv(t, db, web.Config{Webhooks: hooks})
		b := e.browser()
		b.mustSignIn()
		org, orgID := e.org(), e.boot.Organization.ID
		rc := newHookReceiver(t)

		if r := b.get(org + "/webhooks"); r.status != 200 || !strings.Contains(r.body, "No webhook endpoints yet.") || !strings.Contains(r.body, `href="`+org+`/webhooks" aria-current="page"`) {
			t.Fatalf("empty webhooks page: %d %s", r.status, r.body)
		}

		// A bad URL shows the page again, the message beside the field and
		// the typed values kept.
		r := b.form(org+"/webhooks", url.Values{"url": {"ftp://example.com/hook"}, "events": {"api_key.*"}, "description": {"typed"}, "enabled": {"on"}})
		if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, `<p class="field-error" id="wh-url-error">url must use https</p>`) ||
			!strings.Contains(r.body, `aria-describedby="wh-url-error"`) || !strings.Contains(r.body, `value="typed"`) {
			t.Fatalf("bad URL: %d %s", r.status, r.body)
		}
		r = b.form(org+"/webhooks", url.Values{"url": {rc.URL}, "events": {"api_key.*, Not A Type"}})
		if r.status != http.StatusUnprocessableEntity || !strings.Contains(html.UnescapeString(r.body), `"Not" is not an event type`) || !strings.Contains(r.body, `id="wh-events-error"`) {
			t.Fatalf("bad events: %d %s", r.status, r.body)
		}
		if list, err := hooks.List(ctx, orgID, 1, 100); err != nil || list.Total != 0 {
			t.Fatalf("refused forms left %d endpoints (%v)", list.Total, err)
		}

		// Created: the secret is shown once, and signs what is sent.
		r = b.form(org+"/webhooks", url.Values{"url": {rc.URL + "/hook"}, "events": {"api_key.*,limit.*"}, "description": {"SIEM"}, "enabled": {"on"}})
		m := shownSecretRE.FindStringSubmatch(r.body)
		if r.status != 200 || m == nil || !strings.Contains(r.body, "Webhook endpoint created") {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
		secret := html.UnescapeString(m[1])
		list, err := hooks.List(ctx, orgID, 1, 100)
		if err != nil || list.Total != 1 {
			t.Fatalf("endpoints after create: %+v %v", list, err)
		}
		ep := list.Items[0]
		if ep.URL != rc.URL+"/hook" || strings.Join(ep.Events, " ") != "api_key.* limit.*" || ep.Description != "SIEM" || ep.DisabledAt != nil {
			t.Fatalf("created endpoint %+v", ep)
		}
		if r := b.get(org + "/webhooks"); strings.Contains(r.body, secret) || !strings.Contains(r.body, ep.URL) || !strings.Contains(r.body, "<code>limit.*</code>") {
			t.Fatalf("the list shows the secret again, or not the endpoint: %s", r.body)
		}
		hook := org + "/webhooks/" + ep.ID

		// Changed: the form's fields, and disabled by an admin.
		changed(t, b.form(hook, url.Values{"url": {ep.URL}, "events": {"*"}, "description": {"all of it"}}), hook, "webhook_saved")
		got, err := hooks.Get(ctx, orgID, ep.ID)
		if err != nil || strings.Join(got.Events, " ") != "*" || got.Description != "all of it" || got.DisabledAt == nil || got.DisabledReason != "disabled by an admin" {
			t.Fatalf("after the change: %+v %v", got, err)
		}
		if r := b.get(hook + "?done=webhook_saved"); !strings.Contains(r.body, "disabled by an admin") || !strings.Contains(r.body, "The webhook endpoint is saved.") {
			t.Errorf("the endpoint's hook does not say it is disabled: %s", r.body)
		}
		if r := b.form(hook, url.Values{"url": {ep.URL}, "events": {""}, "enabled": {"on"}}); r.status != http.StatusUnprocessableEntity ||
			!strings.Contains(r.body, `<p class="field-error" id="wh-events-error">events must list at least one`) {
			t.Errorf("no events: %d %s", r.status, r.body)
		}
		changed(t, b.form(hook, url.Values{"url": {ep.URL}, "events": {"api_key.*"}, "description": {"all of it"}, "enabled": {"on"}}), hook, "webhook_saved")

		// A test event, made by the sender, is in the delivery log.
		changed(t, b.form(hook+"/test", url.Values{}), hook, "webhook_test")
		rc.trust(t, secret)
		sender := webhooks.NewSender(db, webhooks.Guard{AllowPrivate: true}, webhooks.Settings{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if n, err := sender.RunOnce(ctx); err != nil || n != 1 {
			t.Fatalf("sender: %d deliveries, %v", n, err)
		}
		if got := rc.signed(); len(got) != 1 || !strings.Contains(got[0], `"type":"webhook.test"`) {
			t.Fatalf("bodies signed with the shown secret: %q", got)
		}
		r = b.get(hook)
		if !strings.Contains(r.body, "<code>webhook.test</code>") || !strings.Contains(r.body, "<td>delivered</td>") || !strings.Contains(r.body, "<td>204</td>") ||
			!regexp.MustCompile(`<td>\d+ ms</td>`).MatchString(r.body) || !strings.Contains(r.body, "<td>1</td>") || !strings.Contains(r.body, "1 in the log") {
			t.Fatalf("delivery log: %s", r.body)
		}

		// The log comes 25 deliveries a page, newest first.
		for range 25 {
			if _, err := hooks.Test(ctx, orgID, ep.ID); err != nil {
				t.Fatal(err)
			}
		}
		rows := func(body string) int { return strings.Count(body, `<span class="meta">msg_`) }
		first, second := b.get(hook), b.get(hook+"?page=2")
		if rows(first.body) != 25 || !strings.Contains(first.body, `<a href="?page=2">Older deliveries</a>`) || strings.Contains(first.body, "Newer deliveries") ||
			!strings.Contains(first.body, "26 in the log") || strings.Count(first.body, "<td>pending</td>") != 25 {
			t.Errorf("the log's first page: %d rows\n%s", rows(first.body), first.body)
		}
		if rows(second.body) != 1 || !strings.Contains(second.body, "<td>delivered</td>") || !strings.Contains(second.body, `<a href="?page=1">Newer deliveries</a>`) ||
			strings.Contains(second.body, "Older deliveries") {
			t.Errorf("the log's second page: %d rows\n%s", rows(second.body), second.body)
		}

		// Rotated: a new secret, shown once.
		r = b.form(hook+"/rotate", url.Values{})
		m = shownSecretRE.FindStringSubmatch(r.body)
		if r.status != 200 || m == nil || html.UnescapeString(m[1]) == secret || !strings.Contains(r.body, "Signing secret rotated") || !strings.Contains(r.body, "keeps signing beside the new one") {
			t.Fatalf("rotate: %d %s", r.status, r.body)
		}
		if r := b.get(hook); strings.Contains(r.body, m[1]) {
			t.Fatal("the endpoint's hook shows the rotated secret again")
		}

		// Another Organization's endpoint is not found, and stays as it is.
		var other steward.Organization
		err = db.Transact(ctx, func(tx *store.Tx) error {
			other, _, err = directory.CreateOrganization(ctx, tx, steward.SystemActor("test"), e.boot.EnterpriseAccount.ID, "Other")
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		theirs, _, err := hooks.Create(ctx, steward.SystemActor("test"), other.ID, webhooks.Input{URL: new("https://1.1.1.1/theirs"), Events: []string{"*"}})
		if err != nil {
			t.Fatal(err)
		}
		foreign := org + "/webhooks/" + theirs.ID
		if r := b.get(foreign); r.status != http.StatusNotFound || strings.Contains(r.body, "1.1.1.1") {
			t.Errorf("GET another Organization's endpoint: %d %s", r.status, r.body)
		}
		for _, path := range []string{foreign, foreign + "/rotate", foreign + "/test", foreign + "/delete"} {
			if r := b.form(path, url.Values{"url": {"https://1.1.1.1/mine"}, "events": {"api_key.*"}}); r.status != http.StatusNotFound {
				t.Errorf("POST %s: %d %s", path, r.status, r.body)
			}
		}
		if r := b.get("/web/o/" + other.ID + "/webhooks"); r.status != http.StatusNotFound {
			t.Errorf("the other Organization's webhooks page: %d", r.status)
		}
		if got, err := hooks.Get(ctx, other.ID, theirs.ID); err != nil || got.URL != "https://1.1.1.1/theirs" || got.PreviousSecretUntil != nil {
			t.Errorf("the other Organization's endpoint after the posts: %+v %v", got, err)
		}

		// Deleted.
		changed(t, b.form(hook+"/delete", url.Values{}), org+"/webhooks", "webhook_deleted")
		if _, err := hooks.Get(ctx, orgID, ep.ID); !steward.IsKind(err, steward.KindNotFound) {
			t.Errorf("the deleted endpoint: %v", err)
		}

		// Each change is in the audit log, by the signed-in admin.
		err = db.View(ctx, func(tx *store.Tx) error {
			entries, err := audit.List(ctx, tx, audit.Filter{OrganizationID: orgID, TargetTypes: []string{audit.TargetWebhook}, Ascending: true, Limit: audit.MaxLimit})
			var seen []string
			for _, en := range entries {
				if en.Actor.Type != steward.ActorHuman || en.Actor.UserID != e.boot.Admin.ID {
					t.Errorf("%s by %+v, want the signed-in admin", en.EventType, en.Actor)
				}
				seen = append(seen, en.EventType)
			}
			want := strings.Join([]string{audit.EventWebhookCreate, audit.EventWebhookUpdate, audit.EventWebhookUpdate, audit.EventWebhookSecretRotate, audit.EventWebhookDelete}, " ")
			if got := strings.Join(seen, " "); got != want {
				t.Errorf("audit entries %q, want %q", got, want)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

// TestWebhooksPageDeniedToMembers keeps the page to organization_admins.
func TestWebhooksPageDeniedToMembers(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, web.Config{Webhooks: loopbackHooks(db)})
		e.addMember("plain@example.com", "plain member's password")
		b := e.browser()
		if r := b.signIn("plain@example.com", "plain member's password"); r.status != http.StatusSeeOther {
			t.Fatalf("sign in: %d %s", r.status, r.body)
		}
		if r := b.get(e.org() + "/webhooks"); r.status != http.StatusNotFound {
			t.Errorf("a member's GET: %d", r.status)
		}
		if r := b.form(e.org()+"/webhooks", url.Values{"url": {"https://1.1.1.1/x"}, "events": {"*"}}); r.status != http.StatusNotFound {
			t.Errorf("a member's POST: %d %s", r.status, r.body)
		}
	})
}

// browseWebhooks is the browser test's step for the webhooks page: an
// endpoint created with its secret shown once, a test event delivered to a
// receiver on loopback and listed in the delivery log, and both pages at
// 1,400 and 360 px.
func browseWebhooks(t *testing.T, admin tab, db *store.DB, org string) {
	t.Helper()
	rc := newHookReceiver(t)
	admin.open(org + "/webhooks")
	admin.do(chromedp.SendKeys(chromedp.ID("wh-url"), rc.URL+"/steward"), chromedp.SendKeys(chromedp.ID("wh-events"), "api_key.*, limit.*"),
		chromedp.SendKeys(chromedp.ID("wh-desc"), "Security team's SIEM"))
	admin.submit(`form[action$="/webhooks"]`)
	admin.expect("#secret-title", "Webhook endpoint created", rc.URL)
	secret := admin.value("#secret-value")
	rc.trust(t, secret)
	admin.expect("tbody", rc.URL+"/steward", "api_key.*", "Security team's SIEM", "Enabled")
	if _, err := chromedp.Run(admin.ctx, chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Click(chromedp.CSS(`td a[href*="/webhooks/"]`)))); err != nil {
		t.Fatalf("open the endpoint's page: %v", err)
	}
	if html, err := chromedp.Run(admin.ctx, chromedp.OuterHTML(chromedp.CSS("html"))); err != nil || strings.Contains(html, secret) {
		t.Fatalf("the endpoint's page shows the secret again (err %v)", err)
	}
	admin.submit(`form[action$="/test"]`)
	admin.expect(".flash", "A test event is queued")
	sender := webhooks.NewSender(db, webhooks.Guard{AllowPrivate: true}, webhooks.Settings{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if n, err := sender.RunOnce(context.Background()); err != nil || n == 0 {
		t.Fatalf("sender: %d deliveries, %v", n, err)
	}
	if got := rc.signed(); len(got) == 0 {
		t.Fatal("the receiver verified no delivery with the secret the page showed")
	}
	admin.do(chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("main")))
	admin.expect("table.log tbody", "webhook.test", "delivered", "204")
	admin.do(chromedp.EmulateViewport(1400, 900))
	admin.shot("webhooks")
	admin.do(chromedp.EmulateViewport(360, 740))
	admin.shot("webhooks-360")
	for _, path := range []string{"", org + "/webhooks"} {
		if path != "" {
			admin.open(path)
		}
		width, err := pageWidth(admin.ctx, 360)
		if err != nil || width > 360 {
			t.Errorf("at 360 px, %s is %d px wide (%v)", cmp.Or(path, "the endpoint's page"), width, err)
		}
	}
	admin.do(chromedp.EmulateReset())
}
