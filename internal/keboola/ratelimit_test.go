package keboola

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// countingLimiter counts waits and never blocks.
type countingLimiter struct {
	waits atomic.Int64
}

func (l *countingLimiter) Wait(context.Context) error {
	l.waits.Add(1)
	return nil
}

func TestFactorySharesLimiterPerHost(t *testing.T) {
	first := newTestServer(t, replies(reply{status: 200, body: `[]`}))
	second := newTestServer(t, replies(reply{status: 200, body: `[]`}))

	f, _ := newTestFactory(Options{QPS: 3, Burst: 7})
	var mu sync.Mutex
	var limiters []*countingLimiter
	f.newLimiter = func(qps float64, burst int) limiter {
		if qps != 3 || burst != 7 {
			t.Errorf("newLimiter(%v, %d), want (3, 7)", qps, burst)
		}
		mu.Lock()
		defer mu.Unlock()
		l := &countingLimiter{}
		limiters = append(limiters, l)
		return l
	}

	// Two spellings of the first server's URL and two tokens share a limiter.
	clientA, err := f.Client(first.URL, "token-a")
	if err != nil {
		t.Fatalf("Client() error = %v", err)
	}
	clientB, err := f.Client(strings.ToUpper(first.URL)+"/", "token-b")
	if err != nil {
		t.Fatalf("Client() error = %v", err)
	}
	clientC, err := f.Client(second.URL, "token-a")
	if err != nil {
		t.Fatalf("Client() error = %v", err)
	}

	ctx := context.Background()
	for _, c := range []*Client{clientA, clientB, clientB, clientC} {
		if _, err := c.ListWebhooks(ctx); err != nil {
			t.Fatalf("ListWebhooks() error = %v", err)
		}
	}

	if len(limiters) != 2 {
		t.Fatalf("factory created %d limiters, want 2 (one per host)", len(limiters))
	}
	if got := limiters[0].waits.Load(); got != 3 {
		t.Errorf("first host's limiter had %d waits, want 3", got)
	}
	if got := limiters[1].waits.Load(); got != 1 {
		t.Errorf("second host's limiter had %d waits, want 1", got)
	}
}

func TestFactoryLimiterCountsRetries(t *testing.T) {
	srv := newTestServer(t, replies(reply{status: 500}, reply{status: 200, body: `[]`}))
	f, _ := newTestFactory(Options{})
	l := &countingLimiter{}
	f.newLimiter = func(float64, int) limiter { return l }
	c, err := f.Client(srv.URL, testToken)
	if err != nil {
		t.Fatalf("Client() error = %v", err)
	}
	if _, err := c.ListWebhooks(context.Background()); err != nil {
		t.Fatalf("ListWebhooks() error = %v", err)
	}
	if got := l.waits.Load(); got != 2 {
		t.Errorf("limiter had %d waits, want 2 (the attempt and its retry)", got)
	}
}

func TestFactoryRateLimitsAcrossClients(t *testing.T) {
	limited := newTestServer(t, replies(reply{status: 200, body: `[]`}))
	other := newTestServer(t, replies(reply{status: 200, body: `[]`}))
	f := NewFactory(Options{QPS: 0.1, Burst: 1})
	clientA, _ := f.Client(limited.URL, "token-a")
	clientB, _ := f.Client(limited.URL, "token-b")
	clientOther, _ := f.Client(other.URL, "token-a")

	if _, err := clientA.ListWebhooks(context.Background()); err != nil {
		t.Fatalf("first ListWebhooks() error = %v", err)
	}

	// The burst is spent, and the next token comes in 10s, after the deadline.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := clientB.ListWebhooks(ctx)
	var throttled *ThrottledError
	if !errors.As(err, &throttled) {
		t.Fatalf("ListWebhooks() error = %v, want a *ThrottledError", err)
	}
	assertSentinels(t, err, ErrRateLimited, ErrRetryable)
	assertNoToken(t, err)
	if n := limited.count(); n != 1 {
		t.Errorf("limited server got %d requests, want 1", n)
	}

	if _, err := clientOther.ListWebhooks(ctx); err != nil {
		t.Errorf("ListWebhooks() on another host error = %v, want success", err)
	}
}

func TestFactoryNegativeQPSDisablesLimit(t *testing.T) {
	srv := newTestServer(t, replies(reply{status: 200, body: `[]`}))
	c, err := NewFactory(Options{QPS: -1, Burst: 1}).Client(srv.URL, testToken)
	if err != nil {
		t.Fatalf("Client() error = %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for i := range 5 {
		if _, err := c.ListWebhooks(ctx); err != nil {
			t.Fatalf("ListWebhooks() #%d error = %v", i, err)
		}
	}
}

func TestClientPauseSharedAcrossClients(t *testing.T) {
	paused := newTestServer(t, replies(reply{status: 429, header: map[string]string{"Retry-After": "120"}}))
	other := newTestServer(t, replies(reply{status: 200, body: `[]`}))
	f, clk := newTestFactory(Options{})
	clientA, _ := f.Client(paused.URL, "token-a")
	clientB, _ := f.Client(paused.URL, testToken)
	clientOther, _ := f.Client(other.URL, testToken)
	ctx := context.Background()

	_, err := clientA.ListWebhooks(ctx)
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 429 {
		t.Fatalf("ListWebhooks() error = %v, want the 429 *APIError, not retried past MaxRetryAfter", err)
	}

	_, err = clientB.CreateWebhook(ctx, WebhookSpec{Name: "jobs"})
	var throttled *ThrottledError
	if !errors.As(err, &throttled) {
		t.Fatalf("CreateWebhook() error = %v, want a *ThrottledError", err)
	}
	if throttled.RetryAfter != 2*time.Minute {
		t.Errorf("RetryAfter = %v, want 2m0s", throttled.RetryAfter)
	}
	assertSentinels(t, err, ErrRateLimited, ErrRetryable)
	if n := paused.count(); n != 1 {
		t.Errorf("paused server got %d requests, want 1", n)
	}

	if _, err := clientOther.ListWebhooks(ctx); err != nil {
		t.Errorf("ListWebhooks() on another host error = %v, want success", err)
	}
	if sleeps := clk.recordedSleeps(); len(sleeps) != 0 {
		t.Errorf("clients slept %v, want no waits", sleeps)
	}
}

func TestClientPauseWaitsThenSends(t *testing.T) {
	srv := newTestServer(t, replies(
		reply{status: 429, header: map[string]string{"Retry-After": "5"}},
		reply{status: 200, body: `[]`},
	))
	f, clk := newTestFactory(Options{MaxRetries: -1})
	clientA, _ := f.Client(srv.URL, "token-a")
	clientB, _ := f.Client(srv.URL, "token-b")
	ctx := context.Background()

	if _, err := clientA.ListWebhooks(ctx); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("ListWebhooks() error = %v, want the 429 error", err)
	}
	if _, err := clientB.ListWebhooks(ctx); err != nil {
		t.Fatalf("ListWebhooks() error = %v, want success after the pause", err)
	}
	if diff := cmp.Diff([]time.Duration{5 * time.Second}, clk.recordedSleeps()); diff != "" {
		t.Errorf("waits mismatch (-want +got):\n%s", diff)
	}

	// The pause is over, so a third request does not wait.
	if _, err := clientA.ListWebhooks(ctx); err != nil {
		t.Fatalf("ListWebhooks() error = %v", err)
	}
	if n := len(clk.recordedSleeps()); n != 1 {
		t.Errorf("clients slept %d times, want 1", n)
	}
}

func TestClientPauseBeyondDeadline(t *testing.T) {
	srv := newTestServer(t, replies(reply{status: 503, header: map[string]string{"Retry-After": "30"}}))
	f, clk := newTestFactory(Options{MaxRetries: -1})
	c, _ := f.Client(srv.URL, testToken)
	if _, err := c.ListWebhooks(context.Background()); err == nil {
		t.Fatal("ListWebhooks() error = nil, want the 503 error")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := c.ListWebhooks(ctx)
	if got, ok := RetryAfter(err); !ok || got != 30*time.Second {
		t.Errorf("RetryAfter(err) = %v, %v, want 30s, true (err: %v)", got, ok, err)
	}
	if sleeps := clk.recordedSleeps(); len(sleeps) != 0 {
		t.Errorf("client slept %v, want no wait past the deadline", sleeps)
	}
	if n := srv.count(); n != 1 {
		t.Errorf("server got %d requests, want 1", n)
	}
}

func TestHostLimiterKeepsLongestPause(t *testing.T) {
	h := &hostLimiter{limiter: &countingLimiter{}}
	now := time.Date(2024, 1, 15, 10, 0, 0, 0, time.UTC)
	h.pauseUntil(now.Add(time.Minute))
	h.pauseUntil(now.Add(time.Second))
	if got := h.remainingPause(now); got != time.Minute {
		t.Errorf("remainingPause() = %v, want 1m0s", got)
	}
	if got := h.remainingPause(now.Add(2 * time.Minute)); got != 0 {
		t.Errorf("remainingPause() after the pause = %v, want 0", got)
	}
}
