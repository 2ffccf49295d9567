package server

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/idempotency"
	"github.com/stewardhq/steward/internal/keys"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
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
	return read(s, w, r, func(tx *store.Tx) (keysOut, error) {
		list, err := keys.ListKeys(r.Context(), tx, p.OrganizationID, name, limit, offset)
		out := keysOut{Keys: []apiKeyExtendedOut{}}
		for _, k := range list {
			out.Keys = append(out.Keys, newAPIKeyExtendedOut(k, tx.Now))
		}
		return out, err
	})
}

func (s *Server) handleGetAPIKey(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	return read(s, w, r, func(tx *store.Tx) (apiKeyExtendedOut, error) {
		k, err := keys.GetKey(r.Context(), tx, p.OrganizationID, r.PathValue("key_id"))
		return newAPIKeyExtendedOut(k, tx.Now), err
	})
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
	return writeOrg(s, w, r, p, func(tx *store.Tx, org steward.Organization) (apiKeyOut, error) {
		k, secret, err := keys.CreateKey(r.Context(), tx, p.Actor(), org, nk)
		out := newAPIKeyOut(k, tx.Now)
		out.Key = &secret
		return out, err
	})
}

func (s *Server) handleDeleteAPIKey(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	type deletedOut struct {
		Detail string `json:"detail"`
	}
	return writeOrg(s, w, r, p, func(tx *store.Tx, org steward.Organization) (deletedOut, error) {
		return deletedOut{Detail: "API key deleted successfully"}, keys.DeleteKey(r.Context(), tx, p.Actor(), org, r.PathValue("key_id"))
	})
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
	keyID := r.PathValue("key_id")
	sum := sha256.Sum256([]byte(keyID + "\x00" + strconv.Itoa(grace)))
	reqHash, scope := hex.EncodeToString(sum[:]), "api_key.rotate"
	return writeOrg(s, w, r, p, func(tx *store.Tx, org steward.Organization) (json.RawMessage, error) {
		if idem != "" {
			if answer, found, err := idempotency.Replay(r.Context(), tx, org.ID, scope, idem, reqHash); err != nil || found {
				return answer, err
			}
		}
		rot, err := keys.RotateKey(r.Context(), tx, p.Actor(), org, keyID, time.Duration(grace)*time.Second)
		if err != nil {
			return nil, err
		}
		out := rotatedOut{apiKeyOut: newAPIKeyOut(rot.Key, tx.Now)}
		out.Key = &rot.Secret
		if rot.Key.PreviousExpiresAt != nil {
			t := formatTime(*rot.Key.PreviousExpiresAt)
			out.PreviousKeyExpiresAt = &t
		}
		answer, err := json.Marshal(out)
		if err != nil || idem == "" {
			return answer, err
		}
		return answer, idempotency.Save(r.Context(), tx, org.ID, scope, idem, reqHash, answer)
	})
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
	return read(s, w, r, func(tx *store.Tx) (policyOut, error) {
		d, err := keys.PolicyDays(r.Context(), tx, p.OrganizationID, "")
		return policyOut{MaxExpirationDays: days(d)}, err
	})
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
	return writeOrg(s, w, r, p, func(tx *store.Tx, org steward.Organization) (policyOut, error) {
		return policyOut{MaxExpirationDays: days(d)}, keys.SetPolicy(r.Context(), tx, p.Actor(), org, "", d)
	})
}

func workspacePolicy(r *http.Request, tx *store.Tx, orgID, wsID string) (workspacePolicyOut, error) {
	ws, err := keys.PolicyDays(r.Context(), tx, orgID, wsID)
	if err != nil {
		return workspacePolicyOut{}, err
	}
	eff, err := keys.EffectiveMaxDays(r.Context(), tx, orgID, wsID)
	return workspacePolicyOut{MaxExpirationDays: days(ws), EffectiveMaxExpirationDays: days(eff)}, err
}

func (s *Server) handleGetWorkspacePolicy(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	return read(s, w, r, func(tx *store.Tx) (workspacePolicyOut, error) {
		if _, err := directory.GetWorkspace(r.Context(), tx, p.OrganizationID, r.PathValue("workspace_uuid")); err != nil {
			return workspacePolicyOut{}, err
		}
		return workspacePolicy(r, tx, p.OrganizationID, r.PathValue("workspace_uuid"))
	})
}

func (s *Server) handleSetWorkspacePolicy(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	d, err := policyBody(r)
	if err != nil {
		return err
	}
	return writeOrg(s, w, r, p, func(tx *store.Tx, org steward.Organization) (workspacePolicyOut, error) {
		if err := keys.SetPolicy(r.Context(), tx, p.Actor(), org, r.PathValue("workspace_uuid"), d); err != nil {
			return workspacePolicyOut{}, err
		}
		return workspacePolicy(r, tx, org.ID, r.PathValue("workspace_uuid"))
	})
}
