package web

import (
	"net/http"
	"slices"

	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/keys"
	"github.com/stewardhq/steward/internal/quota"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

type workspaceRow struct {
	steward.Workspace
	RequestsPerSecond int64
}

type workspacesData struct {
	Workspaces []workspaceRow
}

func (h *Handler) workspacesView(r *http.Request, c *reqCtx) (page, error) {
	p := c.page("Workspaces", "workspaces")
	var d workspacesData
	err := h.cfg.DB.View(r.Context(), func(tx *store.Tx) error {
		list, _, err := directory.ListWorkspaces(r.Context(), tx, c.org.ID, false, "", 1, directory.MaxPageSize)
		if err != nil {
			return err
		}
		settings, err := quota.Load(r.Context(), tx, c.org.ID)
		for _, ws := range list {
			d.Workspaces = append(d.Workspaces, workspaceRow{Workspace: ws, RequestsPerSecond: settings.RateLimitsOf(ws.ID).RequestsPerSecond})
		}
		return err
	})
	p.Data = d
	return p, err
}

func (h *Handler) createWorkspace(w http.ResponseWriter, r *http.Request, c *reqCtx) error {
	name, desc := r.PostFormValue("name"), r.PostFormValue("description")
	_, _, err := h.directory.CreateWorkspace(r.Context(), c.p.Actor(), c.org.ID, directory.NewWorkspace{
		WorkspaceInput: directory.WorkspaceInput{Name: &name, Description: &desc}, AdminUserID: c.p.UserID})
	if err != nil {
		return h.again(w, r, c, "workspaces", err)
	}
	return done(w, r, Prefix+"/o/"+c.org.ID+"/workspaces", "ws_created")
}

func (h *Handler) archiveWorkspace(w http.ResponseWriter, r *http.Request, c *reqCtx) error {
	err := h.directory.ArchiveWorkspace(r.Context(), c.p.Actor(), c.org.ID, r.PathValue("ws"))
	if err != nil {
		return h.again(w, r, c, "workspaces", err)
	}
	return done(w, r, Prefix+"/o/"+c.org.ID+"/workspaces", "ws_archived")
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
	return h.change(r, c, func(tx *store.Tx, org steward.Organization) error {
		settings, err := quota.Load(r.Context(), tx, org.ID)
		if err != nil {
			return err
		}
		// Only what the form changes is written, so the audit log gets no
		// entry for a limit saved as it was.
		rl := settings.RateLimitsOf(workspaceID)
		if want := deref(rps); want != rl.RequestsPerSecond {
			rl.RequestsPerSecond = want
			if err := quota.SetRateLimits(r.Context(), tx, c.p.Actor(), org, workspaceID, rl); err != nil {
				return err
			}
		}
		current := spendCapOf(settings, workspaceID)
		if (current == nil) != (amount == nil) || (amount != nil && *amount != *current) {
			return quota.SetSpendCap(r.Context(), tx, c.p.Actor(), org, workspaceID, amount)
		}
		return nil
	})
}

// spendCapOf returns the monthly spend cap of the Organization
// (workspaceID "") or of a Workspace; nil for none.
func spendCapOf(s quota.Settings, workspaceID string) *int64 {
	if workspaceID == "" {
		return s.SpendCap
	}
	if v, ok := s.WorkspaceSpends[workspaceID]; ok {
		return &v
	}
	return nil
}

// setWorkspaceLimits saves a Workspace's spend cap and request rate from
// the Workspaces page, or from the Workspace's own when the form says so.
func (h *Handler) setWorkspaceLimits(w http.ResponseWriter, r *http.Request, c *reqCtx) error {
	ws := r.PathValue("ws")
	name, to := "workspaces", Prefix+"/o/"+c.org.ID+"/workspaces"
	if r.PostFormValue("from") == "workspace" {
		name, to = "workspace", to+"/"+ws
	}
	if err := h.setLimits(r, c, ws); err != nil {
		return h.again(w, r, c, name, err)
	}
	return done(w, r, to, "ws_limits")
}

type workspaceData struct {
	Workspace steward.Workspace
	Members   []memberRow
	Others    []steward.Member
	Roles     []steward.Role
	// PolicyDays is the Workspace's own key expiration maximum; 0 for none.
	PolicyDays int
	// SpendCap and RequestsPerSecond are the Workspace's own; nil and 0
	// for none.
	SpendCap          *int64
	RequestsPerSecond int64
	Tokens            modelLimitsForm
	// Spent is the Workspace's spend this month, in micro-units.
	Spent int64
	Meter meter
}

// maxListedMembers bounds the members a Workspace page reads.
const maxListedMembers = 10 * directory.MaxPageSize

func (h *Handler) workspaceView(r *http.Request, c *reqCtx) (page, error) {
	p := c.page("Workspace", "workspaces")
	var d workspaceData
	err := h.cfg.DB.View(r.Context(), func(tx *store.Tx) error {
		ctx := r.Context()
		var err error
		if d.Workspace, err = directory.ActiveWorkspace(ctx, tx, c.org.ID, r.PathValue("ws")); err != nil {
			return err
		}
		cat, err := directory.LoadCatalog(ctx, tx, c.org.ID)
		if err != nil {
			return err
		}
		d.Roles = cat.Roles(steward.ScopeWorkspace)
		if d.PolicyDays, err = keys.PolicyDays(ctx, tx, c.org.ID, d.Workspace.ID); err != nil {
			return err
		}
		settings, err := quota.Load(ctx, tx, c.org.ID)
		if err != nil {
			return err
		}
		d.Tokens = newModelLimitsForm(settings, d.Workspace.ID)
		d.SpendCap, d.RequestsPerSecond = spendCapOf(settings, d.Workspace.ID), settings.RateLimitsOf(d.Workspace.ID).RequestsPerSecond
		if d.Spent, err = monthSpent(r, tx, c.org.ID, d.Workspace.ID, tx.Now.UTC()); err != nil {
			return err
		}
		d.Meter = newMeter(d.Spent, d.SpendCap)
		for n := 1; (n-1)*directory.MaxPageSize < maxListedMembers; n++ {
			res, err := directory.ListMembers(ctx, tx, c.org.ID, "", n, directory.MaxPageSize)
			if err != nil {
				return err
			}
			for _, m := range res.Members {
				i := slices.IndexFunc(m.Workspaces, func(mw steward.MemberWorkspace) bool { return mw.WorkspaceID == d.Workspace.ID })
				if i < 0 {
					d.Others = append(d.Others, m)
					continue
				}
				d.Members = append(d.Members, memberRow{Member: m, RoleNames: roleNames(cat, m.Workspaces[i].RoleIDs)})
			}
			if n*directory.MaxPageSize >= res.Total {
				break
			}
		}
		return nil
	})
	p.Title = d.Workspace.Name
	p.Data = d
	return p, err
}

func (h *Handler) renameWorkspace(w http.ResponseWriter, r *http.Request, c *reqCtx) error {
	ws := r.PathValue("ws")
	name, desc := r.PostFormValue("name"), r.PostFormValue("description")
	_, err := h.directory.UpdateWorkspace(r.Context(), c.p.Actor(), c.org.ID, ws, directory.WorkspaceInput{Name: &name, Description: &desc})
	if err != nil {
		return h.again(w, r, c, "workspace", err)
	}
	return done(w, r, Prefix+"/o/"+c.org.ID+"/workspaces/"+ws, "ws_updated")
}

func (h *Handler) setWorkspacePolicy(w http.ResponseWriter, r *http.Request, c *reqCtx) error {
	ws := r.PathValue("ws")
	if err := h.savePolicy(r, c, ws); err != nil {
		return h.again(w, r, c, "workspace", err)
	}
	return done(w, r, Prefix+"/o/"+c.org.ID+"/workspaces/"+ws, "policy_saved")
}

func (h *Handler) addWorkspaceMember(w http.ResponseWriter, r *http.Request, c *reqCtx) error {
	ws := r.PathValue("ws")
	_, _, err := h.directory.AddWorkspaceMembers(r.Context(), c.p.Actor(), c.org.ID, ws, []directory.WorkspaceMemberInput{
		{UserID: r.PostFormValue("user"), Roles: directory.RoleInput{Roles: &[]string{r.PostFormValue("role")}}}}, true)
	if err != nil {
		return h.again(w, r, c, "workspace", err)
	}
	return done(w, r, Prefix+"/o/"+c.org.ID+"/workspaces/"+ws, "ws_members")
}

func (h *Handler) removeWorkspaceMember(w http.ResponseWriter, r *http.Request, c *reqCtx) error {
	ws := r.PathValue("ws")
	_, _, err := h.directory.RemoveWorkspaceMembers(r.Context(), c.p.Actor(), c.org.ID, ws, []string{r.PathValue("user")})
	if err != nil {
		return h.again(w, r, c, "workspace", err)
	}
	return done(w, r, Prefix+"/o/"+c.org.ID+"/workspaces/"+ws, "ws_members")
}
