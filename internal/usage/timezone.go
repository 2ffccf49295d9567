package usage

import (
	"time"

	"github.com/stewardhq/steward/internal/steward"
)

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

// Month returns the calendar month holding t in loc: its first instant and
// the first instant of the next month.
func Month(t time.Time, loc *time.Location) (time.Time, time.Time) {
	y, m, _ := t.In(loc).Date()
	start := time.Date(y, m, 1, 0, 0, 0, 0, loc)
	return start, start.AddDate(0, 1, 0)
}
