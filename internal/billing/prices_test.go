package billing

import (
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
		if got, ok := p.Cost(c.model, c.in, c.out); got != c.want || ok != c.priced {
			t.Errorf("Cost(%q, %d, %d) = %d, %v, want %d, %v", c.model, c.in, c.out, got, ok, c.want, c.priced)
		}
		r, ok := p.Rate(c.model)
		if got := r.Cost(c.in, c.out); got != c.want || ok != c.priced {
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
	if c, _ := p.Cost("large", 0, 1); c != 6 {
		t.Fatalf("the table's rate changed with the slice given: %d", c)
	}

	var none Prices
	if c, ok := none.Cost("small", 1, 1); c != 0 || ok || none.Models() != nil {
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
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := NewPrices(c.models); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("NewPrices: %v, want an error containing %q", err, c.want)
			}
		})
	}
}
