package emulator_test

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/keboola/keboola-operator/internal/emulator"
)

// sendConcurrently sends count GET requests of the webhook list with each
// token at once and waits for all of them.
func sendConcurrently(t *testing.T, server *emulator.Server, count int, tokens ...string) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, count*len(tokens))
	for _, token := range tokens {
		for range count {
			wg.Go(func() {
				resp, err := send(http.DefaultClient, server, http.MethodGet, "/v2/storage/webhooks", token, "")
				if err == nil && resp.status != http.StatusOK {
					t.Errorf("list status = %d, expected 200; body %s", resp.status, resp.body)
				}
				errs <- err
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("list failed: %v", err)
		}
	}
}

// concurrencyOf returns the statistics of one project.
func concurrencyOf(server *emulator.Server, projectID int64) emulator.ProjectConcurrency {
	for _, c := range server.Concurrency() {
		if c.ProjectID == projectID {
			return c
		}
	}
	return emulator.ProjectConcurrency{ProjectID: projectID}
}

func TestMaxConcurrentPerProjectQueuesRequests(t *testing.T) {
	const latency = 100 * time.Millisecond
	server := startServer(t, emulator.Options{Latency: latency, MaxConcurrentPerProject: 2})

	start := time.Now()
	sendConcurrently(t, server, 6, tokenA)
	elapsed := time.Since(start)

	// Six requests, at most two at a time, each held for the latency,
	// take at least three latencies.
	if elapsed < 3*latency {
		t.Errorf("6 requests took %s, expected at least %s with 2 at a time", elapsed, 3*latency)
	}
	stats := concurrencyOf(server, projectA)
	if stats.PeakInFlight != 2 {
		t.Errorf("PeakInFlight = %d, expected 2", stats.PeakInFlight)
	}
	if stats.Waited < 1 || stats.WaitSeconds <= 0 {
		t.Errorf("Waited = %d, WaitSeconds = %f; expected waits", stats.Waited, stats.WaitSeconds)
	}
	if n := server.Count(http.MethodGet, emulator.EndpointWebhooks); n != 6 {
		t.Errorf("Count() = %d, expected 6", n)
	}
}

func TestMaxConcurrentPerProjectSeparatesProjects(t *testing.T) {
	server := startServer(t, emulator.Options{Latency: 100 * time.Millisecond, MaxConcurrentPerProject: 1})

	sendConcurrently(t, server, 1, tokenA, tokenB)

	for _, projectID := range []int64{projectA, projectB} {
		stats := concurrencyOf(server, projectID)
		if stats.PeakInFlight != 1 {
			t.Errorf("project %d: PeakInFlight = %d, expected 1", projectID, stats.PeakInFlight)
		}
		if stats.Waited != 0 {
			t.Errorf("project %d: Waited = %d, expected 0 because the other project's request holds no slot of it", projectID, stats.Waited)
		}
	}
}

func TestMaxConcurrentPerProjectAbandonedWait(t *testing.T) {
	server := startServer(t, emulator.Options{Latency: 300 * time.Millisecond, MaxConcurrentPerProject: 1})

	first := make(chan response, 1)
	go func() {
		first <- call(t, server, http.MethodPost, "/v2/storage/webhooks", tokenA, createBody)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for concurrencyOf(server, projectA).PeakInFlight == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the first create never started")
		}
		time.Sleep(time.Millisecond)
	}

	// The second create waits for the slot that the first holds, and its
	// client gives up before the slot is free.
	impatient := &http.Client{Timeout: 50 * time.Millisecond}
	if _, err := send(impatient, server, http.MethodPost, "/v2/storage/webhooks", tokenA, createBody); err == nil {
		t.Fatal("the second create succeeded, expected a client timeout while it waits")
	}

	if resp := <-first; resp.status != http.StatusCreated {
		t.Fatalf("first create status = %d, expected 201; body %s", resp.status, resp.body)
	}
	if webhooks := server.Webhooks(projectA); len(webhooks) != 1 {
		t.Errorf("project has %d webhooks, expected 1: an abandoned wait must not create one", len(webhooks))
	}

	// The abandoned request never held the slot, so the next request gets
	// it.
	if resp := call(t, server, http.MethodGet, "/v2/storage/webhooks", tokenA, ""); resp.status != http.StatusOK {
		t.Errorf("list status = %d, expected 200", resp.status)
	}
	if stats := concurrencyOf(server, projectA); stats.PeakInFlight != 1 {
		t.Errorf("PeakInFlight = %d, expected 1", stats.PeakInFlight)
	}
}

func TestMaxConcurrentPerProjectUnknownToken(t *testing.T) {
	server := startServer(t, emulator.Options{MaxConcurrentPerProject: 1})

	resp := call(t, server, http.MethodGet, "/v2/storage/webhooks", "unknown-token", "")
	expectError(t, resp, http.StatusUnauthorized, "storage.tokenInvalid")
	if stats := server.Concurrency(); len(stats) != 0 {
		t.Errorf("Concurrency() = %+v, expected no project for a request with an unknown token", stats)
	}
}

func TestAdminStats(t *testing.T) {
	server := startServer(t, emulator.Options{MaxConcurrentPerProject: 3})
	call(t, server, http.MethodGet, "/v2/storage/tokens/verify", tokenA, "")
	call(t, server, http.MethodGet, "/v2/storage/webhooks", tokenA, "")
	call(t, server, http.MethodGet, "/v2/storage/webhooks", tokenB, "")

	resp := admin(t, server, http.MethodGet, "stats", "")
	if resp.status != http.StatusOK {
		t.Fatalf("stats status = %d, expected 200; body %s", resp.status, resp.body)
	}
	stats := decode[struct {
		Requests []emulator.RequestCount       `json:"requests"`
		Projects []emulator.ProjectConcurrency `json:"projects"`
	}](t, resp)

	expectedCounts := []emulator.RequestCount{
		{Method: http.MethodGet, Endpoint: emulator.EndpointVerify, Count: 1},
		{Method: http.MethodGet, Endpoint: emulator.EndpointWebhooks, Count: 2},
	}
	if len(stats.Requests) != len(expectedCounts) {
		t.Fatalf("requests = %+v, expected %+v", stats.Requests, expectedCounts)
	}
	for i, expected := range expectedCounts {
		if stats.Requests[i] != expected {
			t.Errorf("requests[%d] = %+v, expected %+v", i, stats.Requests[i], expected)
		}
	}
	if len(stats.Projects) != 2 || stats.Projects[0].ProjectID != projectA || stats.Projects[1].ProjectID != projectB {
		t.Errorf("projects = %+v, expected projects %d and %d in order", stats.Projects, projectA, projectB)
	}

	admin(t, server, http.MethodDelete, "requests", "")
	if counts := server.Counts(); len(counts) != 0 {
		t.Errorf("Counts() after a reset = %+v, expected none", counts)
	}
	for _, project := range server.Concurrency() {
		if project.PeakInFlight != 0 || project.Waited != 0 {
			t.Errorf("project %d after a reset = %+v, expected zero statistics", project.ProjectID, project)
		}
	}
}
