package quota

import (
	"strings"
	"testing"

	"github.com/stewardhq/steward/internal/steward"
)

func TestTimeZone(t *testing.T) {
	for _, name := range []string{"UTC", "Europe/Paris", "America/New_York", "Asia/Tokyo", "Pacific/Kiritimati", "Etc/GMT+12", "Asia/Kolkata", "Asia/Kathmandu"} {
		loc, err := TimeZone([]string{"body", "time_zone"}, name)
		if err != nil || loc.String() != name {
			t.Errorf("TimeZone(%q) = %v, %v", name, loc, err)
		}
	}
	for name, want := range map[string]string{
		"Mars/Olympus_Mons": "not an IANA time zone name",
		"":                  "must be an IANA time zone name",
		"Local":             "must be an IANA time zone name",
		"../../etc/passwd":  "not an IANA time zone name",
	} {
		_, err := TimeZone([]string{"body", "time_zone"}, name)
		if !steward.IsKind(err, steward.KindInvalid) || !strings.Contains(err.Error(), want) {
			t.Errorf("TimeZone(%q) = %v, want KindInvalid saying %q", name, err, want)
		}
	}
}
