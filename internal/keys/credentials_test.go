package keys_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/keys"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
)

// verifies checks that c verifies secret as the credential id.
func verifies(t *testing.T, c *keys.Credentials, secret, id string) {
	t.Helper()
	p, err := c.Verify(context.Background(), secret)
	if err != nil || p.CredentialID != id {
		t.Fatalf("Verify = %+v, %v; want credential %s", p, err, id)
	}
}

// refusedAs checks that c refuses secret as unauthenticated, saying why.
func refusedAs(t *testing.T, c *keys.Credentials, secret, why string) {
	t.Helper()
	_, err := c.Verify(context.Background(), secret)
	if !steward.IsKind(err, steward.KindUnauthenticated) || !strings.Contains(err.Error(), why) {
		t.Fatalf("Verify = %v; want it refused as %s", err, why)
	}
}

// TestCredentialsAnswerFromMemoryUntilRevoked: a credential once verified
// is answered without reading its row again, until a revocation through
// the product drops it; expiry is judged on every use.
func TestCredentialsAnswerFromMemoryUntilRevoked(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		org := f.boot.Organization
		lastUsed := keys.NewLastUsed()
		c := keys.NewCredentials(db, lastUsed)
		verifies(t, c, f.boot.AdminKeySecret, f.boot.AdminKey.ID)
		verifies(t, c, f.boot.BackofficeSecret, f.boot.BackofficeKey.ID)

		// Rows changed behind the product's back are not read again.
		f.change(t, func(tx *store.Tx) error {
			_, err := tx.Exec(ctx, `UPDATE admin_api_keys SET revoked_at = ? WHERE id = ?`, store.Micros(tx.Now), f.boot.AdminKey.ID)
			return err
		})
		verifies(t, c, f.boot.AdminKeySecret, f.boot.AdminKey.ID)
		if err := lastUsed.Flush(ctx, db); err != nil {
			t.Fatal(err)
		}
		var used *int64
		f.change(t, func(tx *store.Tx) error {
			return tx.QueryRow(ctx, `SELECT last_used_at FROM admin_api_keys WHERE id = ?`, f.boot.AdminKey.ID).Scan(&used)
		})
		if used == nil {
			t.Error("a use answered from memory was not recorded as the key's last use")
		}

		// A revocation through the product is heard at its commit.
		var k steward.AdminAPIKey
		var secret string
		in := db.Now().Add(time.Hour)
		f.change(t, func(tx *store.Tx) error {
			var err error
			k, secret, err = keys.CreateAdminKey(ctx, tx, actor, org, "automation", &in)
			return err
		})
		verifies(t, c, secret, k.ID)
		f.change(t, func(tx *store.Tx) error { return keys.DeleteAdminKey(ctx, tx, actor, org.EnterpriseAccountID, k.ID) })
		refusedAs(t, c, secret, "revoked")

		var token string
		var tok keys.SCIMToken
		f.change(t, func(tx *store.Tx) error {
			var err error
			tok, token, err = keys.CreateSCIMToken(ctx, tx, actor, org, "idp", nil)
			return err
		})
		verifies(t, c, token, tok.ID)
		f.change(t, func(tx *store.Tx) error { return keys.RevokeSCIMToken(ctx, tx, actor, org, tok.ID) })
		refusedAs(t, c, token, "revoked")

		// Expiry is judged at each use, of a credential kept in memory.
		f.change(t, func(tx *store.Tx) error {
			var err error
			k, secret, err = keys.CreateAdminKey(ctx, tx, actor, org, "short-lived", &in)
			return err
		})
		verifies(t, c, secret, k.ID)
		db.Now = func() time.Time { return in }
		refusedAs(t, c, secret, "expired")

		// Unknown and malformed credentials are refused, and never kept.
		refusedAs(t, c, "stwa_"+strings.Repeat("x", 28), "invalid API key")
		refusedAs(t, c, "nonsense", "invalid API key")
	})
}

// TestCredentialsRevokedElsewhere: a revocation made through another
// process reaches this one's memory through the change feed.
func TestCredentialsRevokedElsewhere(t *testing.T) {
	ctx := context.Background()
	f, other := elsewhere(t)
	db := f.db
	c := keys.NewCredentials(db, nil)
	verifies(t, c, f.boot.AdminKeySecret, f.boot.AdminKey.ID)
	err := other.Transact(ctx, func(tx *store.Tx) error {
		return keys.DeleteAdminKey(ctx, tx, actor, f.boot.Organization.EnterpriseAccountID, f.boot.AdminKey.ID)
	})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := c.Verify(ctx, f.boot.AdminKeySecret)
		if steward.IsKind(err, steward.KindUnauthenticated) && strings.Contains(err.Error(), "revoked") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("a key revoked in another process still verifies here: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// elsewhere returns a fixture on PostgreSQL whose database follows the
// change feed, and a second handle on its database: another process's.
// Without PostgreSQL it skips the test, except in CI, where it fails it.
func elsewhere(t *testing.T) (*fixture, *store.DB) {
	t.Helper()
	db, cfg := storetest.OpenPostgres(t)
	other := storetest.OpenAgain(t, cfg)
	f := newFixture(t, db)
	storetest.Follow(t, time.Hour, db)
	return f, other
}

// A credential that cannot be looked up, the database failing, is neither
// admitted nor refused as unknown: the error is returned, and nothing is
// kept.
func TestCredentialsLookupFailure(t *testing.T) {
	db, _ := storetest.OpenSQLite(t)
	f := newFixture(t, db)
	c := keys.NewCredentials(db, nil)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		p, err := c.Verify(context.Background(), f.boot.AdminKeySecret)
		if err == nil || steward.IsKind(err, steward.KindUnauthenticated) || p.CredentialID != "" {
			t.Fatalf("Verify with the database closed = %+v, %v; want a database error", p, err)
		}
	}
}
