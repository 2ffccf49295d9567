package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/stewardhq/steward/client"
)

// adminCommand is one leaf of the Admin API's command line, "noun verb":
// the operation it sends, or a command of its own (run) over one or more.
type adminCommand struct {
	noun, verb string
	op         string
	// run replaces the generic request for commands that are more than
	// one request, such as audit tail.
	run func(ctx context.Context, a *adminCall, args []string) error
	// all yields every row of a list that comes in pages, through the
	// client's iterators, for --all; pos are the path parameters.
	all func(ctx context.Context, a *adminCall, pos []string) iter.Seq2[any, error]
	// lines marks an operation that answers NDJSON: the answer is printed
	// as it came, one JSON object a line.
	lines bool
}

// adminCommands lists every command of the Admin API, Steward's extensions
// included, in the order usage shows them. The Backoffice's operations are
// under steward backoffice.
func adminCommands() []adminCommand {
	return []adminCommand{
		{noun: "users", verb: "list", op: "users_api_admin_users_get_users", all: allUsers},
		{noun: "users", verb: "create", op: "users_api_admin_users_create_users"},
		{noun: "users", verb: "get", op: "users_api_admin_users_get_user"},
		{noun: "users", verb: "update", op: "users_api_admin_users_update_user"},
		{noun: "users", verb: "delete", op: "users_api_admin_users_delete_user"},
		{noun: "users", verb: "roles", op: "steward_get_user_roles"},
		{noun: "users", verb: "access", op: "steward_get_user_access"},
		{noun: "invites", verb: "list", op: "users_api_admin_users_get_invite"},
		{noun: "invites", verb: "create", op: "users_api_admin_users_invite_users"},
		{noun: "invites", verb: "accept", op: "steward_accept_invitation"},
		{noun: "invites", verb: "delete", op: "users_api_admin_users_delete_invite"},
		{noun: "roles", verb: "list", op: "users_api_admin_roles_get_roles"},
		{noun: "custom-roles", verb: "list", op: "steward_list_custom_roles"},
		{noun: "custom-roles", verb: "create", op: "steward_create_custom_role"},
		{noun: "custom-roles", verb: "get", op: "steward_get_custom_role"},
		{noun: "custom-roles", verb: "update", op: "steward_update_custom_role"},
		{noun: "custom-roles", verb: "delete", op: "steward_delete_custom_role"},
		{noun: "permissions", verb: "list", op: "steward_list_permissions"},
		{noun: "workspaces", verb: "list", op: "users_api_admin_workspaces_get_workspaces", all: allWorkspaces},
		{noun: "workspaces", verb: "create", op: "users_api_admin_workspaces_create_workspace"},
		{noun: "workspaces", verb: "update", op: "users_api_admin_workspaces_update_workspaces"},
		{noun: "workspaces", verb: "archive", op: "users_api_admin_workspaces_delete_workspaces"},
		{noun: "workspaces", verb: "add-users", op: "users_api_admin_workspaces_add_users_workspaces"},
		{noun: "workspaces", verb: "set-users", op: "users_api_admin_workspaces_add_or_update_users_workspaces"},
		{noun: "workspaces", verb: "remove-users", op: "users_api_admin_workspaces_remove_users_workspaces"},
		{noun: "workspaces", verb: "models", op: "steward_get_workspace_allowed_models"},
		{noun: "workspaces", verb: "set-models", op: "steward_set_workspace_allowed_models"},
		{noun: "groups", verb: "list", op: "users_api_admin_user_groups_get_user_groups", all: allGroups},
		{noun: "groups", verb: "create", op: "users_api_admin_user_groups_create_user_group"},
		{noun: "groups", verb: "get", op: "users_api_admin_user_groups_get_user_group"},
		{noun: "groups", verb: "update", op: "users_api_admin_user_groups_update_user_group"},
		{noun: "groups", verb: "delete", op: "users_api_admin_user_groups_delete_user_group"},
		{noun: "groups", verb: "members", op: "users_api_admin_user_groups_get_user_group_members", all: allGroupMembers},
		{noun: "groups", verb: "add-members", op: "users_api_admin_user_groups_assign_users_to_group"},
		{noun: "groups", verb: "remove-members", op: "users_api_admin_user_groups_remove_users_from_group"},
		{noun: "groups", verb: "workspaces", op: "users_admin_user_groups_get_group_workspace_assignments", all: allGroupWorkspaces},
		{noun: "groups", verb: "assign-workspace", op: "users_api_admin_user_groups_assign_group_to_workspace"},
		{noun: "groups", verb: "update-workspace", op: "users_admin_user_groups_update_group_workspace_assignment"},
		{noun: "groups", verb: "unassign-workspace", op: "users_admin_user_groups_remove_group_from_workspace"},
		{noun: "groups", verb: "provision-workspace", op: "users_api_admin_user_groups_provision_group_to_workspace"},
		{noun: "groups", verb: "set-org-role", op: "users_admin_user_groups_update_user_group_organization_role"},
		{noun: "groups", verb: "nested", op: "users_api_admin_user_groups_get_nested_groups"},
		{noun: "groups", verb: "set-nested", op: "users_api_admin_user_groups_set_nested_groups"},
		{noun: "keys", verb: "list", op: "users_api_admin_api_keys_get_api_keys", all: allKeys},
		{noun: "keys", verb: "create", op: "users_api_admin_api_keys_create_api_key"},
		{noun: "keys", verb: "get", op: "steward_get_api_key"},
		{noun: "keys", verb: "delete", op: "users_api_admin_api_keys_delete_api_key"},
		{noun: "keys", verb: "rotate", op: "steward_rotate_api_key"},
		{noun: "keys", verb: "models", op: "steward_get_api_key_allowed_models"},
		{noun: "keys", verb: "set-models", op: "steward_set_api_key_allowed_models"},
		{noun: "key-policy", verb: "get", op: "steward_get_api_key_policy"},
		{noun: "key-policy", verb: "set", op: "steward_set_api_key_policy"},
		{noun: "key-policy", verb: "get-workspace", op: "steward_get_workspace_api_key_policy"},
		{noun: "key-policy", verb: "set-workspace", op: "steward_set_workspace_api_key_policy"},
		{noun: "limits", verb: "get", op: "users_api_admin_rate_limits_get_rate_limits"},
		{noun: "limits", verb: "set", op: "steward_set_rate_limit"},
		{noun: "limits", verb: "get-workspace", op: "steward_get_workspace_rate_limit"},
		{noun: "limits", verb: "set-workspace", op: "steward_set_workspace_rate_limit"},
		{noun: "spend-limit", verb: "get", op: "users_api_admin_spend_limits_get_spend_limits"},
		{noun: "spend-limit", verb: "set", op: "users_api_admin_spend_limits_update_spend_limits"},
		{noun: "spend-limit", verb: "set-workspace", op: "steward_set_workspace_spend_limit"},
		{noun: "organization", verb: "get", op: "steward_get_organization"},
		{noun: "organization", verb: "update", op: "steward_update_organization"},
		{noun: "usage", verb: "get", op: "users_api_admin_usage_get_usage"},
		{noun: "usage", verb: "report", op: "steward_usage_report"},
		{noun: "analytics", verb: "work-by-user", op: "get_by_user_stats_v1_admin_analytics_vibe_work_usage_by_user_stats"},
		{noun: "analytics", verb: "work-by-agent", op: "get_by_agent_stats_v1_admin_analytics_vibe_work_usage_by_agent_stats"},
		{noun: "analytics", verb: "work-by-time", op: "get_by_time_stats_v1_admin_analytics_vibe_work_usage_by_time_stats"},
		{noun: "analytics", verb: "code-by-workspace", op: "get_workspace_stats_v1_admin_analytics_vibe_code_usage_by_workspace"},
		{noun: "analytics", verb: "code-by-organization", op: "get_organization_stats_v1_admin_analytics_vibe_code_usage_by_organization"},
		{noun: "analytics", verb: "lechat-by-user", op: "steward_analytics_lechat_by_user_stats"},
		{noun: "analytics", verb: "lechat-by-agent", op: "steward_analytics_lechat_by_agent_stats"},
		{noun: "analytics", verb: "lechat-by-time", op: "steward_analytics_lechat_by_time_stats"},
		{noun: "analytics", verb: "vibe-by-workspace", op: "steward_analytics_vibe_by_workspace"},
		{noun: "analytics", verb: "vibe-by-organization", op: "steward_analytics_vibe_by_organization"},
		{noun: "analytics", verb: "ingest", op: "steward_analytics_ingest_events"},
		{noun: "audit", verb: "list", op: "users_api_admin_audit_logs_get_audit_logs", all: allAuditLogs},
		{noun: "audit", verb: "tail", op: "users_api_admin_audit_logs_get_audit_logs", run: runAuditTail},
		{noun: "audit", verb: "export", op: "steward_export_audit_logs", lines: true},
		{noun: "scim-tokens", verb: "list", op: "steward_list_scim_tokens"},
		{noun: "scim-tokens", verb: "create", op: "steward_create_scim_token"},
		{noun: "scim-tokens", verb: "revoke", op: "steward_revoke_scim_token"},
		{noun: "webhooks", verb: "list", op: "steward_list_webhooks"},
		{noun: "webhooks", verb: "create", op: "steward_create_webhook"},
		{noun: "webhooks", verb: "get", op: "steward_get_webhook"},
		{noun: "webhooks", verb: "update", op: "steward_update_webhook"},
		{noun: "webhooks", verb: "delete", op: "steward_delete_webhook"},
		{noun: "webhooks", verb: "rotate-secret", op: "steward_rotate_webhook_secret"},
		{noun: "webhooks", verb: "test", op: "steward_test_webhook"},
		{noun: "webhooks", verb: "deliveries", op: "steward_list_webhook_deliveries"},
		{noun: "sso", verb: "get", op: "steward_get_sso"},
		{noun: "sso", verb: "set", op: "steward_put_sso"},
		{noun: "sso", verb: "delete", op: "steward_delete_sso"},
		{noun: "scim-sync", verb: "start", op: "users_api_admin_scim_sync_trigger_scim_sync"},
		{noun: "scim-sync", verb: "get", op: "users_api_admin_scim_sync_get_scim_sync_run"},
		{noun: "server", verb: "health", op: "steward_healthz"},
		{noun: "server", verb: "ready", op: "steward_readyz"},
		{noun: "server", verb: "openapi", op: "steward_get_openapi_document"},
	}
}

// adminNouns returns the nouns of adminCommands, each once, in order.
func adminNouns() []string {
	var nouns []string
	for _, c := range adminCommands() {
		if !slices.Contains(nouns, c.noun) {
			nouns = append(nouns, c.noun)
		}
	}
	return nouns
}

// runAdmin returns the command of one noun: it dispatches on the verb.
func runAdmin(noun string) func(ctx context.Context, env Env, args []string) error {
	return func(ctx context.Context, env Env, args []string) error {
		args = helpAsWord(args, 1)
		if len(args) == 0 {
			adminUsage(env.Stderr, noun)
			return errUsage
		}
		if isHelp(args[0]) {
			adminUsage(env.Stdout, noun)
			return flag.ErrHelp
		}
		for _, c := range adminCommands() {
			if c.noun != noun || c.verb != args[0] {
				continue
			}
			a, err := newAdminCall(env, c)
			if err != nil {
				return err
			}
			if c.run != nil {
				return c.run(ctx, a, args[1:])
			}
			return a.runOperation(ctx, args[1:])
		}
		fmt.Fprintf(env.Stderr, "steward %s: unknown command %q\n\n", noun, args[0])
		adminUsage(env.Stderr, noun)
		return errUsage
	}
}

func adminUsage(w io.Writer, noun string) {
	ops, _ := apiOperations()
	fmt.Fprintf(w, "usage: steward %s <command> [flags]\n\ncommands:\n", noun)
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	for _, c := range adminCommands() {
		if c.noun != noun {
			continue
		}
		op := ops[c.op]
		if op == nil {
			continue
		}
		synopsis := c.verb
		for _, p := range op.pathParams() {
			synopsis += " " + argName(p.Name)
		}
		summary := op.Summary
		if c.run != nil {
			summary = "follow the audit log: print new entries as they are recorded"
		}
		if op.Extension {
			summary += " (Steward only)"
		}
		fmt.Fprintf(tw, "  %s\t%s\n", synopsis, summary)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nEvery command takes --url URL (env STEWARD_URL, default %s), --key KEY (env STEWARD_ADMIN_KEY)\nand --json to print the server's JSON; lists that come in pages take --all to print every page.\nRun 'steward %s <command> -h' for a command's flags.\n", defaultServerURL, noun)
}

// adminCall is one command's flag set, the flags of its operation, and
// the connection settings.
type adminCall struct {
	env Env
	cmd adminCommand
	op  *apiOperation
	fs  *flag.FlagSet
	// connect makes the client from --url and --key once they are parsed.
	connect func() (*client.Admin, error)
	asJSON  *bool
	all     *bool
	data    *string
	// values are the operation's query, header and body flags by name.
	values map[string]*string
	client *client.Admin
}

// keyEnv is the environment variable holding the key of each kind of
// operation.
var keyEnv = map[string]string{
	"admin":      "STEWARD_ADMIN_KEY",
	"backoffice": "STEWARD_BACKOFFICE_KEY",
	"workspace":  "STEWARD_API_KEY",
}

func newAdminCall(env Env, c adminCommand) (*adminCall, error) {
	ops, err := apiOperations()
	if err != nil {
		return nil, err
	}
	op := ops[c.op]
	if op == nil {
		return nil, fmt.Errorf("operation %s is not in the embedded OpenAPI document", c.op)
	}
	synopsis := ""
	for _, p := range op.pathParams() {
		synopsis += argName(p.Name) + " "
	}
	fs := flagSet(env, c.noun+" "+c.verb, synopsis+"[flags]")
	a := &adminCall{env: env, cmd: c, op: op, fs: fs, values: map[string]*string{},
		connect: connection(env, fs, keyEnv[op.Auth]),
		asJSON:  fs.Bool("json", false, "print the server's JSON answer instead of a table"),
	}
	if c.all != nil {
		a.all = fs.Bool("all", false, "print every page: every row in one table, or with --json one JSON array")
	}
	taken := map[string]bool{"url": true, "key": true, "json": true, "data": true, "all": true}
	for _, p := range op.Params {
		if p.In == "path" || c.run != nil {
			continue
		}
		name := flagName(p.Name)
		if taken[name] {
			continue
		}
		taken[name] = true
		a.values[p.In+":"+p.Name] = fs.String(name, "", p.Description)
		// The flag sends nothing unless set; its help shows the server's
		// default.
		if p.Schema.Default != nil {
			fs.Lookup(name).DefValue = fmt.Sprint(p.Schema.Default)
		}
	}
	if op.Body != nil {
		a.data = fs.String("data", "", "the request body as JSON, @FILE to read it from a file, or - from standard input; flags for its fields override it")
		names := make([]string, 0, len(op.Body.Properties))
		for name := range op.Body.Properties {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			if taken[flagName(name)] {
				continue
			}
			taken[flagName(name)] = true
			p := op.Body.Properties[name]
			usage := p.Description
			if !p.isString() {
				usage += " (JSON)"
			}
			a.values["body:"+name] = fs.String(flagName(name), "", usage)
		}
	}
	return a, nil
}

// parse parses the command line: the path parameters, then flags, in any
// order. It fills the connection settings from the environment where no
// flag set them and makes the client.
func (a *adminCall) parse(args []string) ([]string, error) {
	pos, err := parseInterspersed(a.env, a.fs, args)
	if err != nil {
		return nil, err
	}
	want := a.op.pathParams()
	if len(pos) != len(want) {
		switch {
		case len(pos) > len(want):
			fmt.Fprintf(a.fs.Output(), "unexpected arguments: %s\n", strings.Join(pos[len(want):], " "))
		default:
			fmt.Fprintf(a.fs.Output(), "missing %s\n", argName(want[len(pos)].Name))
		}
		a.fs.Usage()
		return nil, errUsage
	}
	for i, p := range pos {
		if p == "" || p == "." || p == ".." {
			return nil, a.usageError("%s %q is not an ID", argName(want[i].Name), p)
		}
	}
	c, err := a.connect()
	if err != nil {
		return nil, err
	}
	a.client = c
	return pos, nil
}

func (a *adminCall) usageError(format string, args ...any) error {
	fmt.Fprintf(a.env.Stderr, "steward %s %s: "+format+"\n", append([]any{a.cmd.noun, a.cmd.verb}, args...)...)
	return errUsage
}

// runOperation sends the command's operation built from the command line
// and prints the answer.
func (a *adminCall) runOperation(ctx context.Context, args []string) error {
	pos, err := a.parse(args)
	if err != nil {
		return err
	}
	if a.all != nil && *a.all {
		return a.printAll(ctx, pos)
	}
	path := a.op.Path
	for i, p := range a.op.pathParams() {
		path = strings.Replace(path, "{"+p.Name+"}", url.PathEscape(pos[i]), 1)
	}
	query, header := url.Values{}, http.Header{}
	for _, p := range a.op.Params {
		v := a.values[p.In+":"+p.Name]
		if v == nil || *v == "" {
			continue
		}
		switch p.In {
		case "query":
			// An array parameter takes several values, separated by
			// commas, as one flag.
			if p.Schema.Items != nil || slices.ContainsFunc(p.Schema.AnyOf, func(s apiSchema) bool { return s.Items != nil }) {
				query[p.Name] = append(query[p.Name], strings.Split(*v, ",")...)
			} else {
				query.Set(p.Name, *v)
			}
		case "header":
			header.Set(p.Name, *v)
		}
	}
	body, err := a.body()
	if err != nil {
		return err
	}
	raw, err := a.client.Send(ctx, a.op.Method, path, query, header, body)
	if err != nil {
		return a.explain(err)
	}
	return a.print(raw)
}

// explain turns a 404 from an operation only Steward serves into a
// sentence saying so: against Mistral's API it is no missing object.
func (a *adminCall) explain(err error) error {
	if a.op.Extension && errors.Is(err, client.ErrNotServed) {
		return fmt.Errorf("%s %s is a Steward extension, which this server does not serve (%w)", a.op.Method, a.op.Path, err)
	}
	return err
}

// readData reads a --data value: JSON as it is, @FILE from a file, or -
// from standard input.
func readData(d string) ([]byte, error) {
	switch {
	case d == "-":
		return io.ReadAll(io.LimitReader(os.Stdin, maxAnswerBytes))
	case strings.HasPrefix(d, "@"):
		return os.ReadFile(d[1:])
	}
	return []byte(d), nil
}

// body builds the request body: --data, then each field's flag over it.
func (a *adminCall) body() ([]byte, error) {
	if a.op.Body == nil {
		return nil, nil
	}
	raw, err := readData(*a.data)
	if err != nil {
		return nil, err
	}
	fields := map[string]json.RawMessage{}
	for name, p := range a.op.Body.Properties {
		v := a.values["body:"+name]
		if v == nil || *v == "" {
			continue
		}
		if p.isString() || !json.Valid([]byte(*v)) {
			b, _ := json.Marshal(*v)
			fields[name] = b
			continue
		}
		fields[name] = json.RawMessage(*v)
	}
	if len(fields) == 0 {
		if len(bytes.TrimSpace(raw)) == 0 {
			return []byte("{}"), nil
		}
		if !json.Valid(raw) {
			return nil, a.usageError("--data is not JSON")
		}
		return raw, nil
	}
	obj := map[string]json.RawMessage{}
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, &obj); err != nil {
			return nil, a.usageError("--data must be a JSON object to combine with field flags: %v", err)
		}
	}
	for k, v := range fields {
		obj[k] = v
	}
	return json.Marshal(obj)
}

// print prints an answer: indented JSON with --json; otherwise each list
// of objects as a table, and an object's other fields as lines.
func (a *adminCall) print(raw []byte) error {
	if len(bytes.TrimSpace(raw)) == 0 {
		fmt.Fprintf(a.env.Stdout, "done: %s\n", strings.ToLower(a.op.Summary))
		return nil
	}
	if a.cmd.lines {
		_, err := a.env.Stdout.Write(raw)
		return err
	}
	if *a.asJSON {
		var buf bytes.Buffer
		if err := json.Indent(&buf, raw, "", "  "); err != nil {
			return fmt.Errorf("unexpected answer: %v", err)
		}
		buf.WriteByte('\n')
		_, err := a.env.Stdout.Write(buf.Bytes())
		return err
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return fmt.Errorf("unexpected answer: %v", err)
	}
	return printValue(a.env.Stdout, v)
}

// printValue prints a list of objects as a table, and an object as
// "field  value" lines followed by a table for each of its lists.
func printValue(w io.Writer, v any) error {
	switch v := v.(type) {
	case []any:
		return printTable(w, v)
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		var lists []string
		for _, k := range keys {
			if rows, ok := v[k].([]any); ok && len(rows) > 0 {
				if _, isObj := rows[0].(map[string]any); isObj {
					lists = append(lists, k)
					continue
				}
			}
			fmt.Fprintf(tw, "%s\t%s\n", k, cell(v[k]))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		for _, k := range lists {
			fmt.Fprintf(w, "\n%s:\n", k)
			if err := printTable(w, v[k].([]any)); err != nil {
				return err
			}
		}
		return nil
	default:
		_, err := fmt.Fprintln(w, cell(v))
		return err
	}
}

// firstColumns are shown first in a table, in this order, when a row has
// them: what identifies a row, then what names it.
var firstColumns = []string{"id", "uuid", "key_id", "log_id", "user_id", "name", "email", "event_type", "workspace_uuid", "role", "created_at"}

// maxColumns bounds a table's width; --json prints everything.
const maxColumns = 7

func printTable(w io.Writer, rows []any) error {
	var cols []string
	seen := map[string]bool{}
	add := func(k string) {
		if !seen[k] && len(cols) < maxColumns {
			seen[k] = true
			cols = append(cols, k)
		}
	}
	for _, k := range firstColumns {
		for _, r := range rows {
			if m, ok := r.(map[string]any); ok {
				if _, has := m[k]; has {
					add(k)
					break
				}
			}
		}
	}
	for _, r := range rows {
		m, ok := r.(map[string]any)
		if !ok {
			continue
		}
		keys := make([]string, 0, len(m))
		for k, v := range m {
			switch v.(type) {
			case map[string]any, []any:
				continue
			}
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			add(k)
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if len(cols) == 0 {
		for _, r := range rows {
			fmt.Fprintln(tw, cell(r))
		}
		return tw.Flush()
	}
	header := make([]string, len(cols))
	for i, c := range cols {
		header[i] = strings.ToUpper(strings.ReplaceAll(c, "_", " "))
	}
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		m, _ := r.(map[string]any)
		line := make([]string, len(cols))
		for i, c := range cols {
			line[i] = cell(m[c])
		}
		fmt.Fprintln(tw, strings.Join(line, "\t"))
	}
	return tw.Flush()
}

// maxCell bounds a table cell; --json prints the whole value.
const maxCell = 48

// cell renders one value for a table: a time to the second, a list or an
// object as compact JSON, cut at maxCell, and cleaned like every value of
// the server printed for people.
func cell(v any) string {
	var s string
	switch v := v.(type) {
	case nil:
		return "-"
	case string:
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			return t.UTC().Truncate(time.Second).Format(time.RFC3339)
		}
		s = v
	case float64:
		s = fmt.Sprint(v)
		if v == float64(int64(v)) {
			s = fmt.Sprint(int64(v))
		}
	case bool:
		s = fmt.Sprint(v)
	default:
		b, _ := json.Marshal(v)
		s = string(b)
	}
	if r := []rune(s); len(r) > maxCell {
		s = string(r[:maxCell-1]) + "…"
	}
	return clean(s)
}

// adminNounSummary lists a noun's verbs, for steward's usage.
func adminNounSummary(noun string) string {
	var verbs []string
	for _, c := range adminCommands() {
		if c.noun == noun {
			verbs = append(verbs, c.verb)
		}
	}
	return strings.Join(verbs, ", ")
}
