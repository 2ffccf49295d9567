// Package alerts watches Organizations' monthly limits and Admin API keys,
// and raises an alert when one needs attention: an audit entry of one of
// Steward's own event types (so that the audit export and webhooks carry
// it), and an e-mail to each of the Organization's admins and billing
// managers. Each alert fires once: a row of alerts_fired, keyed by what the
// alert is about, its period and threshold, is inserted in the transaction
// that writes its entry and e-mails, so that several processes evaluating
// at once fire it once.
package alerts

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/big"
	"slices"
	"strconv"
	"time"

	"github.com/stewardhq/steward/internal/audit"
	"github.com/stewardhq/steward/internal/billing"
	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/outbox"
	"github.com/stewardhq/steward/internal/poll"
	"github.com/stewardhq/steward/internal/quota"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/usage"
)

// Thresholds are the shares of a monthly limit, in percent, whose reaching
// raises an alert.
var Thresholds = []int{50, 80, 100}

// UnusedAfter is how long an Admin API key goes unused, since its last use
// or its creation, before an alert says so.
const UnusedAfter = 90 * 24 * time.Hour

// DefaultInterval is how often steward serve evaluates the alerts.
const DefaultInterval = time.Minute

// Evaluator raises the alerts that are due.
type Evaluator struct {
	DB  *store.DB
	Log *slog.Logger
}

// alert is one alert that is due.
type alert struct {
	orgID string
	// subject, period and threshold name the alert in alerts_fired.
	subject   string
	period    string
	threshold int
	// below are the lower thresholds that the alert covers: reaching 100%
	// at once fires the 100% alert only.
	below []int
	entry audit.Entry
	// subjectLine and body are the e-mail's.
	subjectLine, body string
}

// RunOnce raises the alerts that are due and returns how many it raised.
// Organizations are visited one at a time: those with a monthly spend cap
// or token limit, each read in one query per limited scope; then the
// unused Admin API keys, in one query. An Organization that fails does not
// keep the others' alerts back: its error is returned with the others'
// after every Organization was visited.
func (e *Evaluator) RunOnce(ctx context.Context) (int, error) {
	orgs, err := store.Read(ctx, e.DB, func(tx *store.Tx) ([]string, error) {
		return tx.Strings(ctx, `SELECT id FROM organizations WHERE spend_limit IS NOT NULL
			UNION SELECT organization_id FROM workspaces WHERE spend_limit IS NOT NULL AND archived_at IS NULL
			UNION SELECT organization_id FROM rate_limits WHERE tokens_per_month IS NOT NULL`)
	})
	if err != nil {
		return 0, err
	}
	slices.Sort(orgs)
	fired := 0
	var errs []error
	for _, org := range orgs {
		if ctx.Err() != nil {
			return fired, ctx.Err()
		}
		due, err := store.Read(ctx, e.DB, func(tx *store.Tx) ([]alert, error) { return limitAlerts(ctx, tx, org) })
		if err == nil {
			var n int
			n, err = e.fireAll(ctx, due)
			fired += n
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("alerts of Organization %s: %w", org, err))
		}
	}
	due, err := store.Read(ctx, e.DB, func(tx *store.Tx) ([]alert, error) { return unusedKeyAlerts(ctx, tx) })
	if err == nil {
		var n int
		n, err = e.fireAll(ctx, due)
		fired += n
	}
	return fired, errors.Join(append(errs, err)...)
}

func (e *Evaluator) fireAll(ctx context.Context, due []alert) (int, error) {
	fired := 0
	for _, a := range due {
		ok, err := store.Write(ctx, e.DB, func(tx *store.Tx) (bool, error) { return fire(ctx, tx, a) })
		if err != nil {
			return fired, err
		}
		if ok {
			fired++
		}
	}
	return fired, nil
}

// Run raises due alerts at once and then every interval until ctx ends.
func (e *Evaluator) Run(ctx context.Context, interval time.Duration) {
	poll.New(0).Run(ctx, interval, func() bool {
		if _, err := e.RunOnce(ctx); err != nil && ctx.Err() == nil {
			e.Log.Warn("alerts", "err", err)
		}
		return false
	})
}

// fire records a through tx unless it has fired already, and reports
// whether it fired: the row in alerts_fired, the lower thresholds it covers,
// its audit entry and its e-mails commit together.
func fire(ctx context.Context, tx *store.Tx, a alert) (bool, error) {
	const insert = `INSERT INTO alerts_fired (organization_id, event_type, subject, period, threshold, fired_at)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`
	res, err := tx.Exec(ctx, insert, a.orgID, a.entry.EventType, a.subject, a.period, a.threshold, store.Micros(tx.Now))
	if err != nil {
		return false, err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return false, err
	}
	for _, t := range a.below {
		if _, err := tx.Exec(ctx, insert, a.orgID, a.entry.EventType, a.subject, a.period, t, store.Micros(tx.Now)); err != nil {
			return false, err
		}
	}
	if err := audit.Record(ctx, tx, a.entry); err != nil {
		return false, err
	}
	to, err := Recipients(ctx, tx, a.orgID)
	if err != nil {
		return false, err
	}
	for _, addr := range to {
		if _, err := outbox.Enqueue(ctx, tx, outbox.Message{Kind: "alert", To: addr, Subject: a.subjectLine, Body: a.body}); err != nil {
			return false, err
		}
	}
	return true, nil
}

// Recipients returns the e-mail addresses of the Organization's active
// admins and billing managers, whether they hold the role themselves or
// through a group, in order.
func Recipients(ctx context.Context, tx *store.Tx, orgID string) ([]string, error) {
	return directory.EmailsWithRoles(ctx, tx, orgID, steward.RoleIDOrganizationAdmin, steward.RoleIDOrganizationBilling)
}

// reached returns the highest threshold that used reaches of limit (> 0),
// and the lower ones; 0 when it reaches none. It counts in 128 bits, since
// a spend of up to 10^18 micro-units times 100 overflows int64.
func reached(used, limit int64) (int, []int) {
	u := new(big.Int).Mul(big.NewInt(used), big.NewInt(100))
	for i := len(Thresholds) - 1; i >= 0; i-- {
		if u.Cmp(new(big.Int).Mul(big.NewInt(limit), big.NewInt(int64(Thresholds[i])))) >= 0 {
			return Thresholds[i], Thresholds[:i]
		}
	}
	return 0, nil
}

// units writes micro-units as a decimal number of whole units.
func units(micros int64) string {
	return fmt.Sprintf("%d.%06d", micros/billing.MicrosPerUnit, micros%billing.MicrosPerUnit)
}

// limitAlerts returns the spend and token alerts of orgID that are due and
// have not fired: for the Organization and each Workspace with a monthly
// spend cap or token limit, the highest threshold its use this month (in
// the Organization's time zone) has reached.
func limitAlerts(ctx context.Context, tx *store.Tx, orgID string) ([]alert, error) {
	set, err := quota.Load(ctx, tx, orgID)
	if err != nil {
		return nil, err
	}
	start, end := usage.Month(tx.Now, set.Location)
	period := start.Format("2006-01")
	fired := map[string]bool{}
	err = tx.Each(ctx, `SELECT event_type, subject, threshold FROM alerts_fired WHERE organization_id = ? AND period = ?`,
		[]any{orgID, period}, func(rows *sql.Rows) error {
			var event, subject string
			var t int
			if err := rows.Scan(&event, &subject, &t); err != nil {
				return err
			}
			fired[event+" "+subject+" "+strconv.Itoa(t)] = true
			return nil
		})
	if err != nil {
		return nil, err
	}
	scopes := map[string]bool{"": true}
	for ws := range set.WorkspaceSpends {
		scopes[ws] = true
	}
	for ws, rl := range set.Workspaces {
		for _, t := range rl.Models {
			if t.PerMonth > 0 {
				scopes[ws] = true
			}
		}
	}
	var due []alert
	add := func(s scope, below []int, build func(scope) alert) error {
		a := build(s)
		if fired[a.entry.EventType+" "+a.subject+" "+strconv.Itoa(a.threshold)] {
			return nil
		}
		// Only an alert that fires is worth its scope's name.
		var err error
		if s.workspaceID == "" {
			var org steward.Organization
			org, err = directory.GetOrganization(ctx, tx, orgID)
			s.label = "the Organization " + org.Name
		} else {
			var ws steward.Workspace
			ws, err = directory.GetWorkspace(ctx, tx, orgID, s.workspaceID)
			s.label = "the Workspace " + ws.Name
		}
		if err != nil {
			return err
		}
		a = build(s)
		a.orgID, a.period, a.below = orgID, period, below
		due = append(due, a)
		return nil
	}
	for _, ws := range slices.Sorted(maps.Keys(scopes)) {
		spendCap := set.SpendCapOf(ws)
		tokenLimits := map[string]int64{}
		for model, t := range set.RateLimitsOf(ws).Models {
			if t.PerMonth > 0 {
				tokenLimits[model] = t.PerMonth
			}
		}
		if (spendCap == nil || *spendCap == 0) && len(tokenLimits) == 0 {
			continue
		}
		spent, tokens, err := usage.MonthSpend(ctx, tx, orgID, ws, start, end)
		if err != nil {
			return nil, err
		}
		s := scope{orgID: orgID, workspaceID: ws, period: period}
		if spendCap != nil && *spendCap > 0 {
			if t, below := reached(spent, billing.Micros(*spendCap)); t > 0 {
				if err := add(s, below, func(s scope) alert { return s.spendAlert(t, spent, *spendCap) }); err != nil {
					return nil, err
				}
			}
		}
		for _, model := range slices.Sorted(maps.Keys(tokenLimits)) {
			if t, below := reached(tokens[model], tokenLimits[model]); t > 0 {
				if err := add(s, below, func(s scope) alert { return s.tokensAlert(t, model, tokens[model], tokenLimits[model]) }); err != nil {
					return nil, err
				}
			}
		}
	}
	return due, nil
}

// scope is the Organization (workspaceID "") or a Workspace whose limit an
// alert is about.
type scope struct {
	orgID, workspaceID, period string
	// label names the scope in e-mails.
	label string
}

func (s scope) name() string {
	if s.workspaceID == "" {
		return "organization"
	}
	return "workspace"
}

func (s scope) what() string {
	switch {
	case s.label != "":
		return s.label
	case s.workspaceID == "":
		return "the Organization"
	}
	return "the Workspace " + s.workspaceID
}

func (s scope) entry(event, target string, threshold int, figures map[string]string) audit.Entry {
	meta := map[string]string{
		"scope":        s.name(),
		"workspace_id": s.workspaceID,
		"threshold":    strconv.Itoa(threshold),
		"period":       s.period,
	}
	maps.Copy(meta, figures)
	targetMeta := map[string]string{"organization_id": s.orgID}
	if s.workspaceID != "" {
		targetMeta["workspace_id"] = s.workspaceID
	}
	return audit.Entry{
		OrganizationID: s.orgID,
		WorkspaceID:    s.workspaceID,
		Actor:          steward.SystemActor("alerts"),
		EventType:      event,
		EventMetadata:  meta,
		TargetType:     target,
		TargetMetadata: targetMeta,
	}
}

func (s scope) spendAlert(threshold int, spent, spendCap int64) alert {
	target := audit.TargetMonthlyLimit
	if s.workspaceID != "" {
		target = audit.TargetWorkspaceMonthly
	}
	return alert{
		subject:   s.workspaceID,
		threshold: threshold,
		entry: s.entry(audit.EventLimitSpendReached, target, threshold, map[string]string{
			"spent": units(spent), "spend_limit": strconv.FormatInt(spendCap, 10),
		}),
		subjectLine: fmt.Sprintf("Spend reached %d%% of the monthly limit of %s", threshold, s.what()),
		body: fmt.Sprintf(`The spend of %s in %s has reached %d%% of its monthly limit:
%s of %d.
%s`, s.what(), s.period, threshold, units(spent), spendCap, atLimit(threshold)),
	}
}

func (s scope) tokensAlert(threshold int, model string, used, limit int64) alert {
	return alert{
		subject:   s.workspaceID + "/" + model,
		threshold: threshold,
		entry: s.entry(audit.EventLimitTokensReached, audit.TargetRateLimitRule, threshold, map[string]string{
			"model": model, "tokens": strconv.FormatInt(used, 10), "tokens_per_month": strconv.FormatInt(limit, 10),
		}),
		subjectLine: fmt.Sprintf("Tokens of %s reached %d%% of the monthly limit of %s", model, threshold, s.what()),
		body: fmt.Sprintf(`The tokens of %s used by %s in %s have reached %d%% of its monthly limit:
%d of %d.
%s`, model, s.what(), s.period, threshold, used, limit, atLimit(threshold)),
	}
}

func atLimit(threshold int) string {
	if threshold >= 100 {
		return "\nRequests over the limit are refused until the month ends or the limit is raised.\n"
	}
	return ""
}

// unusedKeyAlerts returns an alert for each active Admin API key not used
// for UnusedAfter since its last use (or its creation, if never used) that
// has not had one since that use.
func unusedKeyAlerts(ctx context.Context, tx *store.Tx) ([]alert, error) {
	cutoff := tx.Now.Add(-UnusedAfter)
	now := store.Micros(tx.Now)
	type key struct {
		id, orgID, name string
		since           int64
		used            bool
	}
	keys, err := store.All(ctx, tx, `SELECT k.id, k.organization_id, k.name, COALESCE(k.last_used_at, k.created_at), k.last_used_at IS NOT NULL
		FROM admin_api_keys k
		WHERE k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > ?) AND COALESCE(k.last_used_at, k.created_at) <= ?
		AND NOT EXISTS (SELECT 1 FROM alerts_fired f WHERE f.organization_id = k.organization_id AND f.event_type = ?
			AND f.subject = k.id AND f.period = CAST(COALESCE(k.last_used_at, k.created_at) AS TEXT))`,
		[]any{now, store.Micros(cutoff), audit.EventAdminAPIKeyUnused}, func(s store.Scanner) (key, error) {
			var k key
			err := s.Scan(&k.id, &k.orgID, &k.name, &k.since, &k.used)
			return k, err
		})
	if err != nil {
		return nil, err
	}
	due := make([]alert, 0, len(keys))
	for _, k := range keys {
		zone, err := quota.TimeZoneOf(ctx, tx, k.orgID)
		if err != nil {
			return nil, err
		}
		since := store.Time(k.since)
		days := int(UnusedAfter / (24 * time.Hour))
		what, field := "last used", "last_used_at"
		if !k.used {
			what, field = "created", "created_at"
		}
		due = append(due, alert{
			orgID:     k.orgID,
			subject:   k.id,
			period:    strconv.FormatInt(k.since, 10),
			threshold: days,
			entry: audit.Entry{
				OrganizationID: k.orgID,
				Actor:          steward.SystemActor("alerts"),
				EventType:      audit.EventAdminAPIKeyUnused,
				EventMetadata: map[string]string{
					"scope": "organization", "workspace_id": "", "threshold": strconv.Itoa(days),
					"period": tx.Now.In(zone).Format("2006-01"), field: since.Format(time.RFC3339),
				},
				TargetType:     audit.TargetAdminAPIKey,
				TargetMetadata: map[string]string{"id": k.id, "name": k.name},
			},
			subjectLine: fmt.Sprintf("Admin API key %s has not been used for %d days", cmp.Or(k.name, k.id), days),
			body: fmt.Sprintf(`The Admin API key %s (%s) was %s on %s and has not been used since.

An unused key is a risk with no use: revoke it if nobody needs it.
`, cmp.Or(k.name, k.id), k.id, what, since.Format("2 January 2006")),
		})
	}
	return due, nil
}
