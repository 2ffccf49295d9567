// Package webhooks delivers an Organization's audit entries to the HTTP
// endpoints its admins register, signed as the Standard Webhooks
// specification says (webhook-id, webhook-timestamp, webhook-signature).
//
// The audit log is the event stream: every change writes its entry in its
// own transaction, and nothing here runs in those transactions. A
// Dispatcher, in every process, delivers each endpoint the entries past its
// cursor in its Organization's audit chain, under a lease, and then records
// the deliveries and moves the cursor in one transaction: a crash between
// the two makes the same deliveries again, with the same webhook-ids, and
// loses nothing. A failed delivery is recorded with its body, and a Sender
// retries it: it claims due deliveries with a lease, as the email outbox
// does, and makes each at least once, with the same webhook-id on every
// attempt, retrying with backoff for a day; an endpoint that has failed
// for a day is disabled, with an audit entry and an email to the
// Organization's admins.
package webhooks

import (
	"context"
	"database/sql"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/stewardhq/steward/internal/audit"
	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

// Limits of an Organization's endpoints.
const (
	MaxEndpoints      = 20
	MaxURLLen         = 2048
	MaxEvents         = 50
	MaxEventLen       = 100
	MaxDescriptionLen = 500
	// MaxPageSize is the longest page of endpoints or deliveries.
	MaxPageSize = 100
)

// EventTest is the type of the event POST /webhooks/{id}/test sends.
const EventTest = "webhook.test"

// ServerEndpointID is the id of the server-wide endpoint (--webhook-url),
// which belongs to no Organization.
const ServerEndpointID = "server"

// Endpoint is where an Organization's events are sent. Its secrets are
// never part of it: they are returned once, by Create and RotateSecret.
type Endpoint struct {
	ID             string
	OrganizationID string
	URL            string
	Description    string
	Events         []string
	CreatedAt      time.Time
	UpdatedAt      time.Time
	// DisabledAt is set while the endpoint receives nothing, with why.
	DisabledAt     *time.Time
	DisabledReason string
	// PreviousSecretUntil is when the secret replaced by the last rotation
	// stops signing, if it still does.
	PreviousSecretUntil *time.Time
}

// Input is what an admin sets on an endpoint; nil fields of an update are
// left as they are.
type Input struct {
	URL         *string
	Events      []string
	Description *string
	Enabled     *bool
}

// eventPattern is an event type, a prefix ending in ".*", or "*".
var eventPattern = regexp.MustCompile(`^(\*|[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*(\.\*)?)$`)

// checkEvents returns the events, or an error naming the field.
func checkEvents(events []string) error {
	field := []string{"body", "events"}
	switch {
	case len(events) == 0:
		return steward.Invalid(field, "events must list at least one event type or prefix, such as api_key.* or *")
	case len(events) > MaxEvents:
		return steward.Invalid(field, "events must list at most %d event types or prefixes", MaxEvents)
	}
	for i, e := range events {
		if len(e) > MaxEventLen || !eventPattern.MatchString(e) {
			return steward.Invalid(append(field, strconv.Itoa(i)), "%q is not an event type (such as api_key.create), a prefix (such as api_key.*) or *", e)
		}
	}
	return nil
}

// Matches reports whether an event of type t goes to an endpoint
// subscribed to events.
func Matches(events []string, t string) bool {
	for _, e := range events {
		if e == "*" || e == t || (strings.HasSuffix(e, ".*") && strings.HasPrefix(t, e[:len(e)-1])) {
			return true
		}
	}
	return false
}

// Service is the endpoints as the Admin API changes and reads them, each
// method one transaction; a change writes its audit entry in it. Its
// methods return KindNotFound for an endpoint of another Organization.
type Service struct {
	db    *store.DB
	guard Guard
	// nudge, when set, wakes the sender after a test event is written.
	nudge func()
}

// NewService returns the endpoints over db; guard checks their URLs.
func NewService(db *store.DB, guard Guard, nudge func()) *Service {
	if nudge == nil {
		nudge = func() {}
	}
	return &Service{db: db, guard: guard, nudge: nudge}
}

const endpointColumns = `id, COALESCE(organization_id, ''), url, description, events, created_at, updated_at, disabled_at, COALESCE(disabled_reason, ''), previous_secret_until`

func scanEndpoint(row interface{ Scan(...any) error }) (Endpoint, error) {
	var e Endpoint
	var events string
	var created, updated int64
	var disabled, previousUntil sql.NullInt64
	if err := row.Scan(&e.ID, &e.OrganizationID, &e.URL, &e.Description, &events, &created, &updated, &disabled, &e.DisabledReason, &previousUntil); err != nil {
		return e, err
	}
	e.CreatedAt, e.UpdatedAt, e.DisabledAt, e.PreviousSecretUntil = store.Time(created), store.Time(updated), store.TimePtr(disabled), store.TimePtr(previousUntil)
	return e, json.Unmarshal([]byte(events), &e.Events)
}

func entry(actor steward.Actor, org steward.Organization, event string, e Endpoint) audit.Entry {
	meta := map[string]string{"id": e.ID, "url": redactURL(e.URL), "events": strings.Join(e.Events, ",")}
	if e.Description != "" {
		meta["description"] = e.Description
	}
	return audit.Entry{EnterpriseAccountID: org.EnterpriseAccountID, OrganizationID: org.ID, Actor: actor,
		EventType: event, TargetType: audit.TargetWebhook, TargetMetadata: meta}
}

// redactURL is a URL as the audit log keeps it: without its query, which
// may carry a token of the receiver's.
func redactURL(u string) string {
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		return u[:i]
	}
	return u
}

func notFound(id string) error {
	return steward.Errorf(steward.KindNotFound, "no webhook endpoint %s in this Organization", id)
}

// get returns the Organization's live endpoint id; KindNotFound if it has
// none of that id.
func get(ctx context.Context, tx *store.Tx, orgID, id string) (Endpoint, error) {
	return getEndpoint(ctx, tx, orgID, id, "")
}

// getEndpoint is get with a suffix to its query (a lock).
func getEndpoint(ctx context.Context, tx *store.Tx, orgID, id, suffix string) (Endpoint, error) {
	if _, err := uuid.Parse(id); err != nil {
		return Endpoint{}, notFound(id)
	}
	e, err := scanEndpoint(tx.QueryRow(ctx, `SELECT `+endpointColumns+` FROM webhook_endpoints
		WHERE id = ? AND organization_id = ? AND deleted_at IS NULL`+suffix, id, orgID))
	if steward.IsKind(store.Translate(err), steward.KindNotFound) {
		return e, notFound(id)
	}
	return e, err
}

// Create registers an endpoint for the Organization and audits it
// (webhook.create). It returns the endpoint and its signing secret, which
// is returned nowhere else. The Organization's audit entries from then on
// are delivered to it, webhook.create included.
func (s *Service) Create(ctx context.Context, actor steward.Actor, orgID string, in Input) (Endpoint, string, error) {
	switch {
	case in.URL == nil:
		return Endpoint{}, "", steward.Invalid([]string{"body", "url"}, "url is required")
	case in.Events == nil:
		return Endpoint{}, "", steward.Invalid([]string{"body", "events"}, "events is required: event types or prefixes, such as api_key.* or *")
	}
	if err := s.check(ctx, in); err != nil {
		return Endpoint{}, "", err
	}
	secret := NewSecret()
	e, err := directory.Change(ctx, s.db, orgID, func(tx *store.Tx, org steward.Organization) (Endpoint, error) {
		var live int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM webhook_endpoints WHERE organization_id = ? AND deleted_at IS NULL`, org.ID).Scan(&live); err != nil {
			return Endpoint{}, err
		}
		if live >= MaxEndpoints {
			return Endpoint{}, &steward.Error{Kind: steward.KindConflict, Code: "too_many_webhooks",
				Message: "this Organization already has the most webhook endpoints allowed (20): delete one first"}
		}
		e := Endpoint{ID: uuid.NewString(), OrganizationID: org.ID, URL: *in.URL, Events: in.Events, CreatedAt: tx.Now, UpdatedAt: tx.Now}
		if in.Description != nil {
			e.Description = strings.TrimSpace(*in.Description)
		}
		if in.Enabled != nil && !*in.Enabled {
			e.DisabledAt, e.DisabledReason = &tx.Now, "disabled by an admin"
		}
		events, _ := json.Marshal(e.Events)
		if _, err := tx.Exec(ctx, `INSERT INTO webhook_endpoints (id, organization_id, url, description, events, secret, created_at, updated_at, disabled_at, disabled_reason)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, e.ID, org.ID, e.URL, e.Description, string(events), secret,
			store.Micros(tx.Now), store.Micros(tx.Now), store.MicrosPtr(e.DisabledAt), nullable(e.DisabledReason)); err != nil {
			return Endpoint{}, err
		}
		if err := follow(ctx, tx, e.ID, org.ID); err != nil {
			return Endpoint{}, err
		}
		return e, audit.Record(ctx, tx, entry(actor, org, audit.EventWebhookCreate, e))
	})
	return e, secret, err
}

// check validates in's fields that are set.
func (s *Service) check(ctx context.Context, in Input) error {
	if in.Events != nil {
		if err := checkEvents(in.Events); err != nil {
			return err
		}
	}
	if in.Description != nil && len(*in.Description) > MaxDescriptionLen {
		return steward.Invalid([]string{"body", "description"}, "description must be at most %d bytes", MaxDescriptionLen)
	}
	if in.URL != nil {
		return s.guard.CheckURL(ctx, *in.URL)
	}
	return nil
}

// Page is a page of a list, with the number of items in all pages.
type Page[T any] struct {
	Items []T
	Total int
}

// List returns a page (from 1) of the Organization's endpoints, oldest
// first.
func (s *Service) List(ctx context.Context, orgID string, page, pageSize int) (Page[Endpoint], error) {
	return store.Read(ctx, s.db, func(tx *store.Tx) (Page[Endpoint], error) {
		out := Page[Endpoint]{Items: []Endpoint{}}
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM webhook_endpoints WHERE organization_id = ? AND deleted_at IS NULL`, orgID).Scan(&out.Total); err != nil {
			return out, err
		}
		pageSize = min(max(pageSize, 1), MaxPageSize)
		err := tx.Each(ctx, `SELECT `+endpointColumns+` FROM webhook_endpoints WHERE organization_id = ? AND deleted_at IS NULL
			ORDER BY created_at, id LIMIT ? OFFSET ?`, []any{orgID, pageSize, (max(page, 1) - 1) * pageSize}, func(rows *sql.Rows) error {
			e, err := scanEndpoint(rows)
			out.Items = append(out.Items, e)
			return err
		})
		return out, err
	})
}

// Get returns the Organization's endpoint id.
func (s *Service) Get(ctx context.Context, orgID, id string) (Endpoint, error) {
	return store.Read(ctx, s.db, func(tx *store.Tx) (Endpoint, error) { return get(ctx, tx, orgID, id) })
}

// Update changes the fields in sets and audits it (webhook.update).
// Enabling a disabled endpoint forgets its failures and moves its cursor to
// its chain's head: it receives the entries written from then on, this
// webhook.update included, and none of those written while it was
// disabled.
func (s *Service) Update(ctx context.Context, actor steward.Actor, orgID, id string, in Input) (Endpoint, error) {
	if err := s.check(ctx, in); err != nil {
		return Endpoint{}, err
	}
	return directory.Change(ctx, s.db, orgID, func(tx *store.Tx, org steward.Organization) (Endpoint, error) {
		e, err := getEndpoint(ctx, tx, org.ID, id, tx.ForUpdate())
		if err != nil {
			return e, err
		}
		wasDisabled := e.DisabledAt != nil
		if in.URL != nil {
			e.URL = *in.URL
		}
		if in.Events != nil {
			e.Events = in.Events
		}
		if in.Description != nil {
			e.Description = strings.TrimSpace(*in.Description)
		}
		switch {
		case in.Enabled == nil:
		case *in.Enabled:
			e.DisabledAt, e.DisabledReason = nil, ""
		case e.DisabledAt == nil:
			e.DisabledAt, e.DisabledReason = &tx.Now, "disabled by an admin"
		}
		if e.DisabledAt == nil && wasDisabled {
			if err := follow(ctx, tx, e.ID, org.ID); err != nil {
				return e, err
			}
		}
		e.UpdatedAt = tx.Now
		events, _ := json.Marshal(e.Events)
		if _, err := tx.Exec(ctx, `UPDATE webhook_endpoints SET url = ?, events = ?, description = ?, disabled_at = ?, disabled_reason = ?,
			failing_since = CASE WHEN ? THEN NULL ELSE failing_since END, updated_at = ? WHERE id = ?`,
			e.URL, string(events), e.Description, store.MicrosPtr(e.DisabledAt), nullable(e.DisabledReason),
			in.Enabled != nil && *in.Enabled, store.Micros(tx.Now), e.ID); err != nil {
			return e, err
		}
		return e, audit.Record(ctx, tx, entry(actor, org, audit.EventWebhookUpdate, e))
	})
}

// Delete deletes the endpoint and audits it (webhook.delete); its pending
// deliveries are not made.
func (s *Service) Delete(ctx context.Context, actor steward.Actor, orgID, id string) error {
	return directory.InOrganization(ctx, s.db, orgID, func(tx *store.Tx, org steward.Organization) error {
		e, err := get(ctx, tx, org.ID, id)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE webhook_endpoints SET deleted_at = ?, secret = '', previous_secret = NULL WHERE id = ?`, store.Micros(tx.Now), e.ID); err != nil {
			return err
		}
		if err := failPending(ctx, tx, e.ID, "the endpoint was deleted"); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM webhook_endpoint_cursors WHERE endpoint_id = ?`, e.ID); err != nil {
			return err
		}
		return audit.Record(ctx, tx, entry(actor, org, audit.EventWebhookDelete, e))
	})
}

// RotateSecretOverlap is how long a rotated secret keeps signing beside
// its successor.
const RotateSecretOverlap = 24 * time.Hour

// RotateSecret gives the endpoint a new signing secret and audits it
// (webhook.secret.rotate). It returns the new secret, which is returned
// nowhere else; the one it replaces signs beside it for
// RotateSecretOverlap (a secret replaced earlier stops at once).
func (s *Service) RotateSecret(ctx context.Context, actor steward.Actor, orgID, id string) (Endpoint, string, error) {
	secret := NewSecret()
	e, err := directory.Change(ctx, s.db, orgID, func(tx *store.Tx, org steward.Organization) (Endpoint, error) {
		e, err := get(ctx, tx, org.ID, id)
		if err != nil {
			return e, err
		}
		until := tx.Now.Add(RotateSecretOverlap)
		e.PreviousSecretUntil, e.UpdatedAt = &until, tx.Now
		if _, err := tx.Exec(ctx, `UPDATE webhook_endpoints SET previous_secret = secret, previous_secret_until = ?, secret = ?, updated_at = ? WHERE id = ?`,
			store.Micros(until), secret, store.Micros(tx.Now), e.ID); err != nil {
			return e, err
		}
		return e, audit.Record(ctx, tx, entry(actor, org, audit.EventWebhookSecretRotate, e))
	})
	return e, secret, err
}

// Test queues a webhook.test event for the endpoint, whether or not it is
// enabled or subscribed to it, and returns its delivery.
func (s *Service) Test(ctx context.Context, orgID, id string) (Delivery, error) {
	d, err := store.Write(ctx, s.db, func(tx *store.Tx) (Delivery, error) {
		e, err := get(ctx, tx, orgID, id)
		if err != nil {
			return Delivery{}, err
		}
		data := map[string]string{"endpoint_id": e.ID, "organization_id": e.OrganizationID, "message": "a test event sent from the Admin API"}
		d, err := newDelivery(e.ID, EventTest, tx.Now, data)
		if err != nil {
			return d, err
		}
		return d, insertDelivery(ctx, tx, d)
	})
	if err == nil {
		s.nudge()
	}
	return d, err
}

// Deliveries returns a page (from 1) of an endpoint's deliveries, newest
// first.
func (s *Service) Deliveries(ctx context.Context, orgID, id string, page, pageSize int) (Page[Delivery], error) {
	return store.Read(ctx, s.db, func(tx *store.Tx) (Page[Delivery], error) {
		out := Page[Delivery]{Items: []Delivery{}}
		if _, err := get(ctx, tx, orgID, id); err != nil {
			return out, err
		}
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM webhook_deliveries WHERE endpoint_id = ?`, id).Scan(&out.Total); err != nil {
			return out, err
		}
		pageSize = min(max(pageSize, 1), MaxPageSize)
		err := tx.Each(ctx, `SELECT `+deliveryColumns+` FROM webhook_deliveries WHERE endpoint_id = ?
			ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?`, []any{id, pageSize, (max(page, 1) - 1) * pageSize}, func(rows *sql.Rows) error {
			d, err := scanDelivery(rows)
			out.Items = append(out.Items, d)
			return err
		})
		return out, err
	})
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// follow starts (or, for an endpoint enabled again, moves) an endpoint's
// cursor where its Organization's chain will go on (audit.NextSQL), so that
// the entries of the transaction onward reach it, its own included (they
// are chained after the commit, past that position).
func follow(ctx context.Context, tx *store.Tx, endpointID, orgID string) error {
	_, err := tx.Exec(ctx, `INSERT INTO webhook_endpoint_cursors (endpoint_id, scope, seq)
		SELECT ?, c.scope, `+audit.NextSQL(tx.Dialect(), "c.scope")+` FROM (SELECT ? AS scope) AS c WHERE true
		ON CONFLICT (endpoint_id, scope) DO UPDATE SET seq = excluded.seq, claimed_until = NULL`,
		endpointID, audit.OrgScope(orgID))
	return err
}
