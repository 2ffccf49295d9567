package usage

import (
	"context"
	"fmt"
	"maps"
	"slices"
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

// Top answers the n values that cost most, ties broken by requests and
// then by value, and only as many rows as asked for.
func TestTop(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		r := NewRecorder(db, Options{})
		start(t, r)
		at := time.Date(2026, 4, 10, 8, 30, 0, 0, time.UTC)
		var events []Event
		// key-1: 300 once; key-2: 1000; key-3 and key-4: 300 twice each
		// (key-4's a day later, outside the range); key-5: 300 once.
		for i, k := range []string{"key-1", "key-2", "key-3", "key-3", "key-4", "key-4", "key-5"} {
			e := event(fmt.Sprint("e", i), at)
			e.KeyID = k
			if k == "key-2" {
				e.Cost = 1000
			}
			if k == "key-4" && i == 5 {
				e.Time = at.Add(24 * time.Hour)
			}
			events = append(events, e)
		}
		if err := r.RecordMany(ctx, events); err != nil {
			t.Fatal(err)
		}
		s := NewService(db)
		from, to := time.Date(2026, 4, 10, 0, 0, 0, 0, time.UTC), time.Date(2026, 4, 11, 0, 0, 0, 0, time.UTC)
		rows, err := s.Top(ctx, "org-1", from, to, GroupKey, 3)
		var got []string
		for _, row := range rows {
			got = append(got, fmt.Sprintf("%s:%d/%d", row.KeyID, row.Cost, row.Requests))
		}
		if want := []string{"key-2:1000/1", "key-3:600/2", "key-1:300/1"}; err != nil || !slices.Equal(got, want) {
			t.Errorf("Top(key, 3) = %v, %v; want %v", got, err, want)
		}
		if rows, err := s.Top(ctx, "org-1", from, to, GroupUser, 5); err != nil || len(rows) != 1 || rows[0].UserID != "user-1" || rows[0].Cost != 2500 {
			t.Errorf("Top(user) = %+v, %v; want user-1 with 2500", rows, err)
		}
		for _, bad := range []struct {
			group string
			n     int
			to    time.Time
		}{{"nothing", 3, to}, {GroupKey, 0, to}, {GroupKey, 3, from}, {GroupKey, 3, from.Add((MaxBuckets + 1) * time.Hour)}} {
			if _, err := s.Top(ctx, "org-1", from, bad.to, bad.group, bad.n); !steward.IsKind(err, steward.KindInvalid) {
				t.Errorf("Top(%s, %d, to %v): %v, want KindInvalid", bad.group, bad.n, bad.to, err)
			}
		}
	})
}
