package main

import (
	"strings"
	"testing"

	keboolav1 "github.com/keboola/keboola-operator/api/v1alpha1"
	"github.com/keboola/keboola-operator/internal/localenv"
	"github.com/keboola/keboola-operator/pkg/webhook"
)

func TestParseFlagsWebhookAPI(t *testing.T) {
	cfg, err := parseFlags([]string{"--assets", "bin/k8s"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.webhookAPI != webhooksAPI {
		t.Errorf("default webhookAPI = %q, want %q", cfg.webhookAPI, webhooksAPI)
	}

	cfg, err = parseFlags([]string{"--assets", "bin/k8s", "--webhook-api", "notification"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.webhookAPI != notificationAPI {
		t.Errorf("webhookAPI = %q, want %q", cfg.webhookAPI, notificationAPI)
	}
}

func TestParseFlagsInvalidWebhookAPI(t *testing.T) {
	_, err := parseFlags([]string{"--assets", "bin/k8s", "--webhook-api", "NotificationSubscriptions"})
	if err == nil {
		t.Fatal("parseFlags() accepted --webhook-api NotificationSubscriptions")
	}
	if !strings.Contains(err.Error(), "expected webhooks or notification") {
		t.Errorf("parseFlags() error = %v, want one that lists the valid values", err)
	}
}

func TestWebhookAPIEmulatorArgs(t *testing.T) {
	if args := webhooksAPI.emulatorArgs(); len(args) != 0 {
		t.Errorf("webhooks emulatorArgs() = %q, want none, so the emulator serves both APIs as before", args)
	}
	if args := notificationAPI.emulatorArgs(); len(args) != 1 || args[0] != "--webhook-api=notification" {
		t.Errorf("notification emulatorArgs() = %q, want [--webhook-api=notification]", args)
	}
}

func TestWithQueryParameter(t *testing.T) {
	got, err := withQueryParameter("http://127.0.0.1:8766/webhook?x=1&kbc_secret=old", "kbc_secret", "a b")
	if err != nil {
		t.Fatal(err)
	}
	if want := "http://127.0.0.1:8766/webhook?kbc_secret=a+b&x=1"; got != want {
		t.Errorf("withQueryParameter() = %q, want %q", got, want)
	}
}

func TestForgedDeliveryParses(t *testing.T) {
	id, body := forgedDelivery("job-succeeded")
	event, err := webhook.ParseEvent(body)
	if err != nil {
		t.Fatalf("ParseEvent() of the forged body error = %v", err)
	}
	if event.Event != "job-succeeded" {
		t.Errorf("event = %q, want job-succeeded", event.Event)
	}
	if string(event.Data.ID) != id {
		t.Errorf("data.id = %q, want %q", event.Data.ID, id)
	}
	if event.CreatedTime.IsZero() {
		t.Error("createdTime is zero, want the current time")
	}
}

const testReceiverURL = "http://127.0.0.1:8766/webhook"

// storedSubscription returns a subscription as the operator registers it,
// with its secret in the recipient URL.
func storedSubscription(id, event string) localenv.EmulatorSubscription {
	return localenv.EmulatorSubscription{
		ID:        id,
		Event:     event,
		Recipient: localenv.EmulatorSubscriptionRecipient{Channel: "webhook", URL: testReceiverURL + "?kbc_secret=s3cr3t"},
	}
}

func TestCheckSubscriptionsMatch(t *testing.T) {
	status := []keboolav1.SubscriptionStatus{{Event: "job-succeeded", ID: "1002"}, {Event: "job-failed", ID: "1001"}}
	stored := []localenv.EmulatorSubscription{storedSubscription("1001", "job-failed"), storedSubscription("1002", "job-succeeded")}

	if err := checkSubscriptions(status, stored, []string{"job-failed", "job-succeeded"}, testReceiverURL); err != nil {
		t.Errorf("checkSubscriptions() error = %v, want nil", err)
	}
}

func TestCheckSubscriptionsMismatch(t *testing.T) {
	events := []string{"job-failed", "job-succeeded"}
	status := []keboolav1.SubscriptionStatus{{Event: "job-failed", ID: "1001"}, {Event: "job-succeeded", ID: "1002"}}
	wrongURL := storedSubscription("1002", "job-succeeded")
	wrongURL.Recipient.URL = "http://127.0.0.1:9999/webhook?kbc_secret=s3cr3t"
	noSecret := storedSubscription("1002", "job-succeeded")
	noSecret.Recipient.URL = testReceiverURL
	twoSecrets := storedSubscription("1002", "job-succeeded")
	twoSecrets.Recipient.URL = testReceiverURL + "?kbc_secret=s3cr3t&kbc_secret=s3cr3t"
	email := storedSubscription("1002", "job-succeeded")
	email.Recipient = localenv.EmulatorSubscriptionRecipient{Channel: "email", Address: "ops@example.com"}

	tests := []struct {
		name   string
		status []keboolav1.SubscriptionStatus
		stored []localenv.EmulatorSubscription
		want   string
	}{
		{
			name:   "event missing from status",
			status: status[:1],
			stored: []localenv.EmulatorSubscription{storedSubscription("1001", "job-failed")},
			want:   "status.subscriptions has the events",
		},
		{
			name:   "subscription missing at emulator",
			status: status,
			stored: []localenv.EmulatorSubscription{storedSubscription("1001", "job-failed")},
			want:   "subscription 1002 of event job-succeeded in status.subscriptions does not exist at the emulator",
		},
		{
			name:   "other event at emulator",
			status: status,
			stored: []localenv.EmulatorSubscription{storedSubscription("1001", "job-failed"), storedSubscription("1002", "job-failed")},
			want:   "subscription 1002 has the event job-failed at the emulator",
		},
		{
			name:   "extra subscription at emulator",
			status: status,
			stored: []localenv.EmulatorSubscription{storedSubscription("1001", "job-failed"), storedSubscription("1002", "job-succeeded"), storedSubscription("1003", "job-failed")},
			want:   "the emulator stores 3 subscriptions",
		},
		{
			name:   "email recipient",
			status: status,
			stored: []localenv.EmulatorSubscription{storedSubscription("1001", "job-failed"), email},
			want:   `recipient channel "email"`,
		},
		{
			name:   "other receiver",
			status: status,
			stored: []localenv.EmulatorSubscription{storedSubscription("1001", "job-failed"), wrongURL},
			want:   `is "http://127.0.0.1:9999/webhook" without kbc_secret`,
		},
		{
			name:   "no kbc_secret",
			status: status,
			stored: []localenv.EmulatorSubscription{storedSubscription("1001", "job-failed"), noSecret},
			want:   "has 0 values of the query parameter kbc_secret",
		},
		{
			name:   "repeated kbc_secret",
			status: status,
			stored: []localenv.EmulatorSubscription{storedSubscription("1001", "job-failed"), twoSecrets},
			want:   "has 2 values of the query parameter kbc_secret",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkSubscriptions(tt.status, tt.stored, events, testReceiverURL)
			if err == nil {
				t.Fatal("checkSubscriptions() error = nil, want a mismatch")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("checkSubscriptions() error = %q, want one that contains %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("checkSubscriptions() error %q contains the secret", err)
			}
		})
	}
}

func TestFormatWebhookAPINotification(t *testing.T) {
	samples := &localenv.Samples{ProjectName: "demo", WebhookName: "job-events"}
	project := keboolav1.KeboolaProjectStatus{
		WebhookAPI:             keboolav1.WebhookAPINotificationSubscriptions,
		WebhookAPIMessage:      "detected",
		NotificationServiceURL: "http://127.0.0.1:8765/notification",
	}
	hook := keboolav1.KeboolaWebhookStatus{
		WebhookAPI:    keboolav1.WebhookAPINotificationSubscriptions,
		Subscriptions: []keboolav1.SubscriptionStatus{{Event: "job-failed", ID: "1001"}},
	}

	got := formatWebhookAPI(samples, project, hook)
	for _, want := range []string{
		"status.webhookAPI:             NotificationSubscriptions",
		"status.notificationServiceURL: http://127.0.0.1:8765/notification",
		"    event job-failed, id 1001",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("formatWebhookAPI() = \n%s\nwant a line with %q", got, want)
		}
	}
	if strings.Contains(got, "status.webhookID") {
		t.Errorf("formatWebhookAPI() = \n%s\nwant no status.webhookID, which is empty", got)
	}
}
