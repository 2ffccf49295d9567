package web

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/keys"
	"github.com/stewardhq/steward/internal/steward"
)

type keysData struct {
	Keys       []steward.APIKey
	Workspaces []steward.Workspace
	PolicyDays int
}

func (h *Handler) keysView(r *http.Request, c *reqCtx) (page, error) {
	p := c.page("API keys", "keys")
	var d keysData
	err := func() error {
		ctx := r.Context()
		var err error
		if d.Keys, _, err = h.keys.ListKeys(ctx, c.org.ID, "", keys.MaxListLimit, 0); err != nil {
			return err
		}
		if d.PolicyDays, err = h.keys.PolicyDays(ctx, c.org.ID, ""); err != nil {
			return err
		}
		d.Workspaces, _, err = h.directory.ListWorkspaces(ctx, c.org.ID, false, "", 1, directory.MaxPageSize)
		return err
	}()
	p.Data = d
	return p, err
}

// showKeySecret shows the keys page with a secret that will not be shown
// again.
func (h *Handler) showKeySecret(w http.ResponseWriter, r *http.Request, c *reqCtx, what, name, secret string) error {
	return h.showWith(w, r, c, "keys", func(p *page) { p.Secret = &shownSecret{What: what, Name: name, Value: secret} })
}

func (h *Handler) createKey(w http.ResponseWriter, r *http.Request, c *reqCtx) error {
	in := keys.NewKey{WorkspaceID: r.PostFormValue("workspace"), UserID: c.p.UserID, Expiration: r.PostFormValue("expiration")}
	if name := strings.TrimSpace(r.PostFormValue("name")); name != "" {
		in.Name = &name
	}
	k, err := h.keys.CreateKey(r.Context(), c.p.Actor(), c.org.ID, in)
	if err != nil {
		return h.again(w, r, c, "keys", err)
	}
	return h.showKeySecret(w, r, c, "API key created", keyName(k.Key), k.Secret)
}

func keyName(k steward.APIKey) string {
	if k.Name != nil {
		return *k.Name
	}
	return k.HiddenKey
}

func (h *Handler) rotateKey(w http.ResponseWriter, r *http.Request, c *reqCtx) error {
	hours, err := strconv.Atoi(r.PostFormValue("grace_hours"))
	if err != nil {
		return h.again(w, r, c, "keys", steward.Invalid([]string{"body", "grace_hours"}, "choose how long the old secret keeps working"))
	}
	rot, err := h.keys.RotateKey(r.Context(), c.p.Actor(), c.org.ID, r.PathValue("key"), time.Duration(hours)*time.Hour)
	if err != nil {
		return h.again(w, r, c, "keys", err)
	}
	return h.showKeySecret(w, r, c, "API key rotated", keyName(rot.Key), rot.Secret)
}

func (h *Handler) deleteKey(w http.ResponseWriter, r *http.Request, c *reqCtx) error {
	err := h.keys.DeleteKey(r.Context(), c.p.Actor(), c.org.ID, r.PathValue("key"))
	if err != nil {
		return h.again(w, r, c, "keys", err)
	}
	return done(w, r, Prefix+"/o/"+c.org.ID+"/keys", "key_deleted")
}

// savePolicy sets or removes (empty field) the key expiration maximum of
// the Organization (workspaceID "") or of a Workspace.
func (h *Handler) savePolicy(r *http.Request, c *reqCtx, workspaceID string) error {
	days, err := optAmount(r, "max_days")
	if err != nil {
		return err
	}
	n := 0
	if days != nil {
		n = int(min(*days, keys.MaxPolicyDays+1))
	}
	return h.keys.SetPolicy(r.Context(), c.p.Actor(), c.org.ID, workspaceID, n)
}

func (h *Handler) setPolicy(w http.ResponseWriter, r *http.Request, c *reqCtx) error {
	if err := h.savePolicy(r, c, ""); err != nil {
		return h.again(w, r, c, "keys", err)
	}
	return done(w, r, Prefix+"/o/"+c.org.ID+"/keys", "policy_saved")
}
