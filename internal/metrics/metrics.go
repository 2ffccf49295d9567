// Package metrics exposes Steward's Prometheus metrics: the gateway's
// requests, refusals by reason, overruns by upstream, upstream latency and
// the latency Steward adds; the limiter's Redis round trips and errors; the caches' sizes, and
// the change feed's resyncs and notification lag. It wraps what it measures
// (the gateway's handler, its upstream transport, its key check, its
// limits and its recorder) rather than reaching into them.
package metrics

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/stewardhq/steward/internal/billing"
	"github.com/stewardhq/steward/internal/httpstatus"
	"github.com/stewardhq/steward/internal/inference"
	"github.com/stewardhq/steward/internal/steward"
)

// Metrics holds Steward's collectors and their registry.
type Metrics struct {
	reg *prometheus.Registry

	requests *prometheus.CounterVec
	refusals *prometheus.CounterVec
	overruns *prometheus.CounterVec
	total    prometheus.Histogram
	upstream prometheus.Histogram
	added    prometheus.Histogram
}

// latencyBuckets span 100µs to about 100s.
var latencyBuckets = prometheus.ExponentialBuckets(0.0001, 2.5, 16)

// New returns Steward's metrics, with Go's and the process's.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "steward_gateway_requests_total", Help: "Model API requests answered, by HTTP status.",
	}, []string{"code"})
	m.refusals = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "steward_gateway_refusals_total", Help: "Model API requests refused before any model server was called, by reason (the error code).",
	}, []string{"reason"})
	m.overruns = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "steward_gateway_overruns_total",
		Help: "Model API requests that used more than they reserved against the limits, by model and by the model server that answered (the check API's reports have none).",
	}, []string{"model", "upstream"})
	m.total = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "steward_gateway_request_seconds", Help: "Time to answer a model API request, in full.", Buckets: latencyBuckets,
	})
	m.upstream = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "steward_gateway_upstream_seconds", Help: "Time a model server took, from the call to the end of its answer.", Buckets: latencyBuckets,
	})
	m.added = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "steward_gateway_added_seconds", Help: "Time Steward added to a model API request that reached a model server: its full time less the model server's.", Buckets: latencyBuckets,
	})
	m.reg.MustRegister(m.requests, m.refusals, m.overruns, m.total, m.upstream, m.added,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in Prometheus's text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Gauge registers a gauge whose value f reads when scraped.
func (m *Metrics) Gauge(name, help string, f func() float64) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
}

// Counter registers a counter whose value f reads when scraped.
func (m *Metrics) Counter(name, help string, f func() float64) {
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f))
}

// timing is what the transport tells the handler of one request: how long
// its model servers took, in nanoseconds.
type timing struct{ upstream atomic.Int64 }

type timingKey struct{}

// Gateway measures the model API's requests: their status, their full
// time, and the time Steward added to those that reached a model server.
func (m *Metrics) Gateway(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		tm := &timing{}
		sw := &httpstatus.Writer{ResponseWriter: w}
		next.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), timingKey{}, tm)))
		took := time.Since(start)
		if sw.Status == 0 {
			sw.Status = http.StatusOK
		}
		m.requests.WithLabelValues(strconv.Itoa(sw.Status)).Inc()
		m.total.Observe(took.Seconds())
		if up := time.Duration(tm.upstream.Load()); up > 0 {
			m.added.Observe(max(took-up, 0).Seconds())
		}
	})
}

// Routes measures every route of the model API as Gateway does.
func (m *Metrics) Routes(routes []inference.Route) []inference.Route {
	measured := make([]inference.Route, len(routes))
	for i, rt := range routes {
		rt.Handler = m.Gateway(rt.Handler)
		measured[i] = rt
	}
	return measured
}

// Transport returns the transport of the gateway's upstream client (for
// gateway.UpstreamTransport): base's connections, timed from the call to
// the end of the answer's body.
func (m *Metrics) Transport(base http.RoundTripper) http.RoundTripper {
	return &transport{m: m, base: base}
}

type transport struct {
	m    *Metrics
	base http.RoundTripper
}

func (t *transport) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.base.RoundTrip(r)
	tm, _ := r.Context().Value(timingKey{}).(*timing)
	if err != nil {
		t.done(tm, start)
		return nil, err
	}
	resp.Body = &timedBody{ReadCloser: resp.Body, t: t, tm: tm, start: start}
	return resp, nil
}

func (t *transport) done(tm *timing, start time.Time) {
	d := time.Since(start)
	t.m.upstream.Observe(d.Seconds())
	if tm != nil {
		tm.upstream.Add(int64(d))
	}
}

// timedBody ends an upstream call's time when its body ends or is closed.
type timedBody struct {
	io.ReadCloser
	t     *transport
	tm    *timing
	start time.Time
	ended bool
}

func (b *timedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && !b.ended {
		b.ended = true
		b.t.done(b.tm, b.start)
	}
	return n, err
}

func (b *timedBody) Close() error {
	if !b.ended {
		b.ended = true
		b.t.done(b.tm, b.start)
	}
	return b.ReadCloser.Close()
}

// reason names why a request was refused: its error's code, or its kind.
func reason(err error) string {
	var e *steward.Error
	if errors.As(err, &e) {
		if e.Code != "" {
			return e.Code
		}
		return e.Kind.String()
	}
	return "internal"
}

// Auth counts the key check's refusals.
func (m *Metrics) Auth(a inference.Authenticator) inference.Authenticator {
	return authCounter{m, a}
}

type authCounter struct {
	m *Metrics
	a inference.Authenticator
}

func (c authCounter) WorkspaceKey(r *http.Request) (steward.Principal, error) {
	return c.count(c.a.WorkspaceKey(r))
}

func (c authCounter) Reporter(r *http.Request) (steward.Principal, error) {
	return c.count(c.a.Reporter(r))
}

func (c authCounter) count(p steward.Principal, err error) (steward.Principal, error) {
	if err != nil {
		c.m.refusals.WithLabelValues(reason(err)).Inc()
	}
	return p, err
}

// Limits counts the limits' refusals, and their failures (the limits'
// Redis unavailable).
func (m *Metrics) Limits(l inference.Limits) inference.Limits {
	return limitsCounter{m, l}
}

type limitsCounter struct {
	m *Metrics
	l inference.Limits
}

func (c limitsCounter) Reserve(ctx context.Context, k steward.Principal, model string, worst billing.Quantity) (inference.Ticket, error) {
	t, err := c.l.Reserve(ctx, k, model, worst)
	if err != nil {
		c.m.refusals.WithLabelValues(reason(err)).Inc()
	}
	return t, err
}

// Recorder counts the usage that went beyond its reservation.
func (m *Metrics) Recorder(r inference.Recorder) inference.Recorder {
	return recordCounter{m, r}
}

type recordCounter struct {
	m *Metrics
	r inference.Recorder
}

func (c recordCounter) Record(ctx context.Context, u inference.Usage) error {
	c.m.count(u)
	return c.r.Record(ctx, u)
}

func (c recordCounter) Intend(u inference.Usage) (inference.Intent, error) {
	in, err := c.r.Intend(u)
	if err != nil {
		return nil, err
	}
	return intentCounter{in, c.m}, nil
}

type intentCounter struct {
	inference.Intent
	m *Metrics
}

func (c intentCounter) Settle(ctx context.Context, u inference.Usage) error {
	c.m.count(u)
	return c.Intent.Settle(ctx, u)
}

// count counts u if it went beyond its reservation.
func (m *Metrics) count(u inference.Usage) {
	if u.Overrun {
		m.overruns.WithLabelValues(u.Model, u.Upstream).Inc()
	}
}
