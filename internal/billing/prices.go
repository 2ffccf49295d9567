package billing

import (
	"fmt"
	"math"
	"slices"
)

// ModelPrice is one model's prices as they are configured, in currency
// units: per million input tokens and per million output tokens, each from
// 0 to MaxPricePerMillion; per thousand pages (OCR), from 0 to
// MaxPricePerThousandPages; per minute of audio (transcription), from 0 to
// MaxPricePerMinute.
type ModelPrice struct {
	Model                             string
	InputPerMillion, OutputPerMillion float64
	PerThousandPages                  float64
	PerMinuteOfAudio                  float64
}

// Rate is what a model's usage costs: its ModelPrice checked and scaled
// for exact integer costs. The zero Rate costs nothing.
type Rate struct {
	input, output, page, second Price
}

// Cost is what q costs at r, in micro-units rounded up, saturating at
// math.MaxInt64: the sum of each unit's count at its price (see the
// function Cost).
func (r Rate) Cost(q Quantity) int64 {
	c := Cost(q.InputTokens, q.OutputTokens, r.input, r.output)
	if q.Pages == 0 && q.AudioSeconds == 0 {
		return c
	}
	return addSat(addSat(c, r.page.of(q.Pages)), r.second.of(q.AudioSeconds))
}

// addSat is a + b for non-negative a and b, saturating at math.MaxInt64.
func addSat(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

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
		page, err := PerThousandPages(m.PerThousandPages)
		if err != nil {
			return nil, fmt.Errorf("model %d (%q): page price: %w", i, m.Model, err)
		}
		second, err := PerMinute(m.PerMinuteOfAudio)
		if err != nil {
			return nil, fmt.Errorf("model %d (%q): audio price: %w", i, m.Model, err)
		}
		p.rates[m.Model] = Rate{input: in, output: out, page: page, second: second}
	}
	return p, nil
}

// Rate returns the rate of a model; false for a model the table does not
// price.
func (p *Prices) Rate(model string) (Rate, bool) {
	r, ok := p.rates[model]
	return r, ok
}

// Cost is what q of a model costs, in micro-units rounded up, exactly as
// the gateway records it; false for a model the table does not price,
// which costs nothing.
func (p *Prices) Cost(model string, q Quantity) (int64, bool) {
	r, ok := p.rates[model]
	if !ok {
		return 0, false
	}
	return r.Cost(q), true
}

// Models returns the models' prices in the order they were given.
func (p *Prices) Models() []ModelPrice { return slices.Clone(p.models) }
