package scim

import (
	"context"
	"database/sql"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/scim/filter"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

// group is a provisioned group as the identity provider last described it.
type group struct {
	ID          string
	DisplayName string
	ExternalID  string
	Members     []string // user ids
	Created     time.Time
	Modified    time.Time
}

type groupResource struct {
	Schemas     []string     `json:"schemas"`
	ID          string       `json:"id"`
	ExternalID  string       `json:"externalId,omitempty"`
	DisplayName string       `json:"displayName"`
	Members     *[]memberRef `json:"members,omitempty"`
	Meta        meta         `json:"meta"`
}

func (g *group) resource(base string, names map[string]string, withMembers bool) groupResource {
	out := groupResource{Schemas: []string{filter.SchemaGroup}, ID: g.ID, ExternalID: g.ExternalID, DisplayName: g.DisplayName,
		Meta: meta{ResourceType: "Group", Created: formatTime(g.Created), LastModified: formatTime(g.Modified), Location: location(base, "Groups", g.ID)}}
	if withMembers {
		members := make([]memberRef, len(g.Members))
		for i, id := range g.Members {
			members[i] = memberRef{Value: id, Display: names[id], Ref: location(base, "Users", id)}
		}
		out.Members = &members
	}
	return out
}

// groupFrom is where groupSelect reads an Organization's groups.
const (
	groupFrom   = `FROM scim_groups g WHERE g.organization_id = ?`
	groupSelect = `SELECT g.group_id, g.display_name, g.external_id, g.created_at, g.updated_at ` + groupFrom
)

func scanGroup(row scanner) (group, error) {
	var g group
	var ext sql.NullString
	var created, modified int64
	err := row.Scan(&g.ID, &g.DisplayName, &ext, &created, &modified)
	g.ExternalID, g.Created, g.Modified = ext.String, store.Time(created), store.Time(modified)
	return g, err
}

func loadGroup(ctx context.Context, tx *store.Tx, orgID, id string, names map[string]string) (group, error) {
	g, err := loadOne(ctx, tx, groupSelect+` AND g.group_id = ?`, orgID, "Group", id, scanGroup)
	if err != nil {
		return g, err
	}
	groups := []group{g}
	err = fillMembers(ctx, tx, orgID, groups, names)
	return groups[0], err
}

// fillMembers loads the members of the groups, and their userNames into
// names when names is not nil.
func fillMembers(ctx context.Context, tx *store.Tx, orgID string, groups []group, names map[string]string) error {
	if len(groups) == 0 {
		return nil
	}
	ids, at := byID(groups, func(g *group) string { return g.ID })
	return tx.Each(ctx, `SELECT m.group_id, m.user_id, u.user_name FROM scim_group_members m
		JOIN scim_users u ON u.organization_id = ? AND u.user_id = m.user_id
		WHERE m.group_id IN (`+store.Placeholders(len(ids))+`) ORDER BY m.user_id`, append([]any{orgID}, ids...), func(sc *sql.Rows) error {
		var gid, uid, name string
		if err := sc.Scan(&gid, &uid, &name); err != nil {
			return err
		}
		groups[at[gid]].Members = append(groups[at[gid]].Members, uid)
		if names != nil {
			names[uid] = name
		}
		return nil
	})
}

func (s *Service) getGroup(w http.ResponseWriter, r *http.Request, c *call) error {
	g, err := s.findGroup(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, g.resource(s.base(r), g.names, !excluded(r, "members")))
	return nil
}

func (s *Service) listGroups(w http.ResponseWriter, r *http.Request, c *call) error {
	q, err := readListQuery(r, c.org.ID, groupColumns)
	if err != nil {
		return err
	}
	withMembers := !excluded(r, "members")
	total, groups, names, err := s.findGroups(r.Context(), c, q, withMembers)
	if err != nil {
		return err
	}
	base := s.base(r)
	writeList(w, q, total, groups, func(g *group) any { return g.resource(base, names, withMembers) })
	return nil
}

// readGroup reads a whole Group resource (POST, PUT).
func readGroup(r *http.Request) (group, error) {
	var body map[string]any
	if err := decodeBody(r, &body); err != nil {
		return group{}, err
	}
	var g group
	for k, v := range body {
		if err := setGroupAttr(&g, normalizeAttr(k), v, "replace"); err != nil {
			return g, err
		}
	}
	return g, nil
}

func checkGroup(g *group) error {
	switch {
	case strings.TrimSpace(g.DisplayName) == "":
		return badRequest("invalidValue", "displayName is required")
	case len(g.DisplayName) > 255 || len(g.ExternalID) > 255:
		return badRequest("invalidValue", "displayName and externalId must be at most 255 characters")
	}
	return nil
}

// memberValues reads the ids of a members value: a list of {"value": id},
// or one such object.
func memberValues(v any) ([]string, error) {
	list, ok := v.([]any)
	if !ok {
		list = []any{v}
	}
	ids := make([]string, 0, len(list))
	for _, item := range list {
		m, ok := item.(map[string]any)
		id, _ := m["value"].(string)
		if !ok || id == "" {
			return nil, badRequest("invalidValue", "members must be a list of objects with a value (a user id)")
		}
		ids = append(ids, id)
	}
	return ids, nil
}

func setGroupAttr(g *group, attr string, v any, op string) error {
	str := func() (string, error) { return patchString(attr, v, op) }
	var err error
	switch attr {
	case "displayname":
		if op == "remove" {
			return badRequest("mutability", "displayName is required and cannot be removed")
		}
		g.DisplayName, err = str()
	case "externalid":
		g.ExternalID, err = str()
	case "members":
		if op == "remove" || v == nil {
			if v == nil {
				g.Members = nil
				return nil
			}
			ids, err := memberValues(v)
			g.Members = slices.DeleteFunc(g.Members, func(id string) bool { return slices.Contains(ids, id) })
			return err
		}
		ids, err := memberValues(v)
		if err != nil {
			return err
		}
		if op == "replace" {
			g.Members = nil
		}
		for _, id := range ids {
			if !slices.Contains(g.Members, id) {
				g.Members = append(g.Members, id)
			}
		}
	}
	return err
}

func (s *Service) createGroup(w http.ResponseWriter, r *http.Request, c *call) error {
	g, err := readGroup(r)
	if err != nil {
		return err
	}
	if err := checkGroup(&g); err != nil {
		return err
	}
	saved, err := s.addGroup(r.Context(), c, g)
	if err != nil {
		return err
	}
	base := s.base(r)
	w.Header().Set("Location", location(base, "Groups", saved.ID))
	writeJSON(w, http.StatusCreated, saved.resource(base, saved.names, true))
	return nil
}

// provisionGroup creates an externally managed group with its members and
// records what the identity provider sent.
func provisionGroup(ctx context.Context, tx *store.Tx, actor steward.Actor, org steward.Organization, g group) error {
	if _, err := tx.Exec(ctx, `INSERT INTO scim_groups (organization_id, group_id, display_name, display_name_lower, external_id, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, org.ID, g.ID, g.DisplayName, strings.ToLower(g.DisplayName), nullable(g.ExternalID),
		store.Micros(tx.Now), store.Micros(tx.Now)); err != nil {
		return taken(err, "group", "displayName", g.DisplayName)
	}
	if _, err := directory.CreateExternalGroup(ctx, tx, actor, org, g.ID, g.DisplayName, g.ExternalID); err != nil {
		return err
	}
	return setGroupMembers(ctx, tx, actor, org, g.ID, nil, g.Members)
}

// setGroupMembers replaces the group's members (the identity provider's
// record, and the externally managed group's members in the directory).
// Every member must be a user provisioned in the Organization.
func setGroupMembers(ctx context.Context, tx *store.Tx, actor steward.Actor, org steward.Organization, groupID string, before, after []string) error {
	var added, removed []string
	for _, id := range after {
		if !slices.Contains(before, id) {
			added = append(added, id)
		}
	}
	for _, id := range before {
		if !slices.Contains(after, id) {
			removed = append(removed, id)
		}
	}
	if len(added) > 0 {
		known, err := provisioned(ctx, tx, org.ID, added)
		if err != nil {
			return err
		}
		for _, id := range added {
			if !known[id] {
				return badRequest("invalidValue", "member %q is not a user provisioned in this Organization", id)
			}
		}
		rows := make([][]any, len(added))
		for i, id := range added {
			rows[i] = []any{groupID, id}
		}
		if err := tx.InsertMany(ctx, "scim_group_members", []string{"group_id", "user_id"}, rows, ""); err != nil {
			return err
		}
	}
	for start := 0; start < len(removed); start += directory.MaxBatch {
		part := removed[start:min(start+directory.MaxBatch, len(removed))]
		args := []any{groupID}
		for _, id := range part {
			args = append(args, id)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM scim_group_members WHERE group_id = ? AND user_id IN (`+store.Placeholders(len(part))+`)`, args...); err != nil {
			return err
		}
	}
	return applyGroupMembers(ctx, tx, actor, org, groupID, added, removed)
}

// applyGroupMembers adds and removes members of an externally managed
// group in the directory; users who are no longer members of the
// Organization are left out.
func applyGroupMembers(ctx context.Context, tx *store.Tx, actor steward.Actor, org steward.Organization, groupID string, added, removed []string) error {
	if len(added) > 0 {
		if err := directory.ChangeExternalGroupMembers(ctx, tx, actor, org, groupID, added, false); err != nil {
			return err
		}
	}
	if len(removed) > 0 {
		return directory.ChangeExternalGroupMembers(ctx, tx, actor, org, groupID, removed, true)
	}
	return nil
}

// provisioned returns which of the user ids are users provisioned in the
// Organization.
func provisioned(ctx context.Context, tx *store.Tx, orgID string, ids []string) (map[string]bool, error) {
	known := map[string]bool{}
	for start := 0; start < len(ids); start += directory.MaxBatch {
		part := ids[start:min(start+directory.MaxBatch, len(ids))]
		args := []any{orgID}
		for _, id := range part {
			args = append(args, id)
		}
		found, err := tx.Strings(ctx, `SELECT user_id FROM scim_users WHERE organization_id = ? AND user_id IN (`+store.Placeholders(len(part))+`)`, args...)
		if err != nil {
			return nil, err
		}
		for _, id := range found {
			known[id] = true
		}
	}
	return known, nil
}

// organizationMembers returns the ids of the Organization's members.
func organizationMembers(ctx context.Context, tx *store.Tx, orgID string) (map[string]bool, error) {
	ids, err := tx.Strings(ctx, `SELECT user_id FROM organization_members WHERE organization_id = ?`, orgID)
	if err != nil {
		return nil, err
	}
	set := make(map[string]bool, len(ids))
	for _, id := range ids {
		set[id] = true
	}
	return set, nil
}

// answerChangedGroup answers a PUT or PATCH of the group in the path with
// change applied.
func (s *Service) answerChangedGroup(w http.ResponseWriter, r *http.Request, c *call, change func(g *group) error) error {
	withMembers := !excluded(r, "members")
	after, err := s.changeGroup(r.Context(), c, r.PathValue("id"), withMembers, change)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, after.resource(s.base(r), after.names, withMembers))
	return nil
}

func updateGroup(ctx context.Context, tx *store.Tx, actor steward.Actor, org steward.Organization, before, after group) error {
	if _, err := tx.Exec(ctx, `UPDATE scim_groups SET display_name = ?, display_name_lower = ?, external_id = ?, updated_at = ? WHERE organization_id = ? AND group_id = ?`,
		after.DisplayName, strings.ToLower(after.DisplayName), nullable(after.ExternalID), store.Micros(tx.Now), org.ID, after.ID); err != nil {
		return taken(err, "group", "displayName", after.DisplayName)
	}
	if after.DisplayName != before.DisplayName {
		if err := directory.RenameExternalGroup(ctx, tx, actor, org, after.ID, after.DisplayName); err != nil && !steward.IsKind(err, steward.KindNotFound) {
			return err
		}
	}
	return setGroupMembers(ctx, tx, actor, org, after.ID, before.Members, after.Members)
}

func (s *Service) replaceGroup(w http.ResponseWriter, r *http.Request, c *call) error {
	body, err := readGroup(r)
	if err != nil {
		return err
	}
	return s.answerChangedGroup(w, r, c, func(g *group) error {
		body.ID, body.Created = g.ID, g.Created
		*g = body
		return nil
	})
}

func (s *Service) patchGroup(w http.ResponseWriter, r *http.Request, c *call) error {
	ops, err := readPatch(r)
	if err != nil {
		return err
	}
	return s.answerChangedGroup(w, r, c, applyPatch(ops, patchGroupOp))
}

func patchGroupOp(g *group, op patchOp) error {
	if op.Path == nil {
		return patchObject(op, func(attr string, v any) error { return setGroupAttr(g, attr, v, op.Op) })
	}
	if op.Path.Filter == nil {
		if op.Op != "remove" && op.Value == nil {
			return badRequest("invalidValue", "the %s operation on %s needs a value", op.Op, op.Path)
		}
		return setGroupAttr(g, op.Path.Attr, op.Value, op.Op)
	}
	if op.Path.Attr != "members" {
		return badRequest("invalidPath", "%s: only members can be filtered", op.Path)
	}
	// members[value eq "..."]: the members the filter selects.
	var selected []string
	for _, id := range g.Members {
		ok, err := matchMember(op.Path.Filter, id)
		if err != nil {
			return err
		}
		if ok {
			selected = append(selected, id)
		}
	}
	switch op.Op {
	case "remove":
		g.Members = slices.DeleteFunc(g.Members, func(id string) bool { return slices.Contains(selected, id) })
		return nil
	default:
		if op.Path.Sub != "" && op.Path.Sub != "value" {
			return badRequest("invalidPath", "%s: only a member's value can be set", op.Path)
		}
		if op.Path.Sub == "value" {
			id, ok := op.Value.(string)
			if !ok || id == "" {
				return badRequest("invalidValue", "%s needs a user id as its value", op.Path)
			}
			g.Members = slices.DeleteFunc(g.Members, func(m string) bool { return slices.Contains(selected, m) })
			return setGroupAttr(g, "members", []any{map[string]any{"value": id}}, "add")
		}
		g.Members = slices.DeleteFunc(g.Members, func(id string) bool { return slices.Contains(selected, id) })
		return setGroupAttr(g, "members", op.Value, "add")
	}
}

// matchMember evaluates a members value filter on one member, whose only
// attribute is its value (the user id).
func matchMember(e filter.Expr, id string) (bool, error) {
	switch x := e.(type) {
	case filter.Logical:
		l, err := matchMember(x.Left, id)
		if err != nil {
			return false, err
		}
		r, err := matchMember(x.Right, id)
		if x.Op == "and" {
			return l && r, err
		}
		return l || r, err
	case filter.Not:
		v, err := matchMember(x.X, id)
		return !v, err
	case filter.Compare:
		if x.Attr != "value" {
			return false, badRequest("invalidFilter", "a members filter can only compare value, not %s", x.Attr)
		}
		if x.Op == "pr" {
			return true, nil
		}
		v, ok := x.Value.(string)
		if !ok {
			return false, badRequest("invalidFilter", "a member's value is compared with a string")
		}
		a, b := strings.ToLower(id), strings.ToLower(v)
		switch x.Op {
		case "eq":
			return a == b, nil
		case "ne":
			return a != b, nil
		case "co":
			return strings.Contains(a, b), nil
		case "sw":
			return strings.HasPrefix(a, b), nil
		case "ew":
			return strings.HasSuffix(a, b), nil
		}
		return false, badRequest("invalidFilter", "a member's value cannot be compared with %s", x.Op)
	}
	return false, badRequest("invalidFilter", "unsupported members filter %s", e)
}

func (s *Service) deleteGroup(w http.ResponseWriter, r *http.Request, c *call) error {
	return answerDeleted(w, s.removeGroup(r.Context(), c, r.PathValue("id")))
}

// deprovisionGroup deletes an externally managed group and forgets what
// the identity provider said of it.
func deprovisionGroup(ctx context.Context, tx *store.Tx, actor steward.Actor, org steward.Organization, id string) error {
	if err := directory.DeleteExternalGroup(ctx, tx, actor, org, id); err != nil && !steward.IsKind(err, steward.KindNotFound) {
		return err
	}
	if _, err := tx.Exec(ctx, `DELETE FROM scim_group_members WHERE group_id = ?`, id); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `DELETE FROM scim_groups WHERE organization_id = ? AND group_id = ?`, org.ID, id)
	return err
}
