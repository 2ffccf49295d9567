// Package objects stores which Workspace owns each object created through
// the model gateway at its default upstream (inference.Objects): files,
// batch jobs, agents, conversations, libraries and their documents,
// voices, fine-tuned models.
package objects

import (
	"context"
	"fmt"
	"strings"

	"github.com/stewardhq/steward/internal/inference"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

// Service reads and writes the records of objects.
type Service struct{ db *store.DB }

// NewService returns the objects of db.
func NewService(db *store.DB) *Service { return &Service{db: db} }

var _ inference.Objects = (*Service)(nil)

// Record stores o; an object recorded already keeps its first record.
func (s *Service) Record(ctx context.Context, o inference.Object) error {
	if o.Kind == "" || o.ID == "" || o.OrganizationID == "" || o.WorkspaceID == "" {
		return fmt.Errorf("objects: record %+v: kind, id, Organization and Workspace are required", o)
	}
	return s.db.Transact(ctx, func(tx *store.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO gateway_objects (kind, upstream_id, organization_id, workspace_id, key_id, created_at)
			VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (kind, upstream_id) DO NOTHING`,
			o.Kind, o.ID, o.OrganizationID, o.WorkspaceID, o.KeyID, store.Micros(o.Created))
		return err
	})
}

// Find returns the object of kind with the upstream's id.
func (s *Service) Find(ctx context.Context, kind, id string) (inference.Object, error) {
	o := inference.Object{Kind: kind, ID: id}
	var created int64
	err := s.db.ReadRow(ctx, `SELECT organization_id, workspace_id, key_id, created_at FROM gateway_objects WHERE kind = ? AND upstream_id = ?`,
		[]any{kind, id}, &o.OrganizationID, &o.WorkspaceID, &o.KeyID, &created)
	if err != nil {
		if err = store.Translate(err); steward.IsKind(err, steward.KindNotFound) {
			return inference.Object{}, steward.Errorf(steward.KindNotFound, "no %s %s", kind, id)
		}
		return inference.Object{}, err
	}
	o.Created = store.Time(created)
	return o, nil
}

// Forget deletes the record of the object of kind with the upstream's id.
func (s *Service) Forget(ctx context.Context, kind, id string) error {
	return s.db.Transact(ctx, func(tx *store.Tx) error {
		_, err := tx.Exec(ctx, `DELETE FROM gateway_objects WHERE kind = ? AND upstream_id = ?`, kind, id)
		return err
	})
}

// maxIDs bounds the ids Owned asks about in one query.
const maxIDs = 500

// Owned returns which of ids are objects of kind of the Workspace.
func (s *Service) Owned(ctx context.Context, organizationID, workspaceID, kind string, ids []string) (map[string]bool, error) {
	owned := make(map[string]bool, len(ids))
	err := s.db.View(ctx, func(tx *store.Tx) error {
		for start := 0; start < len(ids); start += maxIDs {
			part := ids[start:min(start+maxIDs, len(ids))]
			args := []any{organizationID, workspaceID, kind}
			for _, id := range part {
				args = append(args, id)
			}
			found, err := tx.Strings(ctx, `SELECT upstream_id FROM gateway_objects WHERE organization_id = ? AND workspace_id = ? AND kind = ?
				AND upstream_id IN (?`+strings.Repeat(", ?", len(part)-1)+`)`, args...)
			if err != nil {
				return err
			}
			for _, id := range found {
				owned[id] = true
			}
		}
		return nil
	})
	return owned, err
}

// Count is the number of objects of kind of the Workspace.
func (s *Service) Count(ctx context.Context, organizationID, workspaceID, kind string) (int64, error) {
	var n int64
	err := s.db.ReadRow(ctx, `SELECT COUNT(*) FROM gateway_objects WHERE organization_id = ? AND workspace_id = ? AND kind = ?`,
		[]any{organizationID, workspaceID, kind}, &n)
	return n, err
}
