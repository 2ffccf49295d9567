package billing

import (
	"fmt"
	"slices"
)

// ModelPrice is one model's prices as they are configured, in currency
// units: per million input tokens and per million output tokens, each from
// 0 to MaxPricePerMillion. A unit a model may be billed in besides tokens
// (pages, minutes of audio) is a price of its own here, beside these.
type ModelPrice struct {
	Model                             string
	InputPerMillion, OutputPerMillion float64
}

// Rate is what a model's usage costs: its ModelPrice checked and scaled
// for exact integer costs. The zero Rate costs nothing.
type Rate struct {
	input, output Price
}

// Cost is what in input and out output tokens cost at r, in micro-units
// rounded up (see the function Cost).
func (r Rate) Cost(in, out int64) int64 { return Cost(in, out, r.input, r.output) }

// Prices is the price table: the prices of every model served, keyed by
// the model's name, built once from the configuration. The gateway costs
// each request's usage at it, the enforcer each request's worst case, and
// the usage report lists it, so that all three count the same money. It is
// not changed once built. The zero Prices prices no model.
type Prices struct {
	models []ModelPrice
	rates  map[string]Rate
}

// NewPrices returns the table of the models' prices. Its errors name the
// model: a price CheckPrice refuses, or a model priced twice.
func NewPrices(models []ModelPrice) (*Prices, error) {
	p := &Prices{models: slices.Clone(models), rates: make(map[string]Rate, len(models))}
	for i, m := range models {
		if _, ok := p.rates[m.Model]; ok {
			return nil, fmt.Errorf("model %d (%q) is priced twice", i, m.Model)
		}
		in, err := PerMillion(m.InputPerMillion)
		if err != nil {
			return nil, fmt.Errorf("model %d (%q): input price: %w", i, m.Model, err)
		}
		out, err := PerMillion(m.OutputPerMillion)
		if err != nil {
			return nil, fmt.Errorf("model %d (%q): output price: %w", i, m.Model, err)
		}
		p.rates[m.Model] = Rate{input: in, output: out}
	}
	return p, nil
}

// Rate returns the rate of a model; false for a model the table does not
// price.
func (p *Prices) Rate(model string) (Rate, bool) {
	r, ok := p.rates[model]
	return r, ok
}

// Cost is what in input and out output tokens of a model cost, in
// micro-units rounded up, exactly as the gateway records it; false for a
// model the table does not price, which costs nothing.
func (p *Prices) Cost(model string, in, out int64) (int64, bool) {
	r, ok := p.rates[model]
	if !ok {
		return 0, false
	}
	return r.Cost(in, out), true
}

// Models returns the models' prices in the order they were given.
func (p *Prices) Models() []ModelPrice { return slices.Clone(p.models) }
