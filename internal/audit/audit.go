// Package audit writes, reads and verifies Steward's audit log. Every change
// writes its entry through the transaction that makes the change, so a change
// without its entry cannot exist. Entries form a hash chain per Organization
// (or per Enterprise Account, for changes that belong to no Organization):
// each stores the hash of the previous one, so an edited, inserted or deleted
// row breaks the chain and Verify names where.
package audit

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

// Entry is one audit log entry.
type Entry struct {
	LogID int64
	// Seq is the entry's place in its chain, set when it is read by After.
	Seq                 int64
	EnterpriseAccountID string
	OrganizationID      string
	WorkspaceID         string
	CreatedAt           time.Time
	Actor               steward.Actor
	EventType           string
	EventMetadata       map[string]string
	TargetType          string
	TargetMetadata      map[string]string
}

// Target types, as Mistral's document spells them.
const (
	TargetUser              = "USER"
	TargetUserGroup         = "USER_GROUP"
	TargetOrganization      = "ORGANIZATION"
	TargetWorkspace         = "WORKSPACE"
	TargetAPIKey            = "API_KEY"
	TargetAdminAPIKey       = "ADMIN_API_KEY"
	TargetAPIKeyPolicy      = "API_KEY_POLICY"
	TargetMonthlyLimit      = "MONTHLY_LIMIT"
	TargetWorkspaceMonthly  = "WORKSPACE_MONTHLY_LIMIT"
	TargetRateLimitRule     = "RATE_LIMIT_RULE"
	TargetEnterpriseAccount = "ENTERPRISE_ACCOUNT" // Steward's
	TargetBackofficeKey     = "BACKOFFICE_KEY"     // Steward's
	TargetRole              = "ROLE"               // Steward's
	TargetSCIMToken         = "SCIM_TOKEN"         // Steward's
	TargetWebhook           = "WEBHOOK"            // Steward's
	TargetSSOConnection     = "SSO_CONNECTION"     // Steward's
)

// Event types, with Mistral's names wherever one fits.
const (
	EventOrganizationCreate           = "organization.create"
	EventOrganizationUpdate           = "organization.update"
	EventWorkspaceCreate              = "workspace.create"
	EventWorkspaceMemberAdd           = "workspace.member.add"
	EventWorkspaceUpdate              = "workspace.update"
	EventWorkspaceDelete              = "workspace.delete"
	EventWorkspaceMemberRemove        = "workspace.member.remove"
	EventWorkspaceMemberRoleUpdate    = "workspace.member.role.update"
	EventGroupCreate                  = "user_group.create"
	EventGroupUpdate                  = "user_group.update"
	EventGroupDelete                  = "user_group.delete"
	EventGroupMemberAdd               = "user_group.member.add"
	EventGroupMemberRemove            = "user_group.member.remove"
	EventGroupWorkspaceProvision      = "user_group.workspace.provision"
	EventGroupWorkspaceDeprovision    = "user_group.workspace.deprovision"
	EventGroupWorkspaceUpdate         = "user_group.workspace.update"
	EventUserCreate                   = "user.create"
	EventUserDelete                   = "user.delete"
	EventUserRoleUpdate               = "user.organization.role.update"
	EventUserJoin                     = "user.organization.join"
	EventInviteSend                   = "organization.invite.send"
	EventInviteResend                 = "organization.invite.resend"
	EventInviteAccepted               = "organization.invite.accepted"
	EventInviteRevoked                = "organization.invite.revoked"
	EventSeatGrant                    = "billing.seat.grant"
	EventSeatRevoke                   = "billing.seat.revoke"
	EventAdminAPIKeyCreated           = "admin_api_key.created"
	EventAdminAPIKeyDelete            = "admin_api_key.delete"
	EventAPIKeyCreate                 = "api_key.create"
	EventAPIKeyRotate                 = "api_key.rotate"
	EventAPIKeyDelete                 = "api_key.delete"
	EventAPIKeyPolicyUpdate           = "api_key_policy.update"
	EventMonthlyLimitUpdated          = "billing.monthly_limit.updated"
	EventWorkspaceMonthlyLimitUpdated = "billing.workspace_monthly_limit.updated"
	EventRateLimitUpdate              = "rate_limit.rule.update"
	EventUserInfoUpdate               = "user.info.update"
	EventSCIMSyncTrigger              = "organization.scim_sync.trigger"
)

// Steward-only event types. Mistral's document has no name for these
// changes; their entries are kept like any other but are left out of the
// Mistral-compatible listing, whose event_type is an enum of Mistral's
// names.
const (
	EventEnterpriseAccountCreate       = "enterprise_account.create"
	EventEnterpriseAccountMemberAdd    = "enterprise_account.member.add"
	EventEnterpriseAccountMemberRemove = "enterprise_account.member.remove"
	EventEnterpriseAccountUpdate       = "enterprise_account.update"
	EventBackofficeKeyCreate           = "backoffice_key.create"
	EventRoleCreate                    = "role.create"
	EventRoleUpdate                    = "role.update"
	EventRoleDelete                    = "role.delete"
	EventUserPasswordSet               = "user.password.set"
	EventSCIMTokenCreate               = "scim_token.create"
	EventSCIMTokenRevoke               = "scim_token.revoke"
	EventUserDeactivate                = "user.deactivate"
	EventUserReactivate                = "user.reactivate"
	// EventAPIKeyUpdate is a change of a Workspace API key's settings
	// (its allow list of models).
	EventAPIKeyUpdate = "api_key.update"
	// Alerts: Steward itself records that a limit or a key needs
	// attention, once per threshold and period (see docs/audit-log.md).
	EventLimitSpendReached  = "limit.spend.reached"
	EventLimitTokensReached = "limit.tokens.reached"
	EventAPIKeyExpiring     = "api_key.expiring"
	EventAdminAPIKeyUnused  = "admin_api_key.unused"
	// Webhook endpoints' changes (package webhooks).
	EventWebhookCreate       = "webhook.create"
	EventWebhookUpdate       = "webhook.update"
	EventWebhookDelete       = "webhook.delete"
	EventWebhookSecretRotate = "webhook.secret.rotate"
	// EventWebhookDisabled is Steward disabling an endpoint whose
	// deliveries kept failing.
	EventWebhookDisabled = "webhook.disabled"
	// Single sign-on (package sso): a connection's changes, and the
	// sign-ins through it, let in or refused with the reason.
	EventSSOConfigurationUpdated = "sso.configuration.updated"
	EventSSOConfigurationDeleted = "sso.configuration.deleted"
	EventUserLoginSSO            = "user.login.sso"
	EventUserLoginSSOFailed      = "user.login.sso_failed"
)

// StewardOnlyEvents lists the event types that are not Mistral's.
var StewardOnlyEvents = []string{
	EventEnterpriseAccountCreate, EventEnterpriseAccountMemberAdd, EventEnterpriseAccountMemberRemove, EventEnterpriseAccountUpdate, EventBackofficeKeyCreate,
	EventRoleCreate, EventRoleUpdate, EventRoleDelete, EventUserPasswordSet,
	EventSCIMTokenCreate, EventSCIMTokenRevoke, EventUserDeactivate, EventUserReactivate, EventAPIKeyUpdate,
	EventLimitSpendReached, EventLimitTokensReached, EventAPIKeyExpiring, EventAdminAPIKeyUnused,
	EventWebhookCreate, EventWebhookUpdate, EventWebhookDelete, EventWebhookSecretRotate, EventWebhookDisabled,
	EventSSOConfigurationUpdated, EventSSOConfigurationDeleted, EventUserLoginSSO, EventUserLoginSSOFailed,
}

// OrgScope names an Organization's chain.
func OrgScope(orgID string) string { return "org:" + orgID }

// scopeOrganization is the Organization of an Organization's chain, ""
// for an Enterprise Account's.
func scopeOrganization(scope string) string {
	if id, ok := strings.CutPrefix(scope, "org:"); ok {
		return id
	}
	return ""
}

// scope names the chain an entry belongs to.
func (e *Entry) scope() (string, error) {
	switch {
	case e.OrganizationID != "":
		return OrgScope(e.OrganizationID), nil
	case e.EnterpriseAccountID != "":
		return "ea:" + e.EnterpriseAccountID, nil
	default:
		return "", fmt.Errorf("audit entry %s has neither an Organization nor an Enterprise Account", e.EventType)
	}
}

// Record writes e through tx, at tx's time. It must be called in the
// transaction that makes the change it records; see RecordBatch.
func Record(ctx context.Context, tx *store.Tx, e Entry) error {
	return RecordBatch(ctx, tx, []Entry{e})
}

// RecordBatch writes entries of one chain through tx, at tx's time, in
// order, with as few statements as it can: a change that touches a thousand
// members writes its thousand entries at once. It checks the entries at
// once and inserts them as the transaction's last step
// (store.Tx.BeforeCommit).
//
// On SQLite, whose one writer commits one transaction at a time, they are
// linked into their chain there. On PostgreSQL they are inserted unlinked,
// without taking the chain's head, and a linker links them after the
// commit (see Link): a writer that held the head through its commit would
// make every other writer of the Organization wait for its flush to disk.
func RecordBatch(ctx context.Context, tx *store.Tx, entries []Entry) error {
	if len(entries) == 0 {
		return nil
	}
	scope, err := check(tx, entries)
	if err != nil {
		return err
	}
	entries = slices.Clone(entries)
	if tx.Dialect() == store.Postgres {
		// This process's linker hears of the entries once they commit;
		// the others' find them in their rounds, should it die first.
		// They are inserted last all the same, so that their log_ids,
		// which the linker follows, are in about the commits' order.
		tx.Nudge(store.Change{Topic: TopicUnlinked, OrganizationID: entries[0].OrganizationID})
		tx.BeforeCommit(func(ctx context.Context) error { return insertUnlinked(ctx, tx, scope, entries) })
		return nil
	}
	// Linked at the commit: the webhooks' dispatcher hears of them then.
	tx.Nudge(store.Change{Topic: TopicLinked, OrganizationID: entries[0].OrganizationID})
	tx.BeforeCommit(func(ctx context.Context) error {
		rows, err := chain(ctx, tx, scope, entries)
		if err != nil {
			return err
		}
		return insert(ctx, tx, scope, rows)
	})
	return nil
}

// insertUnlinked inserts entries without their position and hashes, for
// the linker.
func insertUnlinked(ctx context.Context, tx *store.Tx, scope string, entries []Entry) error {
	values := make([][]any, len(entries))
	for i := range entries {
		r, err := newRow(scope, &entries[i])
		if err != nil {
			return err
		}
		values[i] = r.valuesWith(nil, nil, nil)
	}
	return tx.InsertMany(ctx, "audit_log", strings.Split(rowColumns, ", "), values, "")
}

// insert inserts linked rows and moves their chain's head to the last.
func insert(ctx context.Context, tx *store.Tx, scope string, rows []*row) error {
	head := rows[len(rows)-1].Hash
	values := make([][]any, len(rows))
	for i, r := range rows {
		values[i] = r.values()
	}
	if err := tx.InsertMany(ctx, "audit_log", strings.Split(rowColumns, ", "), values, ""); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `UPDATE audit_chains SET head_hash = ? WHERE scope = ?`, head, scope)
	return err
}

// check returns the chain of the entries, which must all belong to one, and
// sets their time to tx's.
func check(tx *store.Tx, entries []Entry) (string, error) {
	scope, err := entries[0].scope()
	if err != nil {
		return "", err
	}
	for i := range entries {
		e := &entries[i]
		s, err := e.scope()
		switch {
		case err != nil:
			return "", err
		case s != scope:
			return "", fmt.Errorf("audit entries of one batch belong to %s and %s", scope, s)
		case e.EventType == "" || e.TargetType == "" || e.Actor.Type == "":
			return "", fmt.Errorf("audit entry is missing its event type, target type or actor type")
		}
		e.CreatedAt = tx.Now
	}
	return scope, nil
}

// chain takes the head of the entries' chain and links the entries to it
// and to each other; insert then moves the head past them. Taking the head
// (one upsert that creates the chain or advances it) locks the chain on
// PostgreSQL until the transaction ends, so writers of one chain are
// serialised and the chain never forks.
func chain(ctx context.Context, tx *store.Tx, scope string, entries []Entry) ([]*row, error) {
	var last int64
	var prev string
	if err := tx.QueryRow(ctx, `INSERT INTO audit_chains (scope, seq, head_hash) VALUES (?, ?, '')
		ON CONFLICT (scope) DO UPDATE SET seq = audit_chains.seq + excluded.seq RETURNING seq, head_hash`, scope, len(entries)).Scan(&last, &prev); err != nil {
		return nil, err
	}
	rows := make([]*row, len(entries))
	for i := range entries {
		r, err := newRow(scope, &entries[i])
		if err != nil {
			return nil, err
		}
		r.link(last-int64(len(entries)-1-i), prev)
		rows[i], prev = r, r.Hash
	}
	return rows, nil
}

const rowColumns = `scope, seq, enterprise_account_id, organization_id, workspace_id, created_at, actor_type, actor_user_id, actor_metadata, event_type, event_metadata, target_type, target_metadata, prev_hash, hash`

func (r *row) values() []any { return r.valuesWith(r.Seq, r.PrevHash, r.Hash) }

// scanStored reads a row selected as log_id and rowColumns into logID and
// r; an unlinked row has seq 0 and empty hashes.
func scanStored(rows *sql.Rows, logID *int64, r *row) error {
	var seq sql.NullInt64
	var prev, hash sql.NullString
	err := rows.Scan(logID, &r.Scope, &seq, &r.EnterpriseAccountID, &r.OrganizationID, &r.WorkspaceID, &r.CreatedAt,
		&r.ActorType, &r.ActorUserID, &r.ActorMetadata, &r.EventType, &r.EventMetadata, &r.TargetType, &r.TargetMetadata,
		&prev, &hash)
	r.Seq, r.PrevHash, r.Hash = seq.Int64, prev.String, hash.String
	return err
}

// valuesWith is the row's values in rowColumns' order with seq, prev_hash
// and hash given: nil for an unlinked row.
func (r *row) valuesWith(seq, prevHash, hash any) []any {
	return []any{r.Scope, seq, r.EnterpriseAccountID, r.OrganizationID, r.WorkspaceID, r.CreatedAt,
		r.ActorType, r.ActorUserID, r.ActorMetadata, r.EventType, r.EventMetadata, r.TargetType, r.TargetMetadata,
		prevHash, hash}
}

// row is an entry as stored; its hash covers every column but log_id and
// hash itself.
type row struct {
	Scope               string
	Seq                 int64
	EnterpriseAccountID *string
	OrganizationID      *string
	WorkspaceID         *string
	CreatedAt           int64
	ActorType           string
	ActorUserID         *string
	ActorMetadata       string
	EventType           string
	EventMetadata       string
	TargetType          string
	TargetMetadata      string
	PrevHash            string
	Hash                string
}

// newRow is e as stored in scope's chain, not yet linked (see link).
func newRow(scope string, e *Entry) (*row, error) {
	r := &row{
		Scope:               scope,
		EnterpriseAccountID: nullable(e.EnterpriseAccountID),
		OrganizationID:      nullable(e.OrganizationID),
		WorkspaceID:         nullable(e.WorkspaceID),
		CreatedAt:           store.Micros(e.CreatedAt),
		ActorType:           e.Actor.Type,
		ActorUserID:         nullable(e.Actor.UserID),
		EventType:           e.EventType,
		TargetType:          e.TargetType,
	}
	var err error
	if r.ActorMetadata, err = encodeMap(e.Actor.Metadata); err != nil {
		return nil, err
	}
	if r.EventMetadata, err = encodeMap(e.EventMetadata); err != nil {
		return nil, err
	}
	if r.TargetMetadata, err = encodeMap(e.TargetMetadata); err != nil {
		return nil, err
	}
	return r, nil
}

// link places r at seq in its chain, after the entry whose hash is prev.
func (r *row) link(seq int64, prev string) {
	r.Seq, r.PrevHash = seq, prev
	r.Hash = r.computeHash()
}

// computeHash is SHA-256 over the previous hash and a JSON array of the
// row's other columns, in a fixed order.
func (r *row) computeHash() string {
	fields := []any{r.Scope, r.Seq, r.EnterpriseAccountID, r.OrganizationID, r.WorkspaceID, r.CreatedAt,
		r.ActorType, r.ActorUserID, r.ActorMetadata, r.EventType, r.EventMetadata, r.TargetType, r.TargetMetadata}
	b, _ := json.Marshal(fields)
	h := sha256.New()
	h.Write([]byte(r.PrevHash))
	h.Write([]byte{'\n'})
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

// encodeMap stores metadata as JSON; encoding/json sorts map keys, so the
// text, and so the hash, is canonical.
func encodeMap(m map[string]string) (string, error) {
	if m == nil {
		return "{}", nil
	}
	b, err := json.Marshal(m)
	return string(b), err
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
