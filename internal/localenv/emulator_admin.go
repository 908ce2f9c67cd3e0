package localenv

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// StartEmulatorWithArgs starts the Storage API emulator on address, such
// as "127.0.0.1:8765", with extra command-line flags such as
// "--latency=20ms", and waits until it is healthy. Unlike StartEmulator it
// adds no token: add projects and tokens with EmulatorClient.AddProject and
// AddToken. The process logs to LogPath("emulator").
func (e *Env) StartEmulatorWithArgs(ctx context.Context, bins *Binaries, address string, extraArgs ...string) (*Process, *EmulatorClient, error) {
	process, err := e.Start(ProcessSpec{
		Name: "emulator",
		Path: bins.Emulator,
		Args: append([]string{"--listen=" + address}, extraArgs...),
	})
	if err != nil {
		return nil, nil, err
	}
	baseURL := "http://" + address
	if err := WaitHTTP(ctx, baseURL+"/_emulator/healthz", startTimeout, process); err != nil {
		return nil, nil, err
	}
	client, err := NewEmulatorClient(baseURL)
	if err != nil {
		return nil, nil, err
	}
	return process, client, nil
}

// PID returns the process id.
func (p *Process) PID() int {
	return p.cmd.Process.Pid
}

// AddProject adds a project to the emulator, or replaces the one with the
// same id.
func (c *EmulatorClient) AddProject(ctx context.Context, id int64, name string) error {
	body := map[string]any{"id": id, "name": name}
	var ignored map[string]any
	return c.call(ctx, http.MethodPost, "/_emulator/projects", body, &ignored)
}

// AddToken adds token, a credential of the project projectID that may
// manage webhooks, under the token id tokenID. The token travels only in the
// request body, never in a URL.
func (c *EmulatorClient) AddToken(ctx context.Context, projectID int64, tokenID, token string) error {
	body := map[string]any{"token": token, "id": tokenID, "projectID": projectID, "description": "token " + tokenID}
	var ignored map[string]any
	return c.call(ctx, http.MethodPost, "/_emulator/tokens", body, &ignored)
}

// EmulatorStats are the request counters and the concurrency statistics of
// the emulator since it started or since ResetRequests.
type EmulatorStats struct {
	Requests []EmulatorRequestCount       `json:"requests"`
	Projects []EmulatorProjectConcurrency `json:"projects"`
}

// EmulatorRequestCount is the number of Storage API requests with one
// method and endpoint, such as GET /v2/storage/webhooks.
type EmulatorRequestCount struct {
	Method   string `json:"method"`
	Endpoint string `json:"endpoint"`
	Count    int    `json:"count"`
}

// EmulatorProjectConcurrency describes how many requests of one project the
// emulator handled at once.
type EmulatorProjectConcurrency struct {
	ProjectID    int64   `json:"projectId"`
	PeakInFlight int     `json:"peakInFlight"`
	Waited       int     `json:"waited"`
	WaitSeconds  float64 `json:"waitSeconds"`
}

// Count returns the number of requests with method and endpoint. An empty
// method or endpoint matches any.
func (s *EmulatorStats) Count(method, endpoint string) int {
	total := 0
	for _, r := range s.Requests {
		if (method == "" || r.Method == method) && (endpoint == "" || r.Endpoint == endpoint) {
			total += r.Count
		}
	}
	return total
}

// Stats returns the emulator's request counters and concurrency
// statistics.
func (c *EmulatorClient) Stats(ctx context.Context) (*EmulatorStats, error) {
	var stats EmulatorStats
	if err := c.call(ctx, http.MethodGet, "/_emulator/stats", nil, &stats); err != nil {
		return nil, err
	}
	return &stats, nil
}

// ResetRequests empties the emulator's request log and sets its counters
// and concurrency statistics to zero.
func (c *EmulatorClient) ResetRequests(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, c.baseURL+"/_emulator/requests", nil)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("emulator request DELETE /_emulator/requests failed: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("emulator request DELETE /_emulator/requests returned status %d: %s", resp.StatusCode, strings.TrimSpace(string(data)))
	}
	return nil
}
