// Package keboola is a client of the Keboola Storage API: token
// verification, webhooks, and the subscriptions of the Notification service.
// Every call takes a context, has a timeout, is rate limited per stack host
// and returns typed errors that callers test with errors.Is and errors.As.
// The client never puts the token in an error, a log line or a metric.
package keboola

import (
	"context"
	"time"
)

// API is the part of the Storage API that the controllers use. *Client
// implements it for one stack and one token.
type API interface {
	// VerifyToken returns the token's details and the project it belongs to.
	VerifyToken(ctx context.Context) (*TokenInfo, error)

	// ListWebhooks returns every webhook of the project, without secrets.
	ListWebhooks(ctx context.Context) ([]Webhook, error)

	// GetWebhook returns one webhook without its secret. A missing webhook
	// is an error that matches ErrNotFound.
	GetWebhook(ctx context.Context, id string) (*Webhook, error)

	// CreateWebhook creates a webhook and returns it with its signing
	// secret, which the API returns only here. A create is never retried:
	// when its outcome is unknown (a timeout, a reset connection or a server
	// error) the error matches ErrOutcomeUnknown, and the webhook may exist.
	CreateWebhook(ctx context.Context, spec WebhookSpec) (*CreatedWebhook, error)

	// UpdateWebhook changes the fields of update that are set and returns
	// the updated webhook. The signing secret does not change.
	UpdateWebhook(ctx context.Context, id string, update WebhookUpdate) (*Webhook, error)

	// DeleteWebhook deletes a webhook. A webhook that is already gone is
	// not an error.
	DeleteWebhook(ctx context.Context, id string) error

	// DetectWebhookAPI finds out which way of delivering events the stack
	// offers: the webhooks endpoint when it exists, otherwise the
	// Notification service when the Storage API index lists it. A stack
	// with neither gives an error that matches ErrNoWebhookAPI.
	DetectWebhookAPI(ctx context.Context) (*Detection, error)

	// NotificationServiceURL returns the base URL of the Notification
	// service that the stack's Storage API index lists. A stack whose index
	// lists none gives an error that matches ErrNoWebhookAPI.
	NotificationServiceURL(ctx context.Context) (string, error)

	// Notifications returns a client of the Notification service at
	// baseURL, with the same token and limits, such as a URL that
	// DetectWebhookAPI or NotificationServiceURL returned. A URL outside the
	// stack's domain gives an error that matches ErrUntrustedServiceURL.
	Notifications(baseURL string) (NotificationAPI, error)
}

// TokenInfo is the result of a token verification.
type TokenInfo struct {
	// ID is the token's id, which is not a credential.
	ID              string
	Description     string
	IsMasterToken   bool
	CanManageTokens bool
	// Expires is nil for a token that does not expire.
	Expires    *time.Time
	IsExpired  bool
	IsDisabled bool
	Owner      Project
}

// Project is the Keboola project a token belongs to.
type Project struct {
	ID     int64
	Name   string
	Region string
}

// Webhook is a webhook as the API returns it, without its secret.
type Webhook struct {
	ID          string
	Name        string
	URL         string
	Events      []string
	CreatedTime time.Time
}

// CreatedWebhook is the response to a create: the webhook and its signing
// secret.
type CreatedWebhook struct {
	Webhook
	// Secret is the signing secret. The API returns it only once.
	Secret string
}

// WebhookSpec is the body of a create request.
type WebhookSpec struct {
	Name   string
	URL    string
	Events []string
}

// WebhookUpdate is the body of an update request. Nil fields are left out
// of the request and keep their value.
type WebhookUpdate struct {
	Name   *string
	URL    *string
	Events []string
}

// WebhookAPI names the way a stack delivers events to HTTP receivers.
type WebhookAPI string

const (
	// WebhookAPIStorage is the webhooks endpoint of the Storage API: one
	// webhook carries several events, and the API returns its signing
	// secret at creation.
	WebhookAPIStorage WebhookAPI = "StorageWebhooks"
	// WebhookAPINotification is the Notification service: one subscription
	// carries one event, nothing signs the deliveries, and a receiver can
	// trust a delivery only through a secret in its URL.
	WebhookAPINotification WebhookAPI = "NotificationSubscriptions"
)

// Detection is the result of DetectWebhookAPI for one stack.
type Detection struct {
	// API is the backend to use: the webhooks endpoint when the stack has
	// it, otherwise the Notification service.
	API WebhookAPI
	// NotificationURL is the base URL of the Notification service that the
	// Storage API index lists. It is empty when API is WebhookAPIStorage,
	// because the index is then not read.
	NotificationURL string
	// Reason explains in one sentence why API was chosen, for a status
	// message.
	Reason string
}

// NotificationAPI is the part of the Notification service that the
// controllers use. Every subscription carries one event, and none can be
// changed: a change is a new subscription and the deletion of the old one.
type NotificationAPI interface {
	// ListSubscriptions returns every subscription of the project.
	ListSubscriptions(ctx context.Context) ([]Subscription, error)

	// GetSubscription returns one subscription. A missing one is an error
	// that matches ErrNotFound.
	GetSubscription(ctx context.Context, id string) (*Subscription, error)

	// CreateSubscription creates a subscription. A create is never retried:
	// when its outcome is unknown the error matches ErrOutcomeUnknown, and
	// the subscription may exist.
	CreateSubscription(ctx context.Context, spec SubscriptionSpec) (*Subscription, error)

	// DeleteSubscription deletes a subscription. One that is already gone
	// is not an error.
	DeleteSubscription(ctx context.Context, id string) error
}

// Subscription is a subscription of the Notification service.
type Subscription struct {
	ID      string
	Event   string
	Filters []Filter
	// URL is the webhook recipient's URL, empty for other channels.
	URL string
	// ExpiresAt is nil for a subscription that does not expire.
	ExpiresAt *time.Time
}

// SubscriptionSpec is the body of a create request for a webhook recipient.
type SubscriptionSpec struct {
	Event   string
	Filters []Filter
	URL     string
	// ExpiresAt is nil for a subscription that does not expire.
	ExpiresAt *time.Time
}

// Filter limits a subscription to events whose Field compares to Value by
// Operator. An empty Operator means "==".
type Filter struct {
	Field    string
	Value    string
	Operator string
}
