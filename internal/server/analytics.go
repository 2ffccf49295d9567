package server

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/stewardhq/steward/internal/analytics"
	"github.com/stewardhq/steward/internal/steward"
)

// ingestOut answers an event batch: how many events it held and how many
// were already stored (retries), and so ignored.
type ingestOut struct {
	Object     string `json:"object"`
	Received   int    `json:"received"`
	Duplicates int    `json:"duplicates"`
}

// handleIngestEvents serves POST /v1/analytics/events: product events
// reported with a Workspace API key, whose Organization, Workspace and user
// each event belongs to. It answers once the events are durable.
func (s *Server) handleIngestEvents(w http.ResponseWriter, r *http.Request) {
	if err := s.ingestEvents(w, r); err != nil {
		writeError(w, r, err)
	}
}

func (s *Server) ingestEvents(w http.ResponseWriter, r *http.Request) error {
	k, err := s.deps.Auth.WorkspaceKey(r)
	if err != nil {
		return err
	}
	if k.Kind == steward.CredentialNone {
		return steward.Errorf(steward.KindUnauthenticated, "missing API key: send Authorization: Bearer <Workspace API key>")
	}
	var b analytics.Batch
	if err := decode(r, &b); err != nil {
		return err
	}
	owner := analytics.Owner{OrganizationID: k.OrganizationID, WorkspaceID: k.WorkspaceID, UserID: k.UserID, KeyID: k.CredentialID}
	events, err := analytics.Parse(b, owner, s.deps.DB.Now().UTC())
	if err != nil {
		return err
	}
	fresh, err := s.deps.Analytics.Record(r.Context(), events)
	if err != nil {
		return err
	}
	out := ingestOut{Object: "analytics.events", Received: len(events)}
	for _, f := range fresh {
		if !f {
			out.Duplicates++
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, out)
	return nil
}

// maxUnixSeconds is the last second of year 9999.
const maxUnixSeconds = 253402300799

// analyticsWindow reads start_time and end_time (Unix seconds, both
// required, end after start, at most analytics.MaxWindow apart).
func analyticsWindow(q *query) analytics.Window {
	var w analytics.Window
	bound := func(name string) (int64, bool) {
		if !q.values.Has(name) {
			q.fail(name, "%s is required: a Unix timestamp in seconds", name)
			return 0, false
		}
		v, err := strconv.ParseInt(q.values.Get(name), 10, 64)
		if err != nil || v < 0 || v > maxUnixSeconds {
			q.fail(name, "%s must be a Unix timestamp in seconds between 0 and %d, not %q", name, int64(maxUnixSeconds), q.values.Get(name))
			return 0, false
		}
		return v, true
	}
	start, okStart := bound("start_time")
	end, okEnd := bound("end_time")
	if okStart && okEnd {
		w = analytics.Window{Start: time.Unix(start, 0).UTC(), End: time.Unix(end, 0).UTC()}
		switch {
		case end <= start:
			q.fail("end_time", "end_time must be after start_time")
		case w.End.Sub(w.Start) > analytics.MaxWindow:
			q.fail("end_time", "the window must be at most %d days long", int(analytics.MaxWindow.Hours()/24))
		}
	}
	return w
}

// windowOut is the window every analytics report repeats.
type windowOut struct {
	StartTime int64 `json:"start_time"`
	EndTime   int64 `json:"end_time"`
}

func newWindowOut(w analytics.Window) windowOut {
	return windowOut{StartTime: w.Start.Unix(), EndTime: w.End.Unix()}
}

// report answers a Work report: the window and its data. q holds the
// request's other parameters, read already.
func report[T any](w http.ResponseWriter, r *http.Request, p steward.Principal, q *query,
	fn func(ctx context.Context, org string, w analytics.Window) ([]T, error)) error {
	win := analyticsWindow(q)
	if err := q.err(); err != nil {
		return err
	}
	data, err := fn(r.Context(), p.OrganizationID, win)
	return writeResult(w, struct {
		windowOut
		Data []T `json:"data"`
	}{newWindowOut(win), data}, err)
}

// handleWorkByUser serves Mistral's usage by user (Vibe Work, le Chat).
func (s *Server) handleWorkByUser(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	return report(w, r, p, newQuery(r), s.analytics.WorkByUser)
}

// handleWorkByAgent serves Mistral's usage by agent.
func (s *Server) handleWorkByAgent(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	return report(w, r, p, newQuery(r), s.analytics.WorkByAgent)
}

// handleWorkByTime serves Mistral's usage over time; granularity is day
// unless given.
func (s *Server) handleWorkByTime(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	q := newQuery(r)
	granularity := q.oneOf("granularity", "day", analytics.Granularities...)
	return report(w, r, p, q, func(ctx context.Context, org string, w analytics.Window) ([]analytics.TimeStat, error) {
		return s.analytics.WorkByTime(ctx, org, w, granularity)
	})
}

// handleCodeByWorkspace serves Mistral's Vibe Code usage by Workspace: one
// Workspace of the Organization, or all of them without workspace_id.
func (s *Server) handleCodeByWorkspace(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	q := newQuery(r)
	win := analyticsWindow(q)
	workspaceID := q.stringOr("workspace_id", "")
	if err := q.err(); err != nil {
		return err
	}
	stats, err := s.analytics.CodeByWorkspace(r.Context(), p.OrganizationID, workspaceID, win)
	return writeResult(w, struct {
		windowOut
		analytics.WorkspaceStats
	}{newWindowOut(win), stats}, err)
}

// handleCodeByOrganization serves Mistral's Vibe Code usage by
// Organization: next-edit suggestions.
func (s *Server) handleCodeByOrganization(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	q := newQuery(r)
	win := analyticsWindow(q)
	if err := q.err(); err != nil {
		return err
	}
	stats, err := s.analytics.CodeByOrganization(r.Context(), p.OrganizationID, win)
	return writeResult(w, struct {
		windowOut
		analytics.OrganizationStats
	}{newWindowOut(win), stats}, err)
}
