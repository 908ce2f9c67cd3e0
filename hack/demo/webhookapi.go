package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	keboolav1 "github.com/keboola/keboola-operator/api/v1alpha1"
	"github.com/keboola/keboola-operator/internal/localenv"
	"github.com/keboola/keboola-operator/pkg/webhook"
)

// webhookAPI is the Keboola webhook API that a run shows, the value of
// --webhook-api. It implements flag.Value.
type webhookAPI string

const (
	// webhooksAPI is the webhooks endpoint of the Storage API, whose
	// deliveries carry an X-Kbc-Signature header.
	webhooksAPI webhookAPI = "webhooks"
	// notificationAPI is the Notification service, whose unsigned
	// deliveries carry the secret in the query parameter kbc_secret.
	notificationAPI webhookAPI = "notification"
)

func (a *webhookAPI) String() string {
	return string(*a)
}

// Set accepts "webhooks" and "notification". The flag package adds the
// flag and the value to the error.
func (a *webhookAPI) Set(value string) error {
	switch webhookAPI(value) {
	case webhooksAPI, notificationAPI:
		*a = webhookAPI(value)
		return nil
	default:
		return errors.New("expected webhooks or notification")
	}
}

// emulatorArgs returns the emulator flags that make it offer a.
func (a webhookAPI) emulatorArgs() []string {
	if a == notificationAPI {
		return []string{"--webhook-api=notification"}
	}
	// The emulator serves both APIs by default, and the operator then
	// detects the webhooks endpoint.
	return nil
}

// status returns the status.webhookAPI that the samples must report when
// the emulator offers a.
func (a webhookAPI) status() keboolav1.WebhookAPI {
	if a == notificationAPI {
		return keboolav1.WebhookAPINotificationSubscriptions
	}
	return keboolav1.WebhookAPIStorageWebhooks
}

// wrongSecret is the secret of forged deliveries. The secrets that the
// operator mints and that the emulator returns are 64 hexadecimal digits,
// so it never matches one.
const wrongSecret = "not-the-signing-secret"

// showWebhookAPI prints the webhook API that the operator chose for the
// samples and checks that it is the one the emulator offers. With the
// Notification service it also checks the KeboolaWebhook's
// status.subscriptions against the emulator's subscriptions.
func (d *demo) showWebhookAPI(ctx context.Context) (string, error) {
	var project keboolav1.KeboolaProjectStatus
	if err := d.readStatus(ctx, "keboolaproject", d.samples.ProjectName, &project); err != nil {
		return "", err
	}
	var hook keboolav1.KeboolaWebhookStatus
	if err := d.readStatus(ctx, "keboolawebhook", d.samples.WebhookName, &hook); err != nil {
		return "", err
	}
	details := formatWebhookAPI(d.samples, project, hook)

	want := d.cfg.webhookAPI.status()
	if project.WebhookAPI != want {
		return "", fmt.Errorf("KeboolaProject %q reports status.webhookAPI %q, want %q\n%s", d.samples.ProjectName, project.WebhookAPI, want, details)
	}
	if hook.WebhookAPI != want {
		return "", fmt.Errorf("KeboolaWebhook %q reports status.webhookAPI %q, want %q\n%s", d.samples.WebhookName, hook.WebhookAPI, want, details)
	}
	if d.cfg.webhookAPI == notificationAPI {
		stored, err := d.emulator.Subscriptions(ctx, d.samples.ProjectID)
		if err != nil {
			return "", err
		}
		if err := checkSubscriptions(hook.Subscriptions, stored, notificationEvents, d.receiverURL); err != nil {
			return "", fmt.Errorf("%w\n%s", err, details)
		}
	}
	return details, nil
}

// readStatus decodes the status of the object kind/name into status.
func (d *demo) readStatus(ctx context.Context, kind, name string, status any) error {
	output, err := d.env.Kubectl(ctx, nil, "get", kind+"/"+name, "-n", namespace, "-o", "jsonpath={.status}")
	if err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(output), status); err != nil {
		return fmt.Errorf("invalid status of %s %q: %w", kind, name, err)
	}
	return nil
}

// formatWebhookAPI lists the status fields of the samples that show the
// webhook API: status.webhookID for the webhooks endpoint, and
// status.subscriptions for the Notification service.
func formatWebhookAPI(samples *localenv.Samples, project keboolav1.KeboolaProjectStatus, hook keboolav1.KeboolaWebhookStatus) string {
	var out strings.Builder
	table := tabwriter.NewWriter(&out, 0, 0, 1, ' ', 0)
	fmt.Fprintf(table, "KeboolaProject %q\n", samples.ProjectName)
	fmt.Fprintf(table, "  status.webhookAPI:\t%s\n", project.WebhookAPI)
	fmt.Fprintf(table, "  status.webhookAPIMessage:\t%s\n", project.WebhookAPIMessage)
	if project.NotificationServiceURL != "" {
		fmt.Fprintf(table, "  status.notificationServiceURL:\t%s\n", project.NotificationServiceURL)
	}
	fmt.Fprintf(table, "KeboolaWebhook %q\n", samples.WebhookName)
	fmt.Fprintf(table, "  status.webhookAPI:\t%s\n", hook.WebhookAPI)
	if hook.WebhookID != "" {
		fmt.Fprintf(table, "  status.webhookID:\t%s\n", hook.WebhookID)
	}
	if len(hook.Subscriptions) > 0 {
		fmt.Fprintln(table, "  status.subscriptions:")
		for _, s := range hook.Subscriptions {
			fmt.Fprintf(table, "    event %s, id %s\n", s.Event, s.ID)
		}
	}
	_ = table.Flush()
	return strings.TrimRight(out.String(), "\n")
}

// checkDelivered returns the last delivery attempt of a fired event, and
// an error unless the receiver responded to it with 200. kind names what
// the emulator delivers to, "webhook" or "subscription".
func (d *demo) checkDelivered(deliveries []localenv.EmulatorDelivery, event, kind string) (localenv.EmulatorDelivery, error) {
	if len(deliveries) == 0 {
		return localenv.EmulatorDelivery{}, fmt.Errorf("the emulator delivered %s to no %s of project %d", event, kind, d.samples.ProjectID)
	}
	last := deliveries[len(deliveries)-1]
	if last.Status != http.StatusOK {
		return last, fmt.Errorf("the receiver responded to the delivery of %s with status %d %s after %d attempts", event, last.Status, last.Error, len(deliveries))
	}
	return last, nil
}

// forgedDelivery returns the body of a delivery of event with a new
// data.id, which the receiver logs when it rejects the delivery.
func forgedDelivery(event string) (id string, body []byte) {
	id = fmt.Sprintf("forged-%d", time.Now().UnixNano())
	body = fmt.Appendf(nil, `{"event":%q,"data":{"id":%q},"createdTime":%q}`,
		event, id, time.Now().UTC().Format(webhook.TimeFormat))
	return id, body
}
