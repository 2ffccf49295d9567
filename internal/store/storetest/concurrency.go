package storetest

import (
	"context"
	"log/slog"
	"sync"
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

// Follow makes each of dbs follow the change feed (each resync apart)
// until the test ends, and waits until each listens.
func Follow(t testing.TB, resync time.Duration, dbs ...*store.DB) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(slog.DiscardHandler)
	var following sync.WaitGroup
	for _, db := range dbs {
		following.Go(func() { db.Follow(ctx, resync, log) })
	}
	t.Cleanup(func() {
		cancel()
		following.Wait()
	})
	for _, db := range dbs {
		select {
		case <-db.FeedReady():
		case <-time.After(10 * time.Second):
			t.Fatal("the change feed never listened")
		}
	}
}
