package server

import (
	"encoding/json"
	"net/http"

	"github.com/stewardhq/steward/internal/keys"
	"github.com/stewardhq/steward/internal/steward"
)

// allowedModelsIn is the body that sets an allow list of models: a list of
// names, or null for every model. The field is required, so that a body
// that forgot it does not open every model.
type allowedModelsIn struct {
	AllowedModels allowList `json:"allowed_models"`
}

// allowList is an allow list in a body, and whether the body had one.
type allowList struct {
	sent bool
	list *steward.ModelAllowList
}

func (a *allowList) UnmarshalJSON(b []byte) error {
	a.sent = true
	if string(b) == "null" {
		return nil
	}
	var names []string
	if err := json.Unmarshal(b, &names); err != nil {
		return err
	}
	a.list = steward.NewModelAllowList(names)
	return nil
}

// allowedModelsBody reads an allowedModelsIn: the list, nil for every
// model.
func allowedModelsBody(r *http.Request) (*steward.ModelAllowList, error) {
	var in allowedModelsIn
	if err := decode(r, &in); err != nil {
		return nil, err
	}
	if !in.AllowedModels.sent {
		return nil, steward.Invalid([]string{"body", "allowed_models"}, "allowed_models is required: a list of model names, or null for every model")
	}
	return in.AllowedModels.list, nil
}

// workspaceModelsOut is a Workspace's allow list; null is none.
type workspaceModelsOut struct {
	AllowedModels []string `json:"allowed_models"`
}

// keyModelsOut is the allow lists that apply to a key; null is none.
type keyModelsOut struct {
	AllowedModels          []string `json:"allowed_models"`
	WorkspaceAllowedModels []string `json:"workspace_allowed_models"`
	EffectiveAllowedModels []string `json:"effective_allowed_models"`
}

func newKeyModelsOut(m keys.KeyModels) keyModelsOut {
	return keyModelsOut{AllowedModels: m.Own.Names(), WorkspaceAllowedModels: m.Workspace.Names(), EffectiveAllowedModels: m.Effective.Names()}
}

func (s *Server) handleGetWorkspaceModels(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	l, err := s.keys.WorkspaceModels(r.Context(), p.OrganizationID, r.PathValue("workspace_uuid"))
	return writeResult(w, workspaceModelsOut{AllowedModels: l.Names()}, err)
}

func (s *Server) handleSetWorkspaceModels(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	l, err := allowedModelsBody(r)
	if err != nil {
		return err
	}
	l, err = s.keys.SetWorkspaceModels(r.Context(), p.Actor(), p.OrganizationID, r.PathValue("workspace_uuid"), l, s.deps.Models)
	return writeResult(w, workspaceModelsOut{AllowedModels: l.Names()}, err)
}

func (s *Server) handleGetKeyModels(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	m, err := s.keys.KeyModels(r.Context(), p.OrganizationID, r.PathValue("key_id"))
	return writeResult(w, newKeyModelsOut(m), err)
}

func (s *Server) handleSetKeyModels(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	l, err := allowedModelsBody(r)
	if err != nil {
		return err
	}
	m, err := s.keys.SetKeyModels(r.Context(), p.Actor(), p.OrganizationID, r.PathValue("key_id"), l, s.deps.Models)
	return writeResult(w, newKeyModelsOut(m), err)
}
