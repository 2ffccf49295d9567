package usage

import (
	"context"
	"database/sql"
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
