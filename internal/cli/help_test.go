package cli

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// commandPaths lists every command and subcommand of the command line, as
// the words that name it: groups (users, backoffice orgs) and leaves.
func commandPaths() [][]string {
	var paths [][]string
	for _, c := range commands() {
		paths = append(paths, []string{c.name})
	}
	for _, c := range adminCommands() {
		paths = append(paths, []string{c.noun, c.verb})
	}
	paths = append(paths, []string{"audit", "verify"})
	var groups []string
	for _, c := range backofficeCommands() {
		if !slices.Contains(groups, c.group) {
			groups = append(groups, c.group)
			paths = append(paths, []string{"backoffice", c.group})
		}
		paths = append(paths, []string{"backoffice", c.group, c.verb})
	}
	return paths
}

// TestEveryCommandHasHelp walks every command and subcommand: -h, --help
// and help CMD print the command's own help to stdout, nothing to stderr,
// and exit 0; every flag the help lists says its default.
func TestEveryCommandHasHelp(t *testing.T) {
	paths := commandPaths()
	if len(paths) < 100 {
		t.Fatalf("walked %d commands; the tables list more", len(paths))
	}
	for _, path := range paths {
		name := strings.Join(path, " ")
		t.Run(name, func(t *testing.T) {
			var first string
			for _, args := range [][]string{
				append(slices.Clone(path), "-h"),
				append(slices.Clone(path), "--help"),
				append([]string{"help"}, path...),
			} {
				code, stdout, stderr := run(t, nil, args...)
				if code != 0 || stderr != "" || !strings.Contains(stdout, "usage: steward "+name) {
					t.Fatalf("steward %s: exit %d, stderr %q, stdout:\n%s\nwant exit 0 and the usage of steward %s on stdout", strings.Join(args, " "), code, stderr, stdout, name)
				}
				if first == "" {
					first = stdout
				} else if stdout != first {
					t.Errorf("steward %s printed another help than steward %s -h:\n%s", strings.Join(args, " "), name, stdout)
				}
			}
			for flagLine, usage := range helpFlags(first) {
				if !strings.Contains(usage, "default") {
					t.Errorf("flag %s does not show its default: %q", flagLine, usage)
				}
			}
		})
	}
}

// helpFlags returns the flags a help lists, each with its usage.
func helpFlags(help string) map[string]string {
	flags := map[string]string{}
	lines := strings.Split(help, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "  -") && i+1 < len(lines) {
			flags[strings.TrimSpace(l)] = strings.TrimSpace(lines[i+1])
		}
	}
	return flags
}

func TestHelpShowsDefaults(t *testing.T) {
	_, serveHelp, _ := run(t, nil, "serve", "-h")
	_, listHelp, _ := run(t, nil, "users", "list", "-h")
	_, tailHelp, _ := run(t, nil, "audit", "tail", "-h")
	for _, tt := range []struct {
		help, flag, want string
	}{
		{serveHelp, "--addr ADDR", "(default 127.0.0.1:8080)"},
		{serveHelp, "--shutdown-timeout SHUTDOWN_TIMEOUT", "(default 15s)"},
		{serveHelp, "--demo-model", "(default false)"},
		{serveHelp, "--database-url DATABASE_URL", "(default: none)"},
		{listHelp, "--url URL", "(default " + defaultServerURL + ")"},
		{listHelp, "--key KEY", "(default: $STEWARD_ADMIN_KEY)"},
		{tailHelp, "--interval duration", "(default 2s)"},
	} {
		if got := helpFlags(tt.help)[tt.flag]; !strings.HasSuffix(got, tt.want) {
			t.Errorf("%s: %q, want it to end with %q", tt.flag, got, tt.want)
		}
	}
	if n := len(helpFlags(serveHelp)); n < 30 {
		t.Errorf("serve -h lists %d flags:\n%s", n, serveHelp)
	}
}

// TestHelpOfGroups: a group's help lists its own commands only.
func TestHelpOfGroups(t *testing.T) {
	code, stdout, _ := run(t, nil, "backoffice", "orgs", "--help")
	if code != 0 || !strings.Contains(stdout, "orgs promote") || strings.Contains(stdout, "admin-keys") {
		t.Errorf("backoffice orgs --help: exit %d\n%s\nwant the orgs commands only", code, stdout)
	}
	code, stdout, _ = run(t, nil, "backoffice", "orgs", "help", "create")
	if code != 0 || !strings.Contains(stdout, "usage: steward backoffice orgs create") || !strings.Contains(stdout, "--name NAME") {
		t.Errorf("backoffice orgs help create: exit %d\n%s", code, stdout)
	}
	code, stdout, _ = run(t, nil, "users", "help", "list")
	if code != 0 || !strings.Contains(stdout, "usage: steward users list") {
		t.Errorf("users help list: exit %d\n%s", code, stdout)
	}
	for _, args := range [][]string{{"-h"}, {"--help"}, {"help"}} {
		code, stdout, stderr := run(t, nil, args...)
		if code != 0 || stderr != "" || !strings.Contains(stdout, "usage: steward <command>") || !strings.Contains(stdout, "backoffice") {
			t.Errorf("steward %s: exit %d, stderr %q, stdout:\n%s", args[0], code, stderr, stdout)
		}
	}
	// A wrong command line is no request for help: usage on stderr, exit 2.
	for _, args := range [][]string{{}, {"users"}, {"backoffice", "orgs"}, {"serve", "--frob"}, {"users", "list", "--frob"}, {"completion"}} {
		code, stdout, stderr := run(t, nil, args...)
		if code != 2 || stdout != "" || !strings.Contains(stderr, "usage: steward") {
			t.Errorf("steward %s: exit %d, stdout %q, stderr %q; want exit 2 and the usage on stderr", strings.Join(args, " "), code, stdout, stderr)
		}
	}
}

func TestVersionEverywhere(t *testing.T) {
	want := "steward " + version() + "\n"
	for _, args := range [][]string{{"--version"}, {"-version"}, {"version"}} {
		if code, stdout, stderr := run(t, nil, args...); code != 0 || stdout != want || stderr != "" {
			t.Errorf("steward %s: exit %d, stdout %q, stderr %q; want %q", args[0], code, stdout, stderr, want)
		}
	}
	base, _, log, stop := serveLogged(t, nil, "--data-dir", t.TempDir())
	defer stop()
	firstLine, _, _ := strings.Cut(log.String(), "\n")
	if !strings.Contains(firstLine, `msg="steward starting" version=`+version()) {
		t.Errorf("serve's first log line: %q, want the version", firstLine)
	}
	code, body := get(t, base+"/healthz")
	var health struct{ Status, Version string }
	if err := json.Unmarshal([]byte(body), &health); err != nil || code != 200 || health.Status != "ok" || health.Version != version() {
		t.Errorf("healthz: %d %s, want ok and version %s", code, body, version())
	}
}

// TestRootSendsBrowsersToTheWebPages: a browser opening Steward's address
// lands on /web/; an API client still gets Mistral's 404.
func TestRootSendsBrowsersToTheWebPages(t *testing.T) {
	base, _, stop := serve(t, nil, "--data-dir", t.TempDir())
	defer stop()
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest("GET", base+"/", nil)
	req.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
	resp, err := noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/web/" {
		t.Errorf("GET / from a browser: %d, Location %q; want 302 to /web/", resp.StatusCode, resp.Header.Get("Location"))
	}
	code, body := get(t, base+"/", "Accept", "application/json")
	var e struct{ Code, Message string }
	if err := json.Unmarshal([]byte(body), &e); err != nil || code != 404 || !strings.Contains(e.Message, "no such route") {
		t.Errorf("GET / from an API client: %d %s, want Mistral's 404", code, body)
	}
}
