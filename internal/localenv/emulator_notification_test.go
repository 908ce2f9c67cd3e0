package localenv

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keboola/keboola-operator/internal/emulator"
	"github.com/keboola/keboola-operator/pkg/webhook"
)

// startNotificationEmulator starts an in-process emulator that serves only
// the Notification service, with project 1234, and returns a client of it.
func startNotificationEmulator(t *testing.T) (*emulator.Server, *EmulatorClient) {
	t.Helper()
	server := emulator.New(emulator.Options{Backends: emulator.BackendsNotification, AllowHTTPLoopback: true, DeliveryRetries: -1})
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(server.Close)
	server.AddProject(emulator.Project{ID: 1234, Name: "Demo"})

	client, err := NewEmulatorClient(server.URL())
	if err != nil {
		t.Fatal(err)
	}
	return server, client
}

func TestEmulatorClientSubscriptions(t *testing.T) {
	server, client := startNotificationEmulator(t)
	stored := server.PutSubscription(1234, emulator.StoredSubscription{
		Event:     "job-failed",
		Filters:   []emulator.SubscriptionFilter{{Field: "job.component.id", Value: "keboola.ex-db-snowflake", Operator: "=="}},
		Recipient: emulator.SubscriptionRecipient{Channel: emulator.ChannelWebhook, URL: "http://127.0.0.1:8766/webhook?kbc_secret=abc"},
	})
	server.PutSubscription(99, emulator.StoredSubscription{
		Event:     "job-failed",
		Recipient: emulator.SubscriptionRecipient{Channel: emulator.ChannelEmail, Address: "ops@example.com"},
	})

	subscriptions, err := client.Subscriptions(context.Background(), 1234)
	if err != nil {
		t.Fatal(err)
	}
	if len(subscriptions) != 1 {
		t.Fatalf("Subscriptions() returned %d subscriptions, want the 1 of project 1234: %+v", len(subscriptions), subscriptions)
	}
	got := subscriptions[0]
	if got.ID != stored.ID {
		t.Errorf("ID = %q, want %q", got.ID, stored.ID)
	}
	if got.ProjectID != 1234 {
		t.Errorf("ProjectID = %d, want 1234", got.ProjectID)
	}
	if got.Event != "job-failed" {
		t.Errorf("Event = %q, want job-failed", got.Event)
	}
	if got.Recipient.Channel != "webhook" {
		t.Errorf("Recipient.Channel = %q, want webhook", got.Recipient.Channel)
	}
	if got.Recipient.URL != "http://127.0.0.1:8766/webhook?kbc_secret=abc" {
		t.Errorf("Recipient.URL = %q, want the stored URL", got.Recipient.URL)
	}
	if len(got.Filters) != 1 || got.Filters[0].Field != "job.component.id" || got.Filters[0].Value != "keboola.ex-db-snowflake" {
		t.Errorf("Filters = %+v, want the stored filter on job.component.id", got.Filters)
	}
	if got.CreatedAt.IsZero() {
		t.Error("CreatedAt is zero, want the creation time")
	}
}

func TestEmulatorClientFireNotification(t *testing.T) {
	server, client := startNotificationEmulator(t)
	var (
		signed bool
		secret string
	)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, signed = r.Header[webhook.SignatureHeader]
		secret = r.URL.Query().Get("kbc_secret")
		w.WriteHeader(http.StatusOK)
	}))
	defer receiver.Close()
	stored := server.PutSubscription(1234, emulator.StoredSubscription{
		Event:     "job-succeeded",
		Recipient: emulator.SubscriptionRecipient{Channel: emulator.ChannelWebhook, URL: receiver.URL + "/webhook?kbc_secret=abc"},
	})

	deliveries, err := client.FireNotification(context.Background(), 1234, "job-succeeded", map[string]any{"job.id": "42"})
	if err != nil {
		t.Fatal(err)
	}
	if len(deliveries) != 1 {
		t.Fatalf("FireNotification() returned %d deliveries, want 1: %+v", len(deliveries), deliveries)
	}
	d := deliveries[0]
	if d.SubscriptionID != stored.ID {
		t.Errorf("SubscriptionID = %q, want %q", d.SubscriptionID, stored.ID)
	}
	if d.WebhookID != "" {
		t.Errorf("WebhookID = %q, want empty for a subscription", d.WebhookID)
	}
	if d.Status != http.StatusOK {
		t.Errorf("Status = %d, want 200", d.Status)
	}
	if d.Event != "job-succeeded" {
		t.Errorf("Event = %q, want job-succeeded", d.Event)
	}
	if !strings.Contains(d.Body, `"id":"42"`) {
		t.Errorf("Body = %s, want the job id 42 from the data", d.Body)
	}
	if signed {
		t.Error("the delivery has an X-Kbc-Signature header, want none")
	}
	if secret != "abc" {
		t.Errorf("query parameter kbc_secret of the delivery = %q, want %q", secret, "abc")
	}
}

func TestEmulatorClientFireNotificationUnknownEvent(t *testing.T) {
	_, client := startNotificationEmulator(t)

	_, err := client.FireNotification(context.Background(), 1234, "storage.jobFailed", nil)
	if err == nil || !strings.Contains(err.Error(), "status 400") {
		t.Errorf("FireNotification() of a Storage API event error = %v, want status 400", err)
	}
}
