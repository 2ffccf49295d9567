package webhooks

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/stewardhq/steward/internal/audit"
	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/outbox"
	"github.com/stewardhq/steward/internal/poll"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

// Settings tune a Sender; zero fields take the defaults in brackets.
type Settings struct {
	// Lease is how long a claim keeps other senders off a delivery, and
	// other dispatchers off an endpoint's cursor [1m]. A process that dies
	// mid-round delays its deliveries by at most this.
	Lease time.Duration
	// Timeout bounds one attempt, from dialling to the answer's end [10s,
	// at most a quarter of Lease].
	Timeout time.Duration
	// RetryBase is the wait after the first failed attempt, doubled after
	// each further one up to RetryCap [5s, 1h], each wait spread by up to
	// a fifth either way.
	RetryBase, RetryCap time.Duration
	// RetryFor is how long a delivery is retried before it fails [24h].
	RetryFor time.Duration
	// DisableAfter is how long an endpoint's deliveries may keep failing,
	// with no success, before it is disabled [24h].
	DisableAfter time.Duration
	// Batch is how many deliveries one round claims, makes at once and
	// records in one transaction [100].
	Batch int
}

func (s Settings) withDefaults() Settings {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&s.Lease, time.Minute)
	def(&s.Timeout, 10*time.Second)
	def(&s.RetryBase, 5*time.Second)
	def(&s.RetryCap, time.Hour)
	def(&s.RetryFor, 24*time.Hour)
	def(&s.DisableAfter, 24*time.Hour)
	if s.Batch <= 0 {
		s.Batch = 100
	}
	// Every attempt of a round must end before the round's claim does, or
	// another sender could take a delivery while it is in flight.
	s.Timeout = min(s.Timeout, s.Lease/4)
	return s
}

const (
	// bookkeepingTimeout bounds the writes that record an attempt, which
	// run even when the caller's context has ended.
	bookkeepingTimeout = 10 * time.Second
	maxLastErrorLen    = 500
	// maxAnswerRead is how much of an answer's body is read (so that its
	// connection can be reused), the rest is dropped.
	maxAnswerRead = 64 << 10
)

// Sender makes due deliveries: the retries of the deliveries a Dispatcher
// made and that failed, and test events. Several Senders, in one process or in
// several sharing one database, never make the same delivery at the same
// time: a round claims its deliveries with a lease, as the email outbox
// does.
type Sender struct {
	db       *store.DB
	log      *slog.Logger
	client   *http.Client
	settings Settings
	// limits bound the deliveries in flight to each host.
	limits hostLimits
	poll.Poller
}

// NewSender returns a sender over db whose requests guard checks.
func NewSender(db *store.DB, guard Guard, settings Settings, log *slog.Logger) *Sender {
	if log == nil {
		log = slog.Default()
	}
	settings = settings.withDefaults()
	return &Sender{db: db, log: log, client: guard.Client(settings.Timeout), settings: settings, Poller: poll.New(0)}
}

// Run makes due deliveries every interval, at once when nudged and again
// after a full batch, until ctx ends. Errors are logged.
func (s *Sender) Run(ctx context.Context, interval time.Duration) {
	// Several rounds run at once, so that a batch waiting for a slow
	// endpoint holds back only its own deliveries.
	var wg sync.WaitGroup
	for range rounds {
		wg.Go(func() {
			s.Poller.Run(ctx, interval, func() bool {
				claimed, err := s.runBatch(ctx)
				if err != nil && ctx.Err() == nil {
					s.log.Error("webhooks: delivery round failed", "err", err)
				}
				return claimed == s.settings.Batch && err == nil
			})
		})
	}
	wg.Wait()
}

// rounds is how many delivery rounds a running Sender makes at once.
const rounds = 4

// RunOnce claims a batch of due deliveries and makes them, and returns how
// many it claimed. Failed attempts are recorded on their deliveries, not
// returned: err reports a database failure.
func (s *Sender) RunOnce(ctx context.Context) (int, error) { return s.runBatch(ctx) }

// claimed is a claimed delivery with what sending it needs.
type claimed struct {
	id, endpointID, eventType string
	// payload is the body, read from webhook_payloads when payloadID
	// names it.
	payload   []byte
	payloadID string
	attempts  int
	createdAt time.Time
}

// endpointState is an endpoint as a delivery round reads it.
type endpointState struct {
	orgID, url string
	events     []string
	secrets    []string
	disabled   bool
	deleted    bool
}

func (s *Sender) runBatch(ctx context.Context) (int, error) {
	batch, endpoints, until, err := s.claim(ctx)
	if err != nil {
		return 0, fmt.Errorf("webhooks: claim deliveries: %w", err)
	}
	if len(batch) == 0 {
		return 0, nil
	}
	outcomes := make([]outcome, len(batch))
	var wg sync.WaitGroup
	for i := range batch {
		c, e := &batch[i], endpoints[batch[i].endpointID]
		outcomes[i] = outcome{c: c, e: e}
		switch {
		case e == nil || e.deleted:
			outcomes[i].why = "the endpoint was deleted"
		case e.disabled && c.eventType != EventTest:
			// A test event is sent all the same, so that an endpoint can
			// be tried before it is enabled again.
			outcomes[i].why = "the endpoint is disabled"
		default:
			wg.Go(func() { outcomes[i].a = s.send(ctx, c, e) })
		}
	}
	wg.Wait()
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bookkeepingTimeout)
	defer cancel()
	return len(batch), s.record(bctx, outcomes, until, ctx.Err() != nil)
}

// outcome is what became of a claimed delivery: an attempt, or why none
// was made.
type outcome struct {
	c   *claimed
	e   *endpointState
	a   attempt
	why string
}

// claim marks up to a batch of due, unclaimed deliveries as claimed until
// now plus the lease, and reads their endpoints, in one transaction. On
// PostgreSQL, SKIP LOCKED lets concurrent senders claim disjoint batches.
func (s *Sender) claim(ctx context.Context) ([]claimed, map[string]*endpointState, int64, error) {
	var batch []claimed
	var endpoints map[string]*endpointState
	var until int64
	err := s.db.Transact(ctx, func(tx *store.Tx) error {
		batch, endpoints = batch[:0], map[string]*endpointState{}
		now := store.Micros(tx.Now)
		until = store.Micros(tx.Now.Add(s.settings.Lease))
		lock := ""
		if tx.Dialect() == store.Postgres {
			lock = " FOR UPDATE SKIP LOCKED"
		}
		err := tx.Each(ctx, `UPDATE webhook_deliveries SET claimed_until = ? WHERE id IN (
			SELECT id FROM webhook_deliveries
			WHERE status = 'pending' AND next_attempt_at <= ? AND (claimed_until IS NULL OR claimed_until < ?)
			ORDER BY next_attempt_at LIMIT ?`+lock+`)
			RETURNING id, endpoint_id, event_type, payload, COALESCE(payload_id, ''), attempts, created_at`,
			[]any{until, now, now, s.settings.Batch}, func(rows *sql.Rows) error {
				var c claimed
				var payload string
				var created int64
				if err := rows.Scan(&c.id, &c.endpointID, &c.eventType, &payload, &c.payloadID, &c.attempts, &created); err != nil {
					return err
				}
				c.payload, c.createdAt = []byte(payload), store.Time(created)
				batch = append(batch, c)
				endpoints[c.endpointID] = nil
				return nil
			})
		if err != nil || len(batch) == 0 {
			return err
		}
		if err := sharedBodies(ctx, tx, batch); err != nil {
			return err
		}
		return readEndpoints(ctx, tx, endpoints)
	})
	return batch, endpoints, until, err
}

// sharedBodies reads the bodies of the claimed deliveries that share one
// (payloadID), in one query.
func sharedBodies(ctx context.Context, tx *store.Tx, batch []claimed) error {
	ids := map[string][]int{}
	for i, c := range batch {
		if c.payloadID != "" {
			ids[c.payloadID] = append(ids[c.payloadID], i)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	args := make([]any, 0, len(ids))
	for id := range ids {
		args = append(args, id)
	}
	return tx.Each(ctx, `SELECT id, body FROM webhook_payloads WHERE id IN (`+store.Placeholders(len(args))+`)`,
		args, func(rows *sql.Rows) error {
			var id, b string
			if err := rows.Scan(&id, &b); err != nil {
				return err
			}
			for _, i := range ids[id] {
				batch[i].payload = []byte(b)
			}
			return nil
		})
}

// attempt is the outcome of one request.
type attempt struct {
	at      time.Time
	status  int
	latency time.Duration
	err     error
}

// workers is how many goroutines should make n deliveries to e: as many
// as its host may have in flight now, at most n.
func (s *Sender) workers(e *endpointState, n int) int {
	if n == 0 {
		return 0
	}
	u, err := url.Parse(e.url)
	if err != nil {
		return 1 // send reports the URL's error, for each delivery
	}
	return min(n, s.limits.of(u.Host).room())
}

// send makes one signed request.
func (s *Sender) send(ctx context.Context, c *claimed, e *endpointState) attempt {
	rctx, cancel := context.WithTimeout(ctx, s.settings.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, e.url, bytes.NewReader(c.payload))
	if err != nil {
		return attempt{at: time.Now(), err: err}
	}
	limit := s.limits.of(req.URL.Host)
	if err := limit.acquire(rctx); err != nil {
		return attempt{at: time.Now(), err: fmt.Errorf("the deliveries in flight to the endpoint's host left no room within the attempt's timeout: %w", err)}
	}
	a := attempt{at: time.Now()}
	answered := time.Duration(0)
	defer func() { limit.release(answered, time.Now()) }()
	sig, err := Signature(e.secrets, c.id, a.at, c.payload)
	if err != nil {
		a.err = err
		return a
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Steward-Webhooks")
	req.Header.Set("webhook-id", c.id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(a.at.Unix(), 10))
	req.Header.Set("webhook-signature", sig)
	resp, err := s.client.Do(req)
	a.latency = time.Since(a.at)
	if err != nil {
		a.err = errors.New(describe(err))
		return a
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswerRead))
	resp.Body.Close()
	answered = time.Since(a.at)
	a.status = resp.StatusCode
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		a.err = fmt.Errorf("the endpoint answered %s", resp.Status)
	}
	return a
}

// record writes a batch's outcomes in one transaction, so that the
// deliveries cost the database one write a batch rather than one each. A
// success clears its endpoint's failures; a failure schedules the next
// attempt, or fails the delivery once RetryFor has passed since it was
// made, and disables the endpoint once its deliveries have failed for
// DisableAfter with no success. An attempt cut short by shutdown (stopping)
// does not count: its delivery is released for the next claim.
func (s *Sender) record(ctx context.Context, outcomes []outcome, until int64, stopping bool) error {
	var disabled []string
	var delivered, others []outcome
	for _, o := range outcomes {
		if o.why == "" && o.a.err == nil {
			delivered = append(delivered, o)
		} else {
			others = append(others, o)
		}
	}
	err := s.db.Transact(ctx, func(tx *store.Tx) error {
		disabled = disabled[:0]
		if err := recordDelivered(ctx, tx, delivered, until); err != nil {
			return err
		}
		for _, o := range others {
			off, err := s.recordOne(ctx, tx, o, until, stopping)
			if err != nil {
				return err
			}
			if off {
				disabled = append(disabled, o.c.endpointID)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("webhooks: record %d deliveries: %w", len(outcomes), err)
	}
	for _, id := range disabled {
		s.log.Warn("webhooks: endpoint disabled after a day of failed deliveries", "endpoint_id", id)
	}
	return nil
}

// recordDelivered writes the successful deliveries of a batch in one
// statement, and clears their endpoints' failures in another: most
// outcomes are successes, and a statement each held the database's writer
// (SQLite has one) long enough to delay the Admin API's writes. A delivery
// whose claim another sender has taken over (ours expired) is left to it;
// its endpoint did answer, so its failures are cleared all the same.
func recordDelivered(ctx context.Context, tx *store.Tx, delivered []outcome, until int64) error {
	if len(delivered) == 0 {
		return nil
	}
	now := store.Micros(tx.Now)
	args := []any{StatusDelivered, now, now}
	endpoints := map[string]bool{}
	for _, o := range delivered {
		args = append(args, o.c.id, o.a.status, o.a.latency.Milliseconds())
		endpoints[o.c.endpointID] = true
	}
	args = append(args, until)
	// A VALUES list's columns are column1, column2, ... on both engines.
	row := "(?, CAST(? AS INTEGER), CAST(? AS BIGINT))"
	if _, err := tx.Exec(ctx, `UPDATE webhook_deliveries SET status = ?, attempts = attempts + 1, last_attempt_at = ?,
		last_http_status = v.column2, last_latency_ms = v.column3, last_error = NULL, finished_at = ?, payload = '', claimed_until = NULL
		FROM (VALUES `+strings.TrimSuffix(strings.Repeat(row+", ", len(delivered)), ", ")+`) AS v
		WHERE webhook_deliveries.id = v.column1 AND webhook_deliveries.claimed_until = ?`, args...); err != nil {
		return err
	}
	return clearFailures(ctx, tx, endpoints)
}

// recordOne writes an outcome other than a success and reports whether it
// disabled the endpoint. A delivery whose claim another sender has taken over (ours
// expired) is left to it.
func (s *Sender) recordOne(ctx context.Context, tx *store.Tx, o outcome, until int64, stopping bool) (bool, error) {
	c, a := o.c, o.a
	now := store.Micros(tx.Now)
	if o.why != "" {
		_, err := tx.Exec(ctx, `UPDATE webhook_deliveries SET status = ?, last_error = ?, finished_at = ?, payload = '', claimed_until = NULL
			WHERE id = ? AND claimed_until = ?`, StatusFailed, o.why, now, c.id, until)
		return false, err
	}
	if a.err != nil && stopping {
		_, err := tx.Exec(ctx, `UPDATE webhook_deliveries SET claimed_until = NULL WHERE id = ? AND claimed_until = ?`, c.id, until)
		return false, err
	}
	attempts := c.attempts + 1
	lastErr := steward.Truncate(a.err.Error(), maxLastErrorLen)
	next, giveUp := s.afterFailure(tx.Now, c.createdAt, attempts)
	deliveryStatus, finished := StatusPending, (*int64)(nil)
	if giveUp {
		deliveryStatus, finished = StatusFailed, &now
	}
	res, err := tx.Exec(ctx, `UPDATE webhook_deliveries SET status = ?, attempts = ?, last_attempt_at = ?, last_http_status = ?, last_latency_ms = ?,
		last_error = ?, next_attempt_at = ?, finished_at = ?, payload = CASE WHEN ? THEN '' ELSE payload END, claimed_until = NULL
		WHERE id = ? AND claimed_until = ?`,
		deliveryStatus, attempts, now, httpStatus(a.status), a.latency.Milliseconds(), lastErr, store.Micros(next), finished, giveUp, c.id, until)
	if err != nil || !affected(res) {
		return false, err
	}
	return s.failing(ctx, tx, c.endpointID, o.e.orgID)
}

// failing records a failed attempt on an endpoint of orgID (none for the
// server-wide endpoint, which is never disabled): the first since its last
// success starts its failures. It disables the endpoint, and reports it,
// once they have lasted DisableAfter.
func (s *Sender) failing(ctx context.Context, tx *store.Tx, endpointID, orgID string) (bool, error) {
	now := store.Micros(tx.Now)
	var since int64
	var isDisabled bool
	if err := tx.QueryRow(ctx, `UPDATE webhook_endpoints SET failing_since = COALESCE(failing_since, ?) WHERE id = ?
		RETURNING failing_since, disabled_at IS NOT NULL`, now, endpointID).Scan(&since, &isDisabled); err != nil {
		return false, err
	}
	if isDisabled || orgID == "" || tx.Now.Sub(store.Time(since)) < s.settings.DisableAfter {
		return false, nil
	}
	return true, disable(ctx, tx, endpointID, orgID, store.Time(since))
}

func affected(res sql.Result) bool {
	n, err := res.RowsAffected()
	return err == nil && n > 0
}

// disable disables an endpoint whose deliveries have failed since since,
// gives up its pending deliveries, audits it (webhook.disabled, by Steward)
// and emails the Organization's admins.
func disable(ctx context.Context, tx *store.Tx, endpointID, orgID string, since time.Time) error {
	org, err := directory.GetOrganization(ctx, tx, orgID)
	if err != nil {
		return err
	}
	reason := "deliveries failed since " + since.UTC().Format(time.RFC3339)
	if _, err := tx.Exec(ctx, `UPDATE webhook_endpoints SET disabled_at = ?, disabled_reason = ?, updated_at = ? WHERE id = ?`,
		store.Micros(tx.Now), reason, store.Micros(tx.Now), endpointID); err != nil {
		return err
	}
	if err := failPending(ctx, tx, endpointID, "the endpoint was disabled"); err != nil {
		return err
	}
	e, err := get(ctx, tx, orgID, endpointID)
	if err != nil {
		return err
	}
	en := entry(steward.SystemActor("webhooks"), org, audit.EventWebhookDisabled, e)
	en.EventMetadata = map[string]string{"reason": reason}
	if err := audit.Record(ctx, tx, en); err != nil {
		return err
	}
	admins, err := directory.EmailsWithRoles(ctx, tx, orgID, steward.RoleIDOrganizationAdmin)
	if err != nil {
		return err
	}
	for _, to := range admins {
		if _, err := outbox.Enqueue(ctx, tx, outbox.Message{
			Kind:    "webhook_disabled",
			To:      to,
			Subject: "A webhook endpoint of " + org.Name + " was disabled",
			Body: fmt.Sprintf(`Steward disabled the webhook endpoint %s of the Organization %s:
its deliveries have failed since %s, with no success.

It receives no events until it is enabled again (PATCH /v1/admin/webhooks/%s
with {"enabled": true}). Its delivery log (GET /v1/admin/webhooks/%s/deliveries)
shows the endpoint's answers.
`, redactURL(e.URL), org.Name, since.UTC().Format("2 January 2006 at 15:04 UTC"), e.ID, e.ID),
		}); err != nil {
			return err
		}
	}
	return nil
}

// afterFailure returns when a delivery first due at createdAt, whose
// attempts-th attempt failed at now, is tried again, and whether that is
// past RetryFor, which fails it for good.
func (s *Sender) afterFailure(now, createdAt time.Time, attempts int) (next time.Time, giveUp bool) {
	next = now.Add(s.backoff(attempts))
	return next, !next.Before(createdAt.Add(s.settings.RetryFor))
}

// backoff is the wait after the n-th failed attempt: RetryBase doubled
// n-1 times, at most RetryCap, spread by up to a fifth either way so that
// the retries of many deliveries do not arrive together.
func (s *Sender) backoff(n int) time.Duration {
	d := s.settings.RetryBase
	for i := 1; i < n && d < s.settings.RetryCap; i++ {
		d *= 2
	}
	d = min(d, s.settings.RetryCap)
	return d + time.Duration((rand.Float64()*0.4-0.2)*float64(d))
}
