package server

import (
	"net/http"

	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/webhooks"
)

// Webhook endpoints (a Steward extension): package webhooks keeps them and
// delivers the Organization's audit entries to them.

type webhookOut struct {
	ID                      string   `json:"id"`
	URL                     string   `json:"url"`
	Description             string   `json:"description"`
	Events                  []string `json:"events"`
	Enabled                 bool     `json:"enabled"`
	DisabledAt              *string  `json:"disabled_at"`
	DisabledReason          *string  `json:"disabled_reason"`
	CreatedAt               string   `json:"created_at"`
	UpdatedAt               string   `json:"updated_at"`
	PreviousSecretExpiresAt *string  `json:"previous_secret_expires_at"`
	Secret                  *string  `json:"secret,omitempty"`
}

func newWebhookOut(e webhooks.Endpoint) webhookOut {
	out := webhookOut{ID: e.ID, URL: e.URL, Description: e.Description, Events: e.Events, Enabled: e.DisabledAt == nil,
		DisabledAt: optionalTime(e.DisabledAt), CreatedAt: formatTime(e.CreatedAt), UpdatedAt: formatTime(e.UpdatedAt),
		PreviousSecretExpiresAt: optionalTime(e.PreviousSecretUntil)}
	if e.DisabledAt != nil {
		out.DisabledReason = &e.DisabledReason
	}
	return out
}

type webhookIn struct {
	URL         *string  `json:"url"`
	Events      []string `json:"events"`
	Description *string  `json:"description"`
	Enabled     *bool    `json:"enabled"`
}

func (in webhookIn) input() webhooks.Input {
	return webhooks.Input{URL: in.URL, Events: in.Events, Description: in.Description, Enabled: in.Enabled}
}

type pageOut[T any] struct {
	Items    []T `json:"items"`
	Total    int `json:"total"`
	Page     int `json:"page"`
	PageSize int `json:"page_size"`
}

// webhookPaging reads page and page_size (25 by default, at most
// webhooks.MaxPageSize).
func webhookPaging(r *http.Request) (page, pageSize int, err error) {
	q := newQuery(r)
	page, pageSize = q.intRange("page", 1, 1, 1<<30), q.intRange("page_size", 25, 1, webhooks.MaxPageSize)
	return page, pageSize, q.err()
}

func (s *Server) handleCreateWebhook(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	var in webhookIn
	if err := decode(r, &in); err != nil {
		return err
	}
	if err := steward.Invalids(missing([]string{"body"}, field{"url", in.URL})); err != nil {
		return err
	}
	e, secret, err := s.webhooks.Create(r.Context(), p.Actor(), p.OrganizationID, in.input())
	out := newWebhookOut(e)
	out.Secret = &secret
	return writeResult(w, out, err)
}

func (s *Server) handleListWebhooks(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	page, pageSize, err := webhookPaging(r)
	if err != nil {
		return err
	}
	res, err := s.webhooks.List(r.Context(), p.OrganizationID, page, pageSize)
	out := pageOut[webhookOut]{Items: []webhookOut{}, Total: res.Total, Page: page, PageSize: pageSize}
	for _, e := range res.Items {
		out.Items = append(out.Items, newWebhookOut(e))
	}
	return writeResult(w, out, err)
}

func (s *Server) handleGetWebhook(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	e, err := s.webhooks.Get(r.Context(), p.OrganizationID, r.PathValue("webhook_id"))
	return writeResult(w, newWebhookOut(e), err)
}

func (s *Server) handleUpdateWebhook(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	var in webhookIn
	if err := decode(r, &in); err != nil {
		return err
	}
	e, err := s.webhooks.Update(r.Context(), p.Actor(), p.OrganizationID, r.PathValue("webhook_id"), in.input())
	return writeResult(w, newWebhookOut(e), err)
}

func (s *Server) handleDeleteWebhook(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	return writeStatus(w, http.StatusNoContent, s.webhooks.Delete(r.Context(), p.Actor(), p.OrganizationID, r.PathValue("webhook_id")))
}

func (s *Server) handleRotateWebhookSecret(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	e, secret, err := s.webhooks.RotateSecret(r.Context(), p.Actor(), p.OrganizationID, r.PathValue("webhook_id"))
	out := newWebhookOut(e)
	out.Secret = &secret
	return writeResult(w, out, err)
}

type webhookDeliveryOut struct {
	ID            string  `json:"id"`
	EventType     string  `json:"event_type"`
	Status        string  `json:"status"`
	Attempts      int     `json:"attempts"`
	HTTPStatus    *int    `json:"http_status"`
	LatencyMS     *int64  `json:"latency_ms"`
	LastError     *string `json:"last_error"`
	CreatedAt     string  `json:"created_at"`
	LastAttemptAt *string `json:"last_attempt_at"`
	NextAttemptAt *string `json:"next_attempt_at"`
	FinishedAt    *string `json:"finished_at"`
}

func newWebhookDeliveryOut(d webhooks.Delivery) webhookDeliveryOut {
	out := webhookDeliveryOut{ID: d.ID, EventType: d.EventType, Status: d.Status, Attempts: d.Attempts, HTTPStatus: d.HTTPStatus,
		CreatedAt: formatTime(d.CreatedAt), LastAttemptAt: optionalTime(d.LastAttemptAt), FinishedAt: optionalTime(d.FinishedAt)}
	if d.Latency != nil {
		ms := d.Latency.Milliseconds()
		out.LatencyMS = &ms
	}
	if d.LastError != "" {
		out.LastError = &d.LastError
	}
	if d.Status == webhooks.StatusPending {
		out.NextAttemptAt = optionalTime(&d.NextAttemptAt)
	}
	return out
}

func (s *Server) handleTestWebhook(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	d, err := s.webhooks.Test(r.Context(), p.OrganizationID, r.PathValue("webhook_id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, newWebhookDeliveryOut(d))
	return nil
}

func (s *Server) handleListWebhookDeliveries(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	page, pageSize, err := webhookPaging(r)
	if err != nil {
		return err
	}
	res, err := s.webhooks.Deliveries(r.Context(), p.OrganizationID, r.PathValue("webhook_id"), page, pageSize)
	out := pageOut[webhookDeliveryOut]{Items: []webhookDeliveryOut{}, Total: res.Total, Page: page, PageSize: pageSize}
	for _, d := range res.Items {
		out.Items = append(out.Items, newWebhookDeliveryOut(d))
	}
	return writeResult(w, out, err)
}
