package server

import (
	"errors"
	"net/http"
	"strings"

	"github.com/stewardhq/steward/internal/keys"
	"github.com/stewardhq/steward/internal/scim"
	"github.com/stewardhq/steward/internal/steward"
)

// SCIM tokens (a Steward extension) and Mistral's SCIM sync runs. The SCIM
// service provider itself is package scim, mounted at /scim/v2/.

type scimTokenOut struct {
	ID         string  `json:"id"`
	Name       string  `json:"name"`
	Hint       string  `json:"hint"`
	CreatedAt  string  `json:"created_at"`
	LastUsedAt *string `json:"last_used_at"`
	ExpiresAt  *string `json:"expires_at"`
	Token      *string `json:"token,omitempty"`
}

func newSCIMTokenOut(t keys.SCIMToken) scimTokenOut {
	return scimTokenOut{ID: t.ID, Name: t.Name, Hint: t.Hint, CreatedAt: formatTime(t.CreatedAt),
		LastUsedAt: optionalTime(t.LastUsedAt), ExpiresAt: optionalTime(t.ExpiresAt)}
}

func (s *Server) handleCreateSCIMToken(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	var in struct {
		Name      *string `json:"name"`
		ExpiresAt *string `json:"expires_at"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	errs := missing([]string{"body"}, field{"name", in.Name})
	expires, errs := optionalDate("expires_at", in.ExpiresAt, errs)
	if err := steward.Invalids(errs); err != nil {
		return err
	}
	t, secret, err := s.keys.CreateSCIMToken(r.Context(), p.Actor(), p.OrganizationID, strings.TrimSpace(*in.Name), expires)
	out := newSCIMTokenOut(t)
	out.Token = &secret
	return writeResult(w, out, err)
}

func (s *Server) handleListSCIMTokens(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	tokens, err := s.keys.ListSCIMTokens(r.Context(), p.OrganizationID)
	return writeItems(w, tokens, err, func(_ int, t keys.SCIMToken) scimTokenOut { return newSCIMTokenOut(t) })
}

func (s *Server) handleRevokeSCIMToken(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	return writeStatus(w, http.StatusNoContent, s.keys.RevokeSCIMToken(r.Context(), p.Actor(), p.OrganizationID, r.PathValue("token_id")))
}

// syncConfigIn is AdminScimSyncConfig as sent: three fields are required.
type syncConfigIn struct {
	DeleteMissingGroups *bool `json:"delete_missing_groups"`
	DeprovisionUsers    *bool `json:"deprovision_users"`
	SyncUsers           *bool `json:"sync_users"`
	SyncGroups          *bool `json:"sync_groups"`
	SyncMemberships     *bool `json:"sync_memberships"`
}

func (s *Server) handleTriggerSCIMSync(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	var in struct {
		DryRun     *bool         `json:"dry_run"`
		SyncConfig *syncConfigIn `json:"sync_config"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	dryRun := in.DryRun == nil || *in.DryRun
	var cfg *scim.SyncConfig
	if c := in.SyncConfig; c != nil {
		var errs []*steward.Error
		for _, f := range []struct {
			name  string
			value *bool
		}{{"sync_users", c.SyncUsers}, {"sync_groups", c.SyncGroups}, {"sync_memberships", c.SyncMemberships}} {
			if f.value == nil {
				errs = append(errs, steward.Invalid([]string{"body", "sync_config", f.name}, "%s is required", f.name))
			}
		}
		if err := steward.Invalids(errs); err != nil {
			return err
		}
		flag := func(b *bool) bool { return b != nil && *b }
		cfg = &scim.SyncConfig{DeleteMissingGroups: flag(c.DeleteMissingGroups), DeprovisionUsers: flag(c.DeprovisionUsers),
			SyncUsers: *c.SyncUsers, SyncGroups: *c.SyncGroups, SyncMemberships: *c.SyncMemberships}
	}
	run, err := s.deps.SCIM.Trigger(r.Context(), p.Actor(), p.OrganizationID, dryRun, cfg)
	var active *scim.ActiveRunError
	if errors.As(err, &active) {
		writeJSON(w, http.StatusConflict, map[string]string{"run_id": active.Run.ID, "status": active.Run.Status})
		return nil
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"run_id": run.ID})
	return nil
}

// syncRunOut is Mistral's AdminScimSyncRunOUT.
type syncRunOut struct {
	RunID        string           `json:"run_id"`
	Status       string           `json:"status"`
	DryRun       bool             `json:"dry_run"`
	SyncConfig   *scim.SyncConfig `json:"sync_config"`
	CreatedAt    string           `json:"created_at"`
	StartedAt    *string          `json:"started_at"`
	FinishedAt   *string          `json:"finished_at"`
	Summary      *scim.Summary    `json:"summary"`
	ErrorMessage *string          `json:"error_message"`
}

func (s *Server) handleGetSCIMSync(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	run, err := s.deps.SCIM.GetRun(r.Context(), p.OrganizationID, r.PathValue("run_id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, syncRunOut{RunID: run.ID, Status: run.Status, DryRun: run.DryRun, SyncConfig: run.Config,
		CreatedAt: formatTime(run.CreatedAt), StartedAt: optionalTime(run.StartedAt), FinishedAt: optionalTime(run.FinishedAt),
		Summary: run.Summary, ErrorMessage: run.ErrorMessage})
	return nil
}
