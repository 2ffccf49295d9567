package forwarded

import (
	"crypto/tls"
	"net/http"
	"strings"
	"testing"
)

func request(remote string, header ...string) *http.Request {
	r, _ := http.NewRequest("GET", "http://steward.example/web/signin", nil)
	r.RemoteAddr = remote
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Add(header[i], header[i+1])
	}
	return r
}

func TestClientIP(t *testing.T) {
	proxies, err := Parse("10.0.0.0/8, 192.168.1.7, ::ffff:172.16.0.0/108")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		trusted Trusted
		r       *http.Request
		want    string
	}{
		{"no proxy trusted: the peer, whatever it claims", Trusted{}, request("203.0.113.9:5000", "X-Forwarded-For", "198.51.100.1"), "203.0.113.9"},
		{"an untrusted peer's header is ignored", proxies, request("203.0.113.9:5000", "X-Forwarded-For", "198.51.100.1"), "203.0.113.9"},
		{"a trusted proxy names the client", proxies, request("10.1.2.3:5000", "X-Forwarded-For", "198.51.100.1"), "198.51.100.1"},
		{"a forged entry left of the real client is skipped", proxies, request("10.1.2.3:5000", "X-Forwarded-For", "1.2.3.4, 198.51.100.1"), "198.51.100.1"},
		{"a chain of trusted proxies", proxies, request("192.168.1.7:5000", "X-Forwarded-For", "198.51.100.1, 10.9.9.9"), "198.51.100.1"},
		{"headers repeated are one list", proxies, request("10.1.2.3:5000", "X-Forwarded-For", "1.2.3.4", "X-Forwarded-For", "198.51.100.2, 10.0.0.5"), "198.51.100.2"},
		{"every hop trusted: the leftmost", proxies, request("10.1.2.3:5000", "X-Forwarded-For", "10.0.0.1, 10.0.0.2"), "10.0.0.1"},
		{"a trusted proxy without the header", proxies, request("10.1.2.3:5000"), "10.1.2.3"},
		{"garbage from a trusted proxy stops at the last hop believed", proxies, request("10.1.2.3:5000", "X-Forwarded-For", "not-an-ip"), "10.1.2.3"},
		{"IPv6 client", proxies, request("10.1.2.3:5000", "X-Forwarded-For", "2001:db8::1"), "2001:db8::1"},
		{"an IPv4-mapped prefix trusts the IPv4 addresses", proxies, request("[::ffff:172.16.0.9]:5000", "X-Forwarded-For", "198.51.100.3"), "198.51.100.3"},
	} {
		if got := tc.trusted.ClientIP(tc.r); got != tc.want {
			t.Errorf("%s: ClientIP = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestHTTPS(t *testing.T) {
	proxies, err := Parse("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	overTLS := request("203.0.113.9:5000")
	overTLS.TLS = &tls.ConnectionState{}
	for _, tc := range []struct {
		name    string
		trusted Trusted
		r       *http.Request
		want    bool
	}{
		{"TLS in the process", Trusted{}, overTLS, true},
		{"plain HTTP", proxies, request("127.0.0.1:5000"), false},
		{"a trusted proxy says https", proxies, request("127.0.0.1:5000", "X-Forwarded-Proto", "HTTPS"), true},
		{"the first hop's scheme counts", proxies, request("127.0.0.1:5000", "X-Forwarded-Proto", "https, http"), true},
		{"a trusted proxy says http", proxies, request("127.0.0.1:5000", "X-Forwarded-Proto", "http"), false},
		{"an untrusted client says https", proxies, request("203.0.113.9:5000", "X-Forwarded-Proto", "https"), false},
		{"no proxy trusted", Trusted{}, request("127.0.0.1:5000", "X-Forwarded-Proto", "https"), false},
	} {
		if got := tc.trusted.HTTPS(tc.r); got != tc.want {
			t.Errorf("%s: HTTPS = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		list     string
		err      string
		everyone bool
	}{
		{list: ""},
		{list: " 10.0.0.0/8 ,, 2001:db8::/32 "},
		{list: "0.0.0.0/0", everyone: true},
		{list: "10.0.0.0/8, ::/0", everyone: true},
		{list: "10.0.0.0/33", err: `trusted proxy "10.0.0.0/33"`},
		{list: "proxy.internal", err: `trusted proxy "proxy.internal"`},
	} {
		got, err := Parse(tc.list)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("Parse(%q) = %v, want an error naming %s", tc.list, err, tc.err)
		case tc.err == "" && err != nil:
			t.Errorf("Parse(%q): %v", tc.list, err)
		case got.Everyone() != tc.everyone:
			t.Errorf("Parse(%q).Everyone() = %v, want %v", tc.list, got.Everyone(), tc.everyone)
		}
	}
}
