package idempotency_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/idempotency"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
)

func TestReplayReturnsTheSealedAnswerOnlyToItsKey(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		answer := []byte(`{"key":"stwk_secret-that-must-not-be-readable"}`)
		tx := func(fn func(tx *store.Tx) error) error { return db.Transact(ctx, fn) }
		if err := tx(func(tx *store.Tx) error { return idempotency.Save(ctx, tx, "org", "rotate", "idem-1", "req-a", answer) }); err != nil {
			t.Fatal(err)
		}
		replay := func(key, req string) ([]byte, bool, error) {
			var got []byte
			var found bool
			err := tx(func(tx *store.Tx) error {
				var err error
				got, found, err = idempotency.Replay(ctx, tx, "org", "rotate", key, req)
				return err
			})
			return got, found, err
		}
		if got, found, err := replay("idem-1", "req-a"); err != nil || !found || string(got) != string(answer) {
			t.Fatalf("replay = %s, %v, %v", got, found, err)
		}
		if _, found, err := replay("idem-2", "req-a"); err != nil || found {
			t.Fatalf("another key found the answer (%v)", err)
		}
		if _, _, err := replay("idem-1", "req-b"); !steward.IsKind(err, steward.KindInvalid) {
			t.Fatalf("the key reused for another request: %v, want invalid", err)
		}
		// Nothing in the table reveals the answer or the key.
		var sealed, keyHash string
		if err := db.View(ctx, func(tx *store.Tx) error {
			return tx.QueryRow(ctx, `SELECT sealed, key_hash FROM idempotency_records`).Scan(&sealed, &keyHash)
		}); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(sealed, "secret") || strings.Contains(keyHash, "idem-1") {
			t.Fatalf("the record is readable: %s / %s", sealed, keyHash)
		}
		// A retry after a day is a new request; the same key can be used again.
		db.Now = func() time.Time { return time.Now().Add(idempotency.TTL + time.Minute) }
		if _, found, err := replay("idem-1", "req-a"); err != nil || found {
			t.Fatalf("an expired record was replayed (%v)", err)
		}
		if err := tx(func(tx *store.Tx) error { return idempotency.Save(ctx, tx, "org", "rotate", "idem-1", "req-c", answer) }); err != nil {
			t.Fatalf("saving over an expired record: %v", err)
		}
	})
}
