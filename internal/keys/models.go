package keys

import (
	"context"
	"database/sql"
	"encoding/json"

	"github.com/stewardhq/steward/internal/audit"
	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

// Model access: the models a Workspace's keys may call (its allow list) and
// those one key may call (the key's own). Both are stored as a JSON array
// of names in an allowed_models column, NULL for no list; the Checker
// gives each key the intersection of its Workspace's list and its own.

// decodeModels reads a stored list: nil (NULL) is no list. A list that
// cannot be read allows no model, rather than every one.
func decodeModels(raw []byte) *steward.ModelAllowList {
	if raw == nil {
		return nil
	}
	var names []string
	if err := json.Unmarshal(raw, &names); err != nil {
		return steward.NewModelAllowList(nil)
	}
	return steward.NewModelAllowList(names)
}

// encodeModels returns what stores l: NULL for no list.
func encodeModels(l *steward.ModelAllowList) any {
	if l == nil {
		return nil
	}
	b, _ := json.Marshal(l.Names())
	return string(b)
}

// showModels writes l for the audit log: "all" for no list, else the
// names as a JSON array ("[]" allows none).
func showModels(l *steward.ModelAllowList) string {
	if l == nil {
		return "all"
	}
	b, _ := json.Marshal(l.Names())
	return string(b)
}

// readModels reads the allowed_models column of one row.
func readModels(ctx context.Context, tx *store.Tx, q string, args ...any) (*steward.ModelAllowList, error) {
	var raw sql.NullString
	if err := tx.QueryRow(ctx, q, args...).Scan(&raw); err != nil {
		return nil, err
	}
	if !raw.Valid {
		return nil, nil
	}
	return decodeModels([]byte(raw.String)), nil
}

// checkServed refuses the names of l that are not among served, unless
// current already holds them (a model no longer served may stay on a list,
// so that a list read and written back is accepted): a misspelt name would
// silently deny the model meant. Each unknown name is one error of the
// KindInvalid error returned.
func checkServed(l, current *steward.ModelAllowList, served []string) error {
	known := steward.NewModelAllowList(served)
	var errs []*steward.Error
	for _, n := range l.Names() {
		if !known.Allows(n) && (current == nil || !current.Allows(n)) {
			errs = append(errs, steward.Invalid([]string{"body", "allowed_models"}, "%q is not a model this server serves", n))
		}
	}
	return steward.Invalids(errs)
}

// WorkspaceModels returns a Workspace's allow list (nil for none), or
// KindNotFound when the Organization has no such Workspace.
func WorkspaceModels(ctx context.Context, tx *store.Tx, orgID, workspaceID string) (*steward.ModelAllowList, error) {
	if _, err := directory.GetWorkspace(ctx, tx, orgID, workspaceID); err != nil {
		return nil, err
	}
	return readModels(ctx, tx, `SELECT allowed_models FROM workspaces WHERE organization_id = ? AND id = ?`, orgID, workspaceID)
}

// SetWorkspaceModels sets (l) or removes (nil) the allow list of an active
// Workspace, which every key of the Workspace is held to from its next
// request. Names must be among served (see checkServed). The change is
// audited as workspace.update, with the lists before and after.
func SetWorkspaceModels(ctx context.Context, tx *store.Tx, actor steward.Actor, org steward.Organization, workspaceID string, l *steward.ModelAllowList, served []string) error {
	ws, err := directory.ActiveWorkspace(ctx, tx, org.ID, workspaceID)
	if err != nil {
		return err
	}
	before, err := WorkspaceModels(ctx, tx, org.ID, ws.ID)
	if err != nil {
		return err
	}
	if err := checkServed(l, before, served); err != nil || before.Equal(l) {
		return err
	}
	if _, err := tx.Exec(ctx, `UPDATE workspaces SET allowed_models = ? WHERE id = ?`, encodeModels(l), ws.ID); err != nil {
		return err
	}
	// Every key of the Workspace may call other models now: the key
	// check reloads the Organization's keys.
	tx.Notify(store.Change{Topic: TopicKeys, OrganizationID: org.ID})
	return audit.Record(ctx, tx, audit.Entry{
		EnterpriseAccountID: org.EnterpriseAccountID, OrganizationID: org.ID, WorkspaceID: ws.ID, Actor: actor,
		EventType:      audit.EventWorkspaceUpdate,
		EventMetadata:  map[string]string{"allowed_models_before": showModels(before), "allowed_models_after": showModels(l)},
		TargetType:     audit.TargetWorkspace,
		TargetMetadata: map[string]string{"id": ws.ID, "name": ws.Name},
	})
}

// KeyModels are the allow lists that apply to a key: its own, its
// Workspace's, and what it may call (both intersected); nil is no list.
type KeyModels struct {
	Own, Workspace, Effective *steward.ModelAllowList
}

// GetKeyModels returns the allow lists of a key that is not deleted, or
// KindNotFound.
func GetKeyModels(ctx context.Context, tx *store.Tx, orgID, id string) (KeyModels, error) {
	k, err := GetKey(ctx, tx, orgID, id)
	if err != nil {
		return KeyModels{}, err
	}
	var m KeyModels
	if m.Own, err = readModels(ctx, tx, `SELECT allowed_models FROM api_keys WHERE id = ?`, k.ID); err != nil {
		return m, err
	}
	if m.Workspace, err = readModels(ctx, tx, `SELECT allowed_models FROM workspaces WHERE id = ?`, k.WorkspaceID); err != nil {
		return m, err
	}
	m.Effective = steward.IntersectModels(m.Workspace, m.Own)
	return m, nil
}

// SetKeyModels sets (l) or removes (nil) a key's own allow list, which
// holds from the key's next request. Names must be among served (see
// checkServed). The change is audited as api_key.update, with the lists
// before and after.
func SetKeyModels(ctx context.Context, tx *store.Tx, actor steward.Actor, org steward.Organization, id string, l *steward.ModelAllowList, served []string) error {
	k, err := GetKey(ctx, tx, org.ID, id)
	if err != nil {
		return err
	}
	before, err := readModels(ctx, tx, `SELECT allowed_models FROM api_keys WHERE id = ?`, k.ID)
	if err != nil {
		return err
	}
	if err := checkServed(l, before, served); err != nil || before.Equal(l) {
		return err
	}
	if _, err := tx.Exec(ctx, `UPDATE api_keys SET allowed_models = ? WHERE id = ?`, encodeModels(l), k.ID); err != nil {
		return err
	}
	keyChanged(tx, org.ID, k.ID)
	return audit.Record(ctx, tx, keyEntry(actor, org, audit.EventAPIKeyUpdate, k,
		map[string]string{"workspace_name": k.WorkspaceName, "allowed_models_before": showModels(before), "allowed_models_after": showModels(l)}))
}
