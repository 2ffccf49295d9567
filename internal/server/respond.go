package server

import (
	"context"
	"net/http"

	"github.com/stewardhq/steward/internal/store"
)

// read answers 200 with what fn returns from a read-only transaction.
func read[T any](s *Server, w http.ResponseWriter, r *http.Request, fn func(tx *store.Tx) (T, error)) error {
	return respond(w, s.deps.DB.View, r, fn)
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
