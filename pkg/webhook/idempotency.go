package webhook

import (
	"container/list"
	"context"
	"net/http"
	"sync"
	"time"
)

// SeenSet records the keys of the events a receiver has taken on, so that
// a retried or duplicated delivery of the same event is processed once.
// Keboola may deliver an event late, twice or out of order. MemorySeenSet
// keeps the keys in memory. A receiver with several replicas implements
// SeenSet on a shared store, for example with Redis's SET key value NX EX
// ttl for Add and DEL for Remove.
type SeenSet interface {
	// Add records key and reports whether it was absent. Checking and
	// recording must be one atomic step, so that of two concurrent calls
	// with one key only one returns true.
	Add(ctx context.Context, key string) (added bool, err error)
	// Remove deletes key, so that the next delivery of the event is
	// processed again.
	Remove(ctx context.Context, key string) error
}

// MemorySeenSet is a SeenSet in memory with a bounded number of keys, each
// kept for a fixed time to live. When it is full, Add drops the oldest key
// to make room, so a duplicate that arrives after more than maxKeys other
// events is processed again. It is safe for concurrent use.
type MemorySeenSet struct {
	ttl     time.Duration
	maxKeys int
	now     func() time.Time

	mu sync.Mutex
	// order holds the keys from the oldest to the newest Add. All keys have
	// the same time to live, so it is also the order of expiry.
	order *list.List
	keys  map[string]*list.Element
}

// seenEntry is an element of MemorySeenSet.order.
type seenEntry struct {
	key     string
	expires time.Time
}

// NewMemorySeenSet returns a MemorySeenSet that keeps at most maxKeys keys,
// each for ttl. Keboola retries a failed delivery for minutes, not days, so
// a ttl of a day and room for the events of a day are a generous start.
// maxKeys below 1 is treated as 1, and a ttl of zero or less keeps keys
// until they are dropped to make room.
func NewMemorySeenSet(maxKeys int, ttl time.Duration) *MemorySeenSet {
	return &MemorySeenSet{
		ttl:     ttl,
		maxKeys: max(1, maxKeys),
		now:     time.Now,
		order:   list.New(),
		keys:    make(map[string]*list.Element),
	}
}

// Add records key and reports whether it was absent or had expired.
func (s *MemorySeenSet) Add(_ context.Context, key string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.dropExpired(now)
	if _, ok := s.keys[key]; ok {
		return false, nil
	}
	for s.order.Len() >= s.maxKeys {
		s.remove(s.order.Front())
	}
	var expires time.Time
	if s.ttl > 0 {
		expires = now.Add(s.ttl)
	}
	s.keys[key] = s.order.PushBack(seenEntry{key: key, expires: expires})
	return true, nil
}

// Remove deletes key.
func (s *MemorySeenSet) Remove(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if element, ok := s.keys[key]; ok {
		s.remove(element)
	}
	return nil
}

// Len returns the number of keys, expired ones included until the next
// Add drops them.
func (s *MemorySeenSet) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.order.Len()
}

// dropExpired removes the keys whose time to live has passed. The caller
// holds s.mu.
func (s *MemorySeenSet) dropExpired(now time.Time) {
	if s.ttl <= 0 {
		return
	}
	for front := s.order.Front(); front != nil; front = s.order.Front() {
		if now.Before(front.Value.(seenEntry).expires) {
			return
		}
		s.remove(front)
	}
}

// remove deletes one element. The caller holds s.mu.
func (s *MemorySeenSet) remove(element *list.Element) {
	delete(s.keys, element.Value.(seenEntry).key)
	s.order.Remove(element)
}

// Deduplicator passes each event to the next handler once. It must run
// inside a Middleware, which puts the verified Delivery into the request's
// context. It responds with 200 to a delivery of an event it has already
// taken on, without calling the next handler, so that Keboola stops
// retrying. When the next handler responds with a status other than 2xx, or
// panics, the event's key is removed again, so that Keboola's retry is
// processed.
//
// A duplicate that arrives while the first delivery is still processed also
// gets 200. If the first one then fails, Keboola retries it, because each
// delivery is retried on its own. A delivery without data.id is always
// passed on, because there is no key to recognise it by.
type Deduplicator struct {
	// Seen stores the keys of the events taken on. Event.Key is the key.
	Seen SeenSet
	// OnDuplicate, when set, is called for each delivery that is skipped as
	// a duplicate, for example to log it.
	OnDuplicate func(r *http.Request, d *Delivery)
	// OnError, when set, is called when Seen returns an error. The request
	// then gets 503, so that Keboola retries it.
	OnError func(r *http.Request, err error)
}

// Wrap returns a handler that passes each event to next once.
func (d *Deduplicator) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		delivery, ok := DeliveryFromContext(r.Context())
		if !ok {
			// A programming error: the Deduplicator runs outside a
			// Middleware, so the request was never verified.
			http.Error(w, "delivery not verified", http.StatusInternalServerError)
			return
		}
		key := delivery.Event.Key()
		if key == "" {
			next.ServeHTTP(w, r)
			return
		}

		added, err := d.Seen.Add(r.Context(), key)
		if err != nil {
			d.reportError(r, err)
			http.Error(w, http.StatusText(http.StatusServiceUnavailable), http.StatusServiceUnavailable)
			return
		}
		if !added {
			if d.OnDuplicate != nil {
				d.OnDuplicate(r, delivery)
			}
			w.WriteHeader(http.StatusOK)
			return
		}

		recorder := &statusRecorder{ResponseWriter: w}
		succeeded := false
		defer func() {
			if succeeded {
				return
			}
			// The context of the request may be cancelled already, and the
			// key must go anyway.
			if err := d.Seen.Remove(context.WithoutCancel(r.Context()), key); err != nil {
				d.reportError(r, err)
			}
		}()
		next.ServeHTTP(recorder, r)
		succeeded = recorder.status() >= 200 && recorder.status() < 300
	})
}

func (d *Deduplicator) reportError(r *http.Request, err error) {
	if d.OnError != nil {
		d.OnError(r, err)
	}
}

// statusRecorder records the status that a handler responds with.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	// Informational 1xx responses precede the final status.
	if s.code == 0 && code >= http.StatusOK {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter {
	return s.ResponseWriter
}

// status returns the recorded status, 200 when the handler wrote nothing.
func (s *statusRecorder) status() int {
	if s.code == 0 {
		return http.StatusOK
	}
	return s.code
}
