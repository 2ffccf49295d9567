package web

import (
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/stewardhq/steward/internal/audit"
	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/steward"
)

// auditSentences say each event type as a sentence. {actor} is who made
// the change, {target} what it changed, {workspace} the entry's Workspace
// and {group} the user group of a group's membership; each is a name,
// linked to its page where there is one. Every event type of package
// audit has one (a test checks).
var auditSentences = map[string]string{
	audit.EventOrganizationCreate:            "{actor} created {target}",
	audit.EventOrganizationUpdate:            "{actor} changed {target}",
	audit.EventWorkspaceCreate:               "{actor} created {target}",
	audit.EventWorkspaceUpdate:               "{actor} changed {target}",
	audit.EventWorkspaceDelete:               "{actor} archived {target}",
	audit.EventWorkspaceMemberAdd:            "{actor} added {target} to {workspace}",
	audit.EventWorkspaceMemberRemove:         "{actor} removed {target} from {workspace}",
	audit.EventWorkspaceMemberRoleUpdate:     "{actor} changed the role of {target} in {workspace}",
	audit.EventGroupCreate:                   "{actor} created {target}",
	audit.EventGroupUpdate:                   "{actor} changed {target}",
	audit.EventGroupDelete:                   "{actor} deleted {target}",
	audit.EventGroupMemberAdd:                "{actor} added {target} to {group}",
	audit.EventGroupMemberRemove:             "{actor} removed {target} from {group}",
	audit.EventGroupWorkspaceProvision:       "{actor} gave {target} access to {workspace}",
	audit.EventGroupWorkspaceDeprovision:     "{actor} took away the access of {target} to {workspace}",
	audit.EventGroupWorkspaceUpdate:          "{actor} changed the role of {target} in {workspace}",
	audit.EventUserCreate:                    "{actor} added {target} to the Organization",
	audit.EventUserDelete:                    "{actor} removed {target} from the Organization",
	audit.EventUserRoleUpdate:                "{actor} changed the Organization role of {target}",
	audit.EventUserJoin:                      "{target} joined the Organization",
	audit.EventUserInfoUpdate:                "{actor} changed the details of {target}",
	audit.EventUserPasswordSet:               "{actor} set the password of {target}",
	audit.EventUserDeactivate:                "{actor} deactivated {target}",
	audit.EventUserReactivate:                "{actor} reactivated {target}",
	audit.EventInviteSend:                    "{actor} invited {target}",
	audit.EventInviteResend:                  "{actor} sent the invitation of {target} again",
	audit.EventInviteAccepted:                "{target} accepted the invitation",
	audit.EventInviteRevoked:                 "{actor} revoked the invitation of {target}",
	audit.EventSeatGrant:                     "{actor} gave {target} a seat",
	audit.EventSeatRevoke:                    "{actor} took back the seat of {target}",
	audit.EventAdminAPIKeyCreated:            "{actor} created {target}",
	audit.EventAdminAPIKeyDelete:             "{actor} deleted {target}",
	audit.EventAPIKeyCreate:                  "{actor} created {target} in {workspace}",
	audit.EventAPIKeyRotate:                  "{actor} rotated {target} in {workspace}",
	audit.EventAPIKeyUpdate:                  "{actor} changed the models {target} may call",
	audit.EventAPIKeyDelete:                  "{actor} deleted {target} in {workspace}",
	audit.EventAPIKeyPolicyUpdate:            "{actor} changed {target}",
	audit.EventMonthlyLimitUpdated:           "{actor} changed {target}",
	audit.EventWorkspaceMonthlyLimitUpdated:  "{actor} changed {target}",
	audit.EventRateLimitUpdate:               "{actor} changed {target}",
	audit.EventSCIMSyncTrigger:               "{actor} started a SCIM sync of {target}",
	audit.EventSCIMTokenCreate:               "{actor} created {target}",
	audit.EventSCIMTokenRevoke:               "{actor} revoked {target}",
	audit.EventEnterpriseAccountCreate:       "{actor} created {target}",
	audit.EventEnterpriseAccountUpdate:       "{actor} changed {target}",
	audit.EventEnterpriseAccountMemberAdd:    "{actor} added {target} to the Enterprise Account",
	audit.EventEnterpriseAccountMemberRemove: "{actor} removed {target} from the Enterprise Account",
	audit.EventBackofficeKeyCreate:           "{actor} created {target}",
	audit.EventRoleCreate:                    "{actor} created {target}",
	audit.EventRoleUpdate:                    "{actor} changed {target}",
	audit.EventRoleDelete:                    "{actor} deleted {target}",
	audit.EventLimitSpendReached:             "{target} reached an alert threshold",
	audit.EventLimitTokensReached:            "{target} reached an alert threshold",
	audit.EventAPIKeyExpiring:                "{target} in {workspace} expires soon",
	audit.EventAdminAPIKeyUnused:             "{target} has not been used for a long time",
	audit.EventWebhookCreate:                 "{actor} created {target}",
	audit.EventWebhookUpdate:                 "{actor} changed {target}",
	audit.EventWebhookDelete:                 "{actor} deleted {target}",
	audit.EventWebhookSecretRotate:           "{actor} rotated the signing secret of {target}",
	audit.EventWebhookDisabled:               "{actor} disabled {target}, whose deliveries kept failing",
	audit.EventSSOConfigurationUpdated:       "{actor} changed {target}",
	audit.EventSSOConfigurationDeleted:       "{actor} deleted {target}",
	audit.EventUserLoginSSO:                  "{target} signed in with single sign-on",
	audit.EventUserLoginSSOFailed:            "{target} could not sign in with single sign-on",
}

// auditEventTypes are the event types the filter offers, in order.
var auditEventTypes = slices.Sorted(maps.Keys(auditSentences))

// part is a piece of a sentence: text, linked when Href is set.
type part struct {
	Text, Href string
}

// change is one setting an entry changed, before and after.
type change struct {
	Name, Before, After string
}

// auditRow is an entry as the log shows it.
type auditRow struct {
	audit.Entry
	Sentence []part
	Changes  []change
	// Details are the entry's other event metadata, as name: value.
	Details []change
	// Raw is the stored record, as JSON.
	Raw string
}

// names are the names of an Organization's objects that entries refer to
// by id only: members' addresses and Workspaces' names.
type names struct {
	base       string
	users      map[string]string
	workspaces map[string]string
}

// describe turns an entry into its sentence, changes and raw record.
func (n names) describe(e audit.Entry) auditRow {
	row := auditRow{Entry: e}
	tmpl, ok := auditSentences[e.EventType]
	if !ok {
		tmpl = "{actor}: " + e.EventType + " of {target}"
	}
	for tmpl != "" {
		i := strings.IndexByte(tmpl, '{')
		if i < 0 {
			row.Sentence = append(row.Sentence, part{Text: tmpl})
			break
		}
		j := strings.IndexByte(tmpl[i:], '}') + i
		if i > 0 {
			row.Sentence = append(row.Sentence, part{Text: tmpl[:i]})
		}
		row.Sentence = append(row.Sentence, n.placeholder(e, tmpl[i+1:j]))
		tmpl = tmpl[j+1:]
	}
	for _, k := range slices.Sorted(maps.Keys(e.EventMetadata)) {
		v := e.EventMetadata[k]
		switch {
		case strings.HasSuffix(k, "_before"):
			name := strings.TrimSuffix(k, "_before")
			if after, ok := e.EventMetadata[name+"_after"]; ok {
				row.Changes = append(row.Changes, change{Name: readable(name), Before: orNone(v), After: orNone(after)})
				continue
			}
		case strings.HasSuffix(k, "_after"):
			if _, ok := e.EventMetadata[strings.TrimSuffix(k, "_after")+"_before"]; ok {
				continue
			}
		}
		if v != "" {
			row.Details = append(row.Details, change{Name: readable(k), After: v})
		}
	}
	raw, _ := json.MarshalIndent(map[string]any{
		"log_id": e.LogID, "created_at": e.CreatedAt, "event_type": e.EventType, "event_metadata": e.EventMetadata,
		"actor":       map[string]any{"type": e.Actor.Type, "user_id": e.Actor.UserID, "metadata": e.Actor.Metadata},
		"target_type": e.TargetType, "target_metadata": e.TargetMetadata, "workspace_id": e.WorkspaceID,
	}, "", "  ")
	row.Raw = string(raw)
	return row
}

func readable(key string) string { return strings.ReplaceAll(key, "_", " ") }

func orNone(v string) string {
	if v == "" {
		return "none"
	}
	return v
}

// quoted names an object whose kind comes first: API key 'first'.
func quoted(kind, name string) string {
	if name == "" {
		return kind
	}
	return kind + " '" + name + "'"
}

func (n names) user(id, email string) part {
	if email == "" {
		email = n.users[id]
	}
	if email == "" {
		email = "former member " + id
	}
	if id == "" {
		return part{Text: email}
	}
	return part{Text: email, Href: n.base + "/audit?actor=" + id}
}

func (n names) workspace(id, name string) part {
	if name == "" {
		name = n.workspaces[id]
	}
	if id == "" {
		return part{Text: "no Workspace"}
	}
	if name == "" {
		return part{Text: "a Workspace no longer listed", Href: n.base + "/workspaces/" + id}
	}
	return part{Text: "Workspace " + name, Href: n.base + "/workspaces/" + id}
}

func (n names) placeholder(e audit.Entry, name string) part {
	t := e.TargetMetadata
	switch name {
	case "actor":
		a := e.Actor
		switch {
		case a.Type == steward.ActorHuman:
			return n.user(a.UserID, a.Metadata["email"])
		case a.Metadata["api_key_name"] != "":
			return part{Text: quoted("Admin API key", a.Metadata["api_key_name"])}
		case a.Metadata["backoffice_key_name"] != "":
			return part{Text: quoted("Backoffice key", a.Metadata["backoffice_key_name"])}
		case a.Metadata["via"] == "scim":
			return part{Text: quoted("the identity provider, with SCIM token", a.Metadata["scim_token_name"])}
		case a.Metadata["name"] != "":
			return part{Text: "Steward (" + a.Metadata["name"] + ")"}
		}
		return part{Text: "Steward"}
	case "workspace":
		wsName := e.EventMetadata["workspace_name"]
		if wsName == "" {
			wsName = t["workspace_name"]
		}
		return n.workspace(e.WorkspaceID, wsName)
	case "group":
		return part{Text: quoted("group", t["group_name"]), Href: n.base + "/groups/" + t["group_id"]}
	}
	switch e.TargetType {
	case audit.TargetUser:
		return n.user(t["id"], t["email"])
	case audit.TargetWorkspace:
		return n.workspace(t["id"], t["name"])
	case audit.TargetUserGroup:
		return part{Text: quoted("group", t["name"]), Href: n.base + "/groups/" + t["id"]}
	case audit.TargetAPIKey:
		label := t["name"]
		if label == "" {
			label = t["hidden_key"]
		}
		return part{Text: quoted("API key", label), Href: n.base + "/keys/" + t["id"]}
	case audit.TargetAdminAPIKey:
		return part{Text: quoted("Admin API key", t["name"])}
	case audit.TargetOrganization:
		return part{Text: quoted("Organization", t["name"]), Href: n.base + "/"}
	case audit.TargetMonthlyLimit:
		return part{Text: "the Organization's monthly spend cap", Href: n.base + "/limits"}
	case audit.TargetWorkspaceMonthly:
		ws := n.workspace(t["workspace_id"], t["workspace_name"])
		return part{Text: "the monthly spend cap of " + ws.Text, Href: ws.Href}
	case audit.TargetRateLimitRule, audit.TargetAPIKeyPolicy:
		what, page := "the rate limits", "/limits"
		if e.TargetType == audit.TargetAPIKeyPolicy {
			what, page = "the key expiration policy", "/keys"
		}
		if t["scope"] == "workspace" || t["workspace_id"] != "" {
			ws := n.workspace(t["workspace_id"], t["workspace_name"])
			return part{Text: what + " of " + ws.Text, Href: ws.Href}
		}
		return part{Text: what + " of the Organization", Href: n.base + page}
	case audit.TargetRole:
		return part{Text: quoted("role", t["name"]), Href: n.base + "/roles"}
	case audit.TargetEnterpriseAccount:
		return part{Text: quoted("Enterprise Account", t["name"])}
	case audit.TargetBackofficeKey:
		return part{Text: quoted("Backoffice key", t["name"])}
	case audit.TargetSCIMToken:
		return part{Text: quoted("SCIM token", t["name"])}
	case audit.TargetWebhook:
		return part{Text: quoted("webhook", t["url"])}
	case audit.TargetSSOConnection:
		return part{Text: "the single sign-on connection", Href: n.base + "/sso"}
	}
	return part{Text: strings.ToLower(strings.ReplaceAll(e.TargetType, "_", " "))}
}

// names reads the names pages show for ids: the addresses of those of
// userIDs who are members, and every Workspace's name, archived ones
// included.
func (h *Handler) names(r *http.Request, c *reqCtx, userIDs []string) (names, error) {
	n := names{base: Prefix + "/o/" + c.org.ID, workspaces: map[string]string{}}
	var err error
	if n.users, err = h.directory.MemberEmails(r.Context(), c.org.ID, userIDs); err != nil {
		return n, err
	}
	for _, archived := range []bool{false, true} {
		ws, _, err := h.directory.ListWorkspaces(r.Context(), c.org.ID, archived, "", 1, directory.MaxPageSize)
		if err != nil {
			return n, err
		}
		for _, w := range ws {
			n.workspaces[w.ID] = w.Name
		}
	}
	return n, nil
}

// entryUsers are the people entries name by id: their actors and the users
// they changed.
func entryUsers(entries []audit.Entry) []string {
	var ids []string
	for _, e := range entries {
		ids = append(ids, e.Actor.UserID)
		if e.TargetType == audit.TargetUser {
			ids = append(ids, e.TargetMetadata["id"])
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// describeAll describes entries, with the names they refer to.
func (h *Handler) describeAll(r *http.Request, c *reqCtx, entries []audit.Entry) ([]auditRow, error) {
	n, err := h.names(r, c, entryUsers(entries))
	if err != nil {
		return nil, err
	}
	rows := make([]auditRow, len(entries))
	for i, e := range entries {
		rows[i] = n.describe(e)
	}
	return rows, nil
}
