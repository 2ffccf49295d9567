package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDoctor(t *testing.T) {
	models := filepath.Join(t.TempDir(), "models.yaml")
	model := "models:\n  - name: llama\n    upstreams:\n      - url: http://10.0.0.5:8000/v1\n"
	if err := os.WriteFile(models, []byte(model), 0o600); err != nil {
		t.Fatal(err)
	}
	timed := filepath.Join(t.TempDir(), "timed.yaml")
	if err := os.WriteFile(timed, []byte(model+"upstream_header_timeout: 5m\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const https = "https://steward.example.com"
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		// problems is the number found, none for a clean bill; say are
		// phrases of the report: what is wrong and what to change.
		problems int
		say      []string
	}{
		{name: "the defaults"},
		{name: "behind a TLS proxy it trusts", args: []string{"--addr", "0.0.0.0:8080", "--public-url", https, "--trusted-proxies", "10.0.0.0/8"}},
		{name: "behind a TLS proxy, cookies always Secure", args: []string{"--addr", "0.0.0.0:8080", "--public-url", https, "--secure-cookies"}},
		{name: "plain HTTP on every interface", args: []string{"--addr", ":8080"}, problems: 1,
			say: []string{"listens on :8080, which other hosts can reach, over plain HTTP, and no https:// --public-url", "set --public-url to its https:// URL"}},
		{name: "plain HTTP on a public address, http public URL", args: []string{"--addr", "203.0.113.5:8080", "--public-url", "http://steward.example.com"}, problems: 1,
			say: []string{"its public URL http://steward.example.com is plain HTTP too", "terminates TLS"}},
		{name: "https public URL, cookies not Secure", env: map[string]string{"STEWARD_PUBLIC_URL": https}, problems: 1,
			say: []string{"would not be marked Secure", "set --trusted-proxies to the address of the proxy"}},
		{name: "every address trusted", args: []string{"--public-url", https, "--trusted-proxies", "10.0.0.0/8,0.0.0.0/0"}, problems: 1,
			say: []string{"trusts every address", "list only the proxies' own addresses"}},
		{name: "the profiler", args: []string{"--debug-addr", "127.0.0.1:6060"}, problems: 1,
			say: []string{"the profiler is on at 127.0.0.1:6060", "unset --debug-addr"}},
		{name: "model servers without a timeout", args: []string{"--config", models}, problems: 1,
			say: []string{"model servers have no timeout", "set --upstream-header-timeout"}},
		{name: "model servers with a timeout", args: []string{"--config", timed}},
		{name: "several at once", args: []string{"--addr", "0.0.0.0:8080", "--debug-addr", "localhost:6060", "--config", models}, problems: 3,
			say: []string{"plain HTTP", "the profiler", "no timeout"}},
	} {
		code, stdout, stderr := run(t, tc.env, append([]string{"doctor"}, tc.args...)...)
		if tc.problems == 0 {
			if code != 0 || !strings.Contains(stdout, "No problems found") || stderr != "" {
				t.Errorf("%s: exit %d, stdout %q, stderr %q; want no problem", tc.name, code, stdout, stderr)
			}
			continue
		}
		found := strings.Count(stdout, "problem: ")
		if code != 1 || found != tc.problems || strings.Count(stdout, "  change: ") != found || !strings.Contains(stderr, "found") {
			t.Errorf("%s: exit %d, %d problems, stderr %q; want exit 1 and %d problems, each with what to change:\n%s", tc.name, code, found, stderr, tc.problems, stdout)
		}
		for _, w := range tc.say {
			if !strings.Contains(stdout, w) {
				t.Errorf("%s: the report does not say %q:\n%s", tc.name, w, stdout)
			}
		}
	}
	if code, _, stderr := run(t, nil, "doctor", "--trusted-proxies", "proxy.internal"); code != 1 || !strings.Contains(stderr, `trusted proxy "proxy.internal"`) {
		t.Errorf("a bad trusted proxy: exit %d, %q; want exit 1 naming it", code, stderr)
	}
}

func TestServeWarnsOfInsecureCookies(t *testing.T) {
	_, _, log, stop := serveLogged(t, nil, "--data-dir", t.TempDir(), "--public-url", "https://steward.example.com")
	stop()
	if got := log.String(); !strings.Contains(got, "level=WARN") || !strings.Contains(got, "would not be marked Secure") || !strings.Contains(got, "--trusted-proxies") {
		t.Fatalf("serve with an https public URL and no way to mark cookies Secure logged:\n%s\nwant a warning saying what to change", got)
	}
}
