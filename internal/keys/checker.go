package keys

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

// Checker answers "which Workspace key is this, and may it call now?" from
// memory: a lookup by hash, then expiry, a rotated-out secret's grace
// period, and whether the owner may still use the Workspace (which covers
// archived Workspaces and members who left). Keys are loaded once and
// reloaded per Organization when the store publishes a key change, so a
// deleted or rotated-out key is refused by the next request. A secret
// memory does not hold is looked up in the database before it is refused,
// so that a key created through another process works at once.
type Checker struct {
	db     *store.DB
	access *directory.Access
	// Now is the clock; tests replace it.
	Now func() time.Time

	// follow follows key changes, so that a reload racing a change of
	// what it reads is not kept.
	follow *store.Follower

	mu     sync.RWMutex
	byHash map[[32]byte]*entry
	byOrg  map[string][][32]byte
	// lookups bounds the database lookups of secrets memory does not hold.
	lookups lookupBudget
}

// lookupsPerSecond bounds the database lookups of secrets that memory does
// not hold, so that made-up secrets cannot become a flood of queries.
const lookupsPerSecond = 20

// lookupBudget counts lookups within the current second.
type lookupBudget struct {
	mu     sync.Mutex
	second int64
	used   int
}

func (b *lookupBudget) take(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if s := now.Unix(); s != b.second {
		b.second, b.used = s, 0
	}
	if b.used >= lookupsPerSecond {
		return false
	}
	b.used++
	return true
}

// entry is one secret of a key: its current one, or the one a rotation
// replaced, which works until until.
type entry struct {
	key     CheckedKey
	expires int64 // microseconds; 0 for never
	until   int64 // for a replaced secret; 0 otherwise
	// used is the last use, in microseconds, written by Check without a
	// lock and saved by Flush.
	used atomic.Int64
}

// CheckedKey is what the Checker keeps of a Workspace key, and answers;
// package auth makes it the request's steward.Principal.
type CheckedKey struct {
	ID, OrganizationID, WorkspaceID, UserID string
	// Product is what the key is for (see Products).
	Product string
	// Models are the models the key may call: its Workspace's allow list
	// and its own, intersected; nil allows every model. Keys with the same
	// lists share one value.
	Models *steward.ModelAllowList
}

// NewChecker loads every live key and subscribes to key changes.
func NewChecker(ctx context.Context, db *store.DB, access *directory.Access) (*Checker, error) {
	c := &Checker{db: db, access: access, Now: time.Now, byHash: map[[32]byte]*entry{}, byOrg: map[string][][32]byte{}}
	// Subscribed before the keys are read, so that no change is missed:
	// an Organization changed while they are read is read again.
	c.follow = store.NewFollower(db, TopicKeys, c.changed)
	from := c.follow.Mark()
	entries, err := c.read(ctx, "", "")
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.byHash, c.byOrg = entries, map[string][][32]byte{}
	for h, e := range entries {
		c.byOrg[e.key.OrganizationID] = append(c.byOrg[e.key.OrganizationID], h)
	}
	c.mu.Unlock()
	for _, org := range c.follow.ChangedSince(from) {
		if err := c.load(ctx, org); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// changed reloads what a key change names: one key, or the Organization's
// keys (a change without key, or a resync). A failed reload keeps the
// entries it could not replace; the next change or a restart loads them
// again.
func (c *Checker) changed(ch store.Change) {
	if ch.Topic == TopicKeys && ch.ID != "" {
		_ = c.loadKey(context.Background(), ch.OrganizationID, ch.ID)
		return
	}
	_ = c.load(context.Background(), ch.OrganizationID)
}

// load (re)reads the live keys of one Organization. The keys changed while
// it read are left as they are: their own reloads read them later.
func (c *Checker) load(ctx context.Context, orgID string) error {
	l := c.follow.Begin(orgID, "")
	entries, err := c.read(ctx, orgID, "")
	if err != nil {
		c.follow.End(l, nil)
		return err
	}
	c.follow.End(l, func(changed []string) {
		c.mu.Lock()
		defer c.mu.Unlock()
		kept := c.byOrg[orgID][:0]
		for _, h := range c.byOrg[orgID] {
			if e := c.byHash[h]; e != nil && slices.Contains(changed, e.key.ID) {
				kept = append(kept, h)
				continue
			}
			delete(c.byHash, h)
		}
		for h, e := range entries {
			if !slices.Contains(changed, e.key.ID) {
				c.byHash[h] = e
				kept = append(kept, h)
			}
		}
		c.setOrg(orgID, kept)
	})
	return nil
}

// loadKey (re)reads one key of Organization orgID: what memory holds of it
// (its secret, and any secret a rotation replaced) is dropped, and what is
// live of it now is added. An Organization with a million keys is not
// reread for one of them.
func (c *Checker) loadKey(ctx context.Context, orgID, id string) error {
	l := c.follow.Begin(orgID, id)
	entries, err := c.read(ctx, orgID, id)
	if err != nil {
		c.follow.End(l, nil)
		return err
	}
	c.follow.End(l, func([]string) {
		c.mu.Lock()
		defer c.mu.Unlock()
		kept := c.byOrg[orgID][:0]
		for _, h := range c.byOrg[orgID] {
			if e := c.byHash[h]; e != nil && e.key.ID == id {
				delete(c.byHash, h)
				continue
			}
			kept = append(kept, h)
		}
		for h, e := range entries {
			c.byHash[h] = e
			kept = append(kept, h)
		}
		c.setOrg(orgID, kept)
	})
	return nil
}

// setOrg records the secrets memory holds of an Organization.
func (c *Checker) setOrg(orgID string, hashes [][32]byte) {
	if len(hashes) == 0 {
		delete(c.byOrg, orgID)
		return
	}
	c.byOrg[orgID] = hashes
}

// read reads the live keys of Organization orgID (every Organization's
// when empty), or only key id when given, and returns an entry for each of
// their secrets, by hash.
func (c *Checker) read(ctx context.Context, orgID, id string) (map[[32]byte]*entry, error) {
	var where string
	var args []any
	if orgID != "" {
		where, args = ` AND organization_id = ?`, []any{orgID}
	}
	// The Workspaces' lists are read for the Organization, the keys for
	// the key when there is one.
	wsWhere, wsArgs := where, args
	if id != "" {
		where, args = where+` AND id = ?`, append(args, id)
	}
	// The entries are built as the rows are read, without holding the rows:
	// with a million keys, every byte a key keeps counts a megabyte. The
	// Organization, Workspace, user and product of many keys are the same,
	// and are kept once, and so are their allow lists of models.
	shared := map[string]string{}
	intern := func(s string) string {
		if v, ok := shared[s]; ok {
			return v
		}
		shared[s] = s
		return s
	}
	// workspaceModels are the allow lists of the Workspaces that have one;
	// models the lists of keys with their own, by Workspace and own list.
	workspaceModels := map[string]*steward.ModelAllowList{}
	models := map[[2]string]*steward.ModelAllowList{}
	allowed := func(workspaceID string, own []byte) *steward.ModelAllowList {
		if own == nil {
			return workspaceModels[workspaceID]
		}
		k := [2]string{workspaceID, string(own)}
		l, ok := models[k]
		if !ok {
			l = steward.IntersectModels(workspaceModels[workspaceID], decodeModels(own))
			models[k] = l
		}
		return l
	}
	entries := map[[32]byte]*entry{}
	add := func(hash []byte, e *entry) {
		var h [32]byte
		if len(hash) != hex.EncodedLen(len(h)) {
			return
		}
		if _, err := hex.Decode(h[:], hash); err == nil {
			entries[h] = e
		}
	}
	err := c.db.View(ctx, func(tx *store.Tx) error {
		err := tx.Each(ctx, `SELECT id, allowed_models FROM workspaces WHERE allowed_models IS NOT NULL`+wsWhere, wsArgs, func(rs *sql.Rows) error {
			var wsID string
			var list sql.RawBytes
			if err := rs.Scan(&wsID, &list); err != nil {
				return err
			}
			workspaceModels[wsID] = decodeModels(list)
			return nil
		})
		if err != nil {
			return err
		}
		q := `SELECT id, organization_id, workspace_id, user_id, product, key_hash, expires_at, previous_key_hash, previous_expires_at, allowed_models
			FROM api_keys WHERE deleted_at IS NULL` + where
		return tx.Each(ctx, q, args, func(rs *sql.Rows) error {
			var k CheckedKey
			var hash, prev, own sql.RawBytes
			var expires, prevUntil *int64
			if err := rs.Scan(&k.ID, &k.OrganizationID, &k.WorkspaceID, &k.UserID, &k.Product, &hash, &expires, &prev, &prevUntil, &own); err != nil {
				return err
			}
			k.OrganizationID, k.WorkspaceID, k.UserID, k.Product = intern(k.OrganizationID), intern(k.WorkspaceID), intern(k.UserID), intern(k.Product)
			k.Models = allowed(k.WorkspaceID, own)
			e := &entry{key: k}
			if expires != nil {
				e.expires = *expires
			}
			add(hash, e)
			if prev != nil && prevUntil != nil {
				add(prev, &entry{key: k, expires: e.expires, until: *prevUntil})
			}
			return nil
		})
	})
	return entries, err
}

// Errors of Check; each is an *steward.Error of KindUnauthenticated or
// KindForbidden, allocated once.
var (
	errNotAKey   = &steward.Error{Kind: steward.KindUnauthenticated, Message: "invalid API key"}
	errExpired   = &steward.Error{Kind: steward.KindUnauthenticated, Code: "key_expired", Message: "this API key has expired"}
	errRotated   = &steward.Error{Kind: steward.KindUnauthenticated, Code: "key_rotated", Message: "this API key was rotated and its old secret no longer works"}
	errNoAccess  = &steward.Error{Kind: steward.KindForbidden, Code: "no_workspace_access", Message: "the owner of this API key can no longer use its Workspace"}
	errWrongKind = &steward.Error{Kind: steward.KindForbidden, Message: "only a Workspace API key can call the models: Admin API and Backoffice keys cannot"}
)

// Check returns the key a presented secret belongs to, or why it may not
// call now. It does not allocate on success.
func (c *Checker) Check(ctx context.Context, token string) (CheckedKey, error) {
	kind, ok := KindOf(token)
	switch {
	case !ok:
		return CheckedKey{}, errNotAKey
	case kind != steward.CredentialWorkspaceAPIKey:
		return CheckedKey{}, errWrongKind
	}
	var buf [Len]byte
	copy(buf[:], token)
	h := sha256.Sum256(buf[:])
	c.mu.RLock()
	e := c.byHash[h]
	c.mu.RUnlock()
	if e == nil {
		if e = c.lookup(ctx, h); e == nil {
			return CheckedKey{}, errNotAKey
		}
	}
	now := c.Now().UnixMicro()
	switch {
	case e.expires != 0 && now >= e.expires:
		return CheckedKey{}, errExpired
	case e.until != 0 && now >= e.until:
		return CheckedKey{}, errRotated
	}
	perms, err := c.access.WorkspacePermissions(ctx, e.key.OrganizationID, e.key.UserID, e.key.WorkspaceID)
	if err != nil {
		return CheckedKey{}, err
	}
	if !perms.Has(steward.PermModelsUse) {
		return CheckedKey{}, errNoAccess
	}
	// One write a second at most keeps the cache line quiet under load.
	if now-e.used.Load() > int64(time.Second/time.Microsecond) {
		e.used.Store(now)
	}
	return e.key, nil
}

// lookup finds a key that memory does not hold yet: one that another
// process, or the CLI, created, and whose change has not reached this
// process. It reads the key by hash, loads it, and drops its
// Organization's access, within lookupsPerSecond.
func (c *Checker) lookup(ctx context.Context, h [32]byte) *entry {
	if !c.lookups.take(c.Now()) {
		return nil
	}
	var id, orgID string
	err := c.db.ReadRow(ctx, `SELECT id, organization_id FROM api_keys WHERE deleted_at IS NULL AND key_hash = ?`, []any{hex.EncodeToString(h[:])}, &id, &orgID)
	if err != nil || c.loadKey(ctx, orgID, id) != nil {
		return nil
	}
	// The key's owner may have joined its Workspace elsewhere too.
	c.access.Invalidate(orgID)
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.byHash[h]
}

// Flush saves the last use of every key used since its last save, in one
// transaction, never moving a last use backwards. It is what keeps Check
// from writing to the database.
func (c *Checker) Flush(ctx context.Context) error {
	used := map[string]int64{}
	c.mu.RLock()
	for _, e := range c.byHash {
		if t := e.used.Load(); t > used[e.key.ID] {
			used[e.key.ID] = t
		}
	}
	c.mu.RUnlock()
	if len(used) == 0 {
		return nil
	}
	return c.db.Transact(ctx, func(tx *store.Tx) error {
		for id, t := range used {
			if _, err := tx.Exec(ctx, `UPDATE api_keys SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)`, t, id, t); err != nil {
				return err
			}
		}
		return nil
	})
}
