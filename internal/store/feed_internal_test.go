package store

import (
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestParseSnapshot(t *testing.T) {
	for _, c := range []struct {
		in         string
		xmin, xmax uint64
		xip        []string
	}{
		{"10:20:", 10, 20, []string{}},
		{"10:20:10,14,15", 10, 20, []string{"10", "14", "15"}},
	} {
		xmin, snap, err := parseSnapshot(c.in)
		if err != nil || xmin != c.xmin || snap.xmax != c.xmax || !slices.Equal(snap.xip, c.xip) {
			t.Errorf("parseSnapshot(%q) = %d, %+v, %v; want %d, %d, %q", c.in, xmin, snap, err, c.xmin, c.xmax, c.xip)
		}
	}
	// A snapshot that is not PostgreSQL's text ends the read with an
	// error that quotes it, rather than a horizon of zero.
	for _, in := range []string{"", "10:20", "x:20:", "10:y:"} {
		if _, _, err := parseSnapshot(in); err == nil || !strings.Contains(err.Error(), strconv.Quote(in)) {
			t.Errorf("parseSnapshot(%q): %v; want an error quoting it", in, err)
		}
	}
}
