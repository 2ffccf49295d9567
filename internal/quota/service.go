package quota

import (
	"context"
	"time"

	"github.com/stewardhq/steward/internal/billing"
	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/usage"
)

// Service is an Organization's limits, and the usage read in its calendar
// and against its caps, as the surfaces (Admin API, web pages) read and
// change them: each method is one transaction, a read-only one for reads,
// and a change writes its audit entry in it. Its errors are those of the
// function of the same name, which takes the caller's Tx; a change also
// returns KindNotFound if the Organization does not exist.
type Service struct {
	db *store.DB
}

// NewService returns the limits over db.
func NewService(db *store.DB) *Service { return &Service{db: db} }

// Spend is a scope's (the Organization's or one of its Workspaces') monthly
// spend cap and what it spent in a calendar month.
type Spend struct {
	// Cap is in whole currency units; nil for none.
	Cap *int64
	// Spent is in micro-units.
	Spent int64
}

// Reached reports whether the spend has reached the cap: a cap of 0 is
// reached at once.
func (s Spend) Reached() bool { return s.Cap != nil && s.Spent >= billing.Micros(*s.Cap) }

// spendIn returns what a scope spent in the calendar month of the
// Organization's time zone holding t, against its cap in set.
func spendIn(ctx context.Context, tx *store.Tx, set Settings, orgID, workspaceID string, t time.Time) (Spend, error) {
	start, end := usage.Month(t, set.Location)
	spent, _, err := usage.MonthSpend(ctx, tx, orgID, workspaceID, start, end)
	return Spend{Cap: set.SpendCapOf(workspaceID), Spent: spent}, err
}

// organizationSpend returns the Organization's cap and its spend this month,
// in its time zone.
func organizationSpend(ctx context.Context, tx *store.Tx, orgID string) (Spend, error) {
	set, err := Load(ctx, tx, orgID)
	if err != nil {
		return Spend{}, err
	}
	return spendIn(ctx, tx, set, orgID, "", tx.Now)
}

// rateLimitsOf returns the rate limits of the Organization (workspaceID
// "") or of one of its Workspaces, archived or not (KindNotFound if it has
// none such).
func rateLimitsOf(ctx context.Context, tx *store.Tx, orgID, workspaceID string) (RateLimits, error) {
	if workspaceID != "" {
		if _, err := directory.GetWorkspace(ctx, tx, orgID, workspaceID); err != nil {
			return RateLimits{}, err
		}
	}
	set, err := Load(ctx, tx, orgID)
	return set.RateLimitsOf(workspaceID), err
}

// RateLimits returns the rate limits of the Organization (workspaceID "")
// or of one of its Workspaces.
func (s *Service) RateLimits(ctx context.Context, orgID, workspaceID string) (RateLimits, error) {
	return store.Read(ctx, s.db, func(tx *store.Tx) (RateLimits, error) { return rateLimitsOf(ctx, tx, orgID, workspaceID) })
}

// SetRateLimits replaces the rate limits of the Organization or of one of
// its active Workspaces, and returns them as stored.
func (s *Service) SetRateLimits(ctx context.Context, actor steward.Actor, orgID, workspaceID string, rl RateLimits) (RateLimits, error) {
	return directory.Change(ctx, s.db, orgID, func(tx *store.Tx, org steward.Organization) (RateLimits, error) {
		if err := SetRateLimits(ctx, tx, actor, org, workspaceID, rl); err != nil {
			return RateLimits{}, err
		}
		return rateLimitsOf(ctx, tx, org.ID, workspaceID)
	})
}

// SetModelLimits sets or removes one model's token limits of the
// Organization or of one of its active Workspaces.
func (s *Service) SetModelLimits(ctx context.Context, actor steward.Actor, orgID, workspaceID, model string, perMinute, perMonth *int64) error {
	return directory.InOrganization(ctx, s.db, orgID, func(tx *store.Tx, org steward.Organization) error {
		return SetModelLimits(ctx, tx, actor, org, workspaceID, model, perMinute, perMonth)
	})
}

// SetLimits sets the spend cap and the request rate of the Organization or
// of one of its active Workspaces, changing only what differs.
func (s *Service) SetLimits(ctx context.Context, actor steward.Actor, orgID, workspaceID string, spendCap, requestsPerSecond *int64) error {
	return directory.InOrganization(ctx, s.db, orgID, func(tx *store.Tx, org steward.Organization) error {
		return SetLimits(ctx, tx, actor, org, workspaceID, spendCap, requestsPerSecond)
	})
}

// SpendLimit returns the Organization's spend cap and its spend in its
// current month.
func (s *Service) SpendLimit(ctx context.Context, orgID string) (Spend, error) {
	return store.Read(ctx, s.db, func(tx *store.Tx) (Spend, error) { return organizationSpend(ctx, tx, orgID) })
}

// SetSpendLimit sets (0 ≤ amount ≤ MaxAmount) or removes (nil) the
// Organization's spend cap, and returns its SpendLimit after the change.
func (s *Service) SetSpendLimit(ctx context.Context, actor steward.Actor, orgID string, amount *int64) (Spend, error) {
	return directory.Change(ctx, s.db, orgID, func(tx *store.Tx, org steward.Organization) (Spend, error) {
		if err := SetSpendCap(ctx, tx, actor, org, "", amount); err != nil {
			return Spend{}, err
		}
		return organizationSpend(ctx, tx, org.ID)
	})
}

// SetSpendCap sets or removes the spend cap of the Organization or of one
// of its active Workspaces.
func (s *Service) SetSpendCap(ctx context.Context, actor steward.Actor, orgID, workspaceID string, amount *int64) error {
	return directory.InOrganization(ctx, s.db, orgID, func(tx *store.Tx, org steward.Organization) error {
		return SetSpendCap(ctx, tx, actor, org, workspaceID, amount)
	})
}

// TimeZone returns the time zone of the Organization's calendar months.
func (s *Service) TimeZone(ctx context.Context, orgID string) (*time.Location, error) {
	return store.Read(ctx, s.db, func(tx *store.Tx) (*time.Location, error) { return TimeZoneOf(ctx, tx, orgID) })
}

// zoned is an Organization with the time zone of its calendar months.
type zoned struct {
	org  steward.Organization
	zone *time.Location
}

func zonedOrganization(ctx context.Context, tx *store.Tx, orgID string) (zoned, error) {
	org, err := directory.GetOrganization(ctx, tx, orgID)
	if err != nil {
		return zoned{}, err
	}
	zone, err := TimeZoneOf(ctx, tx, orgID)
	return zoned{org, zone}, err
}

// Organization returns the Organization and the time zone of its calendar
// months.
func (s *Service) Organization(ctx context.Context, orgID string) (steward.Organization, *time.Location, error) {
	z, err := store.Read(ctx, s.db, func(tx *store.Tx) (zoned, error) { return zonedOrganization(ctx, tx, orgID) })
	return z.org, z.zone, err
}

// SetTimeZone sets the time zone of the Organization's calendar months, and
// returns the Organization and its time zone after the change.
func (s *Service) SetTimeZone(ctx context.Context, actor steward.Actor, orgID, name string) (steward.Organization, *time.Location, error) {
	z, err := directory.Change(ctx, s.db, orgID, func(tx *store.Tx, org steward.Organization) (zoned, error) {
		if err := SetTimeZone(ctx, tx, actor, org, name); err != nil {
			return zoned{}, err
		}
		return zonedOrganization(ctx, tx, org.ID)
	})
	return z.org, z.zone, err
}

// Settings returns every limit of the Organization.
func (s *Service) Settings(ctx context.Context, orgID string) (Settings, error) {
	return store.Read(ctx, s.db, func(tx *store.Tx) (Settings, error) { return Load(ctx, tx, orgID) })
}

// Standing is where a scope stands: its rate limits, and its spend cap
// against what it spent this month.
type Standing struct {
	RateLimits RateLimits
	Spend      Spend
}

// Standing returns where the Organization (workspaceID "") or one of its
// Workspaces stands, this month being a calendar month of the
// Organization's time zone, as its caps count it.
func (s *Service) Standing(ctx context.Context, orgID, workspaceID string) (Standing, error) {
	return store.Read(ctx, s.db, func(tx *store.Tx) (Standing, error) {
		set, err := Load(ctx, tx, orgID)
		if err != nil {
			return Standing{}, err
		}
		spend, err := spendIn(ctx, tx, set, orgID, workspaceID, tx.Now)
		return Standing{RateLimits: set.RateLimitsOf(workspaceID), Spend: spend}, err
	})
}

// MonthUsage is what a scope used in one calendar month.
type MonthUsage struct {
	// Start and End bound the month, in its time zone.
	Start, End time.Time
	// Now is when the usage was read.
	Now time.Time
	// Days are the usage per day and model, days without usage left out.
	Days []usage.DayModel
}

// UsageMonth returns the usage of the Organization (workspaceID "") or of
// one of its Workspaces, archived or not (KindNotFound if it has none
// such), in a calendar month of its time zone: month (1 to 12) of year, or
// of this year and month where they are 0.
func (s *Service) UsageMonth(ctx context.Context, orgID, workspaceID string, year, month int) (MonthUsage, error) {
	return store.Read(ctx, s.db, func(tx *store.Tx) (MonthUsage, error) {
		if workspaceID != "" {
			if _, err := directory.GetWorkspace(ctx, tx, orgID, workspaceID); err != nil {
				return MonthUsage{}, err
			}
		}
		loc, err := TimeZoneOf(ctx, tx, orgID)
		if err != nil {
			return MonthUsage{}, err
		}
		return monthUsage(ctx, tx, orgID, workspaceID, year, month, loc)
	})
}

// monthUsage returns a scope's usage in month (1 to 12) of year in zone,
// or in the year and month of zone that hold tx.Now where they are 0.
func monthUsage(ctx context.Context, tx *store.Tx, orgID, workspaceID string, year, month int, zone *time.Location) (MonthUsage, error) {
	now := tx.Now.In(zone)
	if year == 0 {
		year = now.Year()
	}
	if month == 0 {
		month = int(now.Month())
	}
	out := MonthUsage{Now: tx.Now}
	out.Start, out.End = usage.Month(time.Date(year, time.Month(month), 1, 0, 0, 0, 0, zone), zone)
	var err error
	out.Days, err = usage.MonthByModelDay(ctx, tx, orgID, workspaceID, out.Start, zone)
	return out, err
}
