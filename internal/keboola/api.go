// Package keboola is a client of the Keboola Storage API: token verification
// and webhooks. Every call takes a context, has a timeout, is rate limited per
// stack host and returns typed errors that callers test with errors.Is and
// errors.As. The client never puts the token in an error, a log line or a
// metric.
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
