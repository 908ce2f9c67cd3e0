package keboola

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/go-logr/logr"
)

// clock is the time source of the client's waits. Tests replace it to
// record the requested waits instead of sleeping.
type clock interface {
	Now() time.Time
	// Sleep waits for d or until ctx ends, and then returns ctx.Err().
	Sleep(ctx context.Context, d time.Duration) error
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

// do sends req and retries it while the error matches ErrRetryable, at most
// Options.MaxRetries times. POST requests are never retried, because a
// create that failed may still have created the webhook.
func (c *Client) do(ctx context.Context, req *request) (*response, error) {
	for attempt := 0; ; attempt++ {
		resp, err := c.send(ctx, req)
		if err == nil {
			return resp, nil
		}

		delay, retry := c.retryDelay(ctx, req, attempt, err)
		if !retry {
			return nil, err
		}

		c.metrics.observeRetry(req.method, req.endpoint)
		logr.FromContextOrDiscard(ctx).V(1).Info("Retrying "+c.serviceName+" request",
			"method", req.method, "endpoint", req.endpoint, "retry", attempt+1, "delay", delay.String(), "error", err.Error())

		if sleepErr := c.clock.Sleep(ctx, delay); sleepErr != nil {
			return nil, fmt.Errorf("%w (retry canceled: %w)", err, sleepErr)
		}
	}
}

// retryDelay returns how long to wait before retrying after err on the
// attempt with the 0-based index attempt, or false when the request must not
// be retried.
func (c *Client) retryDelay(ctx context.Context, req *request, attempt int, err error) (time.Duration, bool) {
	if req.method == http.MethodPost || attempt >= c.options.MaxRetries || ctx.Err() != nil {
		return 0, false
	}
	if !errors.Is(err, ErrRetryable) {
		return 0, false
	}
	// The client has already waited as long as it may for its own limiter
	// or for a pause that the server asked for.
	var throttled *ThrottledError
	if errors.As(err, &throttled) {
		return 0, false
	}

	delay := backoffDelay(attempt, c.options.MinBackoff, c.options.MaxBackoff, c.jitter())
	if retryAfter, ok := RetryAfter(err); ok {
		// A long Retry-After goes back to the caller, which can requeue
		// instead of holding a worker.
		if retryAfter > c.options.MaxRetryAfter {
			return 0, false
		}
		delay = max(delay, retryAfter)
	}
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < delay {
		return 0, false
	}
	return delay, true
}

// backoffDelay returns the exponential backoff before the retry that follows
// the attempt with the 0-based index attempt: minBackoff doubled per attempt
// and capped at maxBackoff. jitter is in [0, 1) and spreads the result over
// the upper half of that step, so clients that failed together do not retry
// together.
func backoffDelay(attempt int, minBackoff, maxBackoff time.Duration, jitter float64) time.Duration {
	step := min(minBackoff, maxBackoff)
	for i := 0; i < attempt && step < maxBackoff; i++ {
		step = min(step*2, maxBackoff)
	}

	half := step / 2
	return half + time.Duration(jitter*float64(step-half))
}
