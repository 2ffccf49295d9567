package analytics

import "time"

// Levels are the rollup bucket sizes, by level: an hour, three hours,
// twelve hours, then spans of 1, 2, 4, 8, 16, 32 and 64 days. Every bucket
// starts at a multiple of its size since the Unix epoch, so each bucket of
// a level lies inside one bucket of every larger level, and any window of
// whole hours is covered by a few buckets per level: below a day, at most
// two of an hour, three of three hours and one of twelve at each end;
// above, where each size doubles the last, at most one of each size at
// each end. A 90-day window starting mid-day thus reads 16 buckets a key
// where sizes of 1 and 6 hours, 1, 4, 16 and 64 days read 22.
var Levels = []time.Duration{time.Hour, 3 * time.Hour, 12 * time.Hour, 24 * time.Hour, 2 * 24 * time.Hour, 4 * 24 * time.Hour,
	8 * 24 * time.Hour, 16 * 24 * time.Hour, 32 * 24 * time.Hour, 64 * 24 * time.Hour}

const (
	levelHour = 0
	levelDay  = 3
	// topLevel is the largest level; tables read only by day (the time and
	// coding reports) stop at levelDay.
	topLevel = 9
)

func levelMicros(level int) int64 { return Levels[level].Microseconds() }

// bucketOf is the start of the level's bucket holding t (microseconds,
// never negative).
func bucketOf(t int64, level int) int64 {
	size := levelMicros(level)
	return t - t%size
}

// piece is one rollup bucket.
type piece struct {
	level int
	start int64
}

// cover returns the fewest buckets of levels up to maxLevel that exactly
// cover the hours starting in [from, to): from is taken down to its hour,
// and an hour that starts before to counts whole. The result is in time
// order.
func cover(from, to int64, maxLevel int) []piece {
	var out []piece
	cur := bucketOf(from, levelHour)
	for cur < to {
		level := levelHour
		for l := maxLevel; l > levelHour; l-- {
			if cur%levelMicros(l) == 0 && cur+levelMicros(l) <= to {
				level = l
				break
			}
		}
		out = append(out, piece{level, cur})
		cur += levelMicros(level)
	}
	return out
}

// run is a stretch of consecutive buckets of one level, [first, last].
type run struct {
	level       int
	first, last int64
}

// runs groups pieces into runs, so that each is one range query.
func runs(pieces []piece) []run {
	var out []run
	for _, p := range pieces {
		if n := len(out); n > 0 && out[n-1].level == p.level && out[n-1].last+levelMicros(p.level) == p.start {
			out[n-1].last = p.start
			continue
		}
		out = append(out, run{p.level, p.start, p.start})
	}
	return out
}
