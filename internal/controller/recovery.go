package controller

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	keboolav1 "github.com/keboola/keboola-operator/api/v1alpha1"
	"github.com/keboola/keboola-operator/internal/keboola"
)

// recoverCreates finishes or undoes the creates of p.wh that were
// interrupted between the create request and the status update that
// commits the webhook (see createWebhook). It runs when status.pendingCreate
// is set, and when the project's webhooks contain a marker name of this
// object other than its current webhook.
//
// It reads the project's webhooks and the Secret directly, never from a
// cache, and handles every webhook with a marker name of this object:
//
//   - the current webhook (status.webhookID) is kept; it was committed but
//     not yet renamed;
//   - the webhook whose id and signing secret the Secret contains is adopted:
//     the status records it, exactly as the interrupted create would have,
//     including the start of a rotation's grace period;
//   - every other one is deleted, because its signing secret was never
//     stored and cannot be read back.
//
// Then the pending create is cleared. The status update carries the
// resourceVersion, so a pass that read a stale object fails with a
// conflict instead of acting on old facts.
//
// NOTE: a second operator instance that is between its create request and
// its Secret write loses its webhook here, and its later writes fail on the
// resourceVersion fences. The next pass then creates a new webhook. Leader
// election keeps a second instance from running in a normal deployment.
func (r *KeboolaWebhookReconciler) recoverCreates(ctx context.Context, p *webhookPass) *outcome {
	wh := p.wh
	logger := log.FromContext(ctx)
	p.recovered = true

	api, o := r.storageAPI(ctx, p)
	if o != nil {
		return o
	}
	webhooks, err := api.ListWebhooks(ctx)
	if err != nil {
		return apiOutcome("list the webhooks of the project", err)
	}

	secret := &corev1.Secret{}
	err = r.APIReader.Get(ctx, client.ObjectKey{Namespace: wh.Namespace, Name: wh.Status.SecretName}, secret)
	switch {
	case apierrors.IsNotFound(err):
		secret = nil
	case err != nil:
		return kubeFailure(fmt.Errorf("failed to read Secret %q: %w", wh.Status.SecretName, err))
	default:
		p.secret = secret
	}
	storedID, storedSecret := storedWebhook(secret)

	var adopted *keboola.Webhook
	var uncommitted []string
	for i := range webhooks {
		w := &webhooks[i]
		switch {
		case !isMarkerOf(w.Name, wh.UID) || w.ID == wh.Status.WebhookID:
		case w.ID == storedID && len(storedSecret) > 0:
			adopted = w
		default:
			uncommitted = append(uncommitted, w.ID)
		}
	}

	for _, id := range uncommitted {
		err := api.DeleteWebhook(ctx, id)
		r.webhookObserver().invalidate(p.key)
		if err != nil {
			return apiOutcome("delete the uncommitted webhook "+id, err)
		}
		logger.Info("Deleted webhook of an interrupted create", "webhookID", id)
	}

	rotationToken := wh.Status.RotationToken
	if pending := wh.Status.PendingCreate; pending != nil {
		rotationToken = pending.RotationToken
	}
	if adopted != nil {
		previousID := wh.Status.WebhookID
		commitWebhook(&wh.Status, adopted.ID, fingerprint(storedSecret), rotationToken)
		adoptRotation(&wh.Status, secret, previousID, time.Now(), r.Options.RotationGracePeriod)
	} else {
		abandonPublishing(&wh.Status)
	}
	wh.Status.PendingCreate = nil
	if err := r.writeStatus(ctx, p); err != nil {
		return kubeFailure(err)
	}

	if adopted != nil {
		logger.Info("Adopted webhook of an interrupted create", "webhookID", adopted.ID,
			"fingerprint", wh.Status.SecretFingerprint)
		r.Recorder.Eventf(wh, secret, corev1.EventTypeNormal, eventReasonRecovered, "Recover",
			"Adopted webhook %q of an interrupted create because Secret %q contains its signing secret", adopted.ID, secret.Name)
	}
	return nil
}

// storedWebhook returns the webhook id and the signing secret that secret
// contains, which are empty for a nil Secret.
func storedWebhook(secret *corev1.Secret) (id string, signingSecret []byte) {
	if secret == nil {
		return "", nil
	}
	return string(secret.Data[keboolav1.SecretKeyWebhookID]), secret.Data[keboolav1.SecretKeySigningSecret]
}
