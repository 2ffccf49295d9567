package usage

import (
	"strings"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/steward"
)

func TestTimeZone(t *testing.T) {
	for _, name := range []string{"UTC", "Europe/Paris", "America/New_York", "Asia/Tokyo", "Pacific/Kiritimati", "Etc/GMT+12"} {
		loc, err := TimeZone([]string{"body", "time_zone"}, name)
		if err != nil || loc.String() != name {
			t.Errorf("TimeZone(%q) = %v, %v", name, loc, err)
		}
	}
	for name, want := range map[string]string{
		"Asia/Kolkata":       "UTC+05:30",
		"Asia/Kathmandu":     "UTC+05:45",
		"America/St_Johns":   "UTC-03:30",
		"Australia/Adelaide": "UTC+10:30",
		"Mars/Olympus_Mons":  "not an IANA time zone name",
		"":                   "must be an IANA time zone name",
		"Local":              "must be an IANA time zone name",
		"../../etc/passwd":   "not an IANA time zone name",
	} {
		_, err := TimeZone([]string{"body", "time_zone"}, name)
		if !steward.IsKind(err, steward.KindInvalid) || !strings.Contains(err.Error(), want) {
			t.Errorf("TimeZone(%q) = %v, want KindInvalid saying %q", name, err, want)
			continue
		}
	}
}

func TestMonth(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	start, end := Month(time.Date(2026, 2, 28, 23, 30, 0, 0, time.UTC), paris)
	if !start.Equal(time.Date(2026, 2, 28, 23, 0, 0, 0, time.UTC)) || !end.Equal(time.Date(2026, 3, 31, 22, 0, 0, 0, time.UTC)) {
		t.Errorf("March in Paris = %v to %v", start.UTC(), end.UTC())
	}
	start, end = Month(time.Date(2026, 12, 31, 23, 59, 0, 0, time.UTC), time.UTC)
	if !start.Equal(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)) || !end.Equal(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("December in UTC = %v to %v", start, end)
	}
}
