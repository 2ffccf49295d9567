package alerts_test

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/alerts"
	"github.com/stewardhq/steward/internal/audit"
	"github.com/stewardhq/steward/internal/billing"
	"github.com/stewardhq/steward/internal/bootstrap"
	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/quota"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
	"github.com/stewardhq/steward/internal/usage"
)

var actor = steward.SystemActor("test")

// fixture is a bootstrapped Organization with a billing manager and a
// plain member, on a clock the test moves.
type fixture struct {
	db    *store.DB
	boot  bootstrap.Result
	clock atomic.Pointer[time.Time]
	n     int
}

func newFixture(t *testing.T, db *store.DB, now time.Time) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{db: db}
	f.set(now)
	db.Now = func() time.Time { return *f.clock.Load() }
	var err error
	if f.boot, err = bootstrap.Run(ctx, db, bootstrap.Options{AdminEmail: "admin@example.com"}); err != nil {
		t.Fatal(err)
	}
	billingManager := steward.RoleOrganizationBilling
	err = db.Transact(ctx, func(tx *store.Tx) error {
		_, err := directory.CreateMembers(ctx, tx, actor, f.boot.Organization, []directory.NewMember{
			{Email: "billing@example.com", Roles: directory.RoleInput{RoleName: &billingManager}},
			{Email: "member@example.com"},
		})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) set(t time.Time) { f.clock.Store(&t) }

func (f *fixture) evaluator() *alerts.Evaluator {
	return &alerts.Evaluator{DB: f.db, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// run evaluates once and checks how many alerts fired.
func (f *fixture) run(t *testing.T, want int) {
	t.Helper()
	n, err := f.evaluator().RunOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n != want {
		t.Fatalf("%d alerts fired at %v, want %d", n, *f.clock.Load(), want)
	}
}

// spend records usage of the default Workspace at the clock's time.
func (f *fixture) spend(t *testing.T, model string, tokens, cost int64) {
	t.Helper()
	f.n++
	rec := usage.NewRecorder(f.db, usage.Options{})
	done := make(chan struct{})
	go func() { defer close(done); rec.Run(context.Background()) }()
	err := rec.Record(context.Background(), usage.Event{
		ID: "e" + strings.Repeat("x", f.n), Time: *f.clock.Load(), OrganizationID: f.boot.Organization.ID, WorkspaceID: f.boot.DefaultWorkspace.ID,
		Model: model, InputTokens: tokens, Cost: cost, Currency: "EUR",
	})
	if err == nil {
		err = rec.Close()
	}
	<-done
	if err != nil {
		t.Fatal(err)
	}
}

// entries returns the Organization's entries of an event type, oldest
// first.
func (f *fixture) entries(t *testing.T, event string) []audit.Entry {
	t.Helper()
	got, err := audit.NewService(f.db).List(context.Background(), audit.Filter{
		OrganizationID: f.boot.Organization.ID, EventTypes: []string{event}, Ascending: true, Limit: audit.MaxLimit,
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// mails returns the recipients of the alert e-mails whose subject holds
// what, in order.
func (f *fixture) mails(t *testing.T, what string) []string {
	t.Helper()
	ctx := context.Background()
	got, err := store.Read(ctx, f.db, func(tx *store.Tx) ([]string, error) {
		return tx.Strings(ctx, `SELECT recipient FROM outbox WHERE kind = 'alert' AND subject LIKE ? ORDER BY recipient, created_at`, "%"+what+"%")
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func thresholds(entries []audit.Entry) []string {
	var out []string
	for _, e := range entries {
		out = append(out, e.EventMetadata["period"]+":"+e.EventMetadata["threshold"])
	}
	return out
}

var recipients = []string{"admin@example.com", "billing@example.com"}

// The Organization's spend crossing 50%, then 80%, then 100% of its cap
// fires three alerts, each with an e-mail to each admin and billing
// manager (not to plain members); evaluating again fires none; a new month
// re-arms them, and reaching 100% at once there fires the 100% alert only.
func TestSpendAlertsFireOncePerThreshold(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db, time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC))
		cap := int64(100)
		if _, err := quota.NewService(db).SetSpendLimit(ctx, actor, f.boot.Organization.ID, &cap); err != nil {
			t.Fatal(err)
		}
		f.run(t, 0)
		steps := []struct {
			cost  int64
			fires int
		}{
			{49, 0}, {1, 1}, {20, 0}, {10, 1}, {19, 0}, {1, 1}, {500, 0},
		}
		for _, s := range steps {
			f.spend(t, "small", 1, billing.Micros(s.cost))
			f.run(t, s.fires)
			f.run(t, 0)
		}
		got := f.entries(t, audit.EventLimitSpendReached)
		if want := []string{"2026-03:50", "2026-03:80", "2026-03:100"}; !slices.Equal(thresholds(got), want) {
			t.Fatalf("spend alerts %v, want %v", thresholds(got), want)
		}
		m := got[1].EventMetadata
		if m["scope"] != "organization" || m["workspace_id"] != "" || m["spent"] != "80.000000" || m["spend_limit"] != "100" ||
			got[1].TargetType != audit.TargetMonthlyLimit || got[1].Actor.Type != steward.ActorOther || got[1].WorkspaceID != "" {
			t.Errorf("80%% alert: %+v", got[1])
		}
		for _, th := range []string{"50%", "80%", "100%"} {
			if got := f.mails(t, "Spend reached "+th+" "); !slices.Equal(got, recipients) {
				t.Errorf("e-mails of the %s alert to %v, want %v", th, got, recipients)
			}
		}

		f.set(time.Date(2026, 4, 2, 9, 0, 0, 0, time.UTC))
		f.run(t, 0)
		f.spend(t, "small", 1, billing.Micros(150))
		f.run(t, 1)
		f.run(t, 0)
		got = f.entries(t, audit.EventLimitSpendReached)
		if want := []string{"2026-03:50", "2026-03:80", "2026-03:100", "2026-04:100"}; !slices.Equal(thresholds(got), want) {
			t.Fatalf("spend alerts %v, want %v", thresholds(got), want)
		}
		if got := f.mails(t, "Spend reached 100% "); len(got) != 4 {
			t.Errorf("e-mails of the 100%% alerts: %v, want two each month", got)
		}
	})
}

// A month counts in the Organization's time zone: at 23:30 UTC on 31 March,
// Paris is in April, whose spend starts again.
func TestAlertsCountTheOrganizationsMonth(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db, time.Date(2026, 3, 31, 20, 0, 0, 0, time.UTC))
		cap := int64(10)
		svc := quota.NewService(db)
		if _, err := svc.SetSpendLimit(ctx, actor, f.boot.Organization.ID, &cap); err != nil {
			t.Fatal(err)
		}
		if _, _, err := svc.SetTimeZone(ctx, actor, f.boot.Organization.ID, "Europe/Paris"); err != nil {
			t.Fatal(err)
		}
		f.spend(t, "small", 1, billing.Micros(6))
		f.run(t, 1)
		f.set(time.Date(2026, 3, 31, 23, 30, 0, 0, time.UTC))
		f.spend(t, "small", 1, billing.Micros(5))
		f.run(t, 1)
		if got, want := thresholds(f.entries(t, audit.EventLimitSpendReached)), []string{"2026-03:50", "2026-04:50"}; !slices.Equal(got, want) {
			t.Fatalf("spend alerts %v, want %v", got, want)
		}
	})
}

// A Workspace's spend cap and its monthly token limit of a model alert on
// their own, naming the Workspace and the model.
func TestWorkspaceSpendAndTokenAlerts(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db, time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC))
		org, ws := f.boot.Organization.ID, f.boot.DefaultWorkspace.ID
		svc := quota.NewService(db)
		cap, perMonth := int64(10), int64(1000)
		if err := svc.SetSpendCap(ctx, actor, org, ws, &cap); err != nil {
			t.Fatal(err)
		}
		if err := svc.SetModelLimits(ctx, actor, org, ws, "small", nil, &perMonth); err != nil {
			t.Fatal(err)
		}
		f.spend(t, "small", 850, billing.Micros(5))
		f.spend(t, "large", 5000, 0)
		f.run(t, 2)
		f.run(t, 0)
		spend := f.entries(t, audit.EventLimitSpendReached)
		tokens := f.entries(t, audit.EventLimitTokensReached)
		if len(spend) != 1 || len(tokens) != 1 {
			t.Fatalf("%d spend and %d token alerts, want one each", len(spend), len(tokens))
		}
		if m := spend[0].EventMetadata; m["scope"] != "workspace" || m["workspace_id"] != ws || m["threshold"] != "50" ||
			spend[0].WorkspaceID != ws || spend[0].TargetType != audit.TargetWorkspaceMonthly {
			t.Errorf("Workspace spend alert: %+v", spend[0])
		}
		if m := tokens[0].EventMetadata; m["model"] != "small" || m["threshold"] != "80" || m["tokens"] != "850" || m["tokens_per_month"] != "1000" ||
			m["workspace_id"] != ws {
			t.Errorf("token alert: %+v", tokens[0])
		}
		if got := f.mails(t, "Tokens of small reached 80% "); !slices.Equal(got, recipients) {
			t.Errorf("token alert e-mails to %v, want %v", got, recipients)
		}
		if got := f.mails(t, "limit of the Workspace "+f.boot.DefaultWorkspace.Name); len(got) != 4 {
			t.Errorf("%d e-mails name the Workspace, want both alerts' (4)", len(got))
		}
		f.spend(t, "small", 150, 0)
		f.run(t, 1)
		if got, want := thresholds(f.entries(t, audit.EventLimitTokensReached)), []string{"2026-03:80", "2026-03:100"}; !slices.Equal(got, want) {
			t.Fatalf("token alerts %v, want %v", got, want)
		}
	})
}

// Evaluators of several processes racing fire each alert once.
func TestRacingEvaluatorsFireOnce(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			ctx := context.Background()
			db, cfg := e.Open(t)
			f := newFixture(t, db, time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC))
			cap := int64(100)
			if _, err := quota.NewService(db).SetSpendLimit(ctx, actor, f.boot.Organization.ID, &cap); err != nil {
				t.Fatal(err)
			}
			f.spend(t, "small", 1, billing.Micros(85))
			var fired atomic.Int64
			var wg sync.WaitGroup
			for range 4 {
				other := storetest.OpenAgain(t, cfg)
				other.Now = db.Now
				ev := &alerts.Evaluator{DB: other, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
				wg.Go(func() {
					for range 3 {
						n, err := ev.RunOnce(ctx)
						if err != nil {
							t.Error(err)
							return
						}
						fired.Add(int64(n))
					}
				})
			}
			wg.Wait()
			if got := thresholds(f.entries(t, audit.EventLimitSpendReached)); fired.Load() != 1 || !slices.Equal(got, []string{"2026-03:80"}) {
				t.Fatalf("%d alerts fired by racing evaluators, entries %v; want the 80%% alert once", fired.Load(), got)
			}
			if got := f.mails(t, "Spend reached"); !slices.Equal(got, recipients) {
				t.Fatalf("e-mails to %v, want %v", got, recipients)
			}
		})
	}
}

// An Admin API key unused for 90 days since its creation alerts once; used
// again, it alerts again 90 days after that use.
func TestUnusedAdminKeyAlerts(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		created := time.Date(2026, 1, 5, 12, 0, 0, 0, time.UTC)
		f := newFixture(t, db, created)
		f.set(created.Add(alerts.UnusedAfter - time.Hour))
		f.run(t, 0)
		f.set(created.Add(alerts.UnusedAfter + time.Hour))
		f.run(t, 1)
		f.run(t, 0)
		used := created.Add(alerts.UnusedAfter + 2*time.Hour)
		if err := db.Transact(ctx, func(tx *store.Tx) error {
			_, err := tx.Exec(ctx, `UPDATE admin_api_keys SET last_used_at = ? WHERE id = ?`, store.Micros(used), f.boot.AdminKey.ID)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		f.set(used.Add(alerts.UnusedAfter - time.Minute))
		f.run(t, 0)
		f.set(used.Add(alerts.UnusedAfter))
		f.run(t, 1)
		f.run(t, 0)
		got := f.entries(t, audit.EventAdminAPIKeyUnused)
		if len(got) != 2 {
			t.Fatalf("%d unused key alerts, want 2", len(got))
		}
		if got[0].TargetMetadata["id"] != f.boot.AdminKey.ID || got[0].EventMetadata["created_at"] != created.Format(time.RFC3339) ||
			got[1].EventMetadata["last_used_at"] != used.Format(time.RFC3339) || got[1].EventMetadata["threshold"] != "90" {
			t.Errorf("unused key alerts: %+v, %+v", got[0], got[1])
		}
		if got := f.mails(t, "has not been used for 90 days"); len(got) != 4 {
			t.Errorf("unused key e-mails to %v, want the admin and the billing manager twice", got)
		}
	})
}
