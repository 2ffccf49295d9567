package config

import (
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/billing"
)

// load loads a configuration file holding body, as serve does.
func load(t *testing.T, body string) (Config, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "steward.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	build := Flags(fs, func(string) string { return "" })
	if err := fs.Parse([]string{"--config", path}); err != nil {
		t.Fatal(err)
	}
	return build()
}

// A model's price must be a number from 0 to billing's largest, so
// that costs stay far from overflowing: anything else stops the load with
// an error naming the model, the key and the bound.
func TestModelPricesAreCheckedAtLoad(t *testing.T) {
	for _, c := range []struct{ name, price, want string }{
		{"above the largest", "input_price_per_million: 1000000.5", `models[1] ("m"): input_price_per_million: 1000000.5 is not a price: want a number from 0 to 1000000`},
		{"negative", "output_price_per_million: -0.1", `models[1] ("m"): output_price_per_million: -0.1 is not a price: want a number from 0 to 1000000`},
		{"not a number", "input_price_per_million: .nan", `models[1] ("m"): input_price_per_million: NaN is not a price`},
		{"infinite", "output_price_per_million: .inf", `models[1] ("m"): output_price_per_million: +Inf is not a price`},
		{"pages above the largest", "price_per_thousand_pages: 1000001", `models[1] ("m"): price_per_thousand_pages: 1000001 is not a price: want a number from 0 to 1000000 (currency units per thousand pages)`},
		{"negative audio", "price_per_minute_of_audio: -1", `models[1] ("m"): price_per_minute_of_audio: -1 is not a price: want a number from 0 to 1000000 (currency units per minute of audio)`},
	} {
		_, err := load(t, "models:\n  - name: ok\n    input_price_per_million: 1000000\n  - name: m\n    "+c.price+"\n")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
	}
	cfg, err := load(t, "models:\n  - name: m\n    input_price_per_million: 0\n    output_price_per_million: 1000000\n")
	if err != nil || cfg.Models[0].OutputPricePerMillion != 1_000_000 {
		t.Fatalf("the largest price: %v, %+v", err, cfg.Models)
	}
}

// The price table holds every configured model at its prices.
func TestPrices(t *testing.T) {
	cfg, err := load(t, "models:\n  - name: small\n    input_price_per_million: 0.1\n    output_price_per_million: 0.3\n  - name: free\n"+
		"  - name: ocr\n    price_per_thousand_pages: 1\n    max_pages: 50\n  - name: voxtral\n    price_per_minute_of_audio: 0.001\n    max_audio_seconds: 900\n")
	if err != nil {
		t.Fatal(err)
	}
	demo := billing.ModelPrice{Model: "steward-demo", InputPerMillion: 0.1, OutputPerMillion: 0.3}
	p, err := cfg.Prices(demo)
	if err != nil {
		t.Fatal(err)
	}
	want := []billing.ModelPrice{{Model: "small", InputPerMillion: 0.1, OutputPerMillion: 0.3}, {Model: "free"},
		{Model: "ocr", PerThousandPages: 1}, {Model: "voxtral", PerMinuteOfAudio: 0.001}, demo}
	if got := p.Models(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Models() = %+v, want %+v", got, want)
	}
	if c, ok := p.Cost("small", billing.Tokens(10, 10)); c != 4 || !ok {
		t.Fatalf("Cost(small, 10, 10) = %d, %v, want 4 micro-units", c, ok)
	}
	if c, ok := p.Cost("free", billing.Tokens(10, 10)); c != 0 || !ok {
		t.Fatalf("Cost(free, 10, 10) = %d, %v, want nothing, priced", c, ok)
	}
	if c, _ := p.Cost("ocr", billing.Quantity{Pages: 3}); c != 3_000 || cfg.Models[2].MaxPages != 50 {
		t.Fatalf("3 pages at 1 a thousand cost %d micro-units, want 3,000; max pages %d", c, cfg.Models[2].MaxPages)
	}
	if c, _ := p.Cost("voxtral", billing.Quantity{AudioSeconds: 120}); c != 2_001 || cfg.Models[3].MaxAudioSeconds != 900 {
		t.Fatalf("two minutes at 0.001 a minute cost %d micro-units, want 2,001 (a second's price rounded up)", c)
	}
}

// The kinds of limit that fail open are named as in the settings; any
// other name stops the load with an error naming the setting and the kind.
func TestFailOpenKinds(t *testing.T) {
	cfg, err := load(t, "redis_fail_open: spend_per_month, tokens_per_month\n")
	if err != nil {
		t.Fatal(err)
	}
	if kinds, err := cfg.FailOpenKinds(); err != nil || len(kinds) != 2 || kinds[0].String() != "spend per month" || kinds[1].String() != "tokens per month" {
		t.Errorf("FailOpenKinds = %v, %v", kinds, err)
	}
	_, err = load(t, "redis_fail_open: requests_per_minute\n")
	if want := `redis fail open: "requests_per_minute" is not a kind of limit`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error %v, want one containing %q", err, want)
	}
}

// The default upstream is read with its timeouts by group; a URL that is
// not an absolute http(s) URL, or a negative timeout, stops the load
// naming it.
func TestDefaultUpstream(t *testing.T) {
	cfg, err := load(t, "upstream:\n  url: https://api.mistral.ai/v1\n  api_key_env: MISTRAL_API_KEY\n  timeouts:\n    files: {header: 5m}\n    agents: {header: 10s, idle: 20s}\n")
	if err != nil {
		t.Fatal(err)
	}
	want := &DefaultUpstream{URL: "https://api.mistral.ai/v1", APIKeyEnv: "MISTRAL_API_KEY", Timeouts: map[string]Timeouts{
		"files": {Header: 5 * time.Minute}, "agents": {Header: 10 * time.Second, Idle: 20 * time.Second}}}
	if !reflect.DeepEqual(cfg.Upstream, want) {
		t.Fatalf("upstream = %+v, want %+v", cfg.Upstream, want)
	}
	for body, msg := range map[string]string{
		"upstream:\n  url: api.mistral.ai\n":                                   `upstream: url "api.mistral.ai" must be an absolute http or https URL`,
		"upstream:\n  url: http://h/v1?x=1\n":                                  `upstream: url "http://h/v1?x=1"`,
		"upstream:\n  url: http://h/v1\n  timeouts:\n    files: {idle: -1s}\n": "upstream: timeouts of files must be positive durations",
	} {
		if _, err := load(t, body); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%q: error %v, want one containing %q", body, err, msg)
		}
	}
}

// agent_model must name one of the models.
func TestAgentModelIsAModel(t *testing.T) {
	if _, err := load(t, "agent_model: nope\nmodels:\n  - name: m\n"); err == nil || !strings.Contains(err.Error(), `agent_model "nope" is not one of models`) {
		t.Fatalf("an agent model not configured: %v", err)
	}
	cfg, err := load(t, "agent_model: m\nmodels:\n  - name: m\n    endpoints: [agents]\n")
	if err != nil || cfg.AgentModel != "m" {
		t.Fatalf("agent_model m: %v, %+v", err, cfg)
	}
}

// A model's card settings are read from the file, and checked at load: a
// negative context length, and an alias that is a model's name or another
// alias, stop it with an error naming them.
func TestModelCardSettings(t *testing.T) {
	cfg, err := load(t, "models:\n  - name: small\n    aliases: [small-latest, small-2612]\n    description: Fast.\n    max_context_length: 131072\n"+
		"    capabilities: {vision: true, function_calling: true, completion_fim: false}\n  - name: large\n")
	if err != nil {
		t.Fatal(err)
	}
	want := Model{Name: "small", Aliases: []string{"small-latest", "small-2612"}, Description: "Fast.", MaxContextLength: 131072,
		Capabilities: map[string]bool{"vision": true, "function_calling": true, "completion_fim": false}}
	if !reflect.DeepEqual(cfg.Models[0], want) {
		t.Fatalf("model %+v, want %+v", cfg.Models[0], want)
	}
	for _, c := range []struct{ models, want string }{
		{"  - name: a\n    max_context_length: -1\n", `models[0] ("a"): max_context_length -1 is negative`},
		{"  - name: a\n    aliases: [b]\n  - name: b\n", `models[0] ("a"): alias "b" is already the model "b"`},
		{"  - name: a\n  - name: b\n    aliases: [a]\n", `models[1] ("b"): alias "a" is already the model "a"`},
		{"  - name: a\n    aliases: [x]\n  - name: b\n    aliases: [x]\n", `models[1] ("b"): alias "x" is already an alias of the model "a"`},
		{"  - name: a\n    aliases: [x, x]\n", `models[0] ("a"): alias "x" is already an alias of the model "a"`},
		{"  - name: a\n    aliases: [a]\n", `models[0] ("a"): alias "a" is already the model "a"`},
		{"  - name: a\n    aliases: [\"\"]\n", `models[0] ("a"): alias "" must be non-empty and without surrounding spaces`},
	} {
		if _, err := load(t, "models:\n"+c.models); err == nil || err.Error() != c.want {
			t.Errorf("%s: error %v, want %s", c.models, err, c.want)
		}
	}
}

// The alerts are evaluated every minute unless alerts_interval says
// otherwise; it must be positive.
func TestAlertsInterval(t *testing.T) {
	cfg, err := load(t, "")
	if err != nil || cfg.AlertsInterval != time.Minute {
		t.Fatalf("default alerts interval %v, %v; want 1m", cfg.AlertsInterval, err)
	}
	if cfg, err = load(t, "alerts_interval: 15s\n"); err != nil || cfg.AlertsInterval != 15*time.Second {
		t.Fatalf("alerts_interval: 15s read as %v, %v", cfg.AlertsInterval, err)
	}
	if _, err := load(t, "alerts_interval: 0s\n"); err == nil || !strings.Contains(err.Error(), "durations must be positive") {
		t.Fatalf("alerts_interval: 0s: error %v", err)
	}
}

// webhooks_allow_private in the file allows an http --webhook-url; without
// it the URL must be https, and doctor warns while it is on.
func TestWebhookSettings(t *testing.T) {
	if _, err := load(t, "webhook_url: http://127.0.0.1:9000/hook\n"); err == nil || !strings.Contains(err.Error(), "--webhooks-allow-private") {
		t.Errorf("http webhook URL without webhooks_allow_private: %v, want refused naming the flag", err)
	}
	cfg, err := load(t, "webhook_url: http://127.0.0.1:9000/hook\nwebhooks_allow_private: true\n")
	if err != nil || !cfg.WebhooksAllowPrivate {
		t.Fatalf("with webhooks_allow_private: %v, %+v", err, cfg.WebhooksAllowPrivate)
	}
	warned := false
	for _, p := range cfg.Problems() {
		warned = warned || strings.Contains(p.Change, "--webhooks-allow-private")
	}
	if !warned {
		t.Errorf("doctor does not warn about webhooks_allow_private: %+v", cfg.Problems())
	}
	if _, err := load(t, "webhook_url: https://hooks.example.com/steward\n"); err != nil {
		t.Errorf("https webhook URL: %v", err)
	}
}
