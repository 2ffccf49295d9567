package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/stewardhq/steward/client"
	"github.com/stewardhq/steward/internal/orgfile"
)

// errChanges is plan's answer when the Organization does not match the
// file: exit status 2, as diff and terraform plan -detailed-exitcode do, so
// that CI tells "changes" from "failed".
var errChanges = errors.New("changes")

// connection registers --url and, unless keyVar is empty, --key on fs, and
// returns a function that makes the client once the flags are parsed: a
// flag not given is read from the environment (STEWARD_URL, keyVar).
func connection(env Env, fs *flag.FlagSet, keyVar string) func() (*client.Admin, error) {
	u := fs.String("url", defaultServerURL, "base URL of the Steward server, or of Mistral's API (env STEWARD_URL)")
	var key *string
	if keyVar != "" {
		key = fs.String("key", "", "the key to send (default: $"+keyVar+")")
	}
	return func() (*client.Admin, error) {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if v := env.Getenv("STEWARD_URL"); v != "" && !set["url"] {
			*u = v
		}
		k := ""
		if key != nil {
			if !set["key"] {
				*key = env.Getenv(keyVar)
			}
			if k = strings.TrimSpace(*key); k == "" {
				fmt.Fprintf(env.Stderr, "%s: a key is required: pass --key or set %s\n", fs.Name(), keyVar)
				return nil, errUsage
			}
		}
		c, err := client.New(*u, k, client.WithUserAgent("steward/"+version()))
		if err != nil {
			fmt.Fprintf(env.Stderr, "%s: --url must be an http:// or https:// URL such as %s, not %q\n", fs.Name(), defaultServerURL, *u)
			return nil, errUsage
		}
		return c, nil
	}
}

func runExport(ctx context.Context, env Env, args []string) error {
	fs := flagSet(env, "export", "[--url URL] [--key KEY] > org.yaml")
	connect := connection(env, fs, "STEWARD_ADMIN_KEY")
	if err := parseFlags(env, fs, args); err != nil {
		return err
	}
	c, err := connect()
	if err != nil {
		return err
	}
	f, err := orgfile.Export(ctx, c)
	if err != nil {
		return err
	}
	heading := fmt.Sprintf("Organization configuration, written by steward export on %s.\nsteward plan -f FILE shows what steward apply -f FILE would change. Secrets are never written.", time.Now().UTC().Format(time.DateOnly))
	if f.Organization == nil {
		heading += "\nThis server does not serve Steward's extensions: custom roles, key policies, the time zone, Workspace limits and webhooks are left out."
	}
	return orgfile.Write(env.Stdout, f, heading)
}

// showPlan is the start plan and apply share: it reads the file named by
// -f and the server, compares them, and prints the plan.
func showPlan(ctx context.Context, env Env, name string, args []string) (*orgfile.Plan, error) {
	fs := flagSet(env, name, "-f FILE [--prune] [--url URL] [--key KEY]")
	file := fs.String("f", "", "the `FILE` to match, as steward export writes it (- for standard input)")
	prune := fs.Bool("prune", false, "delete the Workspaces, groups, custom roles and webhook endpoints the file does not list, and direct Workspace memberships a member's workspaces do not list")
	connect := connection(env, fs, "STEWARD_ADMIN_KEY")
	if err := parseFlags(env, fs, args); err != nil {
		return nil, err
	}
	if *file == "" {
		fmt.Fprintln(fs.Output(), "missing -f FILE")
		fs.Usage()
		return nil, errUsage
	}
	in := os.Stdin
	if *file != "-" {
		f, err := os.Open(*file)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		in = f
	}
	parsed, err := orgfile.Read(in)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", *file, err)
	}
	c, err := connect()
	if err != nil {
		return nil, err
	}
	p, err := orgfile.NewPlan(ctx, c, parsed, orgfile.Options{Prune: *prune})
	if err != nil {
		return nil, err
	}
	if err := p.Write(env.Stdout); err != nil {
		return nil, err
	}
	return p, nil
}

func runPlan(ctx context.Context, env Env, args []string) error {
	p, err := showPlan(ctx, env, "plan", args)
	if err != nil {
		return err
	}
	if p.Pending() > 0 {
		return errChanges
	}
	return nil
}

func runApply(ctx context.Context, env Env, args []string) error {
	p, err := showPlan(ctx, env, "apply", args)
	if err != nil {
		return err
	}
	n := 0
	err = p.Apply(ctx, func(c orgfile.Change) {
		n++
		fmt.Fprintf(env.Stdout, "applied: %s\n", c)
	})
	if err != nil {
		fmt.Fprintf(env.Stdout, "Stopped after %d of %d changes.\n", n, p.Pending())
		return err
	}
	fmt.Fprintf(env.Stdout, "Applied %d changes.\n", n)
	return nil
}

// parseFlags parses args, which must all be flags.
func parseFlags(env Env, fs *flag.FlagSet, args []string) error {
	if err := parseArgs(env, fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected arguments: %s\n", strings.Join(fs.Args(), " "))
		fs.Usage()
		return errUsage
	}
	return nil
}
