package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/stewardhq/steward/internal/bootstrap"
	"github.com/stewardhq/steward/internal/config"
	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/keys"
	"github.com/stewardhq/steward/internal/outbox"
	"github.com/stewardhq/steward/internal/server"
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
	srv, err := server.New(server.Deps{
		DB: db, Log: log, LastUsed: lastUsed, MaxBodyBytes: cfg.MaxBodyBytes, Version: version(),
		Invitations: directory.InviteSettings{TTL: cfg.InvitationTTL, AcceptURL: publicURL + "/invitations/accept"},
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

	serveErr := make(chan error, 1)
	go func() { serveErr <- httpSrv.Serve(ln) }()
	log.Info("steward serving", "url", baseURL, "database", db.Dialect().String(), "version", version())
	fmt.Fprintf(env.Stdout, "Steward is listening on %s\n", baseURL)

	select {
	case err = <-serveErr:
	case <-ctx.Done():
		log.Info("shutting down", "timeout", cfg.ShutdownTimeout)
		sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		err = httpSrv.Shutdown(sctx)
		cancel()
	}
	stopBackground()
	background.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
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
