package usage

import (
	"context"
	"maps"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
)

func TestCostByKey(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		r := NewRecorder(db, Options{})
		start(t, r)
		at := time.Date(2026, 4, 10, 8, 30, 0, 0, time.UTC)
		a, b, none, before, other := event("a", at), event("b", at.Add(2*time.Hour)), event("none", at), event("before", at.Add(-24*time.Hour)), event("other", at)
		b.KeyID, none.KeyID, other.OrganizationID = "key-2", "", "org-2"
		b.Cost = 1000
		if err := r.RecordMany(ctx, []Event{a, b, none, before, other}); err != nil {
			t.Fatal(err)
		}
		s := NewService(db)
		got, err := s.CostByKey(ctx, "org-1", time.Date(2026, 4, 10, 0, 0, 0, 0, time.UTC), time.Date(2026, 4, 11, 0, 0, 0, 0, time.UTC))
		if want := map[string]int64{"key-1": 300, "key-2": 1000, "": 300}; err != nil || !maps.Equal(got, want) {
			t.Errorf("CostByKey: %v %v, want %v", got, err, want)
		}
		// The hour of 08:00 starts before 08:30 and counts whole; the one of
		// 10:00 starts at the end and does not count.
		got, err = s.CostByKey(ctx, "org-1", at, at.Add(90*time.Minute))
		if want := map[string]int64{}; err != nil || !maps.Equal(got, want) {
			t.Errorf("from 08:30: %v %v, want %v (the 08:00 hour starts before)", got, err, want)
		}
		for _, bad := range [][2]time.Time{{at, at}, {at, at.Add((MaxBuckets + 1) * time.Hour)}} {
			if _, err := s.CostByKey(ctx, "org-1", bad[0], bad[1]); !steward.IsKind(err, steward.KindInvalid) {
				t.Errorf("%v to %v: %v, want KindInvalid", bad[0], bad[1], err)
			}
		}
	})
}
