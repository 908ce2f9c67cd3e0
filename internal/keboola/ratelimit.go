package keboola

import (
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limiter is the part of *rate.Limiter that the client uses. Tests replace
// it to count or block requests.
type limiter interface {
	Wait(ctx context.Context) error
}

// newRateLimiter returns a token bucket of qps requests per second and burst
// requests. A negative qps means no limit.
func newRateLimiter(qps float64, burst int) limiter {
	if qps < 0 {
		return rate.NewLimiter(rate.Inf, burst)
	}
	return rate.NewLimiter(rate.Limit(qps), burst)
}

// hostLimiter is the state that every client of one stack shares: the token
// bucket and the pause that a 429 or 503 response with Retry-After requests.
// Keboola applies its limits per stack, so a Retry-After that one client
// receives makes the other clients of the stack wait too.
type hostLimiter struct {
	limiter limiter

	mu          sync.Mutex
	pausedUntil time.Time
}

// pauseUntil makes the clients of the stack wait until t, unless an earlier
// response asked for a longer pause.
func (h *hostLimiter) pauseUntil(t time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if t.After(h.pausedUntil) {
		h.pausedUntil = t
	}
}

// remainingPause returns how long the clients of the stack must still wait
// at now.
func (h *hostLimiter) remainingPause(now time.Time) time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return max(h.pausedUntil.Sub(now), 0)
}

// waitForHost blocks until the stack's pause has passed and its token bucket
// allows one more request. It returns a *ThrottledError at once when the
// pause is longer than Options.MaxRetryAfter or outlasts the context's
// deadline. It also returns one when the context ends during a wait.
func (c *Client) waitForHost(ctx context.Context, req *request) error {
	start := time.Now()

	if pause := c.host.remainingPause(c.clock.Now()); pause > 0 {
		throttled := &ThrottledError{Method: req.method, Endpoint: req.endpoint, RetryAfter: pause}
		if pause > c.options.MaxRetryAfter {
			return throttled
		}
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < pause {
			return throttled
		}
		if err := c.clock.Sleep(ctx, pause); err != nil {
			return &ThrottledError{Method: req.method, Endpoint: req.endpoint, Err: err}
		}
	}

	if err := c.host.limiter.Wait(ctx); err != nil {
		return &ThrottledError{Method: req.method, Endpoint: req.endpoint, Err: err}
	}

	c.metrics.observeLimiterWait(time.Since(start))
	return nil
}
