package config

import (
	"fmt"
	"net"
	"strings"
)

// Problem is a mistake in a configuration: what would go wrong, and what
// to change.
type Problem struct {
	What, Change string
}

// Problems returns the mistakes of c that `steward doctor` reports and
// `steward serve` warns about when it starts: each is valid, runs, and
// leaves something open that an operator would not want open.
func (c *Config) Problems() []Problem {
	var out []Problem
	add := func(change, format string, args ...any) {
		out = append(out, Problem{What: fmt.Sprintf(format, args...), Change: change})
	}
	https := strings.HasPrefix(c.PublicURL, "https://")
	if !loopback(c.Addr) && !https {
		public := "no https:// --public-url says that a proxy serves it over HTTPS"
		if c.PublicURL != "" {
			public = "its public URL " + c.PublicURL + " is plain HTTP too"
		}
		add("serve Steward through a proxy that terminates TLS, set --public-url to its https:// URL and --trusted-proxies to the proxy's address; or listen on 127.0.0.1 behind a proxy on this host",
			"Steward listens on %s, which other hosts can reach, over plain HTTP, and %s: passwords, session cookies and API keys would cross the network in clear text", c.Addr, public)
	}
	if https && !c.SecureCookies && c.TrustedProxies == "" {
		add("set --trusted-proxies to the address of the proxy that terminates TLS, whose X-Forwarded-Proto: https then marks cookies Secure; or set --secure-cookies",
			"the public URL %s is https, but the web pages' cookies would not be marked Secure: Steward receives plain HTTP from the proxy and trusts no proxy to say that the client used HTTPS, so a browser would send the session cookie over plain HTTP too", c.PublicURL)
	}
	if p, err := c.Proxies(); err == nil && p.Everyone() {
		add("list only the proxies' own addresses in --trusted-proxies",
			"--trusted-proxies %q trusts every address: any client can name itself any client in X-Forwarded-For, and so escape sign-in throttling", c.TrustedProxies)
	}
	if c.DebugAddr != "" {
		add("unset --debug-addr (STEWARD_DEBUG_ADDR) except while investigating",
			"the profiler is on at %s: it has no authentication, and shows whoever can reach it from this host the command line (with any password in --database-url or --smtp-url) and every goroutine's stack", c.DebugAddr)
	}
	if c.WebhooksAllowPrivate {
		add("unset --webhooks-allow-private (webhooks_allow_private) unless every Organization admin may reach this network",
			"webhooks may use http and reach loopback and private addresses: an Organization admin can make Steward send requests to services on its own network (server-side request forgery)")
	}
	if len(c.Models) > 0 && c.UpstreamHeaderTimeout == 0 {
		add("set --upstream-header-timeout (upstream_header_timeout), longer than the slowest answer a model server gives without streaming, e.g. 5m",
			"model servers have no timeout: one that accepts a request and never answers holds it, its client's connection and its reserved limits until the client gives up")
	}
	return out
}

// loopback reports whether addr (host:port) is reachable from this host
// only. An empty host listens on every interface.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
