package web_test

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/keys"
	"github.com/stewardhq/steward/internal/quota"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
	"github.com/stewardhq/steward/internal/usage"
	"github.com/stewardhq/steward/internal/web"
)

// screenshotsEnv, when set, makes the browser test write screenshots of
// the main pages into docs/screenshots, so that ordinary runs leave the
// committed ones alone.
const screenshotsEnv = "STEWARD_SCREENSHOTS"

// chromium returns the browser to test with. Without one the test fails
// in CI (CI=true) and is skipped elsewhere.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed: CI must run the browser tests (apt-get install -y chromium)")
	}
	t.Skip("browser tests skipped: install chromium (apt-get install -y chromium) to run them")
	return ""
}

// tab is one browser tab driven by the test.
type tab struct {
	t   *testing.T
	ctx context.Context
	url string
}

func (b tab) do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.t.Fatalf("browser: %v", err)
	}
}

// open loads a page and waits for its main region.
func (b tab) open(path string) {
	b.t.Helper()
	b.do(chromedp.Navigate(b.url+path), chromedp.WaitVisible(chromedp.CSS("main")))
}

// submit clicks the submit button of the form matched by form and waits
// for the page that answers.
func (b tab) submit(form string) {
	b.t.Helper()
	if _, err := chromedp.Run(b.ctx, chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Click(chromedp.CSS(form+" button[type=submit]")))); err != nil {
		b.t.Fatalf("submit %s: %v", form, err)
	}
}

func (b tab) text(sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

func (b tab) value(sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Value(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("value of %s: %v", sel, err)
	}
	return s
}

// expect fails unless the element's text holds every want.
func (b tab) expect(sel string, want ...string) {
	b.t.Helper()
	got := b.text(sel)
	for _, w := range want {
		if !strings.Contains(got, w) {
			b.t.Fatalf("%s says %q, want it to hold %q", sel, got, w)
		}
	}
}

// eventually waits until the element's text holds want: for changes that
// a script makes after a promise settles.
func (b tab) eventually(sel, want string) {
	b.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := b.text(sel)
		if strings.Contains(got, want) {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("%s still says %q, want it to hold %q", sel, got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (b tab) signIn(email, pw string) {
	b.t.Helper()
	b.open("/web/signin")
	b.do(chromedp.SendKeys(chromedp.ID("email"), email), chromedp.SendKeys(chromedp.ID("password"), pw))
	b.submit(`form[action="/web/signin"]`)
}

// pageWidth returns the width of the page in ctx once its viewport is
// viewport pixels wide: Chromium applies a new viewport to the page
// asynchronously, and a width read before that is the old layout's.
func pageWidth(ctx context.Context, viewport int) (int64, error) {
	return chromedp.Run(ctx, chromedp.Evaluate[int64](fmt.Sprintf(`new Promise(done => {
		const measure = () => window.innerWidth === %d ? done(document.documentElement.scrollWidth) : requestAnimationFrame(measure);
		measure();
	})`, viewport), chromedp.EvalAwaitPromise))
}

// shot checks that the page fits a 360 px wide screen and, when
// screenshotsEnv asks for them, writes screenshots of it 1400 px and 360 px
// wide (name.png, name-360.png).
func (b tab) shot(name string) {
	b.t.Helper()
	for _, w := range []struct {
		width  int64
		suffix string
	}{{1400, ""}, {360, "-360"}} {
		b.do(chromedp.EmulateViewport(w.width, 900))
		if w.width == 360 {
			width, err := pageWidth(b.ctx, 360)
			if err != nil || width > 360 {
				wide, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`Array.from(document.querySelectorAll("body *")).filter(e => e.getBoundingClientRect().right > 361).map(e => e.tagName + "." + e.className + "#" + e.id).slice(-3).join(", ")`))
				b.t.Errorf("at 360 px, the page of %s is %d px wide (%v): %s", name, width, err, wide)
			}
		}
		if os.Getenv(screenshotsEnv) == "" {
			continue
		}
		buf, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
		if err != nil {
			b.t.Fatalf("screenshot %s: %v", name, err)
		}
		dir := filepath.Join("..", "..", "docs", "screenshots")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+w.suffix+".png"), buf, 0o644); err != nil {
			b.t.Fatal(err)
		}
	}
	b.do(chromedp.EmulateReset())
}

// seedUsage records a few days of traffic on two models, so that the usage
// page has something to draw.
func seedUsage(t *testing.T, db *store.DB, orgID, workspaceID string) {
	t.Helper()
	now := time.Now().UTC()
	start := time.Date(now.Year(), now.Month(), 1, 9, 0, 0, 0, time.UTC)
	var events []usage.Event
	for d := 0; d < now.Day(); d++ {
		for i, model := range []string{"mistral-large-latest", "mistral-small-latest"} {
			in := int64(20_000 + 7_000*((d*3+i*5)%7))
			events = append(events, usage.Event{ID: fmt.Sprintf("seed-%d-%d", d, i), Time: start.AddDate(0, 0, d), OrganizationID: orgID, WorkspaceID: workspaceID,
				Model: model, InputTokens: in, OutputTokens: in / 3, Cost: in * int64(40-30*i), Currency: "USD", Endpoint: "chat.completions"})
		}
	}
	recordUsage(t, db, events)
}

// headless starts Chromium for the test, with more options if given, and
// returns its first tab's context, which ends with the test or after three
// minutes.
func headless(t *testing.T, exe string, more ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	opts := append([]chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1400, 900)}, more...)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(cancel)
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(cancelTimeout)
	return ctx
}

// TestBrowser drives the Admin Panel and the Backoffice in headless
// Chromium: sign in, invite, accept in a second browser context, create a
// Workspace and a key, see it once, rotate it, read the audit log, set a
// spend cap, then create an Organization and its Admin API key.
func TestBrowser(t *testing.T) {
	exe := chromium(t)
	storetest.Run(t, func(t *testing.T, db *store.DB) { browse(t, exe, db) })
}

func browse(t *testing.T, exe string, db *store.DB) {
	e := newEnv(t, db, web.Config{Models: []string{"mistral-small", "steward-demo"}, Webhooks: loopbackHooks(db)})
	seedUsage(t, db, e.boot.Organization.ID, e.boot.DefaultWorkspace.ID)
	seedAnalytics(t, db, e)
	seedRoles(t, e)

	ctx := headless(t, exe)
	admin := tab{t: t, ctx: ctx, url: e.http.URL}
	org := e.org()

	admin.open("/web/signin")
	admin.shot("signin")
	admin.signIn("admin@example.com", adminPassword)
	// Signing in lands on the Organization's overview.
	admin.expect("h1", "Overview")
	if loc, err := chromedp.Run(ctx, chromedp.Location()); err != nil || !strings.HasSuffix(loc, org+"/") {
		t.Fatalf("signed in, the admin is at %q (%v), want the overview", loc, err)
	}
	admin.expect("#org-spend", "USD")
	admin.expect("main", "The last 30 days", "Requests per day", "Most spend in the last 30 days", "Limits close to exhaustion", "Latest changes")
	admin.shot("overview")
	admin.open(org + "/members")
	admin.expect("main", "admin@example.com")

	// Invite, and accept in a second browser context (no shared cookies).
	admin.do(chromedp.SendKeys(chromedp.ID("emails"), "newbie@example.com"))
	admin.submit(`form[action$="/invitations"]`)
	admin.expect(".flash", "1 invitation(s) sent")
	admin.expect("main", "newbie@example.com")
	admin.shot("members")

	var token string
	err := db.View(context.Background(), func(tx *store.Tx) error {
		var body string
		err := tx.QueryRow(context.Background(), `SELECT body FROM outbox WHERE recipient = 'newbie@example.com'`).Scan(&body)
		_, after, _ := strings.Cut(body, "/invitations/accept?token=")
		token, _, _ = strings.Cut(after, "\n")
		return err
	})
	if err != nil || token == "" {
		t.Fatalf("invitation email: %v %q", err, token)
	}
	other, cancelOther := chromedp.NewContext(ctx, chromedp.WithNewBrowserContext())
	defer cancelOther()
	guest := tab{t: t, ctx: other, url: e.http.URL}
	guest.open("/invitations/accept?token=" + strings.TrimSpace(token))
	guest.do(chromedp.SendKeys(chromedp.ID("first_name"), "New"), chromedp.SendKeys(chromedp.ID("last_name"), "Bie"),
		chromedp.SendKeys(chromedp.ID("password"), "newbie's long password"), chromedp.SendKeys(chromedp.ID("password_confirm"), "newbie's long password"))
	guest.submit("form")
	guest.expect("main", "Welcome", "newbie@example.com")
	guest.signIn("newbie@example.com", "newbie's long password")
	guest.expect("main", "No role of yours opens a page")
	if loc, err := chromedp.Run(other, chromedp.Location()); err != nil || !strings.HasSuffix(loc, "/web/") {
		t.Fatalf("the new member is at %q (%v)", loc, err)
	}

	// A Workspace, and a key in it, whose secret is shown once.
	admin.open(org + "/workspaces")
	admin.do(chromedp.SendKeys(chromedp.ID("ws-name"), "Research"))
	admin.submit(`form[action$="/workspaces"]`)
	admin.expect(".flash", "The Workspace is created.")
	admin.expect("main", "Research")
	var research string
	err = db.View(context.Background(), func(tx *store.Tx) error {
		list, _, err := directory.ListWorkspaces(context.Background(), tx, e.boot.Organization.ID, false, "Research", 1, 10)
		if len(list) == 1 {
			research = list[0].ID
		}
		return err
	})
	if err != nil || research == "" {
		t.Fatalf("the Workspace is not in the database: %v", err)
	}
	admin.open(org + "/keys")
	admin.do(chromedp.SendKeys(chromedp.ID("k-name"), "ci-key"), chromedp.SetValue(chromedp.ID("k-ws"), research))
	admin.submit(`form[action$="/keys"]`)
	secret := admin.value("#secret-value")
	admin.expect("#secret-title", "API key created", "ci-key")
	if len(secret) < 30 {
		t.Fatalf("shown secret %q", secret)
	}
	admin.do(chromedp.Click(chromedp.CSS("[data-copy]")))
	admin.eventually("[data-copy]", "Copied")
	admin.shot("api-keys")
	admin.open(org + "/keys")
	if html, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html"))); err != nil || strings.Contains(html, secret) {
		t.Fatalf("the keys page shows the secret again (err %v)", err)
	}
	admin.expect("main", "ci-key", "Research")
	admin.expect("table.keys thead", "Name", "Owner", "Workspace", "Created", "Last used", "Expires", "Spent in")
	admin.expect("table.keys tbody", "ci-key", "admin@example.com", "Research")
	// Rotate from the row's menu.
	admin.do(chromedp.Click(chromedp.CSS(`details.menu summary`)))
	admin.submit(`form[action$="/rotate"]`)
	admin.expect("#secret-title", "API key rotated", "ci-key")
	if rotated := admin.value("#secret-value"); rotated == secret || len(rotated) < 30 {
		t.Fatalf("rotated secret %q, was %q", rotated, secret)
	}

	// Model access: the Workspace allows one model; the key's page says
	// what the key may call; both pages fit a 360 px wide screen.
	admin.open(org + "/workspaces/" + research)
	admin.do(chromedp.Click(chromedp.CSS(`input[name="allow"][value="some"]`)), chromedp.Click(chromedp.CSS(`input[name="model"][value="steward-demo"]`)))
	admin.submit(`form[action$="/models"]`)
	admin.expect(".flash", "The allowed models are saved.")
	err = db.View(context.Background(), func(tx *store.Tx) error {
		l, err := keys.WorkspaceModels(context.Background(), tx, e.boot.Organization.ID, research)
		if err == nil && !l.Equal(steward.NewModelAllowList([]string{"steward-demo"})) {
			t.Errorf("the Workspace's allow list in the database: %v", l.Names())
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	admin.open(org + "/keys")
	if _, err := chromedp.Run(ctx, chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Click(chromedp.CSS(`td a[href*="/keys/"]`)))); err != nil {
		t.Fatalf("open the key's page: %v", err)
	}
	admin.expect("h1", "API key ci-key")
	admin.expect("#key-workspace-models", "Its Workspace allows: steward-demo.")
	admin.expect("#key-effective-models", "This key may call: steward-demo.")
	admin.do(chromedp.EmulateViewport(360, 740))
	for _, path := range []string{"", org + "/workspaces/" + research} {
		if path != "" {
			admin.open(path)
		}
		width, err := pageWidth(ctx, 360)
		if err != nil || width > 360 {
			t.Errorf("at 360 px, %s is %d px wide (%v)", cmp.Or(path, "the key's page"), width, err)
		}
	}
	admin.do(chromedp.EmulateReset())

	// A spend cap.
	admin.open(org + "/limits")
	admin.do(chromedp.SendKeys(chromedp.ID("spend_cap"), "500"))
	admin.submit(`form[action$="/limits"]`)
	admin.expect(".flash", "The limits are saved.")
	admin.expect("#spend", "of a 500 USD cap")
	err = db.View(context.Background(), func(tx *store.Tx) error {
		s, err := quota.Load(context.Background(), tx, e.boot.Organization.ID)
		if err == nil && (s.SpendCap == nil || *s.SpendCap != 500) {
			t.Errorf("spend cap in the database: %v, want 500", s.SpendCap)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// The usage explorer: a range and a grouping, then its CSV.
	now := time.Now().UTC()
	from, to := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC).Format(time.DateOnly), now.Format(time.DateOnly)
	admin.open(org + "/usage")
	admin.expect("figcaption", "cost per day", "stacked by model", "2 series")
	admin.do(chromedp.SetValue(chromedp.ID("u-from"), from), chromedp.SetValue(chromedp.ID("u-to"), to), chromedp.SetValue(chromedp.ID("u-group"), "workspace"),
		chromedp.SetValue(chromedp.ID("u-metric"), "tokens"))
	admin.submit(`form.filters`)
	admin.expect("figcaption", "tokens per day", "stacked by workspace", "1 series")
	admin.expect("#usage-table", e.boot.DefaultWorkspace.Name)
	admin.expect("main", "of a 500 USD cap")
	admin.shot("usage")
	// The page's CSP allows no fetch from a script: the link is followed
	// with the admin's session in a client of the test's own.
	href, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('a[href*="/usage.csv"]').getAttribute("href")`))
	if err != nil {
		t.Fatal(err)
	}
	client := e.browser()
	client.mustSignIn()
	csvReply := client.get(href)
	if want := "day,group,id,name,requests,input_tokens,output_tokens,cost,currency\n" + from + ",workspace," + e.boot.DefaultWorkspace.ID + "," + e.boot.DefaultWorkspace.Name + ",2,"; csvReply.status != 200 || !strings.HasPrefix(csvReply.body, want) {
		t.Fatalf("the explorer's CSV at %s: %d %q, want it to start with %q", href, csvReply.status, csvReply.body, want)
	}
	admin.open(org + "/analytics")
	admin.do(chromedp.SetValue(chromedp.ID("an-gran"), "week"))
	admin.submit(`form.filters`)
	admin.expect("figcaption", "Chat messages per week")
	admin.expect("main", "dana@example.com", "lee@example.com", "Chat activity per agent", "agent-research", "Coding activity per day")
	admin.shot("analytics")

	// The audit log holds each change, made by the signed-in person, as
	// sentences; the raw record is one click away.
	admin.open(org + "/audit")
	admin.expect("ol.entries", "admin@example.com invited newbie@example.com", "newbie@example.com accepted the invitation",
		"admin@example.com created Workspace Research", "admin@example.com created API key 'ci-key' in Workspace Research",
		"admin@example.com rotated API key 'ci-key' in Workspace Research", "admin@example.com changed the Organization's monthly spend cap",
		"amount: none → 500")
	admin.do(chromedp.Click(chromedp.CSS(`ol.entries details summary`)))
	admin.expect(`ol.entries details[open] pre`, `"event_type": "billing.monthly_limit.updated"`, `"type": "HUMAN"`)
	admin.shot("audit-log")
	admin.open(org + "/audit?event_type=api_key.rotate")
	if got := admin.text("ol.entries"); strings.Contains(got, "created API key") || !strings.Contains(got, "rotated API key 'ci-key'") {
		t.Fatalf("filtered audit log: %q", got)
	}
	browseWebhooks(t, admin, db, org)

	// A billing manager sees the overview, limits, usage and analytics; a
	// custom role that reads keys and the log, those two pages.
	for _, who := range []struct {
		email, shot string
		menu        []string
		land        string
	}{
		{"billing@example.com", "billing-manager", []string{"Overview", "Limits", "Usage", "Analytics"}, "Overview"},
		{"auditor@example.com", "custom-role", []string{"API keys", "Audit log"}, "API keys"},
	} {
		other, cancel := chromedp.NewContext(ctx, chromedp.WithNewBrowserContext())
		member := tab{t: t, ctx: other, url: e.http.URL}
		member.signIn(who.email, "a member's own password")
		member.expect("h1", who.land)
		nav := member.text(`nav[aria-label="Admin Panel"]`)
		for _, label := range []string{"Overview", "Members", "Workspaces", "Groups", "Roles", "API keys", "Limits", "Usage", "Analytics", "Audit log"} {
			if got, want := strings.Contains(nav, label), slices.Contains(who.menu, label); got != want {
				t.Errorf("%s's menu %q: has %s %v, want %v", who.email, nav, label, got, want)
			}
		}
		member.shot(who.shot)
		member.open(org + "/members")
		member.expect("main", "your roles in this Organization do not allow this page")
		cancel()
	}

	// Backoffice: an Organization and its Admin API key.
	ea := "/web/ea/" + e.boot.EnterpriseAccount.ID
	admin.open(ea + "/orgs")
	admin.do(chromedp.SendKeys(chromedp.ID("org-name"), "Beta Labs"))
	admin.submit(`form[action$="/orgs"]`)
	admin.expect(".flash", "The Organization is created.")
	admin.expect("main", "Beta Labs")
	admin.shot("backoffice-organizations")
	var beta string
	err = db.View(context.Background(), func(tx *store.Tx) error {
		orgs, _, err := directory.ListOrganizations(context.Background(), tx, e.boot.EnterpriseAccount.ID)
		for _, o := range orgs {
			if o.Name == "Beta Labs" {
				beta = o.ID
			}
		}
		return err
	})
	if err != nil || beta == "" {
		t.Fatalf("Beta Labs is not in the database: %v", err)
	}
	admin.open(ea + "/admin-keys")
	admin.do(chromedp.SetValue(chromedp.ID("ak-org"), beta), chromedp.SendKeys(chromedp.ID("ak-name"), "beta-admin"))
	admin.submit(`form[action$="/admin-keys"]`)
	admin.expect("#secret-title", "Admin API key created", "beta-admin")
	adminKey := admin.value("#secret-value")
	admin.expect("main", "Beta Labs")
	admin.shot("backoffice-admin-keys")

	// The key works on the Admin API, for Beta Labs.
	req, _ := http.NewRequest("GET", e.http.URL+"/v1/admin/workspaces", nil)
	req.Header.Set("x-api-key", adminKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("the Admin API key made in the Backoffice: %d", resp.StatusCode)
	}
}
