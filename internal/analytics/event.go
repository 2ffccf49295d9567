// Package analytics records product events (chat messages, coding
// sessions, tool calls, next-edit suggestions, and the gateway's chat
// completions) and serves Mistral's five product-analytics reports from
// rollups.
//
// Each event is written with the rollup rows it adds to, in one
// transaction, counting only events whose id was not stored before, so the
// rollups always equal what the raw events say. Rollup buckets are UTC
// hours, six hours and whole-day spans aligned to the Unix epoch (see Levels); a
// report over a window reads a handful of buckets instead of every event.
package analytics

import (
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/stewardhq/steward/internal/steward"
)

// Event types. TypeTokens comes from the gateway only: a coding product's
// model tokens.
const (
	TypeChatMessage = "chat.message"
	TypeSession     = "coding.session"
	TypeToolCall    = "coding.tool_call"
	TypeNextEdit    = "coding.next_edit"
	TypeTokens      = "coding.tokens"
)

// Event is one product event. The Organization, Workspace, user and key
// come from the key that reported it, never from the event's body.
type Event struct {
	ID             string    `json:"id"`
	Type           string    `json:"type"`
	Time           time.Time `json:"-"`
	OrganizationID string    `json:"-"`
	WorkspaceID    string    `json:"-"`
	UserID         string    `json:"-"`
	KeyID          string    `json:"-"`

	// chat.message
	ConversationID string `json:"conversation_id,omitempty"`
	AgentID        string `json:"agent_id,omitempty"`
	Files          int64  `json:"files,omitempty"`
	Images         int64  `json:"images,omitempty"`
	Spreadsheets   int64  `json:"spreadsheets,omitempty"`

	// coding.session
	Client     string `json:"client,omitempty"`
	Prompts    int64  `json:"prompts,omitempty"`
	DurationMS int64  `json:"duration_ms,omitempty"`

	// coding.tool_call
	ToolName string `json:"tool_name,omitempty"`
	Status   string `json:"status,omitempty"`
	Approval string `json:"approval,omitempty"`

	// coding.next_edit
	Outcome        string `json:"outcome,omitempty"`
	ForceGenerated bool   `json:"force_generated,omitempty"`
	Surface        string `json:"surface,omitempty"`
	LinesInserted  int64  `json:"lines_inserted,omitempty"`
	LinesDeleted   int64  `json:"lines_deleted,omitempty"`
	LinesUnchanged int64  `json:"lines_unchanged,omitempty"`

	// coding.tokens
	Model        string `json:"model,omitempty"`
	CachedTokens int64  `json:"cached_tokens,omitempty"`
	InputTokens  int64  `json:"input_tokens,omitempty"`
	OutputTokens int64  `json:"output_tokens,omitempty"`
}

// Bounds of what one request and one event may hold.
const (
	// MaxEvents is the most events one ingestion request carries.
	MaxEvents = 1000
	// MaxIDLen bounds ids, names and the other text fields.
	MaxIDLen = 128
	// MaxCount bounds per-event counts (files, prompts, lines, ...).
	MaxCount = 1_000_000
	// MaxTokens bounds a gateway event's token counts.
	MaxTokens = 1 << 40
	// MaxDuration bounds a session's duration.
	MaxDuration = 7 * 24 * time.Hour
	// MaxAge is how old an event may be when it is reported; MaxSkew how far
	// in the future (a reporter's clock running ahead).
	MaxAge  = 366 * 24 * time.Hour
	MaxSkew = 5 * time.Minute
)

// Allowed values, as Mistral's reports name them.
var (
	Clients   = []string{"cli", "acp", "programmatic"}
	Statuses  = []string{"success", "failure", "skipped"}
	Approvals = []string{"ask", "always", "never"}
	Outcomes  = []string{"accepted", "rejected", "timeout", "aborted", "dismissed"}
	Surfaces  = []string{"widget", "ghost_text"}
)

// EventIn is an event as a reporter sends it. Pointers tell a field that
// was not sent from a zero.
type EventIn struct {
	ID   *string `json:"id"`
	Type *string `json:"type"`
	// Time is a Unix timestamp in seconds; absent means now.
	Time *int64 `json:"time"`

	ConversationID *string `json:"conversation_id"`
	AgentID        *string `json:"agent_id"`
	Files          *int64  `json:"files"`
	Images         *int64  `json:"images"`
	Spreadsheets   *int64  `json:"spreadsheets"`

	Client          *string  `json:"client"`
	Prompts         *int64   `json:"prompts"`
	DurationSeconds *float64 `json:"duration_seconds"`

	ToolName *string `json:"tool_name"`
	Status   *string `json:"status"`
	Approval *string `json:"approval"`

	Outcome        *string `json:"outcome"`
	ForceGenerated *bool   `json:"force_generated"`
	Surface        *string `json:"surface"`
	LinesInserted  *int64  `json:"lines_inserted"`
	LinesDeleted   *int64  `json:"lines_deleted"`
	LinesUnchanged *int64  `json:"lines_unchanged"`
}

// fieldsOf lists the fields each reportable type takes besides id, type
// and time: the required ones, then the optional ones.
var fieldsOf = map[string][2][]string{
	TypeChatMessage: {{"conversation_id"}, {"agent_id", "files", "images", "spreadsheets"}},
	TypeSession:     {{"client"}, {"prompts", "duration_seconds"}},
	TypeToolCall:    {{"tool_name", "status"}, {"approval"}},
	TypeNextEdit:    {{"outcome"}, {"force_generated", "surface", "lines_inserted", "lines_deleted", "lines_unchanged"}},
}

// reportable lists the types a reporter may send, in a stable order.
var reportable = []string{TypeChatMessage, TypeSession, TypeToolCall, TypeNextEdit}

// sent reports which fields of in were sent.
func (in *EventIn) sent() map[string]bool {
	m := map[string]bool{}
	for name, set := range map[string]bool{
		"conversation_id": in.ConversationID != nil, "agent_id": in.AgentID != nil, "files": in.Files != nil,
		"images": in.Images != nil, "spreadsheets": in.Spreadsheets != nil, "client": in.Client != nil,
		"prompts": in.Prompts != nil, "duration_seconds": in.DurationSeconds != nil, "tool_name": in.ToolName != nil,
		"status": in.Status != nil, "approval": in.Approval != nil, "outcome": in.Outcome != nil,
		"force_generated": in.ForceGenerated != nil, "surface": in.Surface != nil, "lines_inserted": in.LinesInserted != nil,
		"lines_deleted": in.LinesDeleted != nil, "lines_unchanged": in.LinesUnchanged != nil,
	} {
		if set {
			m[name] = true
		}
	}
	return m
}

// Batch is the body of an ingestion request.
type Batch struct {
	Events []EventIn `json:"events"`
}

// Parse validates a batch reported by key k at now and returns its events.
// Every problem is named in one KindInvalid error, located as
// ["body", "events", index, field].
func Parse(b Batch, k Owner, now time.Time) ([]Event, error) {
	var errs []*steward.Error
	switch {
	case b.Events == nil:
		return nil, steward.Invalid([]string{"body", "events"}, "events is required: a list of 1 to %d events", MaxEvents)
	case len(b.Events) == 0 || len(b.Events) > MaxEvents:
		return nil, steward.Invalid([]string{"body", "events"}, "events must hold 1 to %d events, not %d", MaxEvents, len(b.Events))
	}
	out := make([]Event, 0, len(b.Events))
	for i := range b.Events {
		e, es := parseOne(&b.Events[i], []string{"body", "events", strconv.Itoa(i)}, k, now)
		errs = append(errs, es...)
		out = append(out, e)
	}
	if err := steward.Invalids(errs); err != nil {
		return nil, err
	}
	return out, nil
}

// Owner is who reports: the Workspace key's Organization, Workspace, user
// and id.
type Owner struct {
	OrganizationID, WorkspaceID, UserID, KeyID string
}

func parseOne(in *EventIn, at []string, k Owner, now time.Time) (Event, []*steward.Error) {
	var errs []*steward.Error
	fail := func(name, format string, args ...any) {
		errs = append(errs, steward.Invalid(append(slices.Clip(at), name), format, args...))
	}
	text := func(name string, v *string, required bool) string {
		switch {
		case v == nil && required:
			fail(name, "%s is required", name)
		case v == nil:
		case *v == "" && required:
			fail(name, "%s must not be empty", name)
		case len(*v) > MaxIDLen:
			fail(name, "%s must be at most %d bytes", name, MaxIDLen)
		case !utf8.ValidString(*v) || strings.IndexByte(*v, 0) >= 0:
			fail(name, "%s must be UTF-8 text without NUL bytes", name)
		default:
			return *v
		}
		return ""
	}
	count := func(name string, v *int64) int64 {
		switch {
		case v == nil:
		case *v < 0 || *v > MaxCount:
			fail(name, "%s must be between 0 and %d", name, MaxCount)
		default:
			return *v
		}
		return 0
	}
	oneOf := func(name string, v *string, allowed []string) string {
		if v != nil && !slices.Contains(allowed, *v) {
			fail(name, "%s must be one of %s, not %q", name, strings.Join(allowed, ", "), *v)
			return ""
		}
		if v == nil {
			return ""
		}
		return *v
	}

	e := Event{OrganizationID: k.OrganizationID, WorkspaceID: k.WorkspaceID, UserID: k.UserID, KeyID: k.KeyID, Time: now}
	e.ID = text("id", in.ID, true)
	e.Type = oneOf("type", in.Type, reportable)
	if in.Type == nil {
		fail("type", "type is required: one of %s", strings.Join(reportable, ", "))
	}
	if in.Time != nil {
		t := time.Unix(*in.Time, 0).UTC()
		switch {
		case t.Before(now.Add(-MaxAge)):
			fail("time", "time is more than %d days in the past: events that old are not taken", int(MaxAge.Hours()/24))
		case t.After(now.Add(MaxSkew)):
			fail("time", "time is in the future by more than %d minutes", int(MaxSkew.Minutes()))
		default:
			e.Time = t
		}
	}
	if e.Type == "" {
		return e, errs
	}
	fields := fieldsOf[e.Type]
	sent := in.sent()
	for _, name := range fields[0] {
		if !sent[name] {
			fail(name, "%s is required for %s events", name, e.Type)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(sent)) {
		if !slices.Contains(fields[0], name) && !slices.Contains(fields[1], name) {
			fail(name, "%s is not a field of %s events", name, e.Type)
		}
	}
	switch e.Type {
	case TypeChatMessage:
		e.ConversationID = text("conversation_id", in.ConversationID, sent["conversation_id"])
		e.AgentID = text("agent_id", in.AgentID, false)
		e.Files, e.Images, e.Spreadsheets = count("files", in.Files), count("images", in.Images), count("spreadsheets", in.Spreadsheets)
	case TypeSession:
		e.Client = oneOf("client", in.Client, Clients)
		e.Prompts = count("prompts", in.Prompts)
		if d := in.DurationSeconds; d != nil {
			if *d < 0 || *d > MaxDuration.Seconds() {
				fail("duration_seconds", "duration_seconds must be between 0 and %d", int(MaxDuration.Seconds()))
			} else {
				e.DurationMS = int64(*d * 1000)
			}
		}
	case TypeToolCall:
		e.ToolName = text("tool_name", in.ToolName, sent["tool_name"])
		e.Status = oneOf("status", in.Status, Statuses)
		e.Approval = oneOf("approval", in.Approval, Approvals)
	case TypeNextEdit:
		e.Outcome = oneOf("outcome", in.Outcome, Outcomes)
		e.Surface = oneOf("surface", in.Surface, Surfaces)
		if in.ForceGenerated != nil {
			e.ForceGenerated = *in.ForceGenerated
		}
		e.LinesInserted, e.LinesDeleted, e.LinesUnchanged = count("lines_inserted", in.LinesInserted),
			count("lines_deleted", in.LinesDeleted), count("lines_unchanged", in.LinesUnchanged)
	}
	return e, errs
}

// detail is the stored form of an accepted event.
func (e *Event) detail() string {
	b, err := json.Marshal(e)
	if err != nil {
		return "{}"
	}
	return string(b)
}

// validate checks an event made by Steward itself (the gateway's), whose
// fields no reporter chose, for what the database would refuse.
func validate(e *Event) error {
	for _, s := range []string{e.ID, e.OrganizationID, e.WorkspaceID, e.UserID, e.KeyID, e.Model, e.ConversationID, e.AgentID} {
		if len(s) > 4*MaxIDLen || !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
			return steward.Errorf(steward.KindInvalid, "an analytics event holds a field that is too long or not UTF-8 text")
		}
	}
	switch {
	case e.ID == "" || e.OrganizationID == "":
		return steward.Errorf(steward.KindInvalid, "an analytics event needs an id and an Organization")
	case e.InputTokens < 0 || e.OutputTokens < 0 || e.CachedTokens < 0 || e.InputTokens > MaxTokens || e.OutputTokens > MaxTokens:
		return steward.Errorf(steward.KindInvalid, "an analytics event's token counts must be between 0 and %d", int64(MaxTokens))
	case e.Time.Before(time.Unix(0, 0)):
		return steward.Errorf(steward.KindInvalid, "an analytics event's time is before 1970")
	}
	return nil
}
