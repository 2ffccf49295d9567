package keys

import (
	"context"
	"database/sql"
	"time"

	"github.com/google/uuid"

	"github.com/stewardhq/steward/internal/audit"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

// MaxSCIMTokens is how many live SCIM tokens an Organization may hold.
const MaxSCIMTokens = 20

// SCIMToken authenticates an identity provider on one Organization's SCIM
// service provider, and nowhere else. Its secret is never stored.
type SCIMToken struct {
	ID             string
	OrganizationID string
	Name           string
	Hint           string
	CreatedAt      time.Time
	ExpiresAt      *time.Time
	LastUsedAt     *time.Time
}

func scimTokenEntry(actor steward.Actor, org steward.Organization, event string, t SCIMToken) audit.Entry {
	meta := map[string]string{"id": t.ID, "name": t.Name, "hint": t.Hint}
	if t.ExpiresAt != nil {
		meta["expires_at"] = t.ExpiresAt.UTC().Format(time.RFC3339)
	}
	return audit.Entry{EnterpriseAccountID: org.EnterpriseAccountID, OrganizationID: org.ID, Actor: actor,
		EventType: event, TargetType: audit.TargetSCIMToken, TargetMetadata: meta}
}

// CreateSCIMToken issues a SCIM token for an Organization and audits it. It
// returns the token and its secret, which exists nowhere else afterwards.
func CreateSCIMToken(ctx context.Context, tx *store.Tx, actor steward.Actor, org steward.Organization, name string, expiresAt *time.Time) (SCIMToken, string, error) {
	if err := checkKeyInput(tx, name, expiresAt); err != nil {
		return SCIMToken{}, "", err
	}
	var live int
	if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM scim_tokens WHERE organization_id = ? AND revoked_at IS NULL`, org.ID).Scan(&live); err != nil {
		return SCIMToken{}, "", err
	}
	if live >= MaxSCIMTokens {
		return SCIMToken{}, "", &steward.Error{Kind: steward.KindConflict, Code: "too_many_scim_tokens",
			Message: "this Organization already has the most SCIM tokens allowed (20): revoke one first"}
	}
	secret := New(PrefixSCIM)
	t := SCIMToken{ID: uuid.NewString(), OrganizationID: org.ID, Name: name, Hint: Hint(secret), CreatedAt: tx.Now, ExpiresAt: expiresAt}
	if _, err := tx.Exec(ctx, `INSERT INTO scim_tokens (id, organization_id, name, token_hash, hint, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		t.ID, org.ID, name, steward.HashToken(secret), t.Hint, store.Micros(tx.Now), store.MicrosPtr(expiresAt)); err != nil {
		return SCIMToken{}, "", err
	}
	err := audit.Record(ctx, tx, scimTokenEntry(actor, org, audit.EventSCIMTokenCreate, t))
	return t, secret, err
}

// ListSCIMTokens returns the Organization's live SCIM tokens, newest first.
func ListSCIMTokens(ctx context.Context, tx *store.Tx, orgID string) ([]SCIMToken, error) {
	out := []SCIMToken{}
	err := tx.Each(ctx, `SELECT id, organization_id, name, hint, created_at, expires_at, last_used_at FROM scim_tokens
		WHERE organization_id = ? AND revoked_at IS NULL ORDER BY created_at DESC, id`, []any{orgID}, func(rows *sql.Rows) error {
		var t SCIMToken
		var created int64
		var expires, used sql.NullInt64
		if err := rows.Scan(&t.ID, &t.OrganizationID, &t.Name, &t.Hint, &created, &expires, &used); err != nil {
			return err
		}
		t.CreatedAt, t.ExpiresAt, t.LastUsedAt = store.Time(created), store.TimePtr(expires), store.TimePtr(used)
		out = append(out, t)
		return nil
	})
	return out, err
}

// RevokeSCIMToken revokes a live SCIM token of the Organization at once and
// audits it.
func RevokeSCIMToken(ctx context.Context, tx *store.Tx, actor steward.Actor, org steward.Organization, id string) error {
	if _, err := uuid.Parse(id); err != nil {
		return noSCIMToken(id)
	}
	var t SCIMToken
	var expires sql.NullInt64
	err := tx.QueryRow(ctx, `UPDATE scim_tokens SET revoked_at = ? WHERE id = ? AND organization_id = ? AND revoked_at IS NULL
		RETURNING id, name, hint, expires_at`, store.Micros(tx.Now), id, org.ID).Scan(&t.ID, &t.Name, &t.Hint, &expires)
	if steward.IsKind(store.Translate(err), steward.KindNotFound) {
		return noSCIMToken(id)
	}
	if err != nil {
		return err
	}
	t.ExpiresAt = store.TimePtr(expires)
	revoked(tx, org.ID, t.ID)
	return audit.Record(ctx, tx, scimTokenEntry(actor, org, audit.EventSCIMTokenRevoke, t))
}

func noSCIMToken(id string) error {
	return steward.Errorf(steward.KindNotFound, "no live SCIM token %s in this Organization", id)
}
