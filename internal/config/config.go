// Package config holds Steward's configuration: one struct, filled from
// defaults, then an optional YAML file, then STEWARD_* environment variables,
// then command-line flags, each overriding the one before.
package config

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/stewardhq/steward/internal/billing"
	"github.com/stewardhq/steward/internal/forwarded"
	"github.com/stewardhq/steward/internal/limits"
)

// Config is every setting of Steward.
type Config struct {
	Addr            string        `yaml:"addr"`
	DataDir         string        `yaml:"data_dir"`
	DatabaseURL     string        `yaml:"database_url"`
	AdminEmail      string        `yaml:"admin_email"`
	OrgName         string        `yaml:"org_name"`
	LogLevel        string        `yaml:"log_level"`
	LogFormat       string        `yaml:"log_format"`
	MaxBodyBytes    int64         `yaml:"max_body_bytes"`
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	PublicURL       string        `yaml:"public_url"`
	InvitationTTL   time.Duration `yaml:"invitation_ttl"`
	SMTPURL         string        `yaml:"smtp_url"`
	SMTPFrom        string        `yaml:"smtp_from"`
	// WebhookURL is the server-wide webhook endpoint, which receives every
	// Organization's api_key.expiring events, signed with the secret in
	// STEWARD_WEBHOOK_SECRET.
	WebhookURL string `yaml:"webhook_url"`
	// WebhooksAllowPrivate lets webhooks use http and reach loopback and
	// private addresses.
	WebhooksAllowPrivate bool `yaml:"webhooks_allow_private"`
	// DebugAddr, when set, is a loopback address serving Go's profiler
	// (net/http/pprof).
	DebugAddr string `yaml:"debug_addr"`
	// DemoModel adds the built-in steward-demo model to the gateway.
	DemoModel bool `yaml:"demo_model"`
	// Currency is the billing currency of prices and usage.
	Currency string `yaml:"currency"`
	// MetricsAddr, when set, is the address serving Prometheus metrics at
	// /metrics.
	MetricsAddr string `yaml:"metrics_addr"`
	// RedisURL, when set, keeps the gateway's limits in Redis, shared by
	// every process that uses it, and carries cache changes between them.
	RedisURL string `yaml:"redis_url"`
	// RedisPrefix starts the name of every Redis key Steward writes.
	RedisPrefix string `yaml:"redis_prefix"`
	// RedisFailOpen lists, comma-separated, the kinds of limit that let
	// requests through while Redis is unavailable; the others refuse them.
	RedisFailOpen string `yaml:"redis_fail_open"`
	// SessionTTL and SessionIdle bound a web sign-in: its longest life and
	// how long it may go unused.
	SessionTTL  time.Duration `yaml:"session_ttl"`
	SessionIdle time.Duration `yaml:"session_idle"`
	// SecureCookies marks the web pages' cookies Secure even on plain HTTP,
	// for a server behind a proxy that terminates TLS.
	SecureCookies bool `yaml:"secure_cookies"`
	// TrustedProxies lists, comma-separated, the addresses and CIDR
	// prefixes of the reverse proxies whose X-Forwarded-For and
	// X-Forwarded-Proto are believed.
	TrustedProxies string `yaml:"trusted_proxies"`
	// BodyTimeout bounds the time a client may take to send a request's
	// body, and ModelBodyTimeout a model API request's (larger prompts).
	BodyTimeout      time.Duration `yaml:"body_timeout"`
	ModelBodyTimeout time.Duration `yaml:"model_body_timeout"`
	// IdleTimeout closes a kept-alive connection after this long without a
	// request.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// AlertsInterval is how often steward serve evaluates the alerts on
	// limits and keys.
	AlertsInterval time.Duration `yaml:"alerts_interval"`
	// MaxUnauthenticatedConns bounds the connections open on which no
	// request has authenticated; a new one closes the oldest.
	MaxUnauthenticatedConns int `yaml:"max_unauthenticated_conns"`
	// UpstreamHeaderTimeout bounds the time a model server may take to
	// start answering; zero waits as long as the client does.
	UpstreamHeaderTimeout time.Duration `yaml:"upstream_header_timeout"`
	// Models are the models the gateway serves; only the config file sets
	// them.
	Models []Model `yaml:"models"`
	// AgentModel names the model of Models (offering "agents") that serves
	// agents completions and conversations naming no model; config file
	// only.
	AgentModel string `yaml:"agent_model"`
	// Upstream is the default upstream, which the model API's operations
	// that name no model (files, batch jobs, agents, conversations,
	// libraries, voices, fine-tuned models) are forwarded to; only the
	// config file sets it. Without it, those operations are not served.
	Upstream *DefaultUpstream `yaml:"upstream"`
}

// DefaultUpstream is the upstream of the operations that name no model:
// a Mistral-compatible API root, with the key of the environment variable
// APIKeyEnv, and the timeouts of its operations by group.
type DefaultUpstream struct {
	URL       string `yaml:"url"`
	APIKeyEnv string `yaml:"api_key_env"`
	// Timeouts override the gateway's defaults for the groups they name
	// (files, batch_jobs, agents, ...).
	Timeouts map[string]Timeouts `yaml:"timeouts"`
}

// Timeouts bound an operation's upstream call: Header the wait for the
// answer's headers once the request is sent, Idle a gap in the answer's
// body. Zero keeps the gateway's default.
type Timeouts struct {
	Header time.Duration `yaml:"header"`
	Idle   time.Duration `yaml:"idle"`
}

// Model is a model the gateway serves, as the config file describes it.
type Model struct {
	Name                  string     `yaml:"name"`
	Upstreams             []Upstream `yaml:"upstreams"`
	InputPricePerMillion  float64    `yaml:"input_price_per_million"`
	OutputPricePerMillion float64    `yaml:"output_price_per_million"`
	// PricePerThousandPages prices OCR, PricePerMinuteOfAudio
	// transcription's audio, beside the tokens.
	PricePerThousandPages float64  `yaml:"price_per_thousand_pages"`
	PricePerMinuteOfAudio float64  `yaml:"price_per_minute_of_audio"`
	MaxOutputTokens       int64    `yaml:"max_output_tokens"`
	MaxPages              int64    `yaml:"max_pages"`
	MaxAudioSeconds       int64    `yaml:"max_audio_seconds"`
	Endpoints             []string `yaml:"endpoints"`
	// Aliases, Description, MaxContextLength and Capabilities are the
	// model card's (GET /v1/models); a request naming an alias is served
	// as the model.
	Aliases          []string        `yaml:"aliases"`
	Description      string          `yaml:"description"`
	MaxContextLength int64           `yaml:"max_context_length"`
	Capabilities     map[string]bool `yaml:"capabilities"`
}

// Upstream is a model server. Its API key is read from the environment
// variable APIKeyEnv, so that the config file holds no secret.
type Upstream struct {
	URL       string `yaml:"url"`
	APIKeyEnv string `yaml:"api_key_env"`
}

// Default returns the configuration Steward runs with when nothing is set.
func Default() Config {
	return Config{
		Addr:            "127.0.0.1:8080",
		DataDir:         "steward-data",
		AdminEmail:      "admin@example.com",
		OrgName:         "Default Organization",
		LogLevel:        "info",
		LogFormat:       "text",
		MaxBodyBytes:    1 << 20,
		ShutdownTimeout: 15 * time.Second,
		InvitationTTL:   7 * 24 * time.Hour,
		Currency:        "USD",
		RedisFailOpen:   "requests_per_second,tokens_per_minute",
		RedisPrefix:     "steward:",
		SessionTTL:      12 * time.Hour,
		SessionIdle:     time.Hour,

		BodyTimeout:             30 * time.Second,
		ModelBodyTimeout:        2 * time.Minute,
		IdleTimeout:             2 * time.Minute,
		AlertsInterval:          time.Minute,
		MaxUnauthenticatedConns: 1024,
	}
}

// option is one setting: its flag name (the environment variable is
// STEWARD_ and the name in upper case with _ for -), and how to set it.
type option struct {
	name  string
	usage string
	set   func(c *Config, v string) error
	// boolean options may be given as a bare flag (--demo-model).
	boolean bool
}

func str(f func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error { *f(c) = v; return nil }
}

var options = []option{
	{"addr", "address to listen on", str(func(c *Config) *string { return &c.Addr }), false},
	{"data-dir", "directory of the embedded SQLite database (used when no --database-url)", str(func(c *Config) *string { return &c.DataDir }), false},
	{"database-url", "postgres:// URL of a PostgreSQL database (instead of SQLite)", str(func(c *Config) *string { return &c.DatabaseURL }), false},
	{"admin-email", "email of the first Organization admin created on first start", str(func(c *Config) *string { return &c.AdminEmail }), false},
	{"org-name", "name of the first Organization created on first start", str(func(c *Config) *string { return &c.OrgName }), false},
	{"log-level", "debug, info, warn or error", str(func(c *Config) *string { return &c.LogLevel }), false},
	{"log-format", "text or json", str(func(c *Config) *string { return &c.LogFormat }), false},
	{"max-body-bytes", "largest request body accepted, in bytes", func(c *Config, v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return fmt.Errorf("must be a positive number of bytes")
		}
		c.MaxBodyBytes = n
		return nil
	}, false},
	{"shutdown-timeout", "how long a graceful shutdown waits for requests in flight (e.g. 15s)", duration(func(c *Config) *time.Duration { return &c.ShutdownTimeout }), false},
	{"public-url", "URL people reach Steward at, for links in emails and single sign-on (default: http:// and the listening address)", str(func(c *Config) *string { return &c.PublicURL }), false},
	{"invitation-ttl", "how long an invitation can be accepted (e.g. 168h)", duration(func(c *Config) *time.Duration { return &c.InvitationTTL }), false},
	{"smtp-url", "SMTP server for email, smtp://user:pass@host:587 or smtps://...:465 (default: log emails instead)", str(func(c *Config) *string { return &c.SMTPURL }), false},
	{"smtp-from", "From address of Steward's email", str(func(c *Config) *string { return &c.SMTPFrom }), false},
	{"webhook-url", "server-wide webhook endpoint receiving every Organization's api_key.expiring events, signed with the secret in STEWARD_WEBHOOK_SECRET (or the file STEWARD_WEBHOOK_SECRET_FILE names)", str(func(c *Config) *string { return &c.WebhookURL }), false},
	{"webhooks-allow-private", "let webhooks use http and reach loopback and private addresses (tests, closed networks); by default they must be https to public addresses", boolean(func(c *Config) *bool { return &c.WebhooksAllowPrivate }), true},
	{"debug-addr", "loopback address serving Go's profiler at /debug/pprof/, e.g. 127.0.0.1:6060 (default: off)", str(func(c *Config) *string { return &c.DebugAddr }), false},
	{"currency", "billing currency of model prices and usage, e.g. EUR", str(func(c *Config) *string { return &c.Currency }), false},
	{"metrics-addr", "address serving Prometheus metrics at /metrics, e.g. 127.0.0.1:9090 (default: off)", str(func(c *Config) *string { return &c.MetricsAddr }), false},
	{"redis-url", "redis:// (or rediss://) URL of a Redis or Valkey server holding the limits shared by several processes (default: limits in process memory)", str(func(c *Config) *string { return &c.RedisURL }), false},
	{"redis-prefix", "start of the name of every Redis key Steward writes, so that deployments can share a Redis", str(func(c *Config) *string { return &c.RedisPrefix }), false},
	{"redis-fail-open", "kinds of limit that let requests through while Redis is unavailable, comma-separated, of requests_per_second, tokens_per_minute, tokens_per_month, spend_per_month; the others refuse them (\"none\" for no kind)", str(func(c *Config) *string { return &c.RedisFailOpen }), false},
	{"demo-model", "serve the built-in steward-demo model, which echoes its prompt", boolean(func(c *Config) *bool { return &c.DemoModel }), true},
	{"session-ttl", "longest life of a web sign-in (Admin Panel, Backoffice), e.g. 12h", duration(func(c *Config) *time.Duration { return &c.SessionTTL }), false},
	{"session-idle", "a web sign-in ends after this long unused, e.g. 1h", duration(func(c *Config) *time.Duration { return &c.SessionIdle }), false},
	{"secure-cookies", "mark web cookies Secure on plain HTTP too (behind a TLS-terminating proxy); requests over TLS always get them", boolean(func(c *Config) *bool { return &c.SecureCookies }), true},
	{"trusted-proxies", "addresses and CIDR prefixes of the reverse proxies in front, comma-separated, e.g. 10.0.0.0/8: their X-Forwarded-Proto marks cookies Secure and SCIM locations https, and their X-Forwarded-For names the client that sign-in throttling counts (default: none)", str(func(c *Config) *string { return &c.TrustedProxies }), false},
	{"body-timeout", "longest time a client may take to send a request's body, e.g. 30s (the model API's: --model-body-timeout)", duration(func(c *Config) *time.Duration { return &c.BodyTimeout }), false},
	{"model-body-timeout", "longest time a client may take to send a model API request's body (e.g. 2m)", duration(func(c *Config) *time.Duration { return &c.ModelBodyTimeout }), false},
	{"idle-timeout", "a kept-alive connection is closed after this long without a request (e.g. 2m)", duration(func(c *Config) *time.Duration { return &c.IdleTimeout }), false},
	{"alerts-interval", "how often spend, token and key alerts are evaluated (e.g. 1m)", duration(func(c *Config) *time.Duration { return &c.AlertsInterval }), false},
	{"max-unauthenticated-conns", "most connections kept open on which no request has authenticated; one more closes the oldest", func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return fmt.Errorf("must be a positive number of connections")
		}
		c.MaxUnauthenticatedConns = n
		return nil
	}, false},
	{"upstream-header-timeout", "longest time a model server may take to start answering before the next upstream is tried or the request fails with 502 (e.g. 5m; default: as long as the client waits)", duration(func(c *Config) *time.Duration { return &c.UpstreamHeaderTimeout }), false},
}

func boolean(f func(*Config) *bool) func(*Config, string) error {
	return func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("must be true or false")
		}
		*f(c) = b
		return nil
	}
}

func duration(f func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("must be a positive duration such as 15s or 168h")
		}
		*f(c) = d
		return nil
	}
}

// EnvName is the environment variable of a flag name.
func EnvName(flagName string) string {
	return "STEWARD_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Flags registers the named settings (all when names is empty) and --config
// on fs, and returns a function that, after fs.Parse, builds the Config from
// defaults, the file, the environment and the flags set.
func Flags(fs *flag.FlagSet, getenv func(string) string, names ...string) func() (Config, error) {
	configPath := fs.String("config", "", "YAML configuration file (env STEWARD_CONFIG)")
	defaults := defaultValues()
	raw := map[string]*string{}
	for _, o := range options {
		if len(names) > 0 && !slices.Contains(names, o.name) {
			continue
		}
		raw[o.name] = new(string)
		record := func(v string) error {
			*raw[o.name] = v
			return nil
		}
		if o.boolean {
			fs.BoolFunc(o.name, fmt.Sprintf("%s (env %s)", o.usage, EnvName(o.name)), record)
		} else {
			fs.Func(o.name, fmt.Sprintf("%s (env %s)", o.usage, EnvName(o.name)), record)
		}
		// Func flags have no default of their own: show Default()'s.
		fs.Lookup(o.name).DefValue = defaults[strings.ReplaceAll(o.name, "-", "_")]
	}
	return func() (Config, error) {
		c := Default()
		path := *configPath
		if path == "" {
			path = getenv("STEWARD_CONFIG")
		}
		if path != "" {
			if err := c.loadFile(path); err != nil {
				return Config{}, err
			}
		}
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		for _, o := range options {
			if _, ok := raw[o.name]; !ok {
				continue
			}
			if v := getenv(EnvName(o.name)); v != "" && !set[o.name] {
				if err := o.set(&c, v); err != nil {
					return Config{}, fmt.Errorf("%s: %w", EnvName(o.name), err)
				}
			}
			if set[o.name] {
				if err := o.set(&c, *raw[o.name]); err != nil {
					return Config{}, fmt.Errorf("--%s: %w", o.name, err)
				}
			}
		}
		return c, c.validate()
	}
}

// defaultValues returns Default()'s settings by their key in the config
// file, as text (durations as 15s); an empty setting is left out.
func defaultValues() map[string]string {
	b, err := yaml.Marshal(Default())
	if err != nil {
		panic(err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		panic(err)
	}
	out := map[string]string{}
	for k, v := range m {
		if s := fmt.Sprint(v); v != nil && s != "" && s != "0" && s != "0s" {
			out[k] = s
		}
	}
	return out
}

func (c *Config) loadFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config file: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	return nil
}

func (c *Config) validate() error {
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log level %q: want debug, info, warn or error", c.LogLevel)
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		return fmt.Errorf("log format %q: want text or json", c.LogFormat)
	}
	if c.DatabaseURL != "" && !strings.HasPrefix(c.DatabaseURL, "postgres://") && !strings.HasPrefix(c.DatabaseURL, "postgresql://") {
		return fmt.Errorf("database URL must start with postgres:// (or leave it empty for the embedded SQLite database)")
	}
	if c.DatabaseURL == "" && c.DataDir == "" {
		return fmt.Errorf("set a data directory or a database URL")
	}
	if c.PublicURL != "" {
		if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("public URL %q: want http(s)://host[:port]", c.PublicURL)
		}
		c.PublicURL = strings.TrimSuffix(c.PublicURL, "/")
	}
	if c.WebhookURL != "" {
		if u, err := url.Parse(c.WebhookURL); err != nil || (u.Scheme != "https" && !(c.WebhooksAllowPrivate && u.Scheme == "http")) || u.Host == "" {
			return fmt.Errorf("webhook URL %q: want https://host/path (http only with --webhooks-allow-private)", c.WebhookURL)
		}
	}
	if c.DebugAddr != "" {
		if !loopback(c.DebugAddr) {
			return fmt.Errorf("debug address %q: want a loopback host:port such as 127.0.0.1:6060, since the profiler has no authentication", c.DebugAddr)
		}
	}
	if c.RedisURL != "" && !strings.HasPrefix(c.RedisURL, "redis://") && !strings.HasPrefix(c.RedisURL, "rediss://") {
		return fmt.Errorf("Redis URL must start with redis:// or rediss://")
	}
	if _, err := c.FailOpenKinds(); err != nil {
		return err
	}
	for i, m := range c.Models {
		for _, p := range []struct {
			key   string
			price float64
			check func(float64) error
		}{
			{"input_price_per_million", m.InputPricePerMillion, billing.CheckPrice},
			{"output_price_per_million", m.OutputPricePerMillion, billing.CheckPrice},
			{"price_per_thousand_pages", m.PricePerThousandPages, billing.CheckPagePrice},
			{"price_per_minute_of_audio", m.PricePerMinuteOfAudio, billing.CheckAudioPrice},
		} {
			if err := p.check(p.price); err != nil {
				return fmt.Errorf("models[%d] (%q): %s: %w", i, m.Name, p.key, err)
			}
		}
	}
	if err := c.validateCards(); err != nil {
		return err
	}
	if u := c.Upstream; u != nil {
		if p, err := url.Parse(u.URL); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" || p.RawQuery != "" || p.Fragment != "" {
			return fmt.Errorf("upstream: url %q must be an absolute http or https URL without query or fragment", u.URL)
		}
		for group, t := range u.Timeouts {
			if t.Header < 0 || t.Idle < 0 {
				return fmt.Errorf("upstream: timeouts of %s must be positive durations", group)
			}
		}
	}
	if c.AgentModel != "" && !slices.ContainsFunc(c.Models, func(m Model) bool { return m.Name == c.AgentModel }) {
		return fmt.Errorf("agent_model %q is not one of models", c.AgentModel)
	}
	if c.InvitationTTL <= 0 || c.ShutdownTimeout <= 0 || c.BodyTimeout <= 0 || c.ModelBodyTimeout <= 0 || c.IdleTimeout <= 0 || c.AlertsInterval <= 0 || c.UpstreamHeaderTimeout < 0 {
		return fmt.Errorf("durations must be positive")
	}
	if c.MaxUnauthenticatedConns <= 0 {
		return fmt.Errorf("max unauthenticated connections must be positive")
	}
	if _, err := c.Proxies(); err != nil {
		return err
	}
	return nil
}

// validateCards checks the models' card settings: a context length that is
// not negative, and aliases that name no other model and no other alias.
func (c *Config) validateCards() error {
	names := map[string]string{}
	for _, m := range c.Models {
		names[m.Name] = fmt.Sprintf("the model %q", m.Name)
	}
	for i, m := range c.Models {
		if m.MaxContextLength < 0 {
			return fmt.Errorf("models[%d] (%q): max_context_length %d is negative", i, m.Name, m.MaxContextLength)
		}
		for _, a := range m.Aliases {
			if strings.TrimSpace(a) == "" || a != strings.TrimSpace(a) {
				return fmt.Errorf("models[%d] (%q): alias %q must be non-empty and without surrounding spaces", i, m.Name, a)
			}
			if other, taken := names[a]; taken {
				return fmt.Errorf("models[%d] (%q): alias %q is already %s", i, m.Name, a, other)
			}
			names[a] = fmt.Sprintf("an alias of the model %q", m.Name)
		}
	}
	return nil
}

// Proxies returns the proxies TrustedProxies lists.
func (c *Config) Proxies() (forwarded.Trusted, error) {
	return forwarded.Parse(c.TrustedProxies)
}

// Prices returns the price table of the models, and of the built-in
// models whose prices builtin gives (the demo model's): the one table the
// gateway, its limits and the usage report read.
func (c *Config) Prices(builtin ...billing.ModelPrice) (*billing.Prices, error) {
	ps := make([]billing.ModelPrice, 0, len(c.Models)+len(builtin))
	for _, m := range c.Models {
		ps = append(ps, billing.ModelPrice{Model: m.Name, InputPerMillion: m.InputPricePerMillion, OutputPerMillion: m.OutputPricePerMillion,
			PerThousandPages: m.PricePerThousandPages, PerMinuteOfAudio: m.PricePerMinuteOfAudio})
	}
	return billing.NewPrices(append(ps, builtin...))
}

// FailOpenKinds returns the kinds of limit RedisFailOpen names.
func (c *Config) FailOpenKinds() ([]limits.Kind, error) {
	kinds, err := limits.ParseKinds(c.RedisFailOpen)
	if err != nil {
		return nil, fmt.Errorf("redis fail open: %w", err)
	}
	return kinds, nil
}
