package emulator_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keboola/keboola-operator/internal/emulator"
)

func TestFaultsOnSubscriptionCreate(t *testing.T) {
	page := "<html><body><h1>502 Bad Gateway</h1></body></html>"
	cases := []struct {
		name  string
		fault emulator.Fault
		// check inspects the response.
		check func(t *testing.T, resp response)
	}{
		{
			name:  "status with Retry-After",
			fault: emulator.Fault{Status: http.StatusTooManyRequests, RetryAfter: 1500 * time.Millisecond},
			check: func(t *testing.T, resp response) {
				expectNotificationError(t, resp, http.StatusTooManyRequests)
				if retryAfter := resp.header.Get("Retry-After"); retryAfter != "2" {
					t.Errorf("Retry-After = %q, expected 2 (1.5s rounded up)", retryAfter)
				}
			},
		},
		{
			name:  "server error",
			fault: emulator.Fault{Status: http.StatusInternalServerError},
			check: func(t *testing.T, resp response) {
				expectNotificationError(t, resp, http.StatusInternalServerError)
			},
		},
		{
			name:  "maintenance",
			fault: emulator.Fault{Status: http.StatusServiceUnavailable, RetryAfter: time.Minute},
			check: func(t *testing.T, resp response) {
				if resp.status != http.StatusServiceUnavailable || resp.header.Get("Retry-After") != "60" {
					t.Errorf("got %d with Retry-After %q, expected 503 and 60", resp.status, resp.header.Get("Retry-After"))
				}
				if body := decode[map[string]any](t, resp); body["status"] != "maintenance" {
					t.Errorf("body = %s, expected the maintenance body", resp.body)
				}
			},
		},
		{
			name:  "HTML body",
			fault: emulator.Fault{Status: http.StatusBadGateway, Body: page},
			check: func(t *testing.T, resp response) {
				if resp.status != http.StatusBadGateway || string(resp.body) != page {
					t.Errorf("got %d %q, expected 502 with the HTML page", resp.status, resp.body)
				}
				if contentType := resp.header.Get("Content-Type"); !strings.HasPrefix(contentType, "text/html") {
					t.Errorf("Content-Type = %q, expected text/html", contentType)
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			server := startServer(t, emulator.Options{})
			tc.fault.Method = http.MethodPost
			tc.fault.Endpoint = emulator.EndpointSubscriptions
			tc.fault.Times = 1
			server.InjectFault(tc.fault)

			tc.check(t, call(t, server, http.MethodPost, subscriptionsPath, tokenA, webhookSubscriptionBody))
			if stored := server.Subscriptions(projectA); len(stored) != 0 {
				t.Errorf("a faulted create stored %+v", stored)
			}
			if requests := server.Requests(); len(requests) != 1 || requests[0].Fault != "1:status" {
				t.Errorf("recorded %+v, expected fault 1:status", requests)
			}
			createSubscription(t, server, tokenA, webhookSubscriptionBody)
		})
	}
}

func TestFaultDropOnSubscriptionCreate(t *testing.T) {
	server := startServer(t, emulator.Options{})
	server.InjectFault(emulator.Fault{Method: http.MethodPost, Endpoint: emulator.EndpointSubscriptions, Drop: true, Times: 1})

	if _, err := send(freshClient(), server, http.MethodPost, subscriptionsPath, tokenA, webhookSubscriptionBody); err == nil {
		t.Fatalf("create succeeded, expected a transport error")
	}
	if stored := server.Subscriptions(projectA); len(stored) != 0 {
		t.Errorf("a dropped create stored %+v", stored)
	}
	requests := server.Requests()
	if len(requests) != 1 || requests[0].Status != 0 || requests[0].Fault != "1:drop" || requests[0].Endpoint != emulator.EndpointSubscriptions {
		t.Errorf("recorded %+v, expected status 0 and fault 1:drop", requests)
	}
}

func TestFaultLoseResponseOnSubscriptionCreate(t *testing.T) {
	server := startServer(t, emulator.Options{})
	server.InjectFault(emulator.Fault{Method: http.MethodPost, Endpoint: emulator.EndpointSubscriptions, LoseResponse: true, Times: 1})

	if _, err := send(http.DefaultClient, server, http.MethodPost, subscriptionsPath, tokenA, webhookSubscriptionBody); err == nil {
		t.Fatalf("create succeeded, expected a transport error")
	}
	stored := server.Subscriptions(projectA)
	if len(stored) != 1 || stored[0].Event != "job-failed" {
		t.Fatalf("stored %+v, expected the created subscription", stored)
	}
	requests := server.Requests()
	if len(requests) != 1 || requests[0].Status != http.StatusCreated || requests[0].Fault != "1:lose-response" {
		t.Errorf("recorded %+v, expected status 201 and fault 1:lose-response", requests)
	}

	list := decode[[]subscription](t, call(t, server, http.MethodGet, subscriptionsPath, tokenA, ""))
	if len(list) != 1 || list[0].ID != stored[0].ID {
		t.Errorf("list after the lost create = %+v, expected the subscription", list)
	}
	if n := server.Count(http.MethodPost, emulator.EndpointSubscriptions); n != 1 {
		t.Errorf("Count(POST, subscriptions) = %d, expected 1", n)
	}
}

func TestFaultLatencyAndMatchingOnNotification(t *testing.T) {
	server := startServer(t, emulator.Options{})
	server.InjectFault(emulator.Fault{Method: http.MethodDelete, Endpoint: emulator.EndpointSubscription, Status: http.StatusNotFound, Times: 1})
	server.InjectFault(emulator.Fault{Method: http.MethodGet, Endpoint: emulator.EndpointIndex, Latency: 100 * time.Millisecond, Times: 1})

	started := time.Now()
	servicesOf(t, call(t, server, http.MethodGet, emulator.EndpointIndex, tokenA, ""))
	if elapsed := time.Since(started); elapsed < 100*time.Millisecond {
		t.Errorf("index took %s, expected at least 100ms", elapsed)
	}

	created := createSubscription(t, server, tokenA, webhookSubscriptionBody)
	expectNotificationError(t, call(t, server, http.MethodDelete, subscriptionsPath+"/"+created.ID, tokenA, ""), http.StatusNotFound)
	if _, ok := server.Subscription(projectA, created.ID); !ok {
		t.Fatalf("the faulted delete deleted the subscription")
	}
	if resp := call(t, server, http.MethodDelete, subscriptionsPath+"/"+created.ID, tokenA, ""); resp.status != http.StatusNoContent {
		t.Errorf("second delete = %d, expected 204 once the fault is used up", resp.status)
	}
}

func TestFaultProbabilityOnNotification(t *testing.T) {
	server := startServer(t, emulator.Options{})
	server.InjectFault(emulator.Fault{Endpoint: emulator.EndpointSubscriptions, Status: http.StatusBadGateway, Probability: 0.5})

	faulted := 0
	const requests = 200
	for range requests {
		if call(t, server, http.MethodGet, subscriptionsPath, tokenA, "").status == http.StatusBadGateway {
			faulted++
		}
	}
	// With p = 0.5 the chance of a count outside 50..150 is below 1e-12.
	if faulted < 50 || faulted > 150 {
		t.Errorf("%d of %d requests faulted, expected about half", faulted, requests)
	}
}

// notificationPayload is the body of a Notification delivery.
type notificationPayload struct {
	Event       string         `json:"event"`
	Data        map[string]any `json:"data"`
	CreatedTime string         `json:"createdTime"`
}

func TestFireNotificationDeliversUnsigned(t *testing.T) {
	server := startServer(t, emulator.Options{AllowHTTPLoopback: true})
	target := &receiver{}
	receiverURL := startReceiver(t, target).URL
	created := createSubscription(t, server, tokenA, fmt.Sprintf(
		`{"event":"job-failed","filters":[{"field":"job.component.id","value":"keboola.ex-db-snowflake"}],"recipient":{"channel":"webhook","url":%q}}`,
		receiverURL+"/hook?key=k1"))

	deliveries := server.FireNotification(context.Background(), projectA, "job-failed", map[string]any{"job.configuration.id": "cfg-7"})
	if len(deliveries) != 1 {
		t.Fatalf("got %d deliveries, expected 1: %+v", len(deliveries), deliveries)
	}
	delivery := deliveries[0]
	if !delivery.Succeeded() || delivery.SubscriptionID != created.ID || delivery.WebhookID != "" || delivery.Event != "job-failed" {
		t.Errorf("delivery = %+v, expected one successful attempt to the subscription", delivery)
	}
	if delivery.Signature != "" {
		t.Errorf("delivery signature = %q, expected none", delivery.Signature)
	}

	received := target.received()
	if len(received) != 1 {
		t.Fatalf("receiver got %d requests, expected 1", len(received))
	}
	request := received[0]
	if _, signed := request.header[emulator.SignatureHeader]; signed {
		t.Errorf("the delivery has an %s header, expected none", emulator.SignatureHeader)
	}
	if request.path != "/hook" || request.query != "key=k1" {
		t.Errorf("path = %q, query = %q, expected /hook and key=k1", request.path, request.query)
	}
	if contentType := request.header.Get("Content-Type"); contentType != "application/json" {
		t.Errorf("Content-Type = %q, expected application/json", contentType)
	}

	var payload notificationPayload
	if err := json.Unmarshal(request.body, &payload); err != nil {
		t.Fatalf("failed to decode the payload %s: %v", request.body, err)
	}
	if payload.Event != "job-failed" || !timestampPattern.MatchString(payload.CreatedTime) {
		t.Errorf("event = %q, createdTime = %q; expected job-failed and the API's format", payload.Event, payload.CreatedTime)
	}
	job, _ := payload.Data["job"].(map[string]any)
	component, _ := job["component"].(map[string]any)
	configuration, _ := job["configuration"].(map[string]any)
	if job["status"] != "error" || component["id"] != "keboola.ex-db-snowflake" || configuration["id"] != "cfg-7" {
		t.Errorf("data.job = %v, expected status error, the default component and configuration cfg-7", job)
	}
	project, _ := payload.Data["project"].(map[string]any)
	if project["id"] != "101" || project["name"] != "Project A" {
		t.Errorf("data.project = %v, expected id \"101\" and name Project A", project)
	}
	if string(request.body) != string(delivery.Body) {
		t.Errorf("the recorded delivery differs from what the receiver got")
	}
}

func TestFireNotificationMatchesFilters(t *testing.T) {
	cases := []struct {
		name    string
		filters string
		data    map[string]any
		matches bool
	}{
		{"no filters", `[]`, nil, true},
		{"equal string", `[{"field":"job.component.id","value":"keboola.ex-db-snowflake"}]`, nil, true},
		{"different string", `[{"field":"job.component.id","value":"keboola.orchestrator"}]`, nil, false},
		{"not equal", `[{"field":"job.component.id","value":"keboola.orchestrator","operator":"!="}]`, nil, true},
		{"string id equals number", `[{"field":"branch.id","value":1}]`, nil, true},
		{"missing field", `[{"field":"phase.id","value":"1"}]`, nil, false},
		{"missing field with !=", `[{"field":"phase.id","value":"1","operator":"!="}]`, nil, false},
		{"object field", `[{"field":"job","value":"x"}]`, nil, false},
		{"every filter must match", `[{"field":"branch.id","value":"1"},{"field":"job.configuration.id","value":"2"}]`, nil, false},
		{"number below threshold", `[{"field":"durationSeconds","value":60,"operator":">="}]`, map[string]any{"durationSeconds": 42}, false},
		{"number at threshold", `[{"field":"durationSeconds","value":42,"operator":">="}]`, map[string]any{"durationSeconds": 42}, true},
		{"numbers compare as numbers", `[{"field":"durationSeconds","value":"100","operator":"<"}]`, map[string]any{"durationSeconds": 42}, true},
		{"less or equal", `[{"field":"durationSeconds","value":41,"operator":"<="}]`, map[string]any{"durationSeconds": 42}, false},
		{"greater", `[{"field":"durationSeconds","value":41,"operator":">"}]`, map[string]any{"durationSeconds": 42}, true},
		{"boolean", `[{"field":"job.isRetry","value":true}]`, map[string]any{"job.isRetry": true}, true},
		{"overridden whole object", `[{"field":"job.component.id","value":"a"}]`, map[string]any{"job": map[string]any{"component": map[string]any{"id": "a"}}}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			server := startServer(t, emulator.Options{AllowHTTPLoopback: true})
			target := &receiver{}
			receiverURL := startReceiver(t, target).URL
			createSubscription(t, server, tokenA, fmt.Sprintf(
				`{"event":"job-failed","filters":%s,"recipient":{"channel":"webhook","url":%q}}`, tc.filters, receiverURL))

			deliveries := server.FireNotification(context.Background(), projectA, "job-failed", tc.data)
			if matched := len(deliveries) == 1; matched != tc.matches || len(deliveries) > 1 {
				t.Errorf("deliveries = %+v, expected a delivery: %v", deliveries, tc.matches)
			}
			if got := len(target.received()); (got == 1) != tc.matches {
				t.Errorf("receiver got %d requests, expected a request: %v", got, tc.matches)
			}
		})
	}
}

func TestFireNotificationProcessingLongDefaults(t *testing.T) {
	server := startServer(t, emulator.Options{AllowHTTPLoopback: true})
	target := &receiver{}
	receiverURL := startReceiver(t, target).URL
	createSubscription(t, server, tokenA, fmt.Sprintf(
		`{"event":"phase-job-processing-long","filters":[{"field":"durationOvertimePercentage","value":0.75,"operator":">="}],"recipient":{"channel":"webhook","url":%q}}`,
		receiverURL))

	if deliveries := server.FireNotification(context.Background(), projectA, "phase-job-processing-long", nil); len(deliveries) != 0 {
		t.Errorf("the default overtime of 0.5 matched >= 0.75: %+v", deliveries)
	}
	deliveries := server.FireNotification(context.Background(), projectA, "phase-job-processing-long", map[string]any{"durationOvertimePercentage": 0.8})
	if len(deliveries) != 1 {
		t.Fatalf("got %d deliveries for an overtime of 0.8, expected 1", len(deliveries))
	}

	var payload notificationPayload
	if err := json.Unmarshal(deliveries[0].Body, &payload); err != nil {
		t.Fatal(err)
	}
	job, _ := payload.Data["job"].(map[string]any)
	if job["status"] != "processing" || job["endTime"] != nil {
		t.Errorf("data.job = %v, expected a processing job without an end time", job)
	}
	if _, ok := payload.Data["phase"].(map[string]any); !ok {
		t.Errorf("data = %v, expected a phase for a phase-job event", payload.Data)
	}
}

func TestFireNotificationSelectsSubscriptions(t *testing.T) {
	server := startServer(t, emulator.Options{AllowHTTPLoopback: true})
	matching, otherEvent, otherProject := &receiver{}, &receiver{}, &receiver{}
	body := func(event, url string) string {
		return fmt.Sprintf(`{"event":%q,"recipient":{"channel":"webhook","url":%q}}`, event, url)
	}
	first := createSubscription(t, server, tokenA, body("job-failed", startReceiver(t, matching).URL))
	second := createSubscription(t, server, tokenA, body("job-failed", startReceiver(t, matching).URL))
	createSubscription(t, server, tokenA, body("job-succeeded", startReceiver(t, otherEvent).URL))
	createSubscription(t, server, tokenB, body("job-failed", startReceiver(t, otherProject).URL))
	createSubscription(t, server, tokenA, `{"event":"job-failed","recipient":{"channel":"email","address":"ops@example.com"}}`)
	webhookTarget := &receiver{}
	createWebhook(t, server, tokenA, "storage", startReceiver(t, webhookTarget).URL, jobFailed)

	deliveries := server.FireNotification(context.Background(), projectA, "job-failed", nil)
	if len(deliveries) != 2 || deliveries[0].SubscriptionID != first.ID || deliveries[1].SubscriptionID != second.ID {
		t.Fatalf("deliveries = %+v, expected the two job-failed webhook subscriptions of project A in id order", deliveries)
	}
	if len(matching.received()) != 2 || len(otherEvent.received()) != 0 || len(otherProject.received()) != 0 || len(webhookTarget.received()) != 0 {
		t.Errorf("receivers got %d, %d, %d and %d requests; expected 2, 0, 0 and 0",
			len(matching.received()), len(otherEvent.received()), len(otherProject.received()), len(webhookTarget.received()))
	}
	if got := server.FireNotification(context.Background(), projectA, "phase-job-failed", nil); len(got) != 0 {
		t.Errorf("an event without subscriptions delivered %+v", got)
	}
}

func TestFireNotificationRetries(t *testing.T) {
	server := startServer(t, emulator.Options{AllowHTTPLoopback: true, DeliveryBackoff: time.Millisecond, DeliveryRetries: 2})
	target := &receiver{replies: []int{http.StatusInternalServerError, http.StatusServiceUnavailable}}
	created := createSubscription(t, server, tokenA, fmt.Sprintf(`{"event":"job-succeeded","recipient":{"channel":"webhook","url":%q}}`, startReceiver(t, target).URL))

	deliveries := server.FireNotification(context.Background(), projectA, "job-succeeded", nil)
	if len(deliveries) != 3 {
		t.Fatalf("got %d attempts, expected 3: %+v", len(deliveries), deliveries)
	}
	for i, expected := range []int{500, 503, 200} {
		if deliveries[i].Status != expected || deliveries[i].Attempt != i+1 || deliveries[i].SubscriptionID != created.ID {
			t.Errorf("attempt %d = %+v, expected status %d", i+1, deliveries[i], expected)
		}
	}
	received := target.received()
	if len(received) != 3 || string(received[0].body) != string(received[2].body) {
		t.Errorf("receiver got %d requests, expected 3 with the same body", len(received))
	}
}

func TestFireNotificationRejectsRemoteTarget(t *testing.T) {
	server := startServer(t, emulator.Options{})
	created := createSubscription(t, server, tokenA, `{"event":"job-failed","recipient":{"channel":"webhook","url":"https://hooks.example.com/n"}}`)

	deliveries := server.FireNotification(context.Background(), projectA, "job-failed", nil)
	if len(deliveries) != 1 || deliveries[0].SubscriptionID != created.ID || deliveries[0].Status != 0 || !strings.Contains(deliveries[0].Err, "not a loopback host") {
		t.Errorf("deliveries = %+v, expected one rejected attempt", deliveries)
	}
}

func TestFireNotificationKeepsCallerData(t *testing.T) {
	server := startServer(t, emulator.Options{AllowHTTPLoopback: true})
	target := &receiver{}
	createSubscription(t, server, tokenA, fmt.Sprintf(`{"event":"job-failed","recipient":{"channel":"webhook","url":%q}}`, startReceiver(t, target).URL))

	job := map[string]any{"id": "job-1", "component": map[string]any{"id": "a"}}
	deliveries := server.FireNotification(context.Background(), projectA, "job-failed", map[string]any{"job": job, "job.component.id": "b"})
	if len(deliveries) != 1 {
		t.Fatalf("got %d deliveries, expected 1", len(deliveries))
	}
	if component := job["component"].(map[string]any); component["id"] != "a" {
		t.Errorf("the caller's data changed to %v", job)
	}
	var payload notificationPayload
	if err := json.Unmarshal(deliveries[0].Body, &payload); err != nil {
		t.Fatal(err)
	}
	sent := payload.Data["job"].(map[string]any)
	if sent["id"] != "job-1" || sent["component"].(map[string]any)["id"] != "b" {
		t.Errorf("data.job = %v, expected the caller's job with component b", sent)
	}
}

func TestAdminSubscriptions(t *testing.T) {
	server := startServer(t, emulator.Options{AllowHTTPLoopback: true, DeliveryBackoff: time.Millisecond})
	target := &receiver{}
	receiverURL := startReceiver(t, target).URL
	created := createSubscription(t, server, tokenA, fmt.Sprintf(
		`{"event":"job-failed","filters":[{"field":"branch.id","value":1}],"recipient":{"channel":"webhook","url":%q}}`, receiverURL))

	var stored []emulator.StoredSubscription
	if err := json.Unmarshal(admin(t, server, http.MethodGet, "subscriptions?project=101", "").body, &stored); err != nil {
		t.Fatal(err)
	}
	if len(stored) != 1 || stored[0].ID != created.ID || stored[0].Recipient.URL != receiverURL || stored[0].Event != "job-failed" ||
		len(stored[0].Filters) != 1 || stored[0].Filters[0].Field != "branch.id" || stored[0].ExpiresAt != nil {
		t.Errorf("admin subscriptions = %+v, expected the created subscription", stored)
	}

	resp := admin(t, server, http.MethodPost, "fire-notification", `{"project": 101, "event": "job-failed", "data": {"job.id": "job-9"}}`)
	if resp.status != http.StatusOK {
		t.Fatalf("fire-notification: %d %s", resp.status, resp.body)
	}
	var deliveries []map[string]any
	if err := json.Unmarshal(resp.body, &deliveries); err != nil {
		t.Fatalf("failed to decode %s: %v", resp.body, err)
	}
	if len(deliveries) != 1 || deliveries[0]["subscriptionId"] != created.ID || deliveries[0]["status"] != float64(200) || deliveries[0]["signature"] != "" {
		t.Fatalf("deliveries = %v, expected one unsigned success", deliveries)
	}
	if body, _ := deliveries[0]["body"].(string); !strings.Contains(body, `"id":"job-9"`) {
		t.Errorf("delivery body = %s, expected job id job-9", body)
	}

	resp = admin(t, server, http.MethodPut, "subscriptions/"+created.ID+"/expiresAt?project=101", `{"expiresAt": "2099-05-01T00:00:00Z"}`)
	if resp.status != http.StatusOK || !strings.Contains(string(resp.body), "2099-05-01T00:00:00Z") {
		t.Errorf("set expiresAt: %d %s", resp.status, resp.body)
	}
	if resp := admin(t, server, http.MethodPut, "subscriptions/"+created.ID+"/expiresAt?project=101", `{"expiresAt": null}`); resp.status != http.StatusOK {
		t.Errorf("remove expiresAt: %d %s", resp.status, resp.body)
	}
	if got, _ := server.Subscription(projectA, created.ID); got.ExpiresAt != nil {
		t.Errorf("expiresAt = %v after null, expected none", got.ExpiresAt)
	}

	resp = admin(t, server, http.MethodPost, "subscriptions?project=101",
		`{"id": "5000", "event": "job-succeeded", "filters": [{"field": "durationOvertimePercentage", "value": 0.75, "operator": ">="}], "recipient": {"channel": "webhook", "url": "https://x.example.com/"}}`)
	if resp.status != http.StatusOK {
		t.Fatalf("out-of-band create: %d %s", resp.status, resp.body)
	}
	put, ok := server.Subscription(projectA, "5000")
	if !ok || put.Filters[0].Value != json.Number("0.75") || put.CreatedAt.IsZero() {
		t.Errorf("out-of-band subscription = %+v, expected value json.Number(0.75) and a created time", put)
	}
	if next := createSubscription(t, server, tokenA, webhookSubscriptionBody); next.ID != "5001" {
		t.Errorf("next API id = %q, expected 5001", next.ID)
	}

	resp = admin(t, server, http.MethodPut, "subscriptions/"+created.ID+"/expiresAt?project=101", `{"expiresAt": "2000-01-01T00:00:00Z"}`)
	if resp.status != http.StatusOK {
		t.Errorf("expire: %d %s", resp.status, resp.body)
	}
	expectNotificationError(t, call(t, server, http.MethodGet, subscriptionsPath+"/"+created.ID, tokenA, ""), http.StatusNotFound)

	if resp := admin(t, server, http.MethodDelete, "subscriptions/5000?project=101", ""); resp.status != http.StatusNoContent {
		t.Errorf("out-of-band delete: %d %s", resp.status, resp.body)
	}
	if resp := admin(t, server, http.MethodDelete, "subscriptions/5000?project=101", ""); resp.status != http.StatusNotFound {
		t.Errorf("second out-of-band delete: %d, expected 404", resp.status)
	}
}

func TestAdminSubscriptionsRejectInvalidRequests(t *testing.T) {
	server := startServer(t, emulator.Options{})
	created := createSubscription(t, server, tokenA, webhookSubscriptionBody)

	cases := []struct {
		name, method, path, body string
		status                   int
	}{
		{"list without project", http.MethodGet, "subscriptions", "", 400},
		{"fire a webhook event", http.MethodPost, "fire-notification", `{"project": 101, "event": "storage.jobFailed"}`, 400},
		{"fire without event", http.MethodPost, "fire-notification", `{"project": 101}`, 400},
		{"expiry without field", http.MethodPut, "subscriptions/" + created.ID + "/expiresAt?project=101", `{}`, 400},
		{"expiry not a time", http.MethodPut, "subscriptions/" + created.ID + "/expiresAt?project=101", `{"expiresAt": "soon"}`, 400},
		{"expiry of a missing subscription", http.MethodPut, "subscriptions/999/expiresAt?project=101", `{"expiresAt": null}`, 404},
		{"expiry in another project", http.MethodPut, "subscriptions/" + created.ID + "/expiresAt?project=202", `{"expiresAt": null}`, 404},
		{"trailing data", http.MethodPost, "subscriptions?project=101", `{"event": "job-failed"} {}`, 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if resp := admin(t, server, tc.method, tc.path, tc.body); resp.status != tc.status {
				t.Errorf("status = %d, expected %d; body %s", resp.status, tc.status, resp.body)
			}
		})
	}
	if stored := server.Subscriptions(projectA); len(stored) != 1 {
		t.Errorf("stored %+v, expected only the created subscription", stored)
	}
}
