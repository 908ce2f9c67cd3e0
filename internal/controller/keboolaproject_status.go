package controller

import (
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	keboolav1 "github.com/keboola/keboola-operator/api/v1alpha1"
	"github.com/keboola/keboola-operator/internal/keboola"
)

// This file turns the facts that one reconcile of a KeboolaProject recorded
// into status fields, conditions, events and the time of the next
// verification. No function here does I/O or reads the clock. Each works only
// on its arguments, so table tests cover them without a cluster.

// tokenCheck is the outcome of reading and verifying the token of a
// KeboolaProject in one pass.
type tokenCheck struct {
	// stackURL is the normalised spec.stackURL, and empty when it is
	// invalid.
	stackURL string

	// fingerprint identifies the token read from the Secret, and is empty
	// when the Secret provided no token or was not read.
	fingerprint string

	// skipped is true when the status already describes this token and
	// generation, so the Storage API was not called.
	skipped bool

	// info is the Storage API's response, and nil when the API was not
	// called or the call failed.
	info *keboola.TokenInfo

	// detection is the webhook API chosen in this pass, and nil when the
	// recorded one still applies or the token could not be verified.
	detection *keboola.Detection

	// err is the reason the pass has no response from the Storage API. It
	// is an invalid stack URL, a Secret that cannot provide a token, a
	// token that the client rejects, or a failed request.
	err error
}

// tokenFacts are the details of a token that decide whether it can be used.
type tokenFacts struct {
	projectID   int64
	projectName string
	tokenID     string
	expiresAt   *time.Time
	// expired and disabled are the flags of the Storage API's response. A
	// status has no such flags, because a project is never Ready with
	// either of them set.
	expired  bool
	disabled bool
}

func factsFromResponse(info *keboola.TokenInfo) tokenFacts {
	return tokenFacts{
		projectID:   info.Owner.ID,
		projectName: info.Owner.Name,
		tokenID:     info.ID,
		expiresAt:   info.Expires,
		expired:     info.IsExpired,
		disabled:    info.IsDisabled,
	}
}

func factsFromStatus(status *keboolav1.KeboolaProjectStatus) tokenFacts {
	facts := tokenFacts{
		projectID:   status.ProjectID,
		projectName: status.ProjectName,
		tokenID:     status.TokenID,
	}
	if status.TokenExpiresAt != nil {
		expires := status.TokenExpiresAt.Time
		facts.expiresAt = &expires
	}
	return facts
}

// tokenVerdictReasons are the reasons of a Stalled condition that describe
// the token itself. Checking the same token again for the same generation
// gives the same verdict, so such a token is not sent to the Storage API
// again until the Secret's content or the spec changes.
var tokenVerdictReasons = map[string]bool{
	keboolav1.ReasonUnauthorized:    true,
	keboolav1.ReasonForbidden:       true,
	keboolav1.ReasonInvalidSpec:     true,
	keboolav1.ReasonProjectMismatch: true,
	keboolav1.ReasonTokenDisabled:   true,
	keboolav1.ReasonTokenExpired:    true,
}

// verificationRecord is a successful verification that the reconciler keeps
// in memory. The status cannot hold its time, because writing it after every
// periodic verification would make a healthy project write its status once
// per resync period.
type verificationRecord struct {
	uid         string
	generation  int64
	fingerprint string
	at          time.Time
}

// canSkipVerification reports whether the status of project describes the
// token with the given fingerprint well enough to skip the Storage API. That
// is the case when the project is Ready and the last successful
// verification, last, is younger than resync, or resync is zero because
// periodic verification is off. It is also the case when the token got a
// terminal verdict for the current generation.
func canSkipVerification(project *keboolav1.KeboolaProject, fingerprint string, last verificationRecord, now time.Time, resync time.Duration) bool {
	status := &project.Status
	if status.ObservedGeneration != project.Generation || status.TokenFingerprint != fingerprint {
		return false
	}

	readyCondition := meta.FindStatusCondition(status.Conditions, keboolav1.ConditionReady)
	if readyCondition == nil || readyCondition.ObservedGeneration != project.Generation {
		return false
	}
	if readyCondition.Status == metav1.ConditionTrue {
		return last.uid == string(project.UID) &&
			last.generation == project.Generation &&
			last.fingerprint == fingerprint &&
			(resync <= 0 || now.Sub(last.at) < resync)
	}

	stalledCondition := meta.FindStatusCondition(status.Conditions, keboolav1.ConditionStalled)
	return stalledCondition != nil &&
		stalledCondition.Status == metav1.ConditionTrue &&
		stalledCondition.ObservedGeneration == project.Generation &&
		tokenVerdictReasons[stalledCondition.Reason]
}

// tokenReadiness returns the readiness of project after check. It reads the
// status as it was before check is recorded in it.
func tokenReadiness(project *keboolav1.KeboolaProject, check tokenCheck, now time.Time) readiness {
	switch {
	case check.err != nil:
		return checkErrorReadiness(project, check)
	case check.info != nil:
		return factsReadiness(project, factsFromResponse(check.info), now)
	}

	// The Storage API was skipped, so the previous verdict still holds. A
	// Ready project is checked against the clock, because its token may
	// have expired since.
	stalledCondition := meta.FindStatusCondition(project.Status.Conditions, keboolav1.ConditionStalled)
	if stalledCondition != nil && stalledCondition.Status == metav1.ConditionTrue {
		return stalled(stalledCondition.Reason, stalledCondition.Message)
	}
	return factsReadiness(project, factsFromStatus(&project.Status), now)
}

// factsReadiness returns the readiness of project for a token with facts.
func factsReadiness(project *keboolav1.KeboolaProject, facts tokenFacts, now time.Time) readiness {
	secretName := project.Spec.TokenSecretRef.Name
	expected := project.Spec.ExpectedProjectID

	switch {
	case expected != nil && facts.projectID != *expected:
		return stalled(keboolav1.ReasonProjectMismatch, fmt.Sprintf(
			"The token in Secret %q belongs to project %d, but spec.expectedProjectID is %d. Store a token of project %d in the Secret, or correct spec.expectedProjectID.",
			secretName, facts.projectID, *expected, *expected))

	case facts.disabled:
		return stalled(keboolav1.ReasonTokenDisabled, fmt.Sprintf(
			"The token %s in Secret %q is disabled at Keboola. Store an enabled token in the Secret.",
			facts.tokenID, secretName))

	case facts.expired || (facts.expiresAt != nil && !now.Before(*facts.expiresAt)):
		expiry := "an unknown time"
		if facts.expiresAt != nil {
			expiry = facts.expiresAt.UTC().Format(time.RFC3339)
		}
		return stalled(keboolav1.ReasonTokenExpired, fmt.Sprintf(
			"The token %s in Secret %q expired at %s. Store a new token in the Secret.",
			facts.tokenID, secretName, expiry))
	}

	return ready(keboolav1.ReasonVerified, fmt.Sprintf(
		"Token %s is valid for project %d %q.", facts.tokenID, facts.projectID, facts.projectName))
}

// checkErrorReadiness returns the readiness of project for a check that
// failed with check.err.
func checkErrorReadiness(project *keboolav1.KeboolaProject, check tokenCheck) readiness {
	err := check.err
	secretName := project.Spec.TokenSecretRef.Name

	switch {
	case errors.Is(err, keboola.ErrInvalidStackURL):
		problem := strings.TrimPrefix(err.Error(), keboola.ErrInvalidStackURL.Error()+": ")
		return stalled(keboolav1.ReasonInvalidSpec, "spec.stackURL is not a valid stack URL: "+problem+".")

	case errors.Is(err, errTokenSecretNotFound):
		return stalled(keboolav1.ReasonSecretNotFound, err.Error())

	case errors.Is(err, errTokenKeyMissing):
		return stalled(keboolav1.ReasonSecretKeyMissing, err.Error())

	case errors.Is(err, keboola.ErrNoWebhookAPI) && project.Spec.WebhookAPI != "":
		return stalled(keboolav1.ReasonNoWebhookAPI, fmt.Sprintf(
			"The stack at %s does not offer %s, which spec.webhookAPI selects. "+
				"Remove spec.webhookAPI to let the operator detect what the stack offers, or check spec.stackURL.",
			check.stackURL, project.Spec.WebhookAPI))

	case errors.Is(err, keboola.ErrNoWebhookAPI):
		return stalled(keboolav1.ReasonNoWebhookAPI, fmt.Sprintf(
			"The stack at %s has no webhooks endpoint, and its Storage API index lists no Notification service, so webhooks cannot be registered. "+
				"Check spec.stackURL.", check.stackURL))

	case errors.Is(err, keboola.ErrUntrustedServiceURL):
		return stalled(keboolav1.ReasonNoWebhookAPI, fmt.Sprintf(
			"The Storage API index of the stack at %s lists a Notification service outside the stack's domain, or without https, so the operator does not send the token there. "+
				"Check spec.stackURL.", check.stackURL))

	case isTransientDetectionError(err):
		return progressing(keboolav1.ReasonAPIUnavailable, fmt.Sprintf(
			"The token is valid, but finding out the webhook API of the stack at %s failed (%s). It is retried with backoff.",
			check.stackURL, describeAPIError(err)))

	case errors.Is(err, keboola.ErrInvalidToken):
		// The client's reason names a length or a character class, never
		// the token.
		problem := strings.TrimPrefix(err.Error(), keboola.ErrInvalidToken.Error()+": ")
		return stalled(keboolav1.ReasonUnauthorized, fmt.Sprintf(
			"The value under key %q of Secret %q cannot be a Storage API token: %s. Store a valid token in the Secret.",
			tokenSecretKey(project.Spec.TokenSecretRef), secretName, problem))

	case errors.Is(err, keboola.ErrUnauthorized):
		return stalled(keboolav1.ReasonUnauthorized, fmt.Sprintf(
			"The Storage API at %s rejected the token in Secret %q (%s). Store a valid token of a project on this stack in the Secret.",
			check.stackURL, secretName, describeAPIError(err)))

	case errors.Is(err, keboola.ErrForbidden):
		return stalled(keboolav1.ReasonForbidden, fmt.Sprintf(
			"The Storage API at %s denied the token in Secret %q (%s). Store a token with the required permissions in the Secret.",
			check.stackURL, secretName, describeAPIError(err)))

	case errors.Is(err, keboola.ErrInvalidRequest), errors.Is(err, keboola.ErrNotFound):
		return stalled(keboolav1.ReasonInvalidSpec, fmt.Sprintf(
			"The Storage API at %s rejected the token verification request (%s). Check that spec.stackURL names a Keboola stack.",
			check.stackURL, describeAPIError(err)))

	case errors.Is(err, keboola.ErrRateLimited):
		return progressing(keboolav1.ReasonRateLimited, fmt.Sprintf(
			"The Storage API at %s is rate limiting requests or in maintenance (%s). The verification is retried after the wait it asked for.",
			check.stackURL, describeAPIError(err)))
	}

	return progressing(keboolav1.ReasonAPIUnavailable, fmt.Sprintf(
		"The Storage API at %s is unavailable (%s). The verification is retried with backoff.",
		check.stackURL, describeAPIError(err)))
}

// isTransientDetectionError reports whether err is a failed detection of
// the webhook API that neither the stack's offer nor the token explains, such
// as an unexpected 400 or 404 of the Storage API index, and that another
// attempt may therefore fix.
func isTransientDetectionError(err error) bool {
	var detection *detectionError
	return errors.As(err, &detection) &&
		!errors.Is(err, keboola.ErrNoWebhookAPI) && !errors.Is(err, keboola.ErrUntrustedServiceURL) &&
		!errors.Is(err, keboola.ErrUnauthorized) && !errors.Is(err, keboola.ErrForbidden) &&
		!errors.Is(err, keboola.ErrRateLimited)
}

// describeAPIError returns a short description of a failed Storage API
// request for a condition message. It leaves out the exception id, which
// changes with every request and would make each retry write the status.
// No part of it can contain the token, because the client's errors never
// contain it.
func describeAPIError(err error) string {
	var apiErr *keboola.APIError
	if errors.As(err, &apiErr) {
		if apiErr.Maintenance {
			return fmt.Sprintf("HTTP %d, maintenance", apiErr.StatusCode)
		}
		if apiErr.Message != "" {
			return fmt.Sprintf("HTTP %d: %q", apiErr.StatusCode, apiErr.Message)
		}
		return fmt.Sprintf("HTTP %d", apiErr.StatusCode)
	}

	var transportErr *keboola.TransportError
	if errors.As(err, &transportErr) {
		if transportErr.TimedOut {
			return "the request timed out"
		}
		return fmt.Sprintf("the request failed: %v", transportErr.Err)
	}

	var throttledErr *keboola.ThrottledError
	if errors.As(err, &throttledErr) {
		return "the request was held back by the rate limit of the stack"
	}

	var responseErr *keboola.ResponseError
	if errors.As(err, &responseErr) {
		return fmt.Sprintf("HTTP %d with an invalid response body", responseErr.StatusCode)
	}
	return err.Error()
}

// recordTokenCheck records in status what check learned about the token.
// verdict is the readiness computed from check, and wasReady reports whether
// the status was Ready for the current generation before this pass.
//
// The token details in status (projectID to lastVerifiedTime) always describe
// the token whose fingerprint is tokenFingerprint. A transient failure
// changes none of them, so the last good details stay visible.
func recordTokenCheck(status *keboolav1.KeboolaProjectStatus, check tokenCheck, verdict readiness, wasReady bool, now time.Time) {
	if check.stackURL != "" {
		status.StackURL = check.stackURL
	}

	switch {
	case check.info != nil:
		newToken := status.TokenFingerprint != check.fingerprint
		before := *status
		setTokenDetails(status, check.info)
		status.TokenFingerprint = check.fingerprint
		changed := newToken || !sameTokenDetails(&before, status)

		switch {
		case verdict.state == stateReady && (changed || !wasReady):
			status.LastVerifiedTime = &metav1.Time{Time: now}
		case verdict.state != stateReady && newToken:
			status.LastVerifiedTime = nil
		}

	case check.fingerprint != "" && !check.skipped && verdict.state == stateStalled:
		// The API, or the client, rejected the token without returning its
		// details. Details recorded for an earlier token no longer apply.
		if status.TokenFingerprint != check.fingerprint {
			clearTokenDetails(status)
			status.TokenFingerprint = check.fingerprint
		}
	}
}

// recordWebhookAPI records the webhook API that check chose, if any.
func recordWebhookAPI(status *keboolav1.KeboolaProjectStatus, check tokenCheck) {
	d := check.detection
	if d == nil || check.err != nil {
		return
	}
	status.WebhookAPI = keboolav1.WebhookAPI(d.API)
	status.WebhookAPIMessage = d.Reason
	// A URL found before stays after a move to the webhooks endpoint, so
	// that the subscriptions made before can still be deleted.
	if d.NotificationURL != "" {
		status.NotificationServiceURL = d.NotificationURL
	}
}

func setTokenDetails(status *keboolav1.KeboolaProjectStatus, info *keboola.TokenInfo) {
	status.ProjectID = info.Owner.ID
	status.ProjectName = info.Owner.Name
	status.Region = info.Owner.Region
	status.TokenID = info.ID
	status.TokenDescription = info.Description
	status.TokenExpiresAt = nil
	if info.Expires != nil {
		status.TokenExpiresAt = &metav1.Time{Time: *info.Expires}
	}
}

func clearTokenDetails(status *keboolav1.KeboolaProjectStatus) {
	status.ProjectID = 0
	status.ProjectName = ""
	status.Region = ""
	status.TokenID = ""
	status.TokenDescription = ""
	status.TokenExpiresAt = nil
	status.LastVerifiedTime = nil
}

func sameTokenDetails(a, b *keboolav1.KeboolaProjectStatus) bool {
	sameExpiry := (a.TokenExpiresAt == nil) == (b.TokenExpiresAt == nil)
	if sameExpiry && a.TokenExpiresAt != nil {
		sameExpiry = a.TokenExpiresAt.Equal(b.TokenExpiresAt)
	}
	return sameExpiry &&
		a.ProjectID == b.ProjectID &&
		a.ProjectName == b.ProjectName &&
		a.Region == b.Region &&
		a.TokenID == b.TokenID &&
		a.TokenDescription == b.TokenDescription
}

// hasTokenDetails reports whether status describes a token that the Storage
// API returned details for.
func hasTokenDetails(status *keboolav1.KeboolaProjectStatus) bool {
	return status.TokenID != "" || status.ProjectID != 0
}

// tokenExpiryCondition returns the TokenExpiringSoon condition for the token
// that status describes, or nil when status has no token details.
func tokenExpiryCondition(status *keboolav1.KeboolaProjectStatus, generation int64, now time.Time, warning time.Duration) *metav1.Condition {
	if !hasTokenDetails(status) {
		return nil
	}
	condition := &metav1.Condition{
		Type:               keboolav1.ConditionTokenExpiringSoon,
		ObservedGeneration: generation,
	}

	if status.TokenExpiresAt == nil {
		condition.Status = metav1.ConditionFalse
		condition.Reason = keboolav1.ReasonTokenNotExpiring
		condition.Message = "The token does not expire."
		return condition
	}

	expires := status.TokenExpiresAt.Time
	expiry := expires.UTC().Format(time.RFC3339)
	switch {
	case !now.Before(expires):
		condition.Status = metav1.ConditionTrue
		condition.Reason = keboolav1.ReasonTokenExpired
		condition.Message = fmt.Sprintf("The token expired at %s.", expiry)
	case !now.Before(expires.Add(-warning)):
		condition.Status = metav1.ConditionTrue
		condition.Reason = keboolav1.ReasonTokenExpiringSoon
		condition.Message = fmt.Sprintf("The token expires at %s. Store a new token in the Secret before then.", expiry)
	default:
		condition.Status = metav1.ConditionFalse
		condition.Reason = keboolav1.ReasonTokenNotExpiring
		condition.Message = fmt.Sprintf("The token expires at %s, more than %s from now.", expiry, warning)
	}
	return condition
}

// setTokenExpiryCondition sets or removes the TokenExpiringSoon condition.
func setTokenExpiryCondition(status *keboolav1.KeboolaProjectStatus, generation int64, now time.Time, warning time.Duration) {
	condition := tokenExpiryCondition(status, generation, now, warning)
	if condition == nil {
		meta.RemoveStatusCondition(&status.Conditions, keboolav1.ConditionTokenExpiringSoon)
		return
	}
	meta.SetStatusCondition(&status.Conditions, *condition)
}

// nextVerification returns when a Ready project is to be reconciled again:
// after resync, or sooner when the token's expiry warning window starts or
// the token expires before that. A resync of zero turns periodic
// verification off, and zero is returned when nothing is left to wait for.
func nextVerification(status *keboolav1.KeboolaProjectStatus, now time.Time, resync, warning time.Duration) time.Duration {
	next := max(resync, 0)
	if status.TokenExpiresAt == nil {
		return next
	}
	expires := status.TokenExpiresAt.Time
	for _, at := range []time.Time{expires.Add(-warning), expires} {
		if wait := at.Sub(now); wait > 0 && (next == 0 || wait < next) {
			next = wait
		}
	}
	return next
}

// webhooksRemainReadiness returns the readiness of a KeboolaProject that is
// being deleted while count KeboolaWebhooks still refer to it.
func webhooksRemainReadiness(count int) readiness {
	noun := "KeboolaWebhooks refer"
	if count == 1 {
		noun = "KeboolaWebhook refers"
	}
	return waiting(keboolav1.ReasonWebhooksRemain, fmt.Sprintf(
		"Deletion waits because %d %s to this project. Delete them; if their webhooks cannot be deleted at Keboola, set spec.deletionPolicy to Orphan on them first.",
		count, noun))
}

// projectEvent is an Event that a status transition calls for.
type projectEvent struct {
	eventType string
	reason    string
	action    string
	note      string
}

// Actions of the Events of a KeboolaProject.
const (
	actionVerifyToken = "VerifyToken"
	actionDelete      = "Delete"
)

// transitionEvents returns the Events that the change of a KeboolaProject's
// status from before to after calls for. An unchanged status calls for none.
// A Warning Event carries the reason and message of the condition it
// explains.
func transitionEvents(before, after *keboolav1.KeboolaProjectStatus) []projectEvent {
	var events []projectEvent

	readyBefore := meta.FindStatusCondition(before.Conditions, keboolav1.ConditionReady)
	readyAfter := meta.FindStatusCondition(after.Conditions, keboolav1.ConditionReady)
	if readyAfter != nil && readyAfter.Status == metav1.ConditionTrue {
		becameReady := readyBefore == nil || readyBefore.Status != metav1.ConditionTrue
		tokenChanged := before.ProjectID != after.ProjectID || before.TokenFingerprint != after.TokenFingerprint
		if becameReady || tokenChanged {
			events = append(events, projectEvent{corev1.EventTypeNormal, keboolav1.ReasonVerified, actionVerifyToken, readyAfter.Message})
		}
	}

	stalledBefore := meta.FindStatusCondition(before.Conditions, keboolav1.ConditionStalled)
	stalledAfter := meta.FindStatusCondition(after.Conditions, keboolav1.ConditionStalled)
	if isTrueWithNewReason(stalledBefore, stalledAfter) {
		events = append(events, projectEvent{corev1.EventTypeWarning, stalledAfter.Reason, actionVerifyToken, stalledAfter.Message})
	}

	expiryBefore := meta.FindStatusCondition(before.Conditions, keboolav1.ConditionTokenExpiringSoon)
	expiryAfter := meta.FindStatusCondition(after.Conditions, keboolav1.ConditionTokenExpiringSoon)
	if isTrueWithNewReason(expiryBefore, expiryAfter) && expiryAfter.Reason == keboolav1.ReasonTokenExpiringSoon {
		events = append(events, projectEvent{corev1.EventTypeWarning, keboolav1.ReasonTokenExpiringSoon, actionVerifyToken, expiryAfter.Message})
	}

	if readyAfter != nil && readyAfter.Reason == keboolav1.ReasonWebhooksRemain &&
		(readyBefore == nil || readyBefore.Reason != keboolav1.ReasonWebhooksRemain) {
		events = append(events, projectEvent{corev1.EventTypeNormal, keboolav1.ReasonWebhooksRemain, actionDelete, readyAfter.Message})
	}
	return events
}

// isTrueWithNewReason reports whether after is True and before was absent,
// not True, or True for another reason.
func isTrueWithNewReason(before, after *metav1.Condition) bool {
	if after == nil || after.Status != metav1.ConditionTrue {
		return false
	}
	return before == nil || before.Status != metav1.ConditionTrue || before.Reason != after.Reason
}
