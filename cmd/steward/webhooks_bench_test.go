package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/benchcpu"
)

// BenchmarkWebhookFanOut sends Admin API writes (each one audit entry) to
// the real binary, 250 and then 1,000 a second, in rounds of 3 seconds
// that alternate between 10 endpoints on loopback subscribed to every
// event, disabled and enabled, three times; it reports the p99 of the
// writes without and with webhooks, the ratios of their p99s and p50s
// (the webhooks' cost to the writes), how long the last deliveries of a
// round took to arrive after its last write, and the server's CPU time per
// write without and with the deliveries.
//
//	go test ./cmd/steward -run '^$' -bench WebhookFanOut -benchtime 1x
func BenchmarkWebhookFanOut(b *testing.B) {
	const seconds, workers, endpoints, rounds = 3, 32, 10, 3
	for _, engine := range []string{"sqlite", "postgres"} {
		for _, rate := range []int{250, 1000} {
			b.Run(fmt.Sprintf("%s/writes=%d", engine, rate), func(b *testing.B) {
				rcv := receiverProcess(b)
				received := func() int64 { return rcv.count(b) }
				p := start(b, append([]string{"--webhooks-allow-private"}, storage(b, engine)...)...)
				admin := adminKey.FindStringSubmatch(p.output)[1]
				client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
				// The writes change the description of one of targets
				// Workspaces: one audit entry each, the same in both runs.
				// They go round more targets than there are writes in
				// flight, so that no write waits for another's row (the
				// writes of one row commit one after another: with few
				// rows the harness measures its own queue, which any
				// slower commit lengthens many times over).
				const targets = 64
				_, body := p.call(b, "GET", "/v1/admin/users", admin, "")
				var users struct{ Members []struct{ UUID string } }
				if err := json.Unmarshal([]byte(body), &users); err != nil || len(users.Members) == 0 {
					b.Fatalf("members: %s", body)
				}
				var target [targets]struct{ UUID string }
				for i := range target {
					status, body := p.call(b, "POST", "/v1/admin/workspaces", admin, fmt.Sprintf(`{"name":"Target %d","admin_user_id":"%s"}`, i, users.Members[0].UUID))
					if err := json.Unmarshal([]byte(body), &target[i]); status != http.StatusOK && status != http.StatusCreated || err != nil || target[i].UUID == "" {
						b.Fatalf("create Workspace: %d %s", status, body)
					}
				}
				var n atomic.Int64
				var firstErr atomic.Pointer[error]
				write := func() error {
					w := n.Add(1)
					req, _ := http.NewRequest("PATCH", p.base+"/v1/admin/workspaces/"+target[w%targets].UUID, strings.NewReader(fmt.Sprintf(`{"description":"write %d"}`, w)))
					req.Header.Set("x-api-key", admin)
					_, err := expect(client, req, http.StatusOK)
					if err != nil && firstErr.CompareAndSwap(nil, &err) {
						b.Log(err)
					}
					return err
				}
				// usage is the CPU time each process taking part has run so
				// far: the server, the receiver, PostgreSQL's (on SQLite,
				// none) and this one, the load.
				usage := func() (u [4]time.Duration) {
					u[0], u[1], u[3] = processCPU(b, p.cmd.Process.Pid), processCPU(b, rcv.cmd.Process.Pid), benchcpu.Self(b)
					if engine == "postgres" {
						var err error
						if u[2], err = benchcpu.Named("postgres"); err != nil {
							b.Fatal(err)
						}
					}
					return u
				}
				// perWrite adds to sum each process's CPU time from from
				// to now, per write of a round, over the rounds.
				perWrite := func(sum *[4]float64, from [4]time.Duration) {
					to := usage()
					for i := range sum {
						sum[i] += float64((to[i] - from[i]).Microseconds()) / float64(rate*seconds*rounds)
					}
				}
				// The endpoints are created disabled, and enabled for the
				// rounds with webhooks only: the rounds alternate in one
				// process, so that a shared machine's noise falls on both.
				ids := make([]string, endpoints)
				for i := range ids {
					status, body := p.call(b, "POST", "/v1/admin/webhooks", admin, fmt.Sprintf(`{"url":"%s/%d","events":["*"],"enabled":false}`, rcv.base, i))
					var e struct{ ID string }
					if err := json.Unmarshal([]byte(body), &e); status != 200 || err != nil {
						b.Fatalf("create webhook: %d %s", status, body)
					}
					ids[i] = e.ID
				}
				enable := func(on bool) {
					for _, id := range ids {
						if status, body := p.call(b, "PATCH", "/v1/admin/webhooks/"+id, admin, fmt.Sprintf(`{"enabled":%v}`, on)); status != 200 {
							b.Fatalf("enable webhook: %d %s", status, body)
						}
					}
				}
				for range b.N {
					var bare, hooked []time.Duration
					var drain time.Duration
					var bareCPU, hookedCPU [4]float64
					for range rounds {
						from := usage()
						lat, _, _ := measure(b, p, write, rate, rate*seconds, workers)
						bare = append(bare, lat...)
						perWrite(&bareCPU, from)
						enable(true)
						before := received()
						from = usage()
						lat, _, _ = measure(b, p, write, rate, rate*seconds, workers)
						hooked = append(hooked, lat...)
						ended := time.Now()
						want := int64(rate * seconds * endpoints)
						deadline := ended.Add(2 * time.Minute)
						for received()-before < want && time.Now().Before(deadline) {
							time.Sleep(10 * time.Millisecond)
						}
						if got := received() - before; got < want {
							b.Fatalf("%d of %d deliveries arrived within 2 minutes of the last write", got, want)
						}
						drain = max(drain, time.Since(ended))
						perWrite(&hookedCPU, from)
						enable(false)
					}
					slices.Sort(bare)
					slices.Sort(hooked)
					b.ReportMetric(float64(pct(bare, 99).Microseconds())/1000, "p99-no-webhooks-ms")
					b.ReportMetric(float64(pct(hooked, 99).Microseconds())/1000, "p99-10-webhooks-ms")
					b.ReportMetric(float64(pct(hooked, 99))/float64(pct(bare, 99)), "p99-ratio")
					b.ReportMetric(float64(pct(hooked, 50))/float64(pct(bare, 50)), "p50-ratio")
					b.ReportMetric(drain.Seconds(), "drain-s")
					for i, name := range []string{"server", "receiver", "postgres", "load"} {
						if name == "postgres" && engine != "postgres" {
							continue
						}
						b.ReportMetric(bareCPU[i], name+"-cpu-µs/write-no-webhooks")
						b.ReportMetric(hookedCPU[i], name+"-cpu-µs/write-10-webhooks")
					}
				}
			})
		}
	}
}

// receiverEnv, set, makes the test binary serve a webhook receiver instead
// of running tests: BenchmarkWebhookFanOut runs it as a process of its own,
// as receivers are elsewhere, so that its requests do not share the Go
// scheduler of the load that times the writes. It answers every request
// 200 and GET /count with how many others it answered.
const receiverEnv = "STEWARD_BENCH_RECEIVER"

type receiver struct{ *process }

// receiverProcess starts the test binary as a webhook receiver.
func receiverProcess(b *testing.B) receiver {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), receiverEnv+"=1")
	return receiver{run(b, cmd)}
}

// count is how many deliveries the receiver has answered.
func (r receiver) count(b *testing.B) int64 {
	status, body := r.get(b, "/count", "")
	n, err := strconv.ParseInt(body, 10, 64)
	if status != http.StatusOK || err != nil {
		b.Fatalf("receiver's count: %d %q", status, body)
	}
	return n
}

// serveReceiver serves a receiver as receiverEnv says, on a free loopback
// port, printing its address as steward serve does, until it is killed.
func serveReceiver() {
	var received atomic.Int64
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("listening on http://%s\n", l.Addr())
	fmt.Fprintln(os.Stderr, http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Path == "/count" {
			fmt.Fprint(w, received.Load())
			return
		}
		received.Add(1)
	})))
	os.Exit(1)
}
