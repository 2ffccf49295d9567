// Package quota holds an Organization's rate limits and spend caps, the
// Admin API services that change them, and the gateway's Limits: the
// enforcer that turns them into checks of the limiter on every request.
package quota

import (
	"context"
	"database/sql"
	"slices"
	"strconv"
	"time"

	"github.com/stewardhq/steward/internal/audit"
	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/usage"
)

// TopicLimits is the change topic of limits.
const TopicLimits = "limits"

// Bounds of the limits an admin sets: SetSpendCap and SetRateLimits refuse
// a larger value with a KindInvalid error naming the field and the bound.
// Every number the enforcer derives from them stays within int64, and the
// limiter's GCRA, which counts time in nanoseconds, stays meaningful.
const (
	// MaxAmount is the largest spend cap, in whole currency units: 10^12
	// units are 10^18 micro-units, which leaves int64 (up to 9.2×10^18)
	// room for the month's spend and the reservations in flight counted
	// against the cap.
	MaxAmount = 1_000_000_000_000
	// MaxTokenLimit is the largest tokens per minute or per month: 10^15, so
	// that a monthly counter stays below 2^53, where Redis's Lua numbers
	// (doubles) still compare it exactly.
	MaxTokenLimit = 1_000_000_000_000_000
	// MaxRequestsPerSecond is the largest request rate: at most a million a
	// second, each request's share of a second is a microsecond or more,
	// which GCRA's rounding to the nanosecond changes by 0.1% at most.
	MaxRequestsPerSecond = 1_000_000
)

// TokenLimits are one model's limits; 0 is none.
type TokenLimits struct {
	PerMinute, PerMonth int64
}

// RateLimits are an Organization's or a Workspace's rate limits; 0 is none.
type RateLimits struct {
	RequestsPerSecond int64
	Models            map[string]TokenLimits
}

// Scope is what limits apply to: an Organization, or one of its Workspaces.
type Scope struct {
	OrganizationID string
	WorkspaceID    string // "" for the Organization
}

// Settings are every limit of an Organization.
type Settings struct {
	Organization    RateLimits
	Workspaces      map[string]RateLimits
	SpendCap        *int64 // whole units; nil for none
	WorkspaceSpends map[string]int64
	// Location is the Organization's time zone, in which its calendar
	// months start.
	Location *time.Location
}

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
	rows, err := tx.Query(ctx, `SELECT id, spend_limit FROM workspaces WHERE organization_id = ? AND spend_limit IS NOT NULL AND archived_at IS NULL`, orgID)
	if err != nil {
		return s, err
	}
	for rows.Next() {
		var ws string
		var v int64
		if err := rows.Scan(&ws, &v); err != nil {
			rows.Close()
			return s, err
		}
		s.WorkspaceSpends[ws] = v
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return s, err
	}
	rows, err = tx.Query(ctx, `SELECT workspace_id, model, requests_per_second, tokens_per_minute, tokens_per_month FROM rate_limits WHERE organization_id = ?`, orgID)
	if err != nil {
		return s, err
	}
	defer rows.Close()
	for rows.Next() {
		var ws, model string
		var rps, tpm, tpmonth sql.NullInt64
		if err := rows.Scan(&ws, &model, &rps, &tpm, &tpmonth); err != nil {
			return s, err
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
	}
	return s, rows.Err()
}

// RateLimitsOf returns the rate limits of a scope.
func (s Settings) RateLimitsOf(workspaceID string) RateLimits {
	if workspaceID == "" {
		return s.Organization
	}
	rl := s.Workspaces[workspaceID]
	if rl.Models == nil {
		rl.Models = map[string]TokenLimits{}
	}
	return rl
}

// exceeds reports whether a Workspace's limit is above the Organization's;
// 0 is none. A Workspace without a limit of its own exceeds nothing: every
// request passes the Organization's limits as well as its Workspace's.
func exceeds(limit, ceiling int64) bool {
	return ceiling > 0 && limit > ceiling
}

func checkWithin(field []string, inner, outer RateLimits, what string) error {
	if exceeds(inner.RequestsPerSecond, outer.RequestsPerSecond) {
		return steward.Invalid(append(field, "requests_per_second"), "%s requests per second may not exceed the Organization's %d", what, outer.RequestsPerSecond)
	}
	for model, o := range outer.Models {
		i := inner.Models[model]
		if exceeds(i.PerMinute, o.PerMinute) || exceeds(i.PerMonth, o.PerMonth) {
			return steward.Invalid(append(field, "tokens_limits_by_model", model), "%s token limits of %s may not exceed the Organization's", what, model)
		}
	}
	return nil
}

// SetRateLimits replaces the rate limits of the Organization or one of its
// active Workspaces, and audits it as rate_limit.rule.update. A limit is 0
// for none or at most its bound (MaxRequestsPerSecond, MaxTokenLimit). A
// Workspace's limits may not exceed the Organization's, nor the
// Organization's fall below an active Workspace's (KindInvalid); a limit a
// Workspace does not set is the Organization's, and is never in the way.
func SetRateLimits(ctx context.Context, tx *store.Tx, actor steward.Actor, org steward.Organization, workspaceID string, rl RateLimits) error {
	if err := checkRateLimits(rl); err != nil {
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

// checkRateLimits checks every limit of rl against its bound, and the
// model names, naming the first field found wrong (models in name order).
func checkRateLimits(rl RateLimits) error {
	if err := checkLimit([]string{"body", "requests_per_second"}, rl.RequestsPerSecond, MaxRequestsPerSecond); err != nil {
		return err
	}
	models := make([]string, 0, len(rl.Models))
	for model := range rl.Models {
		models = append(models, model)
	}
	slices.Sort(models)
	for _, model := range models {
		field := []string{"body", "tokens_limits_by_model", model}
		if model == "" || len(model) > 256 {
			return steward.Invalid(field, "a model name must have 1 to 256 bytes")
		}
		t := rl.Models[model]
		if err := checkLimit(append(slices.Clip(field), "tokens_per_minute"), t.PerMinute, MaxTokenLimit); err != nil {
			return err
		}
		if err := checkLimit(append(slices.Clip(field), "tokens_per_month"), t.PerMonth, MaxTokenLimit); err != nil {
			return err
		}
	}
	return nil
}

// checkLimit checks one limit, 0 for none, against its bound.
func checkLimit(field []string, v, bound int64) error {
	if v < 0 || v > bound {
		return steward.Invalid(field, "%s must be a whole number from 1 to %d, or null for no limit", field[len(field)-1], bound)
	}
	return nil
}

// checkAmount checks a spend cap in whole units; nil is none.
func checkAmount(amount *int64) error {
	if amount != nil && (*amount < 0 || *amount > MaxAmount) {
		return steward.Invalid([]string{"body", "amount"}, "amount must be a whole number of currency units from 0 to %d", MaxAmount)
	}
	return nil
}

// archivedWorkspaces returns the ids of an Organization's archived
// Workspaces: their limits no longer apply to anything, so they never hold
// the Organization's back.
func archivedWorkspaces(ctx context.Context, tx *store.Tx, orgID string) (map[string]bool, error) {
	rows, err := tx.Query(ctx, `SELECT id FROM workspaces WHERE organization_id = ? AND archived_at IS NOT NULL`, orgID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out[id] = true
	}
	return out, rows.Err()
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
	if err := checkAmount(amount); err != nil {
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
		var before *int64
		if v, ok := current.WorkspaceSpends[ws.ID]; ok {
			before = &v
		}
		entry.WorkspaceID = ws.ID
		entry.EventType, entry.TargetType = audit.EventWorkspaceMonthlyLimitUpdated, audit.TargetWorkspaceMonthly
		entry.EventMetadata = map[string]string{"amount_before": show(before), "amount_after": show(amount)}
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

// SetTimeZone sets the time zone in which the Organization's calendar
// months start (spend caps, monthly token limits, GET /usage), and audits
// it. The month in progress changes at once: its spend is counted again
// from the new month's start.
func SetTimeZone(ctx context.Context, tx *store.Tx, actor steward.Actor, org steward.Organization, name string) error {
	if _, err := usage.TimeZone([]string{"body", "time_zone"}, name); err != nil {
		return err
	}
	var before string
	if err := tx.QueryRow(ctx, `SELECT time_zone FROM organizations WHERE id = ?`, org.ID).Scan(&before); err != nil {
		return err
	}
	if before == name {
		return nil
	}
	if _, err := tx.Exec(ctx, `UPDATE organizations SET time_zone = ? WHERE id = ?`, name, org.ID); err != nil {
		return err
	}
	limitsChanged(tx, org.ID)
	err := audit.Record(ctx, tx, audit.Entry{EnterpriseAccountID: org.EnterpriseAccountID, OrganizationID: org.ID, Actor: actor,
		EventType: audit.EventOrganizationUpdate, EventMetadata: map[string]string{"time_zone_before": before, "time_zone_after": name},
		TargetType: audit.TargetOrganization, TargetMetadata: map[string]string{"id": org.ID, "name": org.Name}})
	return err
}

// TimeZoneOf returns the time zone of an Organization's calendar months.
func TimeZoneOf(ctx context.Context, tx *store.Tx, orgID string) (*time.Location, error) {
	var zone string
	if err := tx.QueryRow(ctx, `SELECT time_zone FROM organizations WHERE id = ?`, orgID).Scan(&zone); err != nil {
		return nil, err
	}
	return location(zone)
}

// location loads a stored time zone, checked when it was set.
func location(zone string) (*time.Location, error) {
	loc, err := time.LoadLocation(zone)
	if err != nil {
		return nil, steward.Internal(err)
	}
	return loc, nil
}
