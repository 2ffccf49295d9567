package web

import "net/http"

// flashes are the notices a redirect may ask a page to show, by code, so
// that no text of the query string is ever displayed.
var flashes = map[string]string{
	"signed_out":      "You are signed out.",
	"password_set":    "Your password is set: sign in with it.",
	"invite_revoked":  "The invitation is revoked.",
	"invite_resent":   "The invitation is sent again, with a new link; the old link no longer works.",
	"member_updated":  "The member's role is changed.",
	"member_removed":  "The member is removed.",
	"ws_created":      "The Workspace is created.",
	"ws_archived":     "The Workspace is archived.",
	"ws_updated":      "The Workspace is saved.",
	"ws_limits":       "The Workspace's limits are saved.",
	"ws_members":      "The Workspace's members are changed.",
	"group_created":   "The group is created.",
	"group_deleted":   "The group is deleted.",
	"group_saved":     "The group is saved.",
	"key_deleted":     "The API key is deleted.",
	"policy_saved":    "The key expiration policy is saved.",
	"models_saved":    "The allowed models are saved.",
	"limits_saved":    "The limits are saved.",
	"role_created":    "The custom role is created.",
	"role_deleted":    "The custom role is deleted.",
	"org_created":     "The Organization is created.",
	"promoted":        "The member is now an admin of the Organization.",
	"ea_member_added": "The member is added to the Enterprise Account.",
	"ea_member_gone":  "The member is removed from the Enterprise Account.",
	"admin_key_gone":  "The Admin API key is deleted.",
	"webhook_saved":   "The webhook endpoint is saved.",
	"webhook_test":    "A test event is queued: it shows in the delivery log below.",
	"webhook_deleted": "The webhook endpoint is deleted.",
	"sso_saved":       "The single sign-on connection is saved.",
	"sso_deleted":     "The single sign-on connection is deleted: passwords work again.",
}

// done redirects, after a change, to a page that shows the notice code.
func done(w http.ResponseWriter, r *http.Request, path, code string) error {
	http.Redirect(w, r, path+"?done="+code, http.StatusSeeOther)
	return nil
}
