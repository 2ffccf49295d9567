package analytics

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
)

func TestSketchExactThenEstimated(t *testing.T) {
	var s Sketch
	for i := range exactMax - 1 {
		s.Add(fmt.Sprint("member-", i))
		s.Add(fmt.Sprint("member-", i))
	}
	if got := s.Count(); got != exactMax-1 {
		t.Fatalf("exact count = %d, want %d", got, exactMax-1)
	}
	var merged Sketch
	merged.mergeEncoded(s.Encode())
	merged.Add("member-0")
	merged.Add("another")
	if got := merged.Count(); got != exactMax {
		t.Fatalf("merged exact count = %d, want %d", got, exactMax)
	}
	for _, n := range []int{500, 10_000, 200_000} {
		var a, b Sketch
		for i := range n {
			if i%2 == 0 {
				a.Add(fmt.Sprint("user-", i))
			} else {
				b.Add(fmt.Sprint("user-", i))
			}
			a.Add(fmt.Sprint("user-", i/3*2))
		}
		a.mergeEncoded(b.Encode())
		if got := a.Count(); math.Abs(float64(got)-float64(n))/float64(n) > 0.1 {
			t.Errorf("estimate of %d = %d, more than 10%% off", n, got)
		}
		if len(a.Encode()) != 1+registers {
			t.Errorf("encoded size %d", len(a.Encode()))
		}
	}
}

func TestCover(t *testing.T) {
	day := int64(24 * time.Hour / time.Microsecond)
	hour := int64(time.Hour / time.Microsecond)
	for _, tc := range []struct{ from, to int64 }{
		{0, 90 * day}, {3*day + 5*hour + 17, 93*day + 7*hour}, {130 * day, 131 * day}, {5 * hour, 5*hour + 1}, {7 * day, 7 * day},
	} {
		pieces := cover(tc.from, tc.to, topLevel)
		cur := tc.from - tc.from%hour
		for _, p := range pieces {
			if p.start != cur || p.start%levelMicros(p.level) != 0 {
				t.Fatalf("cover(%d, %d): piece %+v at %d", tc.from, tc.to, p, cur)
			}
			cur += levelMicros(p.level)
		}
		if cur < tc.to || (len(pieces) > 0 && cur-levelMicros(pieces[len(pieces)-1].level) >= tc.to) {
			t.Fatalf("cover(%d, %d) ends at %d", tc.from, tc.to, cur)
		}
		if len(pieces) > 40 {
			t.Errorf("cover(%d, %d) takes %d pieces", tc.from, tc.to, len(pieces))
		}
	}
	if n := len(cover(0, 90*day, topLevel)); n > 6 {
		t.Errorf("90 aligned days take %d pieces", n)
	}
}

func TestParse(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	str := func(s string) *string { return &s }
	num := func(n int64) *int64 { return &n }
	owner := Owner{OrganizationID: "org", WorkspaceID: "ws", UserID: "u", KeyID: "k"}
	events, err := Parse(Batch{Events: []EventIn{
		{ID: str("m1"), Type: str(TypeChatMessage), ConversationID: str("c1"), Files: num(2), Time: num(now.Add(-time.Hour).Unix())},
		{ID: str("s1"), Type: str(TypeSession), Client: str("cli"), Prompts: num(3)},
	}}, owner, now)
	if err != nil {
		t.Fatal(err)
	}
	if e := events[0]; e.UserID != "u" || e.WorkspaceID != "ws" || e.Files != 2 || !e.Time.Equal(now.Add(-time.Hour)) {
		t.Errorf("chat message = %+v", e)
	}
	if e := events[1]; e.Client != "cli" || e.Prompts != 3 || !e.Time.Equal(now) {
		t.Errorf("session = %+v", e)
	}

	_, err = Parse(Batch{Events: []EventIn{
		{ID: str("m1"), Type: str(TypeChatMessage)},
		{ID: str(""), Type: str("chat.reaction")},
		{ID: str("t1"), Type: str(TypeToolCall), ToolName: str("run"), Status: str("maybe"), Client: str("cli")},
		{ID: str("n1"), Type: str(TypeNextEdit), Outcome: str("accepted"), LinesInserted: num(-1), Time: num(now.Add(time.Hour).Unix())},
	}}, owner, now)
	e, ok := err.(*steward.Error)
	if !ok || e.Kind != steward.KindInvalid {
		t.Fatalf("err = %v, want KindInvalid", err)
	}
	var got []string
	for _, f := range append([]*steward.Error{e}, e.Also...) {
		got = append(got, strings.Join(f.Field, "."))
	}
	want := []string{"body.events.0.conversation_id", "body.events.1.id", "body.events.1.type", "body.events.2.client",
		"body.events.2.status", "body.events.3.time", "body.events.3.lines_inserted"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("invalid fields = %v, want %v", got, want)
	}
	for _, b := range []Batch{{}, {Events: []EventIn{}}, {Events: make([]EventIn, MaxEvents+1)}} {
		if _, err := Parse(b, owner, now); !steward.IsKind(err, steward.KindInvalid) {
			t.Errorf("batch of %d: err = %v", len(b.Events), err)
		}
	}
}

// record writes events through a running Recorder and returns how many
// were new.
func record(t testing.TB, db *store.DB, events []Event) int {
	t.Helper()
	rec := NewRecorder(db, slog.New(slog.NewTextHandler(io.Discard, nil)))
	go rec.Run()
	defer rec.Close()
	fresh, err := rec.Record(context.Background(), events)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range fresh {
		if f {
			n++
		}
	}
	return n
}

func view[T any](t *testing.T, db *store.DB, fn func(tx *store.Tx) (T, error)) T {
	t.Helper()
	var out T
	if err := db.View(context.Background(), func(tx *store.Tx) error {
		var err error
		out, err = fn(tx)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestReports(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		day := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
		at := func(d, h int) time.Time { return day.AddDate(0, 0, d).Add(time.Duration(h) * time.Hour) }
		msg := func(id, user, conv, agent string, when time.Time, files int64) Event {
			return Event{ID: id, Type: TypeChatMessage, Time: when, OrganizationID: "org", WorkspaceID: "ws", UserID: user,
				ConversationID: conv, AgentID: agent, Files: files, Images: 1}
		}
		events := []Event{
			msg("1", "ann", "c1", "", at(0, 9), 1),
			msg("2", "ann", "c1", "agent-a", at(0, 10), 0),
			msg("3", "ann", "c2", "agent-b", at(1, 23), 2),
			msg("4", "bob", "c3", "agent-a", at(1, 8), 0),
			msg("4", "bob", "c3", "agent-a", at(1, 8), 0),                                            // repeated in the batch
			msg("5", "bob", "c3", "", at(40, 8), 0),                                                  // outside the window
			{ID: "x", Type: TypeChatMessage, Time: at(0, 9), OrganizationID: "other", UserID: "eve"}, // another Organization
			{ID: "s1", Type: TypeSession, Time: at(0, 9), OrganizationID: "org", WorkspaceID: "ws", UserID: "ann", Client: "cli", Prompts: 4, DurationMS: 1_800_000},
			{ID: "s2", Type: TypeSession, Time: at(0, 11), OrganizationID: "org", WorkspaceID: "ws2", UserID: "bob", Client: "acp", Prompts: 1, DurationMS: 3_600_000},
			{ID: "s3", Type: TypeSession, Time: at(0, 12), OrganizationID: "org", WorkspaceID: "ws", UserID: "ann", Client: "cli", Prompts: 2},
			{ID: "t1", Type: TypeToolCall, Time: at(0, 9), OrganizationID: "org", WorkspaceID: "ws", UserID: "ann", ToolName: "run_command", Status: "success", Approval: "ask"},
			{ID: "t2", Type: TypeToolCall, Time: at(0, 9), OrganizationID: "org", WorkspaceID: "ws", UserID: "ann", ToolName: "run_command", Status: "failure", Approval: "always"},
			{ID: "t3", Type: TypeToolCall, Time: at(0, 9), OrganizationID: "org", WorkspaceID: "ws", UserID: "ann", ToolName: "read_file", Status: "success"},
			{ID: "k1", Type: TypeTokens, Time: at(0, 9), OrganizationID: "org", WorkspaceID: "ws", UserID: "ann", Model: "codestral", InputTokens: 100, OutputTokens: 7},
			{ID: "k2", Type: TypeTokens, Time: at(0, 10), OrganizationID: "org", WorkspaceID: "ws", UserID: "ann", Model: "codestral", InputTokens: 50, OutputTokens: 3, CachedTokens: 20},
			{ID: "n1", Type: TypeNextEdit, Time: at(1, 3), OrganizationID: "org", WorkspaceID: "ws", UserID: "ann", Outcome: "accepted", Surface: "ghost_text", LinesInserted: 3, LinesDeleted: 1, LinesUnchanged: 5},
			{ID: "n2", Type: TypeNextEdit, Time: at(1, 4), OrganizationID: "org", WorkspaceID: "ws2", UserID: "bob", Outcome: "rejected", ForceGenerated: true, Surface: "widget"},
		}
		if n := record(t, db, events); n != len(events)-1 {
			t.Fatalf("%d events new, want %d", n, len(events)-1)
		}
		// A retry of the same events changes nothing.
		if n := record(t, db, events[:3]); n != 0 {
			t.Fatalf("a retry stored %d events again", n)
		}
		w := Window{Start: day, End: day.AddDate(0, 0, 30)}

		users := view(t, db, func(tx *store.Tx) ([]UserStat, error) { return WorkByUser(ctx, tx, "org", w) })
		want := []UserStat{
			{MessagesCount: 3, FilesCount: 3, ImagesCount: 3, UniqueConversationsCount: 2, UserID: "ann", LastMessageAt: "2026-03-03T23:00:00Z", UniqueAgentsCount: 2, MessagesToAgentsCount: 2},
			{MessagesCount: 1, ImagesCount: 1, UniqueConversationsCount: 1, UserID: "bob", LastMessageAt: "2026-03-03T08:00:00Z", UniqueAgentsCount: 1, MessagesToAgentsCount: 1},
		}
		if fmt.Sprint(users) != fmt.Sprint(want) {
			t.Errorf("by user:\n got %+v\nwant %+v", users, want)
		}
		// A window of a few hours, not aligned to days.
		users = view(t, db, func(tx *store.Tx) ([]UserStat, error) {
			return WorkByUser(ctx, tx, "org", Window{Start: at(0, 10).Add(30 * time.Minute), End: at(1, 9)})
		})
		if len(users) != 2 || users[0].MessagesCount != 1 || users[0].UniqueAgentsCount != 1 || users[1].UserID != "bob" {
			t.Errorf("by user over hours = %+v", users)
		}

		agents := view(t, db, func(tx *store.Tx) ([]AgentStat, error) { return WorkByAgent(ctx, tx, "org", w) })
		if len(agents) != 2 || agents[0].AgentID != "agent-a" || agents[0].MessagesCount != 2 || agents[0].UniqueUsersCount != 2 ||
			agents[0].UniqueConversationsCount != 2 || agents[1].FilesCount != 2 || agents[1].LastMessageAt != "2026-03-03T23:00:00Z" {
			t.Errorf("by agent = %+v", agents)
		}

		byDay := view(t, db, func(tx *store.Tx) ([]TimeStat, error) { return WorkByTime(ctx, tx, "org", w, "day") })
		if len(byDay) != 2 || *byDay[0].TimeBucket != "2026-03-02T00:00:00Z" || byDay[0].MessagesCount != 2 || byDay[0].UniqueAgentsCount != 1 ||
			byDay[1].UniqueUsersCount != 2 || byDay[1].UniqueConversationsCount != 2 || byDay[1].MessagesToAgentsCount != 2 {
			t.Errorf("by day = %+v", byDay)
		}
		byMonth := view(t, db, func(tx *store.Tx) ([]TimeStat, error) {
			return WorkByTime(ctx, tx, "org", Window{Start: day, End: day.AddDate(0, 3, 0)}, "month")
		})
		if len(byMonth) != 2 || *byMonth[0].TimeBucket != "2026-03-01T00:00:00Z" || byMonth[0].MessagesCount != 4 ||
			byMonth[0].UniqueConversationsCount != 3 || *byMonth[1].TimeBucket != "2026-04-01T00:00:00Z" || byMonth[1].MessagesCount != 1 {
			t.Errorf("by month = %+v", byMonth)
		}
		byWeek := view(t, db, func(tx *store.Tx) ([]TimeStat, error) { return WorkByTime(ctx, tx, "org", w, "week") })
		if len(byWeek) != 1 || *byWeek[0].TimeBucket != "2026-03-02T00:00:00Z" || byWeek[0].MessagesCount != 4 {
			t.Errorf("by week = %+v", byWeek)
		}
		byHour := view(t, db, func(tx *store.Tx) ([]TimeStat, error) { return WorkByTime(ctx, tx, "org", w, "hour") })
		if len(byHour) != 4 || *byHour[1].TimeBucket != "2026-03-02T10:00:00Z" || byHour[1].MessagesToAgentsCount != 1 {
			t.Errorf("by hour = %+v", byHour)
		}

		code := view(t, db, func(tx *store.Tx) (WorkspaceStats, error) { return CodeByWorkspace(ctx, tx, "org", "", w) })
		if fmt.Sprint(code.Sessions) != "[{2026-03-02 3 2 1 0}]" || fmt.Sprint(code.UserPrompts) != "[{2026-03-02 7 6 1 0}]" ||
			fmt.Sprint(code.ActiveUsers) != "[{2026-03-02 2 1 1 0}]" || fmt.Sprint(code.SessionDurations) != "[{2026-03-02 1.5}]" {
			t.Errorf("sessions, prompts, users, durations = %v %v %v %v", code.Sessions, code.UserPrompts, code.ActiveUsers, code.SessionDurations)
		}
		if fmt.Sprint(code.ConsumedTokens) != "[{2026-03-02 codestral 20 150 10}]" {
			t.Errorf("tokens = %v", code.ConsumedTokens)
		}
		if fmt.Sprint(code.ToolCalls) != "[{2026-03-02 3 2 1 0 1 1 0}]" ||
			fmt.Sprint(code.ToolCallsByName) != "[{2026-03-02 run_command 2} {2026-03-02 read_file 1}]" {
			t.Errorf("tool calls = %v %v", code.ToolCalls, code.ToolCallsByName)
		}
		one := view(t, db, func(tx *store.Tx) (WorkspaceStats, error) { return CodeByWorkspace(ctx, tx, "org", "ws2", w) })
		if fmt.Sprint(one.Sessions) != "[{2026-03-02 1 0 1 0}]" || len(one.ConsumedTokens) != 0 || len(one.ToolCalls) != 0 {
			t.Errorf("one Workspace = %+v", one)
		}

		org := view(t, db, func(tx *store.Tx) (OrganizationStats, error) { return CodeByOrganization(ctx, tx, "org", w) })
		if fmt.Sprint(org.NextEditSuggestions) != "[{2026-03-03 2 1 1 0 0 0 1 1 1 1}]" ||
			fmt.Sprint(org.NextEditActiveUsers) != "[{2026-03-03 2}]" || fmt.Sprint(org.NextEditModifiedLOC) != "[{2026-03-03 3 1 5 9}]" {
			t.Errorf("next edits = %v %v %v", org.NextEditSuggestions, org.NextEditActiveUsers, org.NextEditModifiedLOC)
		}
		none := view(t, db, func(tx *store.Tx) (OrganizationStats, error) {
			return CodeByOrganization(ctx, tx, "org", Window{Start: day.AddDate(0, 0, 1).Add(5 * time.Hour), End: day.AddDate(0, 0, 2)})
		})
		if len(none.NextEditSuggestions) != 0 || none.NextEditActiveUsers == nil {
			t.Errorf("after the last edit = %+v", none)
		}
	})
}

// Reports merge the stored sketches largest bucket first and reuse a
// buffer for sets: the count and the encoding must not depend on the order
// of the merges, and earlier merged sets must not be overwritten.
func TestSketchMergeOrder(t *testing.T) {
	var parts [][]byte
	for _, n := range []int{3, 40, 90, 1, 200, 7} {
		var s Sketch
		for i := range n {
			s.Add(fmt.Sprint("member-", n, "-", i%50))
		}
		parts = append(parts, s.Encode())
	}
	for _, tc := range []struct {
		parts [][]byte
		want  int64
	}{
		{parts[:2], 43},              // stays an exact set
		{parts[:4], 3 + 40 + 50 + 1}, // still exact
		{parts, 0},                   // becomes registers: compared by order only
	} {
		var forward, backward Sketch
		for i := range tc.parts {
			forward.mergeEncoded(tc.parts[i])
			backward.mergeEncoded(tc.parts[len(tc.parts)-1-i])
		}
		if string(forward.Encode()) != string(backward.Encode()) {
			t.Fatalf("merging %d sketches in two orders gives two encodings", len(tc.parts))
		}
		if tc.want != 0 && forward.Count() != tc.want {
			t.Errorf("merged count = %d, want %d", forward.Count(), tc.want)
		}
	}
}

// The report's merges (registers eight at a time, sets by looking up each
// member first) must give what merging member by member gives.
func TestSketchMergeMatchesAdding(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for round := range 500 {
		var merged, added Sketch
		for range 1 + rng.IntN(6) {
			var part Sketch
			for range rng.IntN(1 + []int{3, 40, 120, 300}[rng.IntN(4)]) {
				id := fmt.Sprint("member-", rng.IntN(400))
				part.Add(id)
				added.Add(id)
			}
			merged.mergeEncoded(part.Encode())
		}
		if string(merged.Encode()) != string(added.Encode()) {
			t.Fatalf("round %d: merged %d members, added %d", round, merged.Count(), added.Count())
		}
	}
	dst, src := make([]uint8, registers), make([]uint8, registers)
	for i := range dst {
		dst[i], src[i] = uint8(rng.IntN(64-precision+2)), uint8(rng.IntN(64-precision+2))
	}
	want := make([]uint8, registers)
	for i := range want {
		want[i] = max(dst[i], src[i])
	}
	maxRegisters(dst, src)
	if string(dst) != string(want) {
		t.Fatalf("maxRegisters = %v, want %v", dst, want)
	}
}

// Series split by the days of a zone: in Tokyo (UTC+9) a message at 20:00
// UTC is on the next day; in Kolkata (UTC+5:30) a day starts at the UTC
// hour holding its midnight, so that each hour counts on one day only.
func TestSeriesInAZone(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		at := func(s string) time.Time {
			v, err := time.Parse(time.RFC3339, s)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		msg := func(id, when string) Event {
			return Event{ID: id, Type: TypeChatMessage, Time: at(when), OrganizationID: "org", WorkspaceID: "ws", UserID: "ann", ConversationID: "c"}
		}
		record(t, db, []Event{
			msg("1", "2026-03-02T20:00:00Z"),
			msg("2", "2026-03-03T10:00:00Z"),
			msg("3", "2026-03-03T18:10:00Z"), // Kolkata: March 3, 23:40, in the hour that starts March 4
			msg("4", "2026-03-03T18:40:00Z"), // Kolkata: March 4, 00:10
			{ID: "s", Type: TypeSession, Time: at("2026-03-02T20:00:00Z"), OrganizationID: "org", WorkspaceID: "ws", UserID: "ann", Client: "cli", Prompts: 2},
		})
		for _, tc := range []struct {
			zone, from string
			want       string // each bucket and its messages
			sessions   string
		}{
			{"UTC", "2026-03-02T00:00:00Z", "2026-03-02T00:00:00Z:1 2026-03-03T00:00:00Z:3", "2026-03-02:1"},
			{"Asia/Tokyo", "2026-03-02T15:00:00Z", "2026-03-03T00:00:00+09:00:2 2026-03-04T00:00:00+09:00:2", "2026-03-03:1"},
			{"Asia/Kolkata", "2026-03-01T18:30:00Z", "2026-03-03T00:00:00+05:30:2 2026-03-04T00:00:00+05:30:2", "2026-03-03:1"},
		} {
			loc, err := time.LoadLocation(tc.zone)
			if err != nil {
				t.Fatal(err)
			}
			w := Window{Start: at(tc.from), End: at(tc.from).AddDate(0, 0, 3), Zone: loc}
			stats := view(t, db, func(tx *store.Tx) ([]TimeStat, error) { return WorkByTime(ctx, tx, "org", w, "day") })
			var got []string
			for _, s := range stats {
				got = append(got, fmt.Sprint(*s.TimeBucket, ":", s.MessagesCount))
			}
			if strings.Join(got, " ") != tc.want {
				t.Errorf("%s: days %v, want %s", tc.zone, got, tc.want)
			}
			code := view(t, db, func(tx *store.Tx) (WorkspaceStats, error) { return CodeByWorkspace(ctx, tx, "org", "", w) })
			if len(code.Sessions) != 1 || fmt.Sprint(code.Sessions[0].Day, ":", code.Sessions[0].Sessions) != tc.sessions {
				t.Errorf("%s: sessions %+v, want %s", tc.zone, code.Sessions, tc.sessions)
			}
		}
	})
}

// A rollup row whose data does not decode fails the report and the next
// write to it, instead of being read as zeros or overwritten.
func TestBadRowData(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		when := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
		e := Event{ID: "1", Type: TypeChatMessage, Time: when, OrganizationID: "org", WorkspaceID: "ws", UserID: "ann", ConversationID: "c"}
		record(t, db, []Event{e})
		if err := db.Transact(ctx, func(tx *store.Tx) error {
			_, err := tx.Exec(ctx, `UPDATE analytics_chat_users SET data = ? WHERE level = 0`, []byte{0x80})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		w := Window{Start: when, End: when.Add(time.Hour)}
		err := db.View(ctx, func(tx *store.Tx) error { _, err := WorkByUser(ctx, tx, "org", w); return err })
		if !steward.IsKind(err, steward.KindInternal) || !strings.Contains(err.Error(), "analytics_chat_users holds data that does not decode") {
			t.Errorf("report over a bad row: %v", err)
		}
		e.ID = "2"
		err = db.Transact(ctx, func(tx *store.Tx) error { return Write(ctx, tx, []Event{e}) })
		if !steward.IsKind(err, steward.KindInternal) {
			t.Errorf("write to a bad row: %v", err)
		}
	})
}

// Writers in two processes (two handles on one database), several each,
// add to the same rollup rows at once: every figure is read, merged and
// written back, and none may be lost.
func TestConcurrentWriters(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			ctx := context.Background()
			first, cfg := e.Open(t)
			second := storetest.OpenAgain(t, cfg)
			when := time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)
			const writers, batches, perBatch = 3, 10, 8
			errs := make(chan error, 2*writers)
			for p, db := range []*store.DB{first, second} {
				for w := range writers {
					go func() {
						for n := range batches {
							var events []Event
							for i := range perBatch {
								id := fmt.Sprint(p, "-", w, "-", n, "-", i)
								events = append(events,
									Event{ID: "m" + id, Type: TypeChatMessage, Time: when, OrganizationID: "org", WorkspaceID: "ws", UserID: "ann", ConversationID: "c" + id},
									Event{ID: "t" + id, Type: TypeToolCall, Time: when, OrganizationID: "org", WorkspaceID: "ws", UserID: "ann", ToolName: "edit", Status: "success"})
							}
							if err := db.Transact(ctx, func(tx *store.Tx) error { return Write(ctx, tx, events) }); err != nil {
								errs <- err
								return
							}
						}
						errs <- nil
					}()
				}
			}
			for range 2 * writers {
				if err := <-errs; err != nil {
					t.Fatal(err)
				}
			}
			const total = 2 * writers * batches * perBatch
			w := Window{Start: when.Add(-time.Hour), End: when.AddDate(0, 0, 90)}
			users := view(t, first, func(tx *store.Tx) ([]UserStat, error) { return WorkByUser(ctx, tx, "org", w) })
			if len(users) != 1 || users[0].MessagesCount != total {
				t.Errorf("by user = %+v, want %d messages", users, total)
			}
			code := view(t, first, func(tx *store.Tx) (WorkspaceStats, error) { return CodeByWorkspace(ctx, tx, "org", "", w) })
			if len(code.ToolCalls) != 1 || code.ToolCalls[0].Total != total || code.ToolCalls[0].StatusSuccess != total {
				t.Errorf("tool calls = %+v, want %d", code.ToolCalls, total)
			}
		})
	}
}
