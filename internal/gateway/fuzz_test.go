package gateway

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
		m, err := validate(Model{Name: "m", Upstreams: []Upstream{{BaseURL: "http://127.0.0.1:9"}}, InputPricePerMillion: inPrice, OutputPricePerMillion: outPrice})
		if (err == nil) != (valid(inPrice) && valid(outPrice)) {
			t.Fatalf("prices %v, %v: error %v", inPrice, outPrice, err)
		}
		if err != nil {
			if !strings.Contains(err.Error(), strconv.Itoa(MaxPricePerMillion)) {
				t.Fatalf("prices %v, %v: %q does not name the largest price", inPrice, outPrice, err)
			}
			return
		}
		want := new(big.Int)
		for _, part := range []struct {
			tokens int64
			scaled int64
			price  float64
		}{{in, m.inPrice, inPrice}, {out, m.outPrice, outPrice}} {
			if part.scaled != int64(math.Round(part.price*1e6)) || part.scaled < 0 || part.scaled > MaxPricePerMillion*1e6 {
				t.Fatalf("price %v kept as %d", part.price, part.scaled)
			}
			// ceil(tokens × scaled / 10^6), for the tokens above zero.
			v := new(big.Int).Mul(big.NewInt(max(part.tokens, 0)), big.NewInt(part.scaled))
			v.Add(v, big.NewInt(999_999))
			want.Add(want, v.Quo(v, big.NewInt(1_000_000)))
		}
		if !want.IsInt64() {
			want.SetInt64(math.MaxInt64)
		}
		if got := m.cost(in, out); got != want.Int64() {
			t.Fatalf("cost(%d, %d) at %v, %v = %d, want %s", in, out, inPrice, outPrice, got, want)
		}
	})
}
