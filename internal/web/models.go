package web

import (
	"net/http"
	"slices"

	"github.com/stewardhq/steward/internal/steward"
)

// modelAccessForm is the "model-access" fragment: an allow list of models
// (a Workspace's or a key's own), to choose every model or some.
type modelAccessForm struct {
	// Action is the form's path under the Organization's pages.
	Action string
	// Every is true when there is no list.
	Every   bool
	Options []modelOption
	// Key is true for a key's own list, which its Workspace's restricts.
	Key bool
}

// modelOption is one model the form offers: a served one, or one on the
// list that the server no longer serves.
type modelOption struct {
	Name            string
	Allowed, Served bool
}

// newModelAccessForm offers the served models and those of l.
func newModelAccessForm(action string, l *steward.ModelAllowList, served []string, key bool) modelAccessForm {
	f := modelAccessForm{Action: action, Every: l == nil, Key: key}
	names := append(slices.Clone(served), l.Names()...)
	slices.Sort(names)
	for _, n := range slices.Compact(names) {
		f.Options = append(f.Options, modelOption{Name: n, Allowed: l != nil && l.Allows(n), Served: slices.Contains(served, n)})
	}
	return f
}

// allowListForm reads the fragment's form: every model (nil), or the
// models checked, which may be none.
func allowListForm(r *http.Request) (*steward.ModelAllowList, error) {
	switch r.PostFormValue("allow") {
	case "every":
		return nil, nil
	case "some":
		return steward.NewModelAllowList(r.PostForm["model"]), nil
	}
	return nil, steward.Invalid([]string{"body", "allow"}, "choose every model, or only the models checked")
}

func (h *Handler) setWorkspaceModels(w http.ResponseWriter, r *http.Request, c *reqCtx) error {
	ws := r.PathValue("ws")
	l, err := allowListForm(r)
	if err == nil {
		_, err = h.keys.SetWorkspaceModels(r.Context(), c.p.Actor(), c.org.ID, ws, l, h.cfg.Models)
	}
	if err != nil {
		return h.again(w, r, c, "workspace", err)
	}
	return done(w, r, Prefix+"/o/"+c.org.ID+"/workspaces/"+ws, "models_saved")
}

type keyData struct {
	Key steward.APIKey
	// Workspace and Effective are the Workspace's list and what the key
	// may call; nil is every model.
	Workspace, Effective *steward.ModelAllowList
	Models               modelAccessForm
}

func (h *Handler) keyView(r *http.Request, c *reqCtx) (page, error) {
	p := c.page("API key", "keys")
	var d keyData
	err := func() error {
		ctx := r.Context()
		var err error
		if d.Key, _, err = h.keys.GetKey(ctx, c.org.ID, r.PathValue("key")); err != nil {
			return err
		}
		m, err := h.keys.KeyModels(ctx, c.org.ID, d.Key.ID)
		d.Workspace, d.Effective = m.Workspace, m.Effective
		d.Models = newModelAccessForm("/keys/"+d.Key.ID+"/models", m.Own, h.cfg.Models, true)
		return err
	}()
	p.Title = "API key " + keyName(d.Key)
	p.Data = d
	return p, err
}

func (h *Handler) setKeyModels(w http.ResponseWriter, r *http.Request, c *reqCtx) error {
	key := r.PathValue("key")
	l, err := allowListForm(r)
	if err == nil {
		_, err = h.keys.SetKeyModels(r.Context(), c.p.Actor(), c.org.ID, key, l, h.cfg.Models)
	}
	if err != nil {
		return h.again(w, r, c, "key", err)
	}
	return done(w, r, Prefix+"/o/"+c.org.ID+"/keys/"+key, "models_saved")
}
