package web_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/auth"
	"github.com/stewardhq/steward/internal/forwarded"
	"github.com/stewardhq/steward/internal/limits"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
	"github.com/stewardhq/steward/internal/web"
)

// clock is the throttle's time, moved by the test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// behindProxy is a configuration whose throttle runs on its own clock, and
// which trusts the proxy every test browser connects from.
func behindProxy(t *testing.T) (web.Config, *clock) {
	t.Helper()
	proxies, err := forwarded.Parse("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	return web.Config{Throttle: limits.NewLocal(clk.now), Proxies: proxies}, clk
}

// wrong is a password longer than any: refused like a wrong one without
// the cost of hashing, so that a test can fail many sign-ins quickly.
var wrong = strings.Repeat("x", auth.MaxPasswordLen+1)

func (b *browser) setCookie(name, value string) {
	u, _ := url.Parse(b.e.http.URL + "/web/")
	b.c.Jar.SetCookies(u, []*http.Cookie{{Name: name, Value: value}})
}

// refusedFor checks that r is a throttled sign-in and returns its wait.
func refusedFor(t *testing.T, what string, r reply) time.Duration {
	t.Helper()
	secs, err := strconv.Atoi(r.header.Get("Retry-After"))
	if r.status != http.StatusTooManyRequests || !strings.Contains(r.body, "too many attempts: try again in") || err != nil {
		t.Fatalf("%s: %d, Retry-After %q, %s; want a 429 saying how long to wait", what, r.status, r.header.Get("Retry-After"), r.body)
	}
	return time.Duration(secs) * time.Second
}

func TestSignInThrottleSlowsTheGuesserNotThePerson(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		cfg, clk := behindProxy(t)
		e := newEnv(t, db, cfg)
		guesser := e.browserAt("198.51.100.1")
		var got []int
		for range 12 {
			got = append(got, guesser.signIn("admin@example.com", wrong).status)
		}
		want := []int{401, 401, 401, 401, 401, 401, 429, 429, 429, 429, 429, 429}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("12 wrong passwords from one client answered %v, want %v: five free failures, then a wait", got, want)
		}
		refusedFor(t, "the right password from the guesser's client during its wait", guesser.signIn("admin@example.com", adminPassword))

		// The person, from their own client, is not kept out.
		e.browserAt("203.0.113.7").mustSignIn()

		// Each failure after a wait doubles the next wait.
		var waits []time.Duration
		for range 4 {
			wait := refusedFor(t, "an attempt during the wait", guesser.signIn("admin@example.com", wrong))
			waits = append(waits, wait)
			clk.advance(wait)
			if r := guesser.signIn("admin@example.com", wrong); r.status != http.StatusUnauthorized || !strings.Contains(r.body, "wrong email or password") {
				t.Fatalf("an attempt after waiting %s: %d %s, want 401", wait, r.status, r.body)
			}
		}
		if fmt.Sprint(waits) != "[2s 4s 8s 16s]" {
			t.Errorf("the guesser's waits were %v, want [2s 4s 8s 16s]", waits)
		}
	})
}

func TestSignInThrottleAcrossClientsSparesKnownBrowsers(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		cfg, clk := behindProxy(t)
		e := newEnv(t, db, cfg)
		known := e.browserAt("203.0.113.7")
		r := known.signIn("admin@example.com", adminPassword)
		var device *http.Cookie
		for _, c := range (&http.Response{Header: r.header}).Cookies() {
			if c.Name == "steward_device" {
				device = c
			}
		}
		if r.status != http.StatusSeeOther || device == nil || !device.HttpOnly || device.Path != "/web/" || device.MaxAge != 90*24*3600 {
			t.Fatalf("sign in: %d, device cookie %+v; want a 90-day HttpOnly cookie on /web/", r.status, device)
		}

		// Guessing spread over many clients, each within its free failures:
		// 21 failures in all, one past the address's free 20.
		for i := range 21 {
			g := e.browserAt(fmt.Sprintf("198.51.100.%d", 1+i/4))
			if r := g.signIn("admin@example.com", wrong); r.status != http.StatusUnauthorized {
				t.Fatalf("failure %d: %d %s", i+1, r.status, r.body)
			}
		}
		stranger := e.browserAt("192.0.2.1")
		wait := refusedFor(t, "a client never seen, during the address's wait", stranger.signIn("admin@example.com", adminPassword))
		forger := e.browserAt("192.0.2.2")
		forger.setCookie("steward_device", strings.Repeat("A", 22)+"."+strings.Repeat("B", 43))
		refusedFor(t, "a forged device cookie", forger.signIn("admin@example.com", adminPassword))
		// Another address's device cookie is not this one's.
		other := e.browserAt("192.0.2.3")
		other.setCookie("steward_device", device.Value)
		if r := other.signIn("someone@example.com", wrong); r.status != http.StatusUnauthorized {
			t.Fatalf("another address with the admin's device cookie: %d %s", r.status, r.body)
		}

		// The browser the person signed in from goes through.
		known.mustSignIn()
		// A delay, not a lock-out: after the wait, the stranger's right
		// password works.
		clk.advance(wait)
		stranger.mustSignIn()
	})
}

func TestSecureCookiesBehindATrustedProxy(t *testing.T) {
	formCookie := func(e *env, proto string) *http.Cookie {
		t.Helper()
		b := e.browser()
		if proto != "" {
			b.header.Set("X-Forwarded-Proto", proto)
		}
		cookies := (&http.Response{Header: b.get("/web/signin").header}).Cookies()
		if len(cookies) != 1 {
			t.Fatalf("cookies of the sign-in page: %+v, want one", cookies)
		}
		return cookies[0]
	}
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		cfg, _ := behindProxy(t)
		e := newEnv(t, db, cfg)
		for _, tc := range []struct {
			proto  string
			secure bool
		}{{"https", true}, {"HTTPS, http", true}, {"http", false}, {"", false}} {
			if c := formCookie(e, tc.proto); c.Secure != tc.secure || !c.HttpOnly {
				t.Errorf("X-Forwarded-Proto %q from a trusted proxy: cookie %+v, want Secure %v", tc.proto, c, tc.secure)
			}
		}
	})
	// A client that is not a trusted proxy cannot make cookies Secure,
	// which would keep them from a browser on plain HTTP.
	proxies, err := forwarded.Parse("10.0.0.0/8")
	if err != nil {
		t.Fatal(err)
	}
	db, _ := storetest.OpenSQLite(t)
	if c := formCookie(newEnv(t, db, web.Config{Proxies: proxies}), "https"); c.Secure {
		t.Errorf("X-Forwarded-Proto https from an untrusted client: cookie %+v, want it not Secure", c)
	}
}

// forgot asks for a reset link for email.
func (b *browser) forgot(email string) reply {
	return b.post("/web/password/forgot", url.Values{"csrf": {b.csrf("/web/password/forgot")}, "email": {email}})
}

func TestResetRequestsAreThrottled(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		cfg, clk := behindProxy(t)
		e := newEnv(t, db, cfg)
		// An address is sent a burst of 10 links, whoever asks, then one a
		// minute.
		for i := range 10 {
			if r := e.browserAt(fmt.Sprintf("198.51.100.%d", i+1)).forgot("Admin@example.com"); r.status != http.StatusOK {
				t.Fatalf("reset request %d: %d %s", i+1, r.status, r.body)
			}
		}
		if wait := refusedFor(t, "an 11th reset request for the address", e.browserAt("198.51.100.99").forgot("admin@example.com")); wait != time.Minute {
			t.Errorf("an 11th reset request waits %s, want 1m", wait)
		}
		clk.advance(time.Minute)
		if r := e.browserAt("198.51.100.99").forgot("admin@example.com"); r.status != http.StatusOK {
			t.Fatalf("a reset request a minute later: %d %s", r.status, r.body)
		}
		// One client asks for at most 30 addresses at once, then 10 a minute.
		asker := e.browserAt("203.0.113.9")
		for i := range 30 {
			if r := asker.forgot(fmt.Sprintf("someone%d@example.com", i)); r.status != http.StatusOK {
				t.Fatalf("reset request %d of one client: %d %s", i+1, r.status, r.body)
			}
		}
		refusedFor(t, "a 31st reset request of one client", asker.forgot("someone-else@example.com"))
	})
}

func TestSSOLookupsAreThrottled(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		cfg, clk := behindProxy(t)
		e := newEnv(t, db, cfg)
		lookup := func(b *browser, email string) reply {
			return b.post("/web/sso", url.Values{"csrf": {b.csrf("/web/signin")}, "email": {email}, "next": {"/web/"}})
		}
		// "Sign in with SSO" tells whether an address has single sign-on:
		// one client asks about 30 addresses at once, then 10 a minute.
		asker := e.browserAt("203.0.113.9")
		for i := range 30 {
			if r := lookup(asker, fmt.Sprintf("someone%d@example.com", i)); r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, "not set up for this address") {
				t.Fatalf("lookup %d of one client: %d %s", i+1, r.status, r.body)
			}
		}
		refusedFor(t, "a 31st lookup of one client", lookup(asker, "someone-else@example.com"))
		if r := lookup(e.browserAt("203.0.113.10"), "someone@example.com"); r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, "not set up for this address") {
			t.Fatalf("another client's lookup: %d %s", r.status, r.body)
		}
		clk.advance(6 * time.Second)
		if r := lookup(asker, "someone-else@example.com"); r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, "not set up for this address") {
			t.Fatalf("the client's lookup 6 s later: %d %s", r.status, r.body)
		}
	})
}
