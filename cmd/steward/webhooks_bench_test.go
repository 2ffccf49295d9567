package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkWebhookFanOut sends Admin API writes (each one audit entry) to
// the real binary, 250 and then 1,000 a second for a few seconds, first with no webhook
// endpoint, then with 10 endpoints on loopback subscribed to every event,
// and reports the p99 of the writes in each run and their ratio (the
// webhooks' cost to the writes), and how long the last deliveries took to
// arrive after the last write.
//
//	go test ./cmd/steward -run '^$' -bench WebhookFanOut -benchtime 1x
func BenchmarkWebhookFanOut(b *testing.B) {
	const seconds, workers, endpoints = 4, 32, 10
	for _, engine := range []string{"sqlite", "postgres"} {
		for _, rate := range []int{250, 1000} {
			b.Run(fmt.Sprintf("%s/writes=%d", engine, rate), func(b *testing.B) {
				var received atomic.Int64
				receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { received.Add(1) }))
				defer receiver.Close()
				p := start(b, append([]string{"--webhooks-allow-private"}, storage(b, engine)...)...)
				admin := adminKey.FindStringSubmatch(p.output)[1]
				client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
				// The writes change the description of a disabled endpoint,
				// which receives nothing: one audit entry each, the same in
				// both runs.
				status, body := p.call(b, "POST", "/v1/admin/webhooks", admin, `{"url":"`+receiver.URL+`/off","events":["*"],"enabled":false}`)
				var target struct{ ID string }
				if err := json.Unmarshal([]byte(body), &target); status != 200 || err != nil {
					b.Fatalf("create webhook: %d %s", status, body)
				}
				var n atomic.Int64
				var firstErr atomic.Pointer[error]
				write := func() error {
					req, _ := http.NewRequest("PATCH", p.base+"/v1/admin/webhooks/"+target.ID, strings.NewReader(fmt.Sprintf(`{"description":"write %d"}`, n.Add(1))))
					req.Header.Set("x-api-key", admin)
					_, err := expect(client, req, http.StatusOK)
					if err != nil && firstErr.CompareAndSwap(nil, &err) {
						b.Log(err)
					}
					return err
				}
				run := func() time.Duration {
					lat, _, _ := measure(b, p, write, rate, rate*seconds, workers)
					return pct(lat, 99)
				}
				for range b.N {
					bare := run()
					for i := range endpoints {
						if status, body := p.call(b, "POST", "/v1/admin/webhooks", admin, fmt.Sprintf(`{"url":"%s/%d","events":["*"]}`, receiver.URL, i)); status != 200 {
							b.Fatalf("create webhook: %d %s", status, body)
						}
					}
					before := received.Load()
					hooked := run()
					ended := time.Now()
					want := int64(rate * seconds * endpoints)
					deadline := ended.Add(2 * time.Minute)
					for received.Load()-before < want && time.Now().Before(deadline) {
						time.Sleep(10 * time.Millisecond)
					}
					if got := received.Load() - before; got < want {
						b.Fatalf("%d of %d deliveries arrived within 2 minutes of the last write", got, want)
					}
					b.ReportMetric(float64(bare.Microseconds())/1000, "p99-no-webhooks-ms")
					b.ReportMetric(float64(hooked.Microseconds())/1000, "p99-10-webhooks-ms")
					b.ReportMetric(float64(hooked)/float64(bare), "p99-ratio")
					b.ReportMetric(time.Since(ended).Seconds(), "drain-s")
				}
			})
		}
	}
}
