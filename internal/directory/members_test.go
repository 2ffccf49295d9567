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
