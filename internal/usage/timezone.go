package usage

import (
	"time"

	"github.com/stewardhq/steward/internal/steward"
)

// MaxTimeZoneLen bounds the name of a time zone: the longest IANA name has
// 32 bytes.
const MaxTimeZoneLen = 64

// zoneChecked is the span over which TimeZone checks a zone's offsets:
// usage older than 2000 cannot exist, and the rules Go knows extend past
// 2100 by repeating the last ones.
var zoneChecked = [2]time.Time{time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)}

// TimeZone returns the location an IANA time zone name denotes, for an
// Organization's calendar months. The rollups count UTC hours, so the zone
// must be a whole number of hours from UTC at every moment from 2000 to
// 2100; a zone such as Asia/Kolkata (UTC+5:30) is refused, with a message
// that says so. field names the name in the caller's input.
func TimeZone(field []string, name string) (*time.Location, error) {
	if name == "" || len(name) > MaxTimeZoneLen || name == "Local" {
		return nil, steward.Invalid(field, "time_zone must be an IANA time zone name, such as UTC or Europe/Paris")
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, steward.Invalid(field, "%q is not an IANA time zone name, such as UTC or Europe/Paris", name)
	}
	for t := zoneChecked[0].In(loc); t.Before(zoneChecked[1]); {
		if _, offset := t.Zone(); offset%3600 != 0 {
			return nil, steward.Invalid(field, "%s is UTC%s on %s: Steward counts usage in whole UTC hours, so an Organization's time zone must be a whole number of hours from UTC",
				name, t.Format("-07:00"), t.Format("2006-01-02"))
		}
		_, end := t.ZoneBounds()
		switch {
		case end.IsZero():
			return loc, nil
		case !end.After(t):
			// Go's rules past the zone's last listed transition can end a
			// period where it starts (on some 31 Decembers); step over it.
			end = t.Add(time.Hour)
		}
		t = end
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
