package localenv

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// EmulatorClient calls the admin API of a Storage API emulator, which is
// served under /_emulator/ and needs no token.
type EmulatorClient struct {
	baseURL string
	http    *http.Client
}

// NewEmulatorClient returns a client of the emulator at baseURL, such as
// "http://127.0.0.1:8765". baseURL must point at a loopback address.
func NewEmulatorClient(baseURL string) (*EmulatorClient, error) {
	if err := checkLoopbackURL(baseURL); err != nil {
		return nil, err
	}
	return &EmulatorClient{
		baseURL: strings.TrimSuffix(baseURL, "/"),
		// A fire waits for every delivery attempt, including the
		// emulator's retries.
		http: &http.Client{Timeout: 2 * time.Minute},
	}, nil
}

// EmulatorWebhook is a webhook as the emulator stores it, secret included.
type EmulatorWebhook struct {
	ID     string   `json:"id"`
	Name   string   `json:"name"`
	URL    string   `json:"url"`
	Events []string `json:"events"`
	Secret string   `json:"secret"`
}

// EmulatorDelivery is one delivery attempt of a fired event.
type EmulatorDelivery struct {
	// WebhookID is the webhook of a delivery of Fire, and empty for one of
	// FireNotification.
	WebhookID string `json:"webhookId"`
	// SubscriptionID is the subscription of a delivery of
	// FireNotification, and empty for one of Fire.
	SubscriptionID string `json:"subscriptionId"`
	// URL is the receiver's URL. For a subscription that the operator
	// registered it carries the signing secret in its query parameter
	// kbc_secret, so it is a credential: never print it.
	URL     string `json:"url"`
	Event   string `json:"event"`
	Attempt int    `json:"attempt"`
	// Status is the receiver's response status, and 0 without a response.
	Status int `json:"status"`
	// Error is the reason an attempt got no response.
	Error string `json:"error"`
	// Body is the exact body that was sent.
	Body      string `json:"body"`
	Signature string `json:"signature"`
}

// Webhooks returns every webhook of the project.
func (c *EmulatorClient) Webhooks(ctx context.Context, projectID int64) ([]EmulatorWebhook, error) {
	var webhooks []EmulatorWebhook
	path := "/_emulator/webhooks?project=" + strconv.FormatInt(projectID, 10)
	if err := c.call(ctx, http.MethodGet, path, nil, &webhooks); err != nil {
		return nil, err
	}
	return webhooks, nil
}

// Fire sends event to every webhook of the project that subscribes to it,
// with data merged into the default payload, and returns every delivery
// attempt once all have succeeded or given up.
func (c *EmulatorClient) Fire(ctx context.Context, projectID int64, event string, data map[string]any) ([]EmulatorDelivery, error) {
	body := map[string]any{"project": projectID, "event": event, "data": data}
	var deliveries []EmulatorDelivery
	if err := c.call(ctx, http.MethodPost, "/_emulator/fire", body, &deliveries); err != nil {
		return nil, err
	}
	return deliveries, nil
}

func (c *EmulatorClient) call(ctx context.Context, method, path string, body, result any) error {
	var reader io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("failed to encode the request of %s %s: %w", method, path, err)
		}
		reader = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.baseURL+path, reader)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}

	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("emulator request %s %s failed: %w", method, path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("failed to read the emulator response of %s %s: %w", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("emulator request %s %s returned status %d: %s", method, path, resp.StatusCode, strings.TrimSpace(string(data)))
	}
	if err := json.Unmarshal(data, result); err != nil {
		return fmt.Errorf("invalid emulator response of %s %s: %w", method, path, err)
	}
	return nil
}
