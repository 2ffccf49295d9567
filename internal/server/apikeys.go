package server

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"time"

	"github.com/stewardhq/steward/internal/idempotency"
	"github.com/stewardhq/steward/internal/keys"
	"github.com/stewardhq/steward/internal/steward"
)

// action is Mistral's ActionAvailable or ActionUnavailable.
type action struct {
	Status string  `json:"status"`
	Reason *string `json:"reason,omitempty"`
}

type apiKeyActions struct {
	Rotate *action `json:"rotate"`
	Delete *action `json:"delete"`
}

// apiKeyOut is Mistral's APIKeyOUT.
type apiKeyOut struct {
	KeyID          string        `json:"key_id"`
	Key            *string       `json:"key"`
	Name           *string       `json:"name"`
	HiddenKey      string        `json:"hidden_key"`
	CreatedAt      *string       `json:"created_at"`
	ExpirationDate *string       `json:"expiration_date"`
	Actions        apiKeyActions `json:"actions"`
}

// apiKeyExtendedOut is Mistral's APIKeyExtendedOUT.
type apiKeyExtendedOut struct {
	apiKeyOut
	WorkspaceID   *string `json:"workspace_id"`
	WorkspaceName *string `json:"workspace_name"`
	CreatedBy     *string `json:"created_by"`
	Product       *string `json:"product"`
	LastUsed      *string `json:"last_used"`
	CanDelete     *bool   `json:"can_delete"`
}

func date(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := t.UTC().Format(keys.DateLayout)
	return &s
}

func newAPIKeyOut(k steward.APIKey, now time.Time) apiKeyOut {
	created := formatTime(k.CreatedAt)
	out := apiKeyOut{KeyID: k.ID, Name: k.Name, HiddenKey: k.HiddenKey, CreatedAt: &created, ExpirationDate: date(k.ExpiresAt),
		Actions: apiKeyActions{Rotate: &action{Status: "available"}, Delete: &action{Status: "available"}}}
	if k.Expired(now) {
		reason := "key_expired"
		out.Actions.Rotate = &action{Status: "unavailable", Reason: &reason}
	}
	return out
}

func newAPIKeyExtendedOut(k steward.APIKey, now time.Time) apiKeyExtendedOut {
	can := true
	return apiKeyExtendedOut{apiKeyOut: newAPIKeyOut(k, now), WorkspaceID: &k.WorkspaceID, WorkspaceName: &k.WorkspaceName,
		CreatedBy: optional(k.CreatedBy), Product: &k.Product, LastUsed: date(k.LastUsedAt), CanDelete: &can}
}

func (s *Server) handleListAPIKeys(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	q := newQuery(r)
	limit := q.intRange("limit", 100, 1, keys.MaxListLimit)
	offset := q.intRange("offset", 0, 0, 1<<30)
	name := q.stringOr("name", "")
	if err := q.err(); err != nil {
		return err
	}
	type keysOut struct {
		Keys []apiKeyExtendedOut `json:"keys"`
	}
	list, now, err := s.keys.ListKeys(r.Context(), p.OrganizationID, name, limit, offset)
	out := keysOut{Keys: []apiKeyExtendedOut{}}
	for _, k := range list {
		out.Keys = append(out.Keys, newAPIKeyExtendedOut(k, now))
	}
	return writeResult(w, out, err)
}

func (s *Server) handleGetAPIKey(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	k, now, err := s.keys.GetKey(r.Context(), p.OrganizationID, r.PathValue("key_id"))
	return writeResult(w, newAPIKeyExtendedOut(k, now), err)
}

// createKeyIn is Mistral's AdminCreateAPIKeyIN.
type createKeyIn struct {
	Name          *string `json:"name"`
	Expiration    *string `json:"expiration"`
	WorkspaceUUID *string `json:"workspace_uuid"`
	UserID        *string `json:"user_id"`
	// Product is a Steward extension (Mistral's APIKeyProduct).
	Product *string `json:"product"`
}

func (s *Server) handleCreateAPIKey(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	var in createKeyIn
	if err := decode(r, &in); err != nil {
		return err
	}
	if err := steward.Invalids(missing([]string{"body"}, field{"workspace_uuid", in.WorkspaceUUID}, field{"user_id", in.UserID})); err != nil {
		return err
	}
	nk := keys.NewKey{WorkspaceID: *in.WorkspaceUUID, UserID: *in.UserID, Name: in.Name}
	if in.Expiration != nil {
		nk.Expiration = *in.Expiration
	}
	if in.Product != nil {
		nk.Product = *in.Product
	}
	k, err := s.keys.CreateKey(r.Context(), p.Actor(), p.OrganizationID, nk)
	out := newAPIKeyOut(k.Key, k.AsOf)
	out.Key = &k.Secret
	return writeResult(w, out, err)
}

func (s *Server) handleDeleteAPIKey(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	type deletedOut struct {
		Detail string `json:"detail"`
	}
	err := s.keys.DeleteKey(r.Context(), p.Actor(), p.OrganizationID, r.PathValue("key_id"))
	return writeResult(w, deletedOut{Detail: "API key deleted successfully"}, err)
}

type rotatedOut struct {
	apiKeyOut
	PreviousKeyExpiresAt *string `json:"previous_key_expires_at"`
}

// handleRotateAPIKey gives a key a new secret. With an Idempotency-Key, a
// retry within a day gets the first rotation's answer, secret included,
// instead of a third secret.
func (s *Server) handleRotateAPIKey(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	var in struct {
		GracePeriodSeconds *int `json:"grace_period_seconds"`
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return decodeError(err)
	}
	if len(body) > 0 {
		r.Body = io.NopCloser(bytes.NewReader(body))
		if err := decode(r, &in); err != nil {
			return err
		}
	}
	grace := 0
	if in.GracePeriodSeconds != nil {
		grace = *in.GracePeriodSeconds
	}
	idem := r.Header.Get("Idempotency-Key")
	if err := idempotency.Check(idem); err != nil {
		return err
	}
	answer, err := s.keys.RotateKeyOnce(r.Context(), p.Actor(), p.OrganizationID, r.PathValue("key_id"), grace, idem, func(rot keys.Issued) ([]byte, error) {
		out := rotatedOut{apiKeyOut: newAPIKeyOut(rot.Key, rot.AsOf)}
		out.Key = &rot.Secret
		if rot.Key.PreviousExpiresAt != nil {
			t := formatTime(*rot.Key.PreviousExpiresAt)
			out.PreviousKeyExpiresAt = &t
		}
		return json.Marshal(out)
	})
	return writeResult(w, json.RawMessage(answer), err)
}

type policyIn struct {
	MaxExpirationDays *int `json:"max_expiration_days"`
}

type policyOut struct {
	MaxExpirationDays *int `json:"max_expiration_days"`
}

type workspacePolicyOut struct {
	MaxExpirationDays          *int `json:"max_expiration_days"`
	EffectiveMaxExpirationDays *int `json:"effective_max_expiration_days"`
}

func days(d int) *int {
	if d == 0 {
		return nil
	}
	return &d
}

func (s *Server) handleGetPolicy(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	d, err := s.keys.PolicyDays(r.Context(), p.OrganizationID, "")
	return writeResult(w, policyOut{MaxExpirationDays: days(d)}, err)
}

// policyBody reads a policy: a JSON null (or 0 is refused) removes it.
func policyBody(r *http.Request) (int, error) {
	var in policyIn
	if err := decode(r, &in); err != nil {
		return 0, err
	}
	if in.MaxExpirationDays == nil {
		return 0, nil
	}
	if *in.MaxExpirationDays < 1 {
		return 0, steward.Invalid([]string{"body", "max_expiration_days"}, "max_expiration_days must be at least 1, or null for no maximum")
	}
	return *in.MaxExpirationDays, nil
}

func (s *Server) handleSetPolicy(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	d, err := policyBody(r)
	if err != nil {
		return err
	}
	err = s.keys.SetPolicy(r.Context(), p.Actor(), p.OrganizationID, "", d)
	return writeResult(w, policyOut{MaxExpirationDays: days(d)}, err)
}

func newWorkspacePolicyOut(pol keys.Policy) workspacePolicyOut {
	return workspacePolicyOut{MaxExpirationDays: days(pol.Days), EffectiveMaxExpirationDays: days(pol.EffectiveDays)}
}

func (s *Server) handleGetWorkspacePolicy(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	pol, err := s.keys.WorkspacePolicy(r.Context(), p.OrganizationID, r.PathValue("workspace_uuid"))
	return writeResult(w, newWorkspacePolicyOut(pol), err)
}

func (s *Server) handleSetWorkspacePolicy(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	d, err := policyBody(r)
	if err != nil {
		return err
	}
	pol, err := s.keys.SetWorkspacePolicy(r.Context(), p.Actor(), p.OrganizationID, r.PathValue("workspace_uuid"), d)
	return writeResult(w, newWorkspacePolicyOut(pol), err)
}
