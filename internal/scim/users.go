package scim

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/scim/filter"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

// user is a provisioned user as the identity provider last described it.
type user struct {
	ID          string
	UserName    string
	ExternalID  string
	DisplayName string
	GivenName   string
	FamilyName  string
	// Email is the primary address; empty means userName is the address.
	Email     string
	Active    bool
	Created   time.Time
	Modified  time.Time
	GroupRefs []memberRef
}

// address is the user's email address in Steward.
func (u *user) address() string {
	if u.Email != "" {
		return u.Email
	}
	return u.UserName
}

type memberRef struct {
	Value   string `json:"value"`
	Display string `json:"display,omitempty"`
	Ref     string `json:"$ref,omitempty"`
}

type meta struct {
	ResourceType string `json:"resourceType"`
	Created      string `json:"created"`
	LastModified string `json:"lastModified"`
	Location     string `json:"location"`
}

type userName struct {
	GivenName  string `json:"givenName,omitempty"`
	FamilyName string `json:"familyName,omitempty"`
	Formatted  string `json:"formatted,omitempty"`
}

type email struct {
	Value   string `json:"value"`
	Type    string `json:"type"`
	Primary bool   `json:"primary"`
}

type userResource struct {
	Schemas     []string    `json:"schemas"`
	ID          string      `json:"id"`
	ExternalID  string      `json:"externalId,omitempty"`
	UserName    string      `json:"userName"`
	Name        userName    `json:"name"`
	DisplayName string      `json:"displayName,omitempty"`
	Emails      []email     `json:"emails"`
	Active      bool        `json:"active"`
	Groups      []memberRef `json:"groups"`
	Meta        meta        `json:"meta"`
}

func (u *user) resource(base string) userResource {
	groups := u.GroupRefs
	if groups == nil {
		groups = []memberRef{}
	}
	for i := range groups {
		groups[i].Ref = location(base, "Groups", groups[i].Value)
	}
	return userResource{
		Schemas: []string{filter.SchemaUser}, ID: u.ID, ExternalID: u.ExternalID, UserName: u.UserName,
		Name:        userName{GivenName: u.GivenName, FamilyName: u.FamilyName, Formatted: strings.TrimSpace(u.GivenName + " " + u.FamilyName)},
		DisplayName: u.DisplayName,
		Emails:      []email{{Value: u.address(), Type: "work", Primary: true}},
		Active:      u.Active, Groups: groups,
		Meta: meta{ResourceType: "User", Created: formatTime(u.Created), LastModified: formatTime(u.Modified), Location: location(base, "Users", u.ID)},
	}
}

// userFrom is where userSelect reads an Organization's users.
const (
	userFrom   = `FROM scim_users u WHERE u.organization_id = ?`
	userSelect = `SELECT u.user_id, u.user_name, u.external_id, u.display_name, u.given_name, u.family_name, u.email, u.active, u.created_at, u.updated_at ` + userFrom
)

func scanUser(row scanner) (user, error) {
	var u user
	var ext sql.NullString
	var created, modified int64
	err := row.Scan(&u.ID, &u.UserName, &ext, &u.DisplayName, &u.GivenName, &u.FamilyName, &u.Email, &u.Active, &created, &modified)
	u.ExternalID, u.Created, u.Modified = ext.String, store.Time(created), store.Time(modified)
	return u, err
}

func notFound(kind, id string) *Error {
	return &Error{Status: http.StatusNotFound, Detail: kind + " " + id + " not found"}
}

// loadOne reads the resource of the Organization that query (ending with
// the Organization's and the id's conditions) selects, with scan; a
// missing one is a 404 naming kind and id.
func loadOne[T any](ctx context.Context, tx *store.Tx, query, orgID, kind, id string, scan func(scanner) (T, error)) (T, error) {
	v, err := scan(tx.QueryRow(ctx, query, orgID, id))
	if steward.IsKind(store.Translate(err), steward.KindNotFound) {
		return v, notFound(kind, id)
	}
	return v, err
}

// byID returns the ids of items as query arguments, and where each is.
func byID[T any](items []T, id func(*T) string) ([]any, map[string]int) {
	ids, at := make([]any, len(items)), map[string]int{}
	for i := range items {
		ids[i], at[id(&items[i])] = id(&items[i]), i
	}
	return ids, at
}

func loadUser(ctx context.Context, tx *store.Tx, orgID, id string) (user, error) {
	u, err := loadOne(ctx, tx, userSelect+` AND u.user_id = ?`, orgID, "User", id, scanUser)
	if err != nil {
		return u, err
	}
	users := []user{u}
	err = fillUserGroups(ctx, tx, orgID, users)
	return users[0], err
}

// fillUserGroups loads the SCIM groups each user is a member of.
func fillUserGroups(ctx context.Context, tx *store.Tx, orgID string, users []user) error {
	if len(users) == 0 {
		return nil
	}
	ids, at := byID(users, func(u *user) string { return u.ID })
	return tx.Each(ctx, `SELECT m.user_id, g.group_id, g.display_name FROM scim_group_members m JOIN scim_groups g ON g.group_id = m.group_id
		WHERE g.organization_id = ? AND m.user_id IN (`+store.Placeholders(len(ids))+`) ORDER BY g.display_name_lower`, append([]any{orgID}, ids...), func(sc *sql.Rows) error {
		var uid string
		var ref memberRef
		if err := sc.Scan(&uid, &ref.Value, &ref.Display); err != nil {
			return err
		}
		users[at[uid]].GroupRefs = append(users[at[uid]].GroupRefs, ref)
		return nil
	})
}

func (s *Service) getUser(w http.ResponseWriter, r *http.Request, c *call) error {
	u, err := s.findUser(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, u.resource(s.base(r)))
	return nil
}

func (s *Service) listUsers(w http.ResponseWriter, r *http.Request, c *call) error {
	q, err := readListQuery(r, c.org.ID, userColumns)
	if err != nil {
		return err
	}
	total, users, err := s.findUsers(r.Context(), c, q)
	if err != nil {
		return err
	}
	base := s.base(r)
	writeList(w, q, total, users, func(u *user) any { return u.resource(base) })
	return nil
}

// readUser reads a whole User resource (POST, PUT) into u, over what u
// holds: id, created and groups stay; everything else is replaced.
func readUser(r *http.Request, u *user) error {
	var body map[string]any
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	*u = user{ID: u.ID, Created: u.Created, GroupRefs: u.GroupRefs, Active: true}
	for k, v := range body {
		if err := setUserAttr(u, normalizeAttr(k), v, "replace"); err != nil {
			return err
		}
	}
	return checkUser(u)
}

func checkUser(u *user) error {
	if strings.TrimSpace(u.UserName) == "" {
		return badRequest("invalidValue", "userName is required")
	}
	if len(u.UserName) > 254 || len(u.DisplayName) > 255 || len(u.ExternalID) > 255 || len(u.GivenName) > 255 || len(u.FamilyName) > 255 {
		return badRequest("invalidValue", "userName, displayName, externalId and names must be at most 255 characters")
	}
	if _, _, err := directory.NormalizeEmail(nil, u.address()); err != nil {
		return badRequest("invalidValue", "%q is not an email address: send a userName that is one, or a primary address in emails", u.address())
	}
	return nil
}

// normalizeAttr lower-cases an attribute name and removes the core User or
// Group schema's URN from it.
func normalizeAttr(k string) string {
	lower := strings.ToLower(k)
	for _, urn := range []string{filter.SchemaUser, filter.SchemaGroup} {
		if rest, ok := strings.CutPrefix(lower, strings.ToLower(urn)+":"); ok {
			return rest
		}
	}
	return lower
}

// patchString is the string an operation op sets attr to: empty for a remove or a null
// value, else v trimmed, which must be a string.
func patchString(attr string, v any, op string) (string, error) {
	if op == "remove" || v == nil {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", badRequest("invalidValue", "%s must be a string", attr)
	}
	return strings.TrimSpace(s), nil
}

// setUserAttr sets (op add or replace) or clears (op remove) one attribute.
// Attributes Steward does not keep (password, title, the enterprise
// extension, ...) are accepted and ignored, as identity providers send
// many.
func setUserAttr(u *user, attr string, v any, op string) error {
	str := func() (string, error) { return patchString(attr, v, op) }
	var err error
	switch attr {
	case "username":
		if op == "remove" {
			return badRequest("mutability", "userName is required and cannot be removed")
		}
		u.UserName, err = str()
	case "externalid":
		u.ExternalID, err = str()
	case "displayname":
		u.DisplayName, err = str()
	case "name.givenname":
		u.GivenName, err = str()
	case "name.familyname":
		u.FamilyName, err = str()
	case "name":
		if op == "remove" || v == nil {
			u.GivenName, u.FamilyName = "", ""
			return nil
		}
		m, ok := v.(map[string]any)
		if !ok {
			return badRequest("invalidValue", "name must be an object")
		}
		for k, sub := range m {
			if err := setUserAttr(u, "name."+strings.ToLower(k), sub, op); err != nil {
				return err
			}
		}
	case "emails", "emails.value":
		if op == "remove" || v == nil {
			u.Email = ""
			return nil
		}
		if s, ok := v.(string); ok {
			u.Email = strings.TrimSpace(s)
			return nil
		}
		u.Email, err = primaryEmail(v)
	case "active":
		u.Active, err = boolValue(v, op)
	}
	return err
}

// primaryEmail picks the address of a list of emails: the primary one,
// else a work one, else the first.
func primaryEmail(v any) (string, error) {
	list, ok := v.([]any)
	if !ok {
		list = []any{v}
	}
	best, rank := "", -1
	for _, item := range list {
		m, ok := item.(map[string]any)
		if !ok {
			return "", badRequest("invalidValue", "emails must be a list of objects with a value")
		}
		value, _ := m["value"].(string)
		r := 0
		if p, _ := boolValue(m["primary"], "replace"); p {
			r = 2
		} else if t, _ := m["type"].(string); strings.EqualFold(t, "work") {
			r = 1
		}
		if value != "" && r > rank {
			best, rank = strings.TrimSpace(value), r
		}
	}
	return best, nil
}

// boolValue reads a boolean, which Entra ID sends as the string "True" or
// "False".
func boolValue(v any, op string) (bool, error) {
	if op == "remove" {
		return false, nil
	}
	switch x := v.(type) {
	case bool:
		return x, nil
	case string:
		switch strings.ToLower(strings.TrimSpace(x)) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
	}
	return false, badRequest("invalidValue", "active must be true or false")
}

func (s *Service) createUser(w http.ResponseWriter, r *http.Request, c *call) error {
	var u user
	if err := readUser(r, &u); err != nil {
		return err
	}
	u, err := s.addUser(r.Context(), c, u)
	if err != nil {
		return err
	}
	base := s.base(r)
	w.Header().Set("Location", location(base, "Users", u.ID))
	writeJSON(w, http.StatusCreated, u.resource(base))
	return nil
}

func conflict(format string, args ...any) *Error {
	return &Error{Status: http.StatusConflict, SCIMType: "uniqueness", Detail: fmt.Sprintf(format, args...)}
}

// taken turns the error of a statement that stores a resource into 409
// uniqueness when it broke a unique index on the Organization's lower-cased
// userNames or displayNames. The index alone enforces them, without a read
// beforehand that a planner may answer by scanning the Organization.
func taken(err error, kind, attr, value string) error {
	if steward.IsKind(store.Translate(err), steward.KindConflict) {
		return conflict("a %s with %s %s already exists", kind, attr, value)
	}
	return err
}

// provisionUser makes the user a member of the Organization (or adopts the
// member with that address), records what the identity provider sent, and
// deactivates them if it says so.
func provisionUser(ctx context.Context, tx *store.Tx, actor steward.Actor, org steward.Organization, u user) (user, error) {
	res, err := directory.CreateMembers(ctx, tx, actor, org, []directory.NewMember{{Email: u.address(), FirstName: u.GivenName, LastName: u.FamilyName}})
	if err != nil {
		return u, err
	}
	if len(res.InvalidEmails) > 0 {
		return u, badRequest("invalidValue", "%q is not a valid email address", u.address())
	}
	for _, id := range res.EmailToUserID {
		u.ID = id
	}
	u.Created, u.Modified = tx.Now, tx.Now
	added, err := tx.Exec(ctx, `INSERT INTO scim_users (organization_id, user_id, user_name, user_name_lower, external_id, display_name, given_name, family_name, email, active, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (organization_id, user_id) DO NOTHING`, org.ID, u.ID, u.UserName, strings.ToLower(u.UserName), nullable(u.ExternalID), u.DisplayName,
		u.GivenName, u.FamilyName, u.Email, u.Active, store.Micros(tx.Now), store.Micros(tx.Now))
	if err != nil {
		return u, taken(err, "user", "userName", u.UserName)
	}
	// The member with this address is provisioned already.
	if n, err := added.RowsAffected(); err != nil || n == 0 {
		return u, errors.Join(err, conflict("the address %s is already provisioned", u.address()))
	}
	if !u.Active {
		return u, directory.SetMemberActive(ctx, tx, actor, org, u.ID, false)
	}
	return u, nil
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// updateUser records the identity provider's new description of a user and
// applies it to the member: address and names, and whether they are
// active. A user whom an admin removed from the Organization meanwhile is
// only recorded; a sync run provisions them again.
func updateUser(ctx context.Context, tx *store.Tx, actor steward.Actor, org steward.Organization, before, after user) error {
	if _, err := tx.Exec(ctx, `UPDATE scim_users SET user_name = ?, user_name_lower = ?, external_id = ?, display_name = ?, given_name = ?, family_name = ?, email = ?, active = ?, updated_at = ?
		WHERE organization_id = ? AND user_id = ?`, after.UserName, strings.ToLower(after.UserName), nullable(after.ExternalID), after.DisplayName,
		after.GivenName, after.FamilyName, after.Email, after.Active, store.Micros(tx.Now), org.ID, after.ID); err != nil {
		return taken(err, "user", "userName", after.UserName)
	}
	_, err := directory.GetMember(ctx, tx, org.ID, after.ID)
	member := err == nil
	if err != nil && !steward.IsKind(err, steward.KindNotFound) {
		return err
	}
	if member && (!strings.EqualFold(before.address(), after.address()) || before.GivenName != after.GivenName || before.FamilyName != after.FamilyName) {
		if err := directory.UpdateUserInfo(ctx, tx, actor, org, after.ID, after.address(), after.GivenName, after.FamilyName); err != nil {
			return err
		}
	}
	if member && before.Active != after.Active {
		return directory.SetMemberActive(ctx, tx, actor, org, after.ID, after.Active)
	}
	return nil
}

// answerChangedUser answers a PUT or PATCH of the user in the path with
// change applied.
func (s *Service) answerChangedUser(w http.ResponseWriter, r *http.Request, c *call, change func(u *user) error) error {
	after, err := s.changeUser(r.Context(), c, r.PathValue("id"), change)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, after.resource(s.base(r)))
	return nil
}

func (s *Service) replaceUser(w http.ResponseWriter, r *http.Request, c *call) error {
	var body user
	body.Active = true
	if err := readUser(r, &body); err != nil {
		return err
	}
	return s.answerChangedUser(w, r, c, func(u *user) error {
		body.ID, body.Created, body.GroupRefs = u.ID, u.Created, u.GroupRefs
		*u = body
		return nil
	})
}

func (s *Service) patchUser(w http.ResponseWriter, r *http.Request, c *call) error {
	ops, err := readPatch(r)
	if err != nil {
		return err
	}
	return s.answerChangedUser(w, r, c, applyPatch(ops, patchUserOp))
}

func patchUserOp(u *user, op patchOp) error {
	if op.Path == nil {
		return patchObject(op, func(attr string, v any) error { return setUserAttr(u, attr, v, op.Op) })
	}
	attr := op.Path.Attr
	if op.Path.Filter != nil {
		if op.Path.Attr != "emails" {
			return nil
		}
		attr = "emails"
		if op.Path.Sub != "" {
			attr = "emails." + op.Path.Sub
		}
		if attr != "emails" && attr != "emails.value" {
			return nil
		}
	}
	if op.Op != "remove" && op.Value == nil {
		return badRequest("invalidValue", "the %s operation on %s needs a value", op.Op, op.Path)
	}
	return setUserAttr(u, attr, op.Value, op.Op)
}

func (s *Service) deleteUser(w http.ResponseWriter, r *http.Request, c *call) error {
	return answerDeleted(w, s.removeUser(r.Context(), c, r.PathValue("id")))
}

// deprovisionUser removes a provisioned user from the Organization (their
// history stays) and forgets what the identity provider said of them.
func deprovisionUser(ctx context.Context, tx *store.Tx, actor steward.Actor, org steward.Organization, userID string) error {
	if err := directory.RemoveMember(ctx, tx, actor, org, userID); err != nil && !steward.IsKind(err, steward.KindNotFound) {
		return err
	}
	if _, err := tx.Exec(ctx, `DELETE FROM scim_group_members WHERE user_id = ? AND group_id IN (SELECT group_id FROM scim_groups WHERE organization_id = ?)`, userID, org.ID); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `DELETE FROM scim_users WHERE organization_id = ? AND user_id = ?`, org.ID, userID)
	return err
}

// patchOp is one operation of a PATCH request.
type patchOp struct {
	Op    string // add, replace, remove
	Path  *filter.Path
	Value any
}

// maxPatchOps bounds the operations of one PATCH request.
const maxPatchOps = 1000

// applyPatch returns a change that applies ops to a resource in order, one at a time with
// apply, stopping at the first error.
func applyPatch[T any](ops []patchOp, apply func(*T, patchOp) error) func(*T) error {
	return func(res *T) error {
		for _, op := range ops {
			if err := apply(res, op); err != nil {
				return err
			}
		}
		return nil
	}
}

// patchObject applies an operation without a path: its value must be an object, and each
// of its attributes is set with set under its normalized name.
func patchObject(op patchOp, set func(attr string, v any) error) error {
	m, ok := op.Value.(map[string]any)
	if !ok {
		return badRequest("invalidValue", "an operation without a path needs an object value")
	}
	for k, v := range m {
		if err := set(normalizeAttr(k), v); err != nil {
			return err
		}
	}
	return nil
}

// readPatch reads a PatchOp body; op names are case-insensitive (Entra ID
// sends "Replace").
func readPatch(r *http.Request) ([]patchOp, error) {
	var body struct {
		Schemas    []string `json:"schemas"`
		Operations []struct {
			Op    string          `json:"op"`
			Path  *string         `json:"path"`
			Value json.RawMessage `json:"value"`
		} `json:"Operations"`
	}
	if err := decodeBody(r, &body); err != nil {
		return nil, err
	}
	if len(body.Operations) == 0 {
		return nil, badRequest("invalidValue", "Operations must hold at least one operation")
	}
	if len(body.Operations) > maxPatchOps {
		return nil, badRequest("tooMany", "at most %d operations per request", maxPatchOps)
	}
	ops := make([]patchOp, 0, len(body.Operations))
	for i, o := range body.Operations {
		op := patchOp{Op: strings.ToLower(o.Op)}
		if op.Op != "add" && op.Op != "replace" && op.Op != "remove" {
			return nil, badRequest("invalidValue", "Operations[%d].op must be add, replace or remove, not %q", i, o.Op)
		}
		if o.Path != nil && strings.TrimSpace(*o.Path) != "" {
			p, err := filter.ParsePath(strings.TrimSpace(*o.Path))
			if err != nil {
				return nil, badRequest("invalidPath", "Operations[%d].path: %v", i, err)
			}
			op.Path = &p
		} else if op.Op == "remove" {
			return nil, badRequest("noTarget", "Operations[%d]: a remove operation needs a path", i)
		}
		if len(o.Value) > 0 {
			if err := json.Unmarshal(o.Value, &op.Value); err != nil {
				return nil, badRequest("invalidSyntax", "Operations[%d].value is not valid JSON", i)
			}
		}
		ops = append(ops, op)
	}
	return ops, nil
}
