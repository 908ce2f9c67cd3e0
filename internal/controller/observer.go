package controller

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/keboola/keboola-operator/internal/keboola"
)

// projectKey identifies a Keboola project across stacks.
type projectKey struct {
	// stackURL is the normalised base URL of the stack.
	stackURL  string
	projectID int64
}

// webhookObserver shares the webhook lists of Keboola projects among the
// KeboolaWebhooks of each project, so that a periodic resync of many
// webhooks costs one list request per project and resync period instead of
// one request per webhook.
//
// A list is reused while it is younger than maxAge. Concurrent callers for
// one project wait for a single request. Errors are not cached. A caller
// that changes a project's webhooks calls invalidate afterwards, so that no
// later caller gets a list that predates the change.
type webhookObserver struct {
	maxAge time.Duration
	now    func() time.Time

	mu      sync.Mutex
	entries map[projectKey]*observation
}

// observation is one list of a project's webhooks, or the request that
// fetches it.
type observation struct {
	// done is closed when the request has finished and the fields below
	// are set.
	done      chan struct{}
	webhooks  []keboola.Webhook
	fetchedAt time.Time
	err       error
	// stale is set by invalidate while the request is in flight, so that
	// its result is given to the callers that wait for it but not kept.
	stale bool
}

// newWebhookObserver returns an observer that reuses a list for maxAge.
func newWebhookObserver(maxAge time.Duration) *webhookObserver {
	return &webhookObserver{
		maxAge:  maxAge,
		now:     time.Now,
		entries: make(map[projectKey]*observation),
	}
}

// list returns the webhooks of the project key, with the time they were
// fetched. It sends a request through api only when no list younger than
// maxAge is cached and no request for the project is in flight.
func (o *webhookObserver) list(ctx context.Context, key projectKey, api keboola.API) ([]keboola.Webhook, time.Time, error) {
	o.mu.Lock()
	entry, ok := o.entries[key]
	if ok && o.isFresh(entry) {
		o.mu.Unlock()
		return o.wait(ctx, entry)
	}
	entry = &observation{done: make(chan struct{})}
	o.entries[key] = entry
	o.mu.Unlock()

	// The request runs with the context of the caller that started it. A
	// caller that waits and gets its context's error retries on its next
	// reconcile.
	webhooks, err := api.ListWebhooks(ctx)

	o.mu.Lock()
	entry.webhooks = webhooks
	entry.fetchedAt = o.now()
	entry.err = err
	if (err != nil || entry.stale) && o.entries[key] == entry {
		delete(o.entries, key)
	}
	close(entry.done)
	o.mu.Unlock()

	return slices.Clone(webhooks), entry.fetchedAt, err
}

// cached returns the webhooks of the project key when a list younger than
// maxAge is at hand, without sending a request or waiting for one.
func (o *webhookObserver) cached(key projectKey) ([]keboola.Webhook, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	entry, ok := o.entries[key]
	if !ok {
		return nil, false
	}
	select {
	case <-entry.done:
	default:
		return nil, false
	}
	if entry.err != nil || o.now().Sub(entry.fetchedAt) >= o.maxAge {
		return nil, false
	}
	return slices.Clone(entry.webhooks), true
}

// isFresh reports whether entry is in flight or younger than maxAge. The
// caller holds o.mu.
func (o *webhookObserver) isFresh(entry *observation) bool {
	select {
	case <-entry.done:
		return o.now().Sub(entry.fetchedAt) < o.maxAge
	default:
		return true
	}
}

// wait returns the result of entry once its request has finished.
func (o *webhookObserver) wait(ctx context.Context, entry *observation) ([]keboola.Webhook, time.Time, error) {
	select {
	case <-entry.done:
		return slices.Clone(entry.webhooks), entry.fetchedAt, entry.err
	case <-ctx.Done():
		return nil, time.Time{}, ctx.Err()
	}
}

// invalidate drops the cached list of the project key. A request in flight
// still returns its result to the callers waiting for it, but the result is
// not kept.
func (o *webhookObserver) invalidate(key projectKey) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if entry, ok := o.entries[key]; ok {
		entry.stale = true
		delete(o.entries, key)
	}
}
