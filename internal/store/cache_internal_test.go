package store

import (
	"context"
	"errors"
	"slices"
	"testing"
)

// A load is kept unless a change of what it read arrived while it ran: any
// change of all of its Organization (one without ID, a resync), or a change
// of its own object; a load of the whole Organization is told which
// objects changed meanwhile. Other topics and Organizations do not count.
func TestFollowerKeepsNoLoadThatRacedAChange(t *testing.T) {
	db := &DB{}
	var heard []Change
	f := NewFollower(db, "keys", func(c Change) { heard = append(heard, c) })
	for _, c := range []struct {
		name      string
		id        string
		during    []Change
		kept      bool
		changedID []string
	}{
		{"nothing changed", "", nil, true, nil},
		{"another Organization", "", []Change{{Topic: "keys", OrganizationID: "other"}}, true, nil},
		{"another topic", "", []Change{{Topic: "access", OrganizationID: "o"}}, true, nil},
		{"the Organization", "", []Change{{Topic: "keys", OrganizationID: "o"}}, false, nil},
		{"a resync", "", []Change{{OrganizationID: "o"}}, false, nil},
		{"one object, for a load of all", "", []Change{{Topic: "keys", OrganizationID: "o", ID: "k2"}, {Topic: "keys", OrganizationID: "o", ID: "k3"}}, true, []string{"k2", "k3"}},
		{"another object", "k1", []Change{{Topic: "keys", OrganizationID: "o", ID: "k2"}}, true, nil},
		{"the object", "k1", []Change{{Topic: "keys", OrganizationID: "o", ID: "k1"}}, false, nil},
		{"the Organization, for a load of one object", "k1", []Change{{Topic: "keys", OrganizationID: "o"}}, false, nil},
	} {
		l := f.Begin("o", c.id)
		db.publish(c.during)
		var changed []string
		called := false
		kept := f.End(l, func(ids []string) { called, changed = true, ids })
		slices.Sort(changed)
		if kept != c.kept || called != c.kept || !slices.Equal(changed, c.changedID) {
			t.Errorf("%s: kept %v (keep called %v) with changes %v; want kept %v with %v", c.name, kept, called, changed, c.kept, c.changedID)
		}
	}
	if len(heard) != 8 {
		t.Errorf("the follower passed on %d changes, want the 8 of its topic", len(heard))
	}
	// Objects are remembered only while loads run: a load that begins
	// after a change of its object keeps what it read.
	l := f.Begin("o", "k1")
	if !f.End(l, func([]string) {}) {
		t.Error("a load after the change of its object was not kept")
	}
	if f.End(f.Begin("o", "k1"), nil) {
		t.Error("an abandoned load was kept")
	}
}

// ChangedSince names the Organizations changed after a mark, so that a
// cache that read every Organization at once can read those again.
func TestFollowerChangedSince(t *testing.T) {
	db := &DB{}
	f := NewFollower(db, "keys", func(Change) {})
	db.publish([]Change{{Topic: "keys", OrganizationID: "before"}})
	m := f.Mark()
	db.publish([]Change{{Topic: "keys", OrganizationID: "a"}, {Topic: "access", OrganizationID: "b"}, {OrganizationID: "c"}, {Topic: "keys", OrganizationID: "a", ID: "k"}})
	got := f.ChangedSince(m)
	slices.Sort(got)
	if want := []string{"a", "c"}; !slices.Equal(got, want) {
		t.Errorf("ChangedSince = %v, want %v", got, want)
	}
	for org, want := range map[string]bool{"a": true, "c": true, "b": false, "before": false, "never": false} {
		if got := f.ChangedAfter(org, m); got != want {
			t.Errorf("ChangedAfter(%q) = %v, want %v", org, got, want)
		}
	}
}

// A Cache loads an Organization's value once, drops it on a change of its
// topic or a Drop, does not keep a value a change raced, and keeps no
// failed load.
func TestCacheFollowsChanges(t *testing.T) {
	db := &DB{}
	ctx := context.Background()
	loads := map[string]int{}
	var during func()
	fail := false
	c := NewCache(db, "limits", func(ctx context.Context, org string) (int, error) {
		loads[org]++
		if during != nil {
			during()
		}
		if fail {
			return 0, errors.New("down")
		}
		return loads[org], nil
	})
	get := func(org string, want int) {
		t.Helper()
		if v, err := c.Get(ctx, org); err != nil || v != want {
			t.Fatalf("Get(%q) = %d, %v; want load %d", org, v, err, want)
		}
	}
	get("o", 1)
	get("o", 1)
	get("p", 1)
	db.publish([]Change{{Topic: "access", OrganizationID: "o"}})
	get("o", 1)
	db.publish([]Change{{Topic: "limits", OrganizationID: "o"}})
	get("o", 2)
	get("p", 1)
	c.Drop("p")
	get("p", 2)
	db.publish([]Change{{OrganizationID: "p"}})
	get("p", 3)
	if n := c.Len(); n != 2 {
		t.Errorf("Len = %d, want 2", n)
	}

	// The value of a load that a change raced is returned, not kept.
	c.Drop("o")
	during = func() { db.publish([]Change{{Topic: "limits", OrganizationID: "o"}}) }
	get("o", 3)
	during = nil
	get("o", 4)
	get("o", 4)

	fail = true
	c.Drop("o")
	if _, err := c.Get(ctx, "o"); err == nil {
		t.Fatal("a failed load returned no error")
	}
	fail = false
	get("o", 6)
}

// Shared makes a key's value once per DB, whatever its callers.
func TestSharedMakesOneValueADB(t *testing.T) {
	type key struct{}
	a, b := &DB{}, &DB{}
	made := 0
	mk := func() *int { made++; return new(made) }
	first := Shared(a, key{}, mk)
	if again := Shared(a, key{}, mk); again != first || made != 1 {
		t.Errorf("the second call made a value (%d made)", made)
	}
	if other := Shared(b, key{}, mk); other == first || made != 2 {
		t.Errorf("another DB shares the first's value (%d made)", made)
	}
}
