package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/stewardhq/steward/internal/audit"
	"github.com/stewardhq/steward/internal/config"
)

var dbFlags = []string{"data-dir", "database-url", "log-level", "log-format"}

func runMigrate(ctx context.Context, env Env, args []string) error {
	fs := flagSet(env, "migrate", "[--data-dir DIR | --database-url URL]")
	cfg, err := parse(env, fs, args, config.Flags(fs, env.Getenv, dbFlags...))
	if err != nil {
		return err
	}
	db, err := openStore(ctx, cfg, newLogger(cfg, env.Stderr))
	if err != nil {
		return err
	}
	defer db.Close()
	fmt.Fprintln(env.Stdout, "migrations are up to date")
	return nil
}

func runAudit(ctx context.Context, env Env, args []string) error {
	if len(args) == 0 || args[0] != "verify" {
		fmt.Fprintln(env.Stderr, "usage: steward audit verify [--data-dir DIR | --database-url URL]")
		return errUsage
	}
	fs := flagSet(env, "audit verify", "[--data-dir DIR | --database-url URL]")
	cfg, err := parse(env, fs, args[1:], config.Flags(fs, env.Getenv, dbFlags...))
	if err != nil {
		return err
	}
	db, err := openStore(ctx, cfg, newLogger(cfg, io.Discard))
	if err != nil {
		return err
	}
	defer db.Close()
	rep, err := audit.Verify(ctx, db)
	if err != nil {
		return err
	}
	if len(rep.Breaks) == 0 {
		fmt.Fprintf(env.Stdout, "audit log intact: %d entries in %d chains verified\n", rep.Entries, rep.Chains)
		return nil
	}
	for _, b := range rep.Breaks {
		fmt.Fprintf(env.Stdout, "BROKEN %s\n", b)
	}
	return fmt.Errorf("audit log tampered with: %d of %d chains broken", len(rep.Breaks), rep.Chains)
}
