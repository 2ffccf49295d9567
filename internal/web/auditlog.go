package web

import (
	"encoding/csv"
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/stewardhq/steward/internal/audit"
	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

const auditPerPage = 50

// maxExport bounds a CSV export; narrower filters export older entries.
const maxExport = 10_000

var (
	auditActorTypes  = []string{steward.ActorHuman, steward.ActorAPIKey, steward.ActorOther}
	auditTargetTypes = []string{audit.TargetUser, audit.TargetUserGroup, audit.TargetOrganization, audit.TargetWorkspace, audit.TargetAPIKey,
		audit.TargetAdminAPIKey, audit.TargetAPIKeyPolicy, audit.TargetMonthlyLimit, audit.TargetWorkspaceMonthly, audit.TargetRateLimitRule,
		audit.TargetEnterpriseAccount, audit.TargetBackofficeKey, audit.TargetRole, audit.TargetSCIMToken, audit.TargetWebhook,
		audit.TargetSSOConnection}
)

type auditData struct {
	Entries                        []auditRow
	EventTypes, ActorTypes, Target []string
	Event, ActorType, TargetType   string
	From, To, Actor                string
	Members                        []steward.Member
	Next                           template.URL
	Query                          template.URL
}

// auditFilters are the query parameters that filter the log, kept across
// pages and in the export link.
var auditFilters = []string{"event_type", "actor_type", "target_type", "from", "to", "actor"}

// auditFilter reads the page's filters; a value that is not on the lists is
// refused.
func auditFilter(q url.Values, orgID string) (audit.Filter, error) {
	f := audit.Filter{OrganizationID: orgID, Limit: auditPerPage}
	for _, sel := range []struct {
		name    string
		allowed []string
		dst     *[]string
	}{{"event_type", auditEventTypes, &f.EventTypes}, {"actor_type", auditActorTypes, &f.ActorTypes}, {"target_type", auditTargetTypes, &f.TargetTypes}} {
		v := q.Get(sel.name)
		if v == "" {
			continue
		}
		if !slices.Contains(sel.allowed, v) {
			return f, steward.Invalid([]string{"query", sel.name}, "%q is not a known %s", v, sel.name)
		}
		*sel.dst = []string{v}
	}
	for _, d := range []struct {
		name string
		dst  **time.Time
		// shift makes the day inclusive: After and Before are exclusive.
		shift time.Duration
	}{{"from", &f.After, -time.Microsecond}, {"to", &f.Before, 24 * time.Hour}} {
		v := q.Get(d.name)
		if v == "" {
			continue
		}
		day, err := time.Parse("2006-01-02", v)
		if err != nil {
			return f, steward.Invalid([]string{"query", d.name}, "%s must be a date, YYYY-MM-DD", d.name)
		}
		t := day.Add(d.shift)
		*d.dst = &t
	}
	if actor := q.Get("actor"); actor != "" {
		if len(actor) > 100 {
			return f, steward.Invalid([]string{"query", "actor"}, "actor must be a user id")
		}
		f.ActorUserID = &actor
	}
	if at, id := q.Get("before"), q.Get("before_id"); at != "" {
		us, err1 := strconv.ParseInt(at, 10, 64)
		logID, err2 := strconv.ParseInt(id, 10, 64)
		if err1 != nil || err2 != nil {
			return f, steward.Invalid([]string{"query", "before"}, "the page cursor is not valid: start from the first page")
		}
		f.OlderThan = &audit.Cursor{CreatedAt: store.Time(us), LogID: logID}
	}
	return f, nil
}

func metadata(m map[string]string) string {
	if len(m) == 0 {
		return ""
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func (h *Handler) auditView(r *http.Request, c *reqCtx) (page, error) {
	p := c.page("Audit log", "audit")
	q := r.URL.Query()
	d := auditData{EventTypes: auditEventTypes, ActorTypes: auditActorTypes, Target: auditTargetTypes,
		Event: q.Get("event_type"), ActorType: q.Get("actor_type"), TargetType: q.Get("target_type"),
		From: q.Get("from"), To: q.Get("to"), Actor: q.Get("actor")}
	filters := url.Values{}
	for _, k := range auditFilters {
		if v := q.Get(k); v != "" {
			filters.Set(k, v)
		}
	}
	d.Query = template.URL(filters.Encode())
	f, err := auditFilter(q, c.org.ID)
	if err != nil {
		p.Data = d
		return p, err
	}
	var entries []audit.Entry
	res, err := h.directory.ListMembers(r.Context(), c.org.ID, "", 1, directory.MaxPageSize)
	if err == nil {
		d.Members = res.Members
		entries, err = h.audit.List(r.Context(), f)
	}
	if err == nil {
		d.Entries, err = h.describeAll(r, c, entries)
	}
	if len(entries) == auditPerPage {
		last := entries[len(entries)-1]
		next := url.Values{}
		for k, v := range filters {
			next[k] = v
		}
		next.Set("before", strconv.FormatInt(store.Micros(last.CreatedAt), 10))
		next.Set("before_id", strconv.FormatInt(last.LogID, 10))
		// A template.URL: html/template would otherwise escape the
		// query's = and & as data.
		d.Next = template.URL("?" + next.Encode())
	}
	p.Data = d
	return p, err
}

// exportAudit writes the filtered entries as CSV, newest first, at most
// maxExport of them.
func (h *Handler) exportAudit(w http.ResponseWriter, r *http.Request, c *reqCtx) error {
	f, err := auditFilter(r.URL.Query(), c.org.ID)
	if err != nil {
		return err
	}
	all, err := h.audit.ListUpTo(r.Context(), f, maxExport)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="audit-log.csv"`)
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"log_id", "created_at", "actor_type", "actor_user_id", "actor_metadata", "event_type", "event_metadata", "target_type", "target_metadata", "workspace_id"})
	for _, e := range all {
		_ = cw.Write([]string{strconv.FormatInt(e.LogID, 10), e.CreatedAt.UTC().Format(time.RFC3339Nano), e.Actor.Type, e.Actor.UserID,
			csvSafe(metadata(e.Actor.Metadata)), e.EventType, csvSafe(metadata(e.EventMetadata)), e.TargetType, csvSafe(metadata(e.TargetMetadata)), e.WorkspaceID})
	}
	cw.Flush()
	return cw.Error()
}

// csvSafe keeps a spreadsheet from reading a cell as a formula.
func csvSafe(s string) string {
	if s != "" && (s[0] == '=' || s[0] == '+' || s[0] == '-' || s[0] == '@') {
		return "'" + s
	}
	return s
}
