package emulator_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keboola/keboola-operator/internal/emulator"
)

// admin sends an admin request with a JSON body (none when empty).
func admin(t *testing.T, server *emulator.Server, method, path, body string) response {
	t.Helper()
	return call(t, server, method, "/_emulator/"+path, "", body)
}

func TestAdminRoundTrip(t *testing.T) {
	server := emulator.New(emulator.Options{AllowHTTPLoopback: true, DeliveryBackoff: time.Millisecond})
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(server.Close)

	if resp := admin(t, server, http.MethodGet, "healthz", ""); resp.status != 200 || !strings.Contains(string(resp.body), `"ok"`) {
		t.Fatalf("healthz = %d %s", resp.status, resp.body)
	}

	resp := admin(t, server, http.MethodPost, "projects", `{"id": 42, "name": "Demo", "region": "eu-central-1"}`)
	if resp.status != http.StatusOK {
		t.Fatalf("add project: %d %s", resp.status, resp.body)
	}
	resp = admin(t, server, http.MethodPost, "tokens",
		`{"token": "demo-token-secret", "id": "7", "description": "demo", "projectID": 42, "expires": "2099-01-01T00:00:00Z"}`)
	if resp.status != http.StatusOK {
		t.Fatalf("add token: %d %s", resp.status, resp.body)
	}
	if strings.Contains(string(resp.body), "demo-token-secret") {
		t.Errorf("add token response contains the token: %s", resp.body)
	}
	tokenInfo := decode[map[string]any](t, resp)
	if tokenInfo["canManageWebhooks"] != true {
		t.Errorf("canManageWebhooks = %v, expected true by default", tokenInfo["canManageWebhooks"])
	}

	verify := decode[map[string]any](t, call(t, server, http.MethodGet, "/v2/storage/tokens/verify", "demo-token-secret", ""))
	if verify["id"] != "7" || verify["expires"] != "2099-01-01T00:00:00+0000" {
		t.Errorf("verify = %v, expected id 7 and the expiry", verify)
	}
	owner := verify["owner"].(map[string]any)
	if owner["id"] != float64(42) || owner["name"] != "Demo" || owner["region"] != "eu-central-1" {
		t.Errorf("owner = %v", owner)
	}

	target := &receiver{}
	receiverServer := startReceiver(t, target)
	created := createWebhook(t, server, "demo-token-secret", "demo", receiverServer.URL+"/hook", jobFailed)

	var stored []emulator.StoredWebhook
	if err := json.Unmarshal(admin(t, server, http.MethodGet, "webhooks?project=42", "").body, &stored); err != nil {
		t.Fatal(err)
	}
	if len(stored) != 1 || stored[0].ID != created.ID || stored[0].Secret != created.Secret || stored[0].ProjectID != 42 {
		t.Errorf("admin webhooks = %+v, expected the created webhook with its secret", stored)
	}

	resp = admin(t, server, http.MethodPost, "fire", `{"project": 42, "event": "storage.jobFailed", "data": {"id": "job-1"}}`)
	if resp.status != http.StatusOK {
		t.Fatalf("fire: %d %s", resp.status, resp.body)
	}
	var deliveries []struct {
		WebhookID string `json:"webhookId"`
		Attempt   int    `json:"attempt"`
		Status    int    `json:"status"`
		Body      string `json:"body"`
		Signature string `json:"signature"`
	}
	if err := json.Unmarshal(resp.body, &deliveries); err != nil {
		t.Fatalf("failed to decode %s: %v", resp.body, err)
	}
	if len(deliveries) != 1 || deliveries[0].Status != 200 || deliveries[0].WebhookID != created.ID {
		t.Fatalf("deliveries = %+v, expected one success", deliveries)
	}
	if deliveries[0].Signature != hmacHex(created.Secret, []byte(deliveries[0].Body)) || !strings.Contains(deliveries[0].Body, `"id":"job-1"`) {
		t.Errorf("delivery body or signature is wrong: %+v", deliveries[0])
	}
	if resp := admin(t, server, http.MethodGet, "deliveries", ""); !strings.Contains(string(resp.body), created.ID) {
		t.Errorf("deliveries list = %s, expected the delivery", resp.body)
	}

	resp = admin(t, server, http.MethodPost, "faults", `{"method": "GET", "endpoint": "/v2/storage/webhooks", "status": 429, "retryAfter": "3s", "times": 1}`)
	if resp.status != http.StatusCreated {
		t.Fatalf("inject fault: %d %s", resp.status, resp.body)
	}
	faultID := decode[map[string]int](t, resp)["id"]
	if faultID == 0 {
		t.Errorf("fault id is 0, expected a positive id")
	}
	faulted := call(t, server, http.MethodGet, "/v2/storage/webhooks", "demo-token-secret", "")
	if faulted.status != 429 || faulted.header.Get("Retry-After") != "3" {
		t.Errorf("faulted request = %d with Retry-After %q, expected 429 and 3", faulted.status, faulted.header.Get("Retry-After"))
	}

	admin(t, server, http.MethodPost, "faults", `{"status": 500, "latency": 0.01}`)
	if status := call(t, server, http.MethodGet, "/v2/storage/webhooks", "demo-token-secret", "").status; status != 500 {
		t.Errorf("status = %d, expected the second fault's 500", status)
	}
	if resp := admin(t, server, http.MethodDelete, "faults", ""); resp.status != http.StatusNoContent {
		t.Errorf("clear faults: %d", resp.status)
	}
	if status := call(t, server, http.MethodGet, "/v2/storage/webhooks", "demo-token-secret", "").status; status != 200 {
		t.Errorf("status after clearing faults = %d, expected 200", status)
	}

	var requests []emulator.Request
	if err := json.Unmarshal(admin(t, server, http.MethodGet, "requests", "").body, &requests); err != nil {
		t.Fatal(err)
	}
	if len(requests) != 5 || requests[3].Status != 500 || requests[3].TokenID != "7" {
		t.Errorf("requests = %+v, expected 5 with the 500 fourth", requests)
	}
	if resp := admin(t, server, http.MethodDelete, "requests", ""); resp.status != http.StatusNoContent || server.Count("", "") != 0 {
		t.Errorf("reset requests: %d, count %d", resp.status, server.Count("", ""))
	}

	resp = admin(t, server, http.MethodPost, "webhooks?project=42", `{"id": "`+created.ID+`", "name": "changed by hand", "url": "https://hooks.example.com/", "events": ["storage.jobSucceeded"]}`)
	if resp.status != http.StatusOK {
		t.Fatalf("out-of-band edit: %d %s", resp.status, resp.body)
	}
	got := decode[webhook](t, call(t, server, http.MethodGet, "/v2/storage/webhooks/"+created.ID, "demo-token-secret", ""))
	if got.Name != "changed by hand" {
		t.Errorf("API returns %+v after the out-of-band edit", got)
	}
	if resp := admin(t, server, http.MethodDelete, "webhooks/"+created.ID+"?project=42", ""); resp.status != http.StatusNoContent {
		t.Errorf("out-of-band delete: %d %s", resp.status, resp.body)
	}
	if resp := admin(t, server, http.MethodDelete, "webhooks/"+created.ID+"?project=42", ""); resp.status != http.StatusNotFound {
		t.Errorf("second out-of-band delete: %d, expected 404", resp.status)
	}
}

func TestAdminRejectsInvalidRequests(t *testing.T) {
	server := startServer(t, emulator.Options{})

	cases := []struct {
		name, method, path, body string
		status                   int
	}{
		{"unknown endpoint", http.MethodGet, "nothing", "", 404},
		{"wrong method", http.MethodPut, "faults", "{}", 404},
		{"token without token", http.MethodPost, "tokens", `{"id": "1"}`, 400},
		{"token with invalid expiry", http.MethodPost, "tokens", `{"token": "t", "expires": "tomorrow"}`, 400},
		{"malformed project", http.MethodPost, "projects", `{"id": "x"`, 400},
		{"webhooks without project", http.MethodGet, "webhooks", "", 400},
		{"fire without event", http.MethodPost, "fire", `{"project": 1}`, 400},
		{"fault with invalid duration", http.MethodPost, "faults", `{"latency": "soon"}`, 400},
		{"remove fault with invalid id", http.MethodDelete, "faults/abc", "", 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if resp := admin(t, server, tc.method, tc.path, tc.body); resp.status != tc.status {
				t.Errorf("status = %d, expected %d; body %s", resp.status, tc.status, resp.body)
			}
		})
	}
}

func TestAdminRequiresJSONContentType(t *testing.T) {
	server := startServer(t, emulator.Options{})

	resp, err := http.Post(server.URL()+"/_emulator/faults", "text/plain", strings.NewReader(`{"status": 500}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("status = %d, expected 403 for a text/plain body", resp.StatusCode)
	}
	if status := call(t, server, http.MethodGet, "/v2/storage/tokens/verify", tokenA, "").status; status != 200 {
		t.Errorf("the rejected fault applied: status %d", status)
	}
}

func TestAdminRejectsNonLoopbackHostHeader(t *testing.T) {
	server := startServer(t, emulator.Options{})

	req, _ := http.NewRequest(http.MethodGet, server.URL()+"/_emulator/webhooks?project=101", nil)
	req.Host = "attacker.example.com"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("status = %d, expected 403 for a non-loopback Host", resp.StatusCode)
	}
}

func TestAdminRejectsNonLoopbackClient(t *testing.T) {
	server := emulator.New(emulator.Options{})
	recorder := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1/_emulator/healthz", nil)
	req.RemoteAddr = "192.0.2.10:41000"

	server.Handler().ServeHTTP(recorder, req)
	if recorder.Code != http.StatusForbidden {
		t.Errorf("status = %d, expected 403 for a client at 192.0.2.10", recorder.Code)
	}
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestLogOmitsTokensAndSecrets(t *testing.T) {
	var output syncBuffer
	logger := slog.New(slog.NewTextHandler(&output, &slog.HandlerOptions{Level: slog.LevelDebug}))
	server := startServer(t, emulator.Options{AllowHTTPLoopback: true, DeliveryBackoff: time.Millisecond, DeliveryRetries: 1, Logger: logger})

	const receiverSecret = "receiver-query-secret-5a1f"
	target := &receiver{replies: []int{500}}
	receiverURL := startReceiver(t, target).URL
	created := createWebhook(t, server, tokenA, "jobs", receiverURL+"/hook?key="+receiverSecret, jobFailed)
	createWebhook(t, server, tokenA, "closed", "http://127.0.0.1:1/hook?key="+receiverSecret, jobFailed)
	rejected := server.PutWebhook(projectA, emulator.StoredWebhook{Name: "remote", URL: "https://hooks.example.com/?key=" + receiverSecret, Events: []string{jobFailed}})

	call(t, server, http.MethodGet, "/v2/storage/tokens/verify", tokenA, "")
	call(t, server, http.MethodGet, "/v2/storage/tokens/verify", "unknown-token-c0ffee", "")
	call(t, server, http.MethodGet, "/v2/storage/webhooks/"+created.ID, tokenB, "")
	server.InjectFault(emulator.Fault{Drop: true, Times: 1})
	_, _ = send(freshClient(), server, http.MethodGet, "/v2/storage/webhooks", tokenA, "")
	server.Fire(context.Background(), projectA, jobFailed, nil)
	admin(t, server, http.MethodPost, "tokens", `{"token": "admin-added-token-77aa", "projectID": 101}`)
	call(t, server, http.MethodGet, "/v2/storage/webhooks", "admin-added-token-77aa", "")

	logged := output.String()
	if !strings.Contains(logged, "tokenId="+tokenIDA) || !strings.Contains(logged, "Delivery failed") || !strings.Contains(logged, "Delivery rejected") {
		t.Fatalf("log lacks the expected records:\n%s", logged)
	}
	secrets := map[string]string{
		"token A":             tokenA,
		"token B":             tokenB,
		"unknown token":       "unknown-token-c0ffee",
		"admin-added token":   "admin-added-token-77aa",
		"webhook secret":      created.Secret,
		"rejected secret":     rejected.Secret,
		"receiver URL secret": receiverSecret,
	}
	for name, secret := range secrets {
		if strings.Contains(logged, secret) {
			t.Errorf("log contains the %s", name)
		}
	}
}
