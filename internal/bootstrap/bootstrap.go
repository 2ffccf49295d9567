// Package bootstrap initialises an empty database: the first Enterprise
// Account, its first Organization with the default Workspace, that
// Organization's first admin, an Admin API key and a Backoffice key, all in
// one transaction with their audit entries.
package bootstrap

import (
	"context"

	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/keys"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

// Defaults for the first start.
const (
	DefaultOrgName           = "Default Organization"
	DefaultEnterpriseAccount = "Default Enterprise Account"
	DefaultAdminEmail        = "admin@example.com"
)

// Options name what the bootstrap creates; empty fields take the defaults.
type Options struct {
	EnterpriseAccountName string
	OrgName               string
	AdminEmail            string
	// Actor is recorded in the audit log, e.g. "steward init".
	Actor string
}

// Result is what the bootstrap created, with the two secrets that are never
// shown again.
type Result struct {
	EnterpriseAccount steward.EnterpriseAccount
	Organization      steward.Organization
	DefaultWorkspace  steward.Workspace
	Admin             steward.User
	AdminKey          steward.AdminAPIKey
	AdminKeySecret    string
	BackofficeKey     steward.BackofficeKey
	BackofficeSecret  string
}

// ErrInitialised is returned by Run on a database that was initialised
// before.
var ErrInitialised = &steward.Error{Kind: steward.KindConflict,
	Message: "this database is already initialised: its Admin API and Backoffice keys were printed when it was; issue new ones from the Backoffice"}

// Initialised reports whether the database was bootstrapped.
func Initialised(ctx context.Context, db *store.DB) (bool, error) {
	var n int
	err := db.View(ctx, func(tx *store.Tx) error {
		return tx.QueryRow(ctx, `SELECT COUNT(*) FROM steward_bootstrap`).Scan(&n)
	})
	return n > 0, err
}

// Run initialises an empty database. It returns ErrInitialised if the
// database was initialised before, also when another process does so at the
// same moment.
func Run(ctx context.Context, db *store.DB, opts Options) (Result, error) {
	if opts.OrgName == "" {
		opts.OrgName = DefaultOrgName
	}
	if opts.EnterpriseAccountName == "" {
		opts.EnterpriseAccountName = DefaultEnterpriseAccount
	}
	if opts.AdminEmail == "" {
		opts.AdminEmail = DefaultAdminEmail
	}
	if opts.Actor == "" {
		opts.Actor = "steward bootstrap"
	}
	actor := steward.SystemActor(opts.Actor)
	var r Result
	err := db.Transact(ctx, func(tx *store.Tx) error {
		var n int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM steward_bootstrap`).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return ErrInitialised
		}
		var err error
		if r.EnterpriseAccount, err = directory.CreateEnterpriseAccount(ctx, tx, actor, opts.EnterpriseAccountName); err != nil {
			return err
		}
		// The primary key of steward_bootstrap makes a concurrent second
		// bootstrap fail here rather than create a second account.
		if _, err := tx.Exec(ctx, `INSERT INTO steward_bootstrap (id, enterprise_account_id, created_at) VALUES (1, ?, ?)`,
			r.EnterpriseAccount.ID, store.Micros(tx.Now)); err != nil {
			if steward.IsKind(store.Translate(err), steward.KindConflict) {
				return ErrInitialised
			}
			return err
		}
		if r.Organization, r.DefaultWorkspace, err = directory.CreateOrganization(ctx, tx, actor, r.EnterpriseAccount.ID, opts.OrgName); err != nil {
			return err
		}
		if r.Admin, err = directory.AddOrganizationAdmin(ctx, tx, actor, r.Organization, r.DefaultWorkspace, opts.AdminEmail); err != nil {
			return err
		}
		if _, err := directory.AddEnterpriseMember(ctx, tx, actor, r.EnterpriseAccount.ID, r.Admin.ID, ""); err != nil {
			return err
		}
		if r.AdminKey, r.AdminKeySecret, err = keys.CreateAdminKey(ctx, tx, actor, r.Organization, "bootstrap admin key", nil); err != nil {
			return err
		}
		r.BackofficeKey, r.BackofficeSecret, err = keys.CreateBackofficeKey(ctx, tx, actor, r.EnterpriseAccount.ID, "bootstrap backoffice key", nil)
		return err
	})
	if err != nil {
		return Result{}, err
	}
	return r, nil
}
