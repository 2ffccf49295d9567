// Package usage records one usage event per model request and keeps the
// hourly and daily rollups that reports and spend limits read.
//
// Each event is written with the rollup rows it adds to, in one
// transaction, so that the rollups always equal the sums of the raw events.
// An event carries an idempotency id: an event whose id is already stored
// is ignored, by the raw table and by the rollups alike, so a caller that
// does not know whether its write landed may simply write again.
//
// Rollup buckets are UTC hours and UTC days. A month or a day in another
// time zone is assembled from hourly buckets, and in a zone whose offset
// from UTC is not a whole number of hours, from the raw events of the hours
// its midnights cut in two, so that it is exact in every zone.
package usage

import (
	"context"
	"database/sql"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

// Event is the usage of one model request.
type Event struct {
	// ID is the idempotency id, such as the gateway's request id. It must be
	// chosen by Steward, never by a client: an event whose id is already
	// stored is ignored.
	ID string
	// Time is when the request was served; the zero time means now.
	Time           time.Time
	OrganizationID string
	// WorkspaceID, KeyID and UserID may be empty when the request had none.
	WorkspaceID  string
	KeyID        string
	UserID       string
	Model        string
	InputTokens  int64
	OutputTokens int64
	// Pages are the pages an OCR request had read, AudioSeconds the
	// seconds of audio a transcription had heard: units its cost was
	// priced at besides tokens. The rollups do not sum them.
	Pages        int64
	AudioSeconds int64
	// Cost is in micro-units of Currency. The rollups add costs as given:
	// an Organization is expected to be billed in one currency.
	Cost     int64
	Currency string
	// Estimated is set when the usage was estimated by Steward rather than
	// reported by the model server.
	Estimated bool
	// Overrun is set when the request used more than it reserved against
	// its limits: its model server did not stop where it was asked to.
	Overrun bool
	// Endpoint is the API called, such as "chat.completions".
	Endpoint string
	// RequestID is the id the answer carried in x-request-id, which a
	// client may have chosen: it correlates, it does not identify.
	RequestID string
	// Product is the product of the key the request was made with (API,
	// Mistral Code, Vibe); empty without a key.
	Product string
}

// Limits on an event's fields. Counts are bounded so that the sums kept by
// the rollups cannot overflow 64 bits in any realistic lifetime.
const (
	MaxIDLen       = 128
	MaxModelLen    = 256
	MaxCurrencyLen = 16
	MaxEndpointLen = 128
	MaxCount       = 1 << 40
)

// earliest and latest bound an event's time: before the Unix epoch or after
// year 9999 it is a bug in the caller, not usage.
var (
	earliest = time.Unix(0, 0)
	latest   = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
)

// validate checks e, with field naming where e sits in the caller's input.
// Every string must be valid UTF-8 without NUL bytes: PostgreSQL refuses
// anything else, which would fail the whole batch e shares with others.
func validate(e *Event, field []string) error {
	var errs []*steward.Error
	at := func(name string) []string { return append(slices.Clip(field), name) }
	text := func(name, v string, required bool, maxLen int) {
		switch {
		case v == "" && required:
			errs = append(errs, steward.Invalid(at(name), "%s is required", name))
		case len(v) > maxLen:
			errs = append(errs, steward.Invalid(at(name), "%s must be at most %d bytes", name, maxLen))
		case !utf8.ValidString(v) || strings.IndexByte(v, 0) >= 0:
			errs = append(errs, steward.Invalid(at(name), "%s must be UTF-8 text without NUL bytes", name))
		}
	}
	count := func(name string, v int64) {
		if v < 0 || v > MaxCount {
			errs = append(errs, steward.Invalid(at(name), "%s must be between 0 and %d", name, int64(MaxCount)))
		}
	}
	text("id", e.ID, true, MaxIDLen)
	text("organization_id", e.OrganizationID, true, MaxIDLen)
	text("workspace_id", e.WorkspaceID, false, MaxIDLen)
	text("key_id", e.KeyID, false, MaxIDLen)
	text("user_id", e.UserID, false, MaxIDLen)
	text("model", e.Model, true, MaxModelLen)
	text("currency", e.Currency, false, MaxCurrencyLen)
	text("endpoint", e.Endpoint, false, MaxEndpointLen)
	text("request_id", e.RequestID, false, MaxIDLen)
	text("product", e.Product, false, MaxModelLen)
	count("input_tokens", e.InputTokens)
	count("output_tokens", e.OutputTokens)
	count("pages", e.Pages)
	count("audio_seconds", e.AudioSeconds)
	count("cost", e.Cost)
	if e.Time.Before(earliest) || !e.Time.Before(latest) {
		errs = append(errs, steward.Invalid(at("time"), "time must be between 1970 and 9999"))
	}
	return steward.Invalids(errs)
}

// validateAll checks every event, filling a zero time with now. When field
// is set, an error names the offending event by field and its index.
func validateAll(events []Event, now time.Time, field []string) error {
	for i := range events {
		e := &events[i]
		if e.Time.IsZero() {
			e.Time = now
		}
		at := field
		if field != nil {
			at = append(slices.Clip(field), strconv.Itoa(i))
		}
		if err := validate(e, at); err != nil {
			return err
		}
	}
	return nil
}

// rollupKey identifies one rollup row.
type rollupKey struct {
	org, workspace, key, user, model string
	bucket                           int64
}

// sums are the counters of one rollup row.
type sums struct {
	requests, input, output, cost, estimated, overrun int64
}

func (s *sums) add(e *Event) {
	s.requests++
	s.input += e.InputTokens
	s.output += e.OutputTokens
	s.cost += e.Cost
	if e.Estimated {
		s.estimated++
	}
	if e.Overrun {
		s.overrun++
	}
}

const (
	hour = time.Hour
	day  = 24 * time.Hour
)

// bucketStart is the start of the UTC hour or day holding t, in stored
// microseconds. time.Truncate counts from the zero time, a UTC midnight, so
// it rounds to UTC hours and days.
func bucketStart(t time.Time, size time.Duration) int64 {
	return store.Micros(t.Truncate(size))
}

var (
	eventColumns  = []string{"id", "organization_id", "workspace_id", "key_id", "user_id", "model", "occurred_at", "input_tokens", "output_tokens", "cost", "currency", "estimated", "endpoint", "recorded_at", "request_id", "product", "overrun", "pages", "audio_seconds"}
	rollupColumns = []string{"organization_id", "bucket_start", "workspace_id", "key_id", "user_id", "model", "requests", "input_tokens", "output_tokens", "cost", "estimated_requests", "overrun_requests"}
)

// On PostgreSQL a batch is one statement per table with one array per
// column, read by unnest: pgx sends the arrays in binary, which costs half
// the CPU of a placeholder per value. On SQLite, which has no arrays, it is
// multi-row statements of a few sizes (store.Runs), which stay prepared.
var (
	insertEventsPostgres = "INSERT INTO usage_events (" + strings.Join(eventColumns, ", ") +
		") SELECT * FROM unnest(?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::bigint[], ?::bigint[], ?::bigint[], ?::bigint[], ?::text[], ?::boolean[], ?::text[], ?::bigint[], ?::text[], ?::text[], ?::boolean[], ?::bigint[], ?::bigint[])" +
		" ON CONFLICT (id) DO NOTHING RETURNING id"
	rollupSourcePostgres = " SELECT * FROM unnest(?::text[], ?::bigint[], ?::text[], ?::text[], ?::text[], ?::text[], ?::bigint[], ?::bigint[], ?::bigint[], ?::bigint[], ?::bigint[], ?::bigint[])"
)

// write stores valid events through tx and adds the events it inserted to
// the rollups; events whose id is already stored, or repeated within
// events, are left out of both. It returns the events it inserted.
//
// Ids are inserted in sorted order and rollup rows upserted in key order, so
// that concurrent writers on PostgreSQL (several Steward processes) take
// their row locks in one order and cannot deadlock.
func write(ctx context.Context, tx *store.Tx, events []Event) ([]Event, error) {
	byID := make(map[string]*Event, len(events))
	unique := make([]*Event, 0, len(events))
	for i := range events {
		e := &events[i]
		if _, seen := byID[e.ID]; !seen {
			byID[e.ID] = e
			unique = append(unique, e)
		}
	}
	slices.SortFunc(unique, func(a, b *Event) int { return strings.Compare(a.ID, b.ID) })

	inserted := make([]Event, 0, len(unique))
	hourly := map[rollupKey]*sums{}
	daily := map[rollupKey]*sums{}
	err := insertEvents(ctx, tx, unique, func(id string) error {
		e := byID[id]
		if e == nil {
			return steward.Internal(errUnknownID{id})
		}
		inserted = append(inserted, *e)
		k := rollupKey{e.OrganizationID, e.WorkspaceID, e.KeyID, e.UserID, e.Model, bucketStart(e.Time, hour)}
		accumulate(hourly, k, e)
		k.bucket = bucketStart(e.Time, day)
		accumulate(daily, k, e)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := upsert(ctx, tx, "usage_hourly", hourly); err != nil {
		return nil, err
	}
	return inserted, upsert(ctx, tx, "usage_daily", daily)
}

// insertEvents inserts events, skipping ids stored already, and calls
// inserted with the id of each one inserted.
func insertEvents(ctx context.Context, tx *store.Tx, events []*Event, inserted func(id string) error) error {
	recorded := store.Micros(tx.Now)
	scan := func(r *sql.Rows) error {
		var id string
		if err := r.Scan(&id); err != nil {
			return err
		}
		return inserted(id)
	}
	if tx.Dialect() == store.Postgres {
		n := len(events)
		ids, orgs, workspaces, keys, users, models := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		times, inputs, outputs, costs := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
		currencies, endpoints, estimated, recordedAt, requestIDs, products := make([]string, n), make([]string, n), make([]bool, n), make([]int64, n), make([]string, n), make([]string, n)
		overrun, pages, audio := make([]bool, n), make([]int64, n), make([]int64, n)
		for i, e := range events {
			ids[i], orgs[i], workspaces[i], keys[i], users[i], models[i] = e.ID, e.OrganizationID, e.WorkspaceID, e.KeyID, e.UserID, e.Model
			times[i], inputs[i], outputs[i], costs[i] = store.Micros(e.Time), e.InputTokens, e.OutputTokens, e.Cost
			currencies[i], estimated[i], endpoints[i], recordedAt[i], requestIDs[i], products[i] = e.Currency, e.Estimated, e.Endpoint, recorded, e.RequestID, e.Product
			overrun[i], pages[i], audio[i] = e.Overrun, e.Pages, e.AudioSeconds
		}
		return tx.Each(ctx, insertEventsPostgres, []any{ids, orgs, workspaces, keys, users, models, times, inputs, outputs, costs, currencies, estimated, endpoints, recordedAt, requestIDs, products, overrun, pages, audio}, scan)
	}
	rows := make([][]any, len(events))
	for i, e := range events {
		rows[i] = []any{e.ID, e.OrganizationID, e.WorkspaceID, e.KeyID, e.UserID, e.Model, store.Micros(e.Time),
			e.InputTokens, e.OutputTokens, e.Cost, e.Currency, e.Estimated, e.Endpoint, recorded, e.RequestID, e.Product, e.Overrun, e.Pages, e.AudioSeconds}
	}
	// RETURNING costs SQLite a fifth of the batch's time, and a batch is
	// almost always new: it is inserted without, and only when some of its
	// ids were stored already, undone and inserted again with RETURNING.
	if _, err := tx.Exec(ctx, "SAVEPOINT usage_events"); err != nil {
		return err
	}
	n, err := tx.InsertCount(ctx, "usage_events", eventColumns, rows, "ON CONFLICT (id) DO NOTHING")
	if err != nil {
		return err
	}
	if n == int64(len(rows)) {
		if _, err := tx.Exec(ctx, "RELEASE usage_events"); err != nil {
			return err
		}
		for _, e := range events {
			if err := inserted(e.ID); err != nil {
				return err
			}
		}
		return nil
	}
	if _, err := tx.Exec(ctx, "ROLLBACK TO usage_events"); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, "RELEASE usage_events"); err != nil {
		return err
	}
	return tx.InsertReturning(ctx, "usage_events", eventColumns, rows, "ON CONFLICT (id) DO NOTHING RETURNING id", scan)
}

// errUnknownID is a RETURNING row that names no event of the statement,
// which only a broken driver could produce.
type errUnknownID struct{ id string }

func (e errUnknownID) Error() string { return "insert returned unknown usage event id " + e.id }

func accumulate(m map[rollupKey]*sums, k rollupKey, e *Event) {
	s := m[k]
	if s == nil {
		s = &sums{}
		m[k] = s
	}
	s.add(e)
}

// upsert adds the sums to table's rows, each row once: PostgreSQL refuses a
// statement that updates one row twice.
func upsert(ctx context.Context, tx *store.Tx, table string, m map[rollupKey]*sums) error {
	if len(m) == 0 {
		return nil
	}
	keys := make([]rollupKey, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareKeys)
	conflict := "ON CONFLICT (organization_id, bucket_start, workspace_id, key_id, user_id, model) DO UPDATE SET " +
		"requests = " + table + ".requests + excluded.requests, " +
		"input_tokens = " + table + ".input_tokens + excluded.input_tokens, " +
		"output_tokens = " + table + ".output_tokens + excluded.output_tokens, " +
		"cost = " + table + ".cost + excluded.cost, " +
		"estimated_requests = " + table + ".estimated_requests + excluded.estimated_requests, " +
		"overrun_requests = " + table + ".overrun_requests + excluded.overrun_requests"
	if tx.Dialect() == store.Postgres {
		n := len(keys)
		orgs, workspaces, ks, users, models := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		buckets, requests, inputs, outputs, costs, estimated := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
		overrun := make([]int64, n)
		for i, k := range keys {
			s := m[k]
			orgs[i], buckets[i], workspaces[i], ks[i], users[i], models[i] = k.org, k.bucket, k.workspace, k.key, k.user, k.model
			requests[i], inputs[i], outputs[i], costs[i], estimated[i], overrun[i] = s.requests, s.input, s.output, s.cost, s.estimated, s.overrun
		}
		_, err := tx.Exec(ctx, "INSERT INTO "+table+" ("+strings.Join(rollupColumns, ", ")+")"+rollupSourcePostgres+" "+conflict,
			orgs, buckets, workspaces, ks, users, models, requests, inputs, outputs, costs, estimated, overrun)
		return err
	}
	rows := make([][]any, len(keys))
	for i, k := range keys {
		s := m[k]
		rows[i] = []any{k.org, k.bucket, k.workspace, k.key, k.user, k.model, s.requests, s.input, s.output, s.cost, s.estimated, s.overrun}
	}
	return tx.InsertMany(ctx, table, rollupColumns, rows, conflict)
}

// compareKeys orders rollup keys as the tables' primary keys do.
func compareKeys(a, b rollupKey) int {
	if c := strings.Compare(a.org, b.org); c != 0 {
		return c
	}
	if a.bucket != b.bucket {
		if a.bucket < b.bucket {
			return -1
		}
		return 1
	}
	for _, p := range [][2]string{{a.workspace, b.workspace}, {a.key, b.key}, {a.user, b.user}, {a.model, b.model}} {
		if c := strings.Compare(p[0], p[1]); c != 0 {
			return c
		}
	}
	return 0
}
