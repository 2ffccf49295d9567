package web

import (
	"net/http"
	"slices"
	"strings"

	"github.com/stewardhq/steward/internal/quota"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

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
// (workspaceID "") or of a Workspace, by model name.
func newModelLimitsForm(s quota.Settings, workspaceID string) modelLimitsForm {
	f := modelLimitsForm{Action: "/limits/models", Workspace: workspaceID != ""}
	if f.Workspace {
		f.Action = "/workspaces/" + workspaceID + "/limits/models"
	}
	for model, l := range s.RateLimitsOf(workspaceID).Models {
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
	return h.change(r, c, func(tx *store.Tx, org steward.Organization) error {
		settings, err := quota.Load(r.Context(), tx, org.ID)
		if err != nil {
			return err
		}
		rl := settings.RateLimitsOf(workspaceID)
		if perMinute == nil && perMonth == nil {
			delete(rl.Models, model)
		} else {
			rl.Models[model] = quota.TokenLimits{PerMinute: deref(perMinute), PerMonth: deref(perMonth)}
		}
		return quota.SetRateLimits(r.Context(), tx, c.p.Actor(), org, workspaceID, rl)
	})
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
