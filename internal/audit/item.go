package audit

import "time"

// Item is an entry in the Admin API's shape, Mistral's AuditLogOut: what
// GET /v1/admin/audit-logs lists and what a webhook's event carries.
type Item struct {
	CreatedAt        string            `json:"created_at"`
	ActorType        string            `json:"actor_type"`
	ActorMetadata    map[string]string `json:"actor_metadata"`
	EventType        string            `json:"event_type"`
	EventMetadata    map[string]string `json:"event_metadata"`
	TargetType       string            `json:"target_type"`
	TargetMetadata   map[string]string `json:"target_metadata"`
	LogID            int64             `json:"log_id"`
	OrganizationUUID *string           `json:"organization_uuid"`
	WorkspaceUUID    *string           `json:"workspace_uuid"`
}

// ItemOf returns e in the Admin API's shape.
func ItemOf(e Entry) Item {
	return Item{
		CreatedAt:        e.CreatedAt.UTC().Format(time.RFC3339Nano),
		ActorType:        e.Actor.Type,
		ActorMetadata:    nonNil(e.Actor.Metadata),
		EventType:        e.EventType,
		EventMetadata:    nonNil(e.EventMetadata),
		TargetType:       e.TargetType,
		TargetMetadata:   nonNil(e.TargetMetadata),
		LogID:            e.LogID,
		OrganizationUUID: nullable(e.OrganizationID),
		WorkspaceUUID:    nullable(e.WorkspaceID),
	}
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}
