package store_test

import (
	"context"
	"database/sql"
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
	a.Subscribe(heardA)
	b.Subscribe(heardB)
	storetest.Follow(tb, time.Hour, b, a)
	return a, b
}

// commit commits a transaction of db that makes change c.
func commit(tb testing.TB, db *store.DB, c store.Change) {
	tb.Helper()
	if err := db.Transact(context.Background(), func(tx *store.Tx) error {
		tx.Notify(c)
		return nil
	}); err != nil {
		tb.Fatal(err)
	}
}

func TestChangeFeedAcrossProcesses(t *testing.T) {
	ctx := context.Background()
	var heardA, heardB changes
	a, b := twoProcesses(t, heardA.add, heardB.add)
	// listening reports whether db has its listening connection (again).
	listening := func(db *store.DB) bool {
		for range 500 {
			var n int
			if err := a.View(ctx, func(tx *store.Tx) error {
				return tx.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE application_name = ?`, "steward-feed-"+db.FeedStats().Origin).Scan(&n)
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
	commit(t, a, change)
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
	commit(t, a, after)
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
	commit(t, a, again)
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
		commit(b, a, want)
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

// TestChangeFeedWithoutWakeUps commits changes the way a process that dies
// between its commit and its wake-up leaves them, and one of a transaction
// that commits after others that began later: the other process reads
// each once, in its rounds.
func TestChangeFeedWithoutWakeUps(t *testing.T) {
	ctx := context.Background()
	var heardB changes
	a, _ := twoProcesses(t, func(store.Change) {}, heardB.add)
	// A row of a process that never woke anybody.
	silent := store.Change{Topic: "keys", OrganizationID: "org_1", ID: "key_1"}
	if err := a.Transact(ctx, func(tx *store.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO change_log (origin, topic, organization_id, object_id, created_at) VALUES ('dead', ?, ?, ?, 0)`,
			silent.Topic, silent.OrganizationID, silent.ID)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if !heardB.wait(silent) {
		t.Fatalf("a change nobody woke the other process for never reached it")
	}

	// A transaction that has its id, and commits after another one and
	// after several of the other process's reads.
	slow, fast := store.Change{Topic: "access", OrganizationID: "org_2"}, store.Change{Topic: "limits", OrganizationID: "org_3"}
	began, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- a.Transact(ctx, func(tx *store.Tx) error {
			var xid string
			if err := tx.QueryRow(ctx, `SELECT pg_current_xact_id()::text`).Scan(&xid); err != nil {
				return err
			}
			close(began)
			<-release
			tx.Notify(slow)
			return nil
		})
	}()
	<-began
	commit(t, a, fast)
	if !heardB.wait(fast) {
		t.Fatalf("the other process never heard %v", fast)
	}
	// The other process reads unwoken every second: let it read while
	// the slow transaction runs.
	time.Sleep(2500 * time.Millisecond)
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !heardB.wait(slow) {
		t.Fatalf("the other process never heard %v, committed after later transactions", slow)
	}
	time.Sleep(2500 * time.Millisecond)
	heardB.mu.Lock()
	defer heardB.mu.Unlock()
	count := map[store.Change]int{}
	for _, c := range heardB.seen {
		count[c]++
	}
	for _, c := range []store.Change{silent, fast, slow} {
		if count[c] != 1 {
			t.Errorf("heard %v %d times; want once (heard %v)", c, count[c], heardB.seen)
		}
	}
}

// TestChangeLogPruned checks that a process following the feed deletes
// the change log's rows once a resync's interval has passed since it read
// them, and keeps those of a transaction still running.
func TestChangeLogPruned(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.OpenPostgres(t)
	storetest.Follow(t, 200*time.Millisecond, db)
	for i := range 3 {
		commit(t, db, store.Change{Topic: "keys", OrganizationID: "org_" + strconv.Itoa(i)})
	}
	rows := func() (n int) {
		if err := db.View(ctx, func(tx *store.Tx) error {
			return tx.QueryRow(ctx, `SELECT count(*) FROM change_log`).Scan(&n)
		}); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := rows(); n != 3 {
		t.Fatalf("%d rows in the change log; want 3", n)
	}
	for range 100 {
		if rows() == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%d rows still in the change log after 10 s", rows())
}
