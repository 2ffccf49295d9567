package quota

import (
	"context"
	"time"

	"github.com/stewardhq/steward/internal/audit"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

// The Organization's time zone is the calendar its limits count in: spend
// caps and monthly token limits start again with each of its months, and
// GET /usage and the Admin Panel's analytics show its months and days. It
// is validated, stored and read here.

// MaxTimeZoneLen bounds the name of a time zone: the longest IANA name has
// 32 bytes.
const MaxTimeZoneLen = 64

// TimeZone returns the location an IANA time zone name denotes, for an
// Organization's calendar months. field names the name in the caller's
// input.
func TimeZone(field []string, name string) (*time.Location, error) {
	if name == "" || len(name) > MaxTimeZoneLen || name == "Local" {
		return nil, steward.Invalid(field, "time_zone must be an IANA time zone name, such as UTC or Europe/Paris")
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, steward.Invalid(field, "%q is not an IANA time zone name, such as UTC or Europe/Paris", name)
	}
	return loc, nil
}

// SetTimeZone sets the time zone in which the Organization's calendar
// months start (spend caps, monthly token limits, GET /usage), and audits
// it. The month in progress changes at once: its spend is counted again
// from the new month's start.
func SetTimeZone(ctx context.Context, tx *store.Tx, actor steward.Actor, org steward.Organization, name string) error {
	if _, err := TimeZone([]string{"body", "time_zone"}, name); err != nil {
		return err
	}
	var before string
	if err := tx.QueryRow(ctx, `SELECT time_zone FROM organizations WHERE id = ?`, org.ID).Scan(&before); err != nil {
		return err
	}
	if before == name {
		return nil
	}
	if _, err := tx.Exec(ctx, `UPDATE organizations SET time_zone = ? WHERE id = ?`, name, org.ID); err != nil {
		return err
	}
	limitsChanged(tx, org.ID)
	err := audit.Record(ctx, tx, audit.Entry{EnterpriseAccountID: org.EnterpriseAccountID, OrganizationID: org.ID, Actor: actor,
		EventType: audit.EventOrganizationUpdate, EventMetadata: map[string]string{"time_zone_before": before, "time_zone_after": name},
		TargetType: audit.TargetOrganization, TargetMetadata: map[string]string{"id": org.ID, "name": org.Name}})
	return err
}

// TimeZoneOf returns the time zone of an Organization's calendar months.
func TimeZoneOf(ctx context.Context, tx *store.Tx, orgID string) (*time.Location, error) {
	var zone string
	if err := tx.QueryRow(ctx, `SELECT time_zone FROM organizations WHERE id = ?`, orgID).Scan(&zone); err != nil {
		return nil, err
	}
	return location(zone)
}

// location loads a stored time zone, checked when it was set.
func location(zone string) (*time.Location, error) {
	loc, err := time.LoadLocation(zone)
	if err != nil {
		return nil, steward.Internal(err)
	}
	return loc, nil
}
