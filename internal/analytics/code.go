package analytics

import (
	"cmp"
	"context"
	"slices"
	"strings"

	"github.com/stewardhq/steward/internal/store"
)

// Mistral's Vibe Code daily series. Day is a UTC date (a date of the
// window's zone, see Window).
type (
	SessionStat struct {
		Day          string `json:"day"`
		Sessions     int64  `json:"nb_sessions"`
		CLI          int64  `json:"nb_sessions_cli"`
		ACP          int64  `json:"nb_sessions_acp"`
		Programmatic int64  `json:"nb_sessions_programmatic"`
	}
	PromptsStat struct {
		Day          string `json:"day"`
		Total        int64  `json:"nb_prompts_total"`
		CLI          int64  `json:"nb_prompts_cli"`
		ACP          int64  `json:"nb_prompts_acp"`
		Programmatic int64  `json:"nb_prompts_programmatic"`
	}
	ActiveUsersStat struct {
		Day          string `json:"day"`
		Total        int64  `json:"nb_active_users_total"`
		CLI          int64  `json:"nb_active_users_cli"`
		ACP          int64  `json:"nb_active_users_acp"`
		Programmatic int64  `json:"nb_active_users_programmatic"`
	}
	TokensStat struct {
		Day          string `json:"day"`
		Model        string `json:"model"`
		CachedTokens int64  `json:"cached_tokens"`
		InputTokens  int64  `json:"input_tokens"`
		OutputTokens int64  `json:"output_tokens"`
	}
	ToolCallsStat struct {
		Day            string `json:"day"`
		Total          int64  `json:"total"`
		StatusSuccess  int64  `json:"status_success"`
		StatusFailure  int64  `json:"status_failure"`
		StatusSkipped  int64  `json:"status_skipped"`
		ApprovalAsk    int64  `json:"approval_ask"`
		ApprovalAlways int64  `json:"approval_always"`
		ApprovalNever  int64  `json:"approval_never"`
	}
	ToolCallsByNameStat struct {
		Day      string `json:"day"`
		ToolName string `json:"tool_name"`
		Count    int64  `json:"count"`
	}
	SessionDurationStat struct {
		Day                string  `json:"day"`
		TotalDurationHours float64 `json:"total_duration_hours"`
	}
)

// WorkspaceStats is Mistral's VibeWorkspaceStatsOUT without its window.
type WorkspaceStats struct {
	Sessions         []SessionStat         `json:"sessions"`
	UserPrompts      []PromptsStat         `json:"user_prompts"`
	ActiveUsers      []ActiveUsersStat     `json:"active_users"`
	ConsumedTokens   []TokensStat          `json:"consumed_tokens"`
	ToolCalls        []ToolCallsStat       `json:"tool_calls"`
	ToolCallsByName  []ToolCallsByNameStat `json:"tool_calls_by_name"`
	SessionDurations []SessionDurationStat `json:"session_durations"`
}

// days splits w into the days of its zone, covered by hour to day pieces.
func days(w Window) ([]string, []piece, map[piece]int) {
	starts, pieces, at := bucketsOf(w, "day", levelDay)
	names := make([]string, len(starts))
	for i, t := range starts {
		names[i] = t.Format("2006-01-02")
	}
	return names, pieces, at
}

// perDay holds one value per day, for the days that have one.
type perDay[T any] []*T

func (p perDay[T]) get(i int) *T {
	if p[i] == nil {
		p[i] = new(T)
	}
	return p[i]
}

// list returns the days that have a value, in order, each completed by
// fill with its day's index.
func (p perDay[T]) list(fill func(v *T, i int)) []T {
	out := []T{}
	for i, v := range p {
		if v != nil {
			fill(v, i)
			out = append(out, *v)
		}
	}
	return out
}

// CodeByWorkspace returns the coding activity in w of one Workspace, or of
// every Workspace of the Organization when workspace is empty.
func CodeByWorkspace(ctx context.Context, tx *store.Tx, org, workspace string, w Window) (WorkspaceStats, error) {
	names, pieces, at := days(w)
	n := len(names)
	sessions, prompts := make(perDay[SessionStat], n), make(perDay[PromptsStat], n)
	durations := make(perDay[SessionDurationStat], n)
	type usersOfDay struct{ total, cli, acp, programmatic Sketch }
	users := make(perDay[usersOfDay], n)
	durationMS := make([]int64, n)
	err := codeSessions.read(ctx, tx, org, workspace, pieces, true, func(s *stored) {
		i := at[s.piece]
		ss, ps, us := sessions.get(i), prompts.get(i), users.get(i)
		durations.get(i)
		ss.Sessions += s.sums[0]
		ps.Total += s.sums[1]
		durationMS[i] += s.sums[2]
		us.total.mergeEncoded(s.sketches[0])
		switch string(s.keys[1]) {
		case "cli":
			ss.CLI += s.sums[0]
			ps.CLI += s.sums[1]
			us.cli.mergeEncoded(s.sketches[0])
		case "acp":
			ss.ACP += s.sums[0]
			ps.ACP += s.sums[1]
			us.acp.mergeEncoded(s.sketches[0])
		case "programmatic":
			ss.Programmatic += s.sums[0]
			ps.Programmatic += s.sums[1]
			us.programmatic.mergeEncoded(s.sketches[0])
		}
	})
	if err != nil {
		return WorkspaceStats{}, err
	}
	out := WorkspaceStats{
		Sessions:    sessions.list(func(v *SessionStat, i int) { v.Day = names[i] }),
		UserPrompts: prompts.list(func(v *PromptsStat, i int) { v.Day = names[i] }),
		SessionDurations: durations.list(func(v *SessionDurationStat, i int) {
			v.Day, v.TotalDurationHours = names[i], float64(durationMS[i])/3_600_000
		}),
		ActiveUsers: []ActiveUsersStat{},
	}
	for i, u := range users {
		if u != nil {
			out.ActiveUsers = append(out.ActiveUsers, ActiveUsersStat{Day: names[i], Total: u.total.Count(), CLI: u.cli.Count(),
				ACP: u.acp.Count(), Programmatic: u.programmatic.Count()})
		}
	}

	tokens := map[int]map[string]*TokensStat{}
	err = codeTokens.read(ctx, tx, org, workspace, pieces, true, func(s *stored) {
		i := at[s.piece]
		if tokens[i] == nil {
			tokens[i] = map[string]*TokensStat{}
		}
		t := totalsOf(tokens[i], s.keys[1])
		if t.Model == "" {
			t.Day, t.Model = names[i], string(s.keys[1])
		}
		t.CachedTokens += s.sums[0]
		t.InputTokens += s.sums[1]
		t.OutputTokens += s.sums[2]
	})
	if err != nil {
		return WorkspaceStats{}, err
	}
	out.ConsumedTokens = []TokensStat{}
	for _, m := range tokens {
		for _, t := range m {
			out.ConsumedTokens = append(out.ConsumedTokens, *t)
		}
	}
	slices.SortFunc(out.ConsumedTokens, func(a, b TokensStat) int {
		return cmp.Or(strings.Compare(a.Day, b.Day), strings.Compare(a.Model, b.Model))
	})

	calls := make(perDay[ToolCallsStat], n)
	byName := map[int]map[string]int64{}
	err = codeTools.read(ctx, tx, org, workspace, pieces, true, func(s *stored) {
		i := at[s.piece]
		c := calls.get(i)
		c.Total += s.sums[0]
		c.StatusSuccess += s.sums[1]
		c.StatusFailure += s.sums[2]
		c.StatusSkipped += s.sums[3]
		c.ApprovalAsk += s.sums[4]
		c.ApprovalAlways += s.sums[5]
		c.ApprovalNever += s.sums[6]
		if byName[i] == nil {
			byName[i] = map[string]int64{}
		}
		byName[i][string(s.keys[1])] += s.sums[0]
	})
	out.ToolCalls = calls.list(func(v *ToolCallsStat, i int) { v.Day = names[i] })
	out.ToolCallsByName = []ToolCallsByNameStat{}
	for i, m := range byName {
		for name, count := range m {
			out.ToolCallsByName = append(out.ToolCallsByName, ToolCallsByNameStat{Day: names[i], ToolName: name, Count: count})
		}
	}
	slices.SortFunc(out.ToolCallsByName, func(a, b ToolCallsByNameStat) int {
		return cmp.Or(strings.Compare(a.Day, b.Day), cmp.Compare(b.Count, a.Count), strings.Compare(a.ToolName, b.ToolName))
	})
	return out, err
}

// Mistral's next-edit daily series.
type (
	NextEditStat struct {
		Day                 string `json:"day"`
		TotalSuggestions    int64  `json:"total_suggestions"`
		OutcomeAccepted     int64  `json:"outcome_accepted"`
		OutcomeRejected     int64  `json:"outcome_rejected"`
		OutcomeTimeout      int64  `json:"outcome_timeout"`
		OutcomeAborted      int64  `json:"outcome_aborted"`
		OutcomeDismissed    int64  `json:"outcome_dismissed"`
		ForceGeneratedTrue  int64  `json:"force_generated_true"`
		ForceGeneratedFalse int64  `json:"force_generated_false"`
		SurfaceWidget       int64  `json:"surface_widget"`
		SurfaceGhostText    int64  `json:"surface_ghost_text"`
	}
	NextEditUsersStat struct {
		Day         string `json:"day"`
		ActiveUsers int64  `json:"nb_active_users"`
	}
	ModifiedLinesStat struct {
		Day       string `json:"day"`
		Inserted  int64  `json:"lines_inserted"`
		Deleted   int64  `json:"lines_deleted"`
		Unchanged int64  `json:"lines_unchanged"`
		Total     int64  `json:"lines_total"`
	}
)

// OrganizationStats is Mistral's VibeOrganizationStatsOUT without its
// window.
type OrganizationStats struct {
	NextEditSuggestions []NextEditStat      `json:"next_edit_suggestions"`
	NextEditActiveUsers []NextEditUsersStat `json:"next_edit_active_users"`
	NextEditModifiedLOC []ModifiedLinesStat `json:"next_edit_modified_loc"`
}

// CodeByOrganization returns the Organization's next-edit activity in w.
func CodeByOrganization(ctx context.Context, tx *store.Tx, org string, w Window) (OrganizationStats, error) {
	names, pieces, at := days(w)
	n := len(names)
	suggestions, lines := make(perDay[NextEditStat], n), make(perDay[ModifiedLinesStat], n)
	users := make([]*Sketch, n)
	err := nextEdits.read(ctx, tx, org, "", pieces, true, func(s *stored) {
		i := at[s.piece]
		x := suggestions.get(i)
		for j, f := range []*int64{&x.TotalSuggestions, &x.OutcomeAccepted, &x.OutcomeRejected, &x.OutcomeTimeout, &x.OutcomeAborted,
			&x.OutcomeDismissed, &x.ForceGeneratedTrue, &x.ForceGeneratedFalse, &x.SurfaceWidget, &x.SurfaceGhostText} {
			*f += s.sums[j]
		}
		l := lines.get(i)
		l.Inserted += s.sums[10]
		l.Deleted += s.sums[11]
		l.Unchanged += s.sums[12]
		l.Total += s.sums[10] + s.sums[11] + s.sums[12]
		if users[i] == nil {
			users[i] = &Sketch{}
		}
		users[i].mergeEncoded(s.sketches[0])
	})
	out := OrganizationStats{
		NextEditSuggestions: suggestions.list(func(v *NextEditStat, i int) { v.Day = names[i] }),
		NextEditModifiedLOC: lines.list(func(v *ModifiedLinesStat, i int) { v.Day = names[i] }),
		NextEditActiveUsers: []NextEditUsersStat{},
	}
	for i, u := range users {
		if u != nil {
			out.NextEditActiveUsers = append(out.NextEditActiveUsers, NextEditUsersStat{Day: names[i], ActiveUsers: u.Count()})
		}
	}
	return out, err
}
