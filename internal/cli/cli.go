// Package cli is the steward command: Run parses the subcommand and its
// flags and runs it. main only calls Run, so that tests run the real
// command in process.
package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"slices"
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

// Run runs the steward command line and returns its exit status. Help
// asked for (-h, --help, help CMD) goes to stdout and exits 0; a wrong
// command line prints its error and the usage to stderr and exits 2.
func Run(ctx context.Context, args []string, env Env) int {
	if len(args) == 0 {
		printUsage(env.Stderr)
		return 2
	}
	args = helpAsWord(args, 1)
	switch {
	case isHelp(args[0]):
		printUsage(env.Stdout)
		return 0
	case args[0] == "-version" || args[0] == "--version":
		printVersion(env.Stdout)
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, env, args[1:])
		switch {
		case err == nil, errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage), errors.Is(err, errChanges):
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
	fmt.Fprintln(w, "\nRun 'steward help <command>' or 'steward <command> -h' for a command's help and flags,\n'steward --version' for the version. Every flag of serve can also be set as STEWARD_<FLAG> or in a --config file.")
}

// isHelp tells whether a word asks for help rather than naming a command.
func isHelp(word string) bool {
	switch word {
	case "-h", "-help", "--help", "help":
		return true
	}
	return false
}

// helpAsWord turns the word help among the first n of args into a
// trailing -h, so that "help X Y" and "X help Y" ask for X Y's help; a
// help with nothing after it is left for the caller to answer.
func helpAsWord(args []string, n int) []string {
	for i := 0; i < n && i+1 < len(args); i++ {
		if args[i] == "help" {
			return append(append(slices.Clone(args[:i]), args[i+1:]...), "-h")
		}
	}
	return args
}

// flagSet returns a flag set that returns errors instead of exiting; its
// usage lists every flag with its default. Parse it with parseArgs, which
// sends the usage to stdout when -h or --help asks for it.
func flagSet(env Env, name, args string) *flag.FlagSet {
	fs := flag.NewFlagSet("steward "+name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: steward %s %s\n\nflags:\n", name, args)
		printFlags(fs)
	}
	return fs
}

// printFlags lists fs's flags, each with its usage and its default: the
// flag's default value, the usage's own words on it, or none.
func printFlags(fs *flag.FlagSet) {
	w := fs.Output()
	fs.VisitAll(func(f *flag.Flag) {
		dashes := "--"
		if len(f.Name) == 1 {
			dashes = "-"
		}
		arg, usage := flag.UnquoteUsage(f)
		switch _, isBool := f.Value.(interface{ IsBoolFlag() bool }); {
		case isBool:
			arg = ""
		case arg == "value" || arg == "string":
			arg = strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		}
		line := "  " + dashes + f.Name
		if arg != "" {
			line += " " + arg
		}
		switch {
		case strings.Contains(usage, "default"):
		case f.DefValue != "":
			usage += fmt.Sprintf(" (default %s)", f.DefValue)
		default:
			usage += " (default: none)"
		}
		fmt.Fprintf(w, "%s\n    \t%s\n", line, strings.ReplaceAll(usage, "\n", "\n    \t"))
	})
}

// parseArgs parses args with fs. On -h or --help it prints the usage to
// stdout and returns flag.ErrHelp; on a wrong flag it prints the error and
// the usage to stderr and returns errUsage.
func parseArgs(env Env, fs *flag.FlagSet, args []string) error {
	var buf bytes.Buffer
	fs.SetOutput(&buf)
	err := fs.Parse(args)
	fs.SetOutput(env.Stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		_, werr := env.Stdout.Write(buf.Bytes())
		if werr != nil {
			return werr
		}
		return flag.ErrHelp
	case err != nil:
		_, _ = env.Stderr.Write(buf.Bytes())
		return errUsage
	}
	return nil
}

// parse parses args, which must all be flags, and loads the configuration.
func parse(env Env, fs *flag.FlagSet, args []string, load func() (config.Config, error)) (config.Config, error) {
	if err := parseFlags(env, fs, args); err != nil {
		return config.Config{}, err
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
	if err := parseFlags(env, flagSet(env, "version", ""), args); err != nil {
		return err
	}
	printVersion(env.Stdout)
	return nil
}

func printVersion(w io.Writer) {
	fmt.Fprintf(w, "steward %s\n", version())
}
