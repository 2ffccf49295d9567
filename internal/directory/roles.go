package directory

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/stewardhq/steward/internal/audit"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

// Catalog is every role an Organization can assign: the built-in ones and
// its custom roles.
type Catalog struct {
	roles []steward.Role
}

// LoadCatalog reads the Organization's custom roles and returns its catalog.
func LoadCatalog(ctx context.Context, tx *store.Tx, orgID string) (*Catalog, error) {
	custom, err := ListCustomRoles(ctx, tx, orgID)
	if err != nil {
		return nil, err
	}
	c := &Catalog{}
	c.roles = append(c.roles, steward.OrganizationRoles...)
	c.roles = append(c.roles, steward.WorkspaceRoles...)
	for _, r := range custom {
		c.roles = append(c.roles, r.Role)
	}
	return c, nil
}

// Roles returns the roles of one scope, built-in first.
func (c *Catalog) Roles(scope steward.RoleScope) []steward.Role {
	var out []steward.Role
	for _, r := range c.roles {
		if r.Scope == scope {
			out = append(out, r)
		}
	}
	return out
}

// Role returns the role with this id.
func (c *Catalog) Role(id string) (steward.Role, bool) {
	for _, r := range c.roles {
		if r.ID == id {
			return r, true
		}
	}
	return steward.Role{}, false
}

func (c *Catalog) byName(scope steward.RoleScope, name string) (steward.Role, bool) {
	for _, r := range c.roles {
		if r.Scope == scope && r.Name == name {
			return r, true
		}
	}
	return steward.Role{}, false
}

func (c *Catalog) byRef(scope steward.RoleScope, ref string) (steward.Role, bool) {
	for _, r := range c.roles {
		if r.Scope == scope && (r.ID == ref || (r.Letter != "" && r.Letter == ref)) {
			return r, true
		}
	}
	return steward.Role{}, false
}

// RoleInput is how a request names roles: by name (role_names), by letter or
// UUID (roles), or with the deprecated singular forms. A nil field was not
// sent.
type RoleInput struct {
	RoleNames *[]string
	Roles     *[]string
	RoleName  *string
	Role      *string
}

// Given reports whether any role field was sent.
func (in RoleInput) Given() bool {
	return in.RoleNames != nil || in.Roles != nil || in.RoleName != nil || in.Role != nil
}

// Resolve turns the input into role ids of scope, deduplicated and in the
// order given. prefix locates the fields in errors (e.g. ["body"] or
// ["body", "3"]). role_names and roles are mutually exclusive, and so are
// role_name and role; every unknown role is named. When the input names
// only custom roles, the scope's base role (member) is added, so that every
// member holds a built-in role.
func (c *Catalog) Resolve(scope steward.RoleScope, in RoleInput, prefix []string) ([]string, error) {
	field := func(name string) []string { return append(slices.Clip(prefix), name) }
	var errs []*steward.Error
	conflict := func(a, b string) {
		msg := a + " and " + b + " are mutually exclusive: send only one of them"
		errs = append(errs, steward.Invalid(field(a), "%s", msg), steward.Invalid(field(b), "%s", msg))
	}
	if in.RoleNames != nil && in.Roles != nil {
		conflict("role_names", "roles")
	}
	if in.RoleName != nil && in.Role != nil {
		conflict("role_name", "role")
	}
	var ids []string
	add := func(r steward.Role) {
		if !slices.Contains(ids, r.ID) {
			ids = append(ids, r.ID)
		}
	}
	list := func(name string, vals *[]string, lookup func(steward.RoleScope, string) (steward.Role, bool), what string) {
		if vals == nil {
			return
		}
		if len(*vals) == 0 {
			errs = append(errs, steward.Invalid(field(name), "%s must name at least one role", name))
		}
		for i, v := range *vals {
			r, ok := lookup(scope, v)
			if !ok {
				errs = append(errs, steward.Invalid(append(field(name), strconv.Itoa(i)), "%q is not %s of an %s role", v, what, scope))
				continue
			}
			add(r)
		}
	}
	list("role_names", in.RoleNames, c.byName, "the name")
	list("roles", in.Roles, c.byRef, "the letter or UUID")
	if in.RoleName != nil {
		list("role_name", &[]string{*in.RoleName}, c.byName, "the name")
	}
	if in.Role != nil {
		list("role", &[]string{*in.Role}, c.byRef, "the letter or UUID")
	}
	if err := steward.Invalids(errs); err != nil {
		return nil, err
	}
	if !slices.ContainsFunc(ids, isBuiltin) && scope == steward.ScopeOrganization {
		ids = append([]string{steward.RoleIDOrganizationMember}, ids...)
	}
	return ids, nil
}

func isBuiltin(id string) bool {
	for _, scope := range []steward.RoleScope{steward.ScopeOrganization, steward.ScopeWorkspace} {
		if _, ok := steward.BuiltinRole(scope, id); ok {
			return true
		}
	}
	return false
}

// BuiltinRoleIDs returns the ids among ids that are built-in roles, which is
// what Mistral's member objects carry.
func BuiltinRoleIDs(ids []string) []string {
	var out []string
	for _, id := range ids {
		if isBuiltin(id) {
			out = append(out, id)
		}
	}
	return out
}

// CustomRoleInput creates or changes a custom role; nil fields are left as
// they are on update.
type CustomRoleInput struct {
	Name        *string
	Description *string
	Scope       steward.RoleScope
	Permissions *[]string
}

const (
	maxRoleName        = 100
	maxRoleDescription = 500
)

func (in CustomRoleInput) validate(creating bool) ([]steward.Permission, error) {
	var errs []*steward.Error
	if creating && in.Scope != steward.ScopeOrganization && in.Scope != steward.ScopeWorkspace {
		errs = append(errs, steward.Invalid([]string{"body", "scope"}, "scope must be organization or workspace"))
	}
	if in.Name != nil || creating {
		name := ""
		if in.Name != nil {
			name = strings.TrimSpace(*in.Name)
		}
		switch {
		case name == "":
			errs = append(errs, steward.Invalid([]string{"body", "name"}, "name must not be empty"))
		case len(name) > maxRoleName:
			errs = append(errs, steward.Invalid([]string{"body", "name"}, "name must be at most %d bytes", maxRoleName))
		}
	}
	if in.Description != nil && len(*in.Description) > maxRoleDescription {
		errs = append(errs, steward.Invalid([]string{"body", "description"}, "description must be at most %d bytes", maxRoleDescription))
	}
	var perms []steward.Permission
	if in.Permissions != nil || creating {
		if in.Permissions == nil || len(*in.Permissions) == 0 {
			errs = append(errs, steward.Invalid([]string{"body", "permissions"}, "permissions must list at least one permission"))
		} else {
			for i, p := range *in.Permissions {
				scope, ok := steward.PermissionScope(steward.Permission(p))
				switch {
				case !ok:
					errs = append(errs, steward.Invalid([]string{"body", "permissions", strconv.Itoa(i)}, "%q is not a permission: GET /v1/admin/permissions lists them", p))
				case (in.Scope == steward.ScopeOrganization || in.Scope == steward.ScopeWorkspace) && scope != in.Scope:
					errs = append(errs, steward.Invalid([]string{"body", "permissions", strconv.Itoa(i)}, "%q is a %s permission, not a %s one", p, scope, in.Scope))
				case !slices.Contains(perms, steward.Permission(p)):
					perms = append(perms, steward.Permission(p))
				}
			}
		}
	}
	if err := steward.Invalids(errs); err != nil {
		return nil, err
	}
	return perms, nil
}

// CustomRole is a custom role with its creation and last change.
type CustomRole struct {
	steward.Role
	CreatedAt time.Time
	UpdatedAt time.Time
}

const customRoleColumns = `id, scope, name, description, permissions, created_at, updated_at`

func scanCustomRole(row interface{ Scan(...any) error }) (CustomRole, error) {
	var r CustomRole
	var perms string
	var created, updated int64
	if err := row.Scan(&r.ID, &r.Scope, &r.Name, &r.Description, &perms, &created, &updated); err != nil {
		return r, err
	}
	r.Custom, r.CreatedAt, r.UpdatedAt = true, store.Time(created), store.Time(updated)
	return r, json.Unmarshal([]byte(perms), &r.Permissions)
}

// ListCustomRoles returns the Organization's custom roles by scope and name.
func ListCustomRoles(ctx context.Context, tx *store.Tx, orgID string) ([]CustomRole, error) {
	return store.All(ctx, tx, `SELECT `+customRoleColumns+` FROM custom_roles WHERE organization_id = ? ORDER BY scope, name`, []any{orgID}, scanCustomRole)
}

// GetCustomRole returns one custom role of the Organization, or a
// KindNotFound error.
func GetCustomRole(ctx context.Context, tx *store.Tx, orgID, id string) (CustomRole, error) {
	return getCustomRole(ctx, tx, orgID, id, "")
}

// getCustomRole is GetCustomRole with a suffix to its query (a lock).
func getCustomRole(ctx context.Context, tx *store.Tx, orgID, id, suffix string) (CustomRole, error) {
	r, err := scanCustomRole(tx.QueryRow(ctx, `SELECT `+customRoleColumns+` FROM custom_roles WHERE organization_id = ? AND id = ?`+suffix, orgID, id))
	if steward.IsKind(store.Translate(err), steward.KindNotFound) {
		return r, steward.Errorf(steward.KindNotFound, "no custom role %s in this Organization", id)
	}
	return r, err
}

func checkRoleName(scope steward.RoleScope, name string) error {
	for _, r := range steward.BuiltinRoles(scope) {
		if strings.EqualFold(r.Name, name) {
			return &steward.Error{Kind: steward.KindConflict, Message: "a built-in role is already called " + r.Name}
		}
	}
	return nil
}

func roleConflict(err error, name string) error {
	if steward.IsKind(store.Translate(err), steward.KindConflict) {
		return &steward.Error{Kind: steward.KindConflict, Message: "a custom role is already called " + name}
	}
	return err
}

// CreateCustomRole creates a named permission set and audits it.
func CreateCustomRole(ctx context.Context, tx *store.Tx, actor steward.Actor, orgID string, in CustomRoleInput) (CustomRole, error) {
	perms, err := in.validate(true)
	if err != nil {
		return CustomRole{}, err
	}
	r := CustomRole{Role: steward.Role{ID: uuid.NewString(), Name: strings.TrimSpace(*in.Name), Scope: in.Scope, Permissions: perms, Custom: true},
		CreatedAt: tx.Now, UpdatedAt: tx.Now}
	if in.Description != nil {
		r.Description = *in.Description
	}
	if err := checkRoleName(r.Scope, r.Name); err != nil {
		return CustomRole{}, err
	}
	permJSON, _ := json.Marshal(perms)
	if _, err := tx.Exec(ctx, `INSERT INTO custom_roles (id, organization_id, scope, name, description, permissions, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, r.ID, orgID, string(r.Scope), r.Name, r.Description, string(permJSON),
		store.Micros(tx.Now), store.Micros(tx.Now)); err != nil {
		return CustomRole{}, roleConflict(err, r.Name)
	}
	return r, recordRole(ctx, tx, actor, orgID, audit.EventRoleCreate, r.Role, nil)
}

// UpdateCustomRole changes a custom role's name, description or
// permissions, and audits the change with before and after values.
func UpdateCustomRole(ctx context.Context, tx *store.Tx, actor steward.Actor, orgID, id string, in CustomRoleInput) (CustomRole, error) {
	before, err := getCustomRole(ctx, tx, orgID, id, tx.ForUpdate())
	if err != nil {
		return CustomRole{}, err
	}
	in.Scope = before.Scope
	perms, err := in.validate(false)
	if err != nil {
		return CustomRole{}, err
	}
	after := before
	after.Permissions = slices.Clone(before.Permissions)
	after.UpdatedAt = tx.Now
	if in.Name != nil {
		after.Name = strings.TrimSpace(*in.Name)
		if err := checkRoleName(after.Scope, after.Name); err != nil {
			return CustomRole{}, err
		}
	}
	if in.Description != nil {
		after.Description = *in.Description
	}
	if in.Permissions != nil {
		after.Permissions = perms
	}
	permJSON, _ := json.Marshal(after.Permissions)
	if _, err := tx.Exec(ctx, `UPDATE custom_roles SET name = ?, description = ?, permissions = ?, updated_at = ?
		WHERE organization_id = ? AND id = ?`, after.Name, after.Description, string(permJSON), store.Micros(tx.Now), orgID, id); err != nil {
		return CustomRole{}, roleConflict(err, after.Name)
	}
	accessChanged(tx, orgID)
	return after, recordRole(ctx, tx, actor, orgID, audit.EventRoleUpdate, after.Role, &before.Role)
}

// DeleteCustomRole deletes a custom role that nobody holds; while anyone
// holds it, it returns a KindConflict error.
func DeleteCustomRole(ctx context.Context, tx *store.Tx, actor steward.Actor, orgID, id string) error {
	r, err := GetCustomRole(ctx, tx, orgID, id)
	if err != nil {
		return err
	}
	var holders int
	if err := tx.QueryRow(ctx, `SELECT (SELECT COUNT(*) FROM organization_member_roles WHERE organization_id = ? AND role_id = ?)
		+ (SELECT COUNT(*) FROM workspace_member_roles WHERE role_id = ?)`, orgID, id, id).Scan(&holders); err != nil {
		return err
	}
	if holders > 0 {
		return steward.Errorf(steward.KindConflict, "the custom role %s is held %d times: take it away from its holders first", r.Name, holders)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM custom_roles WHERE organization_id = ? AND id = ?`, orgID, id); err != nil {
		return err
	}
	return recordRole(ctx, tx, actor, orgID, audit.EventRoleDelete, r.Role, nil)
}

func recordRole(ctx context.Context, tx *store.Tx, actor steward.Actor, orgID, event string, r steward.Role, before *steward.Role) error {
	perms := func(r steward.Role) string {
		s := make([]string, len(r.Permissions))
		for i, p := range r.Permissions {
			s[i] = string(p)
		}
		return strings.Join(s, ",")
	}
	meta := map[string]string{"scope": string(r.Scope), "permissions": perms(r)}
	if before != nil {
		meta["name_before"], meta["permissions_before"] = before.Name, perms(*before)
	}
	err := audit.Record(ctx, tx, audit.Entry{
		OrganizationID: orgID,
		Actor:          actor,
		EventType:      event,
		EventMetadata:  meta,
		TargetType:     audit.TargetRole,
		TargetMetadata: map[string]string{"id": r.ID, "name": r.Name},
	})
	return err
}
