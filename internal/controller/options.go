package controller

import (
	"math/rand/v2"
	"time"

	"github.com/keboola/keboola-operator/internal/keboola"
)

// Options are the settings both reconcilers share. main.go fills them from
// command-line flags.
type Options struct {
	// ResyncPeriod is how often a Ready object is checked against Keboola
	// again. Each requeue is jittered by up to +10% so that objects created
	// together spread out.
	ResyncPeriod time.Duration

	// TokenExpiryWarning is how long before a token's expiry a
	// KeboolaProject reports TokenExpiringSoon.
	TokenExpiryWarning time.Duration

	// MaxConcurrentReconciles is the number of objects of one kind that are
	// reconciled in parallel.
	MaxConcurrentReconciles int

	// RotationGracePeriod is how long the previous webhook of a rotation
	// keeps delivering, and the Secret keeps its signing secret under
	// previousSigningSecret, after the new signing secret is published. It
	// should cover the time the kubelet takes to update a mounted Secret, up
	// to its sync period (one minute by default) plus its cache delay, and
	// the restart of consumers that read the secret from environment
	// variables. Zero deletes the previous webhook in the pass that
	// publishes the new secret.
	RotationGracePeriod time.Duration
}

// DefaultOptions returns the settings the operator uses when no flag
// overrides them.
func DefaultOptions() Options {
	return Options{
		ResyncPeriod:            10 * time.Minute,
		TokenExpiryWarning:      7 * 24 * time.Hour,
		MaxConcurrentReconciles: 4,
		RotationGracePeriod:     5 * time.Minute,
	}
}

// jittered returns d plus a random extra of up to 10% of d.
func jittered(d time.Duration) time.Duration {
	if d <= 0 {
		return d
	}
	return d + time.Duration(rand.Int64N(int64(d)/10+1))
}

// ClientFactory returns a Storage API client for one stack and token. Tests
// may wrap it to count or fail the construction of clients.
type ClientFactory func(stackURL, token string) (keboola.API, error)

// NewClientFactory returns a ClientFactory backed by f, which shares one rate
// limiter per stack host among all clients.
func NewClientFactory(f *keboola.Factory) ClientFactory {
	return func(stackURL, token string) (keboola.API, error) {
		c, err := f.Client(stackURL, token)
		if err != nil {
			return nil, err
		}
		return c, nil
	}
}
