package scim

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/stewardhq/steward/internal/audit"
	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

// Run statuses, as Mistral's ScimSyncRunStatus spells them.
const (
	StatusPending = "PENDING"
	StatusRunning = "RUNNING"
	StatusSuccess = "SUCCESS"
	StatusFailed  = "FAILED"
)

// SyncConfig selects what a run applies (Mistral's AdminScimSyncConfig).
type SyncConfig struct {
	DeleteMissingGroups bool `json:"delete_missing_groups"`
	DeprovisionUsers    bool `json:"deprovision_users"`
	SyncUsers           bool `json:"sync_users"`
	SyncGroups          bool `json:"sync_groups"`
	SyncMemberships     bool `json:"sync_memberships"`
}

// UserRef, GroupRef and the actions below are Mistral's summary objects.
type UserRef struct {
	UUID     string `json:"uuid"`
	UserName string `json:"userName"`
}

type GroupRef struct {
	UUID      string `json:"uuid"`
	GroupName string `json:"groupName"`
}

type UserAction struct {
	User UserRef `json:"user"`
}

type GroupAction struct {
	Group GroupRef `json:"group"`
}

type GroupUpdate struct {
	Group             GroupRef `json:"group"`
	PreviousGroupName string   `json:"previous_groupName"`
}

type MembershipAction struct {
	Group        GroupRef  `json:"group"`
	UsersAdded   []UserRef `json:"users_added"`
	UsersRemoved []UserRef `json:"users_removed"`
}

// Summary is what a run would change (a dry run) or changed (Mistral's
// ScimSyncSummaryOut).
type Summary struct {
	Users struct {
		Provision   []UserAction `json:"provision"`
		Deprovision []UserAction `json:"deprovision"`
	} `json:"users"`
	Groups struct {
		Create []GroupAction `json:"create"`
		Update []GroupUpdate `json:"update"`
		Delete []GroupAction `json:"delete"`
	} `json:"groups"`
	Memberships []MembershipAction `json:"memberships"`
}

func emptySummary() Summary {
	var s Summary
	s.Users.Provision, s.Users.Deprovision = []UserAction{}, []UserAction{}
	s.Groups.Create, s.Groups.Update, s.Groups.Delete = []GroupAction{}, []GroupUpdate{}, []GroupAction{}
	s.Memberships = []MembershipAction{}
	return s
}

// Run is one sync run.
type Run struct {
	ID             string
	OrganizationID string
	Status         string
	DryRun         bool
	Config         *SyncConfig
	Summary        *Summary
	ErrorMessage   *string
	CreatedAt      time.Time
	StartedAt      *time.Time
	FinishedAt     *time.Time
}

// ActiveRunError is a trigger refused because another run is active.
type ActiveRunError struct{ Run Run }

func (e *ActiveRunError) Error() string { return "SCIM sync run " + e.Run.ID + " is already active" }

// Trigger creates a run, audits it as organization.scim_sync.trigger and
// starts it in the background. A real run (not dryRun) needs cfg. While
// another run of the Organization is PENDING or RUNNING, it returns an
// *ActiveRunError naming that run; KindNotFound if the Organization does
// not exist.
func (s *Service) Trigger(ctx context.Context, actor steward.Actor, orgID string, dryRun bool, cfg *SyncConfig) (Run, error) {
	if !dryRun && cfg == nil {
		return Run{}, steward.Invalid([]string{"body", "sync_config"}, "sync_config is required when dry_run is false")
	}
	run := Run{ID: uuid.NewString(), OrganizationID: orgID, Status: StatusPending, DryRun: dryRun, Config: cfg}
	var org steward.Organization
	err := s.db.Transact(ctx, func(tx *store.Tx) error {
		var err error
		if org, err = directory.GetOrganization(ctx, tx, orgID); err != nil {
			return err
		}
		if err := s.failAbandoned(ctx, tx, org.ID); err != nil {
			return err
		}
		active, err := s.activeRun(ctx, tx, org.ID)
		if err != nil {
			return err
		}
		if active != nil {
			return &ActiveRunError{Run: *active}
		}
		run.CreatedAt = tx.Now
		var config any
		if cfg != nil {
			b, _ := json.Marshal(cfg)
			config = string(b)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO scim_sync_runs (id, organization_id, status, dry_run, sync_config, created_at, heartbeat_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			run.ID, org.ID, StatusPending, dryRun, config, store.Micros(tx.Now), store.Micros(tx.Now)); err != nil {
			if steward.IsKind(store.Translate(err), steward.KindConflict) {
				if active, aerr := s.activeRun(ctx, tx, org.ID); aerr == nil && active != nil {
					return &ActiveRunError{Run: *active}
				}
			}
			return err
		}
		meta := map[string]string{"run_id": run.ID, "dry_run": boolString(dryRun)}
		if cfg != nil {
			meta["sync_users"], meta["sync_groups"], meta["sync_memberships"] = boolString(cfg.SyncUsers), boolString(cfg.SyncGroups), boolString(cfg.SyncMemberships)
			meta["deprovision_users"], meta["delete_missing_groups"] = boolString(cfg.DeprovisionUsers), boolString(cfg.DeleteMissingGroups)
		}
		err = audit.Record(ctx, tx, audit.Entry{EnterpriseAccountID: org.EnterpriseAccountID, OrganizationID: org.ID, Actor: actor,
			EventType: audit.EventSCIMSyncTrigger, EventMetadata: meta,
			TargetType: audit.TargetOrganization, TargetMetadata: map[string]string{"id": org.ID, "name": org.Name}})
		return err
	})
	if err != nil {
		return Run{}, err
	}
	s.runs.Go(func() { s.execute(org, actor, run) })
	return run, nil
}

func boolString(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

const runColumns = `id, organization_id, status, dry_run, sync_config, summary, error_message, created_at, started_at, finished_at`

func scanRun(row interface{ Scan(...any) error }) (Run, error) {
	var r Run
	var config, summary, message *string
	var created int64
	var started, finished *int64
	if err := row.Scan(&r.ID, &r.OrganizationID, &r.Status, &r.DryRun, &config, &summary, &message, &created, &started, &finished); err != nil {
		return r, err
	}
	r.ErrorMessage, r.CreatedAt = message, store.Time(created)
	if started != nil {
		t := store.Time(*started)
		r.StartedAt = &t
	}
	if finished != nil {
		t := store.Time(*finished)
		r.FinishedAt = &t
	}
	if config != nil {
		r.Config = &SyncConfig{}
		if err := json.Unmarshal([]byte(*config), r.Config); err != nil {
			return r, err
		}
	}
	if summary != nil {
		r.Summary = &Summary{}
		if err := json.Unmarshal([]byte(*summary), r.Summary); err != nil {
			return r, err
		}
	}
	return r, nil
}

func (s *Service) activeRun(ctx context.Context, tx *store.Tx, orgID string) (*Run, error) {
	r, err := scanRun(tx.QueryRow(ctx, `SELECT `+runColumns+` FROM scim_sync_runs WHERE organization_id = ? AND status IN ('PENDING', 'RUNNING')`, orgID))
	if steward.IsKind(store.Translate(err), steward.KindNotFound) {
		return nil, nil
	}
	return &r, err
}

// GetRun returns a run of the Organization, or a KindNotFound error.
func (s *Service) GetRun(ctx context.Context, orgID, id string) (Run, error) {
	if _, err := uuid.Parse(id); err != nil {
		return Run{}, noRun(id)
	}
	var r Run
	err := s.db.Transact(ctx, func(tx *store.Tx) error {
		if err := s.failAbandoned(ctx, tx, orgID); err != nil {
			return err
		}
		var err error
		r, err = scanRun(tx.QueryRow(ctx, `SELECT `+runColumns+` FROM scim_sync_runs WHERE organization_id = ? AND id = ?`, orgID, id))
		if steward.IsKind(store.Translate(err), steward.KindNotFound) {
			return noRun(id)
		}
		return err
	})
	return r, err
}

func noRun(id string) error {
	return steward.Errorf(steward.KindNotFound, "no SCIM sync run %s in this Organization", id)
}

// abandonedMessage is the error of a run whose process stopped.
const abandonedMessage = "the run was interrupted: the Steward process running it stopped (restart or crash) before it finished; trigger a new run"

// failAbandoned ends as FAILED the active runs (of one Organization, or all
// when orgID is empty) whose heartbeat is older than the lease.
func (s *Service) failAbandoned(ctx context.Context, tx *store.Tx, orgID string) error {
	q := `UPDATE scim_sync_runs SET status = 'FAILED', error_message = ?, finished_at = ? WHERE status IN ('PENDING', 'RUNNING') AND heartbeat_at < ?`
	args := []any{abandonedMessage, store.Micros(tx.Now), store.Micros(tx.Now.Add(-s.Lease))}
	if orgID != "" {
		q += ` AND organization_id = ?`
		args = append(args, orgID)
	}
	_, err := tx.Exec(ctx, q, args...)
	return err
}

// Recover runs when a process starts: it ends as FAILED every run that a
// stopped process left PENDING or RUNNING. On SQLite, which only one
// process serves, that is every active run; on PostgreSQL, where other
// processes may be running theirs, it is those whose heartbeat lapsed
// (the others are failed by the next read once theirs does).
func (s *Service) Recover(ctx context.Context) error {
	return s.db.Transact(ctx, func(tx *store.Tx) error {
		if tx.Dialect() == store.SQLite {
			_, err := tx.Exec(ctx, `UPDATE scim_sync_runs SET status = 'FAILED', error_message = ?, finished_at = ? WHERE status IN ('PENDING', 'RUNNING')`,
				abandonedMessage, store.Micros(tx.Now))
			return err
		}
		return s.failAbandoned(ctx, tx, "")
	})
}

// execute carries a run out: it builds the plan, applies the selected
// categories unless it is a dry run, and records the outcome. The
// heartbeat is renewed while it works.
func (s *Service) execute(org steward.Organization, actor steward.Actor, run Run) {
	ctx := s.ctx
	stop := make(chan struct{})
	defer close(stop)
	go s.heartbeat(run.ID, stop)
	err := s.db.Transact(ctx, func(tx *store.Tx) error {
		_, err := tx.Exec(ctx, `UPDATE scim_sync_runs SET status = 'RUNNING', started_at = ?, heartbeat_at = ? WHERE id = ? AND status = 'PENDING'`,
			store.Micros(tx.Now), store.Micros(tx.Now), run.ID)
		return err
	})
	var summary Summary
	if err == nil {
		err = s.db.Transact(ctx, func(tx *store.Tx) error {
			p, err := buildPlan(ctx, tx, org.ID)
			if err != nil {
				return err
			}
			if run.DryRun {
				summary = p.summary(nil)
				return nil
			}
			summary = p.summary(run.Config)
			return p.apply(ctx, tx, actor, org, *run.Config)
		})
	}
	finish := func(tx *store.Tx) error {
		if err != nil {
			msg := "the run failed: " + failure(err)
			_, uerr := tx.Exec(ctx, `UPDATE scim_sync_runs SET status = 'FAILED', error_message = ?, finished_at = ? WHERE id = ? AND status IN ('PENDING', 'RUNNING')`,
				msg, store.Micros(tx.Now), run.ID)
			return uerr
		}
		b, _ := json.Marshal(summary)
		_, uerr := tx.Exec(ctx, `UPDATE scim_sync_runs SET status = 'SUCCESS', summary = ?, finished_at = ? WHERE id = ? AND status IN ('PENDING', 'RUNNING')`,
			string(b), store.Micros(tx.Now), run.ID)
		return uerr
	}
	if ferr := s.db.Transact(context.WithoutCancel(ctx), finish); ferr != nil {
		s.log.Error("record the end of a SCIM sync run", "run_id", run.ID, "err", ferr)
	}
}

// failure is the client-safe reason a run failed.
func failure(err error) string {
	var e *steward.Error
	switch {
	case errors.Is(err, context.Canceled):
		return "Steward shut down before the run finished"
	case errors.As(err, &e) && e.Kind != steward.KindInternal:
		return e.Message
	}
	return "internal error"
}

// heartbeatEvery is how often a running run renews its heartbeat.
func (s *Service) heartbeatEvery() time.Duration { return max(s.Lease/4, time.Millisecond) }

func (s *Service) heartbeat(id string, stop <-chan struct{}) {
	t := time.NewTicker(s.heartbeatEvery())
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			_ = s.db.Transact(context.Background(), func(tx *store.Tx) error {
				_, err := tx.Exec(context.Background(), `UPDATE scim_sync_runs SET heartbeat_at = ? WHERE id = ? AND status IN ('PENDING', 'RUNNING')`,
					store.Micros(tx.Now), id)
				return err
			})
		}
	}
}

// plan is the difference between the Organization and what its identity
// provider last pushed.
type plan struct {
	provision   []UserRef // active in the provider; not a member, or deactivated
	deprovision []UserRef // members the provider says are inactive, or does not know
	create      []GroupRef
	update      []GroupUpdate
	remove      []GroupRef
	memberships []MembershipAction
	emails      map[string]scimPerson
	deactivated map[string]bool
	members     map[string]bool
}

type scimPerson struct{ address, given, family string }

func buildPlan(ctx context.Context, tx *store.Tx, orgID string) (*plan, error) {
	p := &plan{emails: map[string]scimPerson{}}
	type su struct {
		ref    UserRef
		active bool
	}
	pushed := map[string]su{}
	err := tx.Each(ctx, `SELECT user_id, user_name, email, given_name, family_name, active FROM scim_users WHERE organization_id = ? ORDER BY user_name_lower`, []any{orgID}, func(sc *sql.Rows) error {
		var u su
		var email, given, family string
		if err := sc.Scan(&u.ref.UUID, &u.ref.UserName, &email, &given, &family, &u.active); err != nil {
			return err
		}
		if email == "" {
			email = u.ref.UserName
		}
		pushed[u.ref.UUID] = u
		p.emails[u.ref.UUID] = scimPerson{email, given, family}
		return nil
	})
	if err != nil {
		return nil, err
	}
	groupsPushed := map[string]string{}
	err = tx.Each(ctx, `SELECT group_id, display_name FROM scim_groups WHERE organization_id = ?`, []any{orgID}, func(sc *sql.Rows) error {
		var id, name string
		err := sc.Scan(&id, &name)
		groupsPushed[id] = name
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(pushed) == 0 && len(groupsPushed) == 0 {
		// Never provisioned: nothing to reconcile.
		return p, nil
	}
	if p.members, err = organizationMembers(ctx, tx, orgID); err != nil {
		return nil, err
	}
	if p.deactivated, err = directory.DeactivatedMembers(ctx, tx, orgID); err != nil {
		return nil, err
	}
	for _, u := range pushed {
		if u.active && (!p.members[u.ref.UUID] || p.deactivated[u.ref.UUID]) {
			p.provision = append(p.provision, u.ref)
		}
	}
	admins := map[string]bool{}
	if err := tx.Each(ctx, `SELECT user_id FROM organization_member_roles WHERE organization_id = ? AND role_id = ?`, []any{orgID, steward.RoleIDOrganizationAdmin}, func(sc *sql.Rows) error {
		var id string
		err := sc.Scan(&id)
		admins[id] = true
		return err
	}); err != nil {
		return nil, err
	}
	emails := map[string]string{}
	if err := tx.Each(ctx, `SELECT u.id, u.email FROM organization_members m JOIN users u ON u.id = m.user_id WHERE m.organization_id = ?`, []any{orgID}, func(sc *sql.Rows) error {
		var id, email string
		err := sc.Scan(&id, &email)
		emails[id] = email
		return err
	}); err != nil {
		return nil, err
	}
	for id := range p.members {
		u, known := pushed[id]
		switch {
		case known && !u.active:
			p.deprovision = append(p.deprovision, u.ref)
		case !known && !admins[id]:
			// A member the provider does not know; an Organization admin
			// (the break-glass account) is never deprovisioned for that.
			p.deprovision = append(p.deprovision, UserRef{UUID: id, UserName: emails[id]})
		}
	}
	local := map[string]string{}
	if err := tx.Each(ctx, `SELECT id, name FROM user_groups WHERE organization_id = ? AND externally_managed`, []any{orgID}, func(sc *sql.Rows) error {
		var id, name string
		err := sc.Scan(&id, &name)
		local[id] = name
		return err
	}); err != nil {
		return nil, err
	}
	for id, name := range groupsPushed {
		current, exists := local[id]
		switch {
		case !exists:
			p.create = append(p.create, GroupRef{id, name})
		case current != name:
			p.update = append(p.update, GroupUpdate{Group: GroupRef{id, name}, PreviousGroupName: current})
		}
	}
	for id, name := range local {
		if _, ok := groupsPushed[id]; !ok {
			p.remove = append(p.remove, GroupRef{id, name})
		}
	}
	want, have := map[string][]string{}, map[string][]string{}
	if err := tx.Each(ctx, `SELECT m.group_id, m.user_id FROM scim_group_members m JOIN scim_groups g ON g.group_id = m.group_id WHERE g.organization_id = ?`, []any{orgID}, func(sc *sql.Rows) error {
		var g, u string
		err := sc.Scan(&g, &u)
		want[g] = append(want[g], u)
		return err
	}); err != nil {
		return nil, err
	}
	if err := tx.Each(ctx, `SELECT m.group_id, m.user_id FROM user_group_members m JOIN user_groups g ON g.id = m.group_id WHERE g.organization_id = ? AND g.externally_managed`, []any{orgID}, func(sc *sql.Rows) error {
		var g, u string
		err := sc.Scan(&g, &u)
		have[g] = append(have[g], u)
		return err
	}); err != nil {
		return nil, err
	}
	willBeMember := func(id string) bool {
		return p.members[id] || slices.ContainsFunc(p.provision, func(r UserRef) bool { return r.UUID == id })
	}
	ref := func(id string) UserRef {
		if u, ok := pushed[id]; ok {
			return u.ref
		}
		return UserRef{UUID: id, UserName: emails[id]}
	}
	for id, name := range groupsPushed {
		m := MembershipAction{Group: GroupRef{id, name}, UsersAdded: []UserRef{}, UsersRemoved: []UserRef{}}
		for _, u := range want[id] {
			if !slices.Contains(have[id], u) && willBeMember(u) {
				m.UsersAdded = append(m.UsersAdded, ref(u))
			}
		}
		for _, u := range have[id] {
			if !slices.Contains(want[id], u) {
				m.UsersRemoved = append(m.UsersRemoved, ref(u))
			}
		}
		if len(m.UsersAdded)+len(m.UsersRemoved) > 0 {
			p.memberships = append(p.memberships, m)
		}
	}
	p.sort()
	return p, nil
}

func (p *plan) sort() {
	byUser := func(s []UserRef) {
		sort.Slice(s, func(i, j int) bool { return strings.ToLower(s[i].UserName) < strings.ToLower(s[j].UserName) })
	}
	byGroup := func(s []GroupRef) {
		sort.Slice(s, func(i, j int) bool { return strings.ToLower(s[i].GroupName) < strings.ToLower(s[j].GroupName) })
	}
	byUser(p.provision)
	byUser(p.deprovision)
	byGroup(p.create)
	byGroup(p.remove)
	sort.Slice(p.update, func(i, j int) bool { return p.update[i].Group.GroupName < p.update[j].Group.GroupName })
	sort.Slice(p.memberships, func(i, j int) bool { return p.memberships[i].Group.GroupName < p.memberships[j].Group.GroupName })
	for _, m := range p.memberships {
		byUser(m.UsersAdded)
		byUser(m.UsersRemoved)
	}
}

// summary reports the plan: all of it (cfg nil, a dry run), or the
// categories cfg selects.
func (p *plan) summary(cfg *SyncConfig) Summary {
	all := cfg == nil
	s := emptySummary()
	for _, u := range p.provision {
		if all || cfg.SyncUsers {
			s.Users.Provision = append(s.Users.Provision, UserAction{u})
		}
	}
	for _, u := range p.deprovision {
		if all || cfg.DeprovisionUsers {
			s.Users.Deprovision = append(s.Users.Deprovision, UserAction{u})
		}
	}
	for _, g := range p.create {
		if all || cfg.SyncGroups {
			s.Groups.Create = append(s.Groups.Create, GroupAction{g})
		}
	}
	for _, g := range p.update {
		if all || cfg.SyncGroups {
			s.Groups.Update = append(s.Groups.Update, g)
		}
	}
	for _, g := range p.remove {
		if all || cfg.DeleteMissingGroups {
			s.Groups.Delete = append(s.Groups.Delete, GroupAction{g})
		}
	}
	if all || cfg.SyncMemberships {
		s.Memberships = append(s.Memberships, p.memberships...)
	}
	return s
}

// apply makes the changes of the categories cfg selects.
func (p *plan) apply(ctx context.Context, tx *store.Tx, actor steward.Actor, org steward.Organization, cfg SyncConfig) error {
	if cfg.SyncUsers {
		for _, u := range p.provision {
			if p.members[u.UUID] {
				if err := directory.SetMemberActive(ctx, tx, actor, org, u.UUID, true); err != nil {
					return err
				}
				continue
			}
			who := p.emails[u.UUID]
			if _, err := directory.CreateMembers(ctx, tx, actor, org, []directory.NewMember{{Email: who.address, FirstName: who.given, LastName: who.family}}); err != nil {
				return err
			}
		}
	}
	if cfg.DeprovisionUsers {
		for _, u := range p.deprovision {
			if err := directory.RemoveMember(ctx, tx, actor, org, u.UUID); err != nil {
				return err
			}
		}
	}
	if cfg.SyncGroups {
		for _, g := range p.create {
			if _, err := directory.CreateExternalGroup(ctx, tx, actor, org, g.UUID, g.GroupName, ""); err != nil {
				return err
			}
		}
		for _, g := range p.update {
			if err := directory.RenameExternalGroup(ctx, tx, actor, org, g.Group.UUID, g.Group.GroupName); err != nil {
				return err
			}
		}
	}
	if cfg.DeleteMissingGroups {
		for _, g := range p.remove {
			if err := directory.DeleteExternalGroup(ctx, tx, actor, org, g.UUID); err != nil {
				return err
			}
		}
	}
	if cfg.SyncMemberships {
		for _, m := range p.memberships {
			if _, err := directory.GetGroup(ctx, tx, org.ID, m.Group.UUID); steward.IsKind(err, steward.KindNotFound) {
				continue // a group this run was not allowed to create
			}
			if err := applyGroupMembers(ctx, tx, actor, org, m.Group.UUID, ids(m.UsersAdded), ids(m.UsersRemoved)); err != nil {
				return err
			}
		}
	}
	return nil
}

func ids(refs []UserRef) []string {
	out := make([]string, len(refs))
	for i, r := range refs {
		out[i] = r.UUID
	}
	return out
}

// scanner is a row to scan: *sql.Row or *sql.Rows.
type scanner interface{ Scan(...any) error }
