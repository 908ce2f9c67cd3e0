package keboola

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// Path templates of the Storage API index and of the Notification service
// endpoints, for errors and metrics. The subscription paths are relative to
// the service's base URL.
const (
	endpointIndex         = "/v2/storage"
	endpointSubscriptions = "/project-subscriptions"
	endpointSubscription  = "/project-subscriptions/{id}"
)

// indexPath is the path of the Storage API index without its list of
// components. The client needs only the services, and the list of every
// component of a stack can be larger than the 1 MiB body limit.
const indexPath = endpointIndex + "?exclude=components"

// notificationServiceID is the id of the Notification service in the
// services list of the Storage API index.
const notificationServiceID = "notification"

// Reasons of a Detection, for status messages.
const (
	reasonStorageWebhooks = "The stack has the webhooks endpoint of the Storage API."
	reasonNotification    = "The stack has no webhooks endpoint, and its Storage API index lists the Notification service."
)

// minRedactedQueryValueBytes is the shortest query value of a receiver URL
// that errors redact on its own. Shorter values, such as "1" or "true", are
// no secrets, and replacing them would garble the API's messages.
const minRedactedQueryValueBytes = 8

var (
	// ErrNoWebhookAPI matches the error of a stack that offers neither the
	// webhooks endpoint nor the Notification service.
	ErrNoWebhookAPI = errors.New("keboola: the stack offers neither the webhooks endpoint nor the Notification service")

	// ErrUntrustedServiceURL matches the error of a Notification service
	// URL that the client will not send the token to. The URL must be an
	// absolute https URL without user info, query or fragment, on the
	// stack's host or on a sibling host in the stack host's parent domain.
	// The error never quotes the URL.
	ErrUntrustedServiceURL = errors.New("keboola: untrusted Notification service URL")
)

// DetectWebhookAPI implements API. It sends GET /v2/storage/webhooks, and
// only when that endpoint is missing (404 or 405) it reads the Storage API
// index. Any other response to the first request means that the endpoint
// exists, except that a 401, a redirect, a retryable failure that outlasted
// the retries and a transport failure are returned as errors. A Notification
// service URL that fails the checks of Notifications gives an error that
// matches ErrUntrustedServiceURL.
func (c *Client) DetectWebhookAPI(ctx context.Context) (*Detection, error) {
	status, err := c.probeWebhooksEndpoint(ctx)
	if err != nil {
		return nil, err
	}
	if status == 0 {
		return &Detection{API: WebhookAPIStorage, Reason: reasonStorageWebhooks}, nil
	}

	serviceURL, err := c.indexedNotificationURL(ctx)
	if err != nil {
		return nil, err
	}
	if serviceURL == "" {
		return nil, fmt.Errorf("%w: GET %s returned %s, and the Storage API index lists no Notification service",
			ErrNoWebhookAPI, endpointWebhooks, statusLine(status))
	}
	return &Detection{API: WebhookAPINotification, NotificationURL: serviceURL, Reason: reasonNotification}, nil
}

// NotificationServiceURL implements API. It reads the Storage API index
// without probing the webhooks endpoint. An index that lists no
// Notification service gives an error that matches ErrNoWebhookAPI, and a
// listed URL that fails the checks of Notifications gives one that matches
// ErrUntrustedServiceURL.
func (c *Client) NotificationServiceURL(ctx context.Context) (string, error) {
	serviceURL, err := c.indexedNotificationURL(ctx)
	if err != nil {
		return "", err
	}
	if serviceURL == "" {
		return "", fmt.Errorf("%w: the Storage API index lists no Notification service", ErrNoWebhookAPI)
	}
	return serviceURL, nil
}

// indexedNotificationURL reads the Storage API index and returns the
// normalized URL of the Notification service that it lists, or "" when it
// lists none.
func (c *Client) indexedNotificationURL(ctx context.Context) (string, error) {
	req := &request{method: http.MethodGet, endpoint: endpointIndex, path: indexPath}
	listed, err := doAndDecode(ctx, c, req, decodeNotificationServiceURL)
	if err != nil || listed == "" {
		return "", err
	}
	serviceURL, _, err := trustedServiceURL(c.baseURL, listed)
	if err != nil {
		return "", fmt.Errorf("%w in the Storage API index: %w", ErrUntrustedServiceURL, err)
	}
	return serviceURL, nil
}

// probeWebhooksEndpoint sends GET /v2/storage/webhooks. It returns 0 when
// the endpoint exists, the status code of a 404 or 405 response, which means
// that the endpoint is missing, or the error of any other failure.
func (c *Client) probeWebhooksEndpoint(ctx context.Context) (int, error) {
	req := &request{method: http.MethodGet, endpoint: endpointWebhooks, path: endpointWebhooks}
	_, err := c.do(ctx, req)
	if err == nil {
		return 0, nil
	}

	// A 2xx response whose body is too large still comes from the endpoint.
	var responseErr *ResponseError
	if errors.As(err, &responseErr) {
		return 0, nil
	}
	var apiErr *APIError
	if !errors.As(err, &apiErr) {
		return 0, err
	}
	switch apiErr.StatusCode {
	case http.StatusNotFound, http.StatusMethodNotAllowed:
		return apiErr.StatusCode, nil
	case http.StatusForbidden:
		// The route exists, and the token may not manage webhooks.
		return 0, nil
	}
	// Other responses, such as a 400 from a proxy, prove nothing about the
	// route, so the detection is retried rather than guessed.
	return 0, err
}

// Notifications implements API. The returned client sends the client's token
// to the service and shares the Factory's options, metrics and the rate
// limiter of the service's host. baseURL must pass the checks that
// ErrUntrustedServiceURL describes, so the URL that DetectWebhookAPI
// returned does.
func (c *Client) Notifications(baseURL string) (NotificationAPI, error) {
	serviceURL, origin, err := trustedServiceURL(c.baseURL, baseURL)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUntrustedServiceURL, err)
	}

	service := *c
	service.baseURL = serviceURL
	service.serviceName = "Notification service"
	service.host = c.factory.hostLimiter(origin)
	return &notificationClient{client: &service}, nil
}

// notificationClient is a client of the Notification service. Its *Client
// has the service's base URL and rate limiter.
type notificationClient struct {
	client *Client
}

var _ NotificationAPI = (*notificationClient)(nil)

// ListSubscriptions implements NotificationAPI.
func (n *notificationClient) ListSubscriptions(ctx context.Context) ([]Subscription, error) {
	req := &request{method: http.MethodGet, endpoint: endpointSubscriptions, path: endpointSubscriptions}
	return doAndDecode(ctx, n.client, req, decodeSubscriptionList)
}

// GetSubscription implements NotificationAPI.
func (n *notificationClient) GetSubscription(ctx context.Context, id string) (*Subscription, error) {
	req, err := subscriptionRequest(http.MethodGet, id)
	if err != nil {
		return nil, err
	}
	return doAndDecode(ctx, n.client, req, decodeSubscription)
}

// CreateSubscription implements NotificationAPI. Where the message of an
// error response repeats spec.URL, its query or a query value of 8 bytes or
// more, the error has "[REDACTED]" in its place. The error never quotes the
// request body.
func (n *notificationClient) CreateSubscription(ctx context.Context, spec SubscriptionSpec) (*Subscription, error) {
	body, err := json.Marshal(newSubscriptionBody(spec))
	if err != nil {
		// The error of Marshal names a type, never a value of the body.
		return nil, fmt.Errorf("keboola: failed to encode subscription: %w", err)
	}

	req := &request{
		method:   http.MethodPost,
		endpoint: endpointSubscriptions,
		path:     endpointSubscriptions,
		body:     body,
		redact:   receiverURLSecrets(spec.URL),
	}
	return doAndDecode(ctx, n.client, req, decodeSubscription)
}

// DeleteSubscription implements NotificationAPI. A 404 response is success.
func (n *notificationClient) DeleteSubscription(ctx context.Context, id string) error {
	req, err := subscriptionRequest(http.MethodDelete, id)
	if err != nil {
		return err
	}
	_, err = n.client.do(ctx, req)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

// subscriptionRequest returns a request to /project-subscriptions/{id}. An
// empty id is an error that matches ErrInvalidRequest.
func subscriptionRequest(method, id string) (*request, error) {
	if id == "" {
		return nil, fmt.Errorf("%w: %s %s: the subscription id is empty", ErrInvalidRequest, method, endpointSubscription)
	}
	return &request{
		method:   method,
		endpoint: endpointSubscription,
		path:     endpointSubscriptions + "/" + url.PathEscape(id),
	}, nil
}

// subscriptionBody is the body of POST /project-subscriptions.
type subscriptionBody struct {
	Event     string           `json:"event"`
	Filters   []filterBody     `json:"filters,omitempty"`
	Recipient webhookRecipient `json:"recipient"`
	ExpiresAt string           `json:"expiresAt,omitempty"`
}

type filterBody struct {
	Field    string `json:"field"`
	Value    string `json:"value"`
	Operator string `json:"operator,omitempty"`
}

type webhookRecipient struct {
	Channel string `json:"channel"`
	URL     string `json:"url"`
}

// newSubscriptionBody returns the request body for spec. It leaves out empty
// filters, empty operators and a nil expiry, and sends an expiry in RFC 3339
// with whole seconds.
func newSubscriptionBody(spec SubscriptionSpec) subscriptionBody {
	body := subscriptionBody{
		Event:     spec.Event,
		Recipient: webhookRecipient{Channel: "webhook", URL: spec.URL},
	}
	for _, filter := range spec.Filters {
		body.Filters = append(body.Filters, filterBody(filter))
	}
	if spec.ExpiresAt != nil {
		body.ExpiresAt = spec.ExpiresAt.Format(time.RFC3339)
	}
	return body
}

// receiverURLSecrets returns the forms in which an API message may repeat a
// receiver URL or its secret: the URL, its query raw and decoded, each query
// value of at least minRedactedQueryValueBytes bytes, and the password of its
// user info.
func receiverURLSecrets(raw string) []string {
	secrets := []string{raw}
	u, err := url.Parse(raw)
	if err != nil {
		return secrets
	}
	if u.RawQuery != "" {
		secrets = append(secrets, u.RawQuery)
		if decoded, err := url.QueryUnescape(u.RawQuery); err == nil {
			secrets = append(secrets, decoded)
		}
		for _, values := range u.Query() {
			for _, value := range values {
				if len(value) >= minRedactedQueryValueBytes {
					secrets = append(secrets, value)
				}
			}
		}
	}
	if password, ok := u.User.Password(); ok {
		secrets = append(secrets, password)
	}
	return secrets
}
