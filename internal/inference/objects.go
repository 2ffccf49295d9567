package inference

import (
	"context"
	"time"
)

// Kinds of the objects created through the gateway, each owned by the
// Workspace whose key created it.
const (
	ObjectFile           = "file"
	ObjectBatchJob       = "batch_job"
	ObjectAgent          = "agent"
	ObjectConversation   = "conversation"
	ObjectLibrary        = "library"
	ObjectDocument       = "document"
	ObjectVoice          = "voice"
	ObjectFineTunedModel = "fine_tuned_model"
)

// Object is an object of the upstream created through the gateway: its
// kind, the upstream's id for it, and the Workspace (and key) that
// created it, which alone may reach it.
type Object struct {
	Kind, ID                    string
	OrganizationID, WorkspaceID string
	KeyID                       string
	Created                     time.Time
}

// Objects records which Workspace owns each object created through the
// gateway: a security boundary, since every Workspace reaches the
// upstream with the same key. *objects.Service satisfies it.
type Objects interface {
	// Record stores o; recording an object again changes nothing.
	Record(ctx context.Context, o Object) error
	// Find returns the object of kind with the upstream's id; an error of
	// kind steward.KindNotFound when there is none.
	Find(ctx context.Context, kind, id string) (Object, error)
	// Forget deletes the record of an object the upstream deleted.
	Forget(ctx context.Context, kind, id string) error
	// Owned returns which of ids are objects of kind of the Workspace.
	Owned(ctx context.Context, organizationID, workspaceID, kind string, ids []string) (map[string]bool, error)
	// Count is the number of objects of kind of the Workspace.
	Count(ctx context.Context, organizationID, workspaceID, kind string) (int64, error)
}
