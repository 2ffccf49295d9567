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

// MaxPricePerThousandPages is the largest price of a thousand pages (OCR),
// and MaxPricePerMinute of a minute of audio, in currency units: a page
// then costs at most 1,000 units and a second of audio at most 16,667, so
// that costs stay as far from overflowing as tokens' do, and saturate
// rather than wrap round.
const (
	MaxPricePerThousandPages = 1_000_000
	MaxPricePerMinute        = 1_000_000
)

// CheckPrice returns an error unless p is a price a model's tokens may
// have: a number from 0 to MaxPricePerMillion, which NaN and the
// infinities are not. The error says which bound p misses.
func CheckPrice(p float64) error { return checkPrice(p, MaxPricePerMillion, "million tokens") }

// CheckPagePrice is CheckPrice for a price per thousand pages, up to
// MaxPricePerThousandPages.
func CheckPagePrice(p float64) error {
	return checkPrice(p, MaxPricePerThousandPages, "thousand pages")
}

// CheckAudioPrice is CheckPrice for a price per minute of audio, up to
// MaxPricePerMinute.
func CheckAudioPrice(p float64) error { return checkPrice(p, MaxPricePerMinute, "minute of audio") }

func checkPrice(p float64, most int64, per string) error {
	if math.IsNaN(p) || p < 0 || p > float64(most) {
		return fmt.Errorf("%s is not a price: want a number from 0 to %d (currency units per %s)", strconv.FormatFloat(p, 'f', -1, 64), most, per)
	}
	return nil
}

// Price is a price per token (or page, or second of audio) in millionths
// of a micro-unit: the price per million tokens in currency units, scaled
// by 10^6, so that costs are computed in integers and round up exactly.
type Price int64

// PerMillion returns the Price of p currency units per million tokens, or
// CheckPrice's error.
func PerMillion(p float64) (Price, error) {
	if err := CheckPrice(p); err != nil {
		return 0, err
	}
	return Price(math.Round(p * 1e6)), nil
}

// PerThousandPages returns the Price of a page at p currency units per
// thousand pages (p × 10^3 micro-units a page), or CheckPagePrice's error.
func PerThousandPages(p float64) (Price, error) {
	if err := CheckPagePrice(p); err != nil {
		return 0, err
	}
	return Price(math.Round(p * 1e9)), nil
}

// PerMinute returns the Price of a second of audio at p currency units per
// minute (p × 10^6 / 60 micro-units a second, rounded to a millionth of a
// micro-unit), or CheckAudioPrice's error.
func PerMinute(p float64) (Price, error) {
	if err := CheckAudioPrice(p); err != nil {
		return 0, err
	}
	return Price(math.Round(p * 1e12 / 60)), nil
}

// Quantity is what a request uses, in each unit it may be billed in: its
// input and output tokens, the pages it had read (OCR), the seconds of
// audio it had heard (transcription).
type Quantity struct {
	InputTokens, OutputTokens int64
	Pages, AudioSeconds       int64
}

// Tokens is the Quantity of in input and out output tokens.
func Tokens(in, out int64) Quantity { return Quantity{InputTokens: in, OutputTokens: out} }

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
