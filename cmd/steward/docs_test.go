package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// notRun lists the shell snippets of the docs that no test can run, by
// page and the start of the snippet's first line, each with the reason.
// Every other snippet of README.md and docs/*.md is run, so that a new
// snippet is tested unless it is added here.
var notRun = map[string][]string{
	"README.md": {
		"go run ./cmd/steward serve",        // starts the server the test starts itself
		"./scripts/test",                    // the test suite itself
		"STEWARD_TEST_POSTGRES=",            // the test suite itself
		"go build -o steward ./cmd/steward", // the binary the test built
	},
	"docs/getting-started.md": {
		"go run ./cmd/steward serve",        // starts the server the test starts itself
		"go build -o steward ./cmd/steward", // the binary the test built
		"steward serve --database-url",      // needs a PostgreSQL server named db.internal
	},
	"docs/gateway.md": {
		"go run ./cmd/steward serve --demo-model", // starts the server the test starts itself
	},
	"docs/scaling.md": {
		"steward serve --database-url", // needs PostgreSQL and Redis hosts of a deployment
		"STEWARD_TEST_POSTGRES=",       // a benchmark of several processes, minutes long
	},
	"docs/scim.md": {
		"go test -run '^$' -fuzz", // fuzzing, 30 s a target
	},
	"docs/users-and-roles.md": {
		"curl $STEWARD/v1/admin/users-invite/accept", // needs the token of an invitation's email
	},
	"docs/automation.md": {
		"steward audit tail --since 1h", // follows the log until interrupted
	},
	"docs/benchmarks.md": {
		"", // every benchmark: minutes long, several processes, some a second machine
	},
}

// readerVariables are set by the reader from the first start's output (see
// docs/getting-started.md); the test sets them from the server it starts
// and leaves out the snippets' lines that assign them.
var readerVariables = regexp.MustCompile(`^(export )?(STEWARD|ADMIN_KEY|BACKOFFICE_KEY)=\S*(\s+#.*)?$`)

// variablesHeading is the section of docs/getting-started.md whose snippet
// sets the variables every page's snippets use: it runs before each page.
const variablesHeading = "## The variables the pages use"

// snippet is one shell block of a page.
type snippet struct {
	line    int
	heading string
	text    string
}

var (
	fence = regexp.MustCompile("^( *)```(\\w*)")
	// A transcript (a $ prompt, then the output) shows a run rather than
	// a snippet to paste.
	indentedCmd  = regexp.MustCompile(`^    (steward |curl |go |\./|export |STEWARD_)`)
	firstStartRE = regexp.MustCompile(`Admin API key\s+(stwa_\S+)\s+Backoffice key\s+(stwb_\S+)`)
)

// snippets returns the ```sh blocks of a page; it fails the test on a
// shell command in an indented block, which the test would not run.
func snippets(t *testing.T, page string) []snippet {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", page))
	if err != nil {
		t.Fatal(err)
	}
	var out []snippet
	var cur *snippet
	var indent, heading string
	lines := strings.Split(string(b), "\n")
	for i, l := range lines {
		if cur != nil {
			if strings.TrimSpace(l) == "```" {
				out = append(out, *cur)
				cur = nil
				continue
			}
			cur.text += strings.TrimPrefix(l, indent) + "\n"
			continue
		}
		if strings.HasPrefix(l, "#") {
			heading = l
		}
		if m := fence.FindStringSubmatch(l); m != nil {
			if m[2] == "sh" || m[2] == "bash" || m[2] == "shell" {
				cur, indent = &snippet{line: i + 1, heading: heading}, m[1]
			} else {
				// Skip the other block whole, so that its lines are not
				// read as a page's.
				for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
				}
			}
			continue
		}
		if indentedCmd.MatchString(l) && (i == 0 || strings.TrimSpace(lines[i-1]) == "") {
			t.Errorf("%s:%d: a shell command in an indented block; write it in a ```sh block, which the docs test runs", page, i+1)
		}
	}
	return out
}

// TestDocSnippets runs every shell snippet of README.md and docs/*.md but
// those of notRun, in order, page by page, against the real binary: a fresh
// server and data directory per page, and a shell in which the variables
// that getting-started.md's snippet sets and those each snippet sets are
// kept for the next. curl fails on an HTTP error, so that a snippet whose
// request is refused fails.
func TestDocSnippets(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("the docs' snippets need %s: %v", tool, err)
			}
			t.Skipf("the docs' snippets need %s, which is not installed", tool)
		}
	}
	pages, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range pages {
		pages[i] = strings.TrimPrefix(p, "../../")
	}
	pages = append([]string{"README.md"}, pages...)

	var prelude string
	for _, s := range snippets(t, "docs/getting-started.md") {
		if s.heading == variablesHeading {
			prelude = s.text
		}
	}
	if prelude == "" {
		t.Fatalf("docs/getting-started.md has no snippet under %q", variablesHeading)
	}
	config := filepath.Join(t.TempDir(), "models.yaml")
	// The models the docs' snippets name in allow lists and limits; no
	// snippet calls them.
	if err := os.WriteFile(config, []byte(`models:
  - name: mistral-small
    upstreams: [{url: "http://127.0.0.1:9/v1"}]
    input_price_per_million: 0.1
    output_price_per_million: 0.3
  - name: mistral-embed
    upstreams: [{url: "http://127.0.0.1:9/v1"}]
    input_price_per_million: 0.1
    endpoints: [embeddings]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	used := map[string]map[string]bool{}
	for _, page := range pages {
		used[page] = map[string]bool{}
		var run []snippet
		for _, s := range snippets(t, page) {
			if skip, ok := skipped(page, s); ok {
				used[page][skip] = true
				continue
			}
			run = append(run, s)
		}
		if len(run) == 0 {
			continue
		}
		t.Run(page, func(t *testing.T) { runPage(t, page, prelude, run, config) })
	}
	for page, prefixes := range notRun {
		for _, p := range prefixes {
			if !used[page][p] {
				t.Errorf("notRun lists %s's snippet %q, which the page no longer has", page, p)
			}
		}
	}
}

// skipped returns the notRun entry that matches s.
func skipped(page string, s snippet) (string, bool) {
	first, _, _ := strings.Cut(strings.TrimSpace(s.text), "\n")
	for _, p := range notRun[page] {
		if strings.HasPrefix(first, p) {
			return p, true
		}
	}
	return "", false
}

var marker = regexp.MustCompile(`(?m)^@@snippet (\d+)$`)

// runPage starts a server on a fresh data directory and runs the page's
// snippets in one shell, after the variables' snippet.
func runPage(t *testing.T, page, prelude string, run []snippet, config string) {
	dir := t.TempDir()
	p := start(t, "--data-dir", filepath.Join(dir, "data"), "--demo-model", "--config", config)
	m := firstStartRE.FindStringSubmatch(p.output)
	if m == nil {
		t.Fatalf("the first start printed no keys:\n%s", p.output)
	}
	work := filepath.Join(dir, "work")
	if err := os.Mkdir(work, 0o700); err != nil {
		t.Fatal(err)
	}
	var script strings.Builder
	script.WriteString("set -euo pipefail\ncurl() { command curl --silent --show-error --fail-with-body --max-time 20 \"$@\"; }\n")
	script.WriteString("echo '@@snippet -1'\n" + withoutReaderLines(prelude))
	for i, s := range run {
		fmt.Fprintf(&script, "\necho '@@snippet %d'\n%s", i, withoutReaderLines(s.text))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script.String())
	cmd.Dir = work
	cmd.Env = []string{
		"PATH=" + filepath.Dir(binary) + ":/usr/local/bin:/usr/bin:/bin",
		"HOME=" + dir,
		"STEWARD=" + p.base,
		"ADMIN_KEY=" + m[1],
		"BACKOFFICE_KEY=" + m[2],
		// The reader's editor changes nothing.
		"EDITOR=true",
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		where := "the variables' snippet of docs/getting-started.md"
		text := prelude
		if all := marker.FindAllStringSubmatch(out.String(), -1); len(all) > 0 {
			var i int
			fmt.Sscan(all[len(all)-1][1], &i)
			if i >= 0 {
				where, text = fmt.Sprintf("%s:%d", page, run[i].line), run[i].text
			}
		}
		t.Fatalf("the snippet at %s failed (%v):\n%s\noutput:\n%s", where, err, text, out.String())
	}
}

// withoutReaderLines leaves out the lines that set readerVariables.
func withoutReaderLines(text string) string {
	var b strings.Builder
	for _, l := range strings.Split(text, "\n") {
		if !readerVariables.MatchString(strings.TrimSpace(l)) {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}
