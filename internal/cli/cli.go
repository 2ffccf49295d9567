// Package cli is the steward command: Run parses the subcommand and its
// flags and runs it. main only calls Run, so that tests run the real
// command in process.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"strings"

	"github.com/stewardhq/steward/internal/config"
	"github.com/stewardhq/steward/internal/store"
)

// Version is set at build time with -ldflags "-X .../cli.Version=v1.2.3";
// otherwise the module version or VCS revision is used.
var Version = ""

// Env is what a command reads from and writes to.
type Env struct {
	Getenv func(string) string
	Stdout io.Writer
	Stderr io.Writer
}

// errUsage means the command line was wrong; usage was printed.
var errUsage = errors.New("usage")

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env Env, args []string) error
}

func commands() []command {
	cmds := []command{
		{"serve", "run the Admin API and every other surface", runServe},
		{"doctor", "check serve's configuration for insecure settings and say what to change", runDoctor},
		{"init", "initialise an empty database and print its first keys", runInit},
		{"migrate", "apply database migrations", runMigrate},
		{"audit", "verify the audit log's hash chains (audit verify); list and tail it through the Admin API", runAuditCommands},
		{"backoffice", "administer the Enterprise Account of a running server (account, orgs, members, admin-keys)", runBackoffice},
		{"export", "write an Organization's configuration as YAML, read through the Admin API", runExport},
		{"plan", "show what apply would change to make the Organization match a file (exit 2: changes)", runPlan},
		{"apply", "change the Organization to match a file, through the Admin API", runApply},
		{"completion", "print a shell completion script (completion bash|zsh)", runCompletion},
		{"version", "print the version", runVersion},
	}
	for _, noun := range adminNouns() {
		if noun != "audit" {
			cmds = append(cmds, command{noun, "Admin API: " + adminNounSummary(noun), runAdmin(noun)})
		}
	}
	return cmds
}

// Run runs the steward command line and returns its exit status.
func Run(ctx context.Context, args []string, env Env) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printUsage(env.Stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, env, args[1:])
		switch {
		case err == nil:
			return 0
		case errors.Is(err, errUsage), errors.Is(err, flag.ErrHelp), errors.Is(err, errChanges):
			return 2
		default:
			fmt.Fprintf(env.Stderr, "steward %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(env.Stderr, "steward: unknown command %q\n\n", args[0])
	printUsage(env.Stderr)
	return 2
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: steward <command> [flags]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-13s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'steward <command> -h' for a command's flags. Every flag can also be set as STEWARD_<FLAG> or in a --config file.")
}

// flagSet returns a flag set that prints its errors and usage to stderr and
// returns errors instead of exiting.
func flagSet(env Env, name, args string) *flag.FlagSet {
	fs := flag.NewFlagSet("steward "+name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(env.Stderr, "usage: steward %s %s\n\nflags:\n", name, args)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses args and loads the configuration.
func parse(fs *flag.FlagSet, args []string, load func() (config.Config, error)) (config.Config, error) {
	if err := fs.Parse(args); err != nil {
		return config.Config{}, errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected arguments: %s\n", strings.Join(fs.Args(), " "))
		fs.Usage()
		return config.Config{}, errUsage
	}
	return load()
}

// openStore opens and migrates the configured database.
func openStore(ctx context.Context, cfg config.Config, log *slog.Logger) (*store.DB, error) {
	db, err := store.Open(ctx, store.Config{DataDir: cfg.DataDir, DatabaseURL: cfg.DatabaseURL})
	if err != nil {
		return nil, err
	}
	applied, err := db.Migrate(ctx)
	if err != nil {
		db.Close()
		return nil, err
	}
	for _, m := range applied {
		log.Info("applied migration", "migration", m)
	}
	return db, nil
}

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func version() string {
	if Version != "" {
		return Version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			return "devel-" + s.Value[:12]
		}
	}
	return "devel"
}

func runVersion(_ context.Context, env Env, args []string) error {
	fs := flagSet(env, "version", "")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	fmt.Fprintf(env.Stdout, "steward %s\n", version())
	return nil
}
