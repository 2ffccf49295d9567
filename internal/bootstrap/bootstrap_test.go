package bootstrap_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/stewardhq/steward/internal/bootstrap"
	"github.com/stewardhq/steward/internal/keys"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
)

func count(t *testing.T, db *store.DB, table string) int {
	t.Helper()
	ctx := context.Background()
	var n int
	if err := db.View(ctx, func(tx *store.Tx) error {
		return tx.QueryRow(ctx, `SELECT COUNT(*) FROM `+table).Scan(&n)
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestRunCreatesEverythingOnce(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		r, err := bootstrap.Run(ctx, db, bootstrap.Options{OrgName: "Acme", AdminEmail: "Ops@Acme.example"})
		if err != nil {
			t.Fatal(err)
		}
		if r.Organization.Name != "Acme" || r.Admin.Email != "Ops@Acme.example" || !r.DefaultWorkspace.IsDefault {
			t.Fatalf("result = %+v", r)
		}
		p, err := keys.Verify(ctx, db, r.AdminKeySecret, nil)
		if err != nil || p.Kind != steward.CredentialAdminAPIKey || p.OrganizationID != r.Organization.ID {
			t.Fatalf("the admin key authenticates as %+v, %v", p, err)
		}
		p, err = keys.Verify(ctx, db, r.BackofficeSecret, nil)
		if err != nil || p.Kind != steward.CredentialBackofficeKey || p.EnterpriseAccountID != r.EnterpriseAccount.ID {
			t.Fatalf("the backoffice key authenticates as %+v, %v", p, err)
		}
		var role string
		if err := db.View(ctx, func(tx *store.Tx) error {
			return tx.QueryRow(ctx, `SELECT role_id FROM organization_member_roles WHERE organization_id = ? AND user_id = ?`, r.Organization.ID, r.Admin.ID).Scan(&role)
		}); err != nil || role != steward.RoleIDOrganizationAdmin {
			t.Fatalf("admin's role = %q (%v), want organization_admin", role, err)
		}
		if _, err := bootstrap.Run(ctx, db, bootstrap.Options{}); !errors.Is(err, bootstrap.ErrInitialised) {
			t.Fatalf("second Run = %v, want ErrInitialised", err)
		}
		if ok, err := bootstrap.Initialised(ctx, db); !ok || err != nil {
			t.Fatalf("Initialised = %v, %v", ok, err)
		}
		for table, want := range map[string]int{"enterprise_accounts": 1, "organizations": 1, "workspaces": 1, "users": 1, "admin_api_keys": 1, "backoffice_keys": 1} {
			if got := count(t, db, table); got != want {
				t.Errorf("%s has %d rows, want %d", table, got, want)
			}
		}
	})
}

func TestConcurrentRunsInitialiseOnce(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		var wg sync.WaitGroup
		results := make(chan error, 4)
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := bootstrap.Run(context.Background(), db, bootstrap.Options{})
				results <- err
			}()
		}
		wg.Wait()
		close(results)
		ok := 0
		for err := range results {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, bootstrap.ErrInitialised):
				t.Errorf("concurrent Run: %v", err)
			}
		}
		if ok != 1 || count(t, db, "enterprise_accounts") != 1 {
			t.Fatalf("%d runs succeeded and %d accounts exist, want 1 and 1", ok, count(t, db, "enterprise_accounts"))
		}
	})
}

func TestRunRejectsABadEmailAndLeavesNothing(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		_, err := bootstrap.Run(context.Background(), db, bootstrap.Options{AdminEmail: "not an email"})
		if !steward.IsKind(err, steward.KindInvalid) {
			t.Fatalf("Run with a bad email = %v, want invalid", err)
		}
		for _, table := range []string{"enterprise_accounts", "organizations", "audit_log", "steward_bootstrap"} {
			if n := count(t, db, table); n != 0 {
				t.Errorf("%s has %d rows after a failed bootstrap", table, n)
			}
		}
	})
}
