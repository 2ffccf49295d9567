package audit

import (
	"context"
	"database/sql"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/stewardhq/steward/internal/store"
)

// MaxLimit is the most entries one query returns.
const MaxLimit = 100

// Filter selects an Organization's entries. Empty slices and nil pointers
// select everything; Before and After are exclusive.
type Filter struct {
	OrganizationID string
	ActorTypes     []string
	EventTypes     []string
	TargetTypes    []string
	ActorUserID    *string
	Before         *time.Time
	After          *time.Time
	Ascending      bool
	Limit          int
	// MistralOnly leaves out Steward-only event types.
	MistralOnly bool
	// OlderThan, for keyset paging in descending order, selects the entries
	// listed after this one: older, or as old with a smaller log id.
	OlderThan *Cursor
}

// Cursor is the position of an entry in the log's order.
type Cursor struct {
	CreatedAt time.Time
	LogID     int64
}

// List returns the entries of f.OrganizationID that match f, newest first
// unless f.Ascending, at most f.Limit of them (clamped to 1..MaxLimit).
func List(ctx context.Context, tx *store.Tx, f Filter) ([]Entry, error) {
	var where []string
	args := []any{f.OrganizationID}
	where = append(where, "organization_id = ?")
	in := func(col string, vals []string) {
		if len(vals) == 0 {
			return
		}
		where = append(where, col+" IN ("+store.Placeholders(len(vals))+")")
		for _, v := range vals {
			args = append(args, v)
		}
	}
	in("actor_type", f.ActorTypes)
	in("target_type", f.TargetTypes)
	if f.MistralOnly {
		where = append(where, "event_type NOT IN ("+store.Placeholders(len(StewardOnlyEvents))+")")
		for _, e := range StewardOnlyEvents {
			args = append(args, e)
		}
	}
	if f.ActorUserID != nil {
		where = append(where, "actor_user_id = ?")
		args = append(args, *f.ActorUserID)
	}
	if f.Before != nil {
		where = append(where, "created_at < ?")
		args = append(args, store.Micros(*f.Before))
	}
	if c := f.OlderThan; c != nil {
		where = append(where, "(created_at < ? OR (created_at = ? AND log_id < ?))")
		args = append(args, store.Micros(c.CreatedAt), store.Micros(c.CreatedAt), c.LogID)
	}
	if f.After != nil {
		where = append(where, "created_at > ?")
		args = append(args, store.Micros(*f.After))
	}
	order := "DESC"
	if f.Ascending {
		order = "ASC"
	}
	limit := min(max(f.Limit, 1), MaxLimit)
	orderBy := ` ORDER BY created_at ` + order + `, log_id ` + order + ` LIMIT ?`
	q := `SELECT ` + entryColumns + ` FROM audit_log WHERE ` + strings.Join(where, " AND ")
	switch len(f.EventTypes) {
	case 0:
		q += orderBy
		args = append(args, limit)
	case 1:
		q += ` AND event_type = ?` + orderBy
		args = append(args, f.EventTypes[0], limit)
	default:
		// Each event type's entries are in order along their index, but
		// PostgreSQL reads every entry of them all to order an IN list:
		// each type's first entries are taken along the index, then
		// merged.
		branches := make([]string, len(f.EventTypes))
		common := args
		args = nil
		for i, t := range f.EventTypes {
			branches[i] = `SELECT * FROM (` + q + ` AND event_type = ?` + orderBy + `) AS type` + strconv.Itoa(i)
			args = append(append(args, common...), t, limit)
		}
		q = `SELECT ` + entryColumns + ` FROM (` + strings.Join(branches, " UNION ALL ") + `) AS merged` + orderBy
		args = append(args, limit)
	}
	entries := []Entry{}
	err := tx.Each(ctx, q, args, func(rows *sql.Rows) error {
		var e Entry
		if err := scanEntry(rows, &e); err != nil {
			return err
		}
		entries = append(entries, e)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return entries, nil
}

// entryColumns are the columns scanEntry reads.
const entryColumns = `log_id, enterprise_account_id, organization_id, workspace_id, created_at,
		actor_type, actor_user_id, actor_metadata, event_type, event_metadata, target_type, target_metadata`

// scanEntry scans a row of entryColumns into e, after the columns that
// first receives.
func scanEntry(rows *sql.Rows, e *Entry, first ...any) error {
	var ea, org, ws, actorUser *string
	var created int64
	var actorMeta, eventMeta, targetMeta string
	dest := append(first, &e.LogID, &ea, &org, &ws, &created, &e.Actor.Type, &actorUser, &actorMeta,
		&e.EventType, &eventMeta, &e.TargetType, &targetMeta)
	if err := rows.Scan(dest...); err != nil {
		return err
	}
	e.EnterpriseAccountID, e.OrganizationID, e.WorkspaceID, e.Actor.UserID = deref(ea), deref(org), deref(ws), deref(actorUser)
	e.CreatedAt = store.Time(created)
	for _, m := range []struct {
		text string
		dst  *map[string]string
	}{{actorMeta, &e.Actor.Metadata}, {eventMeta, &e.EventMetadata}, {targetMeta, &e.TargetMetadata}} {
		if err := json.Unmarshal([]byte(m.text), m.dst); err != nil {
			return err
		}
	}
	return nil
}

// After returns the entries of a chain (scope, "org:<id>" or "ea:<id>")
// that follow its entry seq, in the chain's order, at most limit of them,
// each with its Seq. A chain's seq is assigned under its head's lock, so
// it has no gaps and grows in commit order: reading from the last seq seen
// never skips an entry.
func After(ctx context.Context, tx *store.Tx, scope string, seq int64, limit int) ([]Entry, error) {
	var entries []Entry
	err := tx.Each(ctx, `SELECT seq, `+entryColumns+` FROM audit_log WHERE scope = ? AND seq > ? ORDER BY seq LIMIT ?`,
		[]any{scope, seq, limit}, func(rows *sql.Rows) error {
			var e Entry
			err := scanEntry(rows, &e, &e.Seq)
			entries = append(entries, e)
			return err
		})
	return entries, err
}
