package store_test

import (
	"context"
	"database/sql"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
)

// changes collects what a subscriber hears.
type changes struct {
	mu   sync.Mutex
	seen []store.Change
}

func (c *changes) add(ch store.Change) {
	c.mu.Lock()
	c.seen = append(c.seen, ch)
	c.mu.Unlock()
}

// wait waits up to five seconds for a change and reports whether it came.
func (c *changes) wait(want store.Change) bool {
	for range 500 {
		c.mu.Lock()
		ok := slices.Contains(c.seen, want)
		c.mu.Unlock()
		if ok {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

// twoProcesses opens a PostgreSQL database twice, as two Steward processes
// do, subscribes heardA and heardB to each one's changes, has both follow
// the other's, and waits until the second listens. Both stop following
// and close when the test ends.
func twoProcesses(tb testing.TB, heardA, heardB func(store.Change)) (a, b *store.DB) {
	tb.Helper()
	a, cfg := storetest.OpenPostgres(tb)
	b = storetest.OpenAgain(tb, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	a.Subscribe(heardA)
	b.Subscribe(heardB)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var following sync.WaitGroup
	following.Go(func() { b.Follow(ctx, time.Hour, log) })
	following.Go(func() { a.Follow(ctx, time.Hour, log) })
	tb.Cleanup(func() {
		cancel()
		following.Wait()
	})
	select {
	case <-b.FeedReady():
	case <-time.After(10 * time.Second):
		tb.Fatal("the second process never listened")
	}
	return a, b
}

func TestChangeFeedAcrossProcesses(t *testing.T) {
	if os.Getenv(storetest.PostgresEnv) == "" && os.Getenv("CI") == "" {
		t.Skipf("PostgreSQL not tested: set %s", storetest.PostgresEnv)
	}
	ctx := context.Background()
	var heardA, heardB changes
	a, b := twoProcesses(t, heardA.add, heardB.add)
	// listening reports whether db listens (again).
	listening := func(db *store.DB) bool {
		for range 500 {
			var n int
			if err := a.View(ctx, func(tx *store.Tx) error {
				return tx.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE application_name = ? AND query LIKE 'LISTEN%'`, "steward-feed-"+db.FeedStats().Origin).Scan(&n)
			}); err != nil {
				t.Fatal(err)
			}
			if n == 1 {
				return true
			}
			time.Sleep(10 * time.Millisecond)
		}
		return false
	}
	change := store.Change{Topic: "keys", OrganizationID: "org_1", ID: "key_1"}
	if err := a.Transact(ctx, func(tx *store.Tx) error {
		tx.Notify(change)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !heardB.wait(change) {
		t.Fatalf("the other process never heard %v", change)
	}
	// A rolled-back change reaches nobody; the origin hears its own once.
	rolledBack := store.Change{Topic: "keys", OrganizationID: "org_2"}
	_ = a.Transact(ctx, func(tx *store.Tx) error {
		tx.Notify(rolledBack)
		return sql.ErrTxDone
	})
	after := store.Change{Topic: "access", OrganizationID: "org_3"}
	if err := a.Transact(ctx, func(tx *store.Tx) error {
		tx.Notify(after)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !heardB.wait(after) {
		t.Fatalf("the other process never heard %v", after)
	}
	heardA.mu.Lock()
	ownA := slices.Clone(heardA.seen)
	heardA.mu.Unlock()
	heardB.mu.Lock()
	if slices.Contains(heardB.seen, rolledBack) {
		t.Errorf("a rolled-back change was published: %v", heardB.seen)
	}
	heardB.mu.Unlock()
	if !slices.Equal(ownA, []store.Change{change, after}) {
		t.Errorf("the origin heard %v; want each of its changes once", ownA)
	}
	if st := b.FeedStats(); st.Received != 2 || st.Lag <= 0 || st.Resyncs != 1 {
		t.Errorf("stats %+v; want 2 received with a lag, the resync of the first listen", st)
	}

	// The listening connection is cut: b reconnects and resyncs every
	// Organization, of every topic.
	if err := a.Transact(ctx, func(tx *store.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO enterprise_accounts (id, name, created_at) VALUES ('ea_1', 'e', 0)`)
		if err == nil {
			_, err = tx.Exec(ctx, `INSERT INTO organizations (id, enterprise_account_id, name, created_at) VALUES ('org_9', 'ea_1', 'o', 0)`)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var killed bool
	if err := a.View(ctx, func(tx *store.Tx) error {
		return tx.QueryRow(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = ?`, "steward-feed-"+b.FeedStats().Origin).Scan(&killed)
	}); err != nil || !killed {
		t.Fatalf("terminate the listener: %v %v", killed, err)
	}
	if !heardB.wait(store.Change{OrganizationID: "org_9"}) {
		t.Fatalf("no resync after the reconnection: %v", b.FeedStats())
	}
	if st := b.FeedStats(); st.Reconnects != 1 || st.Resyncs != 2 {
		t.Errorf("stats %+v; want one reconnection and its resync", st)
	}
	if !listening(b) {
		t.Fatal("the second process did not listen again")
	}
	again := store.Change{Topic: "limits", OrganizationID: "org_9"}
	if err := a.Transact(ctx, func(tx *store.Tx) error {
		tx.Notify(again)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !heardB.wait(again) {
		t.Fatalf("the other process never heard %v after reconnecting", again)
	}
}

// BenchmarkChangeAcrossProcesses measures how long a change (a key's
// revocation, say) takes from the start of its transaction in one process
// to its subscribers in another, through PostgreSQL's LISTEN/NOTIFY: each
// iteration commits one change and waits until the other process hears it.
//
//	STEWARD_TEST_POSTGRES=... go test ./internal/store -run '^$' -bench ChangeAcrossProcesses -benchtime 2000x
func BenchmarkChangeAcrossProcesses(b *testing.B) {
	if os.Getenv(storetest.PostgresEnv) == "" {
		b.Skipf("PostgreSQL not tested: set %s", storetest.PostgresEnv)
	}
	ctx := context.Background()
	heard := make(chan store.Change, 1)
	a, _ := twoProcesses(b, func(store.Change) {}, func(c store.Change) {
		if c.Topic == "keys" {
			heard <- c
		}
	})
	var lat []time.Duration
	for i := 0; b.Loop(); i++ {
		want := store.Change{Topic: "keys", OrganizationID: "org", ID: "key-" + strconv.Itoa(i)}
		// From before the transaction, since the other process may hear
		// the change before Transact has returned: the figure includes
		// the commit's own time.
		began := time.Now()
		if err := a.Transact(ctx, func(tx *store.Tx) error {
			tx.Notify(want)
			return nil
		}); err != nil {
			b.Fatal(err)
		}
		select {
		case got := <-heard:
			if got != want {
				b.Fatalf("heard %+v, want %+v", got, want)
			}
			lat = append(lat, time.Since(began))
		case <-time.After(10 * time.Second):
			b.Fatalf("the other process never heard %+v", want)
		}
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds()), "max-µs")
}
