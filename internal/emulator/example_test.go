package emulator_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/keboola/keboola-operator/internal/emulator"
)

// The emulator starts like an httptest server. A test adds a project and a
// token, points the code under test at URL, and fires events at the webhooks
// that code created.
func Example() {
	server := emulator.New(emulator.Options{AllowHTTPLoopback: true, DeliveryBackoff: 10 * time.Millisecond})
	if err := server.Start(); err != nil {
		panic(err)
	}
	defer server.Close()
	server.AddProject(emulator.Project{ID: 1, Name: "Demo", Region: "eu-central-1"})
	server.AddToken("example-token", emulator.Token{ProjectID: 1, CanManageWebhooks: true})

	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	defer receiver.Close()

	body := fmt.Sprintf(`{"name":"demo","url":%q,"events":["storage.jobFailed"]}`, receiver.URL)
	req, _ := http.NewRequest(http.MethodPost, server.URL()+"/v2/storage/webhooks", strings.NewReader(body))
	req.Header.Set("X-StorageApi-Token", "example-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	fmt.Println("create:", resp.StatusCode)

	for _, delivery := range server.Fire(context.Background(), 1, "storage.jobFailed", map[string]any{"id": "job-1"}) {
		fmt.Println("delivery to webhook", delivery.WebhookID, "attempt", delivery.Attempt, "status", delivery.Status)
	}
	fmt.Println("creates:", server.Count(http.MethodPost, emulator.EndpointWebhooks))

	// Output:
	// create: 201
	// delivery to webhook 1 attempt 1 status 204
	// creates: 1
}

// On a stack with only the Notification service, a client finds the service
// in the Storage API index, creates a subscription there, and receives
// unsigned deliveries.
func ExampleServer_FireNotification() {
	server := emulator.New(emulator.Options{Backends: emulator.BackendsNotification, AllowHTTPLoopback: true})
	if err := server.Start(); err != nil {
		panic(err)
	}
	defer server.Close()
	server.AddProject(emulator.Project{ID: 1, Name: "Demo", Region: "eu-central-1"})
	server.AddToken("example-token", emulator.Token{ProjectID: 1})

	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	defer receiver.Close()

	body := fmt.Sprintf(`{"event":"job-failed","recipient":{"channel":"webhook","url":%q}}`, receiver.URL)
	req, _ := http.NewRequest(http.MethodPost, server.NotificationURL()+"/project-subscriptions", strings.NewReader(body))
	req.Header.Set("X-StorageApi-Token", "example-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	fmt.Println("create:", resp.StatusCode)

	for _, delivery := range server.FireNotification(context.Background(), 1, "job-failed", nil) {
		fmt.Println("delivery to subscription", delivery.SubscriptionID, "status", delivery.Status, "signed", delivery.Signature != "")
	}
	fmt.Println("creates:", server.Count(http.MethodPost, emulator.EndpointSubscriptions))

	// Output:
	// create: 201
	// delivery to subscription 1001 status 204 signed false
	// creates: 1
}
