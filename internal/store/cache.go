package store

import (
	"context"
	"strconv"
	"sync"

	"golang.org/x/sync/singleflight"
)

// The caches of the process (the access graph, the limits' settings, the
// key check) hold what they read of each Organization and follow the
// change feed one way: a Follower numbers the changes of their topic that
// reach them (Change.Affects), and a load that began before a change of
// what it read is not kept, since it may have read the state before the
// change. Cache builds on it a value per Organization, loaded on first use
// and dropped by every change.

// Follower follows one change topic for a cache that holds what it read of
// each Organization, or of single objects of it (such as keys, named by
// Change.ID), and tells when a load ends whether a change of what it read
// arrived while it ran.
type Follower struct {
	topic   string
	changed func(Change)

	mu   sync.Mutex
	seq  uint64
	orgs map[string]*followed
}

// followed is what a Follower knows of one Organization, by change number.
type followed struct {
	// last is the last change of anything of the Organization, and whole
	// the last change of all of it (a change without ID, or a resync).
	last, whole uint64
	// ids are the last change of each object changed while a load of the
	// Organization ran; loads counts those loads.
	ids   map[string]uint64
	loads int
}

// NewFollower returns a Follower of topic, subscribed to db's changes: it
// numbers each change that affects topic, then calls changed with it, as
// the store publishes it (after its commit, before its Transact returns).
func NewFollower(db *DB, topic string, changed func(Change)) *Follower {
	f := &Follower{topic: topic, changed: changed, orgs: map[string]*followed{}}
	db.Subscribe(f.note)
	return f
}

func (f *Follower) note(c Change) {
	if !c.Affects(f.topic) {
		return
	}
	f.mu.Lock()
	f.seq++
	o := f.org(c.OrganizationID)
	o.last = f.seq
	switch {
	case c.ID == "":
		o.whole, o.ids = f.seq, nil
	case o.loads > 0:
		if o.ids == nil {
			o.ids = map[string]uint64{}
		}
		o.ids[c.ID] = f.seq
	}
	f.mu.Unlock()
	f.changed(c)
}

func (f *Follower) org(id string) *followed {
	o := f.orgs[id]
	if o == nil {
		o = &followed{}
		f.orgs[id] = o
	}
	return o
}

// Load is a load that has begun: of an Organization, or of one object of
// it when id is set.
type Load struct {
	org, id string
	seq     uint64
}

// Begin begins a load of an Organization (id ""), or of one object of it.
// Every Begin is ended by End.
func (f *Follower) Begin(org, id string) Load {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.org(org).loads++
	return Load{org: org, id: id, seq: f.seq}
}

// End ends l. Unless a change of all of the Organization, or of l's
// object, arrived while l ran, it calls keep, under the Follower's lock,
// with the objects changed meanwhile, whose own loads are fresher than l's
// (none for a load of one object), and returns true. A nil keep abandons
// l.
func (f *Follower) End(l Load, keep func(changed []string)) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	o := f.orgs[l.org]
	stale := o.whole > l.seq || (l.id != "" && o.ids[l.id] > l.seq)
	var changed []string
	for id, seq := range o.ids {
		if l.id == "" && seq > l.seq {
			changed = append(changed, id)
		}
	}
	if o.loads--; o.loads == 0 {
		o.ids = nil
	}
	if stale || keep == nil {
		return false
	}
	keep(changed)
	return true
}

// Mark is a point in a Follower's changes.
type Mark uint64

// Mark returns the point the Follower's changes are at.
func (f *Follower) Mark() Mark {
	f.mu.Lock()
	defer f.mu.Unlock()
	return Mark(f.seq)
}

// ChangedSince returns the Organizations changed after m: a cache that
// read every Organization at once from m on reloads these.
func (f *Follower) ChangedSince(m Mark) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for id, o := range f.orgs {
		if o.last > uint64(m) {
			out = append(out, id)
		}
	}
	return out
}

// ChangedAfter reports whether a change of the Organization arrived after
// m: a cache that read one object of it from m on (without knowing its
// Organization beforehand) keeps it only when none did.
func (f *Follower) ChangedAfter(org string, m Mark) bool { return f.version(org) > uint64(m) }

// version is the number of the Organization's last change.
func (f *Follower) version(org string) uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if o := f.orgs[org]; o != nil {
		return o.last
	}
	return 0
}

// Cache holds a value of each Organization, read by load on first use and
// dropped by every change of its topic that names the Organization (a
// resync names each). A value loaded while a change arrived is returned
// to its callers but not kept; the misses of one Organization between two
// of its changes share one load.
type Cache[V any] struct {
	follow *Follower
	load   func(ctx context.Context, org string) (V, error)

	mu     sync.RWMutex
	values map[string]V
	loads  singleflight.Group
}

// NewCache returns a cache of topic over db, whose values load reads.
func NewCache[V any](db *DB, topic string, load func(ctx context.Context, org string) (V, error)) *Cache[V] {
	c := &Cache[V]{load: load, values: map[string]V{}}
	c.follow = NewFollower(db, topic, func(ch Change) {
		c.mu.Lock()
		delete(c.values, ch.OrganizationID)
		c.mu.Unlock()
	})
	return c
}

// Get returns the Organization's value, loading it on a miss.
func (c *Cache[V]) Get(ctx context.Context, org string) (V, error) {
	c.mu.RLock()
	v, ok := c.values[org]
	c.mu.RUnlock()
	if ok {
		return v, nil
	}
	// A miss after a change never shares a load begun before it.
	key := org + "@" + strconv.FormatUint(c.follow.version(org), 10)
	r, err, _ := c.loads.Do(key, func() (any, error) {
		l := c.follow.Begin(org, "")
		v, err := c.load(ctx, org)
		if err != nil {
			c.follow.End(l, nil)
			return nil, err
		}
		c.follow.End(l, func(changed []string) {
			if len(changed) == 0 {
				c.mu.Lock()
				c.values[org] = v
				c.mu.Unlock()
			}
		})
		return v, nil
	})
	if err != nil {
		var zero V
		return zero, err
	}
	return r.(V), nil
}

// Drop drops what the cache holds of an Organization, as a change of it
// would.
func (c *Cache[V]) Drop(org string) {
	c.follow.note(Change{Topic: c.follow.topic, OrganizationID: org})
}

// Len returns how many Organizations' values the cache holds.
func (c *Cache[V]) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.values)
}
