package localenv

import (
	"context"
	"net/http"
	"strconv"
	"time"
)

// EmulatorSubscription is a subscription of the emulator's Notification
// service, as the admin API returns it.
type EmulatorSubscription struct {
	ID        string                        `json:"id"`
	ProjectID int64                         `json:"projectId"`
	Event     string                        `json:"event"`
	Filters   []EmulatorSubscriptionFilter  `json:"filters"`
	Recipient EmulatorSubscriptionRecipient `json:"recipient"`
	// ExpiresAt is nil for a subscription that does not expire.
	ExpiresAt *time.Time `json:"expiresAt"`
	CreatedAt time.Time  `json:"createdAt"`
}

// EmulatorSubscriptionFilter limits a subscription to events whose data
// has a value at Field that compares to Value by Operator.
type EmulatorSubscriptionFilter struct {
	Field    string `json:"field"`
	Value    any    `json:"value"`
	Operator string `json:"operator"`
}

// EmulatorSubscriptionRecipient is the destination of a subscription's
// events.
type EmulatorSubscriptionRecipient struct {
	// Channel is "webhook" or "email".
	Channel string `json:"channel"`
	// URL is the receiver of a webhook recipient. A URL that the operator
	// registered carries the signing secret in its query parameter
	// kbc_secret, so it is a credential: never print it.
	URL string `json:"url,omitempty"`
	// Address is the address of an email recipient.
	Address string `json:"address,omitempty"`
}

// Subscriptions returns every subscription of the project that has not
// expired, ordered by id.
func (c *EmulatorClient) Subscriptions(ctx context.Context, projectID int64) ([]EmulatorSubscription, error) {
	var subscriptions []EmulatorSubscription
	path := "/_emulator/subscriptions?project=" + strconv.FormatInt(projectID, 10)
	if err := c.call(ctx, http.MethodGet, path, nil, &subscriptions); err != nil {
		return nil, err
	}
	return subscriptions, nil
}

// FireNotification sends a Notification service event, such as
// "job-succeeded", to every webhook subscription of the project that has
// this event and whose filters match, with data merged into the default
// payload. It returns every delivery attempt once all have succeeded or
// given up. The deliveries carry no X-Kbc-Signature header. The emulator
// rejects an event that the Notification service does not have with 400.
func (c *EmulatorClient) FireNotification(ctx context.Context, projectID int64, event string, data map[string]any) ([]EmulatorDelivery, error) {
	body := map[string]any{"project": projectID, "event": event, "data": data}
	var deliveries []EmulatorDelivery
	if err := c.call(ctx, http.MethodPost, "/_emulator/fire-notification", body, &deliveries); err != nil {
		return nil, err
	}
	return deliveries, nil
}
