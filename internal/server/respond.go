package server

import (
	"context"
	"net/http"

	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

// read answers 200 with what fn returns from a read-only transaction.
func read[T any](s *Server, w http.ResponseWriter, r *http.Request, fn func(tx *store.Tx) (T, error)) error {
	return respond(w, s.deps.DB.View, r, fn)
}

// itemsOut is the answer of Steward's list extensions: {"items": [...]},
// an empty list rather than null.
type itemsOut[T any] struct {
	Items []T `json:"items"`
}

// readItems answers a list extension: load reads the list in a read-only
// transaction, and item makes the answer's item of each element, given
// its index.
func readItems[S, T any](s *Server, w http.ResponseWriter, r *http.Request, load func(tx *store.Tx) ([]S, error), item func(i int, x S) T) error {
	return read(s, w, r, func(tx *store.Tx) (itemsOut[T], error) {
		list, err := load(tx)
		out := itemsOut[T]{Items: make([]T, 0, len(list))}
		for i, x := range list {
			out.Items = append(out.Items, item(i, x))
		}
		return out, err
	})
}

// write answers 200 with what fn returns once its transaction has
// committed; nothing is answered before the change is durable.
func write[T any](s *Server, w http.ResponseWriter, r *http.Request, fn func(tx *store.Tx) (T, error)) error {
	return respond(w, s.deps.DB.Transact, r, fn)
}

func respond[T any](w http.ResponseWriter, run func(context.Context, func(*store.Tx) error) error, r *http.Request, fn func(tx *store.Tx) (T, error)) error {
	var out T
	err := run(r.Context(), func(tx *store.Tx) error {
		var err error
		out, err = fn(tx)
		return err
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// writeStatus answers status with no body once fn's transaction has
// committed.
func writeStatus(s *Server, w http.ResponseWriter, r *http.Request, status int, fn func(tx *store.Tx) error) error {
	if err := s.deps.DB.Transact(r.Context(), fn); err != nil {
		return err
	}
	w.WriteHeader(status)
	return nil
}

// writeOrg is write for a change of the principal's Organization, which fn
// receives.
func writeOrg[T any](s *Server, w http.ResponseWriter, r *http.Request, p steward.Principal, fn func(tx *store.Tx, org steward.Organization) (T, error)) error {
	return write(s, w, r, func(tx *store.Tx) (T, error) {
		org, err := directory.GetOrganization(r.Context(), tx, p.OrganizationID)
		if err != nil {
			var zero T
			return zero, err
		}
		return fn(tx, org)
	})
}

// orgChange is writeStatus for a change of the principal's Organization.
func (s *Server) orgChange(w http.ResponseWriter, r *http.Request, p steward.Principal, status int, change func(tx *store.Tx, org steward.Organization) error) error {
	return writeStatus(s, w, r, status, func(tx *store.Tx) error {
		org, err := directory.GetOrganization(r.Context(), tx, p.OrganizationID)
		if err != nil {
			return err
		}
		return change(tx, org)
	})
}
