package web

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/stewardhq/steward/internal/steward"
)

// viewFunc loads what a page shows.
type viewFunc func(r *http.Request, c *reqCtx) (page, error)

// show serves a page, with the notice a redirect asked for.
func (h *Handler) show(name string) pageFunc {
	return func(w http.ResponseWriter, r *http.Request, c *reqCtx) error {
		p, err := h.views[name](r, c)
		if err != nil {
			return err
		}
		p.Flash = flashes[r.URL.Query().Get("done")]
		h.render(w, r, http.StatusOK, name, p)
		return nil
	}
}

// again shows a page again after a change failed for a reason the person
// can fix, with the reason; any other error is returned.
func (h *Handler) again(w http.ResponseWriter, r *http.Request, c *reqCtx, name string, err error) error {
	msg, status, ok := clientError(err)
	if !ok {
		return err
	}
	p, verr := h.views[name](r, c)
	if verr != nil {
		return verr
	}
	p.Error = msg
	h.render(w, r, status, name, p)
	return nil
}

// showWith shows a page after a change, with edit applied to it (a secret
// shown once, a notice with counts).
func (h *Handler) showWith(w http.ResponseWriter, r *http.Request, c *reqCtx, name string, edit func(*page)) error {
	p, err := h.views[name](r, c)
	if err != nil {
		return err
	}
	edit(&p)
	h.render(w, r, http.StatusOK, name, p)
	return nil
}

// optAmount reads an optional whole, non-negative number from a form
// field: nil when empty.
func optAmount(r *http.Request, name string) (*int64, error) {
	v := strings.TrimSpace(r.PostFormValue(name))
	if v == "" {
		return nil, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return nil, steward.Invalid([]string{"body", name}, "%s must be a whole number of at least 0, or empty for none", strings.ReplaceAll(name, "_", " "))
	}
	return &n, nil
}

// pageNumber reads ?page=, from 1.
func pageNumber(r *http.Request) int {
	n, err := strconv.Atoi(r.URL.Query().Get("page"))
	if err != nil || n < 1 {
		return 1
	}
	return min(n, 1_000_000)
}
