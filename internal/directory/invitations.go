package directory

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/stewardhq/steward/internal/audit"
	"github.com/stewardhq/steward/internal/outbox"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

// DefaultInvitationTTL is how long an invitation can be accepted.
const DefaultInvitationTTL = 7 * 24 * time.Hour

// EmailLanguages are the languages an invitation email may ask for.
var EmailLanguages = []string{"en", "fr", "es", "de", "it", "pt_br", "pl", "ar", "nl"}

// InviteSettings say how invitations are made.
type InviteSettings struct {
	TTL time.Duration
	// AcceptURL is the page that accepts an invitation; the token is added
	// as its "token" query parameter.
	AcceptURL string
}

// InviteInput is one POST /users-invite.
type InviteInput struct {
	// Emails holds one or several addresses separated by commas, semicolons,
	// spaces or new lines.
	Emails                string
	Roles                 RoleInput
	SubscriptionTypes     []string
	SeatAutomaticGranting bool
	EmailLanguage         *string
	WorkspaceIDs          []string
}

// InviteResult reports an invitation batch.
type InviteResult struct {
	InvalidEmails  []string
	AlreadyMembers []string
	Invited        int
}

const invitationColumns = `id, organization_id, email, role_ids, subscription_types, workspace_ids,
	seat_automatic_granting, email_language, created_at, expires_at, accepted_at, revoked_at`

func scanInvitation(row interface{ Scan(...any) error }) (steward.Invitation, error) {
	var inv steward.Invitation
	var roles, seats, workspaces string
	var lang *string
	var created, expires int64
	var accepted, revoked *int64
	if err := row.Scan(&inv.ID, &inv.OrganizationID, &inv.Email, &roles, &seats, &workspaces,
		&inv.SeatAutomaticGranting, &lang, &created, &expires, &accepted, &revoked); err != nil {
		return inv, err
	}
	inv.CreatedAt, inv.ExpiresAt = store.Time(created), store.Time(expires)
	if lang != nil {
		inv.EmailLanguage = *lang
	}
	if accepted != nil {
		t := store.Time(*accepted)
		inv.AcceptedAt = &t
	}
	if revoked != nil {
		t := store.Time(*revoked)
		inv.RevokedAt = &t
	}
	var err error
	if inv.RoleIDs, err = parseList(roles); err != nil {
		return inv, err
	}
	if inv.SubscriptionTypes, err = parseList(seats); err != nil {
		return inv, err
	}
	inv.WorkspaceIDs, err = parseList(workspaces)
	return inv, err
}

// SplitEmails splits a list of addresses on commas, semicolons, white space
// and new lines.
func SplitEmails(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool {
		return r == ',' || r == ';' || r == ' ' || r == '\t' || r == '\n' || r == '\r'
	})
}

// Invite invites every valid address that is not a member yet, each with the
// roles, seats and Workspaces given, and enqueues the invitation emails in
// the same transaction. An address with a pending invitation gets a fresh
// one (and a new link). Invalid addresses and members are reported, never
// failing the others; invalid roles, seats or Workspaces fail the whole
// request with KindInvalid.
func Invite(ctx context.Context, tx *store.Tx, actor steward.Actor, org steward.Organization, settings InviteSettings, in InviteInput) (InviteResult, error) {
	res := InviteResult{InvalidEmails: []string{}, AlreadyMembers: []string{}}
	addresses := SplitEmails(in.Emails)
	switch {
	case len(addresses) == 0:
		return res, steward.Invalid([]string{"body", "email"}, "email must hold at least one address")
	case len(addresses) > MaxBatch:
		return res, steward.Invalid([]string{"body", "email"}, "at most %d addresses can be invited at once, not %d", MaxBatch, len(addresses))
	}
	cat, err := LoadCatalog(ctx, tx, org.ID)
	if err != nil {
		return res, err
	}
	var errs []*steward.Error
	roleIDs, err := cat.Resolve(steward.ScopeOrganization, in.Roles, []string{"body"})
	if err != nil {
		errs = append(errs, asInvalid(err)...)
	}
	seats, verr := checkSeats([]string{"body", "subscription_types"}, in.SubscriptionTypes)
	if verr != nil {
		errs = append(errs, verr)
	}
	lang := "en"
	if in.EmailLanguage != nil {
		lang = *in.EmailLanguage
		if !slices.Contains(EmailLanguages, lang) {
			errs = append(errs, steward.Invalid([]string{"body", "email_language"}, "email_language must be one of %s", strings.Join(EmailLanguages, ", ")))
		}
	}
	workspaces, werrs := checkWorkspaces(ctx, tx, org.ID, in.WorkspaceIDs)
	errs = append(errs, werrs...)
	if err := steward.Invalids(errs); err != nil {
		return res, err
	}
	seen := map[string]bool{}
	for _, addr := range addresses {
		display, normalized, err := NormalizeEmail(nil, addr)
		if err != nil || seen[normalized] {
			if err != nil {
				res.InvalidEmails = append(res.InvalidEmails, addr)
			}
			continue
		}
		seen[normalized] = true
		var members int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM organization_members m JOIN users u ON u.id = m.user_id
			WHERE m.organization_id = ? AND u.email_normalized = ?`, org.ID, normalized).Scan(&members); err != nil {
			return res, err
		}
		if members > 0 {
			res.AlreadyMembers = append(res.AlreadyMembers, display)
			continue
		}
		inv := steward.Invitation{
			ID: uuid.NewString(), OrganizationID: org.ID, Email: display, RoleIDs: roleIDs, SubscriptionTypes: seats,
			WorkspaceIDs: workspaces, SeatAutomaticGranting: in.SeatAutomaticGranting, EmailLanguage: lang,
			CreatedAt: tx.Now, ExpiresAt: tx.Now.Add(settings.TTL),
		}
		token := rand.Text()
		event := audit.EventInviteSend
		var previous string
		err = tx.QueryRow(ctx, `SELECT id FROM invitations WHERE organization_id = ? AND email_normalized = ?
			AND accepted_at IS NULL AND revoked_at IS NULL`, org.ID, normalized).Scan(&previous)
		switch {
		case err == nil:
			// A new invitation replaces the pending one, whose link stops working.
			event = audit.EventInviteResend
			if _, err := tx.Exec(ctx, `UPDATE invitations SET revoked_at = ? WHERE id = ?`, store.Micros(tx.Now), previous); err != nil {
				return res, err
			}
		case !steward.IsKind(store.Translate(err), steward.KindNotFound):
			return res, err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO invitations (id, organization_id, email, email_normalized, role_ids, subscription_types,
			workspace_ids, seat_automatic_granting, email_language, token_hash, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, inv.ID, org.ID, display, normalized, jsonList(roleIDs), jsonList(seats),
			jsonList(workspaces), in.SeatAutomaticGranting, lang, steward.HashToken(token), store.Micros(tx.Now), store.Micros(inv.ExpiresAt)); err != nil {
			return res, err
		}
		if _, err := outbox.Enqueue(ctx, tx, invitationEmail(org, inv, settings.AcceptURL, token)); err != nil {
			return res, err
		}
		meta := map[string]string{"roles": roleNames(cat, roleIDs), "workspace_uuids": strings.Join(workspaces, ","),
			"expires_at": inv.ExpiresAt.Format(time.RFC3339)}
		if previous != "" {
			meta["replaces_invitation"] = previous
		}
		if err := audit.Record(ctx, tx, audit.Entry{
			EnterpriseAccountID: org.EnterpriseAccountID, OrganizationID: org.ID, Actor: actor,
			EventType: event, EventMetadata: meta,
			TargetType: audit.TargetUser, TargetMetadata: map[string]string{"email": display, "invitation_id": inv.ID},
		}); err != nil {
			return res, err
		}
		res.Invited++
	}
	return res, nil
}

// checkWorkspaces validates Workspace ids of the Organization that are not
// archived, returning them deduplicated.
func checkWorkspaces(ctx context.Context, tx *store.Tx, orgID string, ids []string) ([]string, []*steward.Error) {
	out := []string{}
	var errs []*steward.Error
	for i, id := range ids {
		field := []string{"body", "workspace_uuids", strconv.Itoa(i)}
		if _, err := uuid.Parse(id); err != nil {
			errs = append(errs, steward.Invalid(field, "%q is not a UUID", id))
			continue
		}
		var archived *int64
		err := tx.QueryRow(ctx, `SELECT archived_at FROM workspaces WHERE organization_id = ? AND id = ?`, orgID, id).Scan(&archived)
		switch {
		case steward.IsKind(store.Translate(err), steward.KindNotFound):
			errs = append(errs, steward.Invalid(field, "no Workspace %s in this Organization", id))
		case err != nil:
			errs = append(errs, steward.Internal(err))
		case archived != nil:
			errs = append(errs, steward.Invalid(field, "Workspace %s is archived", id))
		case !slices.Contains(out, id):
			out = append(out, id)
		}
	}
	return out, errs
}

func invitationEmail(org steward.Organization, inv steward.Invitation, acceptURL, token string) outbox.Message {
	link := acceptURL + "?token=" + url.QueryEscape(token)
	return outbox.Message{
		Kind:     "invitation",
		To:       inv.Email,
		Language: strings.ReplaceAll(inv.EmailLanguage, "_", "-"),
		Subject:  fmt.Sprintf("You are invited to join %s", org.Name),
		Body: fmt.Sprintf(`You have been invited to join the Organization %q.

Accept the invitation by opening this link:

%s

The link works once and expires on %s. If you did not expect this
invitation, you can ignore this email.
`, org.Name, link, inv.ExpiresAt.UTC().Format("2 January 2006 at 15:04 UTC")),
	}
}

// ListInvitations returns the Organization's pending invitations, oldest
// first; expired ones only when includeExpired.
func ListInvitations(ctx context.Context, tx *store.Tx, orgID string, includeExpired bool) ([]steward.Invitation, error) {
	q := `SELECT ` + invitationColumns + ` FROM invitations WHERE organization_id = ? AND accepted_at IS NULL AND revoked_at IS NULL`
	args := []any{orgID}
	if !includeExpired {
		q += ` AND expires_at > ?`
		args = append(args, store.Micros(tx.Now))
	}
	return store.All(ctx, tx, q+` ORDER BY created_at, email_normalized, id`, args, scanInvitation)
}

// RevokeInvitation revokes a pending invitation of the Organization, so its
// link stops working, and audits it. An unknown, accepted or revoked
// invitation is KindNotFound.
func RevokeInvitation(ctx context.Context, tx *store.Tx, actor steward.Actor, org steward.Organization, id string) error {
	var email string
	if _, err := uuid.Parse(id); err == nil {
		err = tx.QueryRow(ctx, `UPDATE invitations SET revoked_at = ? WHERE organization_id = ? AND id = ?
			AND accepted_at IS NULL AND revoked_at IS NULL RETURNING email`, store.Micros(tx.Now), org.ID, id).Scan(&email)
		if err != nil && !steward.IsKind(store.Translate(err), steward.KindNotFound) {
			return err
		}
	}
	if email == "" {
		return steward.Errorf(steward.KindNotFound, "no pending invitation %s in this Organization", id)
	}
	err := audit.Record(ctx, tx, audit.Entry{
		EnterpriseAccountID: org.EnterpriseAccountID, OrganizationID: org.ID, Actor: actor,
		EventType: audit.EventInviteRevoked, TargetType: audit.TargetUser,
		TargetMetadata: map[string]string{"email": email, "invitation_id": id},
	})
	return err
}

// Accepted is the outcome of accepting an invitation.
type Accepted struct {
	User           steward.User
	OrganizationID string
	WorkspaceIDs   []string
}

// PendingInvitation returns the invitation of a token and its
// Organization, while it may be accepted. An unknown token is
// KindNotFound; a used, revoked or expired invitation is KindConflict with
// the code invitation_used, invitation_revoked or invitation_expired.
func PendingInvitation(ctx context.Context, tx *store.Tx, token string) (steward.Invitation, steward.Organization, error) {
	inv, err := scanInvitation(tx.QueryRow(ctx, `SELECT `+invitationColumns+` FROM invitations WHERE token_hash = ?`, steward.HashToken(token)))
	if err != nil {
		if steward.IsKind(store.Translate(err), steward.KindNotFound) {
			return inv, steward.Organization{}, steward.Errorf(steward.KindNotFound, "this invitation link is not valid: ask for a new invitation")
		}
		return inv, steward.Organization{}, err
	}
	switch {
	case inv.AcceptedAt != nil:
		return inv, steward.Organization{}, &steward.Error{Kind: steward.KindConflict, Code: "invitation_used", Message: "this invitation was already accepted: sign in instead"}
	case inv.RevokedAt != nil:
		return inv, steward.Organization{}, &steward.Error{Kind: steward.KindConflict, Code: "invitation_revoked", Message: "this invitation was revoked or replaced by a newer one"}
	case inv.Expired(tx.Now):
		return inv, steward.Organization{}, &steward.Error{Kind: steward.KindConflict, Code: "invitation_expired",
			Message: "this invitation expired on " + inv.ExpiresAt.Format(time.RFC3339) + ": ask for a new one"}
	}
	org, err := GetOrganization(ctx, tx, inv.OrganizationID)
	return inv, org, err
}

// AcceptInvitation makes the invited person a member with the invited roles,
// seats and Workspaces, and marks the invitation used, in one transaction.
// An unknown token is KindNotFound; a used, revoked or expired invitation is
// KindConflict with the code invitation_used, invitation_revoked or
// invitation_expired. Someone who became a member meanwhile keeps their
// roles and gains the invited Workspaces.
func AcceptInvitation(ctx context.Context, tx *store.Tx, token, firstName, lastName string) (Accepted, error) {
	var res Accepted
	for field, v := range map[string]string{"first_name": firstName, "last_name": lastName} {
		if e := checkPersonName([]string{"body", field}, v); e != nil {
			return res, e
		}
	}
	inv, org, err := PendingInvitation(ctx, tx, token)
	if err != nil {
		return res, err
	}
	_, normalized, err := NormalizeEmail(nil, inv.Email)
	if err != nil {
		return res, err
	}
	user, _, err := ensureUser(ctx, tx, inv.Email, normalized, firstName, lastName)
	if err != nil {
		return res, err
	}
	def, err := DefaultWorkspace(ctx, tx, org.ID)
	if err != nil {
		return res, err
	}
	member, err := isMember(ctx, tx, org.ID, user.ID)
	if err != nil {
		return res, err
	}
	if !member {
		if err := addMember(ctx, tx, org.ID, user.ID, inv.RoleIDs, inv.SubscriptionTypes, def.ID, defaultWorkspaceRoles); err != nil {
			return res, err
		}
	}
	joined := []string{def.ID}
	for _, ws := range inv.WorkspaceIDs {
		var archived *int64
		if err := tx.QueryRow(ctx, `SELECT archived_at FROM workspaces WHERE organization_id = ? AND id = ?`, org.ID, ws).Scan(&archived); err != nil {
			return res, err
		}
		if archived != nil || ws == def.ID {
			continue
		}
		if _, err := addToWorkspace(ctx, tx, org.ID, ws, []string{user.ID}, defaultWorkspaceRoles); err != nil {
			return res, err
		}
		joined = append(joined, ws)
	}
	if _, err := tx.Exec(ctx, `UPDATE invitations SET accepted_at = ?, accepted_user_id = ? WHERE id = ?`, store.Micros(tx.Now), user.ID, inv.ID); err != nil {
		return res, err
	}
	actor := steward.Actor{Type: steward.ActorHuman, UserID: user.ID, Metadata: map[string]string{"email": user.Email}}
	err = audit.Record(ctx, tx, audit.Entry{
		EnterpriseAccountID: org.EnterpriseAccountID, OrganizationID: org.ID, Actor: actor,
		EventType:      audit.EventInviteAccepted,
		EventMetadata:  map[string]string{"invitation_id": inv.ID, "workspace_uuids": strings.Join(joined, ","), "already_member": strconv.FormatBool(member)},
		TargetType:     audit.TargetUser,
		TargetMetadata: map[string]string{"id": user.ID, "email": user.Email},
	})
	return Accepted{User: user, OrganizationID: org.ID, WorkspaceIDs: joined}, err
}
