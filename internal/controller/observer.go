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

// listObserver shares the lists of a project's webhooks, or of its
// Notification service subscriptions, among the KeboolaWebhooks of each
// project, so that a periodic resync of many webhooks costs one list request
// per project and resync period instead of one request per webhook.
//
// A list is reused while it is younger than maxAge. Concurrent callers for
// one project wait for a single request. Errors are not cached. A caller
// that changes a project's webhooks calls invalidate afterwards, so that no
// later caller gets a list that predates the change.
type listObserver[T any] struct {
	maxAge time.Duration
	now    func() time.Time

	mu      sync.Mutex
	entries map[projectKey]*observation[T]
}

// webhookObserver is the listObserver of Storage API webhooks.
type webhookObserver = listObserver[keboola.Webhook]

// subscriptionObserver is the listObserver of Notification service
// subscriptions.
type subscriptionObserver = listObserver[keboola.Subscription]

// observation is one list of a project, or the request that fetches it.
type observation[T any] struct {
	// done is closed when the request has finished and the fields below
	// are set.
	done      chan struct{}
	items     []T
	fetchedAt time.Time
	err       error
	// stale is set by invalidate while the request is in flight, so that
	// its result is given to the callers that wait for it but not kept.
	stale bool
}

// newListObserver returns an observer that reuses a list for maxAge.
func newListObserver[T any](maxAge time.Duration) *listObserver[T] {
	return &listObserver[T]{
		maxAge:  maxAge,
		now:     time.Now,
		entries: make(map[projectKey]*observation[T]),
	}
}

// list returns the list of the project key, with the time it was fetched.
// It calls fetch only when no list younger than maxAge is cached and no
// request for the project is in flight.
func (o *listObserver[T]) list(ctx context.Context, key projectKey, fetch func(context.Context) ([]T, error)) ([]T, time.Time, error) {
	o.mu.Lock()
	entry, ok := o.entries[key]
	if ok && o.isFresh(entry) {
		o.mu.Unlock()
		return o.wait(ctx, entry)
	}
	entry = &observation[T]{done: make(chan struct{})}
	o.entries[key] = entry
	o.mu.Unlock()

	// The request runs with the context of the caller that started it. A
	// caller that waits and gets its context's error retries on its next
	// reconcile.
	items, err := fetch(ctx)

	o.mu.Lock()
	entry.items = items
	entry.fetchedAt = o.now()
	entry.err = err
	if (err != nil || entry.stale) && o.entries[key] == entry {
		delete(o.entries, key)
	}
	close(entry.done)
	o.mu.Unlock()

	return slices.Clone(items), entry.fetchedAt, err
}

// cached returns the list of the project key when one younger than maxAge
// is at hand, without sending a request or waiting for one.
func (o *listObserver[T]) cached(key projectKey) ([]T, bool) {
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
	return slices.Clone(entry.items), true
}

// isFresh reports whether entry is in flight or younger than maxAge. The
// caller holds o.mu.
func (o *listObserver[T]) isFresh(entry *observation[T]) bool {
	select {
	case <-entry.done:
		return o.now().Sub(entry.fetchedAt) < o.maxAge
	default:
		return true
	}
}

// wait returns the result of entry once its request has finished.
func (o *listObserver[T]) wait(ctx context.Context, entry *observation[T]) ([]T, time.Time, error) {
	select {
	case <-entry.done:
		return slices.Clone(entry.items), entry.fetchedAt, entry.err
	case <-ctx.Done():
		return nil, time.Time{}, ctx.Err()
	}
}

// invalidate drops the cached list of the project key. A request in flight
// still returns its result to the callers waiting for it, but the result is
// not kept.
func (o *listObserver[T]) invalidate(key projectKey) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if entry, ok := o.entries[key]; ok {
		entry.stale = true
		delete(o.entries, key)
	}
}
