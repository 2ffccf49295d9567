package cli

import (
	"context"
	"fmt"

	"github.com/stewardhq/steward/internal/config"
)

// runDoctor checks the configuration serve would run with (the same
// flags, environment and file) for the mistakes serve warns about at
// start, says what to change, and fails when it finds one.
func runDoctor(_ context.Context, env Env, args []string) error {
	fs := flagSet(env, "doctor", "[serve's flags]")
	load := config.Flags(fs, env.Getenv)
	cfg, err := parse(env, fs, args, load)
	if err != nil {
		return err
	}
	problems := cfg.Problems()
	for _, p := range problems {
		fmt.Fprintf(env.Stdout, "problem: %s\n  change: %s\n\n", p.What, p.Change)
	}
	switch len(problems) {
	case 0:
		fmt.Fprintln(env.Stdout, "No problems found in this configuration.")
		return nil
	case 1:
		return fmt.Errorf("1 problem found")
	default:
		return fmt.Errorf("%d problems found", len(problems))
	}
}
