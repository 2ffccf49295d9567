package directory

import (
	"context"
	"database/sql"
	"slices"
	"strings"
	"time"

	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

// MaxSearch bounds the members one search returns.
const MaxSearch = 100

// SearchMembers returns the members whose address, first name or last name
// holds query, ignoring case, by address: at most limit (clamped to
// MaxSearch) of them.
func SearchMembers(ctx context.Context, tx *store.Tx, orgID, query string, limit int) ([]steward.Member, error) {
	like := likePattern(strings.TrimSpace(query))
	ids, err := tx.Strings(ctx, `SELECT u.id FROM organization_members m JOIN users u ON u.id = m.user_id
		WHERE m.organization_id = ? AND (u.email_normalized LIKE ? ESCAPE '\' OR LOWER(u.first_name) LIKE ? ESCAPE '\' OR LOWER(u.last_name) LIKE ? ESCAPE '\'
		OR LOWER(u.first_name || ' ' || u.last_name) LIKE ? ESCAPE '\')
		ORDER BY u.email_normalized, u.id LIMIT ?`, orgID, like, like, like, like, min(max(limit, 1), MaxSearch))
	if err != nil {
		return nil, err
	}
	members, err := membersByID(ctx, tx, orgID, ids)
	slices.SortFunc(members, func(a, b steward.Member) int { return slices.Index(ids, a.User.ID) - slices.Index(ids, b.User.ID) })
	return members, err
}

// LastActive returns, for those of userIDs that Steward has seen active in
// the Organization, when they last were: the latest of their sessions' last
// request (of the sessions not yet ended) and of their keys' last use there.
func LastActive(ctx context.Context, tx *store.Tx, orgID string, userIDs []string) (map[string]time.Time, error) {
	out := map[string]time.Time{}
	if len(userIDs) == 0 {
		return out, nil
	}
	in := store.Placeholders(len(userIDs))
	later := func(r *sql.Rows) error {
		var u string
		var at sql.NullInt64
		if err := r.Scan(&u, &at); err != nil {
			return err
		}
		if t := store.Time(at.Int64); at.Valid && t.After(out[u]) {
			out[u] = t
		}
		return nil
	}
	if err := tx.Each(ctx, `SELECT user_id, MAX(last_seen_at) FROM web_sessions WHERE user_id IN (`+in+`) GROUP BY user_id`, anys(userIDs), later); err != nil {
		return nil, err
	}
	err := tx.Each(ctx, `SELECT user_id, MAX(last_used_at) FROM api_keys WHERE organization_id = ? AND user_id IN (`+in+`) GROUP BY user_id`,
		append([]any{orgID}, anys(userIDs)...), later)
	return out, err
}

// SearchMembers returns the members whose address or name holds query.
func (s *Service) SearchMembers(ctx context.Context, orgID, query string, limit int) ([]steward.Member, error) {
	return store.Read(ctx, s.db, func(tx *store.Tx) ([]steward.Member, error) { return SearchMembers(ctx, tx, orgID, query, limit) })
}

// LastActive returns when each of userIDs was last active in the
// Organization, for those Steward has seen.
func (s *Service) LastActive(ctx context.Context, orgID string, userIDs []string) (map[string]time.Time, error) {
	return store.Read(ctx, s.db, func(tx *store.Tx) (map[string]time.Time, error) { return LastActive(ctx, tx, orgID, userIDs) })
}
