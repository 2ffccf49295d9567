package usage

import (
	"context"
	"math/rand/v2"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
)

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

// In every zone, whole-hour offsets or not, a month's days and its spend
// equal the sums of the raw events that fall in them.
func TestMonthsInAnyZoneAreExact(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		rng := rand.New(rand.NewPCG(7, 11))
		from := time.Date(2026, 2, 25, 0, 0, 0, 0, time.UTC)
		var events []Event
		for i := range 3000 {
			at := from.Add(time.Duration(rng.Int64N(int64(40 * 24 * time.Hour))))
			if i%10 == 0 {
				// Crowd the minutes around local midnights of the zones below.
				at = at.Truncate(time.Hour).Add(time.Duration(rng.IntN(4)*15) * time.Minute)
			}
			events = append(events, ev("e"+strconv.Itoa(i), "org", "ws"+strconv.Itoa(i%2), "m"+strconv.Itoa(i%3), at, int64(1+i%7), int64(i%5), int64(10+i%13)))
		}
		seed(t, db, events...)
		ctx := context.Background()
		for _, zone := range []string{"UTC", "Europe/Paris", "Asia/Kolkata", "Asia/Kathmandu", "America/St_Johns", "Australia/Adelaide"} {
			loc, err := time.LoadLocation(zone)
			if err != nil {
				t.Fatal(err)
			}
			for _, ws := range []string{"", "ws1"} {
				start, end := Month(time.Date(2026, 3, 15, 0, 0, 0, 0, loc), loc)
				type key struct {
					day   string
					model string
				}
				want := map[key]Totals{}
				var wantCost int64
				wantTokens := map[string]int64{}
				for _, e := range events {
					if e.Time.Before(start) || !e.Time.Before(end) || (ws != "" && e.WorkspaceID != ws) {
						continue
					}
					k := key{e.Time.In(loc).Format("2006-01-02"), e.Model}
					w := want[k]
					w.Requests++
					w.InputTokens += e.InputTokens
					w.OutputTokens += e.OutputTokens
					w.Cost += e.Cost
					want[k] = w
					wantCost += e.Cost
					wantTokens[e.Model] += e.InputTokens + e.OutputTokens
				}
				var days []DayModel
				var cost int64
				var tokens map[string]int64
				if err := db.View(ctx, func(tx *store.Tx) error {
					var err error
					if days, err = MonthByModelDay(ctx, tx, "org", ws, start, loc); err != nil {
						return err
					}
					cost, tokens, err = MonthSpend(ctx, tx, "org", ws, start, end)
					return err
				}); err != nil {
					t.Fatalf("%s: %v", zone, err)
				}
				got := map[key]Totals{}
				for _, d := range days {
					if d.Day.Location() != loc || d.Day.Hour() != 0 {
						t.Fatalf("%s: day %v is not a local midnight", zone, d.Day)
					}
					got[key{d.Day.Format("2006-01-02"), d.Model}] = d.Totals
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s, Workspace %q: days differ from the raw events:\n got %v\nwant %v", zone, ws, got, want)
				}
				if cost != wantCost || !reflect.DeepEqual(tokens, wantTokens) {
					t.Errorf("%s, Workspace %q: MonthSpend = %d %v, want %d %v", zone, ws, cost, tokens, wantCost, wantTokens)
				}
			}
		}
	})
}
