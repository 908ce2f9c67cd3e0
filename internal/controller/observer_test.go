package controller

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keboola/keboola-operator/internal/keboola"
)

// listingAPI is a keboola.API whose ListWebhooks counts its calls and, when
// release is set, blocks until release is closed. Other methods panic.
type listingAPI struct {
	keboola.API
	calls    atomic.Int32
	started  chan struct{}
	release  chan struct{}
	err      error
	webhooks []keboola.Webhook
}

func (a *listingAPI) ListWebhooks(ctx context.Context) ([]keboola.Webhook, error) {
	a.calls.Add(1)
	if a.started != nil {
		a.started <- struct{}{}
	}
	if a.release != nil {
		<-a.release
	}
	return a.webhooks, a.err
}

// fakeClock is a settable time source for the observer.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newTestObserver() (*webhookObserver, *fakeClock) {
	const maxAge = time.Minute
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	o := newListObserver[keboola.Webhook](maxAge)
	o.now = clock.now
	return o, clock
}

var (
	observerKeyA = projectKey{stackURL: "https://connection.keboola.com", projectID: 1}
	observerKeyB = projectKey{stackURL: "https://connection.keboola.com", projectID: 2}
)

func TestObserverReusesListWithinMaxAge(t *testing.T) {
	o, clock := newTestObserver()
	api := &listingAPI{webhooks: []keboola.Webhook{{ID: "1", Name: "a"}}}
	ctx := context.Background()

	first, fetchedAt, err := o.list(ctx, observerKeyA, api.ListWebhooks)
	if err != nil || len(first) != 1 {
		t.Fatalf("first list = %v, %v; want one webhook", first, err)
	}
	clock.advance(59 * time.Second)
	second, secondFetchedAt, err := o.list(ctx, observerKeyA, api.ListWebhooks)
	if err != nil || len(second) != 1 {
		t.Fatalf("second list = %v, %v; want one webhook", second, err)
	}
	if got := api.calls.Load(); got != 1 {
		t.Errorf("ListWebhooks calls = %d, want 1", got)
	}
	if !secondFetchedAt.Equal(fetchedAt) {
		t.Errorf("fetch time of the reused list = %v, want %v", secondFetchedAt, fetchedAt)
	}

	clock.advance(time.Second)
	if _, _, err := o.list(ctx, observerKeyA, api.ListWebhooks); err != nil {
		t.Fatal(err)
	}
	if got := api.calls.Load(); got != 2 {
		t.Errorf("ListWebhooks calls after maxAge = %d, want 2", got)
	}
}

func TestObserverKeepsProjectsApart(t *testing.T) {
	o, _ := newTestObserver()
	api := &listingAPI{}
	ctx := context.Background()
	for _, key := range []projectKey{observerKeyA, observerKeyB, observerKeyA, observerKeyB} {
		if _, _, err := o.list(ctx, key, api.ListWebhooks); err != nil {
			t.Fatal(err)
		}
	}
	if got := api.calls.Load(); got != 2 {
		t.Errorf("ListWebhooks calls = %d, want one per project (2)", got)
	}
}

func TestObserverSingleFlight(t *testing.T) {
	o, _ := newTestObserver()
	api := &listingAPI{started: make(chan struct{}, 10), release: make(chan struct{}), webhooks: []keboola.Webhook{{ID: "7"}}}
	ctx := context.Background()

	const callers = 8
	var wg sync.WaitGroup
	results := make(chan int, callers)
	wg.Add(1)
	go func() {
		defer wg.Done()
		webhooks, _, _ := o.list(ctx, observerKeyA, api.ListWebhooks)
		results <- len(webhooks)
	}()
	<-api.started // the first caller's request is in flight
	for range callers - 1 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			webhooks, _, _ := o.list(ctx, observerKeyA, api.ListWebhooks)
			results <- len(webhooks)
		}()
	}
	// Give the waiting callers time to find the request in flight.
	time.Sleep(50 * time.Millisecond)
	close(api.release)
	wg.Wait()
	close(results)

	if got := api.calls.Load(); got != 1 {
		t.Errorf("ListWebhooks calls = %d, want 1", got)
	}
	for n := range results {
		if n != 1 {
			t.Errorf("a caller got %d webhooks, want 1", n)
		}
	}
}

func TestObserverDoesNotCacheErrors(t *testing.T) {
	o, _ := newTestObserver()
	api := &listingAPI{err: errors.New("connection refused")}
	ctx := context.Background()

	if _, _, err := o.list(ctx, observerKeyA, api.ListWebhooks); err == nil {
		t.Fatal("list returned no error, want the API's error")
	}
	api.err = nil
	if _, _, err := o.list(ctx, observerKeyA, api.ListWebhooks); err != nil {
		t.Fatalf("second list failed: %v", err)
	}
	if got := api.calls.Load(); got != 2 {
		t.Errorf("ListWebhooks calls = %d, want 2", got)
	}
}

func TestObserverInvalidate(t *testing.T) {
	o, _ := newTestObserver()
	api := &listingAPI{}
	ctx := context.Background()

	if _, _, err := o.list(ctx, observerKeyA, api.ListWebhooks); err != nil {
		t.Fatal(err)
	}
	if _, _, err := o.list(ctx, observerKeyB, api.ListWebhooks); err != nil {
		t.Fatal(err)
	}
	o.invalidate(observerKeyA)
	if _, _, err := o.list(ctx, observerKeyA, api.ListWebhooks); err != nil {
		t.Fatal(err)
	}
	if _, _, err := o.list(ctx, observerKeyB, api.ListWebhooks); err != nil {
		t.Fatal(err)
	}
	if got := api.calls.Load(); got != 3 {
		t.Errorf("ListWebhooks calls = %d, want 3: project A twice, project B once", got)
	}
}

func TestObserverInvalidateDuringFetch(t *testing.T) {
	o, _ := newTestObserver()
	api := &listingAPI{started: make(chan struct{}, 10), release: make(chan struct{})}
	ctx := context.Background()

	done := make(chan error)
	go func() {
		_, _, err := o.list(ctx, observerKeyA, api.ListWebhooks)
		done <- err
	}()
	<-api.started
	// A write lands while the list is in flight, so its result may predate
	// the write and must not be kept.
	o.invalidate(observerKeyA)
	close(api.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	api.release = nil
	api.started = nil
	if _, _, err := o.list(ctx, observerKeyA, api.ListWebhooks); err != nil {
		t.Fatal(err)
	}
	if got := api.calls.Load(); got != 2 {
		t.Errorf("ListWebhooks calls = %d, want 2: the list fetched during the write is not kept", got)
	}
}

func TestObserverWaiterHonoursContext(t *testing.T) {
	o, _ := newTestObserver()
	api := &listingAPI{started: make(chan struct{}, 10), release: make(chan struct{})}
	defer close(api.release)

	go func() { _, _, _ = o.list(context.Background(), observerKeyA, api.ListWebhooks) }()
	<-api.started

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := o.list(ctx, observerKeyA, api.ListWebhooks); !errors.Is(err, context.Canceled) {
		t.Errorf("waiting list with a cancelled context returned %v, want context.Canceled", err)
	}
}

func TestObserverCached(t *testing.T) {
	o, clock := newTestObserver()
	api := &listingAPI{webhooks: []keboola.Webhook{{ID: "3"}}}
	ctx := context.Background()

	if _, ok := o.cached(observerKeyA); ok {
		t.Fatal("cached() found a list before any was fetched")
	}
	if _, _, err := o.list(ctx, observerKeyA, api.ListWebhooks); err != nil {
		t.Fatal(err)
	}
	webhooks, ok := o.cached(observerKeyA)
	if !ok || len(webhooks) != 1 {
		t.Fatalf("cached() = %v, %v; want the fetched list", webhooks, ok)
	}
	clock.advance(time.Minute)
	if _, ok := o.cached(observerKeyA); ok {
		t.Error("cached() returned a list older than maxAge")
	}
	if got := api.calls.Load(); got != 1 {
		t.Errorf("ListWebhooks calls = %d, want 1", got)
	}
}
