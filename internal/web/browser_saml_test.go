package web_test

import (
	"strings"
	"testing"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
)

// TestBrowserSAML signs in with SAML single sign-on in headless Chromium:
// "Sign in with SSO" on Steward's sign-in page, the identity provider's
// own login page (samlidp, on another site), its response posted back to
// Steward, Steward's page that posts it again with the sign-in's cookie,
// and the Admin Panel.
func TestBrowserSAML(t *testing.T) {
	exe := chromium(t)
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		s := newSAMLSite(t, db, "localhost")
		ctx := headless(t, exe)
		b := tab{t: t, ctx: ctx, url: s.http.URL}
		b.open("/web/signin")
		b.do(chromedp.SendKeys(chromedp.ID("sso-email"), "admin@example.com"),
			chromedp.Click(chromedp.CSS("form#sso button[type=submit]")),
			chromedp.WaitVisible(chromedp.CSS(`input[name="user"]`)))
		if loc, err := chromedp.Run(ctx, chromedp.Location()); err != nil || !strings.HasPrefix(loc, s.idp.URL+"/sso") {
			t.Fatalf("Sign in with SSO leads to %q (%v), want the identity provider's login page", loc, err)
		}
		b.do(chromedp.SendKeys(chromedp.CSS(`input[name="user"]`), "admin"), chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), adminPassword))
		// The identity provider's answer posts itself to Steward, whose
		// page posts it again: wait for the Admin Panel.
		if _, err := chromedp.Run(ctx, chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Click(chromedp.CSS(`input[type="submit"]`)))); err != nil {
			t.Fatalf("log in at the identity provider: %v", err)
		}
		b.do(chromedp.WaitVisible(chromedp.CSS("h1")))
		b.eventually("h1", "Overview")
		b.expect("header", "admin@example.com")
		if loc, err := chromedp.Run(ctx, chromedp.Location()); err != nil || !strings.HasPrefix(loc, s.http.URL+"/web/") {
			t.Fatalf("signed in, the browser is at %q (%v), want the Admin Panel", loc, err)
		}
	})
}
