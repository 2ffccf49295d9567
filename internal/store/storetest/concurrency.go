package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/store"
)

// Meanwhile runs first in a transaction of db held open, after first has
// returned, while second runs, and commits it once second has had time to
// reach what first's writes make it wait for (a lock), then waits for
// both: for tests of changes made at once.
func Meanwhile(t testing.TB, db *store.DB, first func(tx *store.Tx) error, second func() error) {
	t.Helper()
	ctx := context.Background()
	changed, release := make(chan struct{}), make(chan struct{})
	held := make(chan error, 1)
	go func() {
		held <- db.Transact(ctx, func(tx *store.Tx) error {
			err := first(tx)
			close(changed)
			if err != nil {
				return err
			}
			<-release
			return nil
		})
	}()
	<-changed
	other := make(chan error, 1)
	go func() { other <- second() }()
	time.Sleep(200 * time.Millisecond)
	close(release)
	for _, done := range []chan error{held, other} {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
