// Package quota is the home of an Organization's limits: what a limit is
// and its bounds (rate limits, token limits, spend caps), the time zone
// whose calendar months they count in, their storage and the services that
// change them (which the Admin API and the web pages call), and the usage
// read against them. Package enforce holds them to the model API's
// requests.
package quota

import (
	"slices"
	"time"

	"github.com/stewardhq/steward/internal/steward"
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

// SpendCapOf returns the monthly spend cap of the Organization
// (workspaceID "") or of one of its Workspaces, in whole units; nil for
// none.
func (s Settings) SpendCapOf(workspaceID string) *int64 {
	if workspaceID == "" {
		return s.SpendCap
	}
	if v, ok := s.WorkspaceSpends[workspaceID]; ok {
		return &v
	}
	return nil
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

// CheckRateLimits checks every limit of rl against its bound, and the
// model names, naming the first field of the request's body found wrong
// (models in name order): what SetRateLimits accepts.
func CheckRateLimits(rl RateLimits) error {
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

// CheckAmount checks a spend cap in whole units, nil for none, naming the
// field of the request's body: what SetSpendCap accepts.
func CheckAmount(amount *int64) error {
	if amount != nil && (*amount < 0 || *amount > MaxAmount) {
		return steward.Invalid([]string{"body", "amount"}, "amount must be a whole number of currency units from 0 to %d", MaxAmount)
	}
	return nil
}
