package outbox

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// smtpServer is a parsed SMTP URL. The credentials live only inside auth,
// behind a pointer, so that printing a Sender cannot show the password.
type smtpServer struct {
	implicitTLS bool
	host        string
	addr        string // host:port
	auth        smtp.Auth
}

// parseSMTPURL parses Config.SMTPURL; "" gives nil (log mode). Its errors
// never quote the URL, which may hold a password.
func parseSMTPURL(raw string) (*smtpServer, error) {
	if raw == "" {
		return nil, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the whole URL
		}
		return nil, fmt.Errorf("not a URL: %w", err)
	}
	srv := &smtpServer{}
	var port string
	switch u.Scheme {
	case "smtp":
		port = "587"
	case "smtps":
		srv.implicitTLS, port = true, "465"
	default:
		return nil, fmt.Errorf("scheme must be smtp:// (STARTTLS) or smtps:// (implicit TLS), not %q", u.Scheme)
	}
	switch {
	case u.Opaque != "":
		return nil, errors.New("must be of the form smtp://host:port")
	case u.Hostname() == "":
		return nil, errors.New("has no host")
	case u.Path != "" && u.Path != "/":
		return nil, errors.New("must not have a path")
	case u.RawQuery != "" || u.ForceQuery:
		return nil, errors.New("takes no query parameters")
	case u.Fragment != "":
		return nil, errors.New("must not have a fragment")
	}
	srv.host = u.Hostname()
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("port %q is not between 1 and 65535", p)
		}
		port = p
	}
	srv.addr = net.JoinHostPort(srv.host, port)
	if u.User != nil {
		user := u.User.Username()
		pass, hasPass := u.User.Password()
		if user == "" || !hasPass || pass == "" {
			return nil, errors.New("credentials must be given as user:password@host")
		}
		srv.auth = smtp.PlainAuth("", user, pass, srv.host)
	}
	return srv, nil
}

// isLocalhost is net/smtp's own test for a host to which PLAIN credentials
// may go unencrypted; sharing it makes our refusal the one users see.
func isLocalhost(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}

// send runs one SMTP session that delivers msg to one recipient. Once the
// server has accepted the DATA, the message counts as delivered whatever
// happens to the rest of the session.
func (s *Sender) send(ctx context.Context, to string, msg []byte) error {
	srv := s.server
	conn, err := s.dial(ctx, "tcp", srv.addr)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", srv.addr, err)
	}
	// Closing the connection is the only way to interrupt net/smtp.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
	}
	tlsConfig := &tls.Config{ServerName: srv.host, MinVersion: tls.VersionTLS12, RootCAs: s.rootCAs}
	if srv.implicitTLS {
		tc := tls.Client(conn, tlsConfig)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return fmt.Errorf("TLS with %s: %w", srv.addr, err)
		}
		conn = tc
	}
	c, err := smtp.NewClient(conn, srv.host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("greeting from %s: %w", srv.addr, err)
	}
	defer c.Close()
	if err := c.Hello(s.helo); err != nil {
		return fmt.Errorf("%s: %w", srv.addr, err)
	}
	if !srv.implicitTLS {
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(tlsConfig); err != nil {
				return fmt.Errorf("STARTTLS with %s: %w", srv.addr, err)
			}
		} else if srv.auth != nil && !isLocalhost(srv.host) {
			return fmt.Errorf("%s does not offer STARTTLS: refusing to send credentials unencrypted", srv.addr)
		}
	}
	if srv.auth != nil {
		ok, mechanisms := c.Extension("AUTH")
		if !ok || !slices.Contains(strings.Fields(strings.ToUpper(mechanisms)), "PLAIN") {
			return fmt.Errorf("%s does not offer AUTH PLAIN (it offers %q)", srv.addr, mechanisms)
		}
		if err := c.Auth(srv.auth); err != nil {
			return fmt.Errorf("authenticate to %s: %w", srv.addr, err)
		}
	}
	if err := c.Mail(s.from.Address); err != nil {
		return fmt.Errorf("%s refused sender: %w", srv.addr, err)
	}
	if err := c.Rcpt(to); err != nil {
		return fmt.Errorf("%s refused recipient: %w", srv.addr, err)
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("%s refused data: %w", srv.addr, err)
	}
	if _, err := w.Write(msg); err != nil {
		return fmt.Errorf("send to %s: %w", srv.addr, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("%s refused message: %w", srv.addr, err)
	}
	_ = c.Quit()
	return nil
}

// compose renders m as an RFC 5322 message with CRLF line endings, its body
// quoted-printable so that no line is too long whatever the text. The
// Message-ID is the outbox id, so that a resent message can be recognised.
func compose(from *mail.Address, domain string, m *pending, date time.Time) []byte {
	var b bytes.Buffer
	header := func(name, value string) {
		b.WriteString(name)
		b.WriteString(": ")
		b.WriteString(value)
		b.WriteString("\r\n")
	}
	header("Date", date.Format(time.RFC1123Z))
	header("From", from.String())
	header("To", (&mail.Address{Address: m.to}).String())
	header("Subject", encodeSubject(m.subject))
	header("Message-ID", "<"+m.id+"@"+domain+">")
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=utf-8")
	header("Content-Transfer-Encoding", "quoted-printable")
	header("Content-Language", m.language)
	header("Auto-Submitted", "auto-generated") // RFC 3834: no vacation replies
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	body := m.body
	// The message must end with a line break; net/smtp would add one
	// anyway, outside the quoted-printable text.
	if !strings.HasSuffix(body, "\n") && !strings.HasSuffix(body, "\r") {
		body += "\n"
	}
	_, _ = qp.Write([]byte(body)) // writes to a bytes.Buffer cannot fail
	_ = qp.Close()
	return b.Bytes()
}

// encodeSubject returns a short ASCII subject as it is (unless it looks like
// an encoded-word itself), and any other as
// RFC 2047 Q encoded-words, one per folded line. mime.QEncoding is not used
// because it leaves long ASCII subjects alone, and a subject of up to 998
// bytes would then overflow its header line.
func encodeSubject(s string) string {
	if len("Subject: ")+len(s) <= 78 && printableASCII(s) && !strings.Contains(s, "=?") {
		return s
	}
	const prefix, suffix = "=?utf-8?q?", "?="
	// An encoded-word may have 75 characters; these are shorter, so that
	// even the first, after "Subject: ", fits a 78-character line.
	const room = 78 - len("Subject: ") - len(prefix) - len(suffix)
	var words []string
	var w strings.Builder
	for _, r := range s {
		var enc string
		switch {
		case r == ' ':
			enc = "_"
		case r < 0x80 && (isLetter(byte(r)) || r >= '0' && r <= '9' || strings.ContainsRune("!*+-/", r)):
			enc = string(r)
		default:
			for _, c := range []byte(string(r)) {
				enc += fmt.Sprintf("=%02X", c)
			}
		}
		if w.Len()+len(enc) > room {
			words = append(words, prefix+w.String()+suffix)
			w.Reset()
		}
		w.WriteString(enc)
	}
	words = append(words, prefix+w.String()+suffix)
	return strings.Join(words, "\r\n ")
}

// heloName is the name given in EHLO: the host name when it is a plausible
// domain name, since some servers refuse "localhost".
func heloName() string {
	name, err := os.Hostname()
	if err != nil || name == "" || len(name) > 253 {
		return "localhost"
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !isLetter(c) && !(c >= '0' && c <= '9') && c != '-' && c != '.' {
			return "localhost"
		}
	}
	return name
}
