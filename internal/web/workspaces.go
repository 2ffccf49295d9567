package web

import (
	"net/http"
	"slices"

	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/steward"
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
	err := func() error {
		list, _, err := h.directory.ListWorkspaces(r.Context(), c.org.ID, false, "", 1, directory.MaxPageSize)
		if err != nil {
			return err
		}
		settings, err := h.quota.Settings(r.Context(), c.org.ID)
		for _, ws := range list {
			d.Workspaces = append(d.Workspaces, workspaceRow{Workspace: ws, RequestsPerSecond: settings.RateLimitsOf(ws.ID).RequestsPerSecond})
		}
		return err
	}()
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
	// Models is the Workspace's allow list of models.
	Models modelAccessForm
}

// maxListedMembers bounds the members a Workspace page reads.
const maxListedMembers = 10 * directory.MaxPageSize

func (h *Handler) workspaceView(r *http.Request, c *reqCtx) (page, error) {
	p := c.page("Workspace", "workspaces")
	var d workspaceData
	err := func() error {
		ctx := r.Context()
		var err error
		if d.Workspace, err = h.directory.ActiveWorkspace(ctx, c.org.ID, r.PathValue("ws")); err != nil {
			return err
		}
		cat, err := h.directory.Catalog(ctx, c.org.ID)
		if err != nil {
			return err
		}
		d.Roles = cat.Roles(steward.ScopeWorkspace)
		if d.PolicyDays, err = h.keys.PolicyDays(ctx, c.org.ID, d.Workspace.ID); err != nil {
			return err
		}
		allowed, err := h.keys.WorkspaceModels(ctx, c.org.ID, d.Workspace.ID)
		if err != nil {
			return err
		}
		d.Models = newModelAccessForm("/workspaces/"+d.Workspace.ID+"/models", allowed, h.cfg.Models, false)
		for n := 1; (n-1)*directory.MaxPageSize < maxListedMembers; n++ {
			res, err := h.directory.ListMembers(ctx, c.org.ID, "", n, directory.MaxPageSize)
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
		st, err := h.quota.Standing(ctx, c.org.ID, d.Workspace.ID)
		d.Tokens = newModelLimitsForm(st.RateLimits, d.Workspace.ID)
		d.SpendCap, d.RequestsPerSecond = st.Spend.Cap, st.RateLimits.RequestsPerSecond
		d.Spent, d.Meter = st.Spend.Spent, newMeter(st.Spend)
		return err
	}()
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
