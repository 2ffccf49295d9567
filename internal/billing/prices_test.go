package billing

import (
	"math"
	"reflect"
	"strings"
	"testing"
)

func TestPrices(t *testing.T) {
	models := []ModelPrice{{Model: "small", InputPerMillion: 0.1, OutputPerMillion: 0.3}, {Model: "large", InputPerMillion: 2, OutputPerMillion: 6}}
	p, err := NewPrices(models)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		model   string
		in, out int64
		want    int64
		priced  bool
	}{
		{"small", 10, 10, 4, true},
		{"small", 1_000_000, 1, 100_001, true},
		{"large", 11, 7, 11*2 + 7*6, true},
		{"unknown", 1_000_000, 1_000_000, 0, false},
	} {
		if got, ok := p.Cost(c.model, Tokens(c.in, c.out)); got != c.want || ok != c.priced {
			t.Errorf("Cost(%q, %d, %d) = %d, %v, want %d, %v", c.model, c.in, c.out, got, ok, c.want, c.priced)
		}
		r, ok := p.Rate(c.model)
		if got := r.Cost(Tokens(c.in, c.out)); got != c.want || ok != c.priced {
			t.Errorf("Rate(%q).Cost(%d, %d) = %d (%v), want %d (%v)", c.model, c.in, c.out, got, ok, c.want, c.priced)
		}
	}
	got := p.Models()
	if !reflect.DeepEqual(got, models) {
		t.Fatalf("Models() = %+v, want %+v in their order", got, models)
	}
	got[0].InputPerMillion, models[1].OutputPerMillion = 1000, 1000
	if again := p.Models(); again[0].InputPerMillion != 0.1 || again[1].OutputPerMillion != 6 {
		t.Fatalf("the table changed with the slices given and returned: %+v", again)
	}
	if c, _ := p.Cost("large", Tokens(0, 1)); c != 6 {
		t.Fatalf("the table's rate changed with the slice given: %d", c)
	}

	var none Prices
	if c, ok := none.Cost("small", Tokens(1, 1)); c != 0 || ok || none.Models() != nil {
		t.Fatalf("the zero Prices: Cost = %d, %v; Models() = %v", c, ok, none.Models())
	}
}

func TestNewPricesRefuses(t *testing.T) {
	for _, c := range []struct {
		name   string
		models []ModelPrice
		want   string
	}{
		{"negative output", []ModelPrice{{Model: "a"}, {Model: "b", OutputPerMillion: -1}}, `model 1 ("b"): output price: -1 is not a price`},
		{"input above the bound", []ModelPrice{{Model: "a", InputPerMillion: MaxPricePerMillion + 1}}, `model 0 ("a"): input price: 1000001 is not a price`},
		{"twice", []ModelPrice{{Model: "a"}, {Model: "a", InputPerMillion: 1}}, `model 1 ("a") is priced twice`},
		{"pages above the bound", []ModelPrice{{Model: "ocr", PerThousandPages: MaxPricePerThousandPages + 0.5}},
			`model 0 ("ocr"): page price: 1000000.5 is not a price: want a number from 0 to 1000000 (currency units per thousand pages)`},
		{"negative audio", []ModelPrice{{Model: "voxtral", PerMinuteOfAudio: -0.001}},
			`model 0 ("voxtral"): audio price: -0.001 is not a price: want a number from 0 to 1000000 (currency units per minute of audio)`},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := NewPrices(c.models); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("NewPrices: %v, want an error containing %q", err, c.want)
			}
		})
	}
}

// TestPagesAndAudio: pages are priced per thousand, seconds of audio per
// minute, each rounded up to a micro-unit, added to the tokens' cost, and
// the sum saturates rather than wrapping round.
func TestPagesAndAudio(t *testing.T) {
	p, err := NewPrices([]ModelPrice{
		{Model: "ocr", PerThousandPages: 1, InputPerMillion: 2},
		{Model: "voxtral", PerMinuteOfAudio: 0.001, InputPerMillion: 0.04, OutputPerMillion: 0.04},
		{Model: "dear", PerThousandPages: MaxPricePerThousandPages, PerMinuteOfAudio: MaxPricePerMinute, InputPerMillion: MaxPricePerMillion},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		model string
		q     Quantity
		want  int64
	}{
		// A page at 1 per thousand is 1,000 micro-units.
		{"ocr", Quantity{Pages: 29}, 29_000},
		{"ocr", Quantity{Pages: 1, InputTokens: 1}, 1_000 + 2},
		// A minute at 0.001 is 1,000 micro-units: 203 s is 3,383.33..., rounded up.
		{"voxtral", Quantity{AudioSeconds: 203}, 3_384},
		// A second's price is rounded to a millionth of a micro-unit, a
		// minute then up to 1,001; the tokens round up apart, 1 and 26.
		{"voxtral", Quantity{AudioSeconds: 60, InputTokens: 4, OutputTokens: 635}, 1_001 + 1 + 26},
		{"voxtral", Quantity{AudioSeconds: 0}, 0},
		{"dear", Quantity{Pages: math.MaxInt64, AudioSeconds: math.MaxInt64}, math.MaxInt64},
		{"dear", Quantity{InputTokens: math.MaxInt64 / 2, Pages: math.MaxInt64 / 2}, math.MaxInt64},
	} {
		if got, _ := p.Cost(c.model, c.q); got != c.want {
			t.Errorf("Cost(%q, %+v) = %d, want %d", c.model, c.q, got, c.want)
		}
	}
	for _, f := range []func(float64) error{CheckPagePrice, CheckAudioPrice} {
		for _, bad := range []float64{math.NaN(), math.Inf(1), -1, 1_000_000.01} {
			if f(bad) == nil {
				t.Errorf("price %v accepted", bad)
			}
		}
		if err := f(1_000_000); err != nil {
			t.Error(err)
		}
	}
}
