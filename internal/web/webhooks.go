package web

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/webhooks"
)

// deliveriesPerPage is the length of a page of an endpoint's delivery log.
const deliveriesPerPage = 25

// webhookForm is the endpoint form: its values, as stored or as posted
// when the change was refused, and the message beside each field the
// service refused.
type webhookForm struct {
	URL, Events, Description string
	Enabled                  bool
	Errors                   map[string]string
}

type webhooksData struct {
	Endpoints []webhooks.Endpoint
	Total     int
	Form      webhookForm
}

type webhookData struct {
	Endpoint   webhooks.Endpoint
	Form       webhookForm
	Deliveries []deliveryRow
	Total      int
	Page       int
	Prev, Next int
}

// deliveryRow is a delivery as the log shows it.
type deliveryRow struct {
	webhooks.Delivery
	HTTPStatus, Latency string
}

// formOf returns the form of a page of webhooks, for the field errors.
func formOf(data any) *webhookForm {
	switch d := data.(type) {
	case *webhooksData:
		return &d.Form
	case *webhookData:
		return &d.Form
	}
	return nil
}

// postedForm reads the endpoint form of a refused post back into f, so
// that the page shows what was typed.
func postedForm(r *http.Request, f *webhookForm) {
	if r.Method != http.MethodPost || !r.PostForm.Has("url") {
		return
	}
	f.URL, f.Events, f.Description = r.PostFormValue("url"), r.PostFormValue("events"), r.PostFormValue("description")
	f.Enabled = r.PostFormValue("enabled") != ""
}

func (h *Handler) webhooksView(r *http.Request, c *reqCtx) (page, error) {
	p := c.page("Webhooks", "webhooks")
	d := &webhooksData{Form: webhookForm{Enabled: true}}
	list, err := h.webhooks.List(r.Context(), c.org.ID, 1, webhooks.MaxEndpoints)
	d.Endpoints, d.Total = list.Items, list.Total
	postedForm(r, &d.Form)
	p.Data = d
	return p, err
}

func (h *Handler) webhookView(r *http.Request, c *reqCtx) (page, error) {
	p := c.page("Webhook endpoint", "webhooks")
	d := &webhookData{Page: pageNumber(r)}
	p.Data = d
	ctx := r.Context()
	e, err := h.webhooks.Get(ctx, c.org.ID, r.PathValue("hook"))
	if err != nil {
		return p, err
	}
	d.Endpoint = e
	d.Form = webhookForm{URL: e.URL, Events: strings.Join(e.Events, ", "), Description: e.Description, Enabled: e.DisabledAt == nil}
	postedForm(r, &d.Form)
	list, err := h.webhooks.Deliveries(ctx, c.org.ID, e.ID, d.Page, deliveriesPerPage)
	if err != nil {
		return p, err
	}
	d.Total = list.Total
	for _, dl := range list.Items {
		row := deliveryRow{Delivery: dl, HTTPStatus: "none", Latency: "none"}
		if dl.HTTPStatus != nil {
			row.HTTPStatus = strconv.Itoa(*dl.HTTPStatus)
		}
		if dl.Latency != nil {
			row.Latency = fmt.Sprintf("%d ms", dl.Latency.Milliseconds())
		}
		d.Deliveries = append(d.Deliveries, row)
	}
	if d.Page > 1 {
		d.Prev = d.Page - 1
	}
	if d.Page*deliveriesPerPage < d.Total {
		d.Next = d.Page + 1
	}
	return p, nil
}

// webhookInput reads the endpoint form: events are separated by commas or
// spaces; none at all is a list the service refuses, naming the field.
func webhookInput(r *http.Request) webhooks.Input {
	url := strings.TrimSpace(r.PostFormValue("url"))
	description := r.PostFormValue("description")
	enabled := r.PostFormValue("enabled") != ""
	events := strings.FieldsFunc(r.PostFormValue("events"), func(c rune) bool { return c == ',' || c == ' ' || c == '\n' || c == '\r' || c == '\t' })
	if events == nil {
		events = []string{}
	}
	return webhooks.Input{URL: &url, Events: events, Description: &description, Enabled: &enabled}
}

// webhookFields are the fields of the endpoint form, beside which an error
// is shown.
var webhookFields = map[string]bool{"url": true, "events": true, "description": true}

// webhookAgain shows a page of webhooks again after a change was refused:
// a field's error beside the field, any other error above the page.
func (h *Handler) webhookAgain(w http.ResponseWriter, r *http.Request, c *reqCtx, name string, err error) error {
	var e *steward.Error
	if !errors.As(err, &e) || e.Kind != steward.KindInvalid {
		return h.again(w, r, c, name, err)
	}
	errs := map[string]string{}
	for _, fe := range append([]*steward.Error{e}, e.Also...) {
		if len(fe.Field) < 2 || fe.Field[0] != "body" || !webhookFields[fe.Field[1]] {
			return h.again(w, r, c, name, err)
		}
		errs[fe.Field[1]] = fe.Message
	}
	p, verr := h.views[name](r, c)
	if verr != nil {
		return verr
	}
	formOf(p.Data).Errors = errs
	h.render(w, r, http.StatusUnprocessableEntity, name, p)
	return nil
}

func (h *Handler) createWebhook(w http.ResponseWriter, r *http.Request, c *reqCtx) error {
	e, secret, err := h.webhooks.Create(r.Context(), c.p.Actor(), c.org.ID, webhookInput(r))
	if err != nil {
		return h.webhookAgain(w, r, c, "webhooks", err)
	}
	return h.showWith(w, r, c, "webhooks", func(p *page) {
		p.Secret = &shownSecret{What: "Webhook endpoint created", Name: e.URL, Value: secret}
	})
}

func (h *Handler) updateWebhook(w http.ResponseWriter, r *http.Request, c *reqCtx) error {
	e, err := h.webhooks.Update(r.Context(), c.p.Actor(), c.org.ID, r.PathValue("hook"), webhookInput(r))
	if err != nil {
		return h.webhookAgain(w, r, c, "webhook", err)
	}
	return done(w, r, Prefix+"/o/"+c.org.ID+"/webhooks/"+e.ID, "webhook_saved")
}

func (h *Handler) rotateWebhookSecret(w http.ResponseWriter, r *http.Request, c *reqCtx) error {
	e, secret, err := h.webhooks.RotateSecret(r.Context(), c.p.Actor(), c.org.ID, r.PathValue("hook"))
	if err != nil {
		return h.again(w, r, c, "webhook", err)
	}
	until := ""
	if e.PreviousSecretUntil != nil {
		until = e.PreviousSecretUntil.UTC().Format(time.DateTime + " UTC")
	}
	return h.showWith(w, r, c, "webhook", func(p *page) {
		p.Secret = &shownSecret{What: "Signing secret rotated", Name: e.URL, Value: secret}
		p.Flash = "The old secret keeps signing beside the new one until " + until + "."
	})
}

func (h *Handler) testWebhook(w http.ResponseWriter, r *http.Request, c *reqCtx) error {
	if _, err := h.webhooks.Test(r.Context(), c.org.ID, r.PathValue("hook")); err != nil {
		return h.again(w, r, c, "webhook", err)
	}
	return done(w, r, Prefix+"/o/"+c.org.ID+"/webhooks/"+r.PathValue("hook"), "webhook_test")
}

func (h *Handler) deleteWebhook(w http.ResponseWriter, r *http.Request, c *reqCtx) error {
	if err := h.webhooks.Delete(r.Context(), c.p.Actor(), c.org.ID, r.PathValue("hook")); err != nil {
		return h.again(w, r, c, "webhook", err)
	}
	return done(w, r, Prefix+"/o/"+c.org.ID+"/webhooks", "webhook_deleted")
}
