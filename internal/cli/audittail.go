package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/stewardhq/steward/client"
)

// runAuditCommands is steward audit: verify reads the database itself; the
// other verbs are Admin API commands.
func runAuditCommands(ctx context.Context, env Env, args []string) error {
	args = helpAsWord(args, 1)
	if len(args) > 0 && args[0] == "verify" {
		return runAudit(ctx, env, args)
	}
	if len(args) == 0 || isHelp(args[0]) {
		w := env.Stderr
		if len(args) > 0 {
			w = env.Stdout
		}
		fmt.Fprint(w, "usage: steward audit verify [--data-dir DIR | --database-url URL]\n  verify the audit log's hash chains in the database itself\n\n")
	}
	return runAdmin("audit")(ctx, env, args)
}

// runAuditTail prints the audit log entries recorded from --since on, and
// then each new one as it is recorded, until interrupted or --max entries
// were printed.
func runAuditTail(ctx context.Context, a *adminCall, args []string) error {
	since := a.fs.String("since", "0s", "print entries from this long ago (such as 1h) or this instant (RFC 3339) on")
	interval := a.fs.Duration("interval", 2*time.Second, "how often to ask for new entries")
	max := a.fs.Int("max", 0, "stop after this many entries (0: follow until interrupted)")
	eventType := a.fs.String("event-type", "", "only entries with these event types, separated by commas")
	if _, err := a.parse(args); err != nil {
		return err
	}
	from := time.Now()
	if d, err := time.ParseDuration(*since); err == nil {
		from = from.Add(-d)
	} else if t, err := time.Parse(time.RFC3339Nano, *since); err == nil {
		from = t
	} else {
		return a.usageError("--since must be a duration such as 1h or an instant such as 2030-01-02T15:04:05Z, not %q", *since)
	}
	if *interval < 100*time.Millisecond {
		return a.usageError("--interval must be at least 100ms")
	}
	var params client.UsersApiAdminAuditLogsGetAuditLogsParams
	if *eventType != "" {
		var types []client.AuditLogEventType
		for _, t := range strings.Split(*eventType, ",") {
			types = append(types, client.AuditLogEventType(strings.TrimSpace(t)))
		}
		params.EventType = &types
	}
	n := 0
	for e, err := range a.client.FollowAuditLogs(ctx, params, from, *interval) {
		if err != nil {
			return err
		}
		if *a.asJSON {
			line, err := json.Marshal(e)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.env.Stdout, "%s\n", line)
		} else {
			fmt.Fprintf(a.env.Stdout, "%s  %-32s  %s  %s\n", e.CreatedAt.UTC().Format(time.RFC3339),
				clean(string(e.EventType)), clean(string(e.ActorType)+" "+cell(e.ActorMetadata)), clean(string(e.TargetType)+" "+cell(e.TargetMetadata)))
		}
		if n++; *max > 0 && n >= *max {
			return nil
		}
	}
	return nil
}
