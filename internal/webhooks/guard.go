package webhooks

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/stewardhq/steward/internal/steward"
)

// Guard keeps webhook requests off the server's own network (server-side
// request forgery): an endpoint's URL must be https and its host must
// resolve to public addresses only. The URL is checked when it is set, and
// every connection is checked again once its address is resolved, since a
// DNS answer can change; redirects are not followed.
type Guard struct {
	// AllowPrivate allows http and every address (loopback, private
	// networks): --webhooks-allow-private, for tests and closed networks.
	AllowPrivate bool
	// Resolver resolves hosts when a URL is checked; net.DefaultResolver
	// when nil.
	Resolver *net.Resolver
}

// resolveTimeout bounds the look-up of an endpoint's host when its URL is
// set.
const resolveTimeout = 5 * time.Second

// CheckURL returns an *steward.Error of KindInvalid naming field "url"
// unless raw is a URL that webhooks may be sent to.
func (g Guard) CheckURL(ctx context.Context, raw string) error {
	invalid := func(format string, args ...any) error {
		return steward.Invalid([]string{"body", "url"}, format, args...)
	}
	if len(raw) > MaxURLLen {
		return invalid("url must be at most %d characters", MaxURLLen)
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Host == "" || u.Opaque != "":
		return invalid("url must be an absolute https URL")
	case u.Scheme != "https" && !(g.AllowPrivate && u.Scheme == "http"):
		return invalid("url must use https")
	case u.User != nil:
		return invalid("url must not carry a user name or password")
	case u.Fragment != "":
		return invalid("url must not have a fragment")
	}
	host := u.Hostname()
	if g.AllowPrivate {
		return nil
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else {
		r := g.Resolver
		if r == nil {
			r = net.DefaultResolver
		}
		rctx, cancel := context.WithTimeout(ctx, resolveTimeout)
		defer cancel()
		if addrs, err = r.LookupNetIP(rctx, "ip", host); err != nil || len(addrs) == 0 {
			return invalid("url's host %s does not resolve", host)
		}
	}
	for _, a := range addrs {
		if !Public(a) {
			return invalid("url's host %s resolves to %s, which is not a public address", host, a.Unmap())
		}
	}
	return nil
}

// reserved are the prefixes that reach no public host, beside those
// netip.Addr's own methods name (loopback, private, link-local,
// multicast, unspecified).
var reserved = func() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8",       // "this" network
		"100.64.0.0/10",   // carrier-grade NAT
		"192.0.0.0/24",    // IETF protocol assignments
		"192.0.2.0/24",    // documentation
		"198.18.0.0/15",   // benchmarking
		"198.51.100.0/24", // documentation
		"203.0.113.0/24",  // documentation
		"240.0.0.0/4",     // reserved, and the broadcast address
		"64:ff9b::/96",    // NAT64, which embeds an IPv4 address
		"64:ff9b:1::/48",  // local NAT64
		"2002::/16",       // 6to4, which embeds an IPv4 address
		"2001::/32",       // Teredo
		"2001:db8::/32",   // documentation
		"fec0::/10",       // site-local
		"100::/64",        // discard
	} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}()

// Public reports whether a is an address webhooks may reach: not loopback,
// private, link-local, multicast, unspecified or otherwise reserved. An
// IPv4-mapped IPv6 address is judged as the IPv4 address it maps.
func Public(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsValid() || a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsInterfaceLocalMulticast() || a.IsMulticast() || a.IsUnspecified() {
		return false
	}
	for _, p := range reserved {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

// control refuses a connection to an address that is not public, after
// resolution and before the connection is made.
func (g Guard) control(_, address string, _ syscall.RawConn) error {
	if g.AllowPrivate {
		return nil
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("webhook: refusing to connect to %s: %w", address, err)
	}
	if !Public(ap.Addr()) {
		return fmt.Errorf("webhook: refusing to connect to %s: not a public address", ap.Addr().Unmap())
	}
	return nil
}

// errRedirect is a webhook answered with a redirect, which is not
// followed: its target was never checked, and a delivery is one request.
var errRedirect = errors.New("redirects are not followed")

// Client returns the HTTP client that deliveries are made with: no proxy
// (a proxy would connect on our behalf, past the check), every connection
// checked by control, no redirect followed.
func (g Guard) Client(timeout time.Duration) *http.Client {
	dialer := &net.Dialer{Timeout: timeout, Control: g.control}
	transport := &http.Transport{
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	return &http.Client{
		Transport: transport,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return errRedirect
		},
	}
}

// describe turns a delivery's failure into the text kept in its log,
// without the URL's query, which may carry a token.
func describe(err error) string {
	if ue, ok := err.(*url.Error); ok {
		err = ue.Err
	}
	return strings.TrimSpace(err.Error())
}
