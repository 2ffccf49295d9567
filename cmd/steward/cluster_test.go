package main

import (
	"database/sql"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/redistest"
	"github.com/stewardhq/steward/internal/store/storetest"
)

// TestClusterOfThree runs three steward processes on one PostgreSQL and one
// Redis, as behind a load balancer, and sends concurrent traffic through
// all three: a rate limit and a spend cap hold in total, a key revoked
// through one process is refused by the others within a second, and a
// process killed mid-run loses no usage it acknowledged: the others
// record what it left in flight.
func TestClusterOfThree(t *testing.T) {
	t.Setenv(sweepEnv, "200ms")
	_, prefix := redistest.Open(t)
	db, dbCfg := storetest.OpenPostgres(t)
	db.Close()
	model := fakeModel()
	defer model.Close()
	// 12 input and 2 output tokens an answer, at 1,000 a million: 0.014.
	const costPerAnswer = 0.014
	cfg := filepath.Join(t.TempDir(), "steward.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, "models:\n  - name: fake\n    upstreams:\n      - url: %s\n    input_price_per_million: 1000\n    output_price_per_million: 1000\n", model.URL), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"--database-url", dbCfg.DatabaseURL, "--redis-url", os.Getenv(redistest.Env), "--redis-prefix", prefix, "--config", cfg}
	procs := []*process{start(t, args...)}
	admin := adminKey.FindStringSubmatch(procs[0].output)[1]
	procs = append(procs, start(t, args...), start(t, args...))
	keyID, key := procs[0].workspaceKey(t, admin)

	chat := func(p *process, key string) (int, string, error) {
		resp, b, err := p.chat(key, hello)
		if err != nil {
			return 0, "", err
		}
		return resp.StatusCode, b, nil
	}
	// traffic sends n requests from 12 workers spread over the live
	// processes, and counts the answers and the refusals whose body names
	// refused; stop, when set, is called once after half of them.
	traffic := func(n int, refused string, stop func()) (answered, refusals, failed int64) {
		var ok, no, lost, sent atomic.Int64
		var dead atomic.Int32
		dead.Store(-1)
		var once sync.Once
		var wg sync.WaitGroup
		for w := range 12 {
			wg.Go(func() {
				for i := 0; sent.Add(1) <= int64(n); i++ {
					if stop != nil && sent.Load() > int64(n/2) {
						once.Do(func() { stop(); dead.Store(2) })
					}
					pi := (w + i) % len(procs)
					if int32(pi) == dead.Load() {
						pi = (pi + 1) % len(procs)
					}
					status, body, err := chat(procs[pi], key)
					switch {
					case err != nil && stop != nil:
						// The killed process's requests in flight.
						lost.Add(1)
					case err != nil:
						t.Error(err)
						return
					case status == 200:
						ok.Add(1)
					case status == 429 && strings.Contains(body, refused):
						no.Add(1)
					default:
						t.Errorf("process %d: %d %s", pi+1, status, body)
					}
				}
			})
		}
		wg.Wait()
		return ok.Load(), no.Load(), lost.Load()
	}

	// A rate limit set through the second process holds across all three.
	if status, body := procs[1].call(t, "PUT", "/v1/admin/rate-limit", admin, `{"requests_per_second":10}`); status != 200 {
		t.Fatalf("set rate limit: %d %s", status, body)
	}
	began := time.Now()
	answered, refusals, _ := traffic(150, "rate_limit_exceeded", nil)
	took := time.Since(began)
	// A burst of 10, then 10 a second; three processes counting apart
	// would let through three times that.
	if bound := 10 + int64(math.Ceil(10*took.Seconds())); answered > bound || refusals == 0 || answered+refusals != 150 {
		t.Fatalf("rate limit of 10/s over %v: %d answered (at most %d), %d refused", took, answered, bound, refusals)
	}
	// The spend cap, then the rate limit's removal, through the third
	// process; each process receives changes in the order they committed,
	// so one that answers without the rate limit has the cap too. Until
	// then a process may still refuse by the rate limit, within the
	// second that a change may take to reach it.
	if status, body := procs[2].call(t, "POST", "/v1/admin/spend-limit", admin, `{"amount":1}`); status != 200 {
		t.Fatalf("spend cap: %d %s", status, body)
	}
	if status, body := procs[2].call(t, "PUT", "/v1/admin/rate-limit", admin, `{"requests_per_second":null}`); status != 200 {
		t.Fatalf("remove rate limit: %d %s", status, body)
	}
	for i, p := range procs {
		changed := time.Now()
		for {
			status, body, err := chat(p, key)
			if err != nil {
				t.Fatal(err)
			}
			if status == 200 {
				break
			}
			if status != 429 || !strings.Contains(body, "rate_limit_exceeded") || time.Since(changed) > time.Second {
				t.Fatalf("process %d after the rate limit's removal: %d %s", i+1, status, body)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	// The spend cap holds in total while the third process is killed
	// mid-run; everything it acknowledged is recorded.
	pg, err := sql.Open("pgx", dbCfg.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	events := func() int64 {
		var n int64
		if err := pg.QueryRow(`SELECT COUNT(*) FROM usage_events WHERE model = 'fake'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	// Answers do not wait for their usage: the answers so far (those of
	// the rate limit, and one a process since) are counted once it lands.
	for deadline := time.Now().Add(10 * time.Second); events() < answered+int64(len(procs)) && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	before := events()
	answered, refusals, lost := traffic(240, "spend_limit_exceeded", func() {
		_ = procs[2].cmd.Process.Signal(syscall.SIGKILL)
	})
	// What the killed process left in flight is recorded by the others'
	// sweep.
	recorded := events() - before
	for deadline := time.Now().Add(10 * time.Second); recorded < answered && time.Now().Before(deadline); recorded = events() - before {
		time.Sleep(50 * time.Millisecond)
	}
	// Reservations in flight hold part of the cap while others are
	// refused, and those lost with the killed process hold it for the
	// month: so fewer than the 71 answers that fit may be answered.
	if answered < 30 || refusals == 0 || float64(recorded)*costPerAnswer > 1+1e-9 {
		t.Fatalf("spend cap of 1: %d answered, %d refused, %d recorded (%.3f)", answered, refusals, recorded, float64(recorded)*costPerAnswer)
	}
	if recorded < answered || recorded > answered+lost {
		t.Fatalf("%d answers acknowledged, %d requests lost with the killed process, %d recorded", answered, lost, recorded)
	}
	procs = procs[:2]

	// A key revoked through the first process is refused by the second
	// within a second: it is still let in (and refused by the cap) now.
	if status, body, err := chat(procs[1], key); err != nil || status != 429 {
		t.Fatalf("before revocation: %d %s %v", status, body, err)
	}
	if status, body := procs[0].call(t, "DELETE", "/v1/admin/api-keys/"+keyID, admin, ""); status != 204 && status != 200 {
		t.Fatalf("revoke: %d %s", status, body)
	}
	revoked := time.Now()
	for {
		status, body, err := chat(procs[1], key)
		if err != nil {
			t.Fatal(err)
		}
		if status == 401 {
			break
		}
		if time.Since(revoked) > time.Second {
			t.Fatalf("the second process still answers %d %s a second after the revocation", status, body)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if status, body, err := chat(procs[0], key); err != nil || status != 401 {
		t.Fatalf("the revoking process: %d %s %v", status, body, err)
	}
}
