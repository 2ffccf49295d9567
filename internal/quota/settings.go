package quota

import (
	"context"
	"database/sql"
	"slices"
	"strconv"

	"github.com/stewardhq/steward/internal/audit"
	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

// Load reads an Organization's limits.
func Load(ctx context.Context, tx *store.Tx, orgID string) (Settings, error) {
	s := Settings{Organization: RateLimits{Models: map[string]TokenLimits{}}, Workspaces: map[string]RateLimits{}, WorkspaceSpends: map[string]int64{}}
	var cap sql.NullInt64
	var zone string
	if err := tx.QueryRow(ctx, `SELECT spend_limit, time_zone FROM organizations WHERE id = ?`, orgID).Scan(&cap, &zone); err != nil {
		return s, err
	}
	loc, err := location(zone)
	if err != nil {
		return s, err
	}
	s.Location = loc
	if cap.Valid {
		s.SpendCap = &cap.Int64
	}
	err = tx.Each(ctx, `SELECT id, spend_limit FROM workspaces WHERE organization_id = ? AND spend_limit IS NOT NULL AND archived_at IS NULL`, []any{orgID}, func(r *sql.Rows) error {
		var ws string
		var v int64
		if err := r.Scan(&ws, &v); err != nil {
			return err
		}
		s.WorkspaceSpends[ws] = v
		return nil
	})
	if err != nil {
		return s, err
	}
	err = tx.Each(ctx, `SELECT workspace_id, model, requests_per_second, tokens_per_minute, tokens_per_month FROM rate_limits WHERE organization_id = ?`, []any{orgID}, func(r *sql.Rows) error {
		var ws, model string
		var rps, tpm, tpmonth sql.NullInt64
		if err := r.Scan(&ws, &model, &rps, &tpm, &tpmonth); err != nil {
			return err
		}
		rl := s.Organization
		if ws != "" {
			if rl = s.Workspaces[ws]; rl.Models == nil {
				rl.Models = map[string]TokenLimits{}
			}
		}
		if model == "" {
			rl.RequestsPerSecond = rps.Int64
		} else {
			rl.Models[model] = TokenLimits{PerMinute: tpm.Int64, PerMonth: tpmonth.Int64}
		}
		if ws == "" {
			s.Organization = rl
		} else {
			s.Workspaces[ws] = rl
		}
		return nil
	})
	return s, err
}

// SetRateLimits replaces the rate limits of the Organization or one of its
// active Workspaces, and audits it as rate_limit.rule.update. A limit is 0
// for none or at most its bound (MaxRequestsPerSecond, MaxTokenLimit). A
// Workspace's limits may not exceed the Organization's, nor the
// Organization's fall below an active Workspace's (KindInvalid); a limit a
// Workspace does not set is the Organization's, and is never in the way.
func SetRateLimits(ctx context.Context, tx *store.Tx, actor steward.Actor, org steward.Organization, workspaceID string, rl RateLimits) error {
	if err := CheckRateLimits(rl); err != nil {
		return err
	}
	current, err := Load(ctx, tx, org.ID)
	if err != nil {
		return err
	}
	entry := audit.Entry{EnterpriseAccountID: org.EnterpriseAccountID, OrganizationID: org.ID, Actor: actor,
		EventType: audit.EventRateLimitUpdate, TargetType: audit.TargetRateLimitRule, TargetMetadata: map[string]string{"scope": "organization"}}
	if workspaceID != "" {
		ws, err := directory.ActiveWorkspace(ctx, tx, org.ID, workspaceID)
		if err != nil {
			return err
		}
		if err := checkWithin([]string{"body"}, rl, current.Organization, "a Workspace's"); err != nil {
			return err
		}
		entry.WorkspaceID = ws.ID
		entry.TargetMetadata = map[string]string{"scope": "workspace", "workspace_id": ws.ID, "workspace_name": ws.Name}
	} else {
		archived, err := archivedWorkspaces(ctx, tx, org.ID)
		if err != nil {
			return err
		}
		ids := make([]string, 0, len(current.Workspaces))
		for id := range current.Workspaces {
			if !archived[id] {
				ids = append(ids, id)
			}
		}
		slices.Sort(ids)
		for _, id := range ids {
			if err := checkWithin([]string{"body"}, current.Workspaces[id], rl, "Workspace "+id+"'s"); err != nil {
				return steward.Invalid([]string{"body"}, "the Organization's limits would fall below those of Workspace %s: lower the Workspace's first", id)
			}
		}
	}
	if _, err := tx.Exec(ctx, `DELETE FROM rate_limits WHERE organization_id = ? AND workspace_id = ?`, org.ID, workspaceID); err != nil {
		return err
	}
	rows := [][]any{}
	if rl.RequestsPerSecond > 0 {
		rows = append(rows, []any{org.ID, workspaceID, "", rl.RequestsPerSecond, nil, nil})
	}
	for model, t := range rl.Models {
		if t.PerMinute > 0 || t.PerMonth > 0 {
			rows = append(rows, []any{org.ID, workspaceID, model, nil, nullable(t.PerMinute), nullable(t.PerMonth)})
		}
	}
	if err := tx.InsertMany(ctx, "rate_limits", []string{"organization_id", "workspace_id", "model", "requests_per_second", "tokens_per_minute", "tokens_per_month"}, rows, ""); err != nil {
		return err
	}
	limitsChanged(tx, org.ID)
	before := current.RateLimitsOf(workspaceID)
	entry.EventMetadata = map[string]string{
		"requests_per_second_before": strconv.FormatInt(before.RequestsPerSecond, 10),
		"requests_per_second_after":  strconv.FormatInt(rl.RequestsPerSecond, 10),
		"models_after":               strconv.Itoa(len(rl.Models)),
	}
	return audit.Record(ctx, tx, entry)
}

// SetModelLimits sets one model's token limits (nil for none) of the
// Organization (workspaceID "") or of one of its active Workspaces, keeping
// its other limits, or removes them when both are nil, through
// SetRateLimits.
func SetModelLimits(ctx context.Context, tx *store.Tx, actor steward.Actor, org steward.Organization, workspaceID, model string, perMinute, perMonth *int64) error {
	current, err := Load(ctx, tx, org.ID)
	if err != nil {
		return err
	}
	rl := current.RateLimitsOf(workspaceID)
	if perMinute == nil && perMonth == nil {
		delete(rl.Models, model)
	} else {
		rl.Models[model] = TokenLimits{PerMinute: orZero(perMinute), PerMonth: orZero(perMonth)}
	}
	return SetRateLimits(ctx, tx, actor, org, workspaceID, rl)
}

// SetLimits sets the monthly spend cap and the requests per second (nil for
// none) of the Organization (workspaceID "") or of one of its active
// Workspaces, keeping its token limits, through SetRateLimits and
// SetSpendCap. Only what differs is written, so that the audit log gets no
// entry for a limit saved as it was.
func SetLimits(ctx context.Context, tx *store.Tx, actor steward.Actor, org steward.Organization, workspaceID string, spendCap, requestsPerSecond *int64) error {
	current, err := Load(ctx, tx, org.ID)
	if err != nil {
		return err
	}
	rl := current.RateLimitsOf(workspaceID)
	if want := orZero(requestsPerSecond); want != rl.RequestsPerSecond {
		rl.RequestsPerSecond = want
		if err := SetRateLimits(ctx, tx, actor, org, workspaceID, rl); err != nil {
			return err
		}
	}
	if was := current.SpendCapOf(workspaceID); (was == nil) != (spendCap == nil) || (spendCap != nil && *spendCap != *was) {
		return SetSpendCap(ctx, tx, actor, org, workspaceID, spendCap)
	}
	return nil
}

// orZero is a limit that may be nil for none, as 0 for none.
func orZero(v *int64) int64 {
	if v == nil {
		return 0
	}
	return *v
}

// archivedWorkspaces returns the ids of an Organization's archived
// Workspaces: their limits no longer apply to anything, so they never hold
// the Organization's back.
func archivedWorkspaces(ctx context.Context, tx *store.Tx, orgID string) (map[string]bool, error) {
	ids, err := tx.Strings(ctx, `SELECT id FROM workspaces WHERE organization_id = ? AND archived_at IS NOT NULL`, orgID)
	out := make(map[string]bool, len(ids))
	for _, id := range ids {
		out[id] = true
	}
	return out, err
}

func nullable(v int64) any {
	if v == 0 {
		return nil
	}
	return v
}

func limitsChanged(tx *store.Tx, orgID string) {
	tx.Notify(store.Change{Topic: TopicLimits, OrganizationID: orgID})
}

// SetSpendCap sets (0 ≤ amount ≤ MaxAmount) or removes (nil) the monthly
// spend cap of the Organization or of one of its active Workspaces, in
// whole units, and audits it. A Workspace cap may not exceed the
// Organization's, nor the Organization's fall below a Workspace's
// (KindInvalid).
func SetSpendCap(ctx context.Context, tx *store.Tx, actor steward.Actor, org steward.Organization, workspaceID string, amount *int64) error {
	field := []string{"body", "amount"}
	if err := CheckAmount(amount); err != nil {
		return err
	}
	current, err := Load(ctx, tx, org.ID)
	if err != nil {
		return err
	}
	show := func(v *int64) string {
		if v == nil {
			return "none"
		}
		return strconv.FormatInt(*v, 10)
	}
	entry := audit.Entry{EnterpriseAccountID: org.EnterpriseAccountID, OrganizationID: org.ID, Actor: actor}
	if workspaceID == "" {
		for ws, v := range current.WorkspaceSpends {
			if amount != nil && v > *amount {
				return steward.Invalid(field, "Workspace %s has a cap of %d, above this one: lower it first", ws, v)
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE organizations SET spend_limit = ? WHERE id = ?`, ptr(amount), org.ID); err != nil {
			return err
		}
		entry.EventType, entry.TargetType = audit.EventMonthlyLimitUpdated, audit.TargetMonthlyLimit
		entry.EventMetadata = map[string]string{"amount_before": show(current.SpendCap), "amount_after": show(amount)}
		entry.TargetMetadata = map[string]string{"organization_id": org.ID}
	} else {
		ws, err := directory.ActiveWorkspace(ctx, tx, org.ID, workspaceID)
		if err != nil {
			return err
		}
		if amount != nil && current.SpendCap != nil && *amount > *current.SpendCap {
			return steward.Invalid(field, "a Workspace cap may not exceed the Organization's %d", *current.SpendCap)
		}
		if _, err := tx.Exec(ctx, `UPDATE workspaces SET spend_limit = ? WHERE id = ?`, ptr(amount), ws.ID); err != nil {
			return err
		}
		entry.WorkspaceID = ws.ID
		entry.EventType, entry.TargetType = audit.EventWorkspaceMonthlyLimitUpdated, audit.TargetWorkspaceMonthly
		entry.EventMetadata = map[string]string{"amount_before": show(current.SpendCapOf(ws.ID)), "amount_after": show(amount)}
		entry.TargetMetadata = map[string]string{"workspace_id": ws.ID, "workspace_name": ws.Name}
	}
	limitsChanged(tx, org.ID)
	return audit.Record(ctx, tx, entry)
}

func ptr(v *int64) any {
	if v == nil {
		return nil
	}
	return *v
}
