package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	keboolav1 "github.com/keboola/keboola-operator/api/v1alpha1"
	"github.com/keboola/keboola-operator/internal/localenv"
	"github.com/keboola/keboola-operator/pkg/webhook"
)

// notificationEvents are the events of the sample KeboolaWebhook when the
// demo shows the Notification service. They are that service's names for
// the sample's storage.jobFailed and storage.jobSucceeded.
var notificationEvents = []string{"job-failed", "job-succeeded"}

// notificationFireEvent is the event that the demo fires through the
// Notification service.
const notificationFireEvent = "job-succeeded"

// fireNotification fires notificationFireEvent and checks that the
// receiver accepted the delivery by the kbc_secret in its URL.
func (d *demo) fireNotification(ctx context.Context) (string, error) {
	deliveries, err := d.emulator.FireNotification(ctx, d.samples.ProjectID, notificationFireEvent, nil)
	if err != nil {
		return "", err
	}
	last, err := d.checkDelivered(deliveries, notificationFireEvent, "subscription")
	if err != nil {
		return "", err
	}

	// The emulator's Notification deliveries have no data.id, so the line
	// is found by the event and the proof. The demo fires the event once.
	line, ok := localenv.FindLine(d.env.LogPath("receiver"), `msg="Delivery verified"`,
		"event="+notificationFireEvent+" ", "proof="+string(webhook.ProofURLSecret)+" ")
	if !ok {
		return "", fmt.Errorf("the receiver responded with 200 but logged no delivery of %s verified by its URL secret", notificationFireEvent)
	}
	return fmt.Sprintf("Emulator: delivered to subscription %s without a signature, the receiver responded with %d\nReceiver: %s",
		last.SubscriptionID, last.Status, line), nil
}

// sendForgedURLSecrets sends two unsigned deliveries that the receiver
// must reject with 401: one to the receiver's URL without kbc_secret, and
// one with a wrong kbc_secret.
func (d *demo) sendForgedURLSecrets(ctx context.Context) (string, error) {
	wrongSecretURL, err := withQueryParameter(d.receiverURL, webhook.SecretQueryParameter, wrongSecret)
	if err != nil {
		return "", err
	}
	forgeries := []struct {
		description string
		url         string
	}{
		{"without kbc_secret", d.receiverURL},
		{"with a wrong kbc_secret", wrongSecretURL},
	}

	var out strings.Builder
	for _, f := range forgeries {
		id, body := forgedDelivery(notificationFireEvent)
		status, err := localenv.PostUnsignedDelivery(ctx, f.url, body)
		if err != nil {
			return "", err
		}
		if status != http.StatusUnauthorized {
			return "", fmt.Errorf("the receiver responded to an unsigned delivery %s with status %d, want 401", f.description, status)
		}
		line, _ := localenv.FindLine(d.env.LogPath("receiver"), `msg="Delivery rejected"`, id)
		fmt.Fprintf(&out, "Delivery %s: the receiver responded with %d\nReceiver: %s\n", f.description, status, line)
	}
	return out.String(), nil
}

// withQueryParameter returns rawURL with the query parameter name set to
// value, replacing any values it had.
func withQueryParameter(rawURL, name, value string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("invalid URL %q: %w", rawURL, err)
	}
	query := u.Query()
	query.Set(name, value)
	u.RawQuery = query.Encode()
	return u.String(), nil
}

// checkSubscriptions checks that statusSubscriptions, the
// status.subscriptions of the KeboolaWebhook, has one subscription per
// event of events, and that the emulator stores exactly these
// subscriptions, each with its event and a webhook recipient at
// receiverURL plus the query parameter kbc_secret. Its errors never
// contain a recipient URL, because that URL carries the secret.
func checkSubscriptions(statusSubscriptions []keboolav1.SubscriptionStatus, stored []localenv.EmulatorSubscription, events []string, receiverURL string) error {
	var statusEvents []string
	for _, s := range statusSubscriptions {
		statusEvents = append(statusEvents, s.Event)
	}
	slices.Sort(statusEvents)
	wantEvents := slices.Sorted(slices.Values(events))
	if !slices.Equal(statusEvents, wantEvents) {
		return fmt.Errorf("status.subscriptions has the events %q, want one subscription for each of %q", statusEvents, wantEvents)
	}

	byID := map[string]localenv.EmulatorSubscription{}
	for _, s := range stored {
		byID[s.ID] = s
	}
	for _, s := range statusSubscriptions {
		found, ok := byID[s.ID]
		if !ok {
			return fmt.Errorf("subscription %s of event %s in status.subscriptions does not exist at the emulator", s.ID, s.Event)
		}
		if found.Event != s.Event {
			return fmt.Errorf("subscription %s has the event %s at the emulator, but %s in status.subscriptions", s.ID, found.Event, s.Event)
		}
		if found.Recipient.Channel != "webhook" {
			return fmt.Errorf("subscription %s has the recipient channel %q at the emulator, want webhook", s.ID, found.Recipient.Channel)
		}
		if err := checkRecipientURL(found.Recipient.URL, receiverURL); err != nil {
			return fmt.Errorf("subscription %s: %w", s.ID, err)
		}
	}
	if len(stored) != len(statusSubscriptions) {
		return fmt.Errorf("the emulator stores %d subscriptions of the project, but status.subscriptions lists %d", len(stored), len(statusSubscriptions))
	}
	return nil
}

// checkRecipientURL checks that rawURL is receiverURL with exactly one
// non-empty query parameter kbc_secret added. Its errors never contain
// rawURL or the parameter's value.
func checkRecipientURL(rawURL, receiverURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return errors.New("the recipient URL at the emulator is not a valid URL")
	}
	query := u.Query()
	secrets := query[webhook.SecretQueryParameter]
	if len(secrets) != 1 || secrets[0] == "" {
		return fmt.Errorf("the recipient URL at the emulator has %d values of the query parameter %s, want one non-empty value",
			len(secrets), webhook.SecretQueryParameter)
	}
	query.Del(webhook.SecretQueryParameter)
	u.RawQuery = query.Encode()
	if u.String() != receiverURL {
		return fmt.Errorf("the recipient URL at the emulator is %q without %s, want %q", u.String(), webhook.SecretQueryParameter, receiverURL)
	}
	return nil
}
