package quota_test

import (
	"context"
	"maps"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/bootstrap"
	"github.com/stewardhq/steward/internal/quota"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
	"github.com/stewardhq/steward/internal/usage"
)

// Standings read this month's spend and tokens of the Organization and of
// each active Workspace, against their caps and limits; last month's usage
// does not count.
func TestStandings(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		boot, err := bootstrap.Run(ctx, db, bootstrap.Options{})
		if err != nil {
			t.Fatal(err)
		}
		org, ws := boot.Organization.ID, boot.DefaultWorkspace.ID
		rec := usage.NewRecorder(db, usage.Options{})
		go rec.Run(ctx)
		now := time.Now().UTC()
		err = rec.RecordMany(ctx, []usage.Event{
			{ID: "now", Time: now, OrganizationID: org, WorkspaceID: ws, Model: "small", InputTokens: 70, OutputTokens: 30, Cost: 2_000_000, Currency: "USD", Endpoint: "chat.completions"},
			{ID: "old", Time: now.AddDate(0, -2, 0), OrganizationID: org, WorkspaceID: ws, Model: "small", InputTokens: 5, Cost: 9_000_000, Currency: "USD", Endpoint: "chat.completions"},
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := rec.Close(); err != nil {
			t.Fatal(err)
		}
		q := quota.NewService(db)
		actor, orgCap, wsCap := steward.SystemActor("test"), int64(10), int64(3)
		if err := q.SetSpendCap(ctx, actor, org, "", &orgCap); err != nil {
			t.Fatal(err)
		}
		if err := q.SetSpendCap(ctx, actor, org, ws, &wsCap); err != nil {
			t.Fatal(err)
		}
		if err := q.SetModelLimits(ctx, actor, org, ws, "small", nil, ptr(int64(120))); err != nil {
			t.Fatal(err)
		}
		st, err := q.Standings(ctx, org)
		if err != nil {
			t.Fatal(err)
		}
		if start, _ := usage.Month(now, time.UTC); !st.Start.Equal(start) {
			t.Errorf("Start = %v, want %v", st.Start, start)
		}
		o := st.Organization
		if o.Spend.Spent != 2_000_000 || o.Spend.Cap == nil || *o.Spend.Cap != 10 || !maps.Equal(o.Tokens, map[string]int64{"small": 100}) {
			t.Errorf("Organization = %+v (cap %v)", o, o.Spend.Cap)
		}
		if len(st.Workspaces) != 1 {
			t.Fatalf("Workspaces = %+v", st.Workspaces)
		}
		w := st.Workspaces[0]
		if w.Workspace.ID != ws || w.Spend.Spent != 2_000_000 || *w.Spend.Cap != 3 || w.Tokens["small"] != 100 || w.Limits.Models["small"].PerMonth != 120 {
			t.Errorf("Workspace = %+v", w)
		}
	})
}

func ptr[T any](v T) *T { return &v }
