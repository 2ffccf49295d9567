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
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

// Entry is one audit log entry.
type Entry struct {
	LogID               int64
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
)

// Event types, with Mistral's names wherever one fits.
const (
	EventOrganizationCreate = "organization.create"
	EventWorkspaceCreate    = "workspace.create"
	EventWorkspaceMemberAdd = "workspace.member.add"
	EventUserCreate         = "user.create"
	EventUserDelete         = "user.delete"
	EventUserRoleUpdate     = "user.organization.role.update"
	EventUserJoin           = "user.organization.join"
	EventInviteSend         = "organization.invite.send"
	EventInviteResend       = "organization.invite.resend"
	EventInviteAccepted     = "organization.invite.accepted"
	EventInviteRevoked      = "organization.invite.revoked"
	EventSeatGrant          = "billing.seat.grant"
	EventSeatRevoke         = "billing.seat.revoke"
	EventAdminAPIKeyCreated = "admin_api_key.created"
	EventAdminAPIKeyDelete  = "admin_api_key.delete"
)

// Steward-only event types. Mistral's document has no name for these
// changes; their entries are kept like any other but are left out of the
// Mistral-compatible listing, whose event_type is an enum of Mistral's
// names.
const (
	EventEnterpriseAccountCreate    = "enterprise_account.create"
	EventEnterpriseAccountMemberAdd = "enterprise_account.member.add"
	EventBackofficeKeyCreate        = "backoffice_key.create"
	EventRoleCreate                 = "role.create"
	EventRoleUpdate                 = "role.update"
	EventRoleDelete                 = "role.delete"
)

// StewardOnlyEvents lists the event types that are not Mistral's.
var StewardOnlyEvents = []string{
	EventEnterpriseAccountCreate, EventEnterpriseAccountMemberAdd, EventBackofficeKeyCreate,
	EventRoleCreate, EventRoleUpdate, EventRoleDelete,
}

// scope names the chain an entry belongs to.
func (e *Entry) scope() (string, error) {
	switch {
	case e.OrganizationID != "":
		return "org:" + e.OrganizationID, nil
	case e.EnterpriseAccountID != "":
		return "ea:" + e.EnterpriseAccountID, nil
	default:
		return "", fmt.Errorf("audit entry %s has neither an Organization nor an Enterprise Account", e.EventType)
	}
}

// Record writes e through tx, at tx's time, and returns its log id. It must
// be called in the transaction that makes the change it records.
func Record(ctx context.Context, tx *store.Tx, e Entry) (int64, error) {
	scope, err := e.scope()
	if err != nil {
		return 0, err
	}
	if e.EventType == "" || e.TargetType == "" || e.Actor.Type == "" {
		return 0, fmt.Errorf("audit entry is missing its event type, target type or actor type")
	}
	e.CreatedAt = tx.Now
	// Creating the chain row first, then updating it, takes a row lock on
	// PostgreSQL that serialises the writers of one chain.
	if _, err := tx.Exec(ctx, `INSERT INTO audit_chains (scope, seq, head_hash) VALUES (?, 0, '') ON CONFLICT (scope) DO NOTHING`, scope); err != nil {
		return 0, err
	}
	var seq int64
	var prev string
	if err := tx.QueryRow(ctx, `UPDATE audit_chains SET seq = seq + 1 WHERE scope = ? RETURNING seq, head_hash`, scope).Scan(&seq, &prev); err != nil {
		return 0, err
	}
	row, err := newRow(scope, seq, prev, &e)
	if err != nil {
		return 0, err
	}
	var id int64
	err = tx.QueryRow(ctx, `INSERT INTO audit_log (scope, seq, enterprise_account_id, organization_id, workspace_id, created_at,
		actor_type, actor_user_id, actor_metadata, event_type, event_metadata, target_type, target_metadata, prev_hash, hash)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING log_id`,
		row.Scope, row.Seq, row.EnterpriseAccountID, row.OrganizationID, row.WorkspaceID, row.CreatedAt,
		row.ActorType, row.ActorUserID, row.ActorMetadata, row.EventType, row.EventMetadata, row.TargetType, row.TargetMetadata,
		row.PrevHash, row.Hash).Scan(&id)
	if err != nil {
		return 0, err
	}
	if _, err := tx.Exec(ctx, `UPDATE audit_chains SET head_hash = ? WHERE scope = ?`, row.Hash, scope); err != nil {
		return 0, err
	}
	return id, nil
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

func newRow(scope string, seq int64, prev string, e *Entry) (*row, error) {
	r := &row{
		Scope:               scope,
		Seq:                 seq,
		EnterpriseAccountID: nullable(e.EnterpriseAccountID),
		OrganizationID:      nullable(e.OrganizationID),
		WorkspaceID:         nullable(e.WorkspaceID),
		CreatedAt:           store.Micros(e.CreatedAt),
		ActorType:           e.Actor.Type,
		ActorUserID:         nullable(e.Actor.UserID),
		EventType:           e.EventType,
		TargetType:          e.TargetType,
		PrevHash:            prev,
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
	r.Hash = r.computeHash()
	return r, nil
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
