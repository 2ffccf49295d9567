package server

import (
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"

	"github.com/stewardhq/steward/internal/billing"
	"github.com/stewardhq/steward/internal/quota"
	"github.com/stewardhq/steward/internal/steward"
)

type tokenLimitsOut struct {
	TokensPerMinute int64 `json:"tokens_per_minute"`
	TokensPerMonth  int64 `json:"tokens_per_month"`
}

// rateLimitsOut is Mistral's RateLimitsOUT; 0 is no limit.
type rateLimitsOut struct {
	RequestsPerSecond   int64                     `json:"requests_per_second"`
	TokensLimitsByModel map[string]tokenLimitsOut `json:"tokens_limits_by_model"`
}

func newRateLimitsOut(rl quota.RateLimits) rateLimitsOut {
	out := rateLimitsOut{RequestsPerSecond: rl.RequestsPerSecond, TokensLimitsByModel: map[string]tokenLimitsOut{}}
	for m, t := range rl.Models {
		out.TokensLimitsByModel[m] = tokenLimitsOut{TokensPerMinute: t.PerMinute, TokensPerMonth: t.PerMonth}
	}
	return out
}

type rateLimitsIn struct {
	RequestsPerSecond   *limitNumber `json:"requests_per_second"`
	TokensLimitsByModel map[string]struct {
		TokensPerMinute *limitNumber `json:"tokens_per_minute"`
		TokensPerMonth  *limitNumber `json:"tokens_per_month"`
	} `json:"tokens_limits_by_model"`
}

// limits reads the body: null or absent is no limit; a limit must be at
// least 1.
func (in rateLimitsIn) limits() (quota.RateLimits, error) {
	rl := quota.RateLimits{Models: map[string]quota.TokenLimits{}}
	value := func(field []string, v *limitNumber) (int64, error) {
		if v == nil {
			return 0, nil
		}
		if *v < 1 {
			return 0, steward.Invalid(field, "a limit must be at least 1, or null for no limit")
		}
		return int64(*v), nil
	}
	var err error
	if rl.RequestsPerSecond, err = value([]string{"body", "requests_per_second"}, in.RequestsPerSecond); err != nil {
		return rl, err
	}
	for m, t := range in.TokensLimitsByModel {
		var tl quota.TokenLimits
		if tl.PerMinute, err = value([]string{"body", "tokens_limits_by_model", m, "tokens_per_minute"}, t.TokensPerMinute); err != nil {
			return rl, err
		}
		if tl.PerMonth, err = value([]string{"body", "tokens_limits_by_model", m, "tokens_per_month"}, t.TokensPerMonth); err != nil {
			return rl, err
		}
		rl.Models[m] = tl
	}
	return rl, nil
}

func (s *Server) handleGetRateLimit(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	rl, err := s.quota.RateLimits(r.Context(), p.OrganizationID, r.PathValue("workspace_uuid"))
	return writeResult(w, newRateLimitsOut(rl), err)
}

func (s *Server) handleSetRateLimit(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	var in rateLimitsIn
	if err := decode(r, &in); err != nil {
		return err
	}
	rl, err := in.limits()
	if err != nil {
		return err
	}
	rl, err = s.quota.SetRateLimits(r.Context(), p.Actor(), p.OrganizationID, r.PathValue("workspace_uuid"), rl)
	return writeResult(w, newRateLimitsOut(rl), err)
}

type usageLimitsOut struct {
	NoMonthlyLimit      bool     `json:"no_monthly_limit"`
	MonthlyLimitReached bool     `json:"monthly_limit_reached"`
	Usage               *float64 `json:"usage"`
	VibeUsage           *float64 `json:"vibe_usage"`
	TotalUsage          *float64 `json:"total_usage"`
	UsageLimit          *float64 `json:"usage_limit"`
}

// limitsOut is Mistral's LimitsOUT.
type limitsOut struct {
	Limits struct {
		Completion                   usageLimitsOut `json:"completion"`
		LastPaymentFailure           bool           `json:"last_payment_failure"`
		LastPaymentFailureProtection *bool          `json:"last_payment_failure_protection"`
		Currency                     string         `json:"currency"`
	} `json:"limits"`
}

// newLimitsOut reports the Organization's cap against this month's spend.
func (s *Server) newLimitsOut(spend quota.Spend) limitsOut {
	var out limitsOut
	used := billing.Units(spend.Spent)
	c := &out.Limits.Completion
	c.Usage, c.TotalUsage = &used, &used
	if spend.Cap == nil {
		c.NoMonthlyLimit = true
	} else {
		capUnits := float64(*spend.Cap)
		c.UsageLimit = &capUnits
		c.MonthlyLimitReached = spend.Reached()
	}
	out.Limits.Currency = s.deps.Currency
	return out
}

func (s *Server) handleGetSpendLimit(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	spend, err := s.quota.SpendLimit(r.Context(), p.OrganizationID)
	return writeResult(w, s.newLimitsOut(spend), err)
}

func (s *Server) handleSetSpendLimit(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	var in struct {
		Amount         *limitNumber `json:"amount"`
		NoMonthlyLimit bool         `json:"no_monthly_limit"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	if in.Amount == nil {
		return steward.Invalid([]string{"body", "amount"}, "amount is required")
	}
	amount := in.Amount.asInt64()
	if in.NoMonthlyLimit {
		amount = nil
	}
	spend, err := s.quota.SetSpendLimit(r.Context(), p.Actor(), p.OrganizationID, amount)
	return writeResult(w, s.newLimitsOut(spend), err)
}

// workspaceSpendOut is Mistral's WorkspaceSpendLimitOUT.
type workspaceSpendOut struct {
	Value          *float64 `json:"value"`
	Currency       *string  `json:"currency"`
	NoMonthlyLimit *bool    `json:"no_monthly_limit"`
}

func (s *Server) workspaceSpend(capUnits *int64) workspaceSpendOut {
	none := capUnits == nil
	out := workspaceSpendOut{Currency: &s.deps.Currency, NoMonthlyLimit: &none}
	if capUnits != nil {
		v := float64(*capUnits)
		out.Value = &v
	}
	return out
}

func (s *Server) handleSetWorkspaceSpendLimit(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	var in struct {
		Amount *limitNumber `json:"amount"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	amount := in.Amount.asInt64()
	err := s.quota.SetSpendCap(r.Context(), p.Actor(), p.OrganizationID, r.PathValue("workspace_uuid"), amount)
	return writeResult(w, s.workspaceSpend(amount), err)
}

// limitNumber is a whole number of a limit or cap in a body. A number too
// large for int64 decodes as math.MaxInt64 (too small, math.MinInt64)
// instead of failing, so that it meets the field's range check, whose
// message names the largest value accepted, rather than a type error.
type limitNumber int64

func (n *limitNumber) UnmarshalJSON(b []byte) error {
	var v int64
	err := json.Unmarshal(b, &v)
	if err != nil {
		if _, perr := strconv.ParseInt(string(b), 10, 64); errors.Is(perr, strconv.ErrRange) {
			v, err = math.MaxInt64, nil
			if b[0] == '-' {
				v = math.MinInt64
			}
		}
	}
	*n = limitNumber(v)
	return err
}

// asInt64 returns n as a *int64, nil for nil.
func (n *limitNumber) asInt64() *int64 {
	if n == nil {
		return nil
	}
	v := int64(*n)
	return &v
}
