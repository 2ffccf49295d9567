package analytics

import (
	"cmp"
	"context"
	"database/sql"
	"slices"
	"strings"
	"time"

	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

// Window is a report's time range, [Start, End). Rollups count whole UTC
// hours: an hour counts when it starts within [Start taken down to its
// hour, End). Zone is the time zone of the days, weeks and months that
// series are split into (nil for UTC, as Mistral's reports have them); in
// a zone whose offset is not whole hours, each of its days starts at the
// UTC hour that holds its midnight.
type Window struct {
	Start, End time.Time
	Zone       *time.Location
}

func (w Window) zone() *time.Location {
	if w.Zone == nil {
		return time.UTC
	}
	return w.Zone
}

func (w Window) micros() (int64, int64) { return store.Micros(w.Start), store.Micros(w.End) }

// MaxWindow is the longest window a report covers.
const MaxWindow = 731 * 24 * time.Hour

// Granularities of the over-time report.
var Granularities = []string{"hour", "day", "week", "month"}

// stored is one rollup row as read: its bucket, keys, data, and data's
// counters, last time and encoded sketches.
type stored struct {
	piece    piece
	keys     [2]sql.RawBytes
	data     sql.RawBytes
	sums     []int64
	last     int64
	sketches [][]byte
}

// read calls fn for each row of t in the buckets pieces name, of the
// Organization and, when workspace is not empty, of that Workspace (t's
// first key must then be workspace_id). It runs one query whatever the
// number of pieces, a range of bucket_start per run of one level, largest
// levels first: their sketches are the largest, so that merging the small
// ones into them comes after. Each row's piece is read only when bucketed
// is set: reports over the whole window leave it out, two columns fewer to
// fetch per row. The row's keys and sketches are valid only during fn.
func (t *table) read(ctx context.Context, tx *store.Tx, org, workspace string, pieces []piece, bucketed bool, fn func(*stored)) error {
	rs := runs(pieces)
	if len(rs) == 0 {
		return nil
	}
	slices.SortStableFunc(rs, func(a, b run) int { return cmp.Compare(b.level, a.level) })
	cols := t.columns()[3:]
	if bucketed {
		cols = t.columns()[1:]
	}
	one := "SELECT " + strings.Join(cols, ", ") + " FROM " + t.name +
		" WHERE organization_id = ? AND level = ? AND bucket_start >= ? AND bucket_start <= ?"
	if workspace != "" {
		one += " AND workspace_id = ?"
	}
	var args []any
	for _, r := range rs {
		args = append(args, org, r.level, r.first, r.last)
		if workspace != "" {
			args = append(args, workspace)
		}
	}
	q := strings.TrimSuffix(strings.Repeat(one+" UNION ALL ", len(rs)), " UNION ALL ")
	s := t.newStored()
	var dest []any
	if bucketed {
		dest = append(dest, &s.piece.level, &s.piece.start)
	}
	for i := range t.keys {
		dest = append(dest, &s.keys[i])
	}
	dest = append(dest, &s.data)
	if tx.Dialect() == store.Postgres {
		// A report reads a few thousand rows by primary key; parallel
		// workers only add their start-up to it.
		if _, err := tx.Exec(ctx, "SET LOCAL max_parallel_workers_per_gather = 0"); err != nil {
			return err
		}
	}
	return tx.Each(ctx, q, args, func(rows *sql.Rows) error {
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		if !t.decode(s.data, s) {
			return steward.Internal(errBadRow{t.name})
		}
		fn(s)
		return nil
	})
}

// totalsOf returns by's totals for the key k, adding them when missing;
// k is copied only then.
func totalsOf[T any](by map[string]*T, k []byte) *T {
	c := by[string(k)]
	if c == nil {
		c = new(T)
		by[string(k)] = c
	}
	return c
}

// chatTotals are the counters the three Work reports share.
type chatTotals struct {
	sums          []int64
	last          int64
	conversations Sketch
	other         Sketch // agents (by user) or users (by agent)
}

func (c *chatTotals) add(s *stored) {
	if c.sums == nil {
		c.sums = make([]int64, len(s.sums))
	}
	addSums(c.sums, s.sums...)
	c.last = max(c.last, s.last)
	c.conversations.mergeEncoded(s.sketches[0])
	c.other.mergeEncoded(s.sketches[1])
}

// formatInstant writes a time as Mistral's reports do: UTC, to the second.
func formatInstant(us int64) string { return store.Time(us).Format("2006-01-02T15:04:05Z") }

// chatTotalsBy reads t's top-level rows of the Organization in w and
// returns their totals per key.
func chatTotalsBy(ctx context.Context, tx *store.Tx, t *table, org string, w Window) (map[string]*chatTotals, error) {
	from, to := w.micros()
	by := map[string]*chatTotals{}
	err := t.read(ctx, tx, org, "", cover(from, to, topLevel), false, func(s *stored) {
		totalsOf(by, s.keys[0]).add(s)
	})
	return by, err
}

// UserStat is Mistral's VibeWorkByUserStat.
type UserStat struct {
	MessagesCount            int64  `json:"messages_count"`
	FilesCount               int64  `json:"files_count"`
	ImagesCount              int64  `json:"images_count"`
	SpreadsheetsCount        int64  `json:"spreadsheets_count"`
	UniqueConversationsCount int64  `json:"unique_conversations_count"`
	UserID                   string `json:"user_id"`
	LastMessageAt            string `json:"last_message_at"`
	UniqueAgentsCount        int64  `json:"unique_agents_count"`
	MessagesToAgentsCount    int64  `json:"messages_to_agents_count"`
}

// WorkByUser returns the Organization's chat activity per user in w, most
// messages first.
func WorkByUser(ctx context.Context, tx *store.Tx, org string, w Window) ([]UserStat, error) {
	by, err := chatTotalsBy(ctx, tx, chatUsers, org, w)
	out := make([]UserStat, 0, len(by))
	for id, c := range by {
		out = append(out, UserStat{MessagesCount: c.sums[0], FilesCount: c.sums[1], ImagesCount: c.sums[2], SpreadsheetsCount: c.sums[3],
			UniqueConversationsCount: c.conversations.Count(), UserID: id, LastMessageAt: formatInstant(c.last),
			UniqueAgentsCount: c.other.Count(), MessagesToAgentsCount: c.sums[4]})
	}
	slices.SortFunc(out, func(a, b UserStat) int {
		return cmp.Or(cmp.Compare(b.MessagesCount, a.MessagesCount), strings.Compare(a.UserID, b.UserID))
	})
	return out, err
}

// AgentStat is Mistral's VibeWorkByAgentStat.
type AgentStat struct {
	MessagesCount            int64  `json:"messages_count"`
	FilesCount               int64  `json:"files_count"`
	ImagesCount              int64  `json:"images_count"`
	SpreadsheetsCount        int64  `json:"spreadsheets_count"`
	UniqueConversationsCount int64  `json:"unique_conversations_count"`
	AgentID                  string `json:"agent_id"`
	LastMessageAt            string `json:"last_message_at"`
	UniqueUsersCount         int64  `json:"unique_users_count"`
}

// WorkByAgent returns the Organization's chat activity with agents, per
// agent in w, most messages first.
func WorkByAgent(ctx context.Context, tx *store.Tx, org string, w Window) ([]AgentStat, error) {
	by, err := chatTotalsBy(ctx, tx, chatAgents, org, w)
	out := make([]AgentStat, 0, len(by))
	for id, c := range by {
		out = append(out, AgentStat{MessagesCount: c.sums[0], FilesCount: c.sums[1], ImagesCount: c.sums[2], SpreadsheetsCount: c.sums[3],
			UniqueConversationsCount: c.conversations.Count(), AgentID: id, LastMessageAt: formatInstant(c.last), UniqueUsersCount: c.other.Count()})
	}
	slices.SortFunc(out, func(a, b AgentStat) int {
		return cmp.Or(cmp.Compare(b.MessagesCount, a.MessagesCount), strings.Compare(a.AgentID, b.AgentID))
	})
	return out, err
}

// TimeStat is Mistral's VibeWorkByTimeStat.
type TimeStat struct {
	MessagesCount            int64   `json:"messages_count"`
	FilesCount               int64   `json:"files_count"`
	ImagesCount              int64   `json:"images_count"`
	SpreadsheetsCount        int64   `json:"spreadsheets_count"`
	UniqueConversationsCount int64   `json:"unique_conversations_count"`
	TimeBucket               *string `json:"time_bucket"`
	UniqueUsersCount         int64   `json:"unique_users_count"`
	MessagesToAgentsCount    int64   `json:"messages_to_agents_count"`
	UniqueAgentsCount        int64   `json:"unique_agents_count"`
}

// bucketsOf splits w into granularity buckets (in w's zone; weeks start
// on Monday), each clipped to w, and covers each with rollup pieces up to
// maxLevel. It returns the buckets' starts and, for each piece, its
// bucket's index. A bucket's edges inside w are taken down to their hour,
// so that no hour counts in two buckets.
func bucketsOf(w Window, granularity string, maxLevel int) ([]time.Time, []piece, map[piece]int) {
	from, to := w.micros()
	var starts []time.Time
	var pieces []piece
	at := map[piece]int{}
	loc := w.zone()
	t := w.Start.In(loc)
	switch granularity {
	case "hour":
		t = t.Truncate(time.Hour)
	case "week":
		t = time.Date(t.Year(), t.Month(), t.Day()-(int(t.Weekday())+6)%7, 0, 0, 0, 0, loc)
	case "month":
		t = time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, loc)
	default:
		t = time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc)
	}
	for store.Micros(t) < to {
		var next time.Time
		switch granularity {
		case "hour":
			next = t.Add(time.Hour)
		case "week":
			next = t.AddDate(0, 0, 7)
		case "month":
			next = t.AddDate(0, 1, 0)
		default:
			next = t.AddDate(0, 0, 1)
		}
		for _, p := range cover(max(bucketOf(store.Micros(t), levelHour), from), min(bucketOf(store.Micros(next), levelHour), to), maxLevel) {
			at[p] = len(starts)
			pieces = append(pieces, p)
		}
		starts = append(starts, t)
		t = next
	}
	return starts, pieces, at
}

// WorkByTime returns the Organization's chat activity per granularity
// bucket in w, in time order; buckets without activity are left out.
func WorkByTime(ctx context.Context, tx *store.Tx, org string, w Window, granularity string) ([]TimeStat, error) {
	starts, pieces, at := bucketsOf(w, granularity, levelDay)
	type totals struct {
		sums                         []int64
		conversations, users, agents Sketch
	}
	by := make([]*totals, len(starts))
	err := chatTime.read(ctx, tx, org, "", pieces, true, func(s *stored) {
		i, ok := at[s.piece]
		if !ok {
			return
		}
		c := by[i]
		if c == nil {
			c = &totals{sums: make([]int64, len(s.sums))}
			by[i] = c
		}
		addSums(c.sums, s.sums...)
		c.conversations.mergeEncoded(s.sketches[0])
		c.users.mergeEncoded(s.sketches[1])
		c.agents.mergeEncoded(s.sketches[2])
	})
	out := []TimeStat{}
	for i, c := range by {
		if c == nil {
			continue
		}
		bucket := starts[i].Format(time.RFC3339)
		out = append(out, TimeStat{MessagesCount: c.sums[0], FilesCount: c.sums[1], ImagesCount: c.sums[2], SpreadsheetsCount: c.sums[3],
			UniqueConversationsCount: c.conversations.Count(), TimeBucket: &bucket, UniqueUsersCount: c.users.Count(),
			MessagesToAgentsCount: c.sums[4], UniqueAgentsCount: c.agents.Count()})
	}
	return out, err
}
