package directory

import (
	"context"
	"database/sql"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/stewardhq/steward/internal/audit"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

const maxGroupName = 255

const groupColumns = `id, organization_id, name, description, target_type, organization_role_id, externally_managed, created_at`

func scanGroup(row interface{ Scan(...any) error }) (steward.Group, error) {
	var g steward.Group
	var target, role *string
	var created int64
	if err := row.Scan(&g.ID, &g.OrganizationID, &g.Name, &g.Description, &target, &role, &g.ExternallyManaged, &created); err != nil {
		return g, err
	}
	if target != nil {
		g.TargetType = *target
	}
	if role != nil {
		g.OrganizationRoleID = *role
	}
	g.CreatedAt = store.Time(created)
	return g, nil
}

// GetGroup returns a group of the Organization with its parents, or a
// KindNotFound error.
func GetGroup(ctx context.Context, tx *store.Tx, orgID, id string) (steward.Group, error) {
	return getGroup(ctx, tx, orgID, id, "")
}

// getGroup is GetGroup with a suffix to the group's query (a lock).
func getGroup(ctx context.Context, tx *store.Tx, orgID, id, suffix string) (steward.Group, error) {
	if _, err := uuid.Parse(id); err != nil {
		return steward.Group{}, noGroup(id)
	}
	g, err := scanGroup(tx.QueryRow(ctx, `SELECT `+groupColumns+` FROM user_groups WHERE organization_id = ? AND id = ?`+suffix, orgID, id))
	if err != nil {
		if steward.IsKind(store.Translate(err), steward.KindNotFound) {
			return g, noGroup(id)
		}
		return g, err
	}
	g.ParentIDs, err = tx.Strings(ctx, `SELECT parent_id FROM user_group_nesting WHERE child_id = ? ORDER BY parent_id`, id)
	return g, err
}

func noGroup(id string) error {
	return steward.Errorf(steward.KindNotFound, "no user group %s in this Organization", id)
}

// GroupNames returns the names of the Organization's groups with these ids.
func GroupNames(ctx context.Context, tx *store.Tx, orgID string, ids []string) (map[string]string, error) {
	names := map[string]string{}
	if len(ids) == 0 {
		return names, nil
	}
	err := tx.Each(ctx, `SELECT id, name FROM user_groups WHERE organization_id = ? AND id IN (`+store.Placeholders(len(ids))+`)`,
		append([]any{orgID}, anys(ids)...), func(r *sql.Rows) error {
			var id, name string
			err := r.Scan(&id, &name)
			names[id] = name
			return err
		})
	return names, err
}

// ListGroups returns a page (from 1) of the Organization's groups, oldest
// first, optionally those whose name contains search, and how many match.
func ListGroups(ctx context.Context, tx *store.Tx, orgID, search string, page, pageSize int) ([]steward.Group, int, error) {
	where, args := "organization_id = ?", []any{orgID}
	if search != "" {
		where += ` AND lower(name) LIKE ? ESCAPE '\'`
		args = append(args, likePattern(search))
	}
	var total int
	if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM user_groups WHERE `+where, args...).Scan(&total); err != nil {
		return nil, 0, err
	}
	groups, err := store.All(ctx, tx, `SELECT `+groupColumns+` FROM user_groups WHERE `+where+` ORDER BY created_at, id LIMIT ? OFFSET ?`,
		append(args, pageSize, (page-1)*pageSize), scanGroup)
	if err != nil {
		return nil, 0, err
	}
	for i := range groups {
		if groups[i].ParentIDs, err = tx.Strings(ctx, `SELECT parent_id FROM user_group_nesting WHERE child_id = ? ORDER BY parent_id`, groups[i].ID); err != nil {
			return nil, 0, err
		}
	}
	return groups, total, nil
}

// GroupInput creates or changes a group; nil fields stay as they are on
// update.
type GroupInput struct {
	Name           *string
	Description    *string
	TargetType     *string
	ParentGroupIDs *[]string
}

func (in GroupInput) validate(creating bool) []*steward.Error {
	var errs []*steward.Error
	if creating && in.Name == nil {
		errs = append(errs, steward.Invalid([]string{"body", "name"}, "name is required"))
	}
	if in.Name != nil {
		name := strings.TrimSpace(*in.Name)
		switch {
		case name == "":
			errs = append(errs, steward.Invalid([]string{"body", "name"}, "name must not be empty"))
		case utf8.RuneCountInString(name) > maxGroupName:
			errs = append(errs, steward.Invalid([]string{"body", "name"}, "name must be at most %d characters", maxGroupName))
		}
	}
	if in.Description != nil && utf8.RuneCountInString(*in.Description) > maxDescription {
		errs = append(errs, steward.Invalid([]string{"body", "description"}, "description must be at most %d characters", maxDescription))
	}
	if in.TargetType != nil && *in.TargetType != "W" && *in.TargetType != "O" {
		errs = append(errs, steward.Invalid([]string{"body", "target_type"}, "target_type must be W (Workspace) or O (Organization)"))
	}
	return errs
}

func groupNameTaken(err error, name string) error {
	if steward.IsKind(store.Translate(err), steward.KindConflict) {
		return &steward.Error{Kind: steward.KindConflict, Code: "name_taken", Message: "a user group called " + name + " already exists"}
	}
	return err
}

func groupEntry(actor steward.Actor, org steward.Organization, event string, g steward.Group, meta map[string]string) audit.Entry {
	return audit.Entry{
		EnterpriseAccountID: org.EnterpriseAccountID, OrganizationID: org.ID,
		Actor: actor, EventType: event, EventMetadata: meta,
		TargetType: audit.TargetUserGroup, TargetMetadata: map[string]string{"id": g.ID, "name": g.Name},
	}
}

// CreateGroup creates a group, nested in the given parents.
func CreateGroup(ctx context.Context, tx *store.Tx, actor steward.Actor, org steward.Organization, in GroupInput) (steward.Group, error) {
	if err := steward.Invalids(in.validate(true)); err != nil {
		return steward.Group{}, err
	}
	g := steward.Group{ID: uuid.NewString(), OrganizationID: org.ID, Name: strings.TrimSpace(*in.Name), Description: in.Description, CreatedAt: tx.Now}
	if in.TargetType != nil {
		g.TargetType = *in.TargetType
	}
	if _, err := tx.Exec(ctx, `INSERT INTO user_groups (id, organization_id, name, description, target_type, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, g.ID, org.ID, g.Name, g.Description, nullable(g.TargetType), store.Micros(tx.Now), store.Micros(tx.Now)); err != nil {
		return g, groupNameTaken(err, g.Name)
	}
	if err := audit.Record(ctx, tx, groupEntry(actor, org, audit.EventGroupCreate, g, map[string]string{"target_type": g.TargetType})); err != nil {
		return g, err
	}
	if in.ParentGroupIDs != nil {
		if err := setLinks(ctx, tx, actor, org, g, *in.ParentGroupIDs, true, "parent_group_ids"); err != nil {
			return g, err
		}
	}
	return GetGroup(ctx, tx, org.ID, g.ID)
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// UpdateGroup changes a group's name, description, target type or parents.
// An externally managed group's name belongs to its identity provider
// (KindConflict).
func UpdateGroup(ctx context.Context, tx *store.Tx, actor steward.Actor, org steward.Organization, id string, in GroupInput) (steward.Group, error) {
	if err := steward.Invalids(in.validate(false)); err != nil {
		return steward.Group{}, err
	}
	g, err := getGroup(ctx, tx, org.ID, id, tx.ForUpdate())
	if err != nil {
		return g, err
	}
	meta := map[string]string{}
	after := g
	if in.Name != nil && strings.TrimSpace(*in.Name) != g.Name {
		if g.ExternallyManaged {
			return g, externallyManaged(g, "its name")
		}
		after.Name = strings.TrimSpace(*in.Name)
		meta["name_before"], meta["name_after"] = g.Name, after.Name
	}
	if in.Description != nil {
		after.Description = in.Description
		meta["description_after"] = *in.Description
	}
	if in.TargetType != nil && *in.TargetType != g.TargetType {
		after.TargetType = *in.TargetType
		meta["target_type_before"], meta["target_type_after"] = g.TargetType, after.TargetType
	}
	if len(meta) > 0 {
		if _, err := tx.Exec(ctx, `UPDATE user_groups SET name = ?, description = ?, target_type = ?, updated_at = ? WHERE id = ?`,
			after.Name, after.Description, nullable(after.TargetType), store.Micros(tx.Now), id); err != nil {
			return g, groupNameTaken(err, after.Name)
		}
		if err := audit.Record(ctx, tx, groupEntry(actor, org, audit.EventGroupUpdate, after, meta)); err != nil {
			return g, err
		}
	}
	if in.ParentGroupIDs != nil {
		if err := setLinks(ctx, tx, actor, org, after, *in.ParentGroupIDs, true, "parent_group_ids"); err != nil {
			return g, err
		}
	}
	return GetGroup(ctx, tx, org.ID, id)
}

func externallyManaged(g steward.Group, what string) error {
	return &steward.Error{Kind: steward.KindConflict, Code: "externally_managed",
		Message: "user group " + g.Name + " is managed by an identity provider (SCIM): change " + what + " there"}
}

// DeleteGroup deletes a group with its memberships, Workspace assignments
// and nesting links, in one transaction. An externally managed group is
// deleted by its identity provider (KindConflict).
func DeleteGroup(ctx context.Context, tx *store.Tx, actor steward.Actor, org steward.Organization, id string) error {
	g, err := GetGroup(ctx, tx, org.ID, id)
	if err != nil {
		return err
	}
	if g.ExternallyManaged {
		return externallyManaged(g, "whether it exists")
	}
	return deleteGroup(ctx, tx, actor, org, g)
}

func deleteGroup(ctx context.Context, tx *store.Tx, actor steward.Actor, org steward.Organization, g steward.Group) error {
	if _, err := tx.Exec(ctx, `DELETE FROM user_groups WHERE id = ?`, g.ID); err != nil {
		return err
	}
	accessChanged(tx, org.ID)
	return audit.Record(ctx, tx, groupEntry(actor, org, audit.EventGroupDelete, g, nil))
}

// nesting returns the Organization's nesting links, child to parents.
func nesting(ctx context.Context, tx *store.Tx, orgID string) (map[string][]string, error) {
	parents := map[string][]string{}
	err := tx.Each(ctx, `SELECT n.child_id, n.parent_id FROM user_group_nesting n JOIN user_groups g ON g.id = n.child_id
		WHERE g.organization_id = ?`, []any{orgID}, func(rows *sql.Rows) error {
		var c, p string
		if err := rows.Scan(&c, &p); err != nil {
			return err
		}
		parents[c] = append(parents[c], p)
		return nil
	})
	return parents, err
}

// reaches reports whether from reaches to by following parent links.
func reaches(parents map[string][]string, from, to string) bool {
	seen := map[string]bool{}
	stack := []string{from}
	for len(stack) > 0 {
		g := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if g == to {
			return true
		}
		if seen[g] {
			continue
		}
		seen[g] = true
		stack = append(stack, parents[g]...)
	}
	return false
}

// setLinks replaces the nesting links of a group on one side (its parents,
// or its children) with others, each a group of the Organization; a link
// that would make a cycle, or nest a group in itself, is KindInvalid at
// field. A change is audited with field's value before and after.
func setLinks(ctx context.Context, tx *store.Tx, actor steward.Actor, org steward.Organization, g steward.Group, others []string, asParents bool, field string) error {
	parents, err := nesting(ctx, tx, org.ID)
	if err != nil {
		return err
	}
	var before []string
	if asParents {
		before = slices.Clone(parents[g.ID])
		parents[g.ID] = nil
	} else {
		for child, ps := range parents {
			if slices.Contains(ps, g.ID) {
				before = append(before, child)
				parents[child] = slices.DeleteFunc(slices.Clone(ps), func(p string) bool { return p == g.ID })
			}
		}
	}
	var errs []*steward.Error
	var links [][]any
	var kept []string
	for i, other := range others {
		at := []string{"body", field, strconv.Itoa(i)}
		if slices.Contains(kept, other) {
			continue
		}
		child, parent := g.ID, other
		if !asParents {
			child, parent = other, g.ID
		}
		switch _, err := GetGroup(ctx, tx, org.ID, other); {
		case steward.IsKind(err, steward.KindNotFound):
			errs = append(errs, steward.Invalid(at, "no user group %s in this Organization", other))
		case err != nil:
			return err
		case other == g.ID:
			errs = append(errs, steward.Invalid(at, "a group cannot be nested in itself"))
		case reaches(parents, parent, child):
			errs = append(errs, steward.Invalid(at, "nesting %s in %s would make a cycle", child, parent))
		default:
			parents[child] = append(parents[child], parent)
			links = append(links, []any{parent, child})
			kept = append(kept, other)
		}
	}
	if err := steward.Invalids(errs); err != nil {
		return err
	}
	slices.Sort(before)
	slices.Sort(kept)
	if slices.Equal(before, kept) {
		return nil
	}
	column := "child_id"
	if !asParents {
		column = "parent_id"
	}
	if _, err := tx.Exec(ctx, `DELETE FROM user_group_nesting WHERE `+column+` = ?`, g.ID); err != nil {
		return err
	}
	if err := tx.InsertMany(ctx, "user_group_nesting", []string{"parent_id", "child_id"}, links, ""); err != nil {
		return err
	}
	accessChanged(tx, org.ID)
	err = audit.Record(ctx, tx, groupEntry(actor, org, audit.EventGroupUpdate, g, map[string]string{
		field + "_before": strings.Join(before, ","), field + "_after": strings.Join(kept, ",")}))
	return err
}

// NestedGroups returns the groups nested directly in a group.
func NestedGroups(ctx context.Context, tx *store.Tx, orgID, id string) ([]steward.Group, error) {
	if _, err := GetGroup(ctx, tx, orgID, id); err != nil {
		return nil, err
	}
	return store.All(ctx, tx, `SELECT `+prefixed("g.", groupColumns)+` FROM user_group_nesting n JOIN user_groups g ON g.id = n.child_id
		WHERE n.parent_id = ? ORDER BY g.name, g.id`, []any{id}, scanGroup)
}

func prefixed(prefix, columns string) string {
	return prefix + strings.ReplaceAll(columns, ", ", ", "+prefix)
}

// SetNestedGroups makes exactly childIDs the groups nested in a group.
func SetNestedGroups(ctx context.Context, tx *store.Tx, actor steward.Actor, org steward.Organization, id string, childIDs []string) error {
	g, err := GetGroup(ctx, tx, org.ID, id)
	if err != nil {
		return err
	}
	return setLinks(ctx, tx, actor, org, g, childIDs, false, "child_group_uuids")
}

// ListGroupMembers returns a page of a group's direct members, by email,
// and how many there are.
func ListGroupMembers(ctx context.Context, tx *store.Tx, orgID, id string, page, pageSize int) ([]steward.User, int, error) {
	if _, err := GetGroup(ctx, tx, orgID, id); err != nil {
		return nil, 0, err
	}
	var total int
	if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM user_group_members WHERE group_id = ?`, id).Scan(&total); err != nil {
		return nil, 0, err
	}
	out, err := store.All(ctx, tx, `SELECT u.id, u.email, u.first_name, u.last_name FROM user_group_members m JOIN users u ON u.id = m.user_id
		WHERE m.group_id = ? ORDER BY u.email_normalized LIMIT ? OFFSET ?`, []any{id, pageSize, (page - 1) * pageSize},
		func(r store.Scanner) (steward.User, error) {
			var u steward.User
			err := r.Scan(&u.ID, &u.Email, &u.FirstName, &u.LastName)
			return u, err
		})
	return out, total, err
}

// ChangeGroupMembers adds (or, with remove, takes out) members of the
// Organization to a group. Every user must be a member of the Organization;
// adding a member twice or removing a non-member changes nothing. An
// externally managed group's members belong to its identity provider
// (KindConflict).
func ChangeGroupMembers(ctx context.Context, tx *store.Tx, actor steward.Actor, org steward.Organization, id string, userIDs []string, remove bool) error {
	g, err := GetGroup(ctx, tx, org.ID, id)
	if err != nil {
		return err
	}
	if g.ExternallyManaged {
		return externallyManaged(g, "its members")
	}
	return changeGroupMembers(ctx, tx, actor, org, g, userIDs, remove, false)
}

// changeGroupMembers is ChangeGroupMembers without the check that the group
// is not externally managed.
func changeGroupMembers(ctx context.Context, tx *store.Tx, actor steward.Actor, org steward.Organization, g steward.Group, userIDs []string, remove, skipNonMembers bool) error {
	id := g.ID
	if len(userIDs) > MaxBatch {
		return steward.Invalid([]string{"body", "user_uuids"}, "at most %d users at once, not %d", MaxBatch, len(userIDs))
	}
	if len(userIDs) == 0 {
		return nil
	}
	members, err := memberSet(ctx, tx, org.ID, validUUIDs(userIDs))
	if err != nil {
		return err
	}
	if skipNonMembers {
		userIDs = slices.DeleteFunc(slices.Clone(userIDs), func(u string) bool { return !members[u] })
		if len(userIDs) == 0 {
			return nil
		}
	}
	var errs []*steward.Error
	for i, u := range userIDs {
		if !members[u] {
			errs = append(errs, steward.Invalid([]string{"body", "user_uuids", strconv.Itoa(i)}, "%q is not a member of this Organization", u))
		}
	}
	if err := steward.Invalids(errs); err != nil {
		return err
	}
	// The statement that changes the rows names those it changed.
	unique := slices.Compact(slices.Sorted(slices.Values(userIDs)))
	event := audit.EventGroupMemberAdd
	var done []string
	if remove {
		event = audit.EventGroupMemberRemove
		done, err = tx.Strings(ctx, `DELETE FROM user_group_members WHERE group_id = ? AND user_id IN (`+store.Placeholders(len(unique))+`) RETURNING user_id`,
			append([]any{id}, anys(unique)...)...)
	} else {
		args := make([]any, 0, 3*len(unique))
		for _, u := range unique {
			args = append(args, id, u, store.Micros(tx.Now))
		}
		done, err = tx.Strings(ctx, `INSERT INTO user_group_members (group_id, user_id, created_at) VALUES `+
			strings.TrimSuffix(strings.Repeat("(?, ?, ?), ", len(unique)), ", ")+` ON CONFLICT (group_id, user_id) DO NOTHING RETURNING user_id`, args...)
	}
	if err != nil {
		return err
	}
	todo := map[string]bool{}
	for _, u := range done {
		todo[u] = true
	}
	var changed []string
	for _, u := range userIDs {
		if todo[u] {
			changed = append(changed, u)
			delete(todo, u)
		}
	}
	if len(changed) == 0 {
		return nil
	}
	accessChanged(tx, org.ID)
	entries := make([]audit.Entry, len(changed))
	for i, u := range changed {
		entries[i] = groupEntry(actor, org, event, g, map[string]string{"user_id": u})
		entries[i].TargetType, entries[i].TargetMetadata = audit.TargetUser, map[string]string{"id": u, "group_id": g.ID, "group_name": g.Name}
	}
	return audit.RecordBatch(ctx, tx, entries)
}

// SetGroupOrganizationRole gives a group an Organization role (by name,
// letter or UUID), which its members gain.
func SetGroupOrganizationRole(ctx context.Context, tx *store.Tx, actor steward.Actor, org steward.Organization, id, role string) error {
	g, err := GetGroup(ctx, tx, org.ID, id)
	if err != nil {
		return err
	}
	cat, err := LoadCatalog(ctx, tx, org.ID)
	if err != nil {
		return err
	}
	r, ok := cat.byRef(steward.ScopeOrganization, role)
	if !ok {
		r, ok = cat.byName(steward.ScopeOrganization, role)
	}
	if !ok {
		return steward.Invalid([]string{"body", "organization_role"}, "%q is not the name, letter or UUID of an organization role", role)
	}
	if r.ID == g.OrganizationRoleID {
		return nil
	}
	if _, err := tx.Exec(ctx, `UPDATE user_groups SET organization_role_id = ?, updated_at = ? WHERE id = ?`, r.ID, store.Micros(tx.Now), id); err != nil {
		return err
	}
	accessChanged(tx, org.ID)
	before := ""
	if old, ok := cat.Role(g.OrganizationRoleID); ok {
		before = old.Name
	}
	err = audit.Record(ctx, tx, groupEntry(actor, org, audit.EventGroupUpdate, g, map[string]string{
		"organization_role_before": before, "organization_role_after": r.Name}))
	return err
}

// Assignment is a group's roles in a Workspace.
type Assignment struct {
	Workspace steward.Workspace
	RoleIDs   []string
	CreatedAt time.Time
}

// ListAssignments returns a page of a group's Workspace assignments (active
// Workspaces), by Workspace name, and how many there are.
func ListAssignments(ctx context.Context, tx *store.Tx, orgID, id string, page, pageSize int) ([]Assignment, int, error) {
	if _, err := GetGroup(ctx, tx, orgID, id); err != nil {
		return nil, 0, err
	}
	var total int
	if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM group_workspace_assignments a JOIN workspaces w ON w.id = a.workspace_id
		WHERE a.group_id = ? AND w.archived_at IS NULL`, id).Scan(&total); err != nil {
		return nil, 0, err
	}
	out, err := store.All(ctx, tx, `SELECT `+prefixed("w.", workspaceColumns)+`, a.created_at FROM group_workspace_assignments a
		JOIN workspaces w ON w.id = a.workspace_id WHERE a.group_id = ? AND w.archived_at IS NULL
		ORDER BY w.name, w.id LIMIT ? OFFSET ?`, []any{id, pageSize, (page - 1) * pageSize}, func(r store.Scanner) (Assignment, error) {
		var ws steward.Workspace
		var created, assigned int64
		var archived *int64
		if err := r.Scan(&ws.ID, &ws.OrganizationID, &ws.Name, &ws.Description, &ws.Icon, &ws.IsDefault, &ws.MemberCount, &ws.SpendLimit, &created, &archived, &assigned); err != nil {
			return Assignment{}, err
		}
		ws.CreatedAt = store.Time(created)
		return Assignment{Workspace: ws, CreatedAt: store.Time(assigned)}, nil
	})
	if err != nil {
		return nil, 0, err
	}
	for i := range out {
		if out[i].RoleIDs, err = tx.Strings(ctx, `SELECT role_id FROM group_workspace_roles WHERE group_id = ? AND workspace_id = ? ORDER BY role_id`,
			id, out[i].Workspace.ID); err != nil {
			return nil, 0, err
		}
	}
	return out, total, nil
}

// AssignmentChange assigns a group to a Workspace, or changes or removes
// the assignment.
type AssignmentChange struct {
	GroupID, WorkspaceID string
	Roles                RoleInput
	// Upsert replaces an existing assignment's roles instead of failing.
	Upsert bool
}

// AssignGroup gives a group's members roles in an active Workspace
// (workspace_contributor when none are given). An existing assignment is a
// KindConflict unless Upsert.
func AssignGroup(ctx context.Context, tx *store.Tx, actor steward.Actor, org steward.Organization, in AssignmentChange) error {
	g, err := GetGroup(ctx, tx, org.ID, in.GroupID)
	if err != nil {
		return err
	}
	ws, err := ActiveWorkspace(ctx, tx, org.ID, in.WorkspaceID)
	if err != nil {
		return err
	}
	roleIDs, err := workspaceRoleInput(ctx, tx, org.ID, in.Roles)
	if err != nil {
		return err
	}
	var n int
	if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM group_workspace_assignments WHERE group_id = ? AND workspace_id = ?`, g.ID, ws.ID).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		if !in.Upsert {
			return &steward.Error{Kind: steward.KindConflict, Code: "already_assigned",
				Message: "user group " + g.Name + " is already assigned to Workspace " + ws.Name + ": change the assignment with PATCH"}
		}
		return replaceAssignment(ctx, tx, actor, org, g, ws, roleIDs)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO group_workspace_assignments (group_id, workspace_id, created_at) VALUES (?, ?, ?)`,
		g.ID, ws.ID, store.Micros(tx.Now)); err != nil {
		return err
	}
	if err := insertAssignmentRoles(ctx, tx, g.ID, ws.ID, roleIDs); err != nil {
		return err
	}
	accessChanged(tx, org.ID)
	return recordAssignment(ctx, tx, actor, org, audit.EventGroupWorkspaceProvision, g, ws, map[string]string{"roles": roleNamesOf(ctx, tx, org.ID, roleIDs)})
}

func workspaceRoleInput(ctx context.Context, tx *store.Tx, orgID string, in RoleInput) ([]string, error) {
	if !in.Given() {
		return defaultWorkspaceRoles, nil
	}
	cat, err := LoadCatalog(ctx, tx, orgID)
	if err != nil {
		return nil, err
	}
	return cat.Resolve(steward.ScopeWorkspace, in, []string{"body"})
}

func roleNamesOf(ctx context.Context, tx *store.Tx, orgID string, ids []string) string {
	cat, err := LoadCatalog(ctx, tx, orgID)
	if err != nil {
		return strings.Join(ids, ",")
	}
	return roleNames(cat, ids)
}

func insertAssignmentRoles(ctx context.Context, tx *store.Tx, groupID, workspaceID string, roleIDs []string) error {
	rows := make([][]any, len(roleIDs))
	for i, r := range roleIDs {
		rows[i] = []any{groupID, workspaceID, r}
	}
	return tx.InsertMany(ctx, "group_workspace_roles", []string{"group_id", "workspace_id", "role_id"}, rows, "")
}

func replaceAssignment(ctx context.Context, tx *store.Tx, actor steward.Actor, org steward.Organization, g steward.Group, ws steward.Workspace, roleIDs []string) error {
	before, err := tx.Strings(ctx, `SELECT role_id FROM group_workspace_roles WHERE group_id = ? AND workspace_id = ? ORDER BY role_id`, g.ID, ws.ID)
	if err != nil {
		return err
	}
	after := slices.Clone(roleIDs)
	slices.Sort(after)
	if slices.Equal(before, after) {
		return nil
	}
	if _, err := tx.Exec(ctx, `DELETE FROM group_workspace_roles WHERE group_id = ? AND workspace_id = ?`, g.ID, ws.ID); err != nil {
		return err
	}
	if err := insertAssignmentRoles(ctx, tx, g.ID, ws.ID, roleIDs); err != nil {
		return err
	}
	accessChanged(tx, org.ID)
	return recordAssignment(ctx, tx, actor, org, audit.EventGroupWorkspaceUpdate, g, ws, map[string]string{
		"roles_before": roleNamesOf(ctx, tx, org.ID, before), "roles_after": roleNamesOf(ctx, tx, org.ID, roleIDs)})
}

// UpdateAssignment replaces the roles of an existing assignment.
func UpdateAssignment(ctx context.Context, tx *store.Tx, actor steward.Actor, org steward.Organization, in AssignmentChange) error {
	g, ws, err := assignment(ctx, tx, org.ID, in.GroupID, in.WorkspaceID)
	if err != nil {
		return err
	}
	if !in.Roles.Given() {
		return steward.Invalid([]string{"body", "role_names"}, "give the new roles in role_names, roles or role")
	}
	roleIDs, err := workspaceRoleInput(ctx, tx, org.ID, in.Roles)
	if err != nil {
		return err
	}
	return replaceAssignment(ctx, tx, actor, org, g, ws, roleIDs)
}

// RemoveAssignment takes a group out of a Workspace. Direct memberships of
// its members are untouched.
func RemoveAssignment(ctx context.Context, tx *store.Tx, actor steward.Actor, org steward.Organization, groupID, workspaceID string) error {
	g, ws, err := assignment(ctx, tx, org.ID, groupID, workspaceID)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `DELETE FROM group_workspace_assignments WHERE group_id = ? AND workspace_id = ?`, g.ID, ws.ID); err != nil {
		return err
	}
	accessChanged(tx, org.ID)
	return recordAssignment(ctx, tx, actor, org, audit.EventGroupWorkspaceDeprovision, g, ws, map[string]string{})
}

// assignment finds an existing assignment, or returns KindNotFound.
func assignment(ctx context.Context, tx *store.Tx, orgID, groupID, workspaceID string) (steward.Group, steward.Workspace, error) {
	g, err := GetGroup(ctx, tx, orgID, groupID)
	if err != nil {
		return g, steward.Workspace{}, err
	}
	ws, err := ActiveWorkspace(ctx, tx, orgID, workspaceID)
	if err != nil {
		return g, ws, err
	}
	var n int
	if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM group_workspace_assignments WHERE group_id = ? AND workspace_id = ?`, g.ID, ws.ID).Scan(&n); err != nil {
		return g, ws, err
	}
	if n == 0 {
		return g, ws, steward.Errorf(steward.KindNotFound, "user group %s is not assigned to Workspace %s", g.Name, ws.Name)
	}
	return g, ws, nil
}

func recordAssignment(ctx context.Context, tx *store.Tx, actor steward.Actor, org steward.Organization, event string, g steward.Group, ws steward.Workspace, meta map[string]string) error {
	meta["workspace_name"] = ws.Name
	e := groupEntry(actor, org, event, g, meta)
	e.WorkspaceID = ws.ID
	return audit.Record(ctx, tx, e)
}
