// Package outbox sends Steward's email. A service method enqueues a message
// through its own transaction, so that an invitation and its email commit or
// roll back together; a background Sender delivers committed messages
// afterwards, by SMTP or, when no SMTP server is configured, by logging them.
// Delivery is at least once: a message is retried with backoff until the
// server accepts it or the attempts run out, and its body, which may carry a
// one-time link, is erased from the database once it is settled.
package outbox

import (
	"context"
	"net/mail"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

// Message is one email to send. Body is plain text; Language is the BCP 47
// tag of its content ("en" when empty), sent as Content-Language.
type Message struct {
	Kind     string // what the email is for, e.g. "invitation"; kept for operators
	To       string // one bare address, e.g. "ann@example.com"
	Subject  string
	Body     string
	Language string
}

// Size limits. A subject longer than a header line may be would have to be
// folded mid-word; 256 KiB is far more than any notification needs.
const (
	MaxSubjectLen = 998
	MaxBodyLen    = 256 << 10
	maxAddressLen = 254 // RFC 5321's limit on a path, less its brackets
	maxKindLen    = 100
	maxLanguage   = 35
)

// Enqueue validates m and stores it through tx, due at once. It must be
// called in the transaction that makes the change the email announces: the
// email exists if and only if that transaction commits. It returns the
// message's id, which is also its Message-ID, and an *steward.Error of
// KindInvalid (without a Field: callers that want one validate their own
// input first) when m is not a sendable message.
func Enqueue(ctx context.Context, tx *store.Tx, m Message) (string, error) {
	m, err := m.validate()
	if err != nil {
		return "", err
	}
	id := uuid.NewString()
	now := store.Micros(tx.Now)
	if _, err := tx.Exec(ctx, `INSERT INTO outbox (id, kind, recipient, subject, body, language, created_at, next_attempt_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, id, m.Kind, m.To, m.Subject, m.Body, m.Language, now, now); err != nil {
		return "", err
	}
	return id, nil
}

// validate checks m and returns it normalised: To reduced to the bare
// address, Language defaulted. Everything that becomes a header is checked
// for line breaks here, so that no stored message can inject a header.
func (m Message) validate() (Message, error) {
	invalid := func(format string, args ...any) (Message, error) {
		return Message{}, steward.Errorf(steward.KindInvalid, "email "+format, args...)
	}
	switch {
	case m.Kind == "" || len(m.Kind) > maxKindLen || !printableASCII(m.Kind):
		return invalid("kind must be 1 to %d printable ASCII characters", maxKindLen)
	case m.To == "":
		return invalid("recipient must not be empty")
	case strings.ContainsAny(m.To, "\r\n"):
		return invalid("recipient must not contain line breaks")
	case m.Subject == "":
		return invalid("subject must not be empty")
	case strings.ContainsAny(m.Subject, "\r\n"):
		return invalid("subject must not contain line breaks")
	case len(m.Subject) > MaxSubjectLen:
		return invalid("subject must be at most %d bytes", MaxSubjectLen)
	case !utf8.ValidString(m.Subject) || strings.ContainsFunc(m.Subject, isControl):
		return invalid("subject must be UTF-8 text without control characters")
	case m.Body == "":
		return invalid("body must not be empty")
	case len(m.Body) > MaxBodyLen:
		return invalid("body must be at most %d bytes", MaxBodyLen)
	case !utf8.ValidString(m.Body):
		return invalid("body must be UTF-8 text")
	}
	addr, err := mail.ParseAddress(m.To)
	if err != nil {
		return invalid("recipient must be exactly one email address")
	}
	if addr.Name != "" {
		return invalid("recipient must be a bare email address, without a display name")
	}
	// A quoted local part with spaces parses, but would not survive the
	// SMTP envelope as net/smtp writes it.
	if len(addr.Address) > maxAddressLen || strings.ContainsFunc(addr.Address, func(r rune) bool { return r <= ' ' || r == '"' || r == 0x7f }) {
		return invalid("recipient must be an email address of at most %d bytes, without spaces or quotes", maxAddressLen)
	}
	m.To = addr.Address
	if m.Language == "" {
		m.Language = "en"
	}
	if !validLanguage(m.Language) {
		return invalid("language must be a language tag such as \"en\" or \"fr-CA\"")
	}
	return m, nil
}

// validLanguage accepts the shape of a BCP 47 tag: a letter, then letters,
// digits and hyphens.
func validLanguage(s string) bool {
	if len(s) > maxLanguage || !isLetter(s[0]) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isLetter(c) && !(c >= '0' && c <= '9') && c != '-' {
			return false
		}
	}
	return true
}

func isLetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }

// isControl reports the characters no header may carry; tab is allowed.
func isControl(r rune) bool { return (r < ' ' && r != '\t') || r == 0x7f }

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}
