package client

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// TestRetries drives the client against a server that fails the first
// answers, and checks which requests are sent again and how long the client
// waits before each.
func TestRetries(t *testing.T) {
	tests := []struct {
		name       string
		failures   []int  // statuses answered before a 200
		retryAfter string // Retry-After of each failure
		send       func(ctx context.Context, a *Admin) error
		wantCalls  int32
		wantWaits  []time.Duration
		wantErr    error
	}{
		{
			name: "GET after 429 waits Retry-After", failures: []int{429, 429}, retryAfter: "2",
			send: func(ctx context.Context, a *Admin) error {
				_, err := a.StewardGetOrganizationWithResponse(ctx)
				return err
			},
			wantCalls: 3, wantWaits: []time.Duration{2 * time.Second, 2 * time.Second},
		},
		{
			name: "GET gives up after the retries", failures: []int{503, 503, 503, 503, 503},
			send: func(ctx context.Context, a *Admin) error {
				_, err := a.StewardGetOrganizationWithResponse(ctx)
				return err
			},
			wantCalls: 4, wantErr: ErrUnavailable,
		},
		{
			name: "a Retry-After beyond the longest wait is not waited for", failures: []int{429}, retryAfter: "3600",
			send: func(ctx context.Context, a *Admin) error {
				_, err := a.StewardGetOrganizationWithResponse(ctx)
				return err
			},
			wantCalls: 1, wantErr: ErrRateLimited,
		},
		{
			name: "POST is not retried", failures: []int{503},
			send: func(ctx context.Context, a *Admin) error {
				_, err := a.UsersApiAdminWorkspacesCreateWorkspaceWithResponse(ctx, AdminWorkspaceIn{Name: "w"})
				return err
			},
			wantCalls: 1, wantErr: ErrUnavailable,
		},
		{
			name: "POST with an Idempotency-Key is retried with its body", failures: []int{502}, retryAfter: "1",
			send: func(ctx context.Context, a *Admin) error {
				key := IdempotencyKey("k1")
				_, err := a.StewardRotateApiKeyWithResponse(ctx, KeyId{1}, &StewardRotateApiKeyParams{IdempotencyKey: &key}, RotateAPIKeyIn{})
				return err
			},
			wantCalls: 2, wantWaits: []time.Duration{time.Second},
		},
		{
			name: "a 404 is not retried", failures: []int{404},
			send: func(ctx context.Context, a *Admin) error {
				_, err := a.StewardGetOrganizationWithResponse(ctx)
				return err
			},
			wantCalls: 1, wantErr: ErrNotFound,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n := calls.Add(1)
				if got := r.Header.Get("x-api-key"); got != "sk-test" {
					t.Errorf("x-api-key %q, want sk-test", got)
				}
				if r.Method == http.MethodPost {
					body, err := io.ReadAll(r.Body)
					if err != nil || len(body) == 0 {
						t.Errorf("call %d: empty body (%v)", n, err)
					}
				}
				w.Header().Set("Content-Type", "application/json")
				if int(n) <= len(tt.failures) {
					if tt.retryAfter != "" {
						w.Header().Set("Retry-After", tt.retryAfter)
					}
					w.WriteHeader(tt.failures[n-1])
					w.Write([]byte(`{"object":"error","message":"try later","type":"server_error","param":null,"code":null}`))
					return
				}
				w.Write([]byte(`{}`))
			}))
			defer srv.Close()
			var waits []time.Duration
			a, err := New(srv.URL, "sk-test", withSleep(func(_ context.Context, d time.Duration) error {
				waits = append(waits, d)
				return nil
			}))
			if err != nil {
				t.Fatal(err)
			}
			err = tt.send(context.Background(), a)
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			if got := calls.Load(); got != tt.wantCalls {
				t.Errorf("%d calls, want %d", got, tt.wantCalls)
			}
			if tt.wantWaits != nil && len(waits) != len(tt.wantWaits) {
				t.Fatalf("waits %v, want %v", waits, tt.wantWaits)
			}
			for i := range tt.wantWaits {
				if waits[i] != tt.wantWaits[i] {
					t.Errorf("wait %d: %v, want %v", i, waits[i], tt.wantWaits[i])
				}
			}
		})
	}
}

// TestParseError reads both of Mistral's error shapes and bodies in
// neither.
func TestParseError(t *testing.T) {
	tests := []struct {
		status int
		body   string
		want   string
	}{
		{409, `{"object":"error","message":"name taken","type":"invalid_request_error","param":"name","code":"conflict"}`, "name taken (HTTP 409, conflict)"},
		{422, `{"detail":[{"loc":["body","amount"],"msg":"must be positive","type":"value_error"},{"loc":["query",0],"msg":"bad","type":"x"}]}`, "body.amount: must be positive; query.0: bad (HTTP 422)"},
		{404, `{"detail":"Not Found"}`, "Not Found (HTTP 404)"},
		{502, `<html>bad gateway</html>`, "the server answered bad gateway (HTTP 502)"},
		{429, `{"object":"error","message":"slow down","type":"rate_limit_error","param":null,"code":1300}`, "slow down (HTTP 429, 1300)"},
	}
	for _, tt := range tests {
		if got := parseError(tt.status, []byte(tt.body)).Error(); got != tt.want {
			t.Errorf("%d %s: %q, want %q", tt.status, tt.body, got, tt.want)
		}
	}
}

// TestNotServed tells a route the server lacks from an object it lacks.
func TestNotServed(t *testing.T) {
	tests := []struct {
		status int
		body   string
		want   bool
	}{
		{404, `{"detail":"Not Found"}`, true},
		{404, `<html>no route</html>`, true},
		{404, `{"object":"error","message":"no such group","type":"not_found_error","param":null,"code":null}`, false},
		{403, `{"detail":"Not Found"}`, false},
	}
	for _, tt := range tests {
		err := error(parseError(tt.status, []byte(tt.body)))
		if got := errors.Is(err, ErrNotServed); got != tt.want {
			t.Errorf("%d %s: errors.Is(err, ErrNotServed) = %v, want %v", tt.status, tt.body, got, tt.want)
		}
		if !errors.Is(err, ErrNotFound) && tt.status == 404 {
			t.Errorf("%d %s: does not match ErrNotFound", tt.status, tt.body)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := map[string]time.Duration{
		"":                              0,
		"5":                             5 * time.Second,
		"-1":                            0,
		"soon":                          0,
		"Tue, 01 Jan 2030 00:00:30 GMT": 30 * time.Second,
		"Mon, 31 Dec 2029 00:00:00 GMT": 0,
	}
	for v, want := range tests {
		if got := retryAfter(v, now); got != want {
			t.Errorf("retryAfter(%q) = %v, want %v", v, got, want)
		}
	}
}
