package usage

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

// Bucket is the width of a report's time buckets.
type Bucket string

// Buckets are UTC hours and UTC days.
const (
	Hour Bucket = "hour"
	Day  Bucket = "day"
)

// The dimensions a report may be grouped by.
const (
	GroupWorkspace = "workspace"
	GroupKey       = "key"
	GroupUser      = "user"
	GroupModel     = "model"
)

// groupColumns maps each dimension to its column, in the one order reports
// use whatever order the caller gives.
var groupColumns = []struct{ name, column string }{
	{GroupWorkspace, "workspace_id"},
	{GroupKey, "key_id"},
	{GroupUser, "user_id"},
	{GroupModel, "model"},
}

// Bounds on what one read may return, so that no request can make the
// database or the server build an unbounded answer.
const (
	MaxBuckets = 10000
	MaxRows    = 100000
)

// Totals are the counters of a set of requests.
type Totals struct {
	Requests          int64
	InputTokens       int64
	OutputTokens      int64
	Cost              int64
	EstimatedRequests int64
}

const totalsSelect = "CAST(SUM(requests) AS BIGINT), CAST(SUM(input_tokens) AS BIGINT), CAST(SUM(output_tokens) AS BIGINT), CAST(SUM(cost) AS BIGINT), CAST(SUM(estimated_requests) AS BIGINT)"

func (t *Totals) dest() []any {
	return []any{&t.Requests, &t.InputTokens, &t.OutputTokens, &t.Cost, &t.EstimatedRequests}
}

func (t *Totals) add(o Totals) {
	t.Requests += o.Requests
	t.InputTokens += o.InputTokens
	t.OutputTokens += o.OutputTokens
	t.Cost += o.Cost
	t.EstimatedRequests += o.EstimatedRequests
}

// DayModel is one model's usage on one day.
type DayModel struct {
	// Day is the day's midnight in the location asked for.
	Day   time.Time
	Model string
	Totals
}

// MonthByModelDay returns the usage of an Organization (of one of its
// Workspaces, when workspaceID is set) per model and per day of the month
// holding month, with days and the month taken in loc (UTC when nil). Days
// without usage are left out; rows are ordered by day, then model.
//
// When every day of the month starts on a UTC midnight (in UTC, and in
// zones such as Europe/London in winter) the answer is read from the daily
// rollup. Otherwise it is assembled from the hourly rollup, each UTC hour
// counted in the local day in which it starts: exact for zones whose offset
// is a whole number of hours, and off by at most the part of an hour that
// straddles a local midnight for the others.
func MonthByModelDay(ctx context.Context, tx *store.Tx, orgID, workspaceID string, month time.Time, loc *time.Location) ([]DayModel, error) {
	if loc == nil {
		loc = time.UTC
	}
	local := month.In(loc)
	start := time.Date(local.Year(), local.Month(), 1, 0, 0, 0, 0, loc)
	end := start.AddDate(0, 1, 0)
	table := "usage_daily"
	for d := start; d.Before(end); d = d.AddDate(0, 0, 1) {
		if !d.Equal(d.Truncate(day)) {
			table = "usage_hourly"
			break
		}
	}
	q := "SELECT bucket_start, model, " + totalsSelect + " FROM " + table +
		" WHERE organization_id = ? AND bucket_start >= ? AND bucket_start < ?"
	args := []any{orgID, store.Micros(start), store.Micros(end)}
	if workspaceID != "" {
		q += " AND workspace_id = ?"
		args = append(args, workspaceID)
	}
	q += " GROUP BY bucket_start, model"
	rows, err := tx.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	type dayModel struct {
		day   int64
		model string
	}
	byDay := map[dayModel]*DayModel{}
	for rows.Next() {
		var bucket int64
		var model string
		var t Totals
		if err := rows.Scan(append([]any{&bucket, &model}, t.dest()...)...); err != nil {
			return nil, err
		}
		b := store.Time(bucket).In(loc)
		d := time.Date(b.Year(), b.Month(), b.Day(), 0, 0, 0, 0, loc)
		k := dayModel{d.Unix(), model}
		dm := byDay[k]
		if dm == nil {
			dm = &DayModel{Day: d, Model: model}
			byDay[k] = dm
		}
		dm.add(t)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([]DayModel, 0, len(byDay))
	for _, dm := range byDay {
		out = append(out, *dm)
	}
	slices.SortFunc(out, func(a, b DayModel) int {
		if c := a.Day.Compare(b.Day); c != 0 {
			return c
		}
		return strings.Compare(a.Model, b.Model)
	})
	return out, nil
}

// Row is one line of a report: one bucket and one combination of the
// dimensions grouped by. A dimension not grouped by is empty.
type Row struct {
	Start       time.Time
	WorkspaceID string
	KeyID       string
	UserID      string
	Model       string
	Totals
}

// Report returns an Organization's usage per bucket from from to to, grouped
// by any of GroupWorkspace, GroupKey, GroupUser and GroupModel. from is
// rounded down to the start of its bucket, and a bucket counts when it
// starts before to; buckets are UTC hours or UTC days. Buckets and
// combinations without usage are left out; rows are ordered by bucket, then
// by the dimensions in the order workspace, key, user, model.
//
// A range of more than MaxBuckets buckets, an unknown or repeated dimension,
// and an answer of more than MaxRows rows are KindInvalid.
func Report(ctx context.Context, tx *store.Tx, orgID string, from, to time.Time, bucket Bucket, groupBy []string) ([]Row, error) {
	var size time.Duration
	var table string
	switch bucket {
	case Hour:
		size, table = hour, "usage_hourly"
	case Day:
		size, table = day, "usage_daily"
	default:
		return nil, steward.Invalid([]string{"bucket"}, "bucket must be %q or %q", Hour, Day)
	}
	from = from.Truncate(size)
	if !to.After(from) {
		return nil, steward.Invalid([]string{"to"}, "to must be after from")
	}
	// Sub saturates rather than overflows, so a range of centuries is
	// still refused.
	if to.Sub(from) > MaxBuckets*size {
		return nil, steward.Invalid([]string{"to"}, "the range holds more than %d %ss", MaxBuckets, bucket)
	}
	grouped := make([]bool, len(groupColumns))
	for _, g := range groupBy {
		i := slices.IndexFunc(groupColumns, func(c struct{ name, column string }) bool { return c.name == g })
		switch {
		case i < 0:
			return nil, steward.Invalid([]string{"group_by"}, "cannot group by %q: use workspace, key, user or model", g)
		case grouped[i]:
			return nil, steward.Invalid([]string{"group_by"}, "%q is given twice", g)
		}
		grouped[i] = true
	}
	cols := []string{"bucket_start"}
	for i, c := range groupColumns {
		if grouped[i] {
			cols = append(cols, c.column)
		}
	}
	list := strings.Join(cols, ", ")
	q := "SELECT " + list + ", " + totalsSelect + " FROM " + table +
		" WHERE organization_id = ? AND bucket_start >= ? AND bucket_start < ? GROUP BY " + list + " LIMIT ?"
	rows, err := tx.Query(ctx, q, orgID, store.Micros(from), store.Micros(to), MaxRows+1)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Row
	for rows.Next() {
		if len(out) == MaxRows {
			return nil, steward.Invalid([]string{"group_by"}, "the report would have more than %d rows: narrow the range or group by less", MaxRows)
		}
		var r Row
		var start int64
		dest := []any{&start}
		fields := []*string{&r.WorkspaceID, &r.KeyID, &r.UserID, &r.Model}
		for i := range groupColumns {
			if grouped[i] {
				dest = append(dest, fields[i])
			}
		}
		if err := rows.Scan(append(dest, r.dest()...)...); err != nil {
			return nil, err
		}
		r.Start = store.Time(start)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b Row) int {
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		for _, p := range [][2]string{{a.WorkspaceID, b.WorkspaceID}, {a.KeyID, b.KeyID}, {a.UserID, b.UserID}, {a.Model, b.Model}} {
			if c := strings.Compare(p[0], p[1]); c != 0 {
				return c
			}
		}
		return 0
	})
	return out, nil
}

// MonthSpend returns what an Organization (one of its Workspaces, when
// workspaceID is set) spent from start to end: the total cost and the
// tokens (input and output) per model. It reads the daily rollup when
// start and end are UTC midnights, and the hourly rollup otherwise, where
// an hour counts when it starts within the range. A range that is empty or
// longer than MaxBuckets buckets is KindInvalid.
func MonthSpend(ctx context.Context, tx *store.Tx, orgID, workspaceID string, start, end time.Time) (int64, map[string]int64, error) {
	if !end.After(start) {
		return 0, nil, steward.Invalid([]string{"end"}, "end must be after start")
	}
	table, size := "usage_daily", day
	if !start.Equal(start.Truncate(day)) || !end.Equal(end.Truncate(day)) {
		table, size = "usage_hourly", hour
	}
	if end.Sub(start) > MaxBuckets*size {
		return 0, nil, steward.Invalid([]string{"end"}, "the range is longer than %d buckets", MaxBuckets)
	}
	q := "SELECT model, CAST(SUM(cost) AS BIGINT), CAST(SUM(input_tokens) + SUM(output_tokens) AS BIGINT) FROM " + table +
		" WHERE organization_id = ? AND bucket_start >= ? AND bucket_start < ?"
	args := []any{orgID, store.Micros(start), store.Micros(end)}
	if workspaceID != "" {
		q += " AND workspace_id = ?"
		args = append(args, workspaceID)
	}
	rows, err := tx.Query(ctx, q+" GROUP BY model", args...)
	if err != nil {
		return 0, nil, err
	}
	defer rows.Close()
	var cost int64
	tokens := map[string]int64{}
	for rows.Next() {
		var model string
		var c, n int64
		if err := rows.Scan(&model, &c, &n); err != nil {
			return 0, nil, err
		}
		cost += c
		tokens[model] = n
	}
	if err := rows.Err(); err != nil {
		return 0, nil, err
	}
	return cost, tokens, nil
}
