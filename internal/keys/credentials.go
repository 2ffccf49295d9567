package keys

import (
	"context"
	"sync"
	"time"

	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

// TopicCredentials is the change topic of the credentials the Admin API,
// the Backoffice API and SCIM take (Admin API keys, Backoffice keys, SCIM
// tokens): a revocation names its credential (Change.ID).
const TopicCredentials = "credentials"

// revoked tells the Credentials of every process, once tx commits, that
// the Organization's credential id no longer works.
func revoked(tx *store.Tx, orgID, id string) {
	tx.Notify(store.Change{Topic: TopicCredentials, OrganizationID: orgID, ID: id})
}

// Credentials answers Verify from memory for the credentials it has
// verified before: every Admin API request would otherwise begin with a
// database round trip for its key. Only live credentials are kept, so a
// new one is read from the database on its first use; a revocation drops
// its credential when it is published (in its own process at its commit,
// in the others through the change feed, as Workspace keys' Checker
// does), a resync drops its Organization's, and expiry is judged on every
// use. What it keeps of a credential does not change while it lives: its
// name, Organization and Enterprise Account are fixed when it is created,
// and Organizations are never moved between Enterprise Accounts.
type Credentials struct {
	db       *store.DB
	lastUsed *LastUsed
	// follow follows revocations, so that a lookup racing one is not kept.
	follow *store.Follower

	mu     sync.RWMutex
	byHash map[string]*verified
	byID   map[string]string // credential id -> hash
}

// verified is a credential Credentials keeps.
type verified struct {
	p       steward.Principal
	expires time.Time // zero for never
}

// NewCredentials returns an empty cache over db, subscribed to its changes,
// that records uses in lastUsed (nil records none).
func NewCredentials(db *store.DB, lastUsed *LastUsed) *Credentials {
	c := &Credentials{db: db, lastUsed: lastUsed, byHash: map[string]*verified{}, byID: map[string]string{}}
	c.follow = store.NewFollower(db, TopicCredentials, c.changed)
	return c
}

// changed drops what a change names: one credential, or every credential
// of its Organization (a change without ID, or a resync, which also drops
// the Enterprise Accounts' Backoffice keys).
func (c *Credentials) changed(ch store.Change) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ch.ID != "" {
		c.drop(c.byID[ch.ID])
		return
	}
	for hash, v := range c.byHash {
		if v.p.OrganizationID == ch.OrganizationID || ch.Topic == "" && v.p.OrganizationID == "" {
			c.drop(hash)
		}
	}
}

// drop forgets the credential of hash; c.mu is held.
func (c *Credentials) drop(hash string) {
	if v, ok := c.byHash[hash]; ok {
		delete(c.byID, v.p.CredentialID)
		delete(c.byHash, hash)
	}
}

// Verify answers as the function Verify does, from memory when it can. A
// Workspace key, which the Admin API only refuses (see Verify), is always
// read from the database.
func (c *Credentials) Verify(ctx context.Context, token string) (steward.Principal, error) {
	kind, ok := KindOf(token)
	if !ok {
		return steward.Principal{}, errUnknownKey
	}
	if kind == steward.CredentialWorkspaceAPIKey {
		return Verify(ctx, c.db, token, c.lastUsed)
	}
	hash := steward.HashToken(token)
	c.mu.RLock()
	v := c.byHash[hash]
	c.mu.RUnlock()
	if v != nil {
		return use(v.p, v.expires, c.db.Now(), c.lastUsed)
	}
	from := c.follow.Mark()
	p, expires, err := lookup(ctx, c.db, token)
	if err != nil {
		return steward.Principal{}, err
	}
	// A revocation published since the lookup began may have been read by
	// it or not: the credential is answered, and read again next time.
	// Checked under c.mu, which a revocation published after the check
	// waits for, to drop what is kept here.
	c.mu.Lock()
	if !c.follow.ChangedAfter(p.OrganizationID, from) {
		c.byHash[hash] = &verified{p: p, expires: expires}
		c.byID[p.CredentialID] = hash
	}
	c.mu.Unlock()
	return use(p, expires, c.db.Now(), c.lastUsed)
}
