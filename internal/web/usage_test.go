package web_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/quota"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
	"github.com/stewardhq/steward/internal/usage"
	"github.com/stewardhq/steward/internal/web"
)

// The usage page counts calendar months in the Organization's time zone,
// as the Admin API and the spend caps do: 23:30 UTC on 28 February is
// 1 March in Paris, and 22:30 UTC on 31 March is 1 April there.
func TestUsagePageCountsTheOrganizationsMonths(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, web.Config{})
		ctx := context.Background()
		org, ws := e.boot.Organization.ID, e.boot.DefaultWorkspace.ID
		err := db.Transact(ctx, func(tx *store.Tx) error {
			return quota.SetTimeZone(ctx, tx, steward.SystemActor("test"), e.boot.Organization, "Europe/Paris")
		})
		if err != nil {
			t.Fatal(err)
		}
		rec := usage.NewRecorder(db, usage.Options{})
		go rec.Run(ctx)
		err = rec.RecordMany(ctx, []usage.Event{
			{ID: "feb", Time: time.Date(2026, 2, 28, 23, 30, 0, 0, time.UTC), OrganizationID: org, WorkspaceID: ws, Model: "small",
				InputTokens: 1, Currency: "USD", Endpoint: "chat.completions"},
			{ID: "mar", Time: time.Date(2026, 3, 31, 22, 30, 0, 0, time.UTC), OrganizationID: org, WorkspaceID: ws, Model: "small",
				InputTokens: 10, Currency: "USD", Endpoint: "chat.completions"},
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := rec.Close(); err != nil {
			t.Fatal(err)
		}
		b := e.browser()
		b.mustSignIn()
		r := b.get(e.org() + "/usage?metric=tokens&month=2026-03")
		if r.status != 200 {
			t.Fatalf("GET: %d %s", r.status, r.body)
		}
		i := strings.Index(r.body, `<figcaption id="chart-summary">`)
		if i < 0 {
			t.Fatalf("the page has no chart summary: %s", r.body)
		}
		if got, want := r.body[i:min(i+120, len(r.body))], "per day in March 2026, stacked by model; 1 model(s), 1 in all."; !strings.Contains(got, want) {
			t.Fatalf("March in Paris: the summary says %q, want %q", got, want)
		}
	})
}
