package audit_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/audit"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
)

// writeOne records one entry of org's chain in a transaction of its own.
func writeOne(ctx context.Context, db *store.DB, org string, i int) error {
	return db.Transact(ctx, func(tx *store.Tx) error {
		return audit.Record(ctx, tx, audit.Entry{OrganizationID: org, Actor: steward.SystemActor("test"),
			EventType: "user.create", TargetType: "USER", EventMetadata: map[string]string{"i": fmt.Sprint(i)}})
	})
}

// TestWritesDoNotWaitForTheChain: on PostgreSQL a write of an Organization
// commits while another transaction holds the head of its chain (as a
// linker, or before, every writer until its commit was durable, did);
// its entry is linked once the head is free.
func TestWritesDoNotWaitForTheChain(t *testing.T) {
	db, _ := storetest.OpenPostgres(t)
	ctx := context.Background()
	if err := writeOne(ctx, db, "org-a", 0); err != nil {
		t.Fatal(err)
	}
	if err := audit.Link(ctx, db, "org:org-a"); err != nil {
		t.Fatal(err)
	}
	held, release, holderDone := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		holderDone <- db.Transact(ctx, func(tx *store.Tx) error {
			var seq int64
			if err := tx.QueryRow(ctx, `SELECT seq FROM audit_chains WHERE scope = 'org:org-a' FOR UPDATE`).Scan(&seq); err != nil {
				return err
			}
			close(held)
			<-release
			return nil
		})
	}()
	<-held
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err := writeOne(wctx, db, "org-a", 1)
	cancel()
	linked := make(chan error, 1)
	go func() { linked <- audit.Link(ctx, db, "org:org-a") }()
	select {
	case err := <-linked:
		t.Errorf("Link returned (%v) while another transaction held the chain's head", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if herr := <-holderDone; herr != nil {
		t.Fatal(herr)
	}
	if err != nil {
		t.Fatalf("a write waited for the chain's head: %v", err)
	}
	if err := <-linked; err != nil {
		t.Fatal(err)
	}
	if rep := verify(t, db); rep.Entries != 2 || len(rep.Breaks) != 0 {
		t.Fatalf("report = %+v, want the two entries linked in an intact chain", rep)
	}
}

// TestLinkersOfSeveralProcesses: writers and linkers in two processes at
// once link every entry exactly once, in gapless chains; entries that a
// process committed and never linked (it died) are linked by another.
func TestLinkersOfSeveralProcesses(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) { linkFromTwoProcesses(t, e) })
	}
}

func linkFromTwoProcesses(t *testing.T, e storetest.Engine) {
	db, cfg := e.Open(t)
	ctx := context.Background()
	const writers, each = 4, 50
	for i := range 5 {
		if err := writeOne(ctx, db, "org-dead", i); err != nil {
			t.Fatal(err)
		}
	}
	other := storetest.OpenAgain(t, cfg)
	stop := make(chan struct{})
	var linkers, wg sync.WaitGroup
	var linkErr error
	var mu sync.Mutex
	for _, d := range []*store.DB{db, other} {
		linkers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := audit.LinkPending(ctx, d); err != nil {
					mu.Lock()
					linkErr = errors.Join(linkErr, err)
					mu.Unlock()
					return
				}
			}
		})
	}
	errs := make(chan error, writers)
	for w := range writers {
		d := []*store.DB{db, other}[w%2]
		wg.Go(func() {
			for i := range each {
				if err := writeOne(ctx, d, fmt.Sprintf("org-%d", w%2), i); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	linkers.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if linkErr != nil {
		t.Fatal(linkErr)
	}
	rep := verify(t, other)
	if rep.Chains != 3 || rep.Entries != writers*each+5 || len(rep.Breaks) != 0 {
		t.Fatalf("report = %+v, want %d entries in 3 intact chains", rep, writers*each+5)
	}
}
