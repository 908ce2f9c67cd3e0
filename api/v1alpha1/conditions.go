package v1alpha1

// Condition types. Both kinds report Ready, Reconciling and Stalled so that
// kstatus, and with it Argo CD and Flux, can compute their health:
// Reconciling=True means work is in progress, Stalled=True means only a change
// to the spec or to a referenced Secret can help, and neither means the
// controller has done all it can for the current generation.
const (
	// ConditionReady is True when the object is usable. A KeboolaProject is
	// usable once its token was verified. A KeboolaWebhook is usable once the
	// webhook at Keboola matches the spec and its signing secret is published.
	ConditionReady = "Ready"

	// ConditionReconciling is True while the controller works towards the
	// current spec, including while it waits to retry a transient failure.
	ConditionReconciling = "Reconciling"

	// ConditionStalled is True when the controller stopped because of an
	// error that retrying cannot fix.
	ConditionStalled = "Stalled"

	// ConditionTokenExpiringSoon is True on a KeboolaProject whose token
	// expires within the operator's warning window.
	ConditionTokenExpiringSoon = "TokenExpiringSoon"
)

// Reasons shared by both kinds.
const (
	// ReasonInvalidSpec means the spec is invalid, or the Storage API
	// rejected it as invalid. The message contains the details.
	ReasonInvalidSpec = "InvalidSpec"

	// ReasonUnauthorized means the Storage API rejected the token (HTTP 401).
	ReasonUnauthorized = "Unauthorized"

	// ReasonForbidden means the token lacks a permission (HTTP 403).
	ReasonForbidden = "Forbidden"

	// ReasonRateLimited means the Storage API rate limited the operator
	// (HTTP 429, or 503 during maintenance). The operator waits at least the
	// delay of the API's Retry-After header.
	ReasonRateLimited = "RateLimited"

	// ReasonAPIUnavailable means a request failed with a server error or a
	// network error. The operator retries with backoff.
	ReasonAPIUnavailable = "APIUnavailable"

	// ReasonDeleting means the object is being deleted.
	ReasonDeleting = "Deleting"

	// ReasonDeletionBlocked means deletion waits for something that only a
	// user can provide. The message names it.
	ReasonDeletionBlocked = "DeletionBlocked"
)

// Reasons of KeboolaProject conditions.
const (
	// ReasonVerified means the token was verified for the current generation
	// and the current Secret content.
	ReasonVerified = "Verified"

	// ReasonVerifying means a verification is in progress.
	ReasonVerifying = "Verifying"

	// ReasonSecretNotFound means the token Secret does not exist.
	ReasonSecretNotFound = "SecretNotFound"

	// ReasonSecretKeyMissing means the token Secret has no such key, or the
	// value under it is empty.
	ReasonSecretKeyMissing = "SecretKeyMissing"

	// ReasonProjectMismatch means the token belongs to a project other than
	// spec.expectedProjectID.
	ReasonProjectMismatch = "ProjectMismatch"

	// ReasonTokenExpired means the token's expiry has passed.
	ReasonTokenExpired = "TokenExpired"

	// ReasonTokenDisabled means the token was disabled at Keboola.
	ReasonTokenDisabled = "TokenDisabled"

	// ReasonTokenExpiringSoon means the token expires within the warning
	// window. The message gives the expiry time.
	ReasonTokenExpiringSoon = "TokenExpiringSoon"

	// ReasonTokenNotExpiring means the token has no expiry, or its expiry is
	// further away than the warning window.
	ReasonTokenNotExpiring = "TokenNotExpiring"

	// ReasonNoWebhookAPI means the stack offers no usable way to register
	// webhooks: neither the webhooks endpoint of the Storage API nor a
	// Notification service in its Storage API index, or not the one that
	// spec.webhookAPI selects.
	ReasonNoWebhookAPI = "NoWebhookAPI"

	// ReasonWebhooksRemain means a KeboolaProject being deleted waits until
	// the KeboolaWebhooks that refer to it are gone.
	ReasonWebhooksRemain = "WebhooksRemain"
)

// Reasons of KeboolaWebhook conditions.
const (
	// ReasonSynced means the webhook at Keboola matches the spec and the
	// Secret holds its signing secret.
	ReasonSynced = "Synced"

	// ReasonProjectNotReady means the referenced KeboolaProject does not
	// exist or is not Ready.
	ReasonProjectNotReady = "ProjectNotReady"

	// ReasonProjectNotAllowed means the referenced KeboolaProject, in
	// another namespace, does not allow KeboolaWebhooks from this namespace
	// in its spec.allowedNamespaces. The operator makes no call to Keboola
	// for the object until access is granted, except to delete its webhooks
	// when the object is deleted.
	ReasonProjectNotAllowed = "ProjectNotAllowed"

	// ReasonQuotaExceeded means the referenced KeboolaProject already serves
	// spec.maxWebhooks older KeboolaWebhooks. The operator makes no call to
	// Keboola for the object until a slot is free, except to delete its
	// webhooks when the object is deleted.
	ReasonQuotaExceeded = "QuotaExceeded"

	// ReasonCreating means the webhook is being created at Keboola, or a
	// create that was interrupted is being recovered.
	ReasonCreating = "Creating"

	// ReasonUpdating means the webhook at Keboola differs from the spec and
	// is being updated.
	ReasonUpdating = "Updating"

	// ReasonRotating means a new webhook with a new signing secret replaces
	// the current one.
	ReasonRotating = "Rotating"

	// ReasonSecretConflict means a Secret with the target name exists and
	// belongs to someone else, so the operator does not overwrite it.
	ReasonSecretConflict = "SecretConflict"

	// ReasonPaused means the paused annotation stops every call to Keboola
	// for this object.
	ReasonPaused = "Paused"
)
