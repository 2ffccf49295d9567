// Package client is a Go client of the Admin API of Steward and of Mistral
// AI, generated from Steward's OpenAPI document (admin.gen.go) and wrapped
// with what every program needs around it: the key sent as x-api-key, retries
// of 429 and 5xx answers that honour Retry-After, every error answer as an
// *APIError, and iterators over every page of the paged lists.
//
// The generated ClientWithResponses has one method per operation, named after
// its operationId; Admin embeds it. Operations that the OpenAPI document
// marks x-steward-extension are served by Steward only: against Mistral's API
// they answer 404, which errors.Is(err, ErrNotServed) recognises.
package client

//go:generate go tool oapi-codegen -config oapi-codegen.yaml -o admin.gen.go ../api/openapi.yaml

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Defaults of New, each changed by an Option.
const (
	DefaultTimeout      = 30 * time.Second
	DefaultMaxRetries   = 3
	DefaultMaxRetryWait = 30 * time.Second
	// maxErrorBytes bounds what is read of an error answer: Mistral's error
	// object and a validation failure are far smaller.
	maxErrorBytes = 1 << 20
	// maxAnswerBytes bounds what Send reads of an answer: a page of the
	// largest list is far smaller.
	maxAnswerBytes = 64 << 20
)

// Admin is a client of one Organization's Admin API, authenticated by its
// Admin API key (or, for the Backoffice operations, a Backoffice key).
type Admin struct {
	*ClientWithResponses
	base string
	doer *doer
}

// Option changes a setting of New.
type Option func(*settings)

type settings struct {
	doer         HttpRequestDoer
	maxRetries   int
	maxRetryWait time.Duration
	userAgent    string
	sleep        func(context.Context, time.Duration) error
}

// WithDoer sends the requests with doer instead of an *http.Client
// with DefaultTimeout.
func WithDoer(doer HttpRequestDoer) Option {
	return func(s *settings) { s.doer = doer }
}

// WithRetries sets how many times a request is sent again after a 429 or
// 5xx answer (0: never), and the longest wait before one: a Retry-After
// asking for longer ends the retries with the answer's error.
func WithRetries(max int, maxWait time.Duration) Option {
	return func(s *settings) { s.maxRetries, s.maxRetryWait = max, maxWait }
}

// WithUserAgent sets the User-Agent header of every request.
func WithUserAgent(ua string) Option {
	return func(s *settings) { s.userAgent = ua }
}

// withSleep replaces the wait between retries, so that tests need not wait.
func withSleep(sleep func(context.Context, time.Duration) error) Option {
	return func(s *settings) { s.sleep = sleep }
}

// New returns a client of the Admin API at baseURL, such as
// https://steward.example.com or https://api.mistral.ai, authenticated by
// key. The key is sent in x-api-key, as Mistral's guides and Steward both
// accept; an empty key sends none (the invitation acceptance and health
// checks need none).
func New(baseURL, key string, opts ...Option) (*Admin, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: the base URL must be an http:// or https:// URL, not %q", baseURL)
	}
	s := settings{
		doer:         &http.Client{Timeout: DefaultTimeout},
		maxRetries:   DefaultMaxRetries,
		maxRetryWait: DefaultMaxRetryWait,
		userAgent:    "steward-client",
		sleep:        sleep,
	}
	for _, o := range opts {
		o(&s)
	}
	d := &doer{settings: s, key: key}
	c, err := NewClientWithResponses(u.String(), WithHTTPClient(d))
	if err != nil {
		return nil, err
	}
	return &Admin{ClientWithResponses: c, base: u.String(), doer: d}, nil
}

// Send sends one request to path (such as /v1/admin/users/{id}, escaped)
// with the client's key, retries and errors, and returns the body of the
// answer. It serves programs that know operations by their path rather than
// by name, such as a command line derived from the OpenAPI document.
func (a *Admin) Send(ctx context.Context, method, path string, query url.Values, header http.Header, body []byte) ([]byte, error) {
	target := a.base + path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, r)
	if err != nil {
		return nil, err
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.doer.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
}

// doer authenticates each request, retries what may be retried, and turns
// every error answer into an *APIError.
type doer struct {
	settings
	key string
}

var _ HttpRequestDoer = (*doer)(nil)

// Do sends req. A request is retried only when sending it twice does what
// sending it once does: its method is idempotent, or it carries an
// Idempotency-Key that the server answers repeats of with the first result.
func (d *doer) Do(req *http.Request) (*http.Response, error) {
	if d.key != "" && req.Header.Get("Authorization") == "" {
		req.Header.Set("x-api-key", d.key)
	}
	if d.userAgent != "" {
		req.Header.Set("User-Agent", d.userAgent)
	}
	req.Header.Set("Accept", "application/json")
	retryable := req.Header.Get("Idempotency-Key") != ""
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete:
		retryable = true
	}
	if req.Body != nil && req.GetBody == nil {
		retryable = false
	}
	for attempt := 0; ; attempt++ {
		resp, err := d.doer.Do(req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode < 400 {
			return resp, nil
		}
		apiErr := readError(resp)
		if !retryable || attempt >= d.maxRetries || !retried(resp.StatusCode) {
			return nil, apiErr
		}
		wait := apiErr.RetryAfter
		if wait == 0 {
			// Exponential backoff from half a second, with jitter so that
			// clients failed together do not come back together.
			base := 500 * time.Millisecond << attempt
			wait = base/2 + rand.N(base/2)
		}
		if wait > d.maxRetryWait {
			return nil, apiErr
		}
		if err := d.sleep(req.Context(), wait); err != nil {
			return nil, err
		}
		if req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			req.Body = body
		}
	}
}

// retried tells whether an answer with status may succeed when repeated.
func retried(status int) bool {
	switch status {
	case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// readError reads and closes an error answer.
func readError(resp *http.Response) *APIError {
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBytes))
	e := parseError(resp.StatusCode, bytes.TrimSpace(raw))
	e.RequestID = resp.Header.Get("X-Request-Id")
	e.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), time.Now())
	return e
}

// retryAfter reads a Retry-After header, as seconds or an HTTP date; 0 when
// absent or unreadable.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
		if s < 0 {
			return 0
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// Sentinels an *APIError matches with errors.Is, by its status, so that a
// caller tests the kind of a failure without reading status codes.
var (
	ErrUnauthorized = errors.New("unauthorized")
	ErrForbidden    = errors.New("forbidden")
	ErrNotFound     = errors.New("not found")
	// ErrNotServed matches a 404 that is not Mistral's not_found_error
	// object: the server has no such route, as Mistral's API has none of
	// Steward's extensions, rather than no such object.
	ErrNotServed   = errors.New("not served")
	ErrConflict    = errors.New("conflict")
	ErrInvalid     = errors.New("invalid request")
	ErrRateLimited = errors.New("rate limited")
	ErrUnavailable = errors.New("unavailable")
)
