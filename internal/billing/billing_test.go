package billing

import (
	"math"
	"strings"
	"testing"
)

func TestCostRoundsUp(t *testing.T) {
	in, err := PerMillion(0.1)
	if err != nil {
		t.Fatal(err)
	}
	out, err := PerMillion(0.3)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ in, out, want int64 }{
		{0, 0, 0}, {3, 0, 1}, {10, 0, 1}, {11, 0, 2}, {10, 10, 4}, {1_000_000, 1, 100_001},
	} {
		if got := Cost(c.in, c.out, in, out); got != c.want {
			t.Errorf("Cost(%d, %d) = %d, want %d", c.in, c.out, got, c.want)
		}
	}
	if got := Price(1e12).of(1 << 62); got != math.MaxInt64 {
		t.Fatalf("a cost saturates at MaxInt64, got %d", got)
	}
	if got := Cost(math.MaxInt64, math.MaxInt64, in, out); got != 922337203685477581+2767011611056432743 {
		t.Fatalf("Cost(MaxInt64, MaxInt64) = %d", got)
	}
}

func TestMicrosAndUnits(t *testing.T) {
	for _, c := range []struct{ units, micros int64 }{
		{-5, 0}, {0, 0}, {1, MicrosPerUnit}, {math.MaxInt64 / MicrosPerUnit, math.MaxInt64 / MicrosPerUnit * MicrosPerUnit}, {math.MaxInt64/MicrosPerUnit + 1, math.MaxInt64},
	} {
		if got := Micros(c.units); got != c.micros {
			t.Errorf("Micros(%d) = %d, want %d", c.units, got, c.micros)
		}
	}
	if got := Units(1_500_000); got != 1.5 {
		t.Errorf("Units(1500000) = %v, want 1.5", got)
	}
}

func TestSymbol(t *testing.T) {
	for code, want := range map[string]string{"EUR": "€", "USD": "$", "CHF": "CHF", "SEK": "SEK"} {
		if got := Symbol(code); got != want {
			t.Errorf("Symbol(%q) = %q, want %q", code, got, want)
		}
	}
}

func TestCheckPriceNamesTheBound(t *testing.T) {
	for _, p := range []float64{-0.1, MaxPricePerMillion + 0.5, math.NaN(), math.Inf(1)} {
		if err := CheckPrice(p); err == nil || !strings.Contains(err.Error(), "is not a price: want a number from 0 to 1000000") {
			t.Errorf("CheckPrice(%v) = %v", p, err)
		}
	}
	for _, p := range []float64{0, 0.000_001, MaxPricePerMillion} {
		if err := CheckPrice(p); err != nil {
			t.Errorf("CheckPrice(%v) = %v", p, err)
		}
	}
}
