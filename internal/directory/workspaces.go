package directory

import (
	"context"
	"database/sql"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/stewardhq/steward/internal/audit"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

const (
	maxWorkspaceName = 255
	maxDescription   = 255
	maxIconRunes     = 2
)

const workspaceColumns = `id, organization_id, name, description, icon, is_default, member_count, spend_limit, created_at, archived_at`

func scanWorkspace(row interface{ Scan(...any) error }) (steward.Workspace, error) {
	var ws steward.Workspace
	var created int64
	var archived *int64
	if err := row.Scan(&ws.ID, &ws.OrganizationID, &ws.Name, &ws.Description, &ws.Icon, &ws.IsDefault, &ws.MemberCount, &ws.SpendLimit, &created, &archived); err != nil {
		return ws, err
	}
	ws.CreatedAt = store.Time(created)
	if archived != nil {
		t := store.Time(*archived)
		ws.ArchivedAt = &t
	}
	return ws, nil
}

// GetWorkspace returns a Workspace of the Organization, archived or not, or
// a KindNotFound error.
func GetWorkspace(ctx context.Context, tx *store.Tx, orgID, id string) (steward.Workspace, error) {
	return getWorkspace(ctx, tx, orgID, id, "")
}

// getWorkspace is GetWorkspace with a suffix to its query (a lock).
func getWorkspace(ctx context.Context, tx *store.Tx, orgID, id, suffix string) (steward.Workspace, error) {
	if _, err := uuid.Parse(id); err != nil {
		return steward.Workspace{}, noWorkspace(id)
	}
	ws, err := scanWorkspace(tx.QueryRow(ctx, `SELECT `+workspaceColumns+` FROM workspaces WHERE organization_id = ? AND id = ?`+suffix, orgID, id))
	if steward.IsKind(store.Translate(err), steward.KindNotFound) {
		return ws, noWorkspace(id)
	}
	return ws, err
}

func noWorkspace(id string) error {
	return steward.Errorf(steward.KindNotFound, "no Workspace %s in this Organization", id)
}

// ActiveWorkspace returns a Workspace that may still be changed: an
// archived one is KindConflict.
func ActiveWorkspace(ctx context.Context, tx *store.Tx, orgID, id string) (steward.Workspace, error) {
	return activeWorkspace(ctx, tx, orgID, id, "")
}

// activeWorkspace is ActiveWorkspace with a suffix to its query (a lock).
func activeWorkspace(ctx context.Context, tx *store.Tx, orgID, id, suffix string) (steward.Workspace, error) {
	ws, err := getWorkspace(ctx, tx, orgID, id, suffix)
	if err == nil && ws.ArchivedAt != nil {
		return ws, &steward.Error{Kind: steward.KindConflict, Code: "workspace_archived",
			Message: "Workspace " + ws.Name + " is archived and can no longer change"}
	}
	return ws, err
}

// likePattern returns a LIKE pattern matching s anywhere, case-insensitively
// when compared with lower(column), with LIKE's wildcards escaped.
func likePattern(s string) string {
	s = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(strings.ToLower(s))
	return "%" + s + "%"
}

// ListWorkspaces returns a page (from 1) of the Organization's active or
// archived Workspaces, oldest first, optionally only those whose name
// contains search, and how many there are in all.
func ListWorkspaces(ctx context.Context, tx *store.Tx, orgID string, archived bool, search string, page, pageSize int) ([]steward.Workspace, int, error) {
	where := "organization_id = ? AND archived_at IS NULL"
	if archived {
		where = "organization_id = ? AND archived_at IS NOT NULL"
	}
	args := []any{orgID}
	if search != "" {
		where += ` AND lower(name) LIKE ? ESCAPE '\'`
		args = append(args, likePattern(search))
	}
	var total int
	if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM workspaces WHERE `+where, args...).Scan(&total); err != nil {
		return nil, 0, err
	}
	out, err := store.All(ctx, tx, `SELECT `+workspaceColumns+` FROM workspaces WHERE `+where+`
		ORDER BY created_at, id LIMIT ? OFFSET ?`, append(args, pageSize, (page-1)*pageSize), scanWorkspace)
	return out, total, err
}

// WorkspaceInput creates or changes a Workspace; nil fields stay as they
// are on update.
type WorkspaceInput struct {
	Name, Description, Icon *string
}

func (in WorkspaceInput) validate() []*steward.Error {
	var errs []*steward.Error
	if in.Name != nil {
		name := strings.TrimSpace(*in.Name)
		switch {
		case name == "":
			errs = append(errs, steward.Invalid([]string{"body", "name"}, "name must not be empty"))
		case utf8.RuneCountInString(name) > maxWorkspaceName:
			errs = append(errs, steward.Invalid([]string{"body", "name"}, "name must be at most %d characters", maxWorkspaceName))
		}
	}
	if in.Description != nil && utf8.RuneCountInString(*in.Description) > maxDescription {
		errs = append(errs, steward.Invalid([]string{"body", "description"}, "description must be at most %d characters", maxDescription))
	}
	if in.Icon != nil && utf8.RuneCountInString(*in.Icon) > maxIconRunes {
		errs = append(errs, steward.Invalid([]string{"body", "icon"}, "icon must be at most %d characters", maxIconRunes))
	}
	return errs
}

func nameTaken(err error, name string) error {
	if steward.IsKind(store.Translate(err), steward.KindConflict) {
		return &steward.Error{Kind: steward.KindConflict, Code: "name_taken", Message: "a Workspace called " + name + " already exists"}
	}
	return err
}

// NewWorkspace is a Workspace to create.
type NewWorkspace struct {
	WorkspaceInput
	AdminUserID      string
	AddAllOrgMembers bool
}

// CreateWorkspace creates a Workspace whose admin is AdminUserID (a member
// of the Organization), with every member as workspace_contributor when
// AddAllOrgMembers. Past MaxActiveWorkspaces, or with a name already taken,
// it returns KindConflict.
func CreateWorkspace(ctx context.Context, tx *store.Tx, actor steward.Actor, org steward.Organization, in NewWorkspace) (steward.Workspace, error) {
	errs := in.validate()
	if in.Name == nil {
		errs = append(errs, steward.Invalid([]string{"body", "name"}, "name is required"))
	}
	if _, err := uuid.Parse(in.AdminUserID); err != nil {
		errs = append(errs, steward.Invalid([]string{"body", "admin_user_id"}, "admin_user_id must be the UUID of a member"))
	}
	if err := steward.Invalids(errs); err != nil {
		return steward.Workspace{}, err
	}
	if member, err := isMember(ctx, tx, org.ID, in.AdminUserID); err != nil {
		return steward.Workspace{}, err
	} else if !member {
		return steward.Workspace{}, notMember(in.AdminUserID)
	}
	var active int
	if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM workspaces WHERE organization_id = ? AND archived_at IS NULL`, org.ID).Scan(&active); err != nil {
		return steward.Workspace{}, err
	}
	if active >= steward.MaxActiveWorkspaces {
		return steward.Workspace{}, &steward.Error{Kind: steward.KindConflict, Code: "workspace_limit",
			Message: "the Organization already has " + strconv.Itoa(active) + " active Workspaces, the most it may have: archive one first"}
	}
	ws := steward.Workspace{ID: uuid.NewString(), OrganizationID: org.ID, Name: strings.TrimSpace(*in.Name), CreatedAt: tx.Now}
	if in.Description != nil {
		ws.Description = *in.Description
	}
	if in.Icon != nil {
		ws.Icon = *in.Icon
	}
	if _, err := tx.Exec(ctx, `INSERT INTO workspaces (id, organization_id, name, description, icon, is_default, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, ws.ID, org.ID, ws.Name, ws.Description, ws.Icon, false, store.Micros(tx.Now)); err != nil {
		return steward.Workspace{}, nameTaken(err, ws.Name)
	}
	if err := audit.Record(ctx, tx, workspaceEntry(actor, org, audit.EventWorkspaceCreate, ws, map[string]string{
		"description": ws.Description, "add_all_org_members": strconv.FormatBool(in.AddAllOrgMembers),
	})); err != nil {
		return steward.Workspace{}, err
	}
	roles := map[string][]string{in.AdminUserID: {steward.RoleIDWorkspaceAdmin}}
	if in.AddAllOrgMembers {
		all, err := tx.Strings(ctx, `SELECT user_id FROM organization_members WHERE organization_id = ? ORDER BY created_at, user_id`, org.ID)
		if err != nil {
			return steward.Workspace{}, err
		}
		for _, u := range all {
			if u != in.AdminUserID {
				roles[u] = defaultWorkspaceRoles
			}
		}
	}
	if _, _, err := setWorkspaceMembers(ctx, tx, actor, org, ws, roles, true); err != nil {
		return steward.Workspace{}, err
	}
	return GetWorkspace(ctx, tx, org.ID, ws.ID)
}

func workspaceEntry(actor steward.Actor, org steward.Organization, event string, ws steward.Workspace, meta map[string]string) audit.Entry {
	return audit.Entry{
		EnterpriseAccountID: org.EnterpriseAccountID, OrganizationID: org.ID, WorkspaceID: ws.ID,
		Actor: actor, EventType: event, EventMetadata: meta,
		TargetType: audit.TargetWorkspace, TargetMetadata: map[string]string{"id": ws.ID, "name": ws.Name},
	}
}

// UpdateWorkspace changes a Workspace's name, description or icon and
// audits the change with before and after values.
func UpdateWorkspace(ctx context.Context, tx *store.Tx, actor steward.Actor, org steward.Organization, id string, in WorkspaceInput) (steward.Workspace, error) {
	if err := steward.Invalids(in.validate()); err != nil {
		return steward.Workspace{}, err
	}
	before, err := activeWorkspace(ctx, tx, org.ID, id, tx.ForUpdate())
	if err != nil {
		return before, err
	}
	after := before
	meta := map[string]string{}
	if in.Name != nil && strings.TrimSpace(*in.Name) != before.Name {
		after.Name = strings.TrimSpace(*in.Name)
		meta["name_before"], meta["name_after"] = before.Name, after.Name
	}
	if in.Description != nil && *in.Description != before.Description {
		after.Description = *in.Description
		meta["description_before"], meta["description_after"] = before.Description, after.Description
	}
	if in.Icon != nil && *in.Icon != before.Icon {
		after.Icon = *in.Icon
		meta["icon_before"], meta["icon_after"] = before.Icon, after.Icon
	}
	if len(meta) == 0 {
		return before, nil
	}
	if _, err := tx.Exec(ctx, `UPDATE workspaces SET name = ?, description = ?, icon = ? WHERE id = ?`,
		after.Name, after.Description, after.Icon, id); err != nil {
		return before, nameTaken(err, after.Name)
	}
	if after.Name != before.Name {
		// The access graph holds Workspaces' names, not their
		// descriptions or icons.
		accessChanged(tx, org.ID)
	}
	err = audit.Record(ctx, tx, workspaceEntry(actor, org, audit.EventWorkspaceUpdate, after, meta))
	return after, err
}

// ArchiveWorkspace archives a Workspace for good: it no longer appears
// among the active ones, its members and groups lose access, and its keys
// stop working. The default Workspace cannot be archived (KindConflict).
func ArchiveWorkspace(ctx context.Context, tx *store.Tx, actor steward.Actor, org steward.Organization, id string) error {
	ws, err := ActiveWorkspace(ctx, tx, org.ID, id)
	if err != nil {
		return err
	}
	if ws.IsDefault {
		return &steward.Error{Kind: steward.KindConflict, Code: "default_workspace", Message: "the default Workspace cannot be archived"}
	}
	if _, err := tx.Exec(ctx, `UPDATE workspaces SET archived_at = ? WHERE id = ?`, store.Micros(tx.Now), id); err != nil {
		return err
	}
	accessChanged(tx, org.ID)
	return audit.Record(ctx, tx, workspaceEntry(actor, org, audit.EventWorkspaceDelete, ws, map[string]string{"archived": "true"}))
}

// addToWorkspace makes users members of a Workspace with roleIDs (which
// are added to any roles they hold there), and returns how many were not
// members before.
func addToWorkspace(ctx context.Context, tx *store.Tx, orgID, workspaceID string, userIDs, roleIDs []string) (int, error) {
	n, err := joinWorkspace(ctx, tx, orgID, workspaceID, userIDs, roleIDs)
	if err != nil || n == 0 {
		return n, err
	}
	_, err = tx.Exec(ctx, `UPDATE workspaces SET member_count = member_count + ? WHERE id = ?`, n, workspaceID)
	return n, err
}

// joinWorkspace is addToWorkspace without counting the new members in the
// Workspace's member_count, which its caller does.
func joinWorkspace(ctx context.Context, tx *store.Tx, orgID, workspaceID string, userIDs, roleIDs []string) (int, error) {
	var members []string
	for start := 0; start < len(userIDs); start += MaxBatch {
		part := slices.Compact(slices.Sorted(slices.Values(userIDs[start:min(start+MaxBatch, len(userIDs))])))
		args := make([]any, 0, 3*len(part))
		for _, u := range part {
			args = append(args, workspaceID, u, store.Micros(tx.Now))
		}
		added, err := tx.Strings(ctx, `INSERT INTO workspace_members (workspace_id, user_id, created_at) VALUES `+
			strings.TrimSuffix(strings.Repeat("(?, ?, ?), ", len(part)), ", ")+
			` ON CONFLICT (workspace_id, user_id) DO NOTHING RETURNING user_id`, args...)
		if err != nil {
			return 0, err
		}
		members = append(members, added...)
	}
	var roles [][]any
	for _, u := range userIDs {
		for _, r := range roleIDs {
			roles = append(roles, []any{workspaceID, u, r})
		}
	}
	if err := tx.InsertMany(ctx, "workspace_member_roles", []string{"workspace_id", "user_id", "role_id"}, roles,
		"ON CONFLICT (workspace_id, user_id, role_id) DO NOTHING"); err != nil {
		return 0, err
	}
	accessChanged(tx, orgID)
	return len(members), nil
}

// workspaceRoles returns the direct roles of users in a Workspace.
func workspaceRoles(ctx context.Context, tx *store.Tx, workspaceID string, userIDs []string) (map[string][]string, error) {
	out := map[string][]string{}
	for start := 0; start < len(userIDs); start += MaxBatch {
		part := userIDs[start:min(start+MaxBatch, len(userIDs))]
		err := tx.Each(ctx, `SELECT user_id, role_id FROM workspace_member_roles WHERE workspace_id = ? AND user_id IN (`+store.Placeholders(len(part))+`)
			ORDER BY user_id, role_id`, append([]any{workspaceID}, anys(part)...), func(rows *sql.Rows) error {
			var u, r string
			if err := rows.Scan(&u, &r); err != nil {
				return err
			}
			out[u] = append(out[u], r)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// setWorkspaceMembers gives each user exactly the roles given, adding those
// who are not members; with overwrite false, existing members are left as
// they are. It audits each addition and each change of roles, and returns
// how many were added and how many changed.
func setWorkspaceMembers(ctx context.Context, tx *store.Tx, actor steward.Actor, org steward.Organization, ws steward.Workspace, roles map[string][]string, overwrite bool) (added, updated int, err error) {
	userIDs := make([]string, 0, len(roles))
	for u := range roles {
		userIDs = append(userIDs, u)
	}
	slices.Sort(userIDs)
	current, err := workspaceRoles(ctx, tx, ws.ID, userIDs)
	if err != nil {
		return 0, 0, err
	}
	cat, err := LoadCatalog(ctx, tx, org.ID)
	if err != nil {
		return 0, 0, err
	}
	var entries []audit.Entry
	var rows [][]any
	var fresh, changed []string
	for _, u := range userIDs {
		want := slices.Clone(roles[u])
		slices.Sort(want)
		have, member := current[u]
		switch {
		case !member:
			fresh = append(fresh, u)
			entries = append(entries, memberEntry(actor, org, ws, audit.EventWorkspaceMemberAdd, u, map[string]string{"roles": roleNames(cat, want)}))
		case overwrite && !slices.Equal(have, want):
			changed = append(changed, u)
			entries = append(entries, memberEntry(actor, org, ws, audit.EventWorkspaceMemberRoleUpdate, u, map[string]string{
				"roles_before": roleNames(cat, have), "roles_after": roleNames(cat, want)}))
		default:
			continue
		}
		for _, r := range want {
			rows = append(rows, []any{ws.ID, u, r})
		}
	}
	if len(changed) > 0 {
		if _, err := tx.Exec(ctx, `DELETE FROM workspace_member_roles WHERE workspace_id = ? AND user_id IN (`+store.Placeholders(len(changed))+`)`,
			append([]any{ws.ID}, anys(changed)...)...); err != nil {
			return 0, 0, err
		}
	}
	if len(fresh) > 0 {
		if _, err := addToWorkspace(ctx, tx, org.ID, ws.ID, fresh, nil); err != nil {
			return 0, 0, err
		}
	}
	if err := tx.InsertMany(ctx, "workspace_member_roles", []string{"workspace_id", "user_id", "role_id"}, rows, ""); err != nil {
		return 0, 0, err
	}
	accessChanged(tx, org.ID)
	return len(fresh), len(changed), audit.RecordBatch(ctx, tx, entries)
}

func memberEntry(actor steward.Actor, org steward.Organization, ws steward.Workspace, event, userID string, meta map[string]string) audit.Entry {
	meta["workspace_name"] = ws.Name
	return audit.Entry{
		EnterpriseAccountID: org.EnterpriseAccountID, OrganizationID: org.ID, WorkspaceID: ws.ID,
		Actor: actor, EventType: event, EventMetadata: meta,
		TargetType: audit.TargetUser, TargetMetadata: map[string]string{"id": userID},
	}
}

// WorkspaceMemberInput is one member in add-users and PATCH users.
type WorkspaceMemberInput struct {
	UserID string
	Roles  RoleInput
}

// AddWorkspaceMembers adds members of the Organization to an active
// Workspace with their roles (workspace_contributor when none are given).
// With overwrite, existing members get exactly the roles given (when some
// are given); without, they are left as they are. Every user must be a
// member of the Organization; a problem with any entry fails the request
// with KindInvalid naming it.
func AddWorkspaceMembers(ctx context.Context, tx *store.Tx, actor steward.Actor, org steward.Organization, workspaceID string, in []WorkspaceMemberInput, overwrite bool) (added, updated int, err error) {
	ws, err := ActiveWorkspace(ctx, tx, org.ID, workspaceID)
	if err != nil {
		return 0, 0, err
	}
	if len(in) > MaxBatch {
		return 0, 0, steward.Invalid([]string{"body", "members"}, "at most %d members at once, not %d", MaxBatch, len(in))
	}
	cat, err := LoadCatalog(ctx, tx, org.ID)
	if err != nil {
		return 0, 0, err
	}
	ids := make([]string, 0, len(in))
	for _, m := range in {
		ids = append(ids, m.UserID)
	}
	members, err := memberSet(ctx, tx, org.ID, validUUIDs(ids))
	if err != nil {
		return 0, 0, err
	}
	current, err := workspaceRoles(ctx, tx, ws.ID, validUUIDs(ids))
	if err != nil {
		return 0, 0, err
	}
	roles := map[string][]string{}
	var errs []*steward.Error
	for i, m := range in {
		at := []string{"body", "members", strconv.Itoa(i)}
		if !members[m.UserID] {
			errs = append(errs, steward.Invalid(append(at, "user_uuid"), "%q is not a member of this Organization", m.UserID))
			continue
		}
		_, isMember := current[m.UserID]
		switch {
		case m.Roles.Given():
			roleIDs, rerr := cat.Resolve(steward.ScopeWorkspace, m.Roles, at)
			if rerr != nil {
				errs = append(errs, asInvalid(rerr)...)
				continue
			}
			roles[m.UserID] = roleIDs
		case isMember:
			roles[m.UserID] = current[m.UserID]
		default:
			roles[m.UserID] = defaultWorkspaceRoles
		}
	}
	if err := steward.Invalids(errs); err != nil {
		return 0, 0, err
	}
	return setWorkspaceMembers(ctx, tx, actor, org, ws, roles, overwrite)
}

func validUUIDs(ids []string) []string {
	var out []string
	for _, id := range ids {
		if _, err := uuid.Parse(id); err == nil {
			out = append(out, id)
		}
	}
	return out
}

// RemoveWorkspaceMembers takes users out of an active Workspace, with all
// their direct roles there. Users who are not direct members, and anyone
// from the default Workspace (which every member belongs to), are returned
// as not deleted.
func RemoveWorkspaceMembers(ctx context.Context, tx *store.Tx, actor steward.Actor, org steward.Organization, workspaceID string, userIDs []string) (int, []string, error) {
	ws, err := ActiveWorkspace(ctx, tx, org.ID, workspaceID)
	if err != nil {
		return 0, nil, err
	}
	if len(userIDs) > MaxBatch {
		return 0, nil, steward.Invalid([]string{"body", "members"}, "at most %d members at once, not %d", MaxBatch, len(userIDs))
	}
	current, err := workspaceRoles(ctx, tx, ws.ID, validUUIDs(userIDs))
	if err != nil {
		return 0, nil, err
	}
	notDeleted := []string{}
	var gone []string
	var entries []audit.Entry
	for _, u := range userIDs {
		_, member := current[u]
		if ws.IsDefault || !member || slices.Contains(gone, u) {
			if !slices.Contains(notDeleted, u) && !slices.Contains(gone, u) {
				notDeleted = append(notDeleted, u)
			}
			continue
		}
		gone = append(gone, u)
		entries = append(entries, memberEntry(actor, org, ws, audit.EventWorkspaceMemberRemove, u, map[string]string{}))
	}
	if len(gone) > 0 {
		args := append([]any{ws.ID}, anys(gone)...)
		for _, q := range []string{
			`DELETE FROM workspace_member_roles WHERE workspace_id = ? AND user_id IN (` + store.Placeholders(len(gone)) + `)`,
			`DELETE FROM workspace_members WHERE workspace_id = ? AND user_id IN (` + store.Placeholders(len(gone)) + `)`,
		} {
			if _, err := tx.Exec(ctx, q, args...); err != nil {
				return 0, nil, err
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE workspaces SET member_count = member_count - ? WHERE id = ?`, len(gone), ws.ID); err != nil {
			return 0, nil, err
		}
		accessChanged(tx, org.ID)
	}
	return len(gone), notDeleted, audit.RecordBatch(ctx, tx, entries)
}
