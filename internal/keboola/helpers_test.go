package keboola

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
)

// testToken is distinctive so that a test can search for it in any output.
const testToken = "tok-SECRET-123"

// fakeClock records the waits that the client asks for and advances its
// time by each of them instead of sleeping.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2024, 1, 15, 10, 35, 1, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sleeps = append(c.sleeps, d)
	c.now = c.now.Add(d)
	return nil
}

func (c *fakeClock) recordedSleeps() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.sleeps...)
}

// recordedRequest is what a testServer received.
type recordedRequest struct {
	method      string
	path        string
	rawPath     string
	token       string
	userAgent   string
	accept      string
	contentType string
	body        string
}

// testServer is an httptest server on the loopback address that records
// every request and passes it, with its 0-based index, to handle.
type testServer struct {
	*httptest.Server

	mu       sync.Mutex
	requests []recordedRequest
}

func newTestServer(t *testing.T, handle func(w http.ResponseWriter, r *http.Request, index int)) *testServer {
	t.Helper()
	s := &testServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		index := len(s.requests)
		s.requests = append(s.requests, recordedRequest{
			method:      r.Method,
			path:        r.URL.Path,
			rawPath:     r.URL.EscapedPath(),
			token:       r.Header.Get("X-StorageApi-Token"),
			userAgent:   r.Header.Get("User-Agent"),
			accept:      r.Header.Get("Accept"),
			contentType: r.Header.Get("Content-Type"),
			body:        string(body),
		})
		s.mu.Unlock()
		handle(w, r, index)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *testServer) recorded() []recordedRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]recordedRequest(nil), s.requests...)
}

func (s *testServer) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.requests)
}

// reply is one scripted response.
type reply struct {
	status int
	header map[string]string
	body   string
}

// replies returns a handler that sends the scripted replies in order and
// repeats the last one after the script ends.
func replies(script ...reply) func(http.ResponseWriter, *http.Request, int) {
	return func(w http.ResponseWriter, _ *http.Request, index int) {
		r := script[min(index, len(script)-1)]
		for k, v := range r.header {
			w.Header().Set(k, v)
		}
		if r.body != "" && w.Header().Get("Content-Type") == "" {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(r.status)
		_, _ = io.WriteString(w, r.body)
	}
}

// newTestFactory returns a factory with a fake clock and no jitter, so that
// every backoff is exactly half of its exponential step.
func newTestFactory(options Options) (*Factory, *fakeClock) {
	f := NewFactory(options)
	clk := newFakeClock()
	f.clock = clk
	f.jitter = func() float64 { return 0 }
	return f, clk
}

// newTestClient returns a client of srv that authenticates with testToken.
func newTestClient(t *testing.T, srv *testServer, options Options) (*Client, *fakeClock) {
	t.Helper()
	f, clk := newTestFactory(options)
	c, err := f.Client(srv.URL, testToken)
	if err != nil {
		t.Fatalf("Client(%q) error = %v", srv.URL, err)
	}
	return c, clk
}

// assertNoToken fails when err's message contains the token.
func assertNoToken(t *testing.T, err error) {
	t.Helper()
	if err != nil && strings.Contains(err.Error(), testToken) {
		t.Errorf("error message contains the token: %s", err)
	}
}

// assertOneLine fails when err's message is empty or has a line break.
func assertOneLine(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if msg := err.Error(); msg == "" || strings.ContainsAny(msg, "\r\n") {
		t.Errorf("error message is not one non-empty line: %q", msg)
	}
}

var allSentinels = []error{
	ErrInvalidRequest, ErrUnauthorized, ErrForbidden, ErrNotFound,
	ErrRateLimited, ErrRetryable, ErrOutcomeUnknown,
}

// assertSentinels checks that err matches exactly the sentinels in want
// among allSentinels.
func assertSentinels(t *testing.T, err error, want ...error) {
	t.Helper()
	for _, sentinel := range allSentinels {
		expected := false
		for _, w := range want {
			if errors.Is(w, sentinel) {
				expected = true
			}
		}
		if got := errors.Is(err, sentinel); got != expected {
			t.Errorf("errors.Is(err, %v) = %v, want %v (err: %v)", sentinel, got, expected, err)
		}
	}
}

// newRecordingLogger returns a logger that writes every line, up to V(1), to
// out.
func newRecordingLogger(out *strings.Builder) logr.Logger {
	var mu sync.Mutex
	return funcr.New(func(prefix, args string) {
		mu.Lock()
		defer mu.Unlock()
		out.WriteString(prefix + " " + args + "\n")
	}, funcr.Options{Verbosity: 1})
}

func withLogger(ctx context.Context, logger logr.Logger) context.Context {
	return logr.NewContext(ctx, logger)
}

// expectedRequest is the request that one client call must send. An empty
// rawPath is not checked, and an empty body means that there is none.
type expectedRequest struct {
	method, path, rawPath, contentType, body string
}

// assertOneRequest checks that srv got exactly one request, that it matches
// want, and that it carries the client's token, User-Agent and Accept
// headers.
func assertOneRequest(t *testing.T, srv *testServer, want expectedRequest) {
	t.Helper()
	requests := srv.recorded()
	if len(requests) != 1 {
		t.Fatalf("server got %d requests, want 1", len(requests))
	}
	got := requests[0]
	if got.method != want.method {
		t.Errorf("method = %q, want %q", got.method, want.method)
	}
	if got.path != want.path {
		t.Errorf("path = %q, want %q", got.path, want.path)
	}
	if want.rawPath != "" && got.rawPath != want.rawPath {
		t.Errorf("escaped path = %q, want %q", got.rawPath, want.rawPath)
	}
	if got.token != testToken {
		t.Errorf("X-StorageApi-Token = %q, want %q", got.token, testToken)
	}
	if !strings.HasPrefix(got.userAgent, "keboola-operator/") {
		t.Errorf("User-Agent = %q, want prefix %q", got.userAgent, "keboola-operator/")
	}
	if got.accept != "application/json" {
		t.Errorf("Accept = %q, want %q", got.accept, "application/json")
	}
	if got.contentType != want.contentType {
		t.Errorf("Content-Type = %q, want %q", got.contentType, want.contentType)
	}
	if want.body != "" {
		assertJSONEqual(t, got.body, want.body)
	} else if got.body != "" {
		t.Errorf("body = %q, want none", got.body)
	}
}
