package directory

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/stewardhq/steward/internal/audit"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

// MaxPageSize is the largest page any list returns.
const MaxPageSize = 100

// MaxBatch is the most members one bulk creation or invitation takes.
const MaxBatch = 1000

// maxPersonName bounds first and last names, as Mistral's document does.
const maxPersonName = 255

func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func jsonList(ss []string) string {
	if ss == nil {
		ss = []string{}
	}
	b, _ := json.Marshal(ss)
	return string(b)
}

func parseList(s string) ([]string, error) {
	var out []string
	err := json.Unmarshal([]byte(s), &out)
	return out, err
}

// MemberPage is one page of GET /users: members first, then pending
// invitations, Total counting both.
type MemberPage struct {
	Members     []steward.Member
	Invitations []steward.Invitation
	Total       int
	// AsOf is when the page was read (Service.ListMembers sets it), the
	// time the invitations' expiry is judged at.
	AsOf time.Time
}

// ListMembers returns page (from 1) of the Organization's members followed
// by its pending invitations, optionally only those of one email address.
func ListMembers(ctx context.Context, tx *store.Tx, orgID, email string, page, pageSize int) (MemberPage, error) {
	var res MemberPage
	// Members are counted and paged on organization_members alone, through
	// the (organization_id, created_at, user_id) index, and only the page
	// is joined with users; an email lookup goes through the users index.
	memberIDs := `SELECT m.user_id FROM organization_members m WHERE m.organization_id = ?`
	inviteWhere := "organization_id = ? AND accepted_at IS NULL AND revoked_at IS NULL"
	memberArgs, inviteArgs := []any{orgID}, []any{orgID}
	if email != "" {
		norm := strings.ToLower(strings.TrimSpace(email))
		memberIDs += " AND m.user_id = (SELECT id FROM users WHERE email_normalized = ?)"
		inviteWhere += " AND email_normalized = ?"
		memberArgs, inviteArgs = append(memberArgs, norm), append(inviteArgs, norm)
	}
	var members, invites int
	countQuery, countArgs := `SELECT member_count FROM organizations WHERE id = ?`, []any{orgID}
	if email != "" {
		countQuery, countArgs = `SELECT COUNT(*) FROM (`+memberIDs+`) page`, memberArgs
	}
	if err := tx.QueryRow(ctx, countQuery, countArgs...).Scan(&members); err != nil {
		return res, err
	}
	if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM invitations WHERE `+inviteWhere, inviteArgs...).Scan(&invites); err != nil {
		return res, err
	}
	res.Total = members + invites
	offset := (page - 1) * pageSize
	if offset < members {
		// An OFFSET steps over every row before the page; past the middle,
		// stepping back from the end is shorter.
		order, limit, skip := "ASC", pageSize, offset
		if offset > members/2 {
			order, limit, skip = "DESC", min(pageSize, members-offset), max(members-offset-pageSize, 0)
		}
		ids, err := tx.Strings(ctx, memberIDs+` ORDER BY m.created_at `+order+`, m.user_id `+order+` LIMIT ? OFFSET ?`, append(memberArgs, limit, skip)...)
		if err != nil {
			return res, err
		}
		if order == "DESC" {
			slices.Reverse(ids)
		}
		if res.Members, err = membersByID(ctx, tx, orgID, ids); err != nil {
			return res, err
		}
	}
	if n := pageSize - len(res.Members); n > 0 && offset+pageSize > members {
		inviteOffset := max(offset-members, 0)
		var err error
		res.Invitations, err = store.All(ctx, tx, `SELECT `+invitationColumns+` FROM invitations WHERE `+inviteWhere+`
			ORDER BY created_at, email_normalized, id LIMIT ? OFFSET ?`, append(inviteArgs, n, inviteOffset), scanInvitation)
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

// membersByID loads the members with these ids, in this order, with their
// roles and Workspaces.
func membersByID(ctx context.Context, tx *store.Tx, orgID string, ids []string) ([]steward.Member, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	if len(ids) > 1 && tx.Dialect() == store.Postgres {
		// After five runs PostgreSQL may plan a prepared statement once
		// for any values; with a page's ids in an IN list, that generic
		// plan reads every member's roles (a page of 10,000 members took
		// 110-240 ms instead of 30 ms). Plan these for their values.
		if _, err := tx.Exec(ctx, "SET LOCAL plan_cache_mode = force_custom_plan"); err != nil {
			return nil, err
		}
	}
	members, err := store.All(ctx, tx, `SELECT u.id, u.email, u.first_name, u.last_name, u.created_at, m.created_at, m.subscription_types, m.deactivated_at
		FROM organization_members m JOIN users u ON u.id = m.user_id
		WHERE m.organization_id = ? AND m.user_id IN (`+store.Placeholders(len(ids))+`)`, append([]any{orgID}, anys(ids)...), scanMember)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(members, func(a, b steward.Member) int {
		return slices.Index(ids, a.User.ID) - slices.Index(ids, b.User.ID)
	})
	return members, fillRoles(ctx, tx, orgID, members)
}

func scanMember(r store.Scanner) (steward.Member, error) {
	var m steward.Member
	var created, joined int64
	var seats string
	var deactivated sql.NullInt64
	if err := r.Scan(&m.User.ID, &m.User.Email, &m.User.FirstName, &m.User.LastName, &created, &joined, &seats, &deactivated); err != nil {
		return m, err
	}
	m.User.CreatedAt, m.JoinedAt, m.DeactivatedAt = store.Time(created), store.Time(joined), store.TimePtr(deactivated)
	var err error
	m.SubscriptionTypes, err = parseList(seats)
	return m, err
}

// fillRoles loads the direct Organization roles of the given members, and
// the Workspaces they belong to (directly or through a group) with their
// effective roles there.
func fillRoles(ctx context.Context, tx *store.Tx, orgID string, members []steward.Member) error {
	if len(members) == 0 {
		return nil
	}
	ids := make([]string, len(members))
	for i := range members {
		ids[i] = members[i].User.ID
	}
	g, err := LoadGraph(ctx, tx, orgID, ids...)
	if err != nil {
		return err
	}
	for i := range members {
		m := &members[i]
		m.RoleIDs = slices.Clone(g.OrganizationRoles[m.User.ID])
		slices.Sort(m.RoleIDs)
		m.Workspaces = g.MemberWorkspaces(m.User.ID)
	}
	return nil
}

// MemberEmails returns the addresses of those of ids who are members of
// the Organization, by id, in one query; ids that are not members are left
// out.
func MemberEmails(ctx context.Context, tx *store.Tx, orgID string, ids []string) (map[string]string, error) {
	out := map[string]string{}
	ids = slices.DeleteFunc(slices.Clone(ids), func(id string) bool { _, err := uuid.Parse(id); return err != nil })
	if len(ids) == 0 {
		return out, nil
	}
	err := tx.Each(ctx, `SELECT u.id, u.email FROM organization_members m JOIN users u ON u.id = m.user_id
		WHERE m.organization_id = ? AND m.user_id IN (`+store.Placeholders(len(ids))+`)`, append([]any{orgID}, anys(ids)...), func(rows *sql.Rows) error {
		var id, email string
		if err := rows.Scan(&id, &email); err != nil {
			return err
		}
		out[id] = email
		return nil
	})
	return out, err
}

// GetMember returns one member of the Organization with their roles and
// Workspaces, or a KindNotFound error.
func GetMember(ctx context.Context, tx *store.Tx, orgID, userID string) (steward.Member, error) {
	if _, err := uuid.Parse(userID); err != nil {
		return steward.Member{}, notMember(userID)
	}
	members, err := membersByID(ctx, tx, orgID, []string{userID})
	if err != nil {
		return steward.Member{}, err
	}
	if len(members) == 0 {
		return steward.Member{}, notMember(userID)
	}
	return members[0], nil
}

func notMember(userID string) error {
	return steward.Errorf(steward.KindNotFound, "user %s is not a member of this Organization", userID)
}

// NewMember is one entry of a bulk creation.
type NewMember struct {
	Email             string
	FirstName         string
	LastName          string
	Roles             RoleInput
	SubscriptionTypes []string
}

// CreateResult reports a bulk creation: the id of every address that is now
// a member (created, or already one), and the addresses that were refused.
type CreateResult struct {
	EmailToUserID map[string]string
	InvalidEmails []string
}

// CreateMembers adds people to the Organization directly, each with their
// roles and seats, joining the default Workspace. An invalid address, or
// one repeated in the batch, is reported in InvalidEmails and never fails
// the others; an address that is already a member is reported with its id
// and left unchanged. Invalid roles, names or seats fail the whole batch
// with a KindInvalid error naming each entry.
func CreateMembers(ctx context.Context, tx *store.Tx, actor steward.Actor, org steward.Organization, batch []NewMember) (CreateResult, error) {
	res := CreateResult{EmailToUserID: map[string]string{}, InvalidEmails: []string{}}
	if len(batch) > MaxBatch {
		return res, steward.Invalid([]string{"body"}, "at most %d users can be created at once, not %d", MaxBatch, len(batch))
	}
	cat, err := LoadCatalog(ctx, tx, org.ID)
	if err != nil {
		return res, err
	}
	type prepared struct {
		NewMember
		display, normalized string
		roleIDs             []string
	}
	var todo []prepared
	var errs []*steward.Error
	seen := map[string]bool{}
	for i, m := range batch {
		at := []string{"body", strconv.Itoa(i)}
		display, normalized, err := NormalizeEmail(append(at, "email"), m.Email)
		if err != nil || seen[normalized] {
			res.InvalidEmails = append(res.InvalidEmails, m.Email)
			continue
		}
		seen[normalized] = true
		roleIDs, err := cat.Resolve(steward.ScopeOrganization, m.Roles, at)
		if err != nil {
			errs = append(errs, asInvalid(err)...)
		}
		if e := checkPersonName(append(at, "first_name"), m.FirstName); e != nil {
			errs = append(errs, e)
		}
		if e := checkPersonName(append(at, "last_name"), m.LastName); e != nil {
			errs = append(errs, e)
		}
		seats, e := checkSeats(append(at, "subscription_types"), m.SubscriptionTypes)
		if e != nil {
			errs = append(errs, e)
		}
		m.SubscriptionTypes = seats
		todo = append(todo, prepared{NewMember: m, display: display, normalized: normalized, roleIDs: roleIDs})
	}
	if err := steward.Invalids(errs); err != nil {
		return res, err
	}
	def, err := DefaultWorkspace(ctx, tx, org.ID)
	if err != nil {
		return res, err
	}
	people := make([]person, len(todo))
	for i, p := range todo {
		people[i] = person{display: p.display, normalized: p.normalized, first: p.FirstName, last: p.LastName}
	}
	users, created, err := ensureUsers(ctx, tx, people)
	if err != nil {
		return res, err
	}
	// A user created just now is no one's member yet.
	var existing []string
	for _, p := range todo {
		id := users[p.normalized].ID
		res.EmailToUserID[p.display] = id
		if !created[id] {
			existing = append(existing, id)
		}
	}
	members, err := memberSet(ctx, tx, org.ID, existing)
	if err != nil {
		return res, err
	}
	var joins []membership
	var entries []audit.Entry
	for _, p := range todo {
		u := users[p.normalized]
		if members[u.ID] {
			continue
		}
		joins = append(joins, membership{userID: u.ID, roleIDs: p.roleIDs, seats: p.SubscriptionTypes})
		meta := map[string]string{"roles": roleNames(cat, p.roleIDs), "subscription_types": strings.Join(p.SubscriptionTypes, ",")}
		if !created[u.ID] {
			meta["existing_user"] = "true"
		}
		entries = append(entries, userEntry(actor, org, audit.EventUserCreate, u, meta))
	}
	if err := addMembers(ctx, tx, org.ID, joins, def.ID, defaultWorkspaceRoles); err != nil {
		return res, err
	}
	return res, audit.RecordBatch(ctx, tx, entries)
}

// defaultWorkspaceRoles are the roles a new member gets in the default
// Workspace.
var defaultWorkspaceRoles = []string{steward.RoleIDWorkspaceContributor}

// asInvalid flattens a validation error and its companions into a list.
func asInvalid(err error) []*steward.Error {
	var e *steward.Error
	if errors.As(err, &e) && e.Kind == steward.KindInvalid {
		out := append([]*steward.Error{e}, e.Also...)
		e.Also = nil
		return out
	}
	return []*steward.Error{steward.Internal(err)}
}

func checkPersonName(field []string, name string) *steward.Error {
	if len(name) > maxPersonName {
		return steward.Invalid(field, "%s must be at most %d bytes", field[len(field)-1], maxPersonName)
	}
	return nil
}

// checkSeats validates product seats and returns them deduplicated.
func checkSeats(field []string, seats []string) ([]string, *steward.Error) {
	out := []string{}
	for _, s := range seats {
		if !slices.Contains(steward.SubscriptionTypes, s) {
			return nil, steward.Invalid(field, "%q is not a product seat: want one of %s", s, strings.Join(steward.SubscriptionTypes, ", "))
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out, nil
}

// roleNames renders role ids as names for audit metadata.
func roleNames(cat *Catalog, ids []string) string {
	names := make([]string, len(ids))
	for i, id := range ids {
		names[i] = id
		if r, ok := cat.Role(id); ok {
			names[i] = r.Name
		}
	}
	return strings.Join(names, ",")
}

// person is someone to find or create by address.
type person struct{ display, normalized, first, last string }

// ensureUsers returns the users with these addresses by normalized address,
// creating those that do not exist, and the set of ids it created.
func ensureUsers(ctx context.Context, tx *store.Tx, people []person) (map[string]steward.User, map[string]bool, error) {
	users := map[string]steward.User{}
	created := map[string]bool{}
	var rest []string
	for start := 0; start < len(people); start += MaxBatch {
		part := people[start:min(start+MaxBatch, len(people))]
		fresh := map[string]steward.User{}
		args := make([]any, 0, 6*len(part))
		for _, p := range part {
			if _, dup := fresh[p.normalized]; dup {
				continue
			}
			u := steward.User{ID: uuid.NewString(), Email: p.display, FirstName: p.first, LastName: p.last, CreatedAt: tx.Now}
			fresh[p.normalized] = u
			args = append(args, u.ID, p.display, p.normalized, p.first, p.last, store.Micros(tx.Now))
		}
		inserted, err := tx.Strings(ctx, `INSERT INTO users (id, email, email_normalized, first_name, last_name, created_at) VALUES `+
			strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, ?, ?), ", len(fresh)), ", ")+
			` ON CONFLICT (email_normalized) DO NOTHING RETURNING email_normalized`, args...)
		if err != nil {
			return nil, nil, err
		}
		for _, norm := range inserted {
			users[norm] = fresh[norm]
			created[fresh[norm].ID] = true
		}
		for _, p := range part {
			if _, ok := users[p.normalized]; !ok {
				rest = append(rest, p.normalized)
			}
		}
	}
	for start := 0; start < len(rest); start += MaxBatch {
		part := rest[start:min(start+MaxBatch, len(rest))]
		q, err := tx.Query(ctx, `SELECT id, email, email_normalized, first_name, last_name, created_at FROM users
			WHERE email_normalized IN (`+store.Placeholders(len(part))+`)`, anys(part)...)
		if err != nil {
			return nil, nil, err
		}
		for q.Next() {
			var u steward.User
			var norm string
			var at int64
			if err := q.Scan(&u.ID, &u.Email, &norm, &u.FirstName, &u.LastName, &at); err != nil {
				q.Close()
				return nil, nil, err
			}
			u.CreatedAt = store.Time(at)
			users[norm] = u
		}
		q.Close()
		if err := q.Err(); err != nil {
			return nil, nil, err
		}
	}
	return users, created, nil
}

// ensureUser returns the user with this address, creating it (and saying
// so) if there is none.
func ensureUser(ctx context.Context, tx *store.Tx, display, normalized, first, last string) (steward.User, bool, error) {
	users, created, err := ensureUsers(ctx, tx, []person{{display, normalized, first, last}})
	if err != nil {
		return steward.User{}, false, err
	}
	u := users[normalized]
	return u, created[u.ID], nil
}

// memberSet returns which of the users are members of the Organization.
func memberSet(ctx context.Context, tx *store.Tx, orgID string, userIDs []string) (map[string]bool, error) {
	set := map[string]bool{}
	for start := 0; start < len(userIDs); start += MaxBatch {
		part := userIDs[start:min(start+MaxBatch, len(userIDs))]
		ids, err := tx.Strings(ctx, `SELECT user_id FROM organization_members WHERE organization_id = ? AND user_id IN (`+store.Placeholders(len(part))+`)`,
			append([]any{orgID}, anys(part)...)...)
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			set[id] = true
		}
	}
	return set, nil
}

func isMember(ctx context.Context, tx *store.Tx, orgID, userID string) (bool, error) {
	var n int
	err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM organization_members WHERE organization_id = ? AND user_id = ?`, orgID, userID).Scan(&n)
	return n > 0, err
}

// membership is one new member of an Organization.
type membership struct {
	userID         string
	roleIDs, seats []string
}

// addMembers inserts memberships with their roles, and adds each new member
// to the default Workspace with the given Workspace roles.
func addMembers(ctx context.Context, tx *store.Tx, orgID string, joins []membership, defaultWorkspaceID string, workspaceRoleIDs []string) error {
	if len(joins) == 0 {
		return nil
	}
	now := store.Micros(tx.Now)
	var members, roles [][]any
	userIDs := make([]string, len(joins))
	for i, j := range joins {
		userIDs[i] = j.userID
		members = append(members, []any{orgID, j.userID, now, jsonList(j.seats)})
		for _, r := range j.roleIDs {
			roles = append(roles, []any{orgID, j.userID, r})
		}
	}
	if err := tx.InsertMany(ctx, "organization_members", []string{"organization_id", "user_id", "created_at", "subscription_types"}, members, ""); err != nil {
		return err
	}
	if err := tx.InsertMany(ctx, "organization_member_roles", []string{"organization_id", "user_id", "role_id"}, roles, ""); err != nil {
		return err
	}
	joined, err := joinWorkspace(ctx, tx, orgID, defaultWorkspaceID, userIDs, workspaceRoleIDs)
	if err != nil {
		return err
	}
	// Every new member of the Organization updates these two rows, and
	// waits for the transaction that updated them last to end: they are
	// updated at commit, so that they stay locked for the commit only (on
	// PostgreSQL in one statement, a data-modifying WITH).
	tx.BeforeCommit(func(ctx context.Context) error {
		org := `UPDATE organizations SET member_count = member_count + ? WHERE id = ?`
		ws, args := `UPDATE workspaces SET member_count = member_count + ? WHERE id = ?`, []any{joined, defaultWorkspaceID, len(joins), orgID}
		if tx.Dialect() == store.Postgres {
			_, err := tx.Exec(ctx, `WITH ws AS (`+ws+`) `+org, args...)
			return err
		}
		if _, err := tx.Exec(ctx, ws, args[:2]...); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, org, args[2:]...)
		return err
	})
	return nil
}

// addMember adds one member; see addMembers.
func addMember(ctx context.Context, tx *store.Tx, orgID, userID string, roleIDs, seats []string, defaultWorkspaceID string, workspaceRoleIDs []string) error {
	return addMembers(ctx, tx, orgID, []membership{{userID, roleIDs, seats}}, defaultWorkspaceID, workspaceRoleIDs)
}

func userEntry(actor steward.Actor, org steward.Organization, event string, u steward.User, meta map[string]string) audit.Entry {
	return audit.Entry{
		EnterpriseAccountID: org.EnterpriseAccountID,
		OrganizationID:      org.ID,
		Actor:               actor,
		EventType:           event,
		EventMetadata:       meta,
		TargetType:          audit.TargetUser,
		TargetMetadata:      map[string]string{"id": u.ID, "email": u.Email},
	}
}

func recordUser(ctx context.Context, tx *store.Tx, actor steward.Actor, org steward.Organization, event string, u steward.User, meta map[string]string) error {
	return audit.Record(ctx, tx, userEntry(actor, org, event, u, meta))
}

// MemberUpdate changes a member's roles or seats; nil fields stay.
type MemberUpdate struct {
	Roles             RoleInput
	SubscriptionTypes *[]string
}

// UpdateMember changes a member's Organization roles and seats, and audits
// each change with before and after values. Demoting the last
// organization_admin fails with KindConflict.
func UpdateMember(ctx context.Context, tx *store.Tx, actor steward.Actor, org steward.Organization, userID string, up MemberUpdate) (steward.Member, error) {
	m, err := GetMember(ctx, tx, org.ID, userID)
	if err != nil {
		return m, err
	}
	cat, err := LoadCatalog(ctx, tx, org.ID)
	if err != nil {
		return m, err
	}
	if up.Roles.Given() {
		roleIDs, err := cat.Resolve(steward.ScopeOrganization, up.Roles, []string{"body"})
		if err != nil {
			return m, err
		}
		if err := setRoles(ctx, tx, actor, org, cat, m, roleIDs); err != nil {
			return m, err
		}
	}
	if up.SubscriptionTypes != nil {
		seats, verr := checkSeats([]string{"body", "subscription_types"}, *up.SubscriptionTypes)
		if verr != nil {
			return m, verr
		}
		if err := setSeats(ctx, tx, actor, org, m, seats); err != nil {
			return m, err
		}
	}
	return GetMember(ctx, tx, org.ID, userID)
}

func setRoles(ctx context.Context, tx *store.Tx, actor steward.Actor, org steward.Organization, cat *Catalog, m steward.Member, roleIDs []string) error {
	before := slices.Clone(m.RoleIDs)
	slices.Sort(before)
	after := slices.Clone(roleIDs)
	slices.Sort(after)
	if slices.Equal(before, after) {
		return nil
	}
	if slices.Contains(before, steward.RoleIDOrganizationAdmin) && !slices.Contains(after, steward.RoleIDOrganizationAdmin) {
		if err := requireAnotherAdmin(ctx, tx, org.ID, m.User.ID, "demoted"); err != nil {
			return err
		}
	}
	if _, err := tx.Exec(ctx, `DELETE FROM organization_member_roles WHERE organization_id = ? AND user_id = ?`, org.ID, m.User.ID); err != nil {
		return err
	}
	for _, r := range roleIDs {
		if _, err := tx.Exec(ctx, `INSERT INTO organization_member_roles (organization_id, user_id, role_id) VALUES (?, ?, ?)`, org.ID, m.User.ID, r); err != nil {
			return err
		}
	}
	accessChanged(tx, org.ID)
	return recordUser(ctx, tx, actor, org, audit.EventUserRoleUpdate, m.User, map[string]string{
		"roles_before": roleNames(cat, m.RoleIDs),
		"roles_after":  roleNames(cat, roleIDs),
	})
}

func setSeats(ctx context.Context, tx *store.Tx, actor steward.Actor, org steward.Organization, m steward.Member, seats []string) error {
	if _, err := tx.Exec(ctx, `UPDATE organization_members SET subscription_types = ? WHERE organization_id = ? AND user_id = ?`,
		jsonList(seats), org.ID, m.User.ID); err != nil {
		return err
	}
	for _, s := range seats {
		if !slices.Contains(m.SubscriptionTypes, s) {
			if err := recordUser(ctx, tx, actor, org, audit.EventSeatGrant, m.User, map[string]string{"subscription_type": s}); err != nil {
				return err
			}
		}
	}
	for _, s := range m.SubscriptionTypes {
		if !slices.Contains(seats, s) {
			if err := recordUser(ctx, tx, actor, org, audit.EventSeatRevoke, m.User, map[string]string{"subscription_type": s}); err != nil {
				return err
			}
		}
	}
	return nil
}

// requireAnotherAdmin fails with KindConflict unless the Organization has an
// organization_admin other than userID.
func requireAnotherAdmin(ctx context.Context, tx *store.Tx, orgID, userID, what string) error {
	var others int
	if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM organization_member_roles WHERE organization_id = ? AND role_id = ? AND user_id <> ?`,
		orgID, steward.RoleIDOrganizationAdmin, userID).Scan(&others); err != nil {
		return err
	}
	if others == 0 {
		return &steward.Error{Kind: steward.KindConflict, Code: "last_admin",
			Message: "this member is the Organization's last organization_admin and cannot be " + what + ": make another member an organization_admin first"}
	}
	return nil
}

// RemoveMember takes a member out of the Organization and every one of its
// Workspaces, and audits it. Removing the last organization_admin fails
// with KindConflict. The user record stays, for other Organizations and for
// the history.
func RemoveMember(ctx context.Context, tx *store.Tx, actor steward.Actor, org steward.Organization, userID string) error {
	m, err := GetMember(ctx, tx, org.ID, userID)
	if err != nil {
		return err
	}
	if slices.Contains(m.RoleIDs, steward.RoleIDOrganizationAdmin) {
		if err := requireAnotherAdmin(ctx, tx, org.ID, userID, "removed"); err != nil {
			return err
		}
	}
	for _, q := range []string{
		`UPDATE workspaces SET member_count = member_count - 1
			WHERE id IN (SELECT workspace_id FROM workspace_members WHERE user_id = ?) AND organization_id = ?`,
		`DELETE FROM user_group_members WHERE user_id = ? AND group_id IN (SELECT id FROM user_groups WHERE organization_id = ?)`,
		`DELETE FROM workspace_member_roles WHERE user_id = ? AND workspace_id IN (SELECT id FROM workspaces WHERE organization_id = ?)`,
		`DELETE FROM workspace_members WHERE user_id = ? AND workspace_id IN (SELECT id FROM workspaces WHERE organization_id = ?)`,
		`DELETE FROM organization_member_roles WHERE user_id = ? AND organization_id = ?`,
		`DELETE FROM organization_members WHERE user_id = ? AND organization_id = ?`,
	} {
		if _, err := tx.Exec(ctx, q, userID, org.ID); err != nil {
			return err
		}
	}
	if _, err := tx.Exec(ctx, `UPDATE organizations SET member_count = member_count - 1 WHERE id = ?`, org.ID); err != nil {
		return err
	}
	accessChanged(tx, org.ID)
	return recordUser(ctx, tx, actor, org, audit.EventUserDelete, m.User, nil)
}

// DefaultWorkspace returns the Organization's default Workspace.
func DefaultWorkspace(ctx context.Context, tx *store.Tx, orgID string) (steward.Workspace, error) {
	var ws steward.Workspace
	var created int64
	err := tx.QueryRow(ctx, `SELECT id, organization_id, name, created_at FROM workspaces WHERE organization_id = ? AND is_default`, orgID).
		Scan(&ws.ID, &ws.OrganizationID, &ws.Name, &created)
	ws.IsDefault, ws.CreatedAt = true, store.Time(created)
	return ws, err
}

// GetOrganization returns an Organization, or a KindNotFound error.
func GetOrganization(ctx context.Context, tx *store.Tx, orgID string) (steward.Organization, error) {
	var o steward.Organization
	var created int64
	err := tx.QueryRow(ctx, `SELECT id, enterprise_account_id, name, created_at FROM organizations WHERE id = ?`, orgID).
		Scan(&o.ID, &o.EnterpriseAccountID, &o.Name, &created)
	o.CreatedAt = store.Time(created)
	return o, err
}
