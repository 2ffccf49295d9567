package keys_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/bootstrap"
	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/keys"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
)

type fixture struct {
	db      *store.DB
	boot    bootstrap.Result
	checker *keys.Checker
	owner   string
}

var actor = steward.SystemActor("test")

func newFixture(t testing.TB, db *store.DB) *fixture {
	t.Helper()
	ctx := context.Background()
	boot, err := bootstrap.Run(ctx, db, bootstrap.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{db: db, boot: boot}
	f.change(t, func(tx *store.Tx) error {
		res, err := directory.CreateMembers(ctx, tx, actor, boot.Organization, []directory.NewMember{{Email: "dev@example.com"}})
		f.owner = res.EmailToUserID["dev@example.com"]
		return err
	})
	access := directory.NewAccess(db)
	if f.checker, err = keys.NewChecker(ctx, db, access); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) change(t testing.TB, fn func(tx *store.Tx) error) {
	t.Helper()
	if err := f.db.Transact(context.Background(), fn); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) newKey(t testing.TB, ws string, expiration string) (steward.APIKey, string) {
	t.Helper()
	var k steward.APIKey
	var secret string
	f.change(t, func(tx *store.Tx) error {
		var err error
		k, secret, err = keys.CreateKey(context.Background(), tx, actor, f.boot.Organization, keys.NewKey{WorkspaceID: ws, UserID: f.owner, Expiration: expiration})
		return err
	})
	return k, secret
}

// refused checks that Check refuses secret with an error of kind and code.
func refused(t *testing.T, c *keys.Checker, secret string, kind steward.Kind, code string) {
	t.Helper()
	_, err := c.Check(context.Background(), secret)
	var se *steward.Error
	if !steward.IsKind(err, kind) {
		t.Fatalf("Check = %v, want a %v error", err, kind)
	}
	if se, _ = err.(*steward.Error); code != "" && se.Code != code {
		t.Fatalf("Check = %v (code %q), want code %q", err, se.Code, code)
	}
}

func TestCheckerFollowsEveryReasonToRefuse(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		org := f.boot.Organization
		k, secret := f.newKey(t, f.boot.DefaultWorkspace.ID, "")
		got, err := f.checker.Check(ctx, secret)
		if err != nil || got.ID != k.ID || got.UserID != f.owner || got.WorkspaceID != f.boot.DefaultWorkspace.ID {
			t.Fatalf("Check = %+v, %v", got, err)
		}
		refused(t, f.checker, keys.New(keys.PrefixWorkspace), steward.KindUnauthenticated, "")
		refused(t, f.checker, f.boot.AdminKeySecret, steward.KindForbidden, "")
		refused(t, f.checker, "sk-not-ours", steward.KindUnauthenticated, "")

		// Rotation with a grace period: both work, then only the new one.
		var rot keys.Rotated
		f.change(t, func(tx *store.Tx) error {
			var err error
			rot, err = keys.RotateKey(ctx, tx, actor, org, k.ID, time.Hour)
			return err
		})
		for _, s := range []string{secret, rot.Secret} {
			if _, err := f.checker.Check(ctx, s); err != nil {
				t.Fatalf("during the grace period: %v", err)
			}
		}
		f.checker.Now = func() time.Time { return time.Now().Add(2 * time.Hour) }
		refused(t, f.checker, secret, steward.KindUnauthenticated, "key_rotated")
		if _, err := f.checker.Check(ctx, rot.Secret); err != nil {
			t.Fatalf("new secret after the grace period: %v", err)
		}
		f.checker.Now = time.Now
		// Rotation without grace: the old secret dies at once.
		var again keys.Rotated
		f.change(t, func(tx *store.Tx) error {
			var err error
			again, err = keys.RotateKey(ctx, tx, actor, org, k.ID, 0)
			return err
		})
		refused(t, f.checker, rot.Secret, steward.KindUnauthenticated, "")

		// The owner loses access: their only role becomes billing.
		f.change(t, func(tx *store.Tx) error {
			_, _, err := directory.AddWorkspaceMembers(ctx, tx, actor, org, f.boot.DefaultWorkspace.ID,
				[]directory.WorkspaceMemberInput{{UserID: f.owner, Roles: directory.RoleInput{RoleNames: &[]string{"billing"}}}}, true)
			return err
		})
		refused(t, f.checker, again.Secret, steward.KindForbidden, "no_workspace_access")
		f.change(t, func(tx *store.Tx) error {
			_, _, err := directory.AddWorkspaceMembers(ctx, tx, actor, org, f.boot.DefaultWorkspace.ID,
				[]directory.WorkspaceMemberInput{{UserID: f.owner, Roles: directory.RoleInput{RoleNames: &[]string{"user"}}}}, true)
			return err
		})
		if _, err := f.checker.Check(ctx, again.Secret); err != nil {
			t.Fatalf("access given back: %v", err)
		}

		// An archived Workspace's keys stop.
		var ws steward.Workspace
		f.change(t, func(tx *store.Tx) error {
			name := "Temp"
			var err error
			ws, err = directory.CreateWorkspace(ctx, tx, actor, org, directory.NewWorkspace{WorkspaceInput: directory.WorkspaceInput{Name: &name}, AdminUserID: f.owner})
			return err
		})
		_, wsSecret := f.newKey(t, ws.ID, "")
		if _, err := f.checker.Check(ctx, wsSecret); err != nil {
			t.Fatal(err)
		}
		f.change(t, func(tx *store.Tx) error { return directory.ArchiveWorkspace(ctx, tx, actor, org, ws.ID) })
		refused(t, f.checker, wsSecret, steward.KindForbidden, "no_workspace_access")

		// Expiry.
		_, expiring := f.newKey(t, f.boot.DefaultWorkspace.ID, time.Now().AddDate(0, 0, 2).Format(keys.DateLayout))
		f.checker.Now = func() time.Time { return time.Now().AddDate(0, 0, 3) }
		refused(t, f.checker, expiring, steward.KindUnauthenticated, "key_expired")
		f.checker.Now = time.Now

		// Deletion, and the owner leaving the Organization.
		f.change(t, func(tx *store.Tx) error { return keys.DeleteKey(ctx, tx, actor, org, k.ID) })
		refused(t, f.checker, again.Secret, steward.KindUnauthenticated, "")
		if _, err := f.checker.Check(ctx, expiring); err != nil {
			t.Fatal(err)
		}
		f.change(t, func(tx *store.Tx) error { return directory.RemoveMember(ctx, tx, actor, org, f.owner) })
		refused(t, f.checker, expiring, steward.KindForbidden, "no_workspace_access")
	})
}

// A key's change reloads that key alone: a secret two rotations old stops
// at once though its grace period has not run out, and the
// Organization's other keys are kept.
func TestCheckerReloadsOneKey(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		org := f.boot.Organization
		_, other := f.newKey(t, f.boot.DefaultWorkspace.ID, "")
		k, first := f.newKey(t, f.boot.DefaultWorkspace.ID, "")
		rotate := func() string {
			var rot keys.Rotated
			f.change(t, func(tx *store.Tx) error {
				var err error
				rot, err = keys.RotateKey(ctx, tx, actor, org, k.ID, time.Hour)
				return err
			})
			return rot.Secret
		}
		second := rotate()
		third := rotate()
		refused(t, f.checker, first, steward.KindUnauthenticated, "")
		for _, s := range []string{second, third, other} {
			if got, err := f.checker.Check(ctx, s); err != nil {
				t.Fatalf("Check = %+v, %v", got, err)
			}
		}
		f.change(t, func(tx *store.Tx) error { return keys.DeleteKey(ctx, tx, actor, org, k.ID) })
		for _, s := range []string{second, third} {
			refused(t, f.checker, s, steward.KindUnauthenticated, "")
		}
		if f.checker.Size() != 1 {
			t.Errorf("the cache holds %d secrets, want the other key's only", f.checker.Size())
		}
		if _, err := f.checker.Check(ctx, other); err != nil {
			t.Fatal(err)
		}
	})
}

func TestCheckerFlushesLastUse(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		k, secret := f.newKey(t, f.boot.DefaultWorkspace.ID, "")
		lastUsed := func() *time.Time {
			var got steward.APIKey
			if err := db.View(ctx, func(tx *store.Tx) error {
				var err error
				got, err = keys.GetKey(ctx, tx, f.boot.Organization.ID, k.ID)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			return got.LastUsedAt
		}
		if err := f.checker.Flush(ctx); err != nil || lastUsed() != nil {
			t.Fatalf("an unused key has a last use after a flush (%v)", err)
		}
		if _, err := f.checker.Check(ctx, secret); err != nil {
			t.Fatal(err)
		}
		if lastUsed() != nil {
			t.Fatal("Check wrote to the database")
		}
		if err := f.checker.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if got := lastUsed(); got == nil || time.Since(*got) > time.Minute {
			t.Fatalf("last use after a flush = %v", got)
		}
	})
}

// BenchmarkCheck measures the key check of every model request, from
// memory: format, checksum, hash, lookup, expiry and owner access.
//
//	go test ./internal/keys -run '^$' -bench Check -cpu 1,2
func BenchmarkCheck(b *testing.B) {
	db, _ := storetest.OpenSQLite(b)
	f := newFixture(b, db)
	_, secret := f.newKey(b, f.boot.DefaultWorkspace.ID, "")
	ctx := context.Background()
	if _, err := f.checker.Check(ctx, secret); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := f.checker.Check(ctx, secret); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestExpiryReminders(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		f.newKey(t, f.boot.DefaultWorkspace.ID, time.Now().UTC().AddDate(0, 0, 5).Format(keys.DateLayout))
		f.newKey(t, f.boot.DefaultWorkspace.ID, time.Now().UTC().AddDate(0, 0, 60).Format(keys.DateLayout))
		r := &keys.Reminders{DB: db, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
		run := func(want int) {
			t.Helper()
			n, err := r.RunOnce(ctx)
			if err != nil || n != want {
				t.Fatalf("RunOnce = %d, %v; want %d", n, err, want)
			}
		}
		run(1)
		run(0)
		// Four days on, at any time of day, is within the last day before
		// the expiry date's midnight (UTC), when it begins.
		db.Now = func() time.Time { return time.Now().AddDate(0, 0, 4) }
		run(1)
		run(0)
		db.Now = time.Now
		var subjects []string
		err := db.View(ctx, func(tx *store.Tx) error {
			rows, err := tx.Query(ctx, `SELECT subject FROM outbox WHERE kind = 'api_key_expiring' AND recipient = 'dev@example.com' ORDER BY created_at`)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var s string
				if err := rows.Scan(&s); err != nil {
					return err
				}
				subjects = append(subjects, s)
			}
			return rows.Err()
		})
		if err != nil || len(subjects) != 2 || !strings.Contains(subjects[0], "7 days") || !strings.Contains(subjects[1], "within a day") {
			t.Fatalf("reminder emails = %v (%v)", subjects, err)
		}
		// The Organization's admin is told of each reminder too, naming
		// the owner.
		err = db.View(ctx, func(tx *store.Tx) error {
			subjects, err = tx.Strings(ctx, `SELECT subject FROM outbox WHERE kind = 'api_key_expiring' AND recipient = 'admin@example.com' ORDER BY created_at`)
			return err
		})
		if err != nil || len(subjects) != 2 || !strings.Contains(subjects[0], "dev@example.com") {
			t.Fatalf("the admin's reminder emails = %v (%v); want two naming dev@example.com", subjects, err)
		}
	})
}

// TestLastUsedKeptWhenAFlushFails: times a failed flush could not write are
// written by the next one.
func TestLastUsedKeptWhenAFlushFails(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		used := time.Now().UTC().Truncate(time.Microsecond)
		l := keys.NewLastUsed()
		l.Touch(steward.CredentialAdminAPIKey, f.boot.AdminKey.ID, used)
		failed, cancel := context.WithCancel(context.Background())
		cancel()
		if err := l.Flush(failed, db); err == nil {
			t.Fatal("a flush with a cancelled context succeeded")
		}
		ctx := context.Background()
		if err := l.Flush(ctx, db); err != nil {
			t.Fatal(err)
		}
		var got *int64
		if err := db.View(ctx, func(tx *store.Tx) error {
			return tx.QueryRow(ctx, `SELECT last_used_at FROM admin_api_keys WHERE id = ?`, f.boot.AdminKey.ID).Scan(&got)
		}); err != nil {
			t.Fatal(err)
		}
		if got == nil || *got != store.Micros(used) {
			t.Fatalf("last_used_at = %v, want %d", got, store.Micros(used))
		}
	})
}

// A key created through another process (here a second handle on the same
// database, whose changes this checker never hears of) works at once: the
// checker looks a secret it does not hold up before refusing it. A revoked
// key is refused whether or not it was ever held, and lookups of unknown
// secrets stop for the rest of the second once lookupsPerSecond is spent.
func TestCheckerLooksUpKeysMadeElsewhere(t *testing.T) {
	for _, engine := range storetest.Engines(t) {
		t.Run(engine.Name, func(t *testing.T) {
			ctx := context.Background()
			db, cfg := engine.Open(t)
			other := storetest.OpenAgain(t, cfg)
			f := newFixture(t, db)
			elsewhere := &fixture{db: other, boot: f.boot, owner: f.owner}
			k, secret := elsewhere.newKey(t, f.boot.DefaultWorkspace.ID, "")
			got, err := f.checker.Check(ctx, secret)
			if err != nil || got.ID != k.ID || got.WorkspaceID != f.boot.DefaultWorkspace.ID || got.UserID != f.owner {
				t.Fatalf("Check of a key made elsewhere = %+v, %v; want key %s", got, err, k.ID)
			}
			// A member who joined elsewhere, with a key made there: the
			// checker's view of who may use the Workspace is refreshed too.
			elsewhere.change(t, func(tx *store.Tx) error {
				res, err := directory.CreateMembers(ctx, tx, actor, f.boot.Organization, []directory.NewMember{{Email: "new@example.com"}})
				elsewhere.owner = res.EmailToUserID["new@example.com"]
				return err
			})
			k, secret = elsewhere.newKey(t, f.boot.DefaultWorkspace.ID, "")
			if got, err := f.checker.Check(ctx, secret); err != nil || got.ID != k.ID || got.UserID != elsewhere.owner {
				t.Fatalf("Check of a new member's key made elsewhere = %+v, %v; want key %s", got, err, k.ID)
			}
			_, gone := elsewhere.newKey(t, f.boot.DefaultWorkspace.ID, "")
			elsewhere.change(t, func(tx *store.Tx) error {
				_, err := tx.Exec(ctx, `UPDATE api_keys SET deleted_at = ? WHERE key_hash = ?`, store.Micros(tx.Now), steward.HashToken(gone))
				return err
			})
			refused(t, f.checker, gone, steward.KindUnauthenticated, "")

			now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
			f.checker.Now = func() time.Time { return now }
			for range 30 {
				refused(t, f.checker, gone, steward.KindUnauthenticated, "")
			}
			late, lateSecret := elsewhere.newKey(t, f.boot.DefaultWorkspace.ID, "")
			if _, err := f.checker.Check(ctx, lateSecret); engine.Name == "sqlite" && err == nil {
				t.Fatal("a lookup beyond the second's budget was made")
			}
			now = now.Add(time.Second)
			if got, err := f.checker.Check(ctx, lateSecret); err != nil || got.ID != late.ID {
				t.Fatalf("Check in the next second = %+v, %v; want key %s", got, err, late.ID)
			}
		})
	}
}
