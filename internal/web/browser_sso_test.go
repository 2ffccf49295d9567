package web_test

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
)

// TestBrowserSSO signs in with "Sign in with SSO" in a real browser,
// through the OpenID provider's own login page (zitadel's, served over
// TLS with a certificate the browser is told to accept), and opens the
// Single sign-on page.
func TestBrowserSSO(t *testing.T) {
	exe := chromium(t)
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		f := newSSOFixture(t, db)
		ctx := headless(t, exe, chromedp.Flag("ignore-certificate-errors", true))
		b := tab{t: t, ctx: ctx, url: f.http.URL}

		b.open("/web/signin")
		b.expect("form#sso", "Sign in with SSO")
		b.do(chromedp.SendKeys(chromedp.ID("sso-email"), "admin@example.com"))
		// The answer's script follows the start link to the provider.
		b.do(chromedp.Click(chromedp.CSS("form#sso button[type=submit]")), chromedp.WaitVisible(chromedp.ID("username")))
		if loc, err := chromedp.Run(ctx, chromedp.Location()); err != nil || !strings.HasPrefix(loc, f.op.issuer+"/login/username") {
			t.Fatalf("the browser is at %q (%v), want the provider's login page", loc, err)
		}
		b.do(chromedp.SendKeys(chromedp.ID("username"), "admin"), chromedp.SendKeys(chromedp.ID("password"), opPassword))
		b.do(chromedp.Click(chromedp.CSS("button[type=submit]")), chromedp.WaitVisible(chromedp.CSS("main")))
		b.expect("h1", "Overview")
		if loc, err := chromedp.Run(ctx, chromedp.Location()); err != nil || !strings.HasSuffix(loc, f.org()+"/") {
			t.Fatalf("signed in with SSO, the admin is at %q (%v), want the overview", loc, err)
		}
		b.open(f.org() + "/sso")
		b.expect("main", "What to give your identity provider", f.http.URL+"/web/sso/oidc/callback", "Enforcement")
		b.shot("sso")
	})
}
