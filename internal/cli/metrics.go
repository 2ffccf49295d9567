package cli

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/keys"
	"github.com/stewardhq/steward/internal/limits"
	"github.com/stewardhq/steward/internal/metrics"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/usage"
)

// newMetrics returns the process's metrics, reading the limiter's, the
// caches', the change feed's and the usage recorder's counts when scraped.
func newMetrics(db *store.DB, limiter limits.Limiter, checker *keys.Checker, access *directory.Access, recorder *usage.Recorder) *metrics.Metrics {
	m := metrics.New()
	if r, ok := limiter.(*limits.Redis); ok {
		m.Counter("steward_limiter_redis_round_trips_total", "Scripts and commands the limiter sent to Redis.", func() float64 { return float64(r.Stats().RoundTrips) })
		m.Counter("steward_limiter_redis_errors_total", "Scripts and commands the limiter sent to Redis that failed.", func() float64 { return float64(r.Stats().Errors) })
	}
	m.Gauge("steward_cache_api_keys", "Secrets in the key check's cache.", func() float64 { return float64(checker.Size()) })
	m.Gauge("steward_cache_access_organizations", "Organizations whose access graph is cached.", func() float64 { return float64(access.Size()) })
	m.Counter("steward_cache_resyncs_total", "Full resyncs of the caches (after a lost change feed connection, and periodically).", func() float64 { return float64(db.FeedStats().Resyncs) })
	m.Counter("steward_cache_feed_reconnects_total", "Reconnections of the change feed's listening connection.", func() float64 { return float64(db.FeedStats().Reconnects) })
	m.Counter("steward_cache_notifications_total", "Changes made by other processes that reached this one.", func() float64 { return float64(db.FeedStats().Received) })
	m.Gauge("steward_cache_notification_lag_seconds", "Delay of the last change from another process, from its transaction's start to its arrival here.", func() float64 { return db.FeedStats().Lag.Seconds() })
	m.Counter("steward_usage_batches_total", "Usage batches committed; steward_usage_events_total over this is the mean batch size.", func() float64 { return float64(recorder.Stats().Batches) })
	m.Counter("steward_usage_events_total", "Usage events in the committed batches, repeated ids included.", func() float64 { return float64(recorder.Stats().Events) })
	m.Counter("steward_usage_failed_batches_total", "Usage batches that failed, whose requests were answered with an error.", func() float64 { return float64(recorder.Stats().FailedBatches) })
	m.Counter("steward_usage_orphaned_intents_total", "Requests in flight in processes that died, recorded here at their reservation, marked estimated.", func() float64 { return float64(recorder.Stats().Orphans) })
	m.Counter("steward_usage_late_final_events_total", "Final usage events ignored because a sweep had recorded their request at its reservation (this process had lost its lock's connection).", func() float64 { return float64(recorder.Stats().LateFinals) })
	return m
}

// serveMetrics serves the metrics at /metrics on addr until the returned
// function is called.
func serveMetrics(addr string, m *metrics.Metrics, log *slog.Logger) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics address: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	log.Info("metrics serving", "url", "http://"+ln.Addr().String()+"/metrics")
	return func() { _ = srv.Close() }, nil
}
