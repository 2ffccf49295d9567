package web

import (
	"net/http"
	"slices"
	"strings"

	"github.com/stewardhq/steward/internal/billing"
	"github.com/stewardhq/steward/internal/quota"
	"github.com/stewardhq/steward/internal/steward"
)

type limitsData struct {
	SpendCap          *int64
	RequestsPerSecond int64
	Tokens            modelLimitsForm
	Spent             int64
	Meter             meter
}

func (h *Handler) limitsView(r *http.Request, c *reqCtx) (page, error) {
	p := c.page("Limits", "limits")
	st, err := h.quota.Standing(r.Context(), c.org.ID, "")
	p.Data = limitsData{SpendCap: st.Spend.Cap, RequestsPerSecond: st.RateLimits.RequestsPerSecond, Tokens: newModelLimitsForm(st.RateLimits, ""),
		Spent: st.Spend.Spent, Meter: newMeter(st.Spend)}
	return p, err
}

func (h *Handler) saveLimits(w http.ResponseWriter, r *http.Request, c *reqCtx) error {
	if err := h.setLimits(r, c, ""); err != nil {
		return h.again(w, r, c, "limits", err)
	}
	return done(w, r, Prefix+"/o/"+c.org.ID+"/limits", "limits_saved")
}

// setLimits saves the spend cap and request rate of the Organization
// (workspaceID "") or of a Workspace, keeping its per-model token limits.
func (h *Handler) setLimits(r *http.Request, c *reqCtx, workspaceID string) error {
	amount, err := optAmount(r, "spend_cap")
	if err != nil {
		return err
	}
	rps, err := optAmount(r, "requests_per_second")
	if err != nil {
		return err
	}
	if rps != nil && *rps == 0 {
		return steward.Invalid([]string{"body", "requests_per_second"}, "requests per second must be at least 1, or empty for no limit")
	}
	return h.quota.SetLimits(r.Context(), c.p.Actor(), c.org.ID, workspaceID, amount, rps)
}

// modelLimits are one model's token limits; 0 is none.
type modelLimits struct {
	Model               string
	PerMinute, PerMonth int64
}

// modelLimitsForm is the "model-limits" fragment: the token limits per
// model of the Organization or of a Workspace, and where its form posts.
type modelLimitsForm struct {
	Models []modelLimits
	// Action is the form's path under the Organization's pages.
	Action    string
	Workspace bool
}

// newModelLimitsForm lists the token limits of the Organization
// (workspaceID "") or of a Workspace, rl, by model name.
func newModelLimitsForm(rl quota.RateLimits, workspaceID string) modelLimitsForm {
	f := modelLimitsForm{Action: "/limits/models", Workspace: workspaceID != ""}
	if f.Workspace {
		f.Action = "/workspaces/" + workspaceID + "/limits/models"
	}
	for model, l := range rl.Models {
		f.Models = append(f.Models, modelLimits{Model: model, PerMinute: l.PerMinute, PerMonth: l.PerMonth})
	}
	slices.SortFunc(f.Models, func(a, b modelLimits) int { return strings.Compare(a.Model, b.Model) })
	return f
}

// setModelLimits sets one model's token limits for the Organization
// (workspaceID "") or a Workspace, keeping its other limits, or removes
// them when both fields are empty. quota.SetRateLimits checks them against
// the Organization's and audits the change.
func (h *Handler) setModelLimits(r *http.Request, c *reqCtx, workspaceID string) error {
	model := strings.TrimSpace(r.PostFormValue("model"))
	perMinute, err := optAmount(r, "tokens_per_minute")
	if err != nil {
		return err
	}
	perMonth, err := optAmount(r, "tokens_per_month")
	if err != nil {
		return err
	}
	if model == "" {
		return steward.Invalid([]string{"body", "model"}, "name the model whose token limits to set")
	}
	return h.quota.SetModelLimits(r.Context(), c.p.Actor(), c.org.ID, workspaceID, model, perMinute, perMonth)
}

func (h *Handler) saveModelLimits(w http.ResponseWriter, r *http.Request, c *reqCtx) error {
	if err := h.setModelLimits(r, c, ""); err != nil {
		return h.again(w, r, c, "limits", err)
	}
	return done(w, r, Prefix+"/o/"+c.org.ID+"/limits", "limits_saved")
}

func (h *Handler) saveWorkspaceModelLimits(w http.ResponseWriter, r *http.Request, c *reqCtx) error {
	ws := r.PathValue("ws")
	if err := h.setModelLimits(r, c, ws); err != nil {
		return h.again(w, r, c, "workspace", err)
	}
	return done(w, r, Prefix+"/o/"+c.org.ID+"/workspaces/"+ws, "ws_limits")
}

// meter is a horizontal bar of spend against a cap.
type meter struct {
	Width  float64
	Over   bool
	HasCap bool
	Cap    int64
	Label  string
}

const meterWidth = 600.0

// newMeter draws a spend against its cap: a cap of 0 is over once anything
// is spent.
func newMeter(s quota.Spend) meter {
	m := meter{}
	if s.Cap == nil {
		return m
	}
	m.HasCap, m.Cap = true, *s.Cap
	limit := billing.Micros(*s.Cap)
	switch {
	case limit <= 0:
		m.Width, m.Over = meterWidth, s.Spent > 0
	default:
		m.Width = min(1, float64(s.Spent)/float64(limit)) * meterWidth
		m.Over = s.Spent >= limit
	}
	return m
}
