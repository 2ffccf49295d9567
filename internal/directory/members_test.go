package directory_test

import (
	"context"
	"testing"

	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
)

// MemberEmails answers for the Organization's members only: a member of
// another Organization, an unknown id and an id that is no user id at all
// are left out.
func TestMemberEmails(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		boot, ann := setup(t, db)
		var stranger string
		err := db.Transact(ctx, func(tx *store.Tx) error {
			actor := steward.SystemActor("test")
			ea, err := directory.CreateEnterpriseAccount(ctx, tx, actor, "Elsewhere")
			if err != nil {
				return err
			}
			other, _, err := directory.CreateOrganization(ctx, tx, actor, ea.ID, "Elsewhere Org")
			if err != nil {
				return err
			}
			res, err := directory.CreateMembers(ctx, tx, actor, other, []directory.NewMember{{Email: "sam@example.com"}})
			stranger = res.EmailToUserID["sam@example.com"]
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]string
		err = db.View(ctx, func(tx *store.Tx) error {
			got, err = directory.MemberEmails(ctx, tx, boot.Organization.ID,
				[]string{ann, stranger, "5b0f4a1e-0000-4000-8000-000000000000", "not-a-uuid", boot.Admin.ID})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[ann] != "ann@example.com" || got[boot.Admin.ID] != boot.Admin.Email {
			t.Errorf("MemberEmails = %v", got)
		}
		err = db.View(ctx, func(tx *store.Tx) error {
			got, err = directory.MemberEmails(ctx, tx, boot.Organization.ID, nil)
			return err
		})
		if err != nil || len(got) != 0 {
			t.Errorf("no ids: %v %v", got, err)
		}
	})
}

// On PostgreSQL a page of several members is planned for its ids (see
// membersByID), and only in the transaction that reads it: the setting
// must not stay on the pooled connection for the statements of other
// transactions.
func TestMembersPagePlanStaysInItsTransaction(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		if db.Dialect() != store.Postgres {
			t.Skip("plan_cache_mode is PostgreSQL's")
		}
		ctx := context.Background()
		boot, _ := setup(t, db)
		mode := func(tx *store.Tx) string {
			t.Helper()
			var m string
			if err := tx.QueryRow(ctx, `SHOW plan_cache_mode`).Scan(&m); err != nil {
				t.Fatal(err)
			}
			return m
		}
		var before, during string
		err := db.View(ctx, func(tx *store.Tx) error {
			before = mode(tx)
			page, err := directory.ListMembers(ctx, tx, boot.Organization.ID, "", 1, 10)
			if err != nil {
				return err
			}
			if got, want := len(page.Members), 2; got != want {
				t.Errorf("members = %d, want %d", got, want)
			}
			during = mode(tx)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := during, "force_custom_plan"; got != want {
			t.Errorf("plan_cache_mode while reading a page = %q, want %q", got, want)
		}
		var after string
		if err := db.View(ctx, func(tx *store.Tx) error { after = mode(tx); return nil }); err != nil {
			t.Fatal(err)
		}
		if after != before {
			t.Errorf("plan_cache_mode after the page's transaction = %q, want %q as before it", after, before)
		}
	})
}
