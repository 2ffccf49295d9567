// Package billing holds what Steward counts money in: amounts of the
// billing currency in micro-units (so that sums are exact) and in whole
// units (as people set caps), the prices of models per million tokens and
// what tokens cost at them, the price table of the models served (Prices),
// and the currency's symbol. It imports nothing of the project, so that
// the gateway, the configuration, the limits and the reports all count
// money the same way, from one table.
package billing

import (
	"fmt"
	"math"
	"math/bits"
	"strconv"
)

// MicrosPerUnit converts whole currency units to the micro-units costs are
// counted in.
const MicrosPerUnit = 1_000_000

// Micros converts an amount in whole units to micro-units, saturating at
// math.MaxInt64 rather than wrapping round to a negative number, which the
// limiter would refuse: a cap stored before its bound was checked may be
// larger than any bound.
func Micros(units int64) int64 {
	switch {
	case units <= 0:
		return 0
	case units > math.MaxInt64/MicrosPerUnit:
		return math.MaxInt64
	}
	return units * MicrosPerUnit
}

// Units converts micro-units to (fractional) whole units, as the Admin
// API shows amounts.
func Units(micros int64) float64 { return float64(micros) / MicrosPerUnit }

// symbols are the symbols of the currencies that have one of their own.
var symbols = map[string]string{"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "CHF": "CHF", "CAD": "$", "AUD": "$"}

// Symbol returns the symbol of a currency, or its code when it has none of
// its own.
func Symbol(currency string) string {
	if s, ok := symbols[currency]; ok {
		return s
	}
	return currency
}

// MaxPricePerMillion is the largest price of a model's input or output
// tokens, in currency units per million tokens. A token then costs at most
// one unit, 10^6 micro-units, so a request's cost would overflow int64
// only beyond 9.2×10^12 tokens, and Cost saturates there rather than
// wrapping round.
const MaxPricePerMillion = 1_000_000

// CheckPrice returns an error unless p is a price a model may have: a
// number from 0 to MaxPricePerMillion, which NaN and the infinities are
// not. The error says which bound p misses.
func CheckPrice(p float64) error {
	if math.IsNaN(p) || p < 0 || p > MaxPricePerMillion {
		return fmt.Errorf("%s is not a price: want a number from 0 to %d (currency units per million tokens)", strconv.FormatFloat(p, 'f', -1, 64), MaxPricePerMillion)
	}
	return nil
}

// Price is a price per token in millionths of a micro-unit: the price per
// million tokens in currency units, scaled by 10^6, so that costs are
// computed in integers and round up exactly.
type Price int64

// PerMillion returns the Price of p currency units per million tokens, or
// CheckPrice's error.
func PerMillion(p float64) (Price, error) {
	if err := CheckPrice(p); err != nil {
		return 0, err
	}
	return Price(math.Round(p * 1e6)), nil
}

// Cost is what in input and out output tokens cost at the prices given, in
// micro-units rounded up, saturating at math.MaxInt64: tokens × price per
// million / 10^6 currency units is tokens × price micro-units, and a Price
// is scaled by 10^6.
func Cost(in, out int64, inPrice, outPrice Price) int64 {
	a, b := inPrice.of(in), outPrice.of(out)
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// of is ceil(tokens × p / 10^6), in 128 bits so that no token count
// overflows, saturating at math.MaxInt64; nothing for no tokens.
func (p Price) of(tokens int64) int64 {
	const d = 1_000_000
	if tokens <= 0 || p <= 0 {
		return 0
	}
	hi, lo := bits.Mul64(uint64(tokens), uint64(p))
	lo, carry := bits.Add64(lo, d-1, 0)
	hi += carry
	if hi >= d {
		return math.MaxInt64
	}
	q, _ := bits.Div64(hi, lo, d)
	if q > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(q)
}
