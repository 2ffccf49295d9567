package usage

import (
	"context"
	"database/sql"
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
	// OverrunRequests are the requests that used more than they reserved.
	OverrunRequests int64
}

const totalsSelect = "CAST(SUM(requests) AS BIGINT), CAST(SUM(input_tokens) AS BIGINT), CAST(SUM(output_tokens) AS BIGINT), CAST(SUM(cost) AS BIGINT), " +
	"CAST(SUM(estimated_requests) AS BIGINT), CAST(SUM(overrun_requests) AS BIGINT)"

func (t *Totals) dest() []any {
	return []any{&t.Requests, &t.InputTokens, &t.OutputTokens, &t.Cost, &t.EstimatedRequests, &t.OverrunRequests}
}

// Add adds o's counters to t's.
func (t *Totals) Add(o Totals) {
	t.Requests += o.Requests
	t.InputTokens += o.InputTokens
	t.OutputTokens += o.OutputTokens
	t.Cost += o.Cost
	t.EstimatedRequests += o.EstimatedRequests
	t.OverrunRequests += o.OverrunRequests
}

// Month returns the calendar month holding t in loc: its first instant and
// the first instant of the next month.
func Month(t time.Time, loc *time.Location) (time.Time, time.Time) {
	y, m, _ := t.In(loc).Date()
	start := time.Date(y, m, 1, 0, 0, 0, 0, loc)
	return start, start.AddDate(0, 1, 0)
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
// counted in the local day in which it starts; in a zone whose offset is
// not a whole number of hours (Asia/Kolkata), the UTC hours that straddle a
// local midnight are read from the raw events instead, split at midnight,
// so that every day is exact.
func MonthByModelDay(ctx context.Context, tx *store.Tx, orgID, workspaceID string, month time.Time, loc *time.Location) ([]DayModel, error) {
	if loc == nil {
		loc = time.UTC
	}
	start, end := Month(month, loc)
	table := "usage_daily"
	// straddling holds the UTC hours that a local midnight cuts in two.
	straddling := map[int64]bool{}
	var midnights []time.Time
	for d := start; !d.After(end); d = d.AddDate(0, 0, 1) {
		if !d.Equal(d.Truncate(day)) {
			table = "usage_hourly"
		}
		if !d.Equal(d.Truncate(hour)) {
			midnights = append(midnights, d)
			straddling[store.Micros(d.Truncate(hour))] = true
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
	type dayModel struct {
		day   int64
		model string
	}
	byDay := map[dayModel]*DayModel{}
	add := func(at time.Time, model string, t Totals) {
		b := at.In(loc)
		d := time.Date(b.Year(), b.Month(), b.Day(), 0, 0, 0, 0, loc)
		k := dayModel{d.Unix(), model}
		dm := byDay[k]
		if dm == nil {
			dm = &DayModel{Day: d, Model: model}
			byDay[k] = dm
		}
		dm.Add(t)
	}
	err := tx.Each(ctx, q, args, func(r *sql.Rows) error {
		var bucket int64
		var model string
		var t Totals
		if err := r.Scan(append([]any{&bucket, &model}, t.dest()...)...); err != nil {
			return err
		}
		if !straddling[bucket] {
			add(store.Time(bucket), model, t)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, m := range midnights {
		// The part of the hour before midnight belongs to the day before,
		// unless it is before the month; the part after, to the new day,
		// unless it is after the month.
		parts := [][2]time.Time{{m.Truncate(hour), m}, {m, m.Truncate(hour).Add(hour)}}
		for i, part := range parts {
			if (i == 0 && m.Equal(start)) || (i == 1 && m.Equal(end)) {
				continue
			}
			raw, err := rawByModel(ctx, tx, orgID, workspaceID, part[0], part[1])
			if err != nil {
				return nil, err
			}
			for model, t := range raw {
				add(part[0], model, t)
			}
		}
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
	out, err := store.All(ctx, tx, q, []any{orgID, store.Micros(from), store.Micros(to), MaxRows + 1}, func(rs store.Scanner) (Row, error) {
		var r Row
		var start int64
		dest := []any{&start}
		fields := []*string{&r.WorkspaceID, &r.KeyID, &r.UserID, &r.Model}
		for i := range groupColumns {
			if grouped[i] {
				dest = append(dest, fields[i])
			}
		}
		err := rs.Scan(append(dest, r.dest()...)...)
		r.Start = store.Time(start)
		return r, err
	})
	if err != nil {
		return nil, err
	}
	if len(out) > MaxRows {
		return nil, steward.Invalid([]string{"group_by"}, "the report would have more than %d rows: narrow the range or group by less", MaxRows)
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
// tokens (input and output) per model. The whole UTC hours of the range are
// read from the rollups (the daily one when they are whole UTC days); the
// parts of an hour at either end, when start or end is not on a UTC hour
// (a month in Asia/Kolkata), from the raw events. A range that is empty or
// longer than MaxBuckets hours is KindInvalid.
func MonthSpend(ctx context.Context, tx *store.Tx, orgID, workspaceID string, start, end time.Time) (int64, map[string]int64, error) {
	if !end.After(start) {
		return 0, nil, steward.Invalid([]string{"end"}, "end must be after start")
	}
	if end.Sub(start) > MaxBuckets*hour {
		return 0, nil, steward.Invalid([]string{"end"}, "the range is longer than %d hours", MaxBuckets)
	}
	var cost int64
	tokens := map[string]int64{}
	sum := func(model string, t Totals) {
		cost += t.Cost
		tokens[model] += t.InputTokens + t.OutputTokens
	}
	// [first, last) are the whole hours of the range.
	first, last := start.Truncate(hour), end.Truncate(hour)
	if first.Before(start) {
		first = first.Add(hour)
	}
	edges := [][2]time.Time{{start, end}}
	if first.Before(last) {
		edges = [][2]time.Time{{start, first}, {last, end}}
		table := "usage_hourly"
		if first.Equal(first.Truncate(day)) && last.Equal(last.Truncate(day)) {
			table = "usage_daily"
		}
		q := "SELECT model, " + totalsSelect + " FROM " + table + " WHERE organization_id = ? AND bucket_start >= ? AND bucket_start < ?"
		args := []any{orgID, store.Micros(first), store.Micros(last)}
		if workspaceID != "" {
			q += " AND workspace_id = ?"
			args = append(args, workspaceID)
		}
		if err := eachModel(ctx, tx, q, args, sum); err != nil {
			return 0, nil, err
		}
	}
	for _, e := range edges {
		if !e[0].Before(e[1]) {
			continue
		}
		raw, err := rawByModel(ctx, tx, orgID, workspaceID, e[0], e[1])
		if err != nil {
			return 0, nil, err
		}
		for model, t := range raw {
			sum(model, t)
		}
	}
	return cost, tokens, nil
}

// rawByModel sums the raw events of an Organization (of one of its
// Workspaces, when workspaceID is set) from from to to, per model. It is
// meant for parts of an hour, which the rollups cannot split: it reads the
// events through their (organization_id, occurred_at) index.
func rawByModel(ctx context.Context, tx *store.Tx, orgID, workspaceID string, from, to time.Time) (map[string]Totals, error) {
	q := "SELECT model, CAST(COUNT(*) AS BIGINT), CAST(SUM(input_tokens) AS BIGINT), CAST(SUM(output_tokens) AS BIGINT), CAST(SUM(cost) AS BIGINT), " +
		"CAST(SUM(CASE WHEN estimated THEN 1 ELSE 0 END) AS BIGINT), CAST(SUM(CASE WHEN overrun THEN 1 ELSE 0 END) AS BIGINT) FROM usage_events WHERE organization_id = ? AND occurred_at >= ? AND occurred_at < ?"
	args := []any{orgID, store.Micros(from), store.Micros(to)}
	if workspaceID != "" {
		q += " AND workspace_id = ?"
		args = append(args, workspaceID)
	}
	out := map[string]Totals{}
	err := eachModel(ctx, tx, q, args, func(model string, t Totals) { out[model] = t })
	return out, err
}

// eachModel runs q, a query of one model's totals a row, grouped by model,
// and calls fn with each row.
func eachModel(ctx context.Context, tx *store.Tx, q string, args []any, fn func(model string, t Totals)) error {
	return tx.Each(ctx, q+" GROUP BY model", args, func(r *sql.Rows) error {
		var model string
		var t Totals
		if err := r.Scan(append([]any{&model}, t.dest()...)...); err != nil {
			return err
		}
		fn(model, t)
		return nil
	})
}
