package usage

import (
	"context"
	"database/sql"
	"slices"
	"time"

	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

// CostByKey returns what each key of an Organization cost from from to to,
// in micro-units, read from the hourly rollup: each UTC hour that starts in
// the range counts whole. Keys that cost nothing are left out; usage
// without a key is under "". A range that is empty or longer than
// MaxBuckets hours is KindInvalid.
func CostByKey(ctx context.Context, tx *store.Tx, orgID string, from, to time.Time) (map[string]int64, error) {
	if !to.After(from) {
		return nil, steward.Invalid([]string{"to"}, "to must be after from")
	}
	if to.Sub(from) > MaxBuckets*hour {
		return nil, steward.Invalid([]string{"to"}, "the range is longer than %d hours", MaxBuckets)
	}
	out := map[string]int64{}
	err := tx.Each(ctx, `SELECT key_id, CAST(SUM(cost) AS BIGINT) FROM usage_hourly WHERE organization_id = ? AND bucket_start >= ? AND bucket_start < ?
		GROUP BY key_id`, []any{orgID, store.Micros(from), store.Micros(to)}, func(r *sql.Rows) error {
		var key string
		var cost int64
		if err := r.Scan(&key, &cost); err != nil {
			return err
		}
		if cost != 0 {
			out[key] = cost
		}
		return nil
	})
	return out, err
}

// CostByKey returns what each key of an Organization cost from from to to.
func (s *Service) CostByKey(ctx context.Context, orgID string, from, to time.Time) (map[string]int64, error) {
	return store.Read(ctx, s.db, func(tx *store.Tx) (map[string]int64, error) { return CostByKey(ctx, tx, orgID, from, to) })
}

// Top returns the n values of one dimension (GroupWorkspace, GroupKey,
// GroupUser or GroupModel) that cost most from from to to, each with its
// totals, most cost first (most requests first among equals, then by
// value), read from the hourly rollup: each UTC hour that starts in the
// range counts whole, so that a range of local days counts them. Rows carry
// no Start. Whatever the number of values, the answer holds n rows at most.
// A range that is empty or longer than MaxBuckets hours, an unknown
// dimension or n < 1 is KindInvalid.
func Top(ctx context.Context, tx *store.Tx, orgID string, from, to time.Time, group string, n int) ([]Row, error) {
	i := slices.IndexFunc(groupColumns, func(c struct{ name, column string }) bool { return c.name == group })
	switch {
	case i < 0:
		return nil, steward.Invalid([]string{"group_by"}, "cannot group by %q: use workspace, key, user or model", group)
	case n < 1:
		return nil, steward.Invalid([]string{"limit"}, "limit must be at least 1")
	case !to.After(from):
		return nil, steward.Invalid([]string{"to"}, "to must be after from")
	case to.Sub(from) > MaxBuckets*hour:
		return nil, steward.Invalid([]string{"to"}, "the range is longer than %d hours", MaxBuckets)
	}
	col := groupColumns[i].column
	return store.All(ctx, tx, `SELECT `+col+`, `+totalsSelect+` FROM usage_hourly
		WHERE organization_id = ? AND bucket_start >= ? AND bucket_start < ? GROUP BY `+col+`
		ORDER BY SUM(cost) DESC, SUM(requests) DESC, `+col+` LIMIT ?`,
		[]any{orgID, store.Micros(from), store.Micros(to), n}, func(rs store.Scanner) (Row, error) {
			var r Row
			value := []*string{&r.WorkspaceID, &r.KeyID, &r.UserID, &r.Model}[i]
			err := rs.Scan(append([]any{value}, r.Totals.dest()...)...)
			return r, err
		})
}

// Top returns the n values of one dimension that cost most from from to to.
func (s *Service) Top(ctx context.Context, orgID string, from, to time.Time, group string, n int) ([]Row, error) {
	return store.Read(ctx, s.db, func(tx *store.Tx) ([]Row, error) { return Top(ctx, tx, orgID, from, to, group, n) })
}
