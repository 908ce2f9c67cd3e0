package emulator_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/keboola/keboola-operator/internal/emulator"
)

// startReceiver starts a loopback webhook receiver.
func startReceiver(t *testing.T, r *receiver) *httptest.Server {
	t.Helper()
	server := httptest.NewServer(r)
	t.Cleanup(server.Close)
	return server
}

// hmacHex computes the expected signature independently of emulator.Sign.
func hmacHex(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

func TestSignMatchesHMACSHA256(t *testing.T) {
	body := []byte(`{"event":"storage.jobFailed"}`)
	if got, expected := emulator.Sign("secret", body), hmacHex("secret", body); got != expected {
		t.Errorf("Sign = %q, expected %q", got, expected)
	}
	// A published HMAC-SHA256 test vector (RFC 4231, test case 2).
	expected := "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
	if got := emulator.Sign("Jefe", []byte("what do ya want for nothing?")); got != expected {
		t.Errorf("Sign of the RFC 4231 vector = %q, expected %q", got, expected)
	}
}

func TestFireDeliversSignedPayload(t *testing.T) {
	server := startServer(t, emulator.Options{AllowHTTPLoopback: true})
	target := &receiver{}
	receiverServer := startReceiver(t, target)
	created := createWebhook(t, server, tokenA, "jobs", receiverServer.URL+"/hook?source=keboola", jobFailed, jobSuccess)

	deliveries := server.Fire(context.Background(), projectA, jobFailed, map[string]any{"component": "keboola.python-transformation", "extra": 7})
	if len(deliveries) != 1 {
		t.Fatalf("got %d deliveries, expected 1: %+v", len(deliveries), deliveries)
	}
	delivery := deliveries[0]
	if !delivery.Succeeded() || delivery.Attempt != 1 || delivery.Err != "" || delivery.WebhookID != created.ID || delivery.Event != jobFailed {
		t.Errorf("delivery = %+v, expected one successful attempt", delivery)
	}

	received := target.received()
	if len(received) != 1 {
		t.Fatalf("receiver got %d requests, expected 1", len(received))
	}
	request := received[0]
	if request.path != "/hook" || request.query != "source=keboola" {
		t.Errorf("path = %q, query = %q, expected /hook and source=keboola", request.path, request.query)
	}
	if contentType := request.header.Get("Content-Type"); contentType != "application/json" {
		t.Errorf("Content-Type = %q, expected application/json", contentType)
	}
	signature := request.header.Get("X-Kbc-Signature")
	if expected := hmacHex(created.Secret, request.body); signature != expected {
		t.Errorf("X-Kbc-Signature = %q, expected HMAC-SHA256 %q", signature, expected)
	}
	if signature != delivery.Signature || string(request.body) != string(delivery.Body) {
		t.Errorf("the recorded delivery differs from what the receiver got")
	}

	var payload struct {
		Event       string         `json:"event"`
		Data        map[string]any `json:"data"`
		CreatedTime string         `json:"createdTime"`
	}
	if err := json.Unmarshal(request.body, &payload); err != nil {
		t.Fatalf("failed to decode the payload %s: %v", request.body, err)
	}
	if payload.Event != jobFailed {
		t.Errorf("event = %q, expected %q", payload.Event, jobFailed)
	}
	if !timestampPattern.MatchString(payload.CreatedTime) {
		t.Errorf("createdTime = %q, expected the API's format", payload.CreatedTime)
	}
	for _, key := range []string{"id", "runId", "project", "component", "configurationId", "status", "startTime", "endTime", "durationSeconds"} {
		if _, ok := payload.Data[key]; !ok {
			t.Errorf("data has no %q: %s", key, request.body)
		}
	}
	project, _ := payload.Data["project"].(map[string]any)
	if project["id"] != float64(projectA) || project["name"] != "Project A" {
		t.Errorf("data.project = %v, expected id %d and name Project A", project, projectA)
	}
	if payload.Data["status"] != "error" {
		t.Errorf("data.status = %v, expected error for a failed job", payload.Data["status"])
	}
	if payload.Data["component"] != "keboola.python-transformation" || payload.Data["extra"] != float64(7) {
		t.Errorf("data = %v, expected the caller's component and extra", payload.Data)
	}
}

func TestFireOnlySubscribedWebhooksOfProject(t *testing.T) {
	server := startServer(t, emulator.Options{AllowHTTPLoopback: true})
	subscribed, other, otherProject := &receiver{}, &receiver{}, &receiver{}
	first := createWebhook(t, server, tokenA, "failed", startReceiver(t, subscribed).URL, jobFailed)
	second := createWebhook(t, server, tokenA, "also failed", startReceiver(t, subscribed).URL, jobSuccess, jobFailed)
	createWebhook(t, server, tokenA, "succeeded", startReceiver(t, other).URL, jobSuccess)
	createWebhook(t, server, tokenB, "failed in B", startReceiver(t, otherProject).URL, jobFailed)

	deliveries := server.Fire(context.Background(), projectA, jobFailed, nil)
	if len(deliveries) != 2 || deliveries[0].WebhookID != first.ID || deliveries[1].WebhookID != second.ID {
		t.Fatalf("deliveries = %+v, expected webhooks %s and %s in id order", deliveries, first.ID, second.ID)
	}
	if string(deliveries[0].Body) != string(deliveries[1].Body) {
		t.Errorf("webhooks got different bodies for one event")
	}
	if deliveries[0].Signature == deliveries[1].Signature {
		t.Errorf("both webhooks got the same signature, expected one per secret")
	}
	if got := len(subscribed.received()); got != 2 {
		t.Errorf("subscribed receiver got %d requests, expected 2", got)
	}
	if got := len(other.received()) + len(otherProject.received()); got != 0 {
		t.Errorf("unsubscribed receivers got %d requests, expected none", got)
	}

	if deliveries := server.Fire(context.Background(), projectA, "storage.tableDeleted", nil); len(deliveries) != 0 {
		t.Errorf("an event without subscribers made %d deliveries", len(deliveries))
	}
}

func TestFireRetriesWithBackoff(t *testing.T) {
	const backoff = 40 * time.Millisecond
	server := startServer(t, emulator.Options{AllowHTTPLoopback: true, DeliveryBackoff: backoff})
	target := &receiver{replies: []int{500, 503}}
	created := createWebhook(t, server, tokenA, "jobs", startReceiver(t, target).URL, jobFailed)

	deliveries := server.Fire(context.Background(), projectA, jobFailed, nil)
	if len(deliveries) != 3 {
		t.Fatalf("got %d attempts, expected 3: %+v", len(deliveries), deliveries)
	}
	for i, expected := range []int{500, 503, 200} {
		if deliveries[i].Status != expected || deliveries[i].Attempt != i+1 {
			t.Errorf("attempt %d: status %d, attempt %d, expected status %d", i+1, deliveries[i].Status, deliveries[i].Attempt, expected)
		}
	}

	received := target.received()
	if len(received) != 3 {
		t.Fatalf("receiver got %d requests, expected 3", len(received))
	}
	for i, request := range received {
		if string(request.body) != string(received[0].body) {
			t.Errorf("attempt %d sent a different body", i+1)
		}
		if request.header.Get("X-Kbc-Signature") != hmacHex(created.Secret, request.body) {
			t.Errorf("attempt %d has a wrong signature", i+1)
		}
	}
	if gap := received[1].time.Sub(received[0].time); gap < backoff {
		t.Errorf("first retry came after %s, expected at least %s", gap, backoff)
	}
	if gap := received[2].time.Sub(received[1].time); gap < 2*backoff {
		t.Errorf("second retry came after %s, expected at least %s", gap, 2*backoff)
	}
	if got := len(server.Deliveries()); got != 3 {
		t.Errorf("Deliveries() has %d entries, expected 3", got)
	}
}

func TestFireGivesUpAfterRetries(t *testing.T) {
	server := startServer(t, emulator.Options{AllowHTTPLoopback: true, DeliveryBackoff: time.Millisecond, DeliveryRetries: 2})
	target := &receiver{replies: []int{500, 500, 500, 500, 500}}
	createWebhook(t, server, tokenA, "jobs", startReceiver(t, target).URL, jobFailed)

	deliveries := server.Fire(context.Background(), projectA, jobFailed, nil)
	if len(deliveries) != 3 {
		t.Fatalf("got %d attempts, expected 1 + 2 retries", len(deliveries))
	}
	if deliveries[2].Succeeded() {
		t.Errorf("last attempt succeeded, expected 500")
	}
}

func TestFireDoesNotFollowRedirects(t *testing.T) {
	server := startServer(t, emulator.Options{AllowHTTPLoopback: true, DeliveryBackoff: time.Millisecond, DeliveryRetries: -1})
	redirect := httptest.NewServer(http.RedirectHandler("https://hooks.example.com/", http.StatusFound))
	t.Cleanup(redirect.Close)
	createWebhook(t, server, tokenA, "jobs", redirect.URL, jobFailed)

	deliveries := server.Fire(context.Background(), projectA, jobFailed, nil)
	if len(deliveries) != 1 || deliveries[0].Status != http.StatusFound || deliveries[0].Succeeded() {
		t.Errorf("deliveries = %+v, expected one failed attempt with 302", deliveries)
	}
}

func TestFireAttemptTimeout(t *testing.T) {
	server := startServer(t, emulator.Options{
		AllowHTTPLoopback: true, DeliveryTimeout: 50 * time.Millisecond, DeliveryRetries: 1, DeliveryBackoff: time.Millisecond,
	})
	target := &receiver{delay: time.Second}
	createWebhook(t, server, tokenA, "jobs", startReceiver(t, target).URL, jobFailed)

	started := time.Now()
	deliveries := server.Fire(context.Background(), projectA, jobFailed, nil)
	if elapsed := time.Since(started); elapsed > 800*time.Millisecond {
		t.Errorf("Fire took %s, expected two attempts of about 50ms", elapsed)
	}
	if len(deliveries) != 2 {
		t.Fatalf("got %d attempts, expected 2", len(deliveries))
	}
	for _, delivery := range deliveries {
		if delivery.Status != 0 || !strings.Contains(delivery.Err, "timed out") {
			t.Errorf("attempt %d: status %d, error %q, expected a timeout", delivery.Attempt, delivery.Status, delivery.Err)
		}
	}
}

func TestFireStopsWhenContextEnds(t *testing.T) {
	server := startServer(t, emulator.Options{AllowHTTPLoopback: true, DeliveryBackoff: time.Hour})
	target := &receiver{replies: []int{500}}
	createWebhook(t, server, tokenA, "jobs", startReceiver(t, target).URL, jobFailed)

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	deliveries := server.Fire(ctx, projectA, jobFailed, nil)
	if len(deliveries) != 1 || deliveries[0].Status != 500 {
		t.Errorf("deliveries = %+v, expected only the first failed attempt", deliveries)
	}
}

func TestFireRefusesNonLoopbackTargets(t *testing.T) {
	server := startServer(t, emulator.Options{DeliveryBackoff: time.Millisecond})
	for _, url := range []string{"https://hooks.example.com/keboola", "http://10.1.2.3/hook", "https://169.254.169.254/latest", "https://0.0.0.0/"} {
		server.PutWebhook(projectA, emulator.StoredWebhook{Name: url, URL: url, Events: []string{jobFailed}})
	}

	deliveries := server.Fire(context.Background(), projectA, jobFailed, nil)
	if len(deliveries) != 4 {
		t.Fatalf("got %d attempts, expected one rejected attempt per webhook", len(deliveries))
	}
	for _, delivery := range deliveries {
		if delivery.Status != 0 || delivery.Attempt != 1 || !strings.Contains(delivery.Err, "not a loopback host") {
			t.Errorf("delivery to %s = %+v, expected a rejection", delivery.URL, delivery)
		}
	}
}

func TestFireToLocalhostName(t *testing.T) {
	server := startServer(t, emulator.Options{AllowHTTPLoopback: true})
	target := &receiver{}
	_, port, err := net.SplitHostPort(startReceiver(t, target).Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	createWebhook(t, server, tokenA, "jobs", "http://localhost:"+port+"/hook", jobFailed)

	deliveries := server.Fire(context.Background(), projectA, jobFailed, nil)
	if len(deliveries) != 1 || !deliveries[0].Succeeded() {
		t.Errorf("deliveries = %+v, expected one success", deliveries)
	}
}

func TestFireToHTTPSReceiver(t *testing.T) {
	target := &receiver{}
	tlsServer := httptest.NewTLSServer(target)
	t.Cleanup(tlsServer.Close)
	transport := tlsServer.Client().Transport.(*http.Transport)
	server := startServer(t, emulator.Options{DeliveryTLSConfig: transport.TLSClientConfig})
	created := createWebhook(t, server, tokenA, "jobs", tlsServer.URL+"/hook", jobFailed)

	deliveries := server.Fire(context.Background(), projectA, jobFailed, nil)
	if len(deliveries) != 1 || !deliveries[0].Succeeded() {
		t.Fatalf("deliveries = %+v, expected one success", deliveries)
	}
	received := target.received()
	if len(received) != 1 || received[0].header.Get("X-Kbc-Signature") != hmacHex(created.Secret, received[0].body) {
		t.Errorf("https receiver got %d requests or a wrong signature", len(received))
	}
}

func TestFireEventDefaults(t *testing.T) {
	server := startServer(t, emulator.Options{AllowHTTPLoopback: true})
	target := &receiver{}
	createWebhook(t, server, tokenA, "all", startReceiver(t, target).URL, emulator.EventTypes()...)

	cases := map[string]string{
		"storage.jobSucceeded":       "success",
		"storage.jobProcessing":      "processing",
		"storage.jobWaiting":         "waiting",
		"orchestration.jobFailed":    "error",
		"orchestration.jobSucceeded": "success",
	}
	ids := map[any]bool{}
	for event, status := range cases {
		deliveries := server.Fire(context.Background(), projectA, event, nil)
		if len(deliveries) != 1 {
			t.Fatalf("%s: got %d deliveries, expected 1", event, len(deliveries))
		}
		var payload struct {
			Data map[string]any `json:"data"`
		}
		if err := json.Unmarshal(deliveries[0].Body, &payload); err != nil {
			t.Fatal(err)
		}
		if payload.Data["status"] != status {
			t.Errorf("%s: status = %v, expected %s", event, payload.Data["status"], status)
		}
		if ids[payload.Data["id"]] {
			t.Errorf("%s: id %v was used before, expected a new id per event", event, payload.Data["id"])
		}
		ids[payload.Data["id"]] = true
	}
}

func TestFireUnencodableData(t *testing.T) {
	server := startServer(t, emulator.Options{AllowHTTPLoopback: true})
	target := &receiver{}
	createWebhook(t, server, tokenA, "jobs", startReceiver(t, target).URL, jobFailed)

	deliveries := server.Fire(context.Background(), projectA, jobFailed, map[string]any{"bad": make(chan int)})
	if len(deliveries) != 1 || !strings.Contains(deliveries[0].Err, "failed to encode") {
		t.Errorf("deliveries = %+v, expected one encoding error", deliveries)
	}
	if len(target.received()) != 0 {
		t.Errorf("receiver got a request, expected none")
	}
}
