package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/stewardhq/steward/internal/alerts"
	"github.com/stewardhq/steward/internal/analytics"
	"github.com/stewardhq/steward/internal/audit"
	"github.com/stewardhq/steward/internal/auth"
	"github.com/stewardhq/steward/internal/billing"
	"github.com/stewardhq/steward/internal/bootstrap"
	"github.com/stewardhq/steward/internal/config"
	"github.com/stewardhq/steward/internal/conns"
	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/enforce"
	"github.com/stewardhq/steward/internal/gateway"
	"github.com/stewardhq/steward/internal/inference"
	"github.com/stewardhq/steward/internal/keys"
	"github.com/stewardhq/steward/internal/metering"
	"github.com/stewardhq/steward/internal/objects"
	"github.com/stewardhq/steward/internal/outbox"
	"github.com/stewardhq/steward/internal/scim"
	"github.com/stewardhq/steward/internal/server"
	"github.com/stewardhq/steward/internal/sso"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/usage"
	"github.com/stewardhq/steward/internal/web"
	"github.com/stewardhq/steward/internal/webhooks"
)

func runServe(ctx context.Context, env Env, args []string) error {
	fs := flagSet(env, "serve", "[flags]")
	load := config.Flags(fs, env.Getenv)
	cfg, err := parse(env, fs, args, load)
	if err != nil {
		return err
	}
	log := newLogger(cfg, env.Stderr)
	log.Info("steward starting", "version", version())
	for _, p := range cfg.Problems() {
		log.Warn(p.What, "change", p.Change)
	}
	proxies, err := cfg.Proxies()
	if err != nil {
		return err
	}
	sweepEvery, err := sweepInterval(env.Getenv)
	if err != nil {
		return err
	}
	serverWebhookSecret, err := webhookSecret(cfg, env.Getenv)
	if err != nil {
		return err
	}
	webhookLease, err := envDuration(env.Getenv, webhookLeaseEnv, time.Minute)
	if err != nil {
		return err
	}
	if cfg.DatabaseURL == "" {
		// One server owns an SQLite database: the usage it left in flight
		// is settled at start, which another server on the file would undo.
		release, err := store.OwnSQLite(cfg.DataDir)
		if err != nil {
			return err
		}
		defer release()
	}
	db, err := openStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer db.Close()

	// Listen before the first-start bootstrap, so that its secrets are
	// printed only when the server that accepts them is about to serve.
	tcp, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	defer tcp.Close()
	ln := conns.NewListener(tcp, cfg.MaxUnauthenticatedConns)
	if cfg.DebugAddr != "" {
		stopDebug, err := serveDebug(cfg.DebugAddr, log)
		if err != nil {
			return err
		}
		defer stopDebug()
	}
	baseURL := "http://" + reachable(ln.Addr())

	publicURL := cfg.PublicURL
	if publicURL == "" {
		publicURL = baseURL
	}
	reset := auth.ResetSettings{TTL: auth.DefaultResetTTL, URL: publicURL + web.Prefix + "/password/reset"}

	initialised, err := bootstrap.Initialised(ctx, db)
	if err != nil {
		return err
	}
	if !initialised {
		r, err := bootstrap.Run(ctx, db, bootstrap.Options{OrgName: cfg.OrgName, AdminEmail: cfg.AdminEmail, Actor: "steward serve (first start)"})
		switch {
		case errors.Is(err, bootstrap.ErrInitialised):
			// Another process initialised the database a moment ago.
		case err != nil:
			return fmt.Errorf("first-start initialisation: %w", err)
		default:
			printFirstStart(env.Stdout, r, baseURL)
			if err := printPasswordLink(ctx, env.Stdout, db, r.Admin, reset); err != nil {
				return err
			}
		}
	}

	mail, err := outbox.New(db, outbox.Config{SMTPURL: cfg.SMTPURL, From: cfg.SMTPFrom, Log: log})
	if err != nil {
		return err
	}
	lastUsed := keys.NewLastUsed()
	access := directory.NewAccess(db)
	checker, err := keys.NewChecker(ctx, db, access)
	if err != nil {
		return err
	}
	// Loading every key leaves garbage the size of the keys' rows: give its
	// memory back to the system now rather than over the next minutes.
	debug.FreeOSMemory()
	recorder := usage.NewRecorder(db, usage.Options{Log: log, Derive: metering.Analytics})
	// Each model request's reservation is written while its upstream
	// works, and what a dead process left is settled at its reservation:
	// on SQLite at start, by the one process of the database; on
	// PostgreSQL by every process, at start and every sweepEvery, for the
	// processes whose lock it can take.
	var process *usage.Process
	if db.Dialect() == store.Postgres {
		if process, err = usage.Join(ctx, recorder); err != nil {
			return err
		}
		defer process.Close()
	}
	if err := settleOrphans(ctx, recorder, process != nil, log); err != nil {
		return err
	}
	limiter, closeLimiter, err := newLimiter(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer closeLimiter()
	events := analytics.NewRecorder(db, log)
	var builtin []billing.ModelPrice
	if cfg.DemoModel {
		builtin = append(builtin, gateway.DemoPrice)
	}
	prices, err := cfg.Prices(builtin...)
	if err != nil {
		return err
	}
	enforcer := enforce.New(db, limiter, prices, time.Now)
	m := newMetrics(db, limiter, checker, access, recorder)
	// One authenticator reads the credentials of every surface.
	authn, err := auth.New(auth.Config{
		DB: db, LastUsed: lastUsed, WorkspaceKeys: checker, ReportToken: env.Getenv(reportTokenEnv),
		Sessions: auth.SessionSettings{TTL: cfg.SessionTTL, Idle: cfg.SessionIdle},
	})
	if err != nil {
		return err
	}
	gw, err := newGateway(cfg, prices, objects.NewService(db), env.Getenv, m.Auth(authn), m.Limits(enforcer), m.Recorder(metering.Meter{Usage: recorder, Intents: true}), m.Transport(gateway.UpstreamTransport(cfg.UpstreamHeaderTimeout)), log)
	if err != nil {
		return err
	}
	provisioning := scim.New(db, log, authn, proxies)
	defer provisioning.Close()
	if err := provisioning.Recover(ctx); err != nil {
		return fmt.Errorf("recover SCIM sync runs: %w", err)
	}
	invitations := directory.InviteSettings{TTL: cfg.InvitationTTL, AcceptURL: publicURL + "/invitations/accept"}
	// Webhooks: the dispatcher delivers the audit log's entries, the
	// sender retries the deliveries that failed and sends test events.
	guard := webhooks.Guard{AllowPrivate: cfg.WebhooksAllowPrivate}
	if err := webhooks.ConfigureServerEndpoint(ctx, db, cfg.WebhookURL, serverWebhookSecret); err != nil {
		return fmt.Errorf("server-wide webhook endpoint: %w", err)
	}
	hookSender := webhooks.NewSender(db, guard, webhooks.Settings{Lease: webhookLease}, log)
	hookDispatcher := webhooks.NewDispatcher(hookSender)
	// On PostgreSQL, audit entries are linked into their chains after
	// their commit (audit.Link), in every process; entries committed here
	// wake this process's linker at once, and entries linked here (on
	// SQLite, at their commit) its dispatcher. Both otherwise look every
	// second, and find the other processes' work then.
	linker := audit.NewLinker(db, log)
	db.Subscribe(func(c store.Change) {
		switch c.Topic {
		case audit.TopicUnlinked:
			linker.Nudge()
		case audit.TopicLinked:
			hookDispatcher.Nudge()
		}
	})
	hooks := webhooks.NewService(db, guard, hookSender.Nudge)
	// Single sign-on: one service for the pages and the Admin API; client
	// secrets are read from the environment or files at each use.
	signOn := sso.New(sso.Config{DB: db, PublicURL: publicURL, Getenv: env.Getenv, Log: log})
	pages, err := web.New(web.Config{
		DB: db, Log: log, Currency: cfg.Currency, Invitations: invitations, SecureCookies: cfg.SecureCookies, Proxies: proxies,
		Auth: authn, Reset: reset, Throttle: limiter, Models: servedModels(cfg), Webhooks: hooks, SSO: signOn,
	})
	if err != nil {
		return err
	}
	srv, err := server.New(server.Deps{
		DB: db, Log: log, Auth: authn, MaxBodyBytes: cfg.MaxBodyBytes, Version: version(),
		BodyTimeout: cfg.BodyTimeout, ModelBodyTimeout: cfg.ModelBodyTimeout,
		Invitations: invitations,
		Gateway:     m.Routes(gw.Routes()),
		Analytics:   events,
		Web:         pages,
		SCIM:        provisioning,
		Currency:    cfg.Currency,
		Prices:      prices,
		Models:      servedModels(cfg),
		Webhooks:    hooks,
		SSO:         signOn,
	})
	if err != nil {
		return err
	}
	if cfg.MetricsAddr != "" {
		stopMetrics, err := serveMetrics(cfg.MetricsAddr, m, log)
		if err != nil {
			return err
		}
		defer stopMetrics()
	}
	// Slow clients are bounded at every step: the headers by
	// ReadHeaderTimeout, the body by the server's body timeouts, the wait
	// for another request by IdleTimeout, and the number of connections
	// that have not authenticated by the listener.
	httpSrv := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       cfg.IdleTimeout,
		ConnContext:       conns.Context,
	}
	bgCtx, stopBackground := context.WithCancel(context.Background())
	var background sync.WaitGroup
	background.Go(func() { lastUsed.Run(bgCtx, db, 10*time.Second, log) })
	background.Go(func() { mail.Run(bgCtx, 2*time.Second) })
	reminders := &keys.Reminders{DB: db, Log: log}
	background.Go(func() { reminders.Run(bgCtx, time.Hour) })
	evaluator := &alerts.Evaluator{DB: db, Log: log}
	background.Go(func() { evaluator.Run(bgCtx, cfg.AlertsInterval) })
	background.Go(func() { linker.Run(bgCtx, time.Second) })
	background.Go(func() { hookDispatcher.Run(bgCtx, time.Second) })
	background.Go(func() { hookSender.Run(bgCtx, time.Second) })
	background.Go(func() { keys.FlushEvery(bgCtx, 10*time.Second, checker.Flush, log) })
	background.Go(func() { gw.ExpireChecks(bgCtx, time.Minute) })
	background.Go(func() { gw.RefreshCapabilities(bgCtx, gateway.CapabilitiesInterval) })
	background.Go(func() { db.Follow(bgCtx, resyncEvery, log) })
	if process != nil {
		background.Go(func() { process.Run(bgCtx, sweepEvery) })
	}
	select {
	case <-db.FeedReady():
	case <-time.After(5 * time.Second):
		log.Warn("change feed: not listening yet; serving anyway, other processes' changes arrive once it does")
	}

	serveErr := make(chan error, 1)
	go func() { serveErr <- httpSrv.Serve(ln) }()
	log.Info("steward serving", "url", baseURL, "database", db.Dialect().String(), "version", version())
	fmt.Fprintf(env.Stdout, "Steward is listening on %s\n", baseURL)

	recording := make(chan struct{})
	go func() {
		defer close(recording)
		recorder.Run(context.Background())
	}()
	go events.Run()

	select {
	case err = <-serveErr:
	case <-ctx.Done():
		log.Info("shutting down", "timeout", cfg.ShutdownTimeout)
		sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		err = httpSrv.Shutdown(sctx)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			// Cut what still runs, streams mostly: closing their
			// connections cancels their upstream calls, and each records
			// its usage at its estimate.
			log.Warn("shutdown timeout reached: closing the connections of requests still in flight")
			_ = httpSrv.Close()
		}
	}
	// Let the model requests record their usage, then write the usage
	// still queued, and stop.
	dctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	if derr := gw.Drain(dctx); derr != nil {
		log.Error("model requests still recording their usage at exit", "err", derr)
	}
	cancel()
	if cerr := recorder.Close(); cerr != nil {
		log.Error("write usage on shutdown", "err", cerr)
	}
	<-recording
	events.Close()
	stopBackground()
	background.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// drainTimeout bounds the wait, at exit, for model requests to record
// their usage once their connections are closed: a little more than the
// gateway gives a request to record it.
const drainTimeout = 15 * time.Second

// settleOrphans records, before serving, the usage of the requests left in
// flight by processes that died: on SQLite every intent left in the file
// (SettleOrphans), on PostgreSQL (sweep set) those of the processes that
// are gone (Sweep).
func settleOrphans(ctx context.Context, recorder *usage.Recorder, sweep bool, log *slog.Logger) error {
	settle := recorder.SettleOrphans
	if sweep {
		settle = recorder.Sweep
	}
	n, err := settle(ctx)
	if err != nil {
		return fmt.Errorf("record the usage of requests in flight in processes that stopped: %w", err)
	}
	if n > 0 {
		log.Warn("recorded requests in flight in processes that stopped at their reservation, marked estimated", "requests", n)
	}
	return nil
}

// sweepEnv is the environment variable that sets how often each process
// settles the usage intents of processes that died, on PostgreSQL: a
// minute unless set, shorter in tests.
const sweepEnv = "STEWARD_USAGE_SWEEP_INTERVAL"

// sweepInterval reads sweepEnv.
func sweepInterval(getenv func(string) string) (time.Duration, error) {
	return envDuration(getenv, sweepEnv, time.Minute)
}

// envDuration reads the duration in the environment variable name, def
// when it is unset.
func envDuration(getenv func(string) string, name string, def time.Duration) (time.Duration, error) {
	v := getenv(name)
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s=%q: want a positive duration, such as 1m or 500ms", name, v)
	}
	return d, nil
}

// webhookLeaseEnv sets how long a webhook delivery's claim keeps other
// processes off it (webhooks.Settings.Lease): a minute unless set, shorter
// in tests.
const webhookLeaseEnv = "STEWARD_WEBHOOKS_LEASE"

// The signing secret of the server-wide webhook endpoint (--webhook-url):
// in the environment, or in the file the other variable names, never on
// the command line or in the config file.
const (
	webhookSecretEnv     = "STEWARD_WEBHOOK_SECRET"
	webhookSecretFileEnv = "STEWARD_WEBHOOK_SECRET_FILE"
)

// webhookSecret returns the server-wide endpoint's signing secret, required
// when --webhook-url is set.
func webhookSecret(cfg config.Config, getenv func(string) string) (string, error) {
	if cfg.WebhookURL == "" {
		return "", nil
	}
	secret := getenv(webhookSecretEnv)
	if path := getenv(webhookSecretFileEnv); secret == "" && path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("%s: %w", webhookSecretFileEnv, err)
		}
		secret = strings.TrimSpace(string(b))
	}
	if secret == "" {
		return "", fmt.Errorf("--webhook-url needs a signing secret: set %s (or %s, a file holding it) to whsec_ and 32 random bytes in base64, e.g. whsec_$(openssl rand -base64 32)",
			webhookSecretEnv, webhookSecretFileEnv)
	}
	if err := webhooks.CheckSecret(secret); err != nil {
		return "", fmt.Errorf("%s: %w", webhookSecretEnv, err)
	}
	return secret, nil
}

// reportTokenEnv is the environment variable holding the check API's report
// token (auth.Config.ReportToken). It is read from the environment only,
// so that the secret is in no file and on no command line.
const reportTokenEnv = "STEWARD_CHECK_REPORT_TOKEN"

// newGateway builds the model API from the configured models, priced by
// prices, and the default upstream, whose objects objs records; the
// upstreams' keys come from the environment.
func newGateway(cfg config.Config, prices *billing.Prices, objs inference.Objects, getenv func(string) string, authn inference.Authenticator, lim inference.Limits, recorder inference.Recorder, transport http.RoundTripper, log *slog.Logger) (*gateway.Gateway, error) {
	gcfg := gateway.Config{Prices: prices, Currency: cfg.Currency, DemoModel: cfg.DemoModel, AgentModel: cfg.AgentModel, Transport: transport, Objects: objs}
	for _, m := range cfg.Models {
		gm := gateway.Model{Name: m.Name, MaxOutputTokens: m.MaxOutputTokens, MaxPages: m.MaxPages, MaxAudioSeconds: m.MaxAudioSeconds, Endpoints: m.Endpoints,
			Aliases: m.Aliases, Description: m.Description, MaxContextLength: m.MaxContextLength, Capabilities: m.Capabilities}
		for _, u := range m.Upstreams {
			up := gateway.Upstream{BaseURL: u.URL}
			if u.APIKeyEnv != "" {
				if up.APIKey = getenv(u.APIKeyEnv); up.APIKey == "" {
					return nil, fmt.Errorf("model %s: the environment variable %s, which holds its upstream's key, is empty", m.Name, u.APIKeyEnv)
				}
			}
			gm.Upstreams = append(gm.Upstreams, up)
		}
		gcfg.Models = append(gcfg.Models, gm)
	}
	if u := cfg.Upstream; u != nil {
		gcfg.Upstream = &gateway.Upstream{BaseURL: u.URL}
		if u.APIKeyEnv != "" {
			if gcfg.Upstream.APIKey = getenv(u.APIKeyEnv); gcfg.Upstream.APIKey == "" {
				return nil, fmt.Errorf("upstream: the environment variable %s, which holds the default upstream's key, is empty", u.APIKeyEnv)
			}
		}
		gcfg.Timeouts = map[string]gateway.Timeouts{}
		for group, t := range u.Timeouts {
			gcfg.Timeouts[group] = gateway.Timeouts{Header: t.Header, Idle: t.Idle}
		}
	}
	return gateway.New(gcfg, authn, lim, recorder, log)
}

// servedModels names the models the model API serves, the demo model
// included, which allow lists may name.
func servedModels(cfg config.Config) []string {
	var out []string
	for _, m := range cfg.Models {
		out = append(out, m.Name)
	}
	if cfg.DemoModel {
		out = append(out, gateway.DemoModelName)
	}
	return out
}

// reachable turns a listener's address into one a local client can call:
// an unspecified host (0.0.0.0, ::) becomes 127.0.0.1.
func reachable(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok || tcp.IP.IsUnspecified() {
		if ok {
			return fmt.Sprintf("127.0.0.1:%d", tcp.Port)
		}
		return a.String()
	}
	return tcp.String()
}

func printFirstStart(w io.Writer, r bootstrap.Result, baseURL string) {
	fmt.Fprintf(w, `
Steward initialised this database on its first start:

  Enterprise Account  %s  (%s)
  Organization        %s  (%s)
  Organization admin  %s  (%s)

  Admin API key   %s
  Backoffice key  %s

These two secrets are shown once and stored only as hashes: keep them now.
Call the Admin API with the admin key, for example:

  curl -H 'x-api-key: %s' %s/v1/admin/audit-logs

`, r.EnterpriseAccount.Name, r.EnterpriseAccount.ID, r.Organization.Name, r.Organization.ID,
		r.Admin.Email, r.Admin.ID, r.AdminKeySecret, r.BackofficeSecret, r.AdminKeySecret, baseURL)
}

// firstPasswordTTL is how long the first admin's password link works.
const firstPasswordTTL = 24 * time.Hour

// printPasswordLink prints a one-time link that sets the first admin's
// password for the Admin Panel and the Backoffice.
func printPasswordLink(ctx context.Context, w io.Writer, db *store.DB, admin steward.User, reset auth.ResetSettings) error {
	reset.TTL = firstPasswordTTL
	var link string
	err := db.Transact(ctx, func(tx *store.Tx) error {
		var err error
		link, err = auth.ResetLink(ctx, tx, admin.ID, reset)
		return err
	})
	if err != nil {
		return fmt.Errorf("first admin's password link: %w", err)
	}
	fmt.Fprintf(w, "Choose %s's password for the Admin Panel (%s/) within %s:\n\n  %s\n\n",
		admin.Email, strings.TrimSuffix(reset.URL, "/password/reset"), firstPasswordTTL, link)
	return nil
}

// serveDebug serves Go's profiler on addr, which config has checked is a
// loopback address, until the returned function is called.
func serveDebug(addr string, log *slog.Logger) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("debug address: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	log.Info("profiler serving", "url", "http://"+ln.Addr().String()+"/debug/pprof/")
	return func() { _ = srv.Close() }, nil
}
