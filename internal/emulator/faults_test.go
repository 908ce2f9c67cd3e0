package emulator_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keboola/keboola-operator/internal/emulator"
)

const createBody = `{"name":"jobs","url":"https://hooks.example.com/a","events":["storage.jobFailed"]}`

func TestFaultStatusWithRetryAfter(t *testing.T) {
	server := startServer(t, emulator.Options{})
	server.InjectFault(emulator.Fault{Method: http.MethodGet, Endpoint: emulator.EndpointWebhooks, Status: 429, RetryAfter: 1500 * time.Millisecond})

	resp := call(t, server, http.MethodGet, "/v2/storage/webhooks", tokenA, "")
	expectError(t, resp, http.StatusTooManyRequests, "storage.tooManyRequests")
	if retryAfter := resp.header.Get("Retry-After"); retryAfter != "2" {
		t.Errorf("Retry-After = %q, expected 2 (1.5s rounded up)", retryAfter)
	}

	requests := server.Requests()
	if len(requests) != 1 || requests[0].Status != 429 || requests[0].Fault != "1:status" || requests[0].TokenID != tokenIDA {
		t.Errorf("recorded %+v, expected one 429 with fault 1:status", requests)
	}
}

func TestFaultStatusCodes(t *testing.T) {
	cases := map[int]string{
		400: "storage.badRequest",
		401: "storage.tokenInvalid",
		403: "storage.accessDenied",
		404: "storage.notFound",
		409: "storage.conflict",
		422: "storage.webhooks.validation",
		423: "storage.locked",
		500: "storage.internalError",
		502: "storage.badGateway",
		504: "storage.gatewayTimeout",
	}
	server := startServer(t, emulator.Options{})
	for status, code := range cases {
		id := server.InjectFault(emulator.Fault{Status: status})
		expectError(t, call(t, server, http.MethodGet, "/v2/storage/tokens/verify", tokenA, ""), status, code)
		server.RemoveFault(id)
	}
}

func TestFaultMaintenance(t *testing.T) {
	server := startServer(t, emulator.Options{})
	server.InjectFault(emulator.Fault{Status: 503, RetryAfter: 2 * time.Minute})

	resp := call(t, server, http.MethodGet, "/v2/storage/tokens/verify", tokenA, "")
	if resp.status != http.StatusServiceUnavailable {
		t.Fatalf("status = %d, expected 503", resp.status)
	}
	if retryAfter := resp.header.Get("Retry-After"); retryAfter != "120" {
		t.Errorf("Retry-After = %q, expected 120", retryAfter)
	}
	var body struct {
		Status           string `json:"status"`
		Reason           string `json:"reason"`
		EstimatedEndTime string `json:"estimatedEndTime"`
	}
	if err := json.Unmarshal(resp.body, &body); err != nil {
		t.Fatalf("failed to decode %s: %v", resp.body, err)
	}
	if body.Status != "maintenance" || body.Reason == "" {
		t.Errorf("body = %s, expected status maintenance and a reason", resp.body)
	}
	end, err := time.Parse(emulator.TimeFormat, body.EstimatedEndTime)
	if err != nil {
		t.Fatalf("estimatedEndTime %q is not in the API's format: %v", body.EstimatedEndTime, err)
	}
	if until := time.Until(end); until < 100*time.Second || until > 121*time.Second {
		t.Errorf("estimatedEndTime is %s away, expected about 2m", until)
	}
}

func TestFaultHTMLBody(t *testing.T) {
	server := startServer(t, emulator.Options{})
	page := "<html><body><h1>502 Bad Gateway</h1></body></html>"
	server.InjectFault(emulator.Fault{Status: 502, Body: page})

	resp := call(t, server, http.MethodGet, "/v2/storage/webhooks", tokenA, "")
	if resp.status != http.StatusBadGateway {
		t.Errorf("status = %d, expected 502", resp.status)
	}
	if string(resp.body) != page {
		t.Errorf("body = %q, expected the HTML page", resp.body)
	}
	if contentType := resp.header.Get("Content-Type"); !strings.HasPrefix(contentType, "text/html") {
		t.Errorf("Content-Type = %q, expected text/html", contentType)
	}
}

func TestFaultMalformedJSONWithoutStatus(t *testing.T) {
	server := startServer(t, emulator.Options{})
	server.InjectFault(emulator.Fault{Body: `{"id": "1", "owner": `})

	resp := call(t, server, http.MethodGet, "/v2/storage/tokens/verify", tokenA, "")
	if resp.status != http.StatusOK || string(resp.body) != `{"id": "1", "owner": ` {
		t.Errorf("got %d %q, expected 200 with the malformed body", resp.status, resp.body)
	}
	if contentType := resp.header.Get("Content-Type"); contentType != "application/json" {
		t.Errorf("Content-Type = %q, expected application/json", contentType)
	}
}

func TestFaultDrop(t *testing.T) {
	server := startServer(t, emulator.Options{})
	server.InjectFault(emulator.Fault{Method: http.MethodPost, Endpoint: emulator.EndpointWebhooks, Drop: true, Times: 1})

	if _, err := send(freshClient(), server, http.MethodPost, "/v2/storage/webhooks", tokenA, createBody); err == nil {
		t.Fatalf("create succeeded, expected a transport error")
	}
	if webhooks := server.Webhooks(projectA); len(webhooks) != 0 {
		t.Errorf("a dropped create stored %d webhooks, expected none", len(webhooks))
	}
	requests := server.Requests()
	if len(requests) != 1 || requests[0].Status != 0 || requests[0].Fault != "1:drop" {
		t.Errorf("recorded %+v, expected status 0 and fault 1:drop", requests)
	}

	createWebhook(t, server, tokenA, "jobs", "https://hooks.example.com/a", jobFailed)
}

func TestFaultDropOnGet(t *testing.T) {
	server := startServer(t, emulator.Options{})
	server.InjectFault(emulator.Fault{Method: http.MethodGet, Drop: true})

	if _, err := send(freshClient(), server, http.MethodGet, "/v2/storage/tokens/verify", tokenA, ""); err == nil {
		t.Errorf("GET succeeded, expected a transport error")
	}
	// A reused connection makes http.Transport replay the GET once, which
	// meets the fault again because it has no Times.
	call(t, server, http.MethodPost, "/v2/storage/webhooks", tokenA, createBody)
	if _, err := send(http.DefaultClient, server, http.MethodGet, "/v2/storage/webhooks", tokenA, ""); err == nil {
		t.Errorf("GET on a kept-alive connection succeeded, expected a transport error")
	}
}

func TestFaultLoseResponseOnCreate(t *testing.T) {
	server := startServer(t, emulator.Options{})
	server.InjectFault(emulator.Fault{Method: http.MethodPost, Endpoint: emulator.EndpointWebhooks, LoseResponse: true, Times: 1})

	if _, err := send(http.DefaultClient, server, http.MethodPost, "/v2/storage/webhooks", tokenA, createBody); err == nil {
		t.Fatalf("create succeeded, expected a transport error")
	}
	webhooks := server.Webhooks(projectA)
	if len(webhooks) != 1 || webhooks[0].Name != "jobs" {
		t.Fatalf("stored %+v, expected the created webhook", webhooks)
	}
	requests := server.Requests()
	if len(requests) != 1 || requests[0].Status != http.StatusCreated || requests[0].Fault != "1:lose-response" {
		t.Errorf("recorded %+v, expected status 201 and fault 1:lose-response", requests)
	}

	list := decode[[]webhook](t, call(t, server, http.MethodGet, "/v2/storage/webhooks", tokenA, ""))
	if len(list) != 1 || list[0].ID != webhooks[0].ID {
		t.Errorf("list after the lost create = %+v, expected the webhook", list)
	}
}

func TestFaultLatency(t *testing.T) {
	server := startServer(t, emulator.Options{})
	server.InjectFault(emulator.Fault{Endpoint: emulator.EndpointVerify, Latency: 100 * time.Millisecond})

	started := time.Now()
	resp := call(t, server, http.MethodGet, "/v2/storage/tokens/verify", tokenA, "")
	if elapsed := time.Since(started); elapsed < 100*time.Millisecond {
		t.Errorf("request took %s, expected at least 100ms", elapsed)
	}
	if resp.status != http.StatusOK {
		t.Errorf("status = %d, expected 200 after the delay", resp.status)
	}
	if fault := server.Requests()[0].Fault; fault != "1:latency" {
		t.Errorf("fault = %q, expected 1:latency", fault)
	}

	started = time.Now()
	call(t, server, http.MethodGet, "/v2/storage/webhooks", tokenA, "")
	if elapsed := time.Since(started); elapsed >= 100*time.Millisecond {
		t.Errorf("request to another endpoint took %s, expected no delay", elapsed)
	}
}

func TestFaultTimes(t *testing.T) {
	server := startServer(t, emulator.Options{})
	server.InjectFault(emulator.Fault{Status: 500, Times: 2})

	for i, expected := range []int{500, 500, 200, 200} {
		if resp := call(t, server, http.MethodGet, "/v2/storage/tokens/verify", tokenA, ""); resp.status != expected {
			t.Errorf("request %d: status = %d, expected %d", i+1, resp.status, expected)
		}
	}
}

func TestFaultProbability(t *testing.T) {
	server := startServer(t, emulator.Options{})
	server.InjectFault(emulator.Fault{Status: 500, Probability: 0.5})

	const requests = 200
	failed := 0
	for range requests {
		if call(t, server, http.MethodGet, "/v2/storage/tokens/verify", tokenA, "").status == 500 {
			failed++
		}
	}
	// The chance of falling outside 50..150 is about 1e-12.
	if failed < 50 || failed > 150 {
		t.Errorf("%d of %d requests failed, expected about half", failed, requests)
	}
}

func TestFaultProbabilitySparedRequestsKeepTimes(t *testing.T) {
	server := startServer(t, emulator.Options{})
	server.InjectFault(emulator.Fault{Status: 500, Probability: 0.3, Times: 3})

	failed := 0
	for range 300 {
		if call(t, server, http.MethodGet, "/v2/storage/tokens/verify", tokenA, "").status == 500 {
			failed++
		}
	}
	if failed != 3 {
		t.Errorf("%d requests failed, expected exactly Times = 3", failed)
	}
}

func TestFaultMatching(t *testing.T) {
	server := startServer(t, emulator.Options{})
	server.InjectFault(emulator.Fault{Method: http.MethodPut, Endpoint: emulator.EndpointWebhook, Status: 409})
	created := createWebhook(t, server, tokenA, "jobs", "https://hooks.example.com/a", jobFailed)
	path := "/v2/storage/webhooks/" + created.ID

	if resp := call(t, server, http.MethodGet, path, tokenA, ""); resp.status != http.StatusOK {
		t.Errorf("GET status = %d, expected 200", resp.status)
	}
	expectError(t, call(t, server, http.MethodPut, path, tokenA, `{"name":"x"}`), http.StatusConflict, "storage.conflict")
	if resp := call(t, server, http.MethodPut, "/v2/storage/webhooks", tokenA, `{"name":"x"}`); resp.status != http.StatusMethodNotAllowed {
		t.Errorf("PUT on the collection: status = %d, expected 405", resp.status)
	}
	if resp := call(t, server, http.MethodGet, "/_emulator/healthz", "", ""); resp.status != http.StatusOK {
		t.Errorf("admin status = %d, expected faults not to apply", resp.status)
	}
}

func TestFaultFirstMatchWins(t *testing.T) {
	server := startServer(t, emulator.Options{})
	server.InjectFault(emulator.Fault{Status: 500, Times: 1})
	server.InjectFault(emulator.Fault{Status: 502})

	statuses := []int{}
	for range 3 {
		statuses = append(statuses, call(t, server, http.MethodGet, "/v2/storage/tokens/verify", tokenA, "").status)
	}
	if statuses[0] != 500 || statuses[1] != 502 || statuses[2] != 502 {
		t.Errorf("statuses = %v, expected [500 502 502]", statuses)
	}
}

func TestRemoveAndClearFaults(t *testing.T) {
	server := startServer(t, emulator.Options{})
	first := server.InjectFault(emulator.Fault{Status: 500})
	second := server.InjectFault(emulator.Fault{Status: 502})
	if first == second {
		t.Fatalf("InjectFault returned the id %d twice", first)
	}

	server.RemoveFault(first)
	if status := call(t, server, http.MethodGet, "/v2/storage/tokens/verify", tokenA, "").status; status != 502 {
		t.Errorf("status after RemoveFault = %d, expected 502", status)
	}
	server.ClearFaults()
	if status := call(t, server, http.MethodGet, "/v2/storage/tokens/verify", tokenA, "").status; status != 200 {
		t.Errorf("status after ClearFaults = %d, expected 200", status)
	}
	server.RemoveFault(12345)
}
