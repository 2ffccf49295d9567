package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
)

const (
	// defaultServerURL is where steward serve listens when nothing is set.
	defaultServerURL = "http://127.0.0.1:8080"
	// backofficeTimeout bounds each request, so that a server that accepts
	// the connection but never answers does not hang a script.
	backofficeTimeout = 30 * time.Second
	// maxAnswerBytes bounds what is read of an answer: lists of an
	// Enterprise Account's Organizations, members and keys are far smaller.
	maxAnswerBytes = 16 << 20
)

// backofficeCommand is one leaf of steward backoffice: a group word such as
// orgs, a verb, and what it runs on the rest of the command line.
type backofficeCommand struct {
	group, verb string
	args        string
	summary     string
	run         func(ctx context.Context, b *backoffice, args []string) error
}

func backofficeCommands() []backofficeCommand {
	return []backofficeCommand{
		{"account", "get", "", "show the Enterprise Account", runAccountGet},
		{"account", "rename", "--name NAME", "rename the Enterprise Account", runAccountRename},
		{"orgs", "list", "", "list the Organizations of the Enterprise Account", runOrgsList},
		{"orgs", "create", "--name NAME", "create an Organization", runOrgsCreate},
		{"orgs", "promote", "--org ORG_ID --member MEMBER_ID", "make a member an organization_admin of an Organization", runOrgsPromote},
		{"admin-keys", "list", "", "list the admin API keys of every Organization", runAdminKeysList},
		{"admin-keys", "create", "--org ORG_ID --name NAME [--expires YYYY-MM-DD]", "create an admin API key and print its secret, once", runAdminKeysCreate},
		{"admin-keys", "delete", "KEY_ID", "delete an admin API key", runAdminKeysDelete},
		{"members", "list", "", "list the members of the Enterprise Account", runMembersList},
		{"members", "add", "(--user USER_ID | --email EMAIL)", "add a user to the Enterprise Account", runMembersAdd},
		{"members", "remove", "USER_ID", "remove a member from the Enterprise Account", runMembersRemove},
		{"sso", "get", "", "show the Backoffice's single sign-on connection (as JSON)", runSSOGet},
		{"sso", "set", "--data JSON|@FILE|-", "set the Backoffice's single sign-on connection (docs/sso.md)", runSSOSet},
		{"sso", "delete", "", "delete the Backoffice's single sign-on connection", runSSODelete},
	}
}

// runBackoffice dispatches on the two words after backoffice, so that each
// leaf parses its own flags and they may follow the words.
func runBackoffice(ctx context.Context, env Env, args []string) error {
	args = helpAsWord(args, 2)
	switch {
	case len(args) > 0 && isHelp(args[0]):
		backofficeUsage(env.Stdout, "")
		return flag.ErrHelp
	case len(args) > 1 && knownBackofficeGroup(args[0]) && isHelp(args[1]):
		backofficeUsage(env.Stdout, args[0])
		return flag.ErrHelp
	}
	if len(args) < 2 {
		if len(args) == 1 && !knownBackofficeGroup(args[0]) {
			fmt.Fprintf(env.Stderr, "steward backoffice: unknown command %q\n\n", args[0])
		}
		backofficeUsage(env.Stderr, "")
		return errUsage
	}
	for _, c := range backofficeCommands() {
		if c.group == args[0] && c.verb == args[1] {
			name := c.group + " " + c.verb
			synopsis := strings.TrimSpace(c.args + " [--url URL] [--key KEY] [--json]")
			return c.run(ctx, newBackoffice(env, name, synopsis), args[2:])
		}
	}
	fmt.Fprintf(env.Stderr, "steward backoffice: unknown command %q\n\n", strings.Join(args[:2], " "))
	backofficeUsage(env.Stderr, "")
	return errUsage
}

func knownBackofficeGroup(word string) bool {
	for _, c := range backofficeCommands() {
		if c.group == word {
			return true
		}
	}
	return false
}

// backofficeUsage lists the commands of group, or every command when group
// is empty.
func backofficeUsage(w io.Writer, group string) {
	words := "backoffice "
	if group != "" {
		words += group + " "
	}
	fmt.Fprintf(w, "usage: steward %s<command> [flags]\n\ncommands:\n", words)
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	for _, c := range backofficeCommands() {
		if group != "" && c.group != group {
			continue
		}
		fmt.Fprintf(tw, "  %s\t%s\n", strings.TrimSpace(c.group+" "+c.verb+" "+c.args), c.summary)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nEvery command takes --url URL (env STEWARD_URL, default %s), --key KEY (env STEWARD_BACKOFFICE_KEY)\nand --json to print the server's JSON. Run 'steward backoffice <command> -h' for a command's flags.\n", defaultServerURL)
}

// backoffice is one leaf command's flag set, connection settings and client.
type backoffice struct {
	env    Env
	fs     *flag.FlagSet
	url    *string
	key    *string
	asJSON *bool
	base   *url.URL
	client *http.Client
}

// newBackoffice registers the connection flags every leaf has. The key's
// default stays empty rather than read from the environment, so that -h,
// which prints defaults, never shows it.
func newBackoffice(env Env, name, synopsis string) *backoffice {
	fs := flagSet(env, "backoffice "+name, synopsis)
	return &backoffice{
		env:    env,
		fs:     fs,
		url:    fs.String("url", defaultServerURL, "base URL of the Steward server (env STEWARD_URL)"),
		key:    fs.String("key", "", "Backoffice key of the Enterprise Account, stwb_... (default: $STEWARD_BACKOFFICE_KEY)"),
		asJSON: fs.Bool("json", false, "print the server's JSON answer instead of a table or a sentence"),
		client: &http.Client{Timeout: backofficeTimeout},
	}
}

// parse parses the leaf's arguments, which must include exactly the named
// positional ones, fills the connection settings from the environment where
// no flag set them, and checks them.
func (b *backoffice) parse(args []string, positional ...string) ([]string, error) {
	pos, err := parseInterspersed(b.env, b.fs, args)
	if err != nil {
		return nil, err
	}
	switch {
	case len(pos) > len(positional):
		fmt.Fprintf(b.fs.Output(), "unexpected arguments: %s\n", strings.Join(pos[len(positional):], " "))
		b.fs.Usage()
		return nil, errUsage
	case len(pos) < len(positional):
		fmt.Fprintf(b.fs.Output(), "missing %s\n", positional[len(pos)])
		b.fs.Usage()
		return nil, errUsage
	}
	// "." and ".." would be dot segments of the URL, which the server or a
	// proxy resolves to another path: they can be no ID.
	for i, p := range pos {
		if p == "" || p == "." || p == ".." {
			return nil, b.usageError("%s %q is not an ID", positional[i], p)
		}
	}
	set := map[string]bool{}
	b.fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if v := b.env.Getenv("STEWARD_URL"); v != "" && !set["url"] {
		*b.url = v
	}
	if !set["key"] {
		*b.key = b.env.Getenv("STEWARD_BACKOFFICE_KEY")
	}
	*b.key = strings.TrimSpace(*b.key)
	if *b.key == "" {
		return nil, b.usageError("a Backoffice key is required: pass --key or set STEWARD_BACKOFFICE_KEY")
	}
	u, err := url.Parse(strings.TrimRight(*b.url, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, b.usageError("--url must be an http:// or https:// URL such as %s, not %q", defaultServerURL, *b.url)
	}
	b.base = u
	return pos, nil
}

// parseInterspersed parses args with fs and returns the positional
// arguments, allowing flags after them as in "admin-keys delete KEY_ID
// --json"; everything after "--" is positional.
func parseInterspersed(env Env, fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := parseArgs(env, fs, args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// usageError reports a wrong command line, which exits 2 rather than 1.
func (b *backoffice) usageError(format string, a ...any) error {
	fmt.Fprintf(b.env.Stderr, "steward backoffice: "+format+"\n", a...)
	return errUsage
}

// require reports the first of flag, value pairs whose value is empty.
func (b *backoffice) require(pairs ...string) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] == "" {
			fmt.Fprintf(b.fs.Output(), "missing %s\n", pairs[i])
			b.fs.Usage()
			return errUsage
		}
	}
	return nil
}

// call sends one request to the server and returns the body of a successful
// answer. Failures become errors that say what the server said, or that it
// could not be reached; none of them contains the key.
func (b *backoffice) call(ctx context.Context, method, path string, in any) ([]byte, error) {
	var body io.Reader
	if in != nil {
		buf, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(buf)
	}
	req, err := http.NewRequestWithContext(ctx, method, b.base.String()+path, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+*b.key)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "steward/"+version())
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := b.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			if ue.Timeout() {
				return nil, fmt.Errorf("no answer from %s within %s", b.base.Redacted(), backofficeTimeout)
			}
			err = ue.Err
		}
		return nil, fmt.Errorf("could not reach the Steward server at %s (%v); is it running there? Pass its address with --url or STEWARD_URL", b.base.Redacted(), err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return nil, fmt.Errorf("reading the answer of %s: %v", b.base.Redacted(), err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, fmt.Errorf("%s (HTTP %d)", errorMessage(raw, resp.StatusCode), resp.StatusCode)
	}
	return raw, nil
}

// errorMessage is what an error answer says: the message of Mistral's error
// object, each field and message of a validation error, or else the status.
func errorMessage(raw []byte, status int) string {
	var e struct {
		Message string          `json:"message"`
		Detail  json.RawMessage `json:"detail"`
	}
	if json.Unmarshal(raw, &e) != nil {
		return fallbackMessage(status)
	}
	if e.Message != "" {
		return clean(e.Message)
	}
	var items []struct {
		Loc []any  `json:"loc"`
		Msg string `json:"msg"`
	}
	if json.Unmarshal(e.Detail, &items) == nil && len(items) > 0 {
		parts := make([]string, len(items))
		for i, it := range items {
			loc := make([]string, len(it.Loc))
			for j, l := range it.Loc {
				loc[j] = fmt.Sprint(l)
			}
			parts[i] = clean(strings.Join(loc, ".") + ": " + it.Msg)
		}
		return strings.Join(parts, "; ")
	}
	var detail string
	if json.Unmarshal(e.Detail, &detail) == nil && detail != "" {
		return clean(detail)
	}
	return fallbackMessage(status)
}

func fallbackMessage(status int) string {
	if text := http.StatusText(status); text != "" {
		return "the server answered " + text
	}
	return "the server answered an error"
}

// decode reads a successful answer; a server that is not Steward, such as
// a proxy's HTML page, is named rather than half-printed.
func (b *backoffice) decode(raw []byte, out any) error {
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("unexpected answer from %s: %v", b.base.Redacted(), err)
	}
	return nil
}

// printJSON prints the server's answer indented, for scripts; an empty
// answer, such as a deletion's 204, prints nothing.
func (b *backoffice) printJSON(raw []byte) error {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return fmt.Errorf("unexpected answer from %s: %v", b.base.Redacted(), err)
	}
	buf.WriteByte('\n')
	_, err := b.env.Stdout.Write(buf.Bytes())
	return err
}

// table prints rows under header, aligned.
func (b *backoffice) table(header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(b.env.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// clean makes a value from the server safe to print in a table or a
// sentence: control characters, which could break the alignment or drive
// the terminal, become spaces, and an empty value a dash.
func clean(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}

// when formats a timestamp of the server to the second, or none when the
// server sent null.
func when(s, none string) string {
	if s == "" {
		return none
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return clean(s)
	}
	return t.UTC().Truncate(time.Second).Format(time.RFC3339)
}

// organization is an Organization of the Backoffice API.
type organization struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	MemberCount int    `json:"member_count"`
	CreatedAt   string `json:"created_at"`
}

func runOrgsList(ctx context.Context, b *backoffice, args []string) error {
	if _, err := b.parse(args); err != nil {
		return err
	}
	raw, err := b.call(ctx, http.MethodGet, "/v1/backoffice/organizations", nil)
	if err != nil {
		return err
	}
	if *b.asJSON {
		return b.printJSON(raw)
	}
	var list struct {
		Items []organization `json:"items"`
	}
	if err := b.decode(raw, &list); err != nil {
		return err
	}
	rows := make([][]string, len(list.Items))
	for i, o := range list.Items {
		rows[i] = []string{clean(o.ID), clean(o.Name), fmt.Sprint(o.MemberCount), when(o.CreatedAt, "-")}
	}
	return b.table([]string{"ID", "NAME", "MEMBERS", "CREATED"}, rows)
}

func runOrgsCreate(ctx context.Context, b *backoffice, args []string) error {
	name := b.fs.String("name", "", "name of the new Organization")
	if _, err := b.parse(args); err != nil {
		return err
	}
	if err := b.require("--name", *name); err != nil {
		return err
	}
	raw, err := b.call(ctx, http.MethodPost, "/v1/backoffice/organizations", map[string]string{"name": *name})
	if err != nil {
		return err
	}
	if *b.asJSON {
		return b.printJSON(raw)
	}
	var o organization
	if err := b.decode(raw, &o); err != nil {
		return err
	}
	fmt.Fprintf(b.env.Stdout, "created Organization %s (%s)\n", clean(o.Name), clean(o.ID))
	return nil
}

func runOrgsPromote(ctx context.Context, b *backoffice, args []string) error {
	org := b.fs.String("org", "", "ID of the Organization")
	member := b.fs.String("member", "", "user ID of the member of the Enterprise Account to promote")
	if _, err := b.parse(args); err != nil {
		return err
	}
	if err := b.require("--org", *org, "--member", *member); err != nil {
		return err
	}
	raw, err := b.call(ctx, http.MethodPost, "/v1/backoffice/organizations/"+url.PathEscape(*org)+"/promote", map[string]string{"member_id": *member})
	if err != nil {
		return err
	}
	if *b.asJSON {
		return b.printJSON(raw)
	}
	var p struct {
		OrganizationID string `json:"organization_id"`
		UserID         string `json:"user_id"`
		Email          string `json:"email"`
	}
	if err := b.decode(raw, &p); err != nil {
		return err
	}
	who, orgID := p.Email, p.OrganizationID
	if who == "" {
		who = p.UserID
	}
	if orgID == "" {
		orgID = *org
	}
	fmt.Fprintf(b.env.Stdout, "%s is now an organization_admin of %s\n", clean(who), clean(orgID))
	return nil
}

// adminKey is an admin API key of the Backoffice API; Key is set only in
// the answer to its creation.
type adminKey struct {
	ID               string `json:"id"`
	Name             string `json:"name"`
	OrganizationID   string `json:"organization_id"`
	OrganizationName string `json:"organization_name"`
	Hint             string `json:"hint"`
	CreatedAt        string `json:"created_at"`
	LastUsedAt       string `json:"last_used_at"`
	ExpiresAt        string `json:"expires_at"`
	Key              string `json:"key"`
}

func runAdminKeysList(ctx context.Context, b *backoffice, args []string) error {
	if _, err := b.parse(args); err != nil {
		return err
	}
	raw, err := b.call(ctx, http.MethodGet, "/v1/backoffice/admin-keys", nil)
	if err != nil {
		return err
	}
	if *b.asJSON {
		return b.printJSON(raw)
	}
	var list struct {
		Items []adminKey `json:"items"`
	}
	if err := b.decode(raw, &list); err != nil {
		return err
	}
	rows := make([][]string, len(list.Items))
	for i, k := range list.Items {
		org := k.OrganizationName
		if org == "" {
			org = k.OrganizationID
		}
		rows[i] = []string{clean(k.ID), clean(k.Name), clean(org), clean(k.Hint),
			when(k.CreatedAt, "-"), when(k.LastUsedAt, "never"), when(k.ExpiresAt, "-")}
	}
	return b.table([]string{"ID", "NAME", "ORGANIZATION", "KEY", "CREATED", "LAST USED", "EXPIRES"}, rows)
}

func runAdminKeysCreate(ctx context.Context, b *backoffice, args []string) error {
	org := b.fs.String("org", "", "ID of the Organization the key administers")
	name := b.fs.String("name", "", "name of the key, to recognise it in lists and the audit log")
	expires := b.fs.String("expires", "", "date the key stops working, YYYY-MM-DD, at 00:00 UTC (default: never)")
	if _, err := b.parse(args); err != nil {
		return err
	}
	if err := b.require("--org", *org, "--name", *name); err != nil {
		return err
	}
	// The server takes the date itself and ends the key at its start, UTC;
	// checking it here turns a typo into a usage error before any request.
	var expiresAt *string
	if *expires != "" {
		if _, err := time.Parse(time.DateOnly, *expires); err != nil {
			return b.usageError("--expires must be a date as YYYY-MM-DD, such as 2030-12-31, not %q", *expires)
		}
		expiresAt = expires
	}
	body := struct {
		Name           string  `json:"name"`
		OrganizationID string  `json:"organization_id"`
		ExpiresAt      *string `json:"expires_at"`
	}{*name, *org, expiresAt}
	raw, err := b.call(ctx, http.MethodPost, "/v1/backoffice/admin-keys", body)
	if err != nil {
		return err
	}
	if *b.asJSON {
		return b.printJSON(raw)
	}
	var k adminKey
	if err := b.decode(raw, &k); err != nil {
		return err
	}
	if k.Key == "" {
		return fmt.Errorf("the server created admin API key %s but sent no secret", clean(k.ID))
	}
	fmt.Fprintf(b.env.Stdout, "Admin API key  %s\n\nThe secret is shown only once and stored only as a hash: keep it now.\nKey ID         %s\n", clean(k.Key), clean(k.ID))
	return nil
}

func runAdminKeysDelete(ctx context.Context, b *backoffice, args []string) error {
	pos, err := b.parse(args, "KEY_ID")
	if err != nil {
		return err
	}
	raw, err := b.call(ctx, http.MethodDelete, "/v1/backoffice/admin-keys/"+url.PathEscape(pos[0]), nil)
	if err != nil {
		return err
	}
	if *b.asJSON {
		return b.printJSON(raw)
	}
	fmt.Fprintf(b.env.Stdout, "deleted admin API key %s\n", clean(pos[0]))
	return nil
}

// member is a member of the Enterprise Account; AdminOf lists the
// Organizations they are an organization_admin of.
type member struct {
	UserID  string   `json:"user_id"`
	Email   string   `json:"email"`
	Name    string   `json:"name"`
	AdminOf []string `json:"admin_of"`
	AddedAt string   `json:"added_at"`
}

// adminOf shows the Organizations a member administers: their IDs while
// they fit a table column, and their number beyond that.
func adminOf(ids []string) string {
	switch {
	case len(ids) == 0:
		return "-"
	case len(ids) <= 3:
		return clean(strings.Join(ids, ","))
	default:
		return fmt.Sprintf("%d Organizations", len(ids))
	}
}

func runMembersList(ctx context.Context, b *backoffice, args []string) error {
	if _, err := b.parse(args); err != nil {
		return err
	}
	raw, err := b.call(ctx, http.MethodGet, "/v1/backoffice/members", nil)
	if err != nil {
		return err
	}
	if *b.asJSON {
		return b.printJSON(raw)
	}
	var list struct {
		Items []member `json:"items"`
	}
	if err := b.decode(raw, &list); err != nil {
		return err
	}
	rows := make([][]string, len(list.Items))
	for i, m := range list.Items {
		rows[i] = []string{clean(m.UserID), clean(m.Email), clean(m.Name), adminOf(m.AdminOf)}
	}
	return b.table([]string{"USER ID", "EMAIL", "NAME", "ADMIN OF"}, rows)
}

func runMembersAdd(ctx context.Context, b *backoffice, args []string) error {
	user := b.fs.String("user", "", "ID of an existing user to add")
	email := b.fs.String("email", "", "email of the user to add")
	if _, err := b.parse(args); err != nil {
		return err
	}
	var body map[string]string
	switch {
	case (*user == "") == (*email == ""):
		fmt.Fprintln(b.fs.Output(), "pass exactly one of --user USER_ID or --email EMAIL")
		b.fs.Usage()
		return errUsage
	case *user != "":
		body = map[string]string{"user_id": *user}
	default:
		body = map[string]string{"email": *email}
	}
	raw, err := b.call(ctx, http.MethodPost, "/v1/backoffice/members", body)
	if err != nil {
		return err
	}
	if *b.asJSON {
		return b.printJSON(raw)
	}
	var m member
	if err := b.decode(raw, &m); err != nil {
		return err
	}
	fmt.Fprintf(b.env.Stdout, "added %s (%s)\n", clean(m.Email), clean(m.UserID))
	return nil
}

func runMembersRemove(ctx context.Context, b *backoffice, args []string) error {
	pos, err := b.parse(args, "USER_ID")
	if err != nil {
		return err
	}
	raw, err := b.call(ctx, http.MethodDelete, "/v1/backoffice/members/"+url.PathEscape(pos[0]), nil)
	if err != nil {
		return err
	}
	if *b.asJSON {
		return b.printJSON(raw)
	}
	fmt.Fprintf(b.env.Stdout, "removed member %s from the Enterprise Account\n", clean(pos[0]))
	return nil
}
