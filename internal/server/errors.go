package server

import (
	"log/slog"
	"net/http"

	"github.com/stewardhq/steward/internal/apierror"
	"github.com/stewardhq/steward/internal/steward"
)

// writeError writes err to the client in Mistral's format and logs it if it
// is internal or an outage: once, here, with the request id.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := apierror.As(err)
	if e.Kind == steward.KindInternal || e.Kind == steward.KindUnavailable {
		logFrom(r.Context()).LogAttrs(r.Context(), slog.LevelError, "request failed", slog.String("err", err.Error()))
	}
	apierror.Write(w, e)
}

// writeJSON encodes v with status.
func writeJSON(w http.ResponseWriter, status int, v any) { apierror.WriteJSON(w, status, v) }
