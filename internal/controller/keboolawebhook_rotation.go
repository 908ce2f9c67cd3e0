package controller

import (
	"context"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log"

	keboolav1 "github.com/keboola/keboola-operator/api/v1alpha1"
)

// A rotation replaces the current webhook with a new one that has a new
// signing secret, without a moment in which receivers reject the deliveries
// of the webhook that Keboola still sends. Its phases, recorded in
// status.rotation:
//
//  1. Publishing: createWebhook records the rotation together with
//     status.pendingCreate, creates the new webhook, and writes its secret
//     to the Secret under signingSecret and the current secret under
//     previousSigningSecret.
//  2. Overlapping: the status update that commits the new webhook moves the
//     previous one to status.retiredWebhookIDs, where deleteRetiredWebhooks
//     leaves it alone, and sets overlapUntil to the end of the grace period
//     (Options.RotationGracePeriod). Both webhooks deliver every event, and
//     receivers that read both keys accept both.
//  3. Retiring: once overlapUntil has passed, retireRotation deletes the
//     previous webhook at Keboola, then removes previousSigningSecret from
//     the Secret, then clears status.rotation.
//
// Every step can be repeated after a crash: a webhook that is already gone
// counts as deleted, and the keys are removed only while they name the
// previous webhook of this rotation.

// previousSecret is a signing secret that the Secret keeps under
// previousSigningSecret, and the webhook that signs with it.
type previousSecret struct {
	webhookID string
	value     []byte
}

// currentSecretOf returns the signing secret of the current webhook when
// secret holds it, and nil when it does not, for example because the Secret
// was deleted or edited.
func currentSecretOf(secret *corev1.Secret, status *keboolav1.KeboolaWebhookStatus) *previousSecret {
	if !secretHolds(secret, status) {
		return nil
	}
	return &previousSecret{webhookID: status.WebhookID, value: secret.Data[keboolav1.SecretKeySigningSecret]}
}

// storedPreviousSecret returns the previous signing secret that secret
// holds, or nil.
func storedPreviousSecret(secret *corev1.Secret) *previousSecret {
	if secret == nil {
		return nil
	}
	id := string(secret.Data[keboolav1.SecretKeyPreviousWebhookID])
	value := secret.Data[keboolav1.SecretKeyPreviousSigningSecret]
	if id == "" || len(value) == 0 {
		return nil
	}
	return &previousSecret{webhookID: id, value: value}
}

// secretToKeep returns what the Secret keeps under previousSigningSecret
// when a webhook is created for reason: the current secret for a rotation,
// and for a recreate the previous secret of a rotation in progress, whose
// webhook still delivers. A first create keeps nothing.
func secretToKeep(p *webhookPass, reason string) *previousSecret {
	status := &p.wh.Status
	switch {
	case reason == pendingReasonRotate && status.WebhookID == "" && status.WebhookAPI == keboolav1.WebhookAPINotificationSubscriptions:
		// The secret of the Notification service subscriptions that the
		// webhook replaces. No webhook id goes with it.
		if value := mintedSecretOf(p.secret, keboolav1.SecretKeySigningSecret, status.SecretFingerprint); value != nil {
			return &previousSecret{value: value}
		}
		return nil
	}
	switch reason {
	case pendingReasonRotate:
		return currentSecretOf(p.secret, &p.wh.Status)
	case pendingReasonRecreate:
		return storedPreviousSecret(p.secret)
	}
	return nil
}

// beginRotation records in status that a rotation replaces the current
// webhook, whose secret the Secret keeps as previous, or loses when
// previous is nil. A rotation that was still overlapping ends here: its
// previous webhook loses its key in the Secret with the next write and is
// deleted with the other retired webhooks.
func beginRotation(status *keboolav1.KeboolaWebhookStatus, previous *previousSecret, now time.Time) {
	rotation := &keboolav1.RotationStatus{
		Phase:             keboolav1.RotationPhasePublishing,
		PreviousWebhookID: status.WebhookID,
		StartedTime:       metav1.NewTime(now),
	}
	if previous != nil {
		rotation.PreviousSecretFingerprint = fingerprint(previous.value)
	}
	status.Rotation = rotation
}

// startOverlap moves a rotation from Publishing to Overlapping once its new
// webhook is committed. It changes nothing in any other phase.
func startOverlap(status *keboolav1.KeboolaWebhookStatus, now time.Time, grace time.Duration) {
	if status.Rotation == nil || status.Rotation.Phase != keboolav1.RotationPhasePublishing {
		return
	}
	// The API server stores whole seconds, so the end is rounded up, never
	// down, to keep the grace period at least as long as configured.
	end := now.Add(grace)
	if rounded := end.Truncate(time.Second); !rounded.Equal(end) {
		end = rounded.Add(time.Second)
	}
	until := metav1.NewTime(end)
	status.Rotation.Phase = keboolav1.RotationPhaseOverlapping
	status.Rotation.OverlapUntil = &until
}

// abandonPublishing clears a rotation whose new webhook was never
// committed, so that the next pass starts it again if it is still needed.
//
// NOTE: an abandoned rotation may have replaced an overlapping one. When
// spec.rotationToken is then set back, the older previous webhook is deleted
// with the other retired webhooks. Its secret stays in the Secret under
// previousSigningSecret until the next rotation replaces it.
func abandonPublishing(status *keboolav1.KeboolaWebhookStatus) {
	if status.Rotation != nil && status.Rotation.Phase == keboolav1.RotationPhasePublishing {
		status.Rotation = nil
	}
}

// adoptRotation sets the rotation of a webhook that recoverCreates adopts
// in place of previousID. The adopted create was a rotation when status
// recorded one, or when the Secret keeps the secret of previousID as
// previous, which only a rotation writes. A previous secret that the Secret
// keeps but status did not record is recorded now.
func adoptRotation(status *keboolav1.KeboolaWebhookStatus, secret *corev1.Secret, previousID string, now time.Time, grace time.Duration) {
	stored := storedPreviousSecret(secret)
	keptPrevious := stored != nil && stored.webhookID == previousID && previousID != ""
	if status.Rotation == nil || status.Rotation.Phase != keboolav1.RotationPhasePublishing {
		if !keptPrevious {
			return
		}
		status.Rotation = &keboolav1.RotationStatus{
			Phase:             keboolav1.RotationPhasePublishing,
			PreviousWebhookID: previousID,
			StartedTime:       metav1.NewTime(now),
		}
	}
	if keptPrevious {
		status.Rotation.PreviousSecretFingerprint = fingerprint(stored.value)
	}
	startOverlap(status, now, grace)
}

// overlapProtects reports whether id is the previous webhook of a rotation
// whose grace period has not ended, which deleteRetiredWebhooks must keep.
func overlapProtects(status *keboolav1.KeboolaWebhookStatus, id string) bool {
	return status.Rotation != nil && status.Rotation.PreviousWebhookID == id &&
		status.Rotation.Phase != keboolav1.RotationPhaseRetiring
}

// overlapRemaining returns how long the grace period of the rotation in
// status still lasts at now, and false when no rotation is overlapping.
func overlapRemaining(status *keboolav1.KeboolaWebhookStatus, now time.Time) (time.Duration, bool) {
	rotation := status.Rotation
	if rotation == nil || rotation.Phase != keboolav1.RotationPhaseOverlapping {
		return 0, false
	}
	if rotation.OverlapUntil == nil {
		return 0, true
	}
	return max(0, rotation.OverlapUntil.Sub(now)), true
}

// rotationAwareSyncedReadiness is the readiness of a webhook that matches
// its spec. While a rotation overlaps, its message names the previous
// webhook.
func rotationAwareSyncedReadiness(status *keboolav1.KeboolaWebhookStatus) readiness {
	rd := syncedReadiness(status.WebhookID, status.SecretName)
	_, overlapping := overlapRemaining(status, time.Now())
	switch {
	case overlapping && status.Rotation.PreviousWebhookID == "":
		rd.message += ". The Notification service subscriptions it replaces keep delivering until the grace period ends (status.rotation.overlapUntil)"
	case overlapping:
		rd.message += fmt.Sprintf(". The previous webhook %q keeps delivering until the rotation's grace period ends (status.rotation.overlapUntil)",
			status.Rotation.PreviousWebhookID)
	}
	return rd
}

// nextPassResult returns the result of a pass that finished its work: a
// resync after resync, or earlier when a grace period ends before that.
func nextPassResult(status *keboolav1.KeboolaWebhookStatus, resync time.Duration, now time.Time) ctrl.Result {
	after := jittered(resync)
	if remaining, ok := overlapRemaining(status, now); ok && remaining < after {
		// A short margin makes the next pass start after overlapUntil,
		// not just before it.
		after = remaining + 100*time.Millisecond
	}
	return ctrl.Result{RequeueAfter: after}
}

// retireRotation ends a rotation whose grace period has passed: it deletes
// the previous webhook at Keboola, then removes its signing secret from the
// Secret, then clears status.rotation. The webhook goes first, so that no
// delivery it still sends meets a receiver that no longer has its secret.
func (r *KeboolaWebhookReconciler) retireRotation(ctx context.Context, p *webhookPass) *outcome {
	status := &p.wh.Status
	rotation := status.Rotation
	if rotation == nil || rotation.Phase == keboolav1.RotationPhasePublishing {
		return nil
	}
	if remaining, overlapping := overlapRemaining(status, time.Now()); overlapping && remaining > 0 {
		return nil
	}
	rotation.Phase = keboolav1.RotationPhaseRetiring
	id := rotation.PreviousWebhookID

	if id != status.WebhookID && slices.Contains(status.RetiredWebhookIDs, id) {
		api, o := r.storageAPI(ctx, p)
		if o != nil {
			return o
		}
		err := api.DeleteWebhook(ctx, id)
		r.webhookObserver().invalidate(p.key)
		if err != nil {
			return replacedDeletionOutcome("delete the previous webhook "+id, err)
		}
		log.FromContext(ctx).Info("Deleted the previous webhook of a rotation", "webhookID", id)
	}
	status.RetiredWebhookIDs = slices.DeleteFunc(status.RetiredWebhookIDs, func(retired string) bool { return retired == id })
	if len(status.RetiredWebhookIDs) == 0 {
		status.RetiredWebhookIDs = nil
	}

	if err := r.removePreviousSecret(ctx, p, id); err != nil {
		return kubeFailure(err)
	}
	status.Rotation = nil
	log.FromContext(ctx).Info("Rotation completed", "webhookID", status.WebhookID, "previousWebhookID", id,
		"fingerprint", status.SecretFingerprint)
	if id == "" {
		r.Recorder.Eventf(p.wh, p.secret, corev1.EventTypeNormal, eventReasonRotationCompleted, "Rotate",
			"Deleted the Notification service subscriptions of the previous secret and removed that secret from Secret %q", p.secret.Name)
		return nil
	}
	r.Recorder.Eventf(p.wh, p.secret, corev1.EventTypeNormal, eventReasonRotationCompleted, "Rotate",
		"Deleted webhook %q of the previous signing secret and removed that secret from Secret %q", id, p.secret.Name)
	return nil
}

// removePreviousSecret removes previousSigningSecret and previousWebhookID
// from the Secret while they belong to the webhook id. Keys that name
// another webhook belong to a newer rotation and stay.
func (r *KeboolaWebhookReconciler) removePreviousSecret(ctx context.Context, p *webhookPass, id string) error {
	_, hasSecret := p.secret.Data[keboolav1.SecretKeyPreviousSigningSecret]
	storedID, hasID := p.secret.Data[keboolav1.SecretKeyPreviousWebhookID]
	if (!hasSecret && !hasID) || (hasID && string(storedID) != id) {
		return nil
	}
	secret := p.secret.DeepCopy()
	delete(secret.Data, keboolav1.SecretKeyPreviousSigningSecret)
	delete(secret.Data, keboolav1.SecretKeyPreviousWebhookID)
	if err := r.Update(ctx, secret); err != nil {
		return fmt.Errorf("failed to remove the previous signing secret from Secret %q: %w", secret.Name, err)
	}
	p.secret = secret
	return nil
}
