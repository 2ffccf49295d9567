package scim_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/stewardhq/steward/internal/store"
)

type syncRun struct {
	RunID        string          `json:"run_id"`
	Status       string          `json:"status"`
	DryRun       bool            `json:"dry_run"`
	SyncConfig   map[string]bool `json:"sync_config"`
	StartedAt    *string         `json:"started_at"`
	FinishedAt   *string         `json:"finished_at"`
	ErrorMessage *string         `json:"error_message"`
	Summary      *struct {
		Users struct {
			Provision   []struct{ User ref } `json:"provision"`
			Deprovision []struct{ User ref } `json:"deprovision"`
		} `json:"users"`
		Groups struct {
			Create []struct{ Group ref } `json:"create"`
			Update []struct {
				Group    ref    `json:"group"`
				Previous string `json:"previous_groupName"`
			} `json:"update"`
			Delete []struct{ Group ref } `json:"delete"`
		} `json:"groups"`
		Memberships []struct {
			Group        ref   `json:"group"`
			UsersAdded   []ref `json:"users_added"`
			UsersRemoved []ref `json:"users_removed"`
		} `json:"memberships"`
	} `json:"summary"`
}

type ref struct {
	UUID      string `json:"uuid"`
	UserName  string `json:"userName"`
	GroupName string `json:"groupName"`
}

// trigger starts a run under prefix and waits for it to finish.
func (h *harness) trigger(prefix string, body any) syncRun {
	h.t.Helper()
	var started struct {
		RunID string `json:"run_id"`
	}
	h.admin("POST", prefix+"/scim/sync", body).want(h.t, http.StatusAccepted, &started)
	return h.wait(prefix, started.RunID)
}

func (h *harness) wait(prefix, id string) syncRun {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var run syncRun
		h.admin("GET", prefix+"/scim/sync/"+id, nil).want(h.t, 200, &run)
		if run.Status != "PENDING" && run.Status != "RUNNING" {
			return run
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("run %s still %s", id, run.Status)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSyncNeverProvisioned(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		for _, prefix := range []string{"/v1/admin", "/api/admin"} {
			run := h.trigger(prefix, map[string]any{})
			if run.Status != "SUCCESS" || !run.DryRun || run.SyncConfig != nil || run.Summary == nil || run.StartedAt == nil || run.FinishedAt == nil || run.ErrorMessage != nil {
				t.Fatalf("%s: run %+v", prefix, run)
			}
			s := run.Summary
			if len(s.Users.Provision)+len(s.Users.Deprovision)+len(s.Groups.Create)+len(s.Groups.Update)+len(s.Groups.Delete)+len(s.Memberships) != 0 {
				t.Fatalf("a never-provisioned Organization has a plan: %+v", s)
			}
		}
		if n := h.auditCount("organization.scim_sync.trigger"); n != 2 {
			t.Fatalf("%d triggers audited, want 2", n)
		}
		// Validation: a real run needs sync_config, which needs its three flags.
		r := h.admin("POST", "/v1/admin/scim/sync", map[string]any{"dry_run": false})
		if r.status != 422 || !strings.Contains(string(r.body), `"sync_config"`) {
			t.Fatalf("real run without sync_config: %d %s", r.status, r.body)
		}
		r = h.admin("POST", "/v1/admin/scim/sync", map[string]any{"dry_run": false, "sync_config": map[string]any{"sync_users": true, "sync_groups": true}})
		if r.status != 422 || !strings.Contains(string(r.body), `"sync_memberships"`) {
			t.Fatalf("sync_config without sync_memberships: %d %s", r.status, r.body)
		}
		r = h.admin("POST", "/v1/admin/scim/sync", map[string]any{"dry_run": "yes"})
		if r.status != 422 || !strings.Contains(string(r.body), `"dry_run"`) {
			t.Fatalf("dry_run not a boolean: %d %s", r.status, r.body)
		}
		if n := h.auditCount("organization.scim_sync.trigger"); n != 2 {
			t.Fatalf("refused triggers were audited: %d", n)
		}
		h.admin("GET", "/v1/admin/scim/sync/"+uuid.NewString(), nil).want(t, 404, nil)
		h.admin("GET", "/v1/admin/scim/sync/not-a-uuid", nil).want(t, 404, nil)
	})
}

// insertRun writes a run as a process would have left it.
func (h *harness) insertRun(status string, heartbeat time.Time) string {
	h.t.Helper()
	id := uuid.NewString()
	err := h.db.Transact(context.Background(), func(tx *store.Tx) error {
		_, err := tx.Exec(context.Background(), `INSERT INTO scim_sync_runs (id, organization_id, status, dry_run, created_at, heartbeat_at) VALUES (?, ?, ?, TRUE, ?, ?)`,
			id, h.boot.Organization.ID, status, store.Micros(heartbeat), store.Micros(heartbeat))
		return err
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return id
}

func TestSyncOneActiveRunAndRecovery(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		active := h.insertRun("RUNNING", time.Now())
		var conflict struct {
			RunID  string `json:"run_id"`
			Status string `json:"status"`
		}
		h.admin("POST", "/v1/admin/scim/sync", map[string]any{"dry_run": true}).want(t, http.StatusConflict, &conflict)
		if conflict.RunID != active || conflict.Status != "RUNNING" {
			t.Fatalf("409 body %+v, want the active run %s", conflict, active)
		}
		// A restart: the new process fails what the old one left running.
		if err := h.svc.Recover(context.Background()); err != nil {
			t.Fatal(err)
		}
		if h.db.Dialect() == store.Postgres {
			// Other processes may be running theirs: only a lapsed heartbeat counts.
			var run syncRun
			if h.admin("GET", "/v1/admin/scim/sync/"+active, nil).want(t, 200, &run); run.Status != "RUNNING" {
				t.Fatalf("a live run was failed: %+v", run)
			}
		}
		if h.db.Dialect() == store.Postgres {
			// Its process stops renewing the heartbeat.
			if err := h.db.Transact(context.Background(), func(tx *store.Tx) error {
				_, err := tx.Exec(context.Background(), `UPDATE scim_sync_runs SET heartbeat_at = ? WHERE id = ?`, store.Micros(time.Now().Add(-time.Hour)), active)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			if err := h.svc.Recover(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		run := h.wait("/v1/admin", active)
		if run.Status != "FAILED" || run.ErrorMessage == nil || !strings.Contains(*run.ErrorMessage, "interrupted") || run.FinishedAt == nil {
			t.Fatalf("an interrupted run: %+v", run)
		}
		// A new run can start again.
		if run := h.trigger("/v1/admin", map[string]any{}); run.Status != "SUCCESS" {
			t.Fatalf("after recovery: %+v", run)
		}
	})
}

func TestSyncReconciles(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		a := h.createUser("a@example.com")
		b := h.createUser("b@example.com")
		var g scimGroup
		h.scim("POST", "/Groups", map[string]any{"displayName": "Team", "members": []any{map[string]any{"value": a.ID}, map[string]any{"value": b.ID}}}).want(t, 201, &g)
		// Drift: an admin removes a, adds c whom the provider does not know;
		// the provider deactivates b.
		h.admin("DELETE", "/v1/admin/users/"+a.ID, nil).want(t, 200, nil)
		var created struct {
			EmailToUserID map[string]string `json:"email_to_user_id"`
		}
		h.admin("POST", "/v1/admin/users", []any{map[string]any{"email": "c@example.com", "first_name": "C", "last_name": "Local"}}).want(t, 200, &created)
		c := created.EmailToUserID["c@example.com"]
		h.scim("PATCH", "/Users/"+b.ID, map[string]any{"Operations": []any{map[string]any{"op": "replace", "path": "active", "value": false}}}).want(t, 200, nil)

		dry := h.trigger("/v1/admin", map[string]any{"dry_run": true})
		s := dry.Summary
		if dry.Status != "SUCCESS" || s == nil {
			t.Fatalf("dry run %+v", dry)
		}
		if len(s.Users.Provision) != 1 || s.Users.Provision[0].User.UUID != a.ID || s.Users.Provision[0].User.UserName != "a@example.com" {
			t.Fatalf("provision %+v", s.Users.Provision)
		}
		if len(s.Users.Deprovision) != 2 || s.Users.Deprovision[0].User.UUID != b.ID || s.Users.Deprovision[1].User.UUID != c {
			t.Fatalf("deprovision %+v, want b (inactive) and c (unknown), never the admin", s.Users.Deprovision)
		}
		if len(s.Memberships) != 1 || s.Memberships[0].Group.UUID != g.ID || len(s.Memberships[0].UsersAdded) != 1 || s.Memberships[0].UsersAdded[0].UUID != a.ID {
			t.Fatalf("memberships %+v", s.Memberships)
		}
		// The dry run changed nothing.
		h.admin("GET", "/v1/admin/users/"+a.ID, nil).want(t, 404, nil)

		real := h.trigger("/v1/admin", map[string]any{"dry_run": false, "sync_config": map[string]any{
			"sync_users": true, "sync_groups": true, "sync_memberships": true, "deprovision_users": false, "delete_missing_groups": false}})
		if real.Status != "SUCCESS" || real.DryRun || !real.SyncConfig["sync_users"] || len(real.Summary.Users.Provision) != 1 || len(real.Summary.Users.Deprovision) != 0 {
			t.Fatalf("real run %+v", real)
		}
		h.admin("GET", "/v1/admin/users/"+a.ID, nil).want(t, 200, nil)
		h.admin("GET", "/v1/admin/users/"+c, nil).want(t, 200, nil)
		var members struct {
			Total int `json:"total"`
		}
		h.admin("GET", "/v1/admin/user-groups/"+g.ID+"/members", nil).want(t, 200, &members)
		if members.Total != 2 {
			t.Fatalf("the group has %d members after the run, want 2", members.Total)
		}
		// Nothing left to provision; deprovisioning removes b and c.
		again := h.trigger("/v1/admin", map[string]any{"dry_run": false, "sync_config": map[string]any{
			"sync_users": true, "sync_groups": true, "sync_memberships": true, "deprovision_users": true}})
		if again.Status != "SUCCESS" || len(again.Summary.Users.Provision) != 0 || len(again.Summary.Users.Deprovision) != 2 {
			t.Fatalf("second run %+v", again)
		}
		h.admin("GET", "/v1/admin/users/"+b.ID, nil).want(t, 404, nil)
		h.admin("GET", "/v1/admin/users/"+c, nil).want(t, 404, nil)
		h.admin("GET", "/v1/admin/users/"+h.boot.Admin.ID, nil).want(t, 200, nil)
	})
}
