package metrics_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/billing"
	"github.com/stewardhq/steward/internal/inference"
	"github.com/stewardhq/steward/internal/metrics"
	"github.com/stewardhq/steward/internal/steward"
)

type refuseAll struct{ err error }

func (r refuseAll) WorkspaceKey(*http.Request) (steward.Principal, error) {
	return steward.Principal{}, r.err
}

func (r refuseAll) Reporter(*http.Request) (steward.Principal, error) {
	return steward.Principal{}, r.err
}

func (r refuseAll) Reserve(context.Context, steward.Principal, string, billing.Quantity) (inference.Ticket, error) {
	return nil, r.err
}

// discard records nothing.
type discard struct{}

func (discard) Record(context.Context, inference.Usage) error { return nil }

func (d discard) Intend(inference.Usage) (inference.Intent, error) { return inference.Direct(d), nil }

// value returns a sample's value from the text format, -1 when absent.
func value(t *testing.T, text, sample string) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sample) + ` (\S+)$`).FindStringSubmatch(text)
	if m == nil {
		return -1
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestGatewayMetrics(t *testing.T) {
	m := metrics.New()
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(20 * time.Millisecond)
		_, _ = io.WriteString(w, "answer")
	}))
	defer upstream.Close()
	client := &http.Client{Transport: m.Transport(http.DefaultTransport)}
	// A stand-in for the gateway: it calls the model server with the
	// request's context, as the gateway does, and relays the answer.
	h := m.Gateway(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/refused" {
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		req, _ := http.NewRequestWithContext(r.Context(), "GET", upstream.URL, nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Error(err)
			return
		}
		defer resp.Body.Close()
		_, _ = io.Copy(w, resp.Body)
	}))
	for _, path := range []string{"/ok", "/ok", "/refused"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", path, nil))
	}
	ctx := context.Background()
	auth := m.Auth(refuseAll{&steward.Error{Kind: steward.KindUnauthenticated, Code: "key_expired"}})
	_, _ = auth.WorkspaceKey(httptest.NewRequest("POST", "/v1/chat/completions", nil))
	_, _ = auth.Reporter(httptest.NewRequest("POST", "/v1/check/c/report", nil))
	_, _ = m.Limits(refuseAll{&inference.Refusal{Err: &steward.Error{Kind: steward.KindRateLimited, Code: "spend_limit_exceeded"}}}).Reserve(ctx, steward.Principal{}, "m", billing.Tokens(1, 1))
	_, _ = m.Limits(refuseAll{&steward.Error{Kind: steward.KindUnavailable, Code: "limits_unavailable"}}).Reserve(ctx, steward.Principal{}, "m", billing.Tokens(1, 1))
	for _, u := range []inference.Usage{
		{Model: "m", Upstream: "http://10.0.0.5:8000/v1", Overrun: true},
		{Model: "m", Upstream: "http://10.0.0.5:8000/v1"},
		{Model: "m", Upstream: "http://10.0.0.5:8000/v1", Overrun: true},
		{Model: "m", Overrun: true},
	} {
		_ = m.Recorder(discard{}).Record(ctx, u)
	}
	// A model request's usage is settled through its intent.
	for _, u := range []inference.Usage{{Model: "n", Upstream: "http://10.0.0.6:8000/v1", Overrun: true}, {Model: "n", Upstream: "http://10.0.0.6:8000/v1"}} {
		in, err := m.Recorder(discard{}).Intend(u)
		if err != nil {
			t.Fatal(err)
		}
		_ = in.Settle(ctx, u)
	}
	m.Gauge("steward_test_gauge", "A test gauge.", func() float64 { return 7 })

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	text := rec.Body.String()
	for sample, want := range map[string]float64{
		`steward_gateway_requests_total{code="200"}`:                                   2,
		`steward_gateway_requests_total{code="429"}`:                                   1,
		`steward_gateway_request_seconds_count`:                                        3,
		`steward_gateway_upstream_seconds_count`:                                       2,
		`steward_gateway_added_seconds_count`:                                          2,
		`steward_gateway_refusals_total{reason="key_expired"}`:                         2,
		`steward_gateway_refusals_total{reason="spend_limit_exceeded"}`:                1,
		`steward_gateway_refusals_total{reason="limits_unavailable"}`:                  1,
		`steward_gateway_overruns_total{model="m",upstream="http://10.0.0.5:8000/v1"}`: 2,
		`steward_gateway_overruns_total{model="m",upstream=""}`:                        1,
		`steward_gateway_overruns_total{model="n",upstream="http://10.0.0.6:8000/v1"}`: 1,
		`steward_test_gauge`: 7,
	} {
		if got := value(t, text, sample); got != want {
			t.Errorf("%s = %v; want %v", sample, got, want)
		}
	}
	// The model server took at least 20ms of each call, which is not
	// counted as added.
	if up := value(t, text, "steward_gateway_upstream_seconds_sum"); up < 0.04 {
		t.Errorf("upstream time %v; want at least 40ms", up)
	}
	if total, up, added := value(t, text, "steward_gateway_request_seconds_sum"), value(t, text, "steward_gateway_upstream_seconds_sum"), value(t, text, "steward_gateway_added_seconds_sum"); added > total-up+1e-9 || added < 0 {
		t.Errorf("added %v with %v in all and %v upstream", added, total, up)
	}
	if !strings.Contains(text, "go_goroutines") {
		t.Errorf("no Go metrics")
	}
}

// Routes measures each route of the model API, keeping its pattern and
// whether it owns its body, and leaves the routes it was given as they
// were.
func TestRoutesAreMeasured(t *testing.T) {
	m := metrics.New()
	created := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusCreated) })
	routes := []inference.Route{{Pattern: "POST /v1/a", Handler: created, OwnsBody: true}, {Pattern: "/v1/b", Handler: created}}
	measured := m.Routes(routes)
	if len(measured) != 2 || measured[0].Pattern != "POST /v1/a" || !measured[0].OwnsBody || measured[1].Pattern != "/v1/b" || measured[1].OwnsBody {
		t.Fatalf("measured routes %+v", measured)
	}
	for _, rt := range append(measured, routes...) {
		rt.Handler.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/", nil))
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if got := value(t, rec.Body.String(), `steward_gateway_requests_total{code="201"}`); got != 2 {
		t.Fatalf("requests answered 201 = %v, want the 2 through the measured routes", got)
	}
}
