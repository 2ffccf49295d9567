package audit_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
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
	release := holdOpen(t, db, func(ctx context.Context, tx *store.Tx) error {
		var seq int64
		return tx.QueryRow(ctx, `SELECT seq FROM audit_chains WHERE scope = 'org:org-a' FOR UPDATE`).Scan(&seq)
	})
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
	if herr := release(); herr != nil {
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

// unlinked counts the entries that wait for a linker.
func unlinked(t *testing.T, db *store.DB) int {
	t.Helper()
	var n int
	err := db.View(context.Background(), func(tx *store.Tx) error {
		return tx.QueryRow(context.Background(), `SELECT COUNT(*) FROM audit_log WHERE seq IS NULL`).Scan(&n)
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// waitLinked waits until no entry waits for a linker, at most 10 seconds.
func waitLinked(t *testing.T, db *store.DB, what string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); unlinked(t, db) > 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: entries still unlinked after 10 s", what)
		}
	}
}

// TestLinkerRunsAndLogsFailures: a running linker links what it finds when
// it starts, and what a nudge tells it of long before its interval; a
// linker that cannot link logs why.
func TestLinkerRunsAndLogsFailures(t *testing.T) {
	db, cfg := storetest.OpenPostgres(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := writeOne(ctx, db, "org-a", 0); err != nil {
		t.Fatal(err)
	}
	l := audit.NewLinker(db, slog.New(slog.NewTextHandler(io.Discard, nil)))
	running := make(chan struct{})
	go func() { l.Run(ctx, time.Hour); close(running) }()
	waitLinked(t, db, "at the linker's start")
	if err := writeOne(ctx, db, "org-a", 1); err != nil {
		t.Fatal(err)
	}
	l.Nudge()
	waitLinked(t, db, "after a nudge")
	cancel()
	<-running
	if rep := verify(t, db); rep.Entries != 2 || len(rep.Breaks) != 0 {
		t.Fatalf("report = %+v, want two entries in an intact chain", rep)
	}

	closed := storetest.OpenAgain(t, cfg)
	closed.Close()
	var logs bytes.Buffer
	ctx, cancel = context.WithCancel(context.Background())
	failing := audit.NewLinker(closed, slog.New(slog.NewTextHandler(&logs, nil)))
	go func() { time.Sleep(200 * time.Millisecond); cancel() }()
	failing.Run(ctx, time.Hour)
	if got := logs.String(); !strings.Contains(got, "linking entries into their chains failed") || !strings.Contains(got, "database is closed") {
		t.Fatalf("the failing linker logged %q, want its failure and the cause", got)
	}
	if _, err := audit.Verify(context.Background(), closed); err == nil || !strings.Contains(err.Error(), "database is closed") {
		t.Fatalf("Verify on a closed database: %v, want its failure to link", err)
	}
}
