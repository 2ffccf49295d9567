package server

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/steward"
)

// query reads query parameters, collecting every problem so that one 422
// names them all.
type query struct {
	values url.Values
	errs   []*steward.Error
}

func newQuery(r *http.Request) *query { return &query{values: r.URL.Query()} }

func (q *query) fail(name, format string, args ...any) {
	q.errs = append(q.errs, steward.Invalid([]string{"query", name}, format, args...))
}

// err returns nil, or one KindInvalid error listing every problem.
func (q *query) err() error {
	return steward.Invalids(q.errs)
}

// list returns the values of a repeated parameter, accepting both name=a&name=b
// and name[]=a&name[]=b.
func (q *query) list(name string) []string {
	return append(q.values[name], q.values[name+"[]"]...)
}

// enumList returns the values of a repeated parameter, each of which must be
// in allowed.
func (q *query) enumList(name string, allowed map[string]bool) []string {
	vals := q.list(name)
	for _, v := range vals {
		if !allowed[v] {
			q.fail(name, "%q is not a valid %s", v, name)
		}
	}
	return vals
}

func (q *query) optString(name string) *string {
	if !q.values.Has(name) {
		return nil
	}
	v := q.values.Get(name)
	return &v
}

// stringOr returns the parameter, def when absent.
func (q *query) stringOr(name, def string) string {
	if !q.values.Has(name) {
		return def
	}
	return q.values.Get(name)
}

// boolean returns a boolean parameter, def when absent, in the spellings
// FastAPI accepts.
func (q *query) boolean(name string, def bool) bool {
	if !q.values.Has(name) {
		return def
	}
	switch strings.ToLower(q.values.Get(name)) {
	case "true", "1", "yes", "on", "t", "y":
		return true
	case "false", "0", "no", "off", "f", "n":
		return false
	}
	q.fail(name, "%s must be true or false", name)
	return def
}

// oneOf returns the parameter, def when absent; it must be one of allowed.
func (q *query) oneOf(name, def string, allowed ...string) string {
	if !q.values.Has(name) {
		return def
	}
	v := q.values.Get(name)
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	q.fail(name, "%s must be one of %s, not %q", name, strings.Join(allowed, ", "), v)
	return def
}

// intRange returns an integer parameter, def when absent, that must lie in
// [lo, hi].
func (q *query) intRange(name string, def, lo, hi int) int {
	if !q.values.Has(name) {
		return def
	}
	v, err := strconv.Atoi(q.values.Get(name))
	switch {
	case err != nil:
		q.fail(name, "%s must be a whole number", name)
	case v < lo:
		q.fail(name, "%s must be at least %d", name, lo)
	case v > hi:
		q.fail(name, "%s must be at most %d: larger pages are not served", name, hi)
	default:
		return v
	}
	return def
}

// paging returns page (from 1) and page_size (25 by default, at most
// directory.MaxPageSize).
func (q *query) paging() (page, pageSize int) {
	return q.intRange("page", 1, 1, 1<<30), q.intRange("page_size", 25, 1, directory.MaxPageSize)
}

// timeLayouts are the date-time forms accepted: RFC 3339 with or without a
// zone (UTC when absent), and a bare date (midnight UTC).
var timeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02T15:04:05", "2006-01-02"}

func (q *query) optTime(name string) *time.Time {
	if !q.values.Has(name) {
		return nil
	}
	v := q.values.Get(name)
	// An unencoded "+01:00" arrives as " 01:00".
	for _, s := range []string{v, strings.Replace(v, " ", "+", 1)} {
		for _, layout := range timeLayouts {
			if t, err := time.Parse(layout, s); err == nil {
				return &t
			}
		}
	}
	q.fail(name, "%s must be a date-time such as 2026-01-31T12:00:00Z, not %q", name, v)
	return nil
}
