package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	openapi_types "github.com/oapi-codegen/runtime/types"

	"github.com/stewardhq/steward/client"
)

// pagingFlags choose one page; --all walks every page itself.
var pagingFlags = []string{"page", "page-size", "limit", "offset", "before", "sort"}

// printAll prints every row of the command's list: one table, or with
// --json one JSON array, written once every page is read so that a
// failure midway prints no partial array.
func (a *adminCall) printAll(ctx context.Context, pos []string) error {
	for _, name := range pagingFlags {
		if f := a.fs.Lookup(name); f != nil && f.Value.String() != "" {
			return a.usageError("--all reads every page itself: leave out --%s", name)
		}
	}
	rows := []any{}
	for row, err := range a.cmd.all(ctx, a, pos) {
		if err != nil {
			return a.explain(err)
		}
		rows = append(rows, row)
	}
	if *a.asJSON {
		b, err := json.MarshalIndent(rows, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(a.env.Stdout, "%s\n", b)
		return err
	}
	return printTable(a.env.Stdout, rows)
}

// rows turns a client iterator's items into the JSON values a table and
// --json print.
func rows[T any](seq iter.Seq2[T, error]) iter.Seq2[any, error] {
	return func(yield func(any, error) bool) {
		for item, err := range seq {
			if err != nil {
				yield(nil, err)
				return
			}
			var v any
			b, err := json.Marshal(item)
			if err == nil {
				err = json.Unmarshal(b, &v)
			}
			if !yield(v, err) || err != nil {
				return
			}
		}
	}
}

// query returns the value of a query parameter's flag.
func (a *adminCall) query(name string) string {
	if v := a.values["query:"+name]; v != nil {
		return strings.TrimSpace(*v)
	}
	return ""
}

// listFlag returns the values of a query parameter's flag, separated by
// commas, or nil when it is not set.
func listFlag[T ~string](a *adminCall, name string) *[]T {
	var out []T
	for _, v := range strings.Split(a.query(name), ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, T(v))
		}
	}
	if out == nil {
		return nil
	}
	return &out
}

// failed yields err alone.
func failed(err error) iter.Seq2[any, error] {
	return func(yield func(any, error) bool) { yield(nil, err) }
}

func allUsers(ctx context.Context, a *adminCall, _ []string) iter.Seq2[any, error] {
	return rows(a.client.Members(ctx, a.query("email")))
}

func allWorkspaces(ctx context.Context, a *adminCall, _ []string) iter.Seq2[any, error] {
	archived := false
	if v := a.query("is_archived"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return failed(a.usageError("--is-archived must be true or false, not %q", v))
		}
		archived = b
	}
	return rows(a.client.Workspaces(ctx, archived))
}

func allGroups(ctx context.Context, a *adminCall, _ []string) iter.Seq2[any, error] {
	return rows(a.client.UserGroups(ctx))
}

func groupID(a *adminCall, pos []string) (openapi_types.UUID, error) {
	id, err := uuid.Parse(pos[0])
	if err != nil {
		return id, a.usageError("GROUP_UUID %q is not a UUID", pos[0])
	}
	return id, nil
}

func allGroupMembers(ctx context.Context, a *adminCall, pos []string) iter.Seq2[any, error] {
	id, err := groupID(a, pos)
	if err != nil {
		return failed(err)
	}
	return rows(a.client.UserGroupMembers(ctx, id))
}

func allGroupWorkspaces(ctx context.Context, a *adminCall, pos []string) iter.Seq2[any, error] {
	id, err := groupID(a, pos)
	if err != nil {
		return failed(err)
	}
	return rows(a.client.UserGroupWorkspaces(ctx, id))
}

func allKeys(ctx context.Context, a *adminCall, _ []string) iter.Seq2[any, error] {
	return rows(a.client.APIKeys(ctx, a.query("name")))
}

// allAuditLogs yields every entry matching the filter flags, newest first.
func allAuditLogs(ctx context.Context, a *adminCall, _ []string) iter.Seq2[any, error] {
	var p client.UsersApiAdminAuditLogsGetAuditLogsParams
	p.EventType = listFlag[client.AuditLogEventType](a, "event_type")
	p.ActorType = listFlag[client.ActorType](a, "actor_type")
	p.TargetType = listFlag[client.TargetType](a, "target_type")
	if v := a.query("actor_user_uuid"); v != "" {
		p.ActorUserUuid = &v
	}
	if v := a.query("after"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return failed(a.usageError("--after must be an instant such as 2030-01-02T15:04:05Z, not %q", v))
		}
		p.After = &t
	}
	return rows(a.client.AuditLogs(ctx, p))
}
