package scim

import (
	"context"
	"database/sql"
	"net/http"
	"strings"

	"github.com/stewardhq/steward/internal/scim/filter"
	"github.com/stewardhq/steward/internal/store"
)

// listQuery is what a list request (GET /Users, GET /Groups) asks for: its
// page, and its filter as an SQL condition over the Organization's rows.
type listQuery struct {
	start, count int
	where        string
	args         []any
}

// readListQuery reads a list request's startIndex, count and filter, which
// is compiled over cols.
func readListQuery(r *http.Request, orgID string, cols map[string]column) (listQuery, error) {
	q := listQuery{args: []any{orgID}}
	var err error
	if q.start, q.count, err = page(r); err != nil {
		return q, err
	}
	if f := r.URL.Query().Get("filter"); f != "" {
		e, err := filter.Parse(f)
		if err != nil {
			return q, err
		}
		cond, args, err := compile(e, cols)
		if err != nil {
			return q, err
		}
		q.where, q.args = " AND "+cond, append(q.args, args...)
	}
	return q, nil
}

// readPage counts the rows that match q, and reads q's page of them, in
// order, with selectSQL and scan. selectSQL reads its rows from (which
// ends with the Organization's condition).
func readPage[T any](ctx context.Context, tx *store.Tx, q listQuery, selectSQL, from, order string, scan func(scanner) (T, error)) (int, []T, error) {
	var total int
	if err := tx.QueryRow(ctx, `SELECT COUNT(*) `+from+q.where, q.args...).Scan(&total); err != nil || q.count == 0 {
		return total, nil, err
	}
	var items []T
	err := tx.Each(ctx, selectSQL+q.where+` ORDER BY `+order+` LIMIT ? OFFSET ?`, append(q.args, q.count, q.start-1), func(sc *sql.Rows) error {
		item, err := scan(sc)
		items = append(items, item)
		return err
	})
	return total, items, err
}

// writeList answers a list request with its page of items, each rendered
// by resource.
func writeList[T any](w http.ResponseWriter, q listQuery, total int, items []T, resource func(*T) any) {
	out := listResponse{Schemas: []string{schemaListResponse}, TotalResults: total, StartIndex: q.start, ItemsPerPage: len(items), Resources: []any{}}
	for i := range items {
		out.Resources = append(out.Resources, resource(&items[i]))
	}
	writeJSON(w, http.StatusOK, out)
}

// column says how a filter compares one attribute in SQL.
type column struct {
	expr string
	kind int
}

const (
	colText      = iota // compared ignoring case
	colLowered          // stored lower-cased (and indexed so): compared ignoring case
	colExact            // compared exactly (ids, externalId)
	colBool             // true or false
	colConstText        // a constant, such as emails.type "work"
	colMember           // a group's member ids: eq only
)

// userAddress is a user's address as its resource shows it: the primary
// email, or userName when it was sent without one (user.address).
const userAddress = "CASE WHEN u.email = '' THEN u.user_name ELSE u.email END"

// userColumns and groupColumns are the attributes filters may compare, by
// lower-cased name; a value path (emails[...]) reaches its sub-attributes as
// "emails.value" and so on.
var userColumns = map[string]column{
	"id":              {"u.user_id", colExact},
	"username":        {"u.user_name_lower", colLowered},
	"externalid":      {"u.external_id", colExact},
	"displayname":     {"u.display_name", colText},
	"name.givenname":  {"u.given_name", colText},
	"name.familyname": {"u.family_name", colText},
	"emails":          {userAddress, colText},
	"emails.value":    {userAddress, colText},
	"emails.type":     {"'work'", colConstText},
	"emails.primary":  {"TRUE", colBool},
	"active":          {"u.active", colBool},
}

var groupColumns = map[string]column{
	"id":            {"g.group_id", colExact},
	"displayname":   {"g.display_name_lower", colLowered},
	"externalid":    {"g.external_id", colExact},
	"members":       {"g.group_id", colMember},
	"members.value": {"g.group_id", colMember},
}

// compile turns a filter into an SQL condition over the columns, with its
// arguments; an attribute or comparison it cannot answer is an error that
// names it.
func compile(e filter.Expr, cols map[string]column) (string, []any, error) {
	switch x := e.(type) {
	case filter.Logical:
		l, la, err := compile(x.Left, cols)
		if err != nil {
			return "", nil, err
		}
		r, ra, err := compile(x.Right, cols)
		if err != nil {
			return "", nil, err
		}
		return "(" + l + " " + strings.ToUpper(x.Op) + " " + r + ")", append(la, ra...), nil
	case filter.Not:
		s, a, err := compile(x.X, cols)
		if err != nil {
			return "", nil, err
		}
		return "NOT (" + s + ")", a, nil
	case filter.ValuePath:
		return compile(prefixAttrs(x.Filter, x.Attr+"."), cols)
	case filter.Compare:
		return compileCompare(x, cols)
	}
	return "", nil, filter.Errorf("unsupported filter")
}

// prefixAttrs rewrites the attributes inside a value path's filter as
// sub-attributes of the path's attribute.
func prefixAttrs(e filter.Expr, prefix string) filter.Expr {
	switch x := e.(type) {
	case filter.Logical:
		return filter.Logical{Op: x.Op, Left: prefixAttrs(x.Left, prefix), Right: prefixAttrs(x.Right, prefix)}
	case filter.Not:
		return filter.Not{X: prefixAttrs(x.X, prefix)}
	case filter.Compare:
		x.Attr = prefix + x.Attr
		return x
	case filter.ValuePath:
		return filter.ValuePath{Attr: prefix + x.Attr, Filter: x.Filter}
	}
	return e
}

func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

func compileCompare(c filter.Compare, cols map[string]column) (string, []any, error) {
	col, ok := cols[c.Attr]
	if !ok {
		return "", nil, filter.Errorf("filtering on %q is not supported", c.Attr)
	}
	if c.Op == "pr" || (c.Value == nil && (c.Op == "eq" || c.Op == "ne")) {
		present := "(" + col.expr + " IS NOT NULL"
		if col.kind == colText || col.kind == colLowered || col.kind == colExact {
			present += " AND " + col.expr + " <> ''"
		}
		present += ")"
		if col.kind == colMember {
			present = "EXISTS (SELECT 1 FROM scim_group_members m WHERE m.group_id = g.group_id)"
		}
		if c.Op == "eq" {
			return "NOT " + present, nil, nil
		}
		return present, nil, nil
	}
	switch col.kind {
	case colBool:
		b, ok := c.Value.(bool)
		if !ok || (c.Op != "eq" && c.Op != "ne") {
			return "", nil, filter.Errorf("%s is a boolean: compare it with eq or ne and true or false", c.Attr)
		}
		op := "="
		if c.Op == "ne" {
			op = "<>"
		}
		return col.expr + " " + op + " ?", []any{b}, nil
	case colMember:
		s, ok := c.Value.(string)
		if !ok || c.Op != "eq" {
			return "", nil, filter.Errorf("%s can only be compared with eq and a member id", c.Attr)
		}
		return "EXISTS (SELECT 1 FROM scim_group_members m WHERE m.group_id = g.group_id AND m.user_id = ?)", []any{s}, nil
	}
	s, ok := c.Value.(string)
	if !ok {
		return "", nil, filter.Errorf("%s is a string: compare it with a value in double quotes", c.Attr)
	}
	expr := col.expr
	switch col.kind {
	case colText, colConstText:
		expr, s = "lower("+col.expr+")", strings.ToLower(s)
	case colLowered:
		s = strings.ToLower(s)
	}
	switch c.Op {
	case "eq":
		return expr + " = ?", []any{s}, nil
	case "ne":
		return "(" + col.expr + " IS NULL OR " + expr + " <> ?)", []any{s}, nil
	case "co":
		return expr + ` LIKE ? ESCAPE '\'`, []any{"%" + likeEscape(s) + "%"}, nil
	case "sw":
		return expr + ` LIKE ? ESCAPE '\'`, []any{likeEscape(s) + "%"}, nil
	case "ew":
		return expr + ` LIKE ? ESCAPE '\'`, []any{"%" + likeEscape(s)}, nil
	case "gt":
		return expr + " > ?", []any{s}, nil
	case "ge":
		return expr + " >= ?", []any{s}, nil
	case "lt":
		return expr + " < ?", []any{s}, nil
	case "le":
		return expr + " <= ?", []any{s}, nil
	}
	return "", nil, filter.Errorf("unsupported operator %q", c.Op)
}
