package billing

import (
	"math"
	"math/big"
	"strconv"
	"strings"
	"testing"
)

// FuzzCost prices any token counts at any price a configuration may hold.
// A price is accepted exactly when it is a number from 0 to
// MaxPricePerMillion, and refused with an error naming that bound; the
// cost at accepted prices is ceil(tokens × price) in micro-units, exactly,
// saturated at math.MaxInt64: never negative, never wrapped round. Its
// seed corpus, in testdata/fuzz, runs with every go test.
func FuzzCost(f *testing.F) {
	f.Add(int64(1000), int64(1000), 0.1, 0.3)
	f.Add(int64(math.MaxInt64), int64(math.MaxInt64), float64(MaxPricePerMillion), float64(MaxPricePerMillion))
	f.Add(int64(9223372036854), int64(1), float64(MaxPricePerMillion), 0.000_000_4)
	f.Add(int64(-1), int64(5), math.NaN(), math.Inf(1))
	f.Add(int64(1), int64(1), float64(MaxPricePerMillion)+0.5, -0.000_001)

	f.Fuzz(func(t *testing.T, in, out int64, inPrice, outPrice float64) {
		valid := func(p float64) bool { return p >= 0 && p <= MaxPricePerMillion }
		var prices [2]Price
		refused := false
		for i, p := range []float64{inPrice, outPrice} {
			price, err := PerMillion(p)
			if (err == nil) != valid(p) {
				t.Fatalf("price %v: error %v", p, err)
			}
			if err != nil && !strings.Contains(err.Error(), strconv.Itoa(MaxPricePerMillion)) {
				t.Fatalf("price %v: %q does not name the largest price", p, err)
			}
			prices[i], refused = price, refused || err != nil
		}
		if refused {
			return
		}
		want := new(big.Int)
		for _, part := range []struct {
			tokens int64
			scaled Price
			price  float64
		}{{in, prices[0], inPrice}, {out, prices[1], outPrice}} {
			if part.scaled != Price(math.Round(part.price*1e6)) || part.scaled < 0 || part.scaled > MaxPricePerMillion*1e6 {
				t.Fatalf("price %v kept as %d", part.price, part.scaled)
			}
			// ceil(tokens × scaled / 10^6), for the tokens above zero.
			v := new(big.Int).Mul(big.NewInt(max(part.tokens, 0)), big.NewInt(int64(part.scaled)))
			v.Add(v, big.NewInt(999_999))
			want.Add(want, v.Quo(v, big.NewInt(1_000_000)))
		}
		if !want.IsInt64() {
			want.SetInt64(math.MaxInt64)
		}
		if got := Cost(in, out, prices[0], prices[1]); got != want.Int64() {
			t.Fatalf("Cost(%d, %d) at %v, %v = %d, want %s", in, out, inPrice, outPrice, got, want)
		}
	})
}
