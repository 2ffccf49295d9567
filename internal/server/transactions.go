package server

import (
	"net/http"

	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

// The handlers of limits, usage, analytics and the Organization's time zone
// (quota) still run their domain's functions in a transaction of their
// own, through read and writeOrg; the other handlers call the domain
// services (directory.Service, keys.Service, audit.Service, scim.Service),
// each of whose methods is one transaction.

// read answers 200 with what fn returns from a read-only transaction.
func read[T any](s *Server, w http.ResponseWriter, r *http.Request, fn func(tx *store.Tx) (T, error)) error {
	out, err := store.Read(r.Context(), s.deps.DB, fn)
	return writeResult(w, out, err)
}

// writeOrg answers 200 with what fn returns, given the principal's
// Organization, once its transaction has committed.
func writeOrg[T any](s *Server, w http.ResponseWriter, r *http.Request, p steward.Principal, fn func(tx *store.Tx, org steward.Organization) (T, error)) error {
	out, err := directory.Change(r.Context(), s.deps.DB, p.OrganizationID, fn)
	return writeResult(w, out, err)
}
