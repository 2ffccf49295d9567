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

// writeResult answers 200 with out, what a service returned, unless the
// service returned err, which it returns for the handler's caller to write.
func writeResult[T any](w http.ResponseWriter, out T, err error) error {
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// writeStatus answers status with no body unless err.
func writeStatus(w http.ResponseWriter, status int, err error) error {
	if err != nil {
		return err
	}
	w.WriteHeader(status)
	return nil
}

// itemsOut is the answer of Steward's list extensions: {"items": [...]},
// an empty list rather than null.
type itemsOut[T any] struct {
	Items []T `json:"items"`
}

// writeItems answers a list extension with the item of each element of
// list, given its index, unless err.
func writeItems[S, T any](w http.ResponseWriter, list []S, err error, item func(i int, x S) T) error {
	out := itemsOut[T]{Items: make([]T, 0, len(list))}
	for i, x := range list {
		out.Items = append(out.Items, item(i, x))
	}
	return writeResult(w, out, err)
}
