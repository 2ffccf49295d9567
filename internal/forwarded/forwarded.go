// Package forwarded reads what a reverse proxy says about the client it
// forwards: its address (X-Forwarded-For) and whether it spoke HTTPS
// (X-Forwarded-Proto). Any client can send these headers, so they are
// believed only from the proxies an operator lists as trusted.
package forwarded

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Trusted lists the proxies whose forwarding headers are believed. The
// zero Trusted believes none: the client is the peer of the connection.
type Trusted struct {
	prefixes []netip.Prefix
}

// Parse reads a comma-separated list of CIDR prefixes and addresses, such
// as "10.0.0.0/8, 192.168.1.7, ::1". An empty list trusts no proxy.
func Parse(list string) (Trusted, error) {
	var t Trusted
	for item := range strings.SplitSeq(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		p, err := netip.ParsePrefix(item)
		if err != nil {
			a, aerr := netip.ParseAddr(item)
			if aerr != nil {
				return Trusted{}, fmt.Errorf("trusted proxy %q: want an IP address or a CIDR prefix such as 10.0.0.0/8", item)
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		t.prefixes = append(t.prefixes, netip.PrefixFrom(p.Addr().Unmap(), unmappedBits(p)).Masked())
	}
	return t, nil
}

// unmappedBits is p's length once an IPv4-mapped IPv6 prefix
// (::ffff:10.0.0.0/104) is written as the IPv4 prefix it means.
func unmappedBits(p netip.Prefix) int {
	if p.Addr().Is4In6() {
		return max(p.Bits()-96, 0)
	}
	return p.Bits()
}

// Empty reports whether no proxy is trusted.
func (t Trusted) Empty() bool { return len(t.prefixes) == 0 }

// Everyone reports whether a listed prefix covers every address of its
// family (0.0.0.0/0, ::/0): any client could then claim any address.
func (t Trusted) Everyone() bool {
	for _, p := range t.prefixes {
		if p.Bits() == 0 {
			return true
		}
	}
	return false
}

func (t Trusted) trusts(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range t.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// peer is the address of the connection's other end.
func peer(r *http.Request) (netip.Addr, bool) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	return a.Unmap(), err == nil
}

// ClientIP returns the address of the client that sent r. Behind trusted
// proxies it is the nearest address in X-Forwarded-For that is not a
// trusted proxy: walking the list from the right, each proxy appended the
// address it received from, and only the entries added by trusted proxies
// can be believed. Without a trusted peer it is the peer itself.
func (t Trusted) ClientIP(r *http.Request) string {
	client, ok := peer(r)
	if !ok {
		return r.RemoteAddr
	}
	if !t.trusts(client) {
		return client.String()
	}
	hops := r.Header.Values("X-Forwarded-For")
	for i := len(hops) - 1; i >= 0; i-- {
		items := strings.Split(hops[i], ",")
		for j := len(items) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(strings.TrimSpace(items[j]))
			if err != nil {
				// A trusted proxy wrote something that is not an address:
				// the last address believed is the best there is.
				return client.String()
			}
			client = a.Unmap()
			if !t.trusts(client) {
				return client.String()
			}
		}
	}
	return client.String()
}

// HTTPS reports whether the client reached Steward over HTTPS: the
// request came over TLS, or a trusted proxy says, in X-Forwarded-Proto,
// that the client spoke HTTPS to it. The first value counts: it is the
// scheme of the first hop, the client's own.
func (t Trusted) HTTPS(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	if t.Empty() {
		return false
	}
	if a, ok := peer(r); !ok || !t.trusts(a) {
		return false
	}
	first, _, _ := strings.Cut(r.Header.Get("X-Forwarded-Proto"), ",")
	return strings.EqualFold(strings.TrimSpace(first), "https")
}
