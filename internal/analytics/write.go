package analytics

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/binary"
	"hash/fnv"
	"slices"
	"strings"

	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

// table describes one rollup table: after organization_id, level and
// bucket_start come its key columns, then data, which holds the row's
// figures (see encode): counters that add up, (optionally) a time that
// keeps its maximum, then sketches that merge. sums, last and sketches
// name the figures.
type table struct {
	name     string
	keys     []string
	sums     []string
	last     string
	sketches []string
	maxLevel int
}

// eventColumns are the raw events' columns, in the order write gives them.
var eventColumns = []string{"organization_id", "user_id", "id", "workspace_id", "key_id", "type", "occurred_at", "recorded_at", "detail"}

var (
	chatUsers = &table{name: "analytics_chat_users", keys: []string{"user_id"},
		sums: []string{"messages", "files", "images", "spreadsheets", "agent_messages"}, last: "last_message_at",
		sketches: []string{"conversations", "agents"}, maxLevel: topLevel}
	chatAgents = &table{name: "analytics_chat_agents", keys: []string{"agent_id"},
		sums: []string{"messages", "files", "images", "spreadsheets"}, last: "last_message_at",
		sketches: []string{"conversations", "users"}, maxLevel: topLevel}
	chatTime = &table{name: "analytics_chat_time",
		sums:     []string{"messages", "files", "images", "spreadsheets", "agent_messages"},
		sketches: []string{"conversations", "users", "agents"}, maxLevel: levelDay}
	codeSessions = &table{name: "analytics_code_sessions", keys: []string{"workspace_id", "client"},
		sums: []string{"sessions", "prompts", "duration_ms"}, sketches: []string{"users"}, maxLevel: levelDay}
	codeTokens = &table{name: "analytics_code_tokens", keys: []string{"workspace_id", "model"},
		sums: []string{"cached_tokens", "input_tokens", "output_tokens"}, maxLevel: levelDay}
	codeTools = &table{name: "analytics_code_tools", keys: []string{"workspace_id", "tool_name"},
		sums:     []string{"total", "status_success", "status_failure", "status_skipped", "approval_ask", "approval_always", "approval_never"},
		maxLevel: levelDay}
	nextEdits = &table{name: "analytics_next_edits", keys: []string{"workspace_id"},
		sums: []string{"total", "outcome_accepted", "outcome_rejected", "outcome_timeout", "outcome_aborted", "outcome_dismissed",
			"force_generated_true", "force_generated_false", "surface_widget", "surface_ghost_text",
			"lines_inserted", "lines_deleted", "lines_unchanged"},
		sketches: []string{"users"}, maxLevel: levelDay}

	tables = []*table{chatUsers, chatAgents, chatTime, codeSessions, codeTokens, codeTools, nextEdits}
)

// rowKey identifies one rollup row.
type rowKey struct {
	org    string
	level  int
	bucket int64
	k      [2]string
}

func compareRowKeys(a, b rowKey) int {
	return cmp.Or(strings.Compare(a.org, b.org), cmp.Compare(a.level, b.level), cmp.Compare(a.bucket, b.bucket),
		strings.Compare(a.k[0], b.k[0]), strings.Compare(a.k[1], b.k[1]))
}

// row is what a batch adds to one rollup row.
type row struct {
	sums     []int64
	last     int64
	sketches []Sketch
}

// rollups gathers a batch's additions, per table and row.
type rollups map[*table]map[rowKey]*row

// add adds to every level's bucket of t for the event at micros; fn
// fills the row.
func (r rollups) add(t *table, org string, keys [2]string, micros int64, fn func(*row)) {
	m := r[t]
	if m == nil {
		m = map[rowKey]*row{}
		r[t] = m
	}
	for level := 0; level <= t.maxLevel; level++ {
		k := rowKey{org, level, bucketOf(micros, level), keys}
		x := m[k]
		if x == nil {
			x = &row{sums: make([]int64, len(t.sums)), sketches: make([]Sketch, len(t.sketches))}
			m[k] = x
		}
		fn(x)
		x.last = max(x.last, micros)
	}
}

func flag(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// index returns 1 at v's position in values.
func index(values []string, v string) []int64 {
	out := make([]int64, len(values))
	if i := slices.Index(values, v); i >= 0 {
		out[i] = 1
	}
	return out
}

// addEvent adds e to the rollups it counts in.
func (r rollups) addEvent(e *Event) {
	at := store.Micros(e.Time)
	switch e.Type {
	case TypeChatMessage:
		toAgent := flag(e.AgentID != "")
		r.add(chatUsers, e.OrganizationID, [2]string{e.UserID}, at, func(x *row) {
			addSums(x.sums, 1, e.Files, e.Images, e.Spreadsheets, toAgent)
			addMember(&x.sketches[0], e.ConversationID)
			addMember(&x.sketches[1], e.AgentID)
		})
		if e.AgentID != "" {
			r.add(chatAgents, e.OrganizationID, [2]string{e.AgentID}, at, func(x *row) {
				addSums(x.sums, 1, e.Files, e.Images, e.Spreadsheets)
				addMember(&x.sketches[0], e.ConversationID)
				addMember(&x.sketches[1], e.UserID)
			})
		}
		r.add(chatTime, e.OrganizationID, [2]string{}, at, func(x *row) {
			addSums(x.sums, 1, e.Files, e.Images, e.Spreadsheets, toAgent)
			addMember(&x.sketches[0], e.ConversationID)
			addMember(&x.sketches[1], e.UserID)
			addMember(&x.sketches[2], e.AgentID)
		})
	case TypeSession:
		r.add(codeSessions, e.OrganizationID, [2]string{e.WorkspaceID, e.Client}, at, func(x *row) {
			addSums(x.sums, 1, e.Prompts, e.DurationMS)
			addMember(&x.sketches[0], e.UserID)
		})
	case TypeToolCall:
		r.add(codeTools, e.OrganizationID, [2]string{e.WorkspaceID, e.ToolName}, at, func(x *row) {
			x.sums[0]++
			addSums(x.sums[1:4], index(Statuses, e.Status)...)
			addSums(x.sums[4:7], index(Approvals, e.Approval)...)
		})
	case TypeNextEdit:
		r.add(nextEdits, e.OrganizationID, [2]string{e.WorkspaceID}, at, func(x *row) {
			x.sums[0]++
			addSums(x.sums[1:6], index(Outcomes, e.Outcome)...)
			addSums(x.sums[6:8], flag(e.ForceGenerated), flag(!e.ForceGenerated))
			addSums(x.sums[8:10], index(Surfaces, e.Surface)...)
			addSums(x.sums[10:13], e.LinesInserted, e.LinesDeleted, e.LinesUnchanged)
			addMember(&x.sketches[0], e.UserID)
		})
	case TypeTokens:
		r.add(codeTokens, e.OrganizationID, [2]string{e.WorkspaceID, e.Model}, at, func(x *row) {
			addSums(x.sums, e.CachedTokens, e.InputTokens, e.OutputTokens)
		})
	}
}

func addSums(dst []int64, v ...int64) {
	for i := range v {
		dst[i] += v[i]
	}
}

func addMember(s *Sketch, id string) {
	if id != "" {
		s.Add(id)
	}
}

// eventKey is an event's identity: a repeated key is a duplicate.
type eventKey struct{ org, user, id string }

// write stores events through tx and adds those it inserted to the
// rollups. It returns, for each event, whether it was new; an event whose
// key is stored already, or repeats an earlier one of events, was not.
func write(ctx context.Context, tx *store.Tx, events []Event) ([]bool, error) {
	fresh := make([]bool, len(events))
	first := map[eventKey]int{}
	var order []int
	for i := range events {
		k := eventKey{events[i].OrganizationID, events[i].UserID, events[i].ID}
		if _, seen := first[k]; !seen {
			first[k] = i
			order = append(order, i)
		}
	}
	slices.SortFunc(order, func(a, b int) int {
		x, y := &events[a], &events[b]
		return cmp.Or(strings.Compare(x.OrganizationID, y.OrganizationID), strings.Compare(x.UserID, y.UserID), strings.Compare(x.ID, y.ID))
	})
	if err := lockOrganizations(ctx, tx, events); err != nil {
		return nil, err
	}
	recorded := store.Micros(tx.Now)
	rows := make([][]any, len(order))
	for j, i := range order {
		e := &events[i]
		rows[j] = []any{e.OrganizationID, e.UserID, e.ID, e.WorkspaceID, e.KeyID, e.Type, store.Micros(e.Time), recorded, e.detail()}
	}
	err := tx.InsertReturning(ctx, "analytics_events", eventColumns, rows, "ON CONFLICT DO NOTHING RETURNING organization_id, user_id, id", func(r *sql.Rows) error {
		var k eventKey
		if err := r.Scan(&k.org, &k.user, &k.id); err != nil {
			return err
		}
		if i, ok := first[k]; ok {
			fresh[i] = true
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return fresh, addToRollups(ctx, tx, events, fresh)
}

// addToRollups adds the events marked fresh to the rollup tables.
func addToRollups(ctx context.Context, tx *store.Tx, events []Event, fresh []bool) error {
	r := rollups{}
	for i := range events {
		if fresh[i] {
			r.addEvent(&events[i])
		}
	}
	for _, t := range tables {
		if err := t.upsert(ctx, tx, r[t]); err != nil {
			return err
		}
	}
	return nil
}

// lockOrganizations serializes, on PostgreSQL, the analytics writes of
// each Organization across processes: a rollup row's figures are read,
// merged and written back, which two concurrent writers would otherwise
// race on. SQLite has one writer already.
func lockOrganizations(ctx context.Context, tx *store.Tx, events []Event) error {
	if tx.Dialect() != store.Postgres {
		return nil
	}
	var orgs []string
	for i := range events {
		if !slices.Contains(orgs, events[i].OrganizationID) {
			orgs = append(orgs, events[i].OrganizationID)
		}
	}
	slices.Sort(orgs)
	for _, org := range orgs {
		h := fnv.New64a()
		_, _ = h.Write([]byte("steward.analytics:" + org))
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(?)`, int64(h.Sum64())); err != nil {
			return err
		}
	}
	return nil
}

func (t *table) columns() []string {
	return append(append([]string{"organization_id", "level", "bucket_start"}, t.keys...), "data")
}

// encode returns the stored form of x's figures: each counter, then the
// last time when t keeps one, as signed varints; then each sketch after
// its length as an unsigned varint.
func (t *table) encode(x *row) []byte {
	var b []byte
	for _, v := range x.sums {
		b = binary.AppendVarint(b, v)
	}
	if t.last != "" {
		b = binary.AppendVarint(b, x.last)
	}
	for i := range x.sketches {
		e := x.sketches[i].Encode()
		b = binary.AppendUvarint(b, uint64(len(e)))
		b = append(b, e...)
	}
	return b
}

// decode reads data, as encode writes it, into s's sums, last and
// sketches; the sketches point into data. It reports whether data was
// whole.
func (t *table) decode(data []byte, s *stored) bool {
	for i := range s.sums {
		v, n := binary.Varint(data)
		if n <= 0 {
			return false
		}
		s.sums[i], data = v, data[n:]
	}
	if t.last != "" {
		v, n := binary.Varint(data)
		if n <= 0 {
			return false
		}
		s.last, data = v, data[n:]
	}
	for i := range s.sketches {
		size, n := binary.Uvarint(data)
		if n <= 0 || size > uint64(len(data)-n) {
			return false
		}
		s.sketches[i], data = data[n:n+int(size)], data[n+int(size):]
	}
	return len(data) == 0
}

// newStored returns a row to read t's rows into.
func (t *table) newStored() *stored {
	return &stored{sums: make([]int64, len(t.sums)), sketches: make([][]byte, len(t.sketches))}
}

// upsert adds m's rows to t, in key order: each stored row's figures are
// merged into m's first, in Go, and written back whole.
func (t *table) upsert(ctx context.Context, tx *store.Tx, m map[rowKey]*row) error {
	if len(m) == 0 {
		return nil
	}
	keys := make([]rowKey, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareRowKeys)
	if err := t.mergeStored(ctx, tx, keys, m); err != nil {
		return err
	}
	conflict := append([]string{"organization_id", "level", "bucket_start"}, t.keys...)
	rows := make([][]any, 0, len(keys))
	for _, k := range keys {
		vals := []any{k.org, k.level, k.bucket}
		for i := range t.keys {
			vals = append(vals, k.k[i])
		}
		rows = append(rows, append(vals, t.encode(m[k])))
	}
	return tx.InsertMany(ctx, t.name, t.columns(), rows,
		"ON CONFLICT ("+strings.Join(conflict, ", ")+") DO UPDATE SET data = excluded.data")
}

// mergeStored merges the stored figures of the rows keys name into m.
func (t *table) mergeStored(ctx context.Context, tx *store.Tx, keys []rowKey, m map[rowKey]*row) error {
	keyCols := append([]string{"organization_id", "level", "bucket_start"}, t.keys...)
	one := "(CAST(? AS TEXT), CAST(? AS SMALLINT), CAST(? AS BIGINT)" + strings.Repeat(", CAST(? AS TEXT)", len(t.keys)) + ")"
	s := t.newStored()
	for start, end := range store.Runs(len(keys), len(keyCols)) {
		part := keys[start:end]
		args := make([]any, 0, len(part)*len(keyCols))
		for _, k := range part {
			args = append(args, k.org, k.level, k.bucket)
			for i := range t.keys {
				args = append(args, k.k[i])
			}
		}
		q := "SELECT " + strings.Join(keyCols, ", ") + ", data FROM " + t.name +
			" WHERE (" + strings.Join(keyCols, ", ") + ") IN (VALUES " + strings.TrimSuffix(strings.Repeat(one+", ", len(part)), ", ") + ")"
		err := tx.Each(ctx, q, args, func(r *sql.Rows) error {
			var k rowKey
			var data []byte
			dest := []any{&k.org, &k.level, &k.bucket}
			for i := range t.keys {
				dest = append(dest, &k.k[i])
			}
			if err := r.Scan(append(dest, &data)...); err != nil {
				return err
			}
			x := m[k]
			if x == nil {
				return steward.Internal(errUnknownRow{t.name})
			}
			if !t.decode(data, s) {
				return steward.Internal(errBadRow{t.name})
			}
			addSums(x.sums, s.sums...)
			x.last = max(x.last, s.last)
			for i := range s.sketches {
				x.sketches[i].mergeEncoded(s.sketches[i])
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// errUnknownRow is a stored row that no key asked for, which only a broken
// query could return.
type errUnknownRow struct{ table string }

func (e errUnknownRow) Error() string {
	return "analytics: " + e.table + " returned a row that was not asked for"
}

// errBadRow is a stored row whose data does not decode, which only another
// program's write could leave.
type errBadRow struct{ table string }

func (e errBadRow) Error() string {
	return "analytics: a row of " + e.table + " holds data that does not decode"
}

// Write adds events that Steward derives from another record to the
// rollups, through the caller's tx, in that record's own transaction (the
// gateway's usage), so that both commit or neither. That record is the
// events' raw copy and their idempotency: they are not stored again in
// analytics_events, and the caller passes each event once (the usage
// recorder passes only the usage events it inserted). A zero time means the
// transaction's.
func Write(ctx context.Context, tx *store.Tx, events []Event) error {
	fresh := make([]bool, len(events))
	for i := range events {
		if events[i].Time.IsZero() {
			events[i].Time = tx.Now
		}
		if err := validate(&events[i]); err != nil {
			return err
		}
		fresh[i] = true
	}
	if len(events) == 0 {
		return nil
	}
	if err := lockOrganizations(ctx, tx, events); err != nil {
		return err
	}
	return addToRollups(ctx, tx, events, fresh)
}
