package outbox

import (
	"cmp"
	"context"
	"crypto/x509"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/mail"
	"slices"
	"strings"
	"time"

	"github.com/stewardhq/steward/internal/poll"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

// Config configures a Sender.
type Config struct {
	// SMTPURL names the server: smtp://[user:password@]host[:port] (port
	// 587 by default; STARTTLS whenever the server offers it, and required
	// before credentials are sent unless the host is localhost, 127.0.0.1 or
	// ::1) or smtps://[user:password@]host[:port] (port 465 by default;
	// implicit TLS). Reserved characters in the user or password must be
	// percent-encoded. Empty means no server: each message is "delivered" by
	// logging it at Info level, body included, so that an operator without
	// email can still pass on an invitation's link.
	SMTPURL string
	// From is the sender, e.g. "Steward <steward@example.com>"; required
	// with SMTPURL. Its domain also names the Message-IDs.
	From string
	// Log receives deliveries and failures; slog.Default() when nil.
	Log *slog.Logger
	// MaxAttempts is how many failed deliveries give a message up; 10 when
	// zero.
	MaxAttempts int
	// Lease is how long a claim keeps other senders off a message; 5 minutes
	// when zero. A sender that dies mid-batch delays its messages by at most
	// this long.
	Lease time.Duration
}

const (
	defaultMaxAttempts = 10
	defaultLease       = 5 * time.Minute
	defaultInterval    = 10 * time.Second
	// batchSize is how many messages one RunOnce claims.
	batchSize = 10
	// sendTimeout bounds one SMTP session, from dial to the end of DATA.
	sendTimeout = time.Minute
	dialTimeout = 30 * time.Second
	// bookkeepingTimeout bounds the database writes that settle a delivery,
	// which run even when the caller's context has ended: a message the
	// server accepted must be recorded as sent.
	bookkeepingTimeout = 10 * time.Second
	backoffBase        = 30 * time.Second
	backoffCap         = time.Hour
	maxLastErrorLen    = 1000
)

// Sender delivers the outbox. Several Senders, in one process or in several
// sharing one database, never deliver the same message at the same time.
type Sender struct {
	db          *store.DB
	log         *slog.Logger
	maxAttempts int
	lease       time.Duration
	sendTimeout time.Duration
	// server is nil in log mode.
	server *smtpServer
	from   *mail.Address
	// msgDomain is the right-hand side of Message-IDs.
	msgDomain string
	helo      string
	// dial and rootCAs let tests reach a fake server under another name and
	// trust its certificate.
	dial    func(ctx context.Context, network, addr string) (net.Conn, error)
	rootCAs *x509.CertPool
}

// New checks cfg and returns a Sender for db. Its errors name the bad
// setting and never contain the SMTP password.
func New(db *store.DB, cfg Config) (*Sender, error) {
	if db == nil {
		return nil, errors.New("outbox: no database")
	}
	s := &Sender{
		db:          db,
		log:         cfg.Log,
		maxAttempts: cfg.MaxAttempts,
		lease:       cfg.Lease,
		helo:        heloName(),
		dial:        (&net.Dialer{Timeout: dialTimeout}).DialContext,
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	switch {
	case s.maxAttempts < 0:
		return nil, fmt.Errorf("outbox: MaxAttempts must not be negative")
	case s.maxAttempts == 0:
		s.maxAttempts = defaultMaxAttempts
	}
	switch {
	case s.lease < 0:
		return nil, fmt.Errorf("outbox: Lease must not be negative")
	case s.lease == 0:
		s.lease = defaultLease
	}
	// A batch stops starting deliveries once one more might outlast its
	// claim (see runBatch), so a session must fit well inside the lease.
	s.sendTimeout = min(sendTimeout, s.lease/4)

	server, err := parseSMTPURL(cfg.SMTPURL)
	if err != nil {
		return nil, fmt.Errorf("outbox: SMTP URL: %w", err)
	}
	s.server = server
	if cfg.From == "" {
		if server != nil {
			return nil, errors.New("outbox: a From address is required to send by SMTP")
		}
		return s, nil
	}
	from, err := mail.ParseAddress(cfg.From)
	if err != nil || !printableASCII(from.Address) || strings.ContainsAny(cfg.From, "\r\n") {
		return nil, fmt.Errorf("outbox: From %q is not one ASCII email address", cfg.From)
	}
	s.from = from
	s.msgDomain = from.Address[strings.LastIndexByte(from.Address, '@')+1:]
	return s, nil
}

// pending is a claimed message.
type pending struct {
	id, kind, to, subject, body, language string
	attempts                              int
	due                                   int64
}

// RunOnce claims up to a batch of due messages and delivers them, one after
// the other. It returns how many were delivered. Failed deliveries are
// recorded on their messages and logged, not returned: err reports only a
// database failure, after which claimed messages are retried once their
// claim expires.
func (s *Sender) RunOnce(ctx context.Context) (sent int, err error) {
	sent, _, err = s.runBatch(ctx)
	return sent, err
}

// Run delivers the outbox every interval (10 seconds when not positive), at
// once again after a full batch, until ctx ends. Errors are logged.
func (s *Sender) Run(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = defaultInterval
	}
	poll.New(0).Run(ctx, interval, func() bool {
		_, claimed, err := s.runBatch(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.Error("outbox: delivery round failed", "err", err)
		}
		return claimed == batchSize && err == nil
	})
}

func (s *Sender) runBatch(ctx context.Context) (sent, claimed int, err error) {
	start := time.Now()
	msgs, until, err := s.claim(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("outbox: claim messages: %w", err)
	}
	var errs []error
	for i := range msgs {
		// A delivery started now must end before the claim does, or
		// another sender could take the message while it is in flight.
		if ctx.Err() != nil || time.Since(start)+s.sendTimeout > s.lease*9/10 {
			errs = append(errs, s.release(ctx, msgs[i:], until))
			break
		}
		ok, err := s.deliverOne(ctx, &msgs[i], until)
		if ok {
			sent++
		}
		errs = append(errs, err)
	}
	return sent, len(msgs), errors.Join(errs...)
}

// claim marks up to batchSize due, unclaimed messages as claimed until now
// plus the lease, in one statement, and returns them oldest first with the
// claim's expiry. On PostgreSQL, SKIP LOCKED lets concurrent senders claim
// disjoint batches instead of waiting for each other; a row another sender
// claimed and committed meanwhile is re-checked against the WHERE clause and
// dropped. SQLite has one writer at a time, so the statement alone suffices.
func (s *Sender) claim(ctx context.Context) ([]pending, int64, error) {
	var msgs []pending
	var until int64
	err := s.db.Transact(ctx, func(tx *store.Tx) error {
		msgs = msgs[:0]
		now := store.Micros(tx.Now)
		until = store.Micros(tx.Now.Add(s.lease))
		lock := ""
		if tx.Dialect() == store.Postgres {
			lock = " FOR UPDATE SKIP LOCKED"
		}
		return tx.Each(ctx, `UPDATE outbox SET claimed_until = ? WHERE id IN (
			SELECT id FROM outbox
			WHERE sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= ? AND (claimed_until IS NULL OR claimed_until < ?)
			ORDER BY next_attempt_at LIMIT ?`+lock+`)
			RETURNING id, kind, recipient, subject, body, language, attempts, next_attempt_at`,
			[]any{until, now, now, batchSize}, func(rows *sql.Rows) error {
				var m pending
				if err := rows.Scan(&m.id, &m.kind, &m.to, &m.subject, &m.body, &m.language, &m.attempts, &m.due); err != nil {
					return err
				}
				msgs = append(msgs, m)
				return nil
			})
	})
	if err != nil {
		return nil, 0, err
	}
	slices.SortFunc(msgs, func(a, b pending) int { return cmp.Or(cmp.Compare(a.due, b.due), strings.Compare(a.id, b.id)) })
	return msgs, until, nil
}

// deliverOne delivers m and records the outcome. It reports whether m was
// delivered; its error is a failure to record the outcome.
func (s *Sender) deliverOne(ctx context.Context, m *pending, until int64) (bool, error) {
	sctx, cancel := context.WithTimeout(ctx, s.sendTimeout)
	deliveryErr := s.deliver(sctx, m)
	cancel()
	if deliveryErr != nil && ctx.Err() != nil {
		// Shutting down: the attempt was cut short by us, not refused by
		// the server, so it does not count.
		return false, s.release(ctx, []pending{*m}, until)
	}
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bookkeepingTimeout)
	defer cancel()
	if deliveryErr == nil {
		err := s.db.Transact(bctx, func(tx *store.Tx) error {
			_, err := tx.Exec(bctx, `UPDATE outbox SET sent_at = ?, body = '', claimed_until = NULL WHERE id = ?`, store.Micros(tx.Now), m.id)
			return err
		})
		if err != nil {
			s.log.Error("outbox: email delivered but not recorded as sent; it will be sent again", "id", m.id, "kind", m.kind, "err", err)
			return true, fmt.Errorf("outbox: record delivery of %s: %w", m.id, err)
		}
		return true, nil
	}
	attempts := m.attempts + 1
	lastErr := steward.Truncate(deliveryErr.Error(), maxLastErrorLen)
	var retryAt time.Time
	err := s.db.Transact(bctx, func(tx *store.Tx) error {
		if attempts >= s.maxAttempts {
			// Given up: the body goes, as it would after delivery, since
			// its link must not outlive the message in the database.
			_, err := tx.Exec(bctx, `UPDATE outbox SET attempts = ?, last_error = ?, failed_at = ?, body = '', claimed_until = NULL WHERE id = ?`,
				attempts, lastErr, store.Micros(tx.Now), m.id)
			return err
		}
		retryAt = tx.Now.Add(backoff(attempts))
		_, err := tx.Exec(bctx, `UPDATE outbox SET attempts = ?, last_error = ?, next_attempt_at = ?, claimed_until = NULL WHERE id = ?`,
			attempts, lastErr, store.Micros(retryAt), m.id)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("outbox: record failed delivery of %s: %w", m.id, err)
	}
	if retryAt.IsZero() {
		s.log.Error("outbox: email given up", "id", m.id, "kind", m.kind, "to", m.to, "subject", m.subject, "attempts", attempts, "err", lastErr)
	} else {
		s.log.Warn("outbox: email delivery failed; will retry", "id", m.id, "kind", m.kind, "to", m.to, "attempts", attempts, "retry_at", retryAt, "err", lastErr)
	}
	return false, nil
}

// release gives claimed messages back without counting an attempt, so that
// a batch cut short does not wait for its claim to expire.
func (s *Sender) release(ctx context.Context, msgs []pending, until int64) error {
	if len(msgs) == 0 {
		return nil
	}
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bookkeepingTimeout)
	defer cancel()
	err := s.db.Transact(bctx, func(tx *store.Tx) error {
		for _, m := range msgs {
			if _, err := tx.Exec(bctx, `UPDATE outbox SET claimed_until = NULL WHERE id = ? AND claimed_until = ?`, m.id, until); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("outbox: release claimed messages: %w", err)
	}
	return nil
}

// deliver sends m by SMTP, or logs it when there is no server.
func (s *Sender) deliver(ctx context.Context, m *pending) error {
	if s.server == nil {
		s.log.Info("outbox: no SMTP server configured; email logged instead of sent",
			"id", m.id, "kind", m.kind, "to", m.to, "subject", m.subject, "language", m.language, "body", m.body)
		return nil
	}
	if err := s.send(ctx, m.to, compose(s.from, s.msgDomain, m, s.db.Now())); err != nil {
		return err
	}
	s.log.Info("outbox: email sent", "id", m.id, "kind", m.kind, "to", m.to)
	return nil
}

// backoff is the wait after the n-th failed attempt: 30s, 1m, 2m, ... up to
// an hour.
func backoff(n int) time.Duration {
	d := backoffBase
	for i := 1; i < n && d < backoffCap; i++ {
		d *= 2
	}
	return min(d, backoffCap)
}
