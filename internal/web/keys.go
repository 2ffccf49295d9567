package web

import (
	"cmp"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/keys"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/usage"
)

type keysData struct {
	Keys       []keyRow
	Workspaces []steward.Workspace
	PolicyDays int
	// Owners are the people who own a key, to filter by.
	Owners           []owner
	Workspace, Owner string
	Month            string
	Listed, Total    int
}

// keyRow is a key with its owner's address and this month's spend.
type keyRow struct {
	steward.APIKey
	Owner string
	Spent int64
}

type owner struct{ ID, Email string }

// maxKeyPages bounds the pages of keys (keys.MaxListLimit each) that the
// keys page, the overview and the usage explorer read.
const maxKeyPages = 10

// allKeys reads the Organization's keys, maxKeyPages pages at most,
// and the time they were read at.
func (h *Handler) allKeys(r *http.Request, c *reqCtx) ([]steward.APIKey, time.Time, error) {
	var out []steward.APIKey
	var now time.Time
	for page := range maxKeyPages {
		list, at, err := h.keys.ListKeys(r.Context(), c.org.ID, "", keys.MaxListLimit, page*keys.MaxListLimit)
		if err != nil {
			return nil, now, err
		}
		out, now = append(out, list...), at
		if len(list) < keys.MaxListLimit {
			break
		}
	}
	return out, now, nil
}

// keysView lists the keys, filtered by ?workspace= and ?owner=, with their
// owner and what each cost this month (of the Organization's time zone).
func (h *Handler) keysView(r *http.Request, c *reqCtx) (page, error) {
	p := c.page("API keys", "keys")
	q := r.URL.Query()
	d := keysData{Workspace: q.Get("workspace"), Owner: q.Get("owner")}
	err := func() error {
		ctx := r.Context()
		all, now, err := h.allKeys(r, c)
		if err != nil {
			return err
		}
		zone, err := h.quota.TimeZone(ctx, c.org.ID)
		if err != nil {
			return err
		}
		monthStart, _ := usage.Month(now, zone)
		d.Month = monthStart.Format("January")
		spent, err := h.usage.CostByKey(ctx, c.org.ID, monthStart, now.Truncate(time.Hour).Add(time.Hour))
		if err != nil {
			return err
		}
		owners := make([]string, len(all))
		for i, k := range all {
			owners[i] = k.UserID
		}
		emails, err := h.directory.MemberEmails(ctx, c.org.ID, owners)
		if err != nil {
			return err
		}
		seen := map[string]bool{}
		for _, k := range all {
			email := cmp.Or(emails[k.UserID], k.CreatedBy, k.UserID)
			if k.UserID != "" && !seen[k.UserID] {
				seen[k.UserID] = true
				d.Owners = append(d.Owners, owner{ID: k.UserID, Email: email})
			}
			if (d.Workspace != "" && k.WorkspaceID != d.Workspace) || (d.Owner != "" && k.UserID != d.Owner) {
				continue
			}
			d.Keys = append(d.Keys, keyRow{APIKey: k, Owner: email, Spent: spent[k.ID]})
		}
		slices.SortFunc(d.Owners, func(a, b owner) int { return cmp.Compare(a.Email, b.Email) })
		d.Listed, d.Total = len(d.Keys), len(all)
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
