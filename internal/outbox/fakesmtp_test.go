package outbox

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"math/big"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeSMTP is just enough of an SMTP server to receive what the Sender
// sends: EHLO, STARTTLS, AUTH PLAIN, MAIL, RCPT, DATA, RSET, NOOP, QUIT.
type fakeSMTP struct {
	t    *testing.T
	ln   net.Listener
	Addr string // 127.0.0.1:port

	// Set before the first connection.
	StartTLS  *tls.Config   // offer STARTTLS with this configuration
	AuthPlain bool          // offer AUTH PLAIN (after TLS, when STARTTLS is offered)
	RcptReply string        // e.g. "550 5.1.1 no such user"; empty accepts
	DataDelay time.Duration // pause before accepting DATA

	mu          sync.Mutex
	connections int
	commands    []string
	mails       []received
}

// received is one accepted message.
type received struct {
	From, To string
	Data     string
	TLS      bool
	User     string
	Password string
}

func newFakeSMTP(t *testing.T, implicitTLS *tls.Config) *fakeSMTP {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if implicitTLS != nil {
		ln = tls.NewListener(ln, implicitTLS)
	}
	f := &fakeSMTP{t: t, ln: ln, Addr: ln.Addr().String()}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			f.mu.Lock()
			f.connections++
			f.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer conn.Close()
				_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
				f.serve(conn, implicitTLS != nil)
			}()
		}
	}()
	return f
}

func (f *fakeSMTP) Mails() []received {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]received(nil), f.mails...)
}

func (f *fakeSMTP) Connections() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.connections
}

func (f *fakeSMTP) Commands() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.commands...)
}

func (f *fakeSMTP) serve(conn net.Conn, isTLS bool) {
	tp := textproto.NewConn(conn)
	reply := func(lines ...string) bool {
		for _, l := range lines {
			if err := tp.PrintfLine("%s", l); err != nil {
				return false
			}
		}
		return true
	}
	if !reply("220 fake.test ESMTP") {
		return
	}
	var cur received
	var user, password string
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		verb = strings.ToUpper(verb)
		f.mu.Lock()
		f.commands = append(f.commands, verb)
		f.mu.Unlock()
		switch verb {
		case "EHLO":
			ext := []string{"fake.test", "8BITMIME"}
			if f.StartTLS != nil && !isTLS {
				ext = append(ext, "STARTTLS")
			}
			if f.AuthPlain && (isTLS || f.StartTLS == nil) {
				ext = append(ext, "AUTH PLAIN")
			}
			var lines []string
			for i, e := range ext {
				sep := "-"
				if i == len(ext)-1 {
					sep = " "
				}
				lines = append(lines, "250"+sep+e)
			}
			if !reply(lines...) {
				return
			}
		case "HELO", "NOOP", "RSET":
			cur = received{}
			reply("250 ok")
		case "STARTTLS":
			if f.StartTLS == nil || isTLS {
				reply("502 not now")
				continue
			}
			reply("220 go ahead")
			tc := tls.Server(conn, f.StartTLS)
			if err := tc.Handshake(); err != nil {
				return
			}
			conn, isTLS = tc, true
			tp = textproto.NewConn(conn)
			cur = received{}
		case "AUTH":
			mech, resp, _ := strings.Cut(arg, " ")
			if !strings.EqualFold(mech, "PLAIN") {
				reply("504 unsupported")
				continue
			}
			if resp == "" {
				reply("334 ")
				if resp, err = tp.ReadLine(); err != nil {
					return
				}
			}
			b, err := base64.StdEncoding.DecodeString(resp)
			parts := strings.Split(string(b), "\x00")
			if err != nil || len(parts) != 3 {
				reply("501 bad response")
				continue
			}
			user, password = parts[1], parts[2]
			reply("235 ok")
		case "MAIL":
			cur = received{From: arg, TLS: isTLS, User: user, Password: password}
			reply("250 ok")
		case "RCPT":
			if f.RcptReply != "" {
				reply(f.RcptReply)
				continue
			}
			cur.To = arg
			reply("250 ok")
		case "DATA":
			if cur.To == "" {
				reply("503 no recipient")
				continue
			}
			reply("354 go ahead")
			data, err := tp.ReadDotBytes()
			if err != nil {
				return
			}
			time.Sleep(f.DataDelay)
			cur.Data = string(data)
			f.mu.Lock()
			f.mails = append(f.mails, cur)
			f.mu.Unlock()
			cur = received{}
			reply("250 queued")
		case "QUIT":
			reply("221 bye")
			return
		default:
			reply("502 unknown command")
		}
	}
}

// testCert returns a server configuration with a fresh self-signed
// certificate for name, and a pool that trusts it.
func testCert(t *testing.T, name string) (*tls.Config, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		DNSNames:              []string{name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}, pool
}

// closedPort returns a 127.0.0.1 address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
