package keys

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"

	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/idempotency"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

// Service is the keys as the surfaces (Admin API, Backoffice API, web
// pages) manage them: Workspace keys and their expiration policies, Admin
// API keys, SCIM tokens. Each method is one transaction, a read-only one for
// reads, and a change writes its audit entry in it. Its errors are those of
// the function of the same name, which takes the caller's Tx (bootstrap
// composes them with the directory's); a method given an orgID also returns
// KindNotFound if that Organization does not exist.
type Service struct {
	db *store.DB
}

// NewService returns the keys over db.
func NewService(db *store.DB) *Service { return &Service{db: db} }

// Issued is a Workspace key with its secret, shown once; AsOf is the time
// of the transaction that issued it, which its actions are judged at.
type Issued struct {
	Key    steward.APIKey
	Secret string
	AsOf   time.Time
}

// ListKeys returns the Organization's Workspace keys and the time they were
// read at, which their expiry is judged at.
func (s *Service) ListKeys(ctx context.Context, orgID, name string, limit, offset int) ([]steward.APIKey, time.Time, error) {
	type out struct {
		keys []steward.APIKey
		now  time.Time
	}
	o, err := store.Read(ctx, s.db, func(tx *store.Tx) (out, error) {
		list, err := ListKeys(ctx, tx, orgID, name, limit, offset)
		return out{list, tx.Now}, err
	})
	return o.keys, o.now, err
}

// GetKey returns one Workspace key (or KindNotFound) and the time it was
// read at.
func (s *Service) GetKey(ctx context.Context, orgID, id string) (steward.APIKey, time.Time, error) {
	type out struct {
		key steward.APIKey
		now time.Time
	}
	o, err := store.Read(ctx, s.db, func(tx *store.Tx) (out, error) {
		k, err := GetKey(ctx, tx, orgID, id)
		return out{k, tx.Now}, err
	})
	return o.key, o.now, err
}

// CreateKey issues a Workspace key.
func (s *Service) CreateKey(ctx context.Context, actor steward.Actor, orgID string, in NewKey) (Issued, error) {
	return directory.Change(ctx, s.db, orgID, func(tx *store.Tx, org steward.Organization) (Issued, error) {
		k, secret, err := CreateKey(ctx, tx, actor, org, in)
		return Issued{Key: k, Secret: secret, AsOf: tx.Now}, err
	})
}

// DeleteKey deletes a Workspace key.
func (s *Service) DeleteKey(ctx context.Context, actor steward.Actor, orgID, id string) error {
	return directory.InOrganization(ctx, s.db, orgID, func(tx *store.Tx, org steward.Organization) error {
		return DeleteKey(ctx, tx, actor, org, id)
	})
}

// RotateKey gives a Workspace key a new secret, the old one working for
// grace.
func (s *Service) RotateKey(ctx context.Context, actor steward.Actor, orgID, id string, grace time.Duration) (Issued, error) {
	return directory.Change(ctx, s.db, orgID, func(tx *store.Tx, org steward.Organization) (Issued, error) {
		rot, err := RotateKey(ctx, tx, actor, org, id, grace)
		return Issued{Key: rot.Key, Secret: rot.Secret, AsOf: tx.Now}, err
	})
}

// rotateScope is the idempotency scope of rotations.
const rotateScope = "api_key.rotate"

// RotateKeyOnce is RotateKey, with a grace period in seconds, under an
// Idempotency-Key (none when idemKey is empty): answer encodes the
// rotation, and a retry with the same key and request gets that answer
// again instead of a second rotation. Its errors are RotateKey's and
// idempotency.Replay's.
func (s *Service) RotateKeyOnce(ctx context.Context, actor steward.Actor, orgID, id string, graceSeconds int, idemKey string, answer func(Issued) ([]byte, error)) ([]byte, error) {
	sum := sha256.Sum256([]byte(id + "\x00" + strconv.Itoa(graceSeconds)))
	reqHash := hex.EncodeToString(sum[:])
	return directory.Change(ctx, s.db, orgID, func(tx *store.Tx, org steward.Organization) ([]byte, error) {
		if idemKey != "" {
			if out, found, err := idempotency.Replay(ctx, tx, org.ID, rotateScope, idemKey, reqHash); err != nil || found {
				return out, err
			}
		}
		rot, err := RotateKey(ctx, tx, actor, org, id, time.Duration(graceSeconds)*time.Second)
		if err != nil {
			return nil, err
		}
		out, err := answer(Issued{Key: rot.Key, Secret: rot.Secret, AsOf: tx.Now})
		if err != nil || idemKey == "" {
			return out, err
		}
		return out, idempotency.Save(ctx, tx, org.ID, rotateScope, idemKey, reqHash, out)
	})
}

// Policy is a Workspace's expiration policy: its own maximum, and the one
// that applies (the smaller of its own and the Organization's); 0 is none.
type Policy struct {
	Days, EffectiveDays int
}

// PolicyDays returns the maximum lifetime, in days, that the Organization
// (workspaceID "") or a Workspace sets for keys; 0 is none.
func (s *Service) PolicyDays(ctx context.Context, orgID, workspaceID string) (int, error) {
	return store.Read(ctx, s.db, func(tx *store.Tx) (int, error) {
		return PolicyDays(ctx, tx, orgID, workspaceID)
	})
}

// SetPolicy sets the Organization's (workspaceID "") or a Workspace's
// maximum lifetime of keys, 0 for none.
func (s *Service) SetPolicy(ctx context.Context, actor steward.Actor, orgID, workspaceID string, days int) error {
	return directory.InOrganization(ctx, s.db, orgID, func(tx *store.Tx, org steward.Organization) error {
		return SetPolicy(ctx, tx, actor, org, workspaceID, days)
	})
}

// WorkspacePolicy returns a Workspace's policy; returns KindNotFound if
// there is no such Workspace.
func (s *Service) WorkspacePolicy(ctx context.Context, orgID, workspaceID string) (Policy, error) {
	return store.Read(ctx, s.db, func(tx *store.Tx) (Policy, error) {
		if _, err := directory.GetWorkspace(ctx, tx, orgID, workspaceID); err != nil {
			return Policy{}, err
		}
		return workspacePolicy(ctx, tx, orgID, workspaceID)
	})
}

// SetWorkspacePolicy sets a Workspace's policy and returns it as it now
// applies.
func (s *Service) SetWorkspacePolicy(ctx context.Context, actor steward.Actor, orgID, workspaceID string, days int) (Policy, error) {
	return directory.Change(ctx, s.db, orgID, func(tx *store.Tx, org steward.Organization) (Policy, error) {
		if err := SetPolicy(ctx, tx, actor, org, workspaceID, days); err != nil {
			return Policy{}, err
		}
		return workspacePolicy(ctx, tx, org.ID, workspaceID)
	})
}

func workspacePolicy(ctx context.Context, tx *store.Tx, orgID, workspaceID string) (Policy, error) {
	own, err := PolicyDays(ctx, tx, orgID, workspaceID)
	if err != nil {
		return Policy{}, err
	}
	eff, err := EffectiveMaxDays(ctx, tx, orgID, workspaceID)
	return Policy{Days: own, EffectiveDays: eff}, err
}

// ListAdminKeys returns the live Admin API keys of an Enterprise Account.
func (s *Service) ListAdminKeys(ctx context.Context, enterpriseAccountID string) ([]AdminKeyListing, error) {
	return store.Read(ctx, s.db, func(tx *store.Tx) ([]AdminKeyListing, error) {
		return ListAdminKeys(ctx, tx, enterpriseAccountID)
	})
}

// CreateAdminKey issues an Admin API key for one of the account's
// Organizations and returns it with its secret, shown once; returns
// KindNotFound if the Organization is not the account's.
func (s *Service) CreateAdminKey(ctx context.Context, actor steward.Actor, enterpriseAccountID, orgID, name string, expiresAt *time.Time) (AdminKeyListing, string, error) {
	type out struct {
		key    AdminKeyListing
		secret string
	}
	o, err := store.Write(ctx, s.db, func(tx *store.Tx) (out, error) {
		org, err := directory.AccountOrganization(ctx, tx, enterpriseAccountID, orgID)
		if err != nil {
			return out{}, err
		}
		k, secret, err := CreateAdminKey(ctx, tx, actor, org, name, expiresAt)
		return out{AdminKeyListing{Key: k, OrganizationName: org.Name}, secret}, err
	})
	return o.key, o.secret, err
}

// DeleteAdminKey deletes one of the account's Admin API keys.
func (s *Service) DeleteAdminKey(ctx context.Context, actor steward.Actor, enterpriseAccountID, id string) error {
	return s.db.Transact(ctx, func(tx *store.Tx) error {
		return DeleteAdminKey(ctx, tx, actor, enterpriseAccountID, id)
	})
}

// CreateSCIMToken issues a SCIM token and returns it with its secret,
// shown once.
func (s *Service) CreateSCIMToken(ctx context.Context, actor steward.Actor, orgID, name string, expiresAt *time.Time) (SCIMToken, string, error) {
	type out struct {
		token  SCIMToken
		secret string
	}
	o, err := directory.Change(ctx, s.db, orgID, func(tx *store.Tx, org steward.Organization) (out, error) {
		t, secret, err := CreateSCIMToken(ctx, tx, actor, org, name, expiresAt)
		return out{t, secret}, err
	})
	return o.token, o.secret, err
}

// ListSCIMTokens returns the Organization's SCIM tokens.
func (s *Service) ListSCIMTokens(ctx context.Context, orgID string) ([]SCIMToken, error) {
	return store.Read(ctx, s.db, func(tx *store.Tx) ([]SCIMToken, error) {
		return ListSCIMTokens(ctx, tx, orgID)
	})
}

// RevokeSCIMToken revokes a SCIM token.
func (s *Service) RevokeSCIMToken(ctx context.Context, actor steward.Actor, orgID, id string) error {
	return directory.InOrganization(ctx, s.db, orgID, func(tx *store.Tx, org steward.Organization) error {
		return RevokeSCIMToken(ctx, tx, actor, org, id)
	})
}

// WorkspaceModels returns a Workspace's allow list of models; nil for none.
func (s *Service) WorkspaceModels(ctx context.Context, orgID, workspaceID string) (*steward.ModelAllowList, error) {
	return store.Read(ctx, s.db, func(tx *store.Tx) (*steward.ModelAllowList, error) {
		return WorkspaceModels(ctx, tx, orgID, workspaceID)
	})
}

// SetWorkspaceModels sets (l) or removes (nil) a Workspace's allow list of
// models, whose names must be among served, and returns it as it now is.
func (s *Service) SetWorkspaceModels(ctx context.Context, actor steward.Actor, orgID, workspaceID string, l *steward.ModelAllowList, served []string) (*steward.ModelAllowList, error) {
	return directory.Change(ctx, s.db, orgID, func(tx *store.Tx, org steward.Organization) (*steward.ModelAllowList, error) {
		if err := SetWorkspaceModels(ctx, tx, actor, org, workspaceID, l, served); err != nil {
			return nil, err
		}
		return WorkspaceModels(ctx, tx, org.ID, workspaceID)
	})
}

// KeyModels returns the allow lists of models that apply to a Workspace key.
func (s *Service) KeyModels(ctx context.Context, orgID, id string) (KeyModels, error) {
	return store.Read(ctx, s.db, func(tx *store.Tx) (KeyModels, error) {
		return GetKeyModels(ctx, tx, orgID, id)
	})
}

// SetKeyModels sets (l) or removes (nil) a Workspace key's own allow list of
// models, whose names must be among served, and returns the lists that now
// apply to it.
func (s *Service) SetKeyModels(ctx context.Context, actor steward.Actor, orgID, id string, l *steward.ModelAllowList, served []string) (KeyModels, error) {
	return directory.Change(ctx, s.db, orgID, func(tx *store.Tx, org steward.Organization) (KeyModels, error) {
		if err := SetKeyModels(ctx, tx, actor, org, id, l, served); err != nil {
			return KeyModels{}, err
		}
		return GetKeyModels(ctx, tx, org.ID, id)
	})
}
