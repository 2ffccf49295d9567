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
	"sync"
	"time"

	"github.com/stewardhq/steward/internal/bootstrap"
	"github.com/stewardhq/steward/internal/config"
	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/gateway"
	"github.com/stewardhq/steward/internal/keys"
	"github.com/stewardhq/steward/internal/limits"
	"github.com/stewardhq/steward/internal/metering"
	"github.com/stewardhq/steward/internal/outbox"
	"github.com/stewardhq/steward/internal/quota"
	"github.com/stewardhq/steward/internal/scim"
	"github.com/stewardhq/steward/internal/server"
	"github.com/stewardhq/steward/internal/usage"
)

func runServe(ctx context.Context, env Env, args []string) error {
	fs := flagSet(env, "serve", "[flags]")
	load := config.Flags(fs, env.Getenv)
	cfg, err := parse(fs, args, load)
	if err != nil {
		return err
	}
	log := newLogger(cfg, env.Stderr)
	db, err := openStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer db.Close()

	// Listen before the first-start bootstrap, so that its secrets are
	// printed only when the server that accepts them is about to serve.
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	if cfg.DebugAddr != "" {
		stopDebug, err := serveDebug(cfg.DebugAddr, log)
		if err != nil {
			return err
		}
		defer stopDebug()
	}
	baseURL := "http://" + reachable(ln.Addr())

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
		}
	}

	publicURL := cfg.PublicURL
	if publicURL == "" {
		publicURL = baseURL
	}
	mail, err := outbox.New(db, outbox.Config{SMTPURL: cfg.SMTPURL, From: cfg.SMTPFrom, Log: log})
	if err != nil {
		return err
	}
	lastUsed := keys.NewLastUsed()
	checker, err := keys.NewChecker(ctx, db, directory.NewAccess(db))
	if err != nil {
		return err
	}
	recorder := usage.NewRecorder(db, usage.Options{Log: log})
	enforcer := quota.NewEnforcer(db, limits.NewLocal(nil), time.Now)
	gw, err := newGateway(cfg, env.Getenv, checker, enforcer, recorder, log)
	if err != nil {
		return err
	}
	enforcer.Cost = gw.Cost
	provisioning := scim.New(db, log, lastUsed)
	defer provisioning.Close()
	if err := provisioning.Recover(ctx); err != nil {
		return fmt.Errorf("recover SCIM sync runs: %w", err)
	}
	srv, err := server.New(server.Deps{
		DB: db, Log: log, LastUsed: lastUsed, MaxBodyBytes: cfg.MaxBodyBytes, Version: version(),
		Invitations: directory.InviteSettings{TTL: cfg.InvitationTTL, AcceptURL: publicURL + "/invitations/accept"},
		Gateway:     gw,
		Currency:    cfg.Currency,
		Prices:      prices(cfg),
		SCIM:        provisioning,
	})
	if err != nil {
		return err
	}
	httpSrv := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	bgCtx, stopBackground := context.WithCancel(context.Background())
	var background sync.WaitGroup
	background.Go(func() { lastUsed.Run(bgCtx, db, 10*time.Second, log) })
	background.Go(func() { mail.Run(bgCtx, 2*time.Second) })
	reminders := &keys.Reminders{DB: db, Webhook: cfg.WebhookURL, Client: &http.Client{Timeout: 10 * time.Second}, Log: log}
	background.Go(func() { reminders.Run(bgCtx, time.Hour) })
	background.Go(func() { keys.FlushEvery(bgCtx, 10*time.Second, checker.Flush, log) })
	background.Go(func() { gw.ExpireChecks(bgCtx, time.Minute) })

	serveErr := make(chan error, 1)
	go func() { serveErr <- httpSrv.Serve(ln) }()
	log.Info("steward serving", "url", baseURL, "database", db.Dialect().String(), "version", version())
	fmt.Fprintf(env.Stdout, "Steward is listening on %s\n", baseURL)

	recording := make(chan struct{})
	go func() {
		defer close(recording)
		recorder.Run(context.Background())
	}()

	select {
	case err = <-serveErr:
	case <-ctx.Done():
		log.Info("shutting down", "timeout", cfg.ShutdownTimeout)
		sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		err = httpSrv.Shutdown(sctx)
		cancel()
	}
	// Requests have finished: write the usage still queued, then stop.
	if cerr := recorder.Close(); cerr != nil {
		log.Error("write usage on shutdown", "err", cerr)
	}
	<-recording
	stopBackground()
	background.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// newGateway builds the model API from the configured models; their
// upstreams' keys come from the environment.
func newGateway(cfg config.Config, getenv func(string) string, checker *keys.Checker, lim gateway.Limits, recorder *usage.Recorder, log *slog.Logger) (*gateway.Gateway, error) {
	gcfg := gateway.Config{Currency: cfg.Currency, DemoModel: cfg.DemoModel}
	for _, m := range cfg.Models {
		gm := gateway.Model{Name: m.Name, InputPricePerMillion: m.InputPricePerMillion, OutputPricePerMillion: m.OutputPricePerMillion,
			MaxOutputTokens: m.MaxOutputTokens, Endpoints: m.Endpoints}
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
	return gateway.New(gcfg, checker, lim, metering.Recorder{Usage: recorder}, log)
}

// prices lists the configured models' prices for usage reports.
func prices(cfg config.Config) []server.ModelPrice {
	var out []server.ModelPrice
	for _, m := range cfg.Models {
		out = append(out, server.ModelPrice{Model: m.Name, InputPerMillion: m.InputPricePerMillion, OutputPerMillion: m.OutputPricePerMillion})
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
