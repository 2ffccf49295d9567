package server

import (
	"net/http"

	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/quota"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/usage"
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
	RequestsPerSecond   *int64 `json:"requests_per_second"`
	TokensLimitsByModel map[string]struct {
		TokensPerMinute *int64 `json:"tokens_per_minute"`
		TokensPerMonth  *int64 `json:"tokens_per_month"`
	} `json:"tokens_limits_by_model"`
}

// limits reads the body: null or absent is no limit; a limit must be at
// least 1.
func (in rateLimitsIn) limits() (quota.RateLimits, error) {
	rl := quota.RateLimits{Models: map[string]quota.TokenLimits{}}
	value := func(field []string, v *int64) (int64, error) {
		if v == nil {
			return 0, nil
		}
		if *v < 1 {
			return 0, steward.Invalid(field, "a limit must be at least 1, or null for no limit")
		}
		return *v, nil
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

func (s *Server) rateLimitsOf(r *http.Request, tx *store.Tx, orgID, workspaceID string) (rateLimitsOut, error) {
	if workspaceID != "" {
		if _, err := directory.GetWorkspace(r.Context(), tx, orgID, workspaceID); err != nil {
			return rateLimitsOut{}, err
		}
	}
	set, err := quota.Load(r.Context(), tx, orgID)
	return newRateLimitsOut(set.RateLimitsOf(workspaceID)), err
}

func (s *Server) handleGetRateLimit(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	return read(s, w, r, func(tx *store.Tx) (rateLimitsOut, error) {
		return s.rateLimitsOf(r, tx, p.OrganizationID, r.PathValue("workspace_uuid"))
	})
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
	ws := r.PathValue("workspace_uuid")
	return writeOrg(s, w, r, p, func(tx *store.Tx, org steward.Organization) (rateLimitsOut, error) {
		if err := quota.SetRateLimits(r.Context(), tx, p.Actor(), org, ws, rl); err != nil {
			return rateLimitsOut{}, err
		}
		return s.rateLimitsOf(r, tx, org.ID, ws)
	})
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

// spendLimit reports the Organization's cap against this month's spend.
func (s *Server) spendLimit(r *http.Request, tx *store.Tx, orgID string) (limitsOut, error) {
	var out limitsOut
	set, err := quota.Load(r.Context(), tx, orgID)
	if err != nil {
		return out, err
	}
	start, end := usage.Month(tx.Now, set.Location)
	spent, _, err := usage.MonthSpend(r.Context(), tx, orgID, "", start, end)
	if err != nil {
		return out, err
	}
	used := float64(spent) / quota.MicrosPerUnit
	c := &out.Limits.Completion
	c.Usage, c.TotalUsage = &used, &used
	if set.SpendCap == nil {
		c.NoMonthlyLimit = true
	} else {
		capUnits := float64(*set.SpendCap)
		c.UsageLimit = &capUnits
		c.MonthlyLimitReached = spent >= *set.SpendCap*quota.MicrosPerUnit
	}
	out.Limits.Currency = s.deps.Currency
	return out, nil
}

func (s *Server) handleGetSpendLimit(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	return read(s, w, r, func(tx *store.Tx) (limitsOut, error) { return s.spendLimit(r, tx, p.OrganizationID) })
}

func (s *Server) handleSetSpendLimit(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	var in struct {
		Amount         *int64 `json:"amount"`
		NoMonthlyLimit bool   `json:"no_monthly_limit"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	if in.Amount == nil {
		return steward.Invalid([]string{"body", "amount"}, "amount is required")
	}
	amount := in.Amount
	if in.NoMonthlyLimit {
		amount = nil
	}
	return writeOrg(s, w, r, p, func(tx *store.Tx, org steward.Organization) (limitsOut, error) {
		if err := quota.SetSpendCap(r.Context(), tx, p.Actor(), org, "", amount); err != nil {
			return limitsOut{}, err
		}
		return s.spendLimit(r, tx, org.ID)
	})
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
		Amount *int64 `json:"amount"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	return writeOrg(s, w, r, p, func(tx *store.Tx, org steward.Organization) (workspaceSpendOut, error) {
		return s.workspaceSpend(in.Amount), quota.SetSpendCap(r.Context(), tx, p.Actor(), org, r.PathValue("workspace_uuid"), in.Amount)
	})
}
