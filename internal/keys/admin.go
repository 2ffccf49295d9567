package keys

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/stewardhq/steward/internal/audit"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

// MaxNameLen bounds key names.
const MaxNameLen = 200

// CreateAdminKey issues an Admin API key for an Organization and audits it
// as admin_api_key.created. It returns the key and its secret, which exists
// nowhere else afterwards.
func CreateAdminKey(ctx context.Context, tx *store.Tx, actor steward.Actor, org steward.Organization, name string, expiresAt *time.Time) (steward.AdminAPIKey, string, error) {
	if err := checkKeyInput(tx, name, expiresAt); err != nil {
		return steward.AdminAPIKey{}, "", err
	}
	secret := New(PrefixAdmin)
	k := steward.AdminAPIKey{
		ID: uuid.NewString(), EnterpriseAccountID: org.EnterpriseAccountID, OrganizationID: org.ID,
		Name: name, Hint: Hint(secret), CreatedAt: tx.Now, ExpiresAt: expiresAt,
	}
	if _, err := tx.Exec(ctx, `INSERT INTO admin_api_keys (id, enterprise_account_id, organization_id, name, key_hash, hint, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, k.ID, k.EnterpriseAccountID, k.OrganizationID, k.Name, steward.HashToken(secret), k.Hint,
		store.Micros(tx.Now), store.MicrosPtr(expiresAt)); err != nil {
		return steward.AdminAPIKey{}, "", err
	}
	meta := map[string]string{"id": k.ID, "name": k.Name, "hint": k.Hint}
	if expiresAt != nil {
		meta["expires_at"] = expiresAt.UTC().Format(time.RFC3339)
	}
	err := audit.Record(ctx, tx, audit.Entry{
		EnterpriseAccountID: org.EnterpriseAccountID,
		OrganizationID:      org.ID,
		Actor:               actor,
		EventType:           audit.EventAdminAPIKeyCreated,
		TargetType:          audit.TargetAdminAPIKey,
		TargetMetadata:      meta,
	})
	return k, secret, err
}

// CreateBackofficeKey issues a Backoffice key for an Enterprise Account and
// audits it in the account's chain. It returns the key and its secret.
func CreateBackofficeKey(ctx context.Context, tx *store.Tx, actor steward.Actor, enterpriseAccountID, name string, expiresAt *time.Time) (steward.BackofficeKey, string, error) {
	if err := checkKeyInput(tx, name, expiresAt); err != nil {
		return steward.BackofficeKey{}, "", err
	}
	secret := New(PrefixBackoffice)
	k := steward.BackofficeKey{
		ID: uuid.NewString(), EnterpriseAccountID: enterpriseAccountID,
		Name: name, Hint: Hint(secret), CreatedAt: tx.Now, ExpiresAt: expiresAt,
	}
	if _, err := tx.Exec(ctx, `INSERT INTO backoffice_keys (id, enterprise_account_id, name, key_hash, hint, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, k.ID, k.EnterpriseAccountID, k.Name, steward.HashToken(secret), k.Hint,
		store.Micros(tx.Now), store.MicrosPtr(expiresAt)); err != nil {
		return steward.BackofficeKey{}, "", err
	}
	err := audit.Record(ctx, tx, audit.Entry{
		EnterpriseAccountID: enterpriseAccountID,
		Actor:               actor,
		EventType:           audit.EventBackofficeKeyCreate,
		TargetType:          audit.TargetBackofficeKey,
		TargetMetadata:      map[string]string{"id": k.ID, "name": k.Name, "hint": k.Hint},
	})
	return k, secret, err
}

func checkKeyInput(tx *store.Tx, name string, expiresAt *time.Time) error {
	switch {
	case name == "":
		return steward.Invalid([]string{"body", "name"}, "name must not be empty")
	case len(name) > MaxNameLen:
		return steward.Invalid([]string{"body", "name"}, "name must be at most %d bytes", MaxNameLen)
	case expiresAt != nil && !expiresAt.After(tx.Now):
		return steward.Invalid([]string{"body", "expires_at"}, "expires_at must be in the future")
	}
	return nil
}

// credential is what Verify reads of a stored key of any kind.
type credential struct {
	id, name, hash, org, ea string
	expires, revoked        sql.NullInt64
}

// Verify returns the principal a presented Admin API, Backoffice or
// Workspace key or SCIM token stands for, read from the database, and
// records its use in lastUsed (nil records none). It returns an
// *steward.Error of KindUnauthenticated when the key is malformed, unknown,
// revoked or expired; a malformed key is refused without a lookup.
// Credentials.Verify, through which package auth authenticates every
// request, answers the same from memory.
func Verify(ctx context.Context, db *store.DB, token string, lastUsed *LastUsed) (steward.Principal, error) {
	p, expires, err := lookup(ctx, db, token)
	if err != nil {
		return steward.Principal{}, err
	}
	return use(p, expires, db.Now(), lastUsed)
}

// lookup reads the credential token stands for: its principal and its
// expiry (zero for none), or an error of KindUnauthenticated when it is
// malformed, unknown or revoked.
func lookup(ctx context.Context, db *store.DB, token string) (steward.Principal, time.Time, error) {
	kind, ok := KindOf(token)
	if !ok {
		return steward.Principal{}, time.Time{}, errUnknownKey
	}
	var q string
	switch kind {
	case steward.CredentialAdminAPIKey:
		q = `SELECT id, name, key_hash, organization_id, enterprise_account_id, expires_at, revoked_at FROM admin_api_keys WHERE key_hash = ?`
	case steward.CredentialBackofficeKey:
		q = `SELECT id, name, key_hash, '', enterprise_account_id, expires_at, revoked_at FROM backoffice_keys WHERE key_hash = ?`
	case steward.CredentialSCIMToken:
		q = `SELECT t.id, t.name, t.token_hash, t.organization_id, o.enterprise_account_id, t.expires_at, t.revoked_at
			FROM scim_tokens t JOIN organizations o ON o.id = t.organization_id WHERE t.token_hash = ?`
	case steward.CredentialWorkspaceAPIKey:
		// Only to tell a Workspace key where it does not belong (403);
		// the model API checks Workspace keys with a Checker.
		q = `SELECT k.id, COALESCE(k.name, ''), k.key_hash, k.organization_id, o.enterprise_account_id, k.expires_at, k.deleted_at
			FROM api_keys k JOIN organizations o ON o.id = k.organization_id WHERE k.key_hash = ?`
	default:
		return steward.Principal{}, time.Time{}, errUnknownKey
	}
	hash := steward.HashToken(token)
	var c credential
	err := db.ReadRow(ctx, q, []any{hash}, &c.id, &c.name, &c.hash, &c.org, &c.ea, &c.expires, &c.revoked)
	if steward.IsKind(err, steward.KindNotFound) {
		return steward.Principal{}, time.Time{}, errUnknownKey
	}
	if err != nil {
		return steward.Principal{}, time.Time{}, err
	}
	if subtle.ConstantTimeCompare([]byte(c.hash), []byte(hash)) != 1 {
		return steward.Principal{}, time.Time{}, errUnknownKey
	}
	if c.revoked.Valid {
		return steward.Principal{}, time.Time{}, &steward.Error{Kind: steward.KindUnauthenticated, Message: "this API key was revoked"}
	}
	var expires time.Time
	if c.expires.Valid {
		expires = store.Time(c.expires.Int64)
	}
	return steward.Principal{Kind: kind, CredentialID: c.id, CredentialName: c.name, OrganizationID: c.org, EnterpriseAccountID: c.ea}, expires, nil
}

// use answers a credential presented at now: refused once it has expired,
// else its principal, its use recorded in lastUsed (nil records none;
// Workspace keys record theirs through a Checker).
func use(p steward.Principal, expires, now time.Time, lastUsed *LastUsed) (steward.Principal, error) {
	if !expires.IsZero() && !now.Before(expires) {
		return steward.Principal{}, &steward.Error{Kind: steward.KindUnauthenticated,
			Message: fmt.Sprintf("this API key expired at %s", expires.Format(time.RFC3339))}
	}
	if lastUsed != nil && p.Kind != steward.CredentialWorkspaceAPIKey {
		lastUsed.Touch(p.Kind, p.CredentialID, now)
	}
	return p, nil
}

var errUnknownKey = &steward.Error{Kind: steward.KindUnauthenticated, Message: "invalid API key"}

// AdminKeyListing is an Admin API key with its Organization's name.
type AdminKeyListing struct {
	Key              steward.AdminAPIKey
	OrganizationName string
}

// ListAdminKeys returns the live Admin API keys of an Enterprise Account's
// Organizations, newest first.
func ListAdminKeys(ctx context.Context, tx *store.Tx, enterpriseAccountID string) ([]AdminKeyListing, error) {
	var out []AdminKeyListing
	err := tx.Each(ctx, `SELECT k.id, k.enterprise_account_id, k.organization_id, o.name, k.name, k.hint, k.created_at, k.expires_at, k.last_used_at
		FROM admin_api_keys k JOIN organizations o ON o.id = k.organization_id
		WHERE k.enterprise_account_id = ? AND k.revoked_at IS NULL ORDER BY k.created_at DESC, k.id`, []any{enterpriseAccountID},
		func(rows *sql.Rows) error {
			var l AdminKeyListing
			var created int64
			var expires, used sql.NullInt64
			if err := rows.Scan(&l.Key.ID, &l.Key.EnterpriseAccountID, &l.Key.OrganizationID, &l.OrganizationName, &l.Key.Name, &l.Key.Hint,
				&created, &expires, &used); err != nil {
				return err
			}
			l.Key.CreatedAt, l.Key.ExpiresAt, l.Key.LastUsedAt = store.Time(created), store.TimePtr(expires), store.TimePtr(used)
			out = append(out, l)
			return nil
		})
	return out, err
}

// DeleteAdminKey revokes an Admin API key of the Enterprise Account at once
// and audits it as admin_api_key.delete in its Organization's log.
func DeleteAdminKey(ctx context.Context, tx *store.Tx, actor steward.Actor, enterpriseAccountID, id string) error {
	var orgID, name, hint string
	err := tx.QueryRow(ctx, `UPDATE admin_api_keys SET revoked_at = ? WHERE id = ? AND enterprise_account_id = ? AND revoked_at IS NULL
		RETURNING organization_id, name, hint`, store.Micros(tx.Now), id, enterpriseAccountID).Scan(&orgID, &name, &hint)
	if steward.IsKind(store.Translate(err), steward.KindNotFound) {
		return steward.Errorf(steward.KindNotFound, "no Admin API key %s in this Enterprise Account", id)
	}
	if err != nil {
		return err
	}
	revoked(tx, orgID, id)
	err = audit.Record(ctx, tx, audit.Entry{
		EnterpriseAccountID: enterpriseAccountID, OrganizationID: orgID, Actor: actor,
		EventType: audit.EventAdminAPIKeyDelete, TargetType: audit.TargetAdminAPIKey,
		TargetMetadata: map[string]string{"id": id, "name": name, "hint": hint},
	})
	return err
}
