package controller

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	keboolav1 "github.com/keboola/keboola-operator/api/v1alpha1"
	"github.com/keboola/keboola-operator/internal/keboola"
)

// Reasons of KeboolaWebhook Events that no condition uses. Events about a
// condition reuse the condition's reason.
const (
	eventReasonCreated        = "Created"
	eventReasonUpdated        = "Updated"
	eventReasonDriftCorrected = "DriftCorrected"
	eventReasonRecreated      = "Recreated"
	eventReasonRotated        = "Rotated"
	eventReasonSecretReplaced = "SecretReplaced"
	eventReasonRecovered      = "Recovered"
	eventReasonDeleted        = "Deleted"
	eventReasonOrphaned       = "Orphaned"
	eventReasonProjectChanged = "ProjectChanged"

	eventReasonRotationCompleted     = "RotationCompleted"
	eventReasonRolledOut             = "RolledOut"
	eventReasonRolloutTargetNotFound = "RolloutTargetNotFound"
	eventReasonRolloutFailed         = "RolloutFailed"
)

// Reasons of status.pendingCreate: why a webhook is created.
const (
	pendingReasonCreate   = "Create"
	pendingReasonRecreate = "Recreate"
	pendingReasonRotate   = "Rotate"
)

// syncedReadiness is the readiness of a webhook that matches its spec and
// whose signing secret is in the Secret.
func syncedReadiness(webhookID, secretName string) readiness {
	return ready(keboolav1.ReasonSynced,
		fmt.Sprintf("Webhook %q matches the spec and Secret %q contains its signing secret", webhookID, secretName))
}

// pausedReadiness is the readiness of a KeboolaWebhook with the paused
// annotation.
func pausedReadiness() readiness {
	return waiting(keboolav1.ReasonPaused, fmt.Sprintf(
		"Reconciliation is paused by the annotation %s=\"true\". Remove the annotation or set it to \"false\" to resume.",
		keboolav1.AnnotationPaused))
}

// creatingReadiness is the readiness while a webhook is created for reason,
// one of the pendingReason constants.
func creatingReadiness(reason string) readiness {
	switch reason {
	case pendingReasonRotate:
		return progressing(keboolav1.ReasonRotating, "Creating a new webhook with a new signing secret to replace the current one")
	case pendingReasonRecreate:
		return progressing(keboolav1.ReasonCreating, "Creating a new webhook because the webhook was deleted at Keboola")
	default:
		return progressing(keboolav1.ReasonCreating, "Creating the webhook at Keboola")
	}
}

// projectReadiness returns the readiness of a KeboolaWebhook whose project
// is project, and reports whether the project can be used. project is nil
// when the KeboolaProject named name does not exist. name is the project's
// name, or "<namespace>/<name>" for a project in another namespace.
func projectReadiness(name string, project *keboolav1.KeboolaProject) (readiness, bool) {
	switch {
	case project == nil:
		return progressing(keboolav1.ReasonProjectNotReady,
			fmt.Sprintf("KeboolaProject %q not found. Create it, or correct spec.projectRef.", name)), false
	case !project.DeletionTimestamp.IsZero():
		return progressing(keboolav1.ReasonProjectNotReady,
			fmt.Sprintf("KeboolaProject %q is being deleted", name)), false
	case !isReady(project.Status.Conditions, project.Generation) || project.Status.ProjectID == 0:
		message := fmt.Sprintf("KeboolaProject %q is not Ready", name)
		if c := meta.FindStatusCondition(project.Status.Conditions, keboolav1.ConditionReady); c != nil && c.Reason != "" {
			message += fmt.Sprintf(" (reason %s)", c.Reason)
		}
		return progressing(keboolav1.ReasonProjectNotReady, message), false
	}
	return readiness{}, true
}

// apiFailure is the controller's reaction to a failed Storage API request.
type apiFailure struct {
	readiness readiness
	// retryAfter, when positive, is how long to wait before the next
	// attempt, as the API requested.
	retryAfter time.Duration
	// terminal is true when retrying cannot help until the spec or the
	// token changes.
	terminal bool
}

// classifyAPIError turns the failure of action, such as "create the
// webhook", into a readiness. Errors of the client never contain the token.
func classifyAPIError(action string, err error) apiFailure {
	var apiErr *keboola.APIError
	hasAPIError := errors.As(err, &apiErr)

	switch {
	case errors.Is(err, keboola.ErrInvalidRequest):
		message := fmt.Sprintf("Keboola rejected the request to %s, so the spec must change", action)
		if hasAPIError && apiErr.Message != "" {
			message += ": " + apiErr.Message
		}
		return apiFailure{readiness: stalled(keboolav1.ReasonInvalidSpec, message), terminal: true}

	case errors.Is(err, keboola.ErrUnauthorized):
		return apiFailure{readiness: stalled(keboolav1.ReasonUnauthorized, fmt.Sprintf(
			"Keboola rejected the Storage API token (HTTP 401) in the request to %s. Put a valid token into the token Secret of the KeboolaProject.", action)),
			terminal: true}

	case errors.Is(err, keboola.ErrForbidden):
		return apiFailure{readiness: stalled(keboolav1.ReasonForbidden, fmt.Sprintf(
			"The Storage API token lacks the permission to %s (HTTP 403). Use a token that can manage webhooks.", action)),
			terminal: true}

	case errors.Is(err, keboola.ErrRateLimited):
		wait, _ := keboola.RetryAfter(err)
		message := fmt.Sprintf("Keboola rate limited the request to %s", action)
		if wait > 0 {
			message += fmt.Sprintf(". The operator retries after %s", wait.Round(time.Second))
		}
		return apiFailure{readiness: progressing(keboolav1.ReasonRateLimited, message), retryAfter: wait}
	}

	return apiFailure{readiness: progressing(keboolav1.ReasonAPIUnavailable,
		fmt.Sprintf("Failed to %s: %v", action, err))}
}

// isWarningReason reports whether a Ready reason describes a failure that
// deserves a Warning Event when the condition first takes it.
func isWarningReason(reason string) bool {
	switch reason {
	case keboolav1.ReasonInvalidSpec, keboolav1.ReasonUnauthorized, keboolav1.ReasonForbidden,
		keboolav1.ReasonRateLimited, keboolav1.ReasonAPIUnavailable, keboolav1.ReasonSecretConflict,
		keboolav1.ReasonDeletionBlocked, keboolav1.ReasonProjectNotAllowed, keboolav1.ReasonQuotaExceeded:
		return true
	}
	return false
}

// readyReason returns the reason of the Ready condition, or "" without one.
func readyReason(conditions []metav1.Condition) string {
	if c := meta.FindStatusCondition(conditions, keboolav1.ConditionReady); c != nil {
		return c.Reason
	}
	return ""
}

// stalledOnInvalidSpec reports whether the object stopped on an invalid
// spec of generation, which only a new generation can fix. A stop caused by
// spec.allowedEvents of the project does not count, because a change of the
// project can lift it and every pass checks it again.
func stalledOnInvalidSpec(conditions []metav1.Condition, generation int64) bool {
	c := meta.FindStatusCondition(conditions, keboolav1.ConditionStalled)
	return c != nil && c.Status == metav1.ConditionTrue && c.Reason == keboolav1.ReasonInvalidSpec &&
		c.ObservedGeneration == generation && !strings.HasPrefix(c.Message, eventsNotAllowedPrefix) &&
		!strings.HasPrefix(c.Message, webhookAPISpecPrefix)
}

// deletionBlockedReadiness is the readiness of a KeboolaWebhook whose
// deletion needs a Keboola call that cannot be made, for the given cause.
func deletionBlockedReadiness(webhookIDs []string, cause string) readiness {
	return stalled(keboolav1.ReasonDeletionBlocked, fmt.Sprintf(
		"Cannot delete %s at Keboola: %s. Restore the KeboolaProject and its token Secret, "+
			"or set spec.deletionPolicy to Orphan to leave the webhooks at Keboola and finish the deletion",
		describeWebhooks(webhookIDs), cause))
}

// pausedDeletionReadiness is the readiness of a paused KeboolaWebhook that
// is deleted while webhooks remain at Keboola.
func pausedDeletionReadiness(webhookIDs []string) readiness {
	return stalled(keboolav1.ReasonDeletionBlocked, fmt.Sprintf(
		"Cannot delete %s at Keboola while the annotation %s=\"true\" stops every call to Keboola. "+
			"Remove the annotation to delete them, or set spec.deletionPolicy to Orphan to leave them at Keboola",
		describeWebhooks(webhookIDs), keboolav1.AnnotationPaused))
}

// describeWebhooks names webhooks by id for a message, such as
// `webhooks "12", "13"`.
func describeWebhooks(ids []string) string {
	switch len(ids) {
	case 0:
		return "the webhooks of an interrupted create"
	case 1:
		return fmt.Sprintf("webhook %q", ids[0])
	}
	quoted := make([]string, len(ids))
	for i, id := range ids {
		quoted[i] = fmt.Sprintf("%q", id)
	}
	return "webhooks " + strings.Join(quoted, ", ")
}
