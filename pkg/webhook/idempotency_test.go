package webhook

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestMemorySeenSetAddAndRemove(t *testing.T) {
	ctx := context.Background()
	seen := NewMemorySeenSet(10, time.Hour)

	assertAdd(t, seen, "storage.jobFailed:1", true)
	assertAdd(t, seen, "storage.jobFailed:1", false)
	assertAdd(t, seen, "storage.jobSucceeded:1", true)

	if err := seen.Remove(ctx, "storage.jobFailed:1"); err != nil {
		t.Fatalf("Remove() error = %v", err)
	}
	assertAdd(t, seen, "storage.jobFailed:1", true)
	if err := seen.Remove(ctx, "never-added"); err != nil {
		t.Errorf("Remove() of an absent key: error = %v", err)
	}
}

func TestMemorySeenSetExpiresKeys(t *testing.T) {
	now := time.Date(2024, 1, 15, 10, 35, 1, 0, time.UTC)
	seen := NewMemorySeenSet(10, time.Minute)
	seen.now = func() time.Time { return now }

	assertAdd(t, seen, "a", true)
	now = now.Add(30 * time.Second)
	assertAdd(t, seen, "b", true)
	now = now.Add(31 * time.Second)

	assertAdd(t, seen, "a", true)
	assertAdd(t, seen, "b", false)
	if n := seen.Len(); n != 2 {
		t.Errorf("Len() = %d, want 2", n)
	}
}

func TestMemorySeenSetBounded(t *testing.T) {
	seen := NewMemorySeenSet(3, time.Hour)
	for i := range 5 {
		assertAdd(t, seen, fmt.Sprint(i), true)
	}
	if n := seen.Len(); n != 3 {
		t.Errorf("Len() = %d, want 3", n)
	}
	// The oldest keys made room for the newest.
	assertAdd(t, seen, "4", false)
	assertAdd(t, seen, "0", true)
}

func TestMemorySeenSetConcurrentAdd(t *testing.T) {
	seen := NewMemorySeenSet(100, time.Hour)
	var added atomic.Int32
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			if ok, _ := seen.Add(context.Background(), "storage.jobFailed:1"); ok {
				added.Add(1)
			}
		})
	}
	wg.Wait()
	if n := added.Load(); n != 1 {
		t.Errorf("%d concurrent Add calls returned true, want 1", n)
	}
}

func TestDeduplicator(t *testing.T) {
	secret := []byte("whsec-current")
	var processed atomic.Int32
	var fail atomic.Bool
	var duplicates atomic.Int32
	dedupe := &Deduplicator{
		Seen:        NewMemorySeenSet(100, time.Hour),
		OnDuplicate: func(*http.Request, *Delivery) { duplicates.Add(1) },
	}
	handler := Handler(StaticSecrets{secret}, dedupe.Wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		processed.Add(1)
		if fail.Load() {
			http.Error(w, "database unavailable", http.StatusInternalServerError)
		}
	})))
	deliver := func(body string) int {
		t.Helper()
		req := httptest.NewRequest(http.MethodPost, "/webhook", strings.NewReader(body))
		req.Header.Set(SignatureHeader, referenceSignature(secret, []byte(body)))
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		return rec.Code
	}

	if status := deliver(deliveryBody); status != http.StatusOK {
		t.Fatalf("first delivery: status = %d, want 200", status)
	}
	if status := deliver(deliveryBody); status != http.StatusOK {
		t.Errorf("duplicate delivery: status = %d, want 200", status)
	}
	if n := processed.Load(); n != 1 {
		t.Errorf("processed %d times after a duplicate, want 1", n)
	}
	if n := duplicates.Load(); n != 1 {
		t.Errorf("OnDuplicate called %d times, want 1", n)
	}

	failing := `{"event":"storage.jobFailed","data":{"id":"8"}}`
	fail.Store(true)
	if status := deliver(failing); status != http.StatusInternalServerError {
		t.Errorf("failed processing: status = %d, want 500", status)
	}
	fail.Store(false)
	if status := deliver(failing); status != http.StatusOK {
		t.Errorf("retry after a failure: status = %d, want 200", status)
	}
	if n := processed.Load(); n != 3 {
		t.Errorf("processed %d times, want 3: the retry of a failed delivery must be processed", n)
	}

	withoutID := `{"event":"storage.jobFailed","data":{}}`
	deliver(withoutID)
	deliver(withoutID)
	if n := processed.Load(); n != 5 {
		t.Errorf("processed %d times, want 5: deliveries without data.id are always passed on", n)
	}
}

func TestDeduplicatorRemovesKeyAfterPanic(t *testing.T) {
	secret := []byte("whsec-current")
	seen := NewMemorySeenSet(100, time.Hour)
	handler := Handler(StaticSecrets{secret}, (&Deduplicator{Seen: seen}).Wrap(
		http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("handler bug") })))

	req := httptest.NewRequest(http.MethodPost, "/webhook", strings.NewReader(deliveryBody))
	req.Header.Set(SignatureHeader, referenceSignature(secret, []byte(deliveryBody)))
	func() {
		defer func() { _ = recover() }()
		handler.ServeHTTP(httptest.NewRecorder(), req)
	}()

	if n := seen.Len(); n != 0 {
		t.Errorf("Len() after a panic = %d, want 0", n)
	}
}

// failingSeenSet is a SeenSet whose store is unavailable.
type failingSeenSet struct{}

func (failingSeenSet) Add(context.Context, string) (bool, error) {
	return false, errors.New("connection refused")
}

func (failingSeenSet) Remove(context.Context, string) error { return nil }

func TestDeduplicatorStoreError(t *testing.T) {
	secret := []byte("whsec-current")
	var reported error
	dedupe := &Deduplicator{Seen: failingSeenSet{}, OnError: func(_ *http.Request, err error) { reported = err }}
	handler := Handler(StaticSecrets{secret}, dedupe.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		t.Error("the next handler was called although the store failed")
	})))

	req := httptest.NewRequest(http.MethodPost, "/webhook", strings.NewReader(deliveryBody))
	req.Header.Set(SignatureHeader, referenceSignature(secret, []byte(deliveryBody)))
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, req)

	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("status = %d, want 503", rec.Code)
	}
	if reported == nil {
		t.Error("OnError was not called")
	}
}

func TestDeduplicatorOutsideMiddleware(t *testing.T) {
	handler := (&Deduplicator{Seen: NewMemorySeenSet(1, time.Hour)}).Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		t.Error("the next handler was called for an unverified request")
	}))
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/webhook", strings.NewReader(deliveryBody)))
	if rec.Code != http.StatusInternalServerError {
		t.Errorf("status = %d, want 500", rec.Code)
	}
}

func assertAdd(t *testing.T, seen *MemorySeenSet, key string, want bool) {
	t.Helper()
	added, err := seen.Add(context.Background(), key)
	if err != nil {
		t.Fatalf("Add(%q) error = %v", key, err)
	}
	if added != want {
		t.Errorf("Add(%q) = %v, want %v", key, added, want)
	}
}
