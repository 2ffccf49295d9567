package keys_test

import (
	"cmp"
	"context"
	"slices"
	"testing"

	"github.com/stewardhq/steward/internal/keys"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
)

// Pages of the key list, at every offset, add up to the Organization's
// live keys newest first, keys created in one transaction (the same
// created_at) included and deleted ones left out, with and without a name
// filter.
func TestListPagesCoverTheLiveKeysNewestFirst(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		ws := f.boot.DefaultWorkspace.ID
		var created []steward.APIKey
		for _, batch := range [][]string{{"alpha one", "beta one"}, {"alpha two"}, {"beta two", "alpha three", "beta three"}, {"alpha four"}} {
			f.change(t, func(tx *store.Tx) error {
				for _, name := range batch {
					k, _, err := keys.CreateKey(ctx, tx, actor, f.boot.Organization, keys.NewKey{WorkspaceID: ws, UserID: f.owner, Name: &name})
					if err != nil {
						return err
					}
					created = append(created, k)
				}
				return nil
			})
		}
		f.change(t, func(tx *store.Tx) error {
			return keys.DeleteKey(ctx, tx, actor, f.boot.Organization, created[4].ID) // alpha three
		})
		live := slices.Delete(slices.Clone(created), 4, 5)
		slices.SortFunc(live, func(a, b steward.APIKey) int {
			return cmp.Or(b.CreatedAt.Compare(a.CreatedAt), cmp.Compare(b.ID, a.ID))
		})
		for _, c := range []struct {
			name string
			want []steward.APIKey
		}{
			{"", live},
			{"ALPHA", slices.DeleteFunc(slices.Clone(live), func(k steward.APIKey) bool { return (*k.Name)[:5] != "alpha" })},
		} {
			for limit := 1; limit <= 3; limit++ {
				var got []string
				for offset := 0; offset <= len(c.want); offset += limit {
					var page []steward.APIKey
					if err := db.View(ctx, func(tx *store.Tx) error {
						var err error
						page, err = keys.ListKeys(ctx, tx, f.boot.Organization.ID, c.name, limit, offset)
						return err
					}); err != nil {
						t.Fatal(err)
					}
					if len(page) > limit {
						t.Fatalf("name %q limit %d offset %d: %d keys", c.name, limit, offset, len(page))
					}
					for _, k := range page {
						got = append(got, *k.Name)
					}
				}
				var want []string
				for _, k := range c.want {
					want = append(want, *k.Name)
				}
				if !slices.Equal(got, want) {
					t.Errorf("name %q, pages of %d: %v, want %v", c.name, limit, got, want)
				}
			}
		}
	})
}
