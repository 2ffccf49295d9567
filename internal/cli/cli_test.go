package cli

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/logbuf"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
)

// run runs the steward command line in process.
func run(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut logbuf.Buffer
	code = Run(context.Background(), args, Env{Getenv: func(k string) string { return env[k] }, Stdout: &out, Stderr: &errOut})
	return code, out.String(), errOut.String()
}

// dbArgs returns the flags that select a fresh database of each engine.
func dbArgs(t *testing.T, fn func(t *testing.T, args []string)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, []string{"--data-dir", t.TempDir()}) })
	t.Run("postgres", func(t *testing.T) {
		db, cfg := storetest.OpenPostgres(t)
		db.Close()
		fn(t, []string{"--database-url", cfg.DatabaseURL})
	})
}

func TestInitJSONThenRefusesASecondTime(t *testing.T) {
	dbArgs(t, func(t *testing.T, db []string) {
		code, stdout, stderr := run(t, nil, append([]string{"init", "--json", "--org-name", "Acme", "--admin-email", "ops@acme.example"}, db...)...)
		if code != 0 {
			t.Fatalf("init: exit %d, stderr %s", code, stderr)
		}
		var out initOutput
		if err := json.Unmarshal([]byte(stdout), &out); err != nil {
			t.Fatalf("init --json printed %q: %v", stdout, err)
		}
		if out.EnterpriseAccountID == "" || out.OrganizationID == "" || out.AdminUserID == "" ||
			!strings.HasPrefix(out.AdminAPIKey, "stwa_") || !strings.HasPrefix(out.BackofficeKey, "stwb_") {
			t.Fatalf("init --json = %+v", out)
		}
		code, stdout, stderr = run(t, nil, append([]string{"init", "--json"}, db...)...)
		if code != 1 || !strings.Contains(stderr, "already initialised") || stdout != "" {
			t.Fatalf("second init: exit %d, stdout %q, stderr %q; want exit 1 saying it is already initialised", code, stdout, stderr)
		}
	})
}

var (
	listeningRE = regexp.MustCompile(`listening on (http://\S+)`)
	curlRE      = regexp.MustCompile(`curl -H '([^']+)' (\S+)`)
)

// serve starts steward serve in process and returns its base URL, what it
// printed so far, and a function that stops it and returns its exit code.
func serve(t *testing.T, env map[string]string, args ...string) (string, string, func() int) {
	t.Helper()
	base, printed, _, stop := serveLogged(t, env, args...)
	return base, printed, stop
}

// serveLogged is serve that also returns the server's log.
func serveLogged(t *testing.T, env map[string]string, args ...string) (string, string, *logbuf.Buffer, func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut logbuf.Buffer
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...),
			Env{Getenv: func(k string) string { return env[k] }, Stdout: &out, Stderr: &errOut})
	}()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if m := listeningRE.FindStringSubmatch(out.String()); m != nil {
			return m[1], out.String(), &errOut, func() int { cancel(); return <-done }
		}
		select {
		case code := <-done:
			t.Fatalf("serve exited with %d: %s", code, errOut.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	cancel()
	t.Fatalf("serve did not start: %s", errOut.String())
	return "", "", nil, nil
}

func get(t *testing.T, url string, header ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var passwordLinkRE = regexp.MustCompile(`\n  (http://\S+/web/password/reset\?token=\S+)\n`)

func TestServeFirstStartPrintsSecretsOnce(t *testing.T) {
	dbArgs(t, func(t *testing.T, db []string) {
		base, printed, stop := serve(t, nil, append([]string{"--admin-email", "root@corp.example"}, db...)...)
		m := curlRE.FindStringSubmatch(printed)
		if m == nil || !strings.Contains(printed, "Backoffice key  stwb_") {
			t.Fatalf("first start printed no curl line and keys:\n%s", printed)
		}
		header, url := m[1], m[2]
		name, value, _ := strings.Cut(header, ": ")
		if !strings.HasPrefix(url, base) {
			t.Fatalf("curl line calls %s, but the server listens on %s", url, base)
		}
		status, body := get(t, url, name, value)
		if status != 200 || !strings.Contains(body, "organization.create") || !strings.Contains(body, "root@corp.example") {
			t.Fatalf("the printed curl line answered %d: %s", status, body)
		}
		if status, body := get(t, base+"/readyz"); status != 200 {
			t.Fatalf("readyz: %d %s", status, body)
		}
		link := passwordLinkRE.FindStringSubmatch(printed)
		if link == nil || !strings.HasPrefix(link[1], base+"/web/password/reset?token=") || !strings.Contains(printed, "Choose root@corp.example's password") {
			t.Fatalf("first start printed no password link:\n%s", printed)
		}
		if status, body := get(t, link[1]); status != 200 || !strings.Contains(body, `name="token"`) {
			t.Fatalf("the password link answered %d: %s", status, body)
		}
		if code := stop(); code != 0 {
			t.Fatalf("serve exited with %d after cancellation", code)
		}

		base, printed, stop = serve(t, nil, db...)
		if strings.Contains(printed, "stwa_") || strings.Contains(printed, "stwb_") || strings.Contains(printed, "password/reset") {
			t.Fatalf("second start printed a secret:\n%s", printed)
		}
		if status, _ := get(t, base+"/v1/admin/audit-logs", "Authorization", "Bearer "+value); status != 200 {
			t.Fatalf("the first start's key after a restart: %d", status)
		}
		stop()
	})
}

func TestAuditVerifyCommand(t *testing.T) {
	dbArgs(t, func(t *testing.T, db []string) {
		if code, _, stderr := run(t, nil, append([]string{"init"}, db...)...); code != 0 {
			t.Fatalf("init: %s", stderr)
		}
		code, stdout, _ := run(t, nil, append([]string{"audit", "verify"}, db...)...)
		if code != 0 || !strings.Contains(stdout, "intact") {
			t.Fatalf("verify on a fresh log: exit %d, %s", code, stdout)
		}
		ctx := context.Background()
		cfg := store.Config{}
		if db[0] == "--data-dir" {
			cfg.DataDir = db[1]
		} else {
			cfg.DatabaseURL = db[1]
		}
		st, err := store.Open(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		var logID int64
		err = st.Transact(ctx, func(tx *store.Tx) error {
			if err := tx.QueryRow(ctx, `SELECT log_id FROM audit_log WHERE event_type = 'user.create'`).Scan(&logID); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `UPDATE audit_log SET target_metadata = '{"email":"intruder@evil.example"}' WHERE log_id = ?`, logID)
			return err
		})
		st.Close()
		if err != nil {
			t.Fatal(err)
		}
		code, stdout, stderr := run(t, nil, append([]string{"audit", "verify"}, db...)...)
		if code != 1 || !strings.Contains(stdout, "log_id="+itoa(logID)) || !strings.Contains(stderr, "tampered") {
			t.Fatalf("verify after an edit: exit %d, stdout %q, stderr %q; want exit 1 naming log_id=%d", code, stdout, stderr, logID)
		}
	})
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestConfigurationPrecedence(t *testing.T) {
	fileDir, envDir, flagDir := t.TempDir(), t.TempDir(), t.TempDir()
	cfgFile := filepath.Join(t.TempDir(), "steward.yaml")
	if err := os.WriteFile(cfgFile, []byte("data_dir: "+fileDir+"\norg_name: From File\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	initialised := func(dir string) bool {
		_, err := os.Stat(filepath.Join(dir, store.SQLiteFile))
		return err == nil
	}
	// The file applies when nothing overrides it.
	if code, _, stderr := run(t, map[string]string{"STEWARD_CONFIG": cfgFile}, "init"); code != 0 || !initialised(fileDir) {
		t.Fatalf("config file: exit %d, %s", code, stderr)
	}
	// The environment overrides the file.
	if code, _, stderr := run(t, map[string]string{"STEWARD_CONFIG": cfgFile, "STEWARD_DATA_DIR": envDir}, "init"); code != 0 || !initialised(envDir) {
		t.Fatalf("environment: exit %d, %s", code, stderr)
	}
	// A flag overrides both.
	if code, _, stderr := run(t, map[string]string{"STEWARD_DATA_DIR": envDir}, "init", "--config", cfgFile, "--data-dir", flagDir); code != 0 || !initialised(flagDir) {
		t.Fatalf("flag: exit %d, %s", code, stderr)
	}
	// Bad settings are named.
	for _, tc := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{nil, []string{"init", "--database-url", "mysql://x"}, "postgres://"},
		{map[string]string{"STEWARD_LOG_LEVEL": "loud"}, []string{"init", "--data-dir", t.TempDir()}, "log level"},
		{nil, []string{"serve", "--max-body-bytes", "-1"}, "--max-body-bytes"},
		{nil, []string{"serve", "--redis-url", "http://127.0.0.1:6379"}, "redis://"},
		{map[string]string{"STEWARD_REDIS_FAIL_OPEN": "spend,requests_per_second"}, []string{"serve"}, `"spend" is not a kind of limit`},
		{nil, []string{"init", "--config", filepath.Join(t.TempDir(), "missing.yaml")}, "config file"},
	} {
		code, _, stderr := run(t, tc.env, tc.args...)
		if code == 0 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want a failure naming %q", tc.args, code, stderr, tc.want)
		}
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	_ = os.WriteFile(bad, []byte("data_dirr: x\n"), 0o600)
	if code, _, stderr := run(t, nil, "init", "--config", bad); code == 0 || !strings.Contains(stderr, "data_dirr") {
		t.Errorf("unknown key in config file: exit %d, %q", code, stderr)
	}
}

func TestUsageAndVersion(t *testing.T) {
	if code, stdout, _ := run(t, nil, "version"); code != 0 || !strings.HasPrefix(stdout, "steward ") {
		t.Fatalf("version: %d %q", code, stdout)
	}
	if code, _, stderr := run(t, nil, "frobnicate"); code != 2 || !strings.Contains(stderr, "unknown command") {
		t.Fatalf("unknown command: %d %q", code, stderr)
	}
	if code, _, stderr := run(t, nil); code != 2 || !strings.Contains(stderr, "serve") {
		t.Fatalf("no command: %d %q", code, stderr)
	}
	if code, _, stderr := run(t, nil, "migrate", "extra"); code != 2 || !strings.Contains(stderr, "unexpected arguments") {
		t.Fatalf("extra argument: %d %q", code, stderr)
	}
	if code, stdout, stderr := run(t, nil, "migrate", "--data-dir", t.TempDir()); code != 0 || !strings.Contains(stdout, "up to date") {
		t.Fatalf("migrate: %d %q %q", code, stdout, stderr)
	}
}

func TestServeReadsModelsFromTheConfigFile(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "steward.yaml")
	write := func(body string) {
		t.Helper()
		if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(`currency: EUR
models:
  - name: local-llama
    upstreams:
      - url: http://127.0.0.1:9/v1
        api_key_env: LLAMA_KEY
    input_price_per_million: 0.2
    output_price_per_million: 0.6
`)
	code, _, stderr := run(t, nil, "serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--config", cfg)
	if code != 1 || !strings.Contains(stderr, "LLAMA_KEY") {
		t.Fatalf("a missing upstream key: exit %d, %q; want exit 1 naming LLAMA_KEY", code, stderr)
	}
	base, _, stop := serve(t, map[string]string{"LLAMA_KEY": "secret", "STEWARD_CONFIG": cfg}, "--data-dir", t.TempDir())
	defer stop()
	if status, body := get(t, base+"/v1/models"); status != 401 || !strings.Contains(body, "authentication_error") {
		t.Fatalf("/v1/models without a key: %d %s", status, body)
	}
	write("models:\n  - name: broken\n    input_price_per_million: -1\n")
	code, _, stderr = run(t, nil, "serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--config", cfg)
	if code != 1 || !strings.Contains(stderr, "broken") {
		t.Fatalf("a bad model: exit %d, %q", code, stderr)
	}
}

// TestServeRefusesABadSweepInterval: the sweep interval of the usage
// intents is read from the environment, and a value that is not a
// positive duration stops serve before it opens the database.
func TestServeRefusesABadSweepInterval(t *testing.T) {
	for _, v := range []string{"soon", "0s", "-1m"} {
		dir := filepath.Join(t.TempDir(), "data")
		code, _, stderr := run(t, map[string]string{sweepEnv: v}, "serve", "--addr", "127.0.0.1:0", "--data-dir", dir)
		if code == 0 || !strings.Contains(stderr, sweepEnv+`="`+v+`": want a positive duration`) {
			t.Fatalf("%s=%s: exit %d, %s", sweepEnv, v, code, stderr)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Fatalf("%s=%s: the data directory was created (%v)", sweepEnv, v, err)
		}
	}
}
